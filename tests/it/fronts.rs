//! Several front ends on one PostgreSQL database: three `lienthong serve`
//! processes sharing a data directory (certificates, the service key,
//! attachment files) and a database. Senders and subscribers are spread
//! over them; one front end is killed with SIGKILL mid-load; its clients
//! go on through the others. Then: every acknowledged document is there
//! once, arrival numbers have no gap, every subscriber saw every event of
//! its organisation exactly once, across its resumptions, and the archive
//! audit passes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::postgres::TestDatabase;
use crate::common::{directive, inbox_all, pdf, serve_process, Client, ServeProcess};
use lienthong::client;
use lienthong::pb;
use lienthong::pki::{self, PkiPaths};
use lienthong::store::StoreEngine;

const DEPARTMENTS: [&str; 3] = ["phong-noi-vu", "phong-tu-phap", "phong-tc-kh"];
const COMMUNES: [&str; 2] = ["xa-van-nham", "xa-yen-vuong"];

fn start(data: &Path, url: &str) -> ServeProcess {
    serve_process(
        data,
        &[
            "--store",
            url,
            // Every event kept, so that each log can be checked from 1.
            "--events-kept",
            "1000000",
            "--heartbeat-seconds",
            "0.2",
            "--org-sends-per-minute",
            "0",
        ],
    )
}

async fn connect(url: &str, data: &Path, org: &str) -> Option<Client> {
    client::connect_as(url, &data.join("pki"), org).await.ok()
}

/// What a subscriber received: every event's sequence, in order, across
/// its resumptions.
type Seen = Arc<Mutex<Vec<u64>>>;

/// Subscribes as `org` on the front ends in turn from `first`, resuming
/// after the last event seen whenever the stream breaks, until `stop`.
async fn subscribe_across(
    urls: Vec<String>,
    data: std::path::PathBuf,
    org: &'static str,
    first: usize,
    seen: Seen,
    progress: tokio::sync::watch::Sender<u64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut at = first;
    loop {
        if *stop.borrow() {
            return;
        }
        let after = seen.lock().expect("lock").last().copied().unwrap_or(0);
        let url = &urls[at % urls.len()];
        at += 1;
        let Some(mut client) = connect(url, &data, org).await else {
            continue; // that front end is dead: the next
        };
        let Ok(response) = client
            .subscribe(pb::SubscribeRequest {
                after_seq: after,
                from_now: false,
            })
            .await
        else {
            continue;
        };
        let mut stream = response.into_inner();
        loop {
            let message = tokio::select! {
                m = stream.message() => m,
                _ = stop.wait_for(|s| *s) => return,
            };
            match message {
                Ok(Some(pb::SubscribeResponse {
                    item: Some(pb::subscribe_response::Item::Event(e)),
                })) => {
                    seen.lock().expect("lock").push(e.seq);
                    progress.send_replace(e.seq);
                }
                Ok(Some(_)) => {} // a heartbeat
                // Broken (the front end died): resume on the next.
                Ok(None) | Err(_) => break,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_front_ends_one_killed_mid_load_lose_nothing_and_notify_once() {
    let database = TestDatabase::create();
    let url = database.url();
    let url_text = database.url_text();
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_path_buf();
    // The first creates the development PKI and the service key; the
    // others find them in the shared directory.
    let mut fronts = vec![start(&data, &url_text)];
    fronts.push(start(&data, &url_text));
    fronts.push(start(&data, &url_text));
    let urls: Vec<String> = fronts.iter().map(|f| f.url.clone()).collect();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (stop_subscribers, subscribers_stop) = tokio::sync::watch::channel(false);
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let acked: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();

    // Senders, one per department, each starting on its own front end and
    // moving to the next when a send fails.
    let mut senders = Vec::new();
    for (i, dept) in DEPARTMENTS.iter().enumerate() {
        let (urls, data, acked, count_tx, stop) = (
            urls.clone(),
            data.clone(),
            acked.clone(),
            count_tx.clone(),
            stop_rx.clone(),
        );
        senders.push(tokio::spawn(async move {
            let signer =
                pki::find_signing_key(&PkiPaths::new(data.join("pki")), dept).expect("key");
            let mut at = i;
            let mut client = None;
            for n in 1u64.. {
                if *stop.borrow() {
                    return;
                }
                if client.is_none() {
                    client = connect(&urls[at % urls.len()], &data, dept).await;
                    at += 1;
                    continue;
                }
                let Some(c) = client.as_mut() else { continue };
                let to = if n % 4 == 0 {
                    &COMMUNES[..]
                } else {
                    &COMMUNES[..1]
                };
                let mut d = directive(dept, to, n);
                d.subject = format!("Ba máy chủ {i}-{n}");
                // Every third carries a file larger than what the store
                // keeps inline: a file in the shared directory.
                let attachments = if n % 3 == 0 {
                    vec![pdf("p.pdf", &vec![n as u8; 12_000 + n as usize])]
                } else {
                    vec![]
                };
                let request = client::send_request(d, attachments, None, &signer).expect("sign");
                match c.send(request).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        let to = to.iter().map(|s| s.to_string()).collect();
                        acked.lock().expect("lock").insert(r.id, to);
                        count_tx.send_modify(|c| *c += 1);
                    }
                    Err(_) => client = None, // perhaps the killed one: the next
                }
            }
        }));
    }

    // Two subscribers per commune, starting on different front ends.
    let mut subscribers = Vec::new();
    let mut watchers = Vec::new();
    for (i, commune) in COMMUNES.iter().enumerate() {
        for k in 0..2 {
            let seen: Seen = Arc::default();
            let (progress_tx, progress_rx) = tokio::sync::watch::channel(0u64);
            subscribers.push(tokio::spawn(subscribe_across(
                urls.clone(),
                data.clone(),
                commune,
                i + k,
                seen.clone(),
                progress_tx,
                subscribers_stop.clone(),
            )));
            watchers.push((*commune, seen, progress_rx));
        }
    }

    // Kill front end 0 once sends are flowing, then let the others carry
    // on for as many again.
    count_rx
        .wait_for(|c| *c >= 60)
        .await
        .expect("senders running");
    let killed = fronts.remove(0);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &killed.child.id().to_string()])
        .status();
    let after_kill = *count_rx.borrow();
    count_rx
        .wait_for(|c| *c >= after_kill + 60)
        .await
        .expect("the other front ends go on");
    stop_tx.send_replace(true);
    for s in senders {
        s.await.expect("sender");
    }
    let acked = acked.lock().expect("lock").clone();
    let live_urls: Vec<String> = fronts.iter().map(|f| f.url.clone()).collect();

    // Every acknowledged document once in each recipient's mailbox, and
    // arrival numbers without a gap.
    let mut latest_event: BTreeMap<&str, u64> = BTreeMap::new();
    for commune in COMMUNES {
        let mut client = connect(&live_urls[0], &data, commune)
            .await
            .expect("connect");
        let inbox = inbox_all(&mut client).await;
        let mut numbers: Vec<u64> = inbox.iter().map(|e| e.arrival_number).collect();
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=numbers.len() as u64).collect::<Vec<_>>(),
            "{commune}: arrival numbers"
        );
        let ids: Vec<String> = inbox
            .iter()
            .filter_map(|e| e.document.as_ref().map(|d| d.id.clone()))
            .collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{commune}: a document twice");
        for (id, to) in &acked {
            if to.iter().any(|t| t == commune) {
                assert!(unique.contains(id), "{commune}: acknowledged {id} missing");
            }
        }
        // The organisation's latest event, from the other live front end.
        let mut other = connect(&live_urls[1], &data, commune)
            .await
            .expect("connect");
        latest_event.insert(commune, latest_seq(&mut other).await);
    }
    assert!(acked.len() >= 120);

    // Every subscriber saw each event of its organisation exactly once.
    for (commune, seen, mut progress) in watchers {
        let latest = latest_event[commune];
        tokio::time::timeout(Duration::from_secs(60), progress.wait_for(|s| *s >= latest))
            .await
            .unwrap_or_else(|_| panic!("{commune}: a subscriber stopped short of {latest}"))
            .expect("progress");
        let seen = seen.lock().expect("lock").clone();
        let expected: Vec<u64> = (1..=seen.len() as u64).collect();
        assert_eq!(
            seen, expected,
            "{commune}: events seen, in order, once each"
        );
        assert!(seen.len() as u64 >= latest, "{commune}");
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(distinct.len(), seen.len(), "{commune}: an event twice");
    }
    stop_subscribers.send_replace(true);
    for s in subscribers {
        s.await.expect("subscriber");
    }

    // The deployment's one archive holds up.
    let report =
        lienthong::archive::audit::audit_store(&data, &StoreEngine::Postgres(url)).expect("audit");
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert!(report.leaves >= acked.len() as u64);
}

/// The latest event sequence a heartbeat reports for the client's
/// organisation (replaying what comes before it).
async fn latest_seq(client: &mut Client) -> u64 {
    let mut stream = crate::common::subscribe_from_now(client).await;
    loop {
        let item = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .expect("a heartbeat")
            .expect("stream")
            .and_then(|i| i.item);
        if let Some(pb::subscribe_response::Item::Heartbeat(h)) = item {
            return h.latest_seq;
        }
    }
}

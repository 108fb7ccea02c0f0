//! Crash consistency: concurrent senders and subscribers, the server killed
//! with SIGKILL at a random moment, restarted on the same data, and then:
//! every acknowledged document is there, readable, with a valid signature
//! and receipt; no mailbox has a gap or a duplicate arrival number; no
//! organisation's event log has a gap; every organisation's report
//! counters equal a recount from its documents. One more sender streams a
//! large attachment for each of its documents: the upload the kill cut
//! short resumes after the restart from no more than what was sent, and
//! completes with the right SHA-256.
//!
//! Short by default (3 cycles, in CI); `LIENTHONG_CRASH_CYCLES=25 cargo test
//! --release --test it crash::` for the long run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{directive, pdf, Client};
use lienthong::client;
use lienthong::crypto::{self, PublicKey};
use lienthong::keys::KeyRegistry;
use lienthong::pb;
use lienthong::pki::{self, PkiPaths};
use prost::Message;

const DEPARTMENTS: [&str; 4] = [
    "phong-noi-vu",
    "phong-tu-phap",
    "phong-tc-kh",
    "phong-tn-mt",
];

type Server = crate::common::ServeProcess;

fn start(data: &Path) -> Server {
    // Every event kept, so that the check can replay each log from 1.
    crate::common::serve_process(
        data,
        // Senders go as fast as the server takes them: no send rate.
        &[
            "--heartbeat-seconds",
            "0.2",
            "--events-kept",
            "1000000",
            "--org-sends-per-minute",
            "0",
        ],
    )
}

async fn connect(server: &Server, data: &Path, org: &str) -> Client {
    client::connect_as(&server.url, &data.join("pki"), org)
        .await
        .expect("connect")
}

/// A random number from the system's generator (the kill moment).
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    u64::from_le_bytes(b) % n.max(1)
}

/// What the senders were told: document id → number of recipients.
type Acked = Arc<Mutex<HashMap<String, usize>>>;

/// The organisation that uploads a large attachment for each document.
const UPLOADER: &str = "phong-gd-dt";

/// The upload in progress when the server died: its content, and how many
/// bytes of it the stream had been handed.
type Unfinished = Arc<Mutex<Option<(Vec<u8>, u64)>>>;

/// The `n`-th large attachment of `cycle`: 3 MiB, unlike any other.
fn large_attachment(cycle: u64, n: u64) -> Vec<u8> {
    let seed = (cycle << 32 | n) as u32 ^ (cycle as u32).wrapping_mul(7919);
    (0..3 * 1024 * 1024u32)
        .map(|i| {
            (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40503)).wrapping_add(n as u32) as u8
        })
        .collect()
}

/// Streams `data` from `offset` in 128 KiB chunks, counting in `sent` what
/// was handed to the stream.
async fn stream_upload(
    client: &mut Client,
    data: &[u8],
    offset: u64,
    unfinished: &Unfinished,
) -> Result<pb::UploadStatus, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let digest = crypto::sha256(data).to_vec();
    let size = data.len() as u64;
    let feed = {
        let data = data.to_vec();
        let unfinished = unfinished.clone();
        tokio::spawn(async move {
            let mut first = Some(pb::UploadChunk {
                sha256: digest,
                size,
                offset,
                data: Vec::new(),
            });
            let mut at = offset as usize;
            loop {
                let end = (at + 128 * 1024).min(data.len());
                let mut chunk = first.take().unwrap_or_default();
                chunk.data = data[at..end].to_vec();
                // Counted before it can reach the server.
                if let Some((_, sent)) = unfinished.lock().expect("lock").as_mut() {
                    *sent = end as u64;
                }
                if tx.send(chunk).await.is_err() {
                    return;
                }
                at = end;
                if at == data.len() {
                    return;
                }
            }
        })
    };
    let status = client
        .upload_attachment(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map(|r| r.into_inner());
    feed.abort();
    status
}

/// A document of the uploader naming an uploaded attachment.
fn naming_upload(
    signer: &lienthong::crypto::SigningKey,
    number: u64,
    data: &[u8],
) -> pb::SendRequest {
    let mut d = directive(UPLOADER, &["xa-van-nham"], number);
    d.subject = format!("Hồ sơ lớn {number}");
    let attachment = client::Outgoing {
        declared: pb::AttachmentRef {
            name: "ho-so.pdf".into(),
            media_type: "application/pdf".into(),
            size: data.len() as u64,
            sha256: crypto::sha256(data).to_vec(),
        },
        content: None,
    };
    client::signed_request(d, vec![attachment], None, signer).expect("sign")
}

/// Uploads one large attachment after another, each named by a document,
/// until the server is gone.
async fn upload_until_killed(
    mut client: Client,
    signer: lienthong::crypto::SigningKey,
    cycle: u64,
    acked: Acked,
    unfinished: Unfinished,
) {
    for n in 0.. {
        let data = large_attachment(cycle, n);
        *unfinished.lock().expect("lock") = Some((data.clone(), 0));
        match stream_upload(&mut client, &data, 0, &unfinished).await {
            Ok(status) => assert!(status.complete, "an upload that ended whole completes"),
            Err(_) => return, // the server is gone
        }
        let number = cycle * 100_000 + n + 1;
        match client.send(naming_upload(&signer, number, &data)).await {
            Ok(r) => {
                acked.lock().expect("lock").insert(r.into_inner().id, 1);
                *unfinished.lock().expect("lock") = None;
            }
            Err(_) => return,
        }
    }
}

/// After a restart: the upload the kill cut short holds no more than was
/// sent, resumes from there, completes with its SHA-256, and a document
/// can name it.
async fn resume_unfinished(
    server: &Server,
    data_dir: &Path,
    cycle: u64,
    acked: &Acked,
    unfinished: &Unfinished,
) {
    let Some((data, sent)) = unfinished.lock().expect("lock").take() else {
        return;
    };
    let mut client = connect(server, data_dir, UPLOADER).await;
    let status = client
        .begin_upload(pb::BeginUploadRequest {
            sha256: crypto::sha256(&data).to_vec(),
            size: data.len() as u64,
        })
        .await
        .expect("begin")
        .into_inner();
    assert!(
        status.complete || status.offset <= sent,
        "the server holds {} bytes of an upload that was sent {sent}",
        status.offset
    );
    if !status.complete {
        let scratch = Arc::new(Mutex::new(None));
        let done = stream_upload(&mut client, &data, status.offset, &scratch)
            .await
            .expect("the resumed upload");
        assert!(
            done.complete,
            "resumed from {} of {sent}: the SHA-256 matches",
            status.offset
        );
    }
    let signer =
        pki::find_signing_key(&PkiPaths::new(data_dir.join("pki")), UPLOADER).expect("key");
    let sent = client
        .send(naming_upload(&signer, cycle * 100_000 + 99_999, &data))
        .await
        .expect("a document names the resumed upload")
        .into_inner();
    acked.lock().expect("lock").insert(sent.id, 1);
}

/// The status changes xa-van-nham was told were accepted: (document, code).
type AckedStatuses = Arc<Mutex<Vec<(String, i32)>>>;

/// The commune whose clerk registers (and completes every other) document
/// as it arrives, while the server may die.
const CLERK: &str = "xa-van-nham";

/// Signs and sends xa-van-nham's status change; `false` once the server is
/// gone.
async fn change_status(
    client: &mut Client,
    signer: &lienthong::crypto::SigningKey,
    id: &str,
    code: i32,
) -> bool {
    let status = pb::StatusMessage {
        document_id: id.to_owned(),
        from: CLERK.to_owned(),
        code,
        ..Default::default()
    }
    .encode_to_vec();
    let (key_id, signature) = signer.sign_status(&status).expect("sign");
    client
        .change_status(pb::ChangeStatusRequest {
            status,
            signature: Some(pb::DocumentSignature { key_id, signature }),
        })
        .await
        .is_ok()
}

async fn load_until_killed(
    server: &Server,
    data: &Path,
    cycle: u64,
    acked: &Acked,
    statuses: &AckedStatuses,
    unfinished: &Unfinished,
) {
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut tasks = Vec::new();
    for (i, dept) in DEPARTMENTS.iter().enumerate() {
        let mut client = connect(server, data, dept).await;
        let signer = pki::find_signing_key(&PkiPaths::new(data.join("pki")), dept).expect("key");
        let acked = acked.clone();
        let count_tx = count_tx.clone();
        let arrived_tx = arrived_tx.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                // Unique per sender and year across cycles.
                let number = cycle * 100_000 + n + 1;
                let to: &[&str] = if n % 5 == 0 {
                    &["all-communes"]
                } else {
                    &["xa-van-nham", "xa-yen-vuong"]
                };
                let mut d = directive(dept, to, number);
                d.subject = format!("Kiểm tra {cycle}-{i}-{n}");
                let attachments = if n % 3 == 0 {
                    vec![pdf("p.pdf", &vec![n as u8; 10_000 + n as usize])]
                } else {
                    vec![]
                };
                let request = client::send_request(d, attachments, None, &signer).expect("sign");
                match client.send(request).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        // Every document reaches the clerk's commune.
                        let _ = arrived_tx.send(r.id.clone());
                        acked.lock().expect("lock").insert(r.id, r.deliveries.len());
                        count_tx.send_modify(|c| *c += 1);
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    drop(arrived_tx);
    {
        let client = connect(server, data, UPLOADER).await;
        let signer =
            pki::find_signing_key(&PkiPaths::new(data.join("pki")), UPLOADER).expect("key");
        tasks.push(tokio::spawn(upload_until_killed(
            client,
            signer,
            cycle,
            acked.clone(),
            unfinished.clone(),
        )));
    }
    // The clerk registers each document, and completes every other one,
    // while the server may die: status traffic in the same commits.
    {
        let mut client = connect(server, data, CLERK).await;
        let signer = pki::find_signing_key(&PkiPaths::new(data.join("pki")), CLERK).expect("key");
        let statuses = statuses.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(id) = arrived.recv().await {
                n += 1;
                let codes: &[i32] = if n.is_multiple_of(2) { &[3, 6] } else { &[3] };
                for &code in codes {
                    if !change_status(&mut client, &signer, &id, code).await {
                        return; // the server is gone
                    }
                    statuses.lock().expect("lock").push((id.clone(), code));
                }
            }
        }));
    }
    // Subscribers reading live while the server dies.
    for commune in ["xa-van-nham", "tt-huu-lung"] {
        let mut client = connect(server, data, commune).await;
        tasks.push(tokio::spawn(async move {
            if let Ok(r) = client
                .subscribe(pb::SubscribeRequest {
                    after_seq: 0,
                    from_now: true,
                })
                .await
            {
                let mut stream = r.into_inner();
                while let Ok(Some(_)) = stream.message().await {}
            }
        }));
    }
    // Kill at a random moment once some sends were acknowledged.
    count_rx
        .wait_for(|c| *c >= 20)
        .await
        .expect("senders running");
    tokio::time::sleep(Duration::from_millis(random_below(300))).await;
    let _ = Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status();
    for t in tasks {
        let _ = t.await;
    }
}

/// Every acknowledged document, read back by a recipient and checked.
async fn check_documents(server: &Server, data: &Path, acked: &Acked) {
    let registry =
        KeyRegistry::load(&PkiPaths::new(data.join("pki")).signing_keys()).expect("registry");
    let pem = std::fs::read_to_string(data.join("service-key.pub.pem")).expect("service key");
    let service = PublicKey::from_pem(&pem).expect("service key");
    let mut reader = connect(server, data, "xa-van-nham").await;
    let acked = acked.lock().expect("lock").clone();
    for (id, recipients) in &acked {
        let doc = reader
            .get_document(pb::GetDocumentRequest {
                id: id.clone(),
                include_content: true,
            })
            .await
            .unwrap_or_else(|e| panic!("acknowledged document {id} lost: {e}"))
            .into_inner();
        assert_eq!(doc.deliveries.len(), *recipients, "{id}");
        let sig = doc.signature.expect("signature");
        let key = registry.get(&sig.key_id).expect("registered key");
        assert!(
            key.public.verify(
                &crypto::document_message(&sig.key_id, &doc.document_bytes),
                &sig.signature
            ),
            "{id}: signature"
        );
        let sealed = doc.receipt.expect("receipt");
        let receipt = pb::Receipt::decode(sealed.receipt.as_slice()).expect("receipt decodes");
        assert!(
            service.verify(
                &crypto::receipt_message(&receipt.service_key_id, &sealed.receipt),
                &sealed.signature
            ),
            "{id}: receipt"
        );
        assert_eq!(receipt.document_id, *id);
        assert_eq!(
            receipt.document_sha256,
            crypto::sha256(&doc.document_bytes).to_vec()
        );
        for a in &doc.attachments {
            let r = a.r#ref.as_ref().expect("ref");
            assert_eq!(
                crypto::sha256(&a.content).to_vec(),
                r.sha256,
                "{id}: attachment"
            );
        }
    }
}

/// Every acknowledged status change is in the clerk's history of its
/// document, and the document's status is at least as far along.
async fn check_statuses(server: &Server, data: &Path, statuses: &AckedStatuses) {
    let mut clerk = connect(server, data, CLERK).await;
    let statuses = statuses.lock().expect("lock").clone();
    for (id, code) in &statuses {
        let history = clerk
            .get_history(pb::GetHistoryRequest {
                document_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("history of {id}: {e}"))
            .into_inner()
            .changes;
        assert!(
            history.iter().any(|c| c.code == *code && c.change > 0),
            "{id}: acknowledged status {code} lost"
        );
        let doc = clerk
            .get_document(pb::GetDocumentRequest {
                id: id.clone(),
                include_content: false,
            })
            .await
            .expect("document")
            .into_inner();
        let now = doc.my_delivery.expect("the clerk's delivery").status;
        assert!(
            now >= *code,
            "{id}: status {now} is behind acknowledged {code}"
        );
    }
}

/// Arrival numbers 1..n without gap or duplicate; events 1..m without gap:
/// one per arrival, and one per status change the organisation made or
/// received as sender.
async fn check_mailboxes(server: &Server, data: &Path) {
    let directory = lienthong::directory::Directory::builtin().expect("directory");
    for org in directory.organizations() {
        let mut client = connect(server, data, &org.alias).await;
        let inbox = crate::common::inbox_all(&mut client).await;
        let mut by_year: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for e in &inbox {
            by_year
                .entry(e.arrival_year)
                .or_default()
                .push(e.arrival_number);
        }
        for (year, mut numbers) in by_year {
            numbers.sort_unstable();
            let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
            assert_eq!(numbers, expected, "{} {year}: arrival numbers", org.alias);
        }
        // Replay everything kept, up to the latest a heartbeat reports.
        let mut stream = client
            .subscribe(pb::SubscribeRequest {
                after_seq: 0,
                from_now: false,
            })
            .await
            .expect("subscribe")
            .into_inner();
        let mut seqs = Vec::new();
        let mut arrivals = 0usize;
        let mut status_events = 0usize;
        loop {
            let item = tokio::time::timeout(Duration::from_secs(60), stream.message())
                .await
                .expect("stream answers")
                .expect("stream")
                .and_then(|i| i.item);
            match item {
                Some(pb::subscribe_response::Item::Event(e)) => {
                    seqs.push(e.seq);
                    if e.kind == pb::EventKind::DocumentArrived as i32 {
                        arrivals += 1;
                    } else if e.kind == pb::EventKind::StatusChanged as i32 {
                        status_events += 1;
                    }
                }
                Some(pb::subscribe_response::Item::Heartbeat(h))
                    if h.latest_seq == seqs.len() as u64 =>
                {
                    break
                }
                Some(pb::subscribe_response::Item::Heartbeat(h)) => {
                    panic!(
                        "{}: heartbeat says {} but {} events came",
                        org.alias,
                        h.latest_seq,
                        seqs.len()
                    )
                }
                None => panic!("stream ended"),
            }
        }
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{}: event sequence", org.alias);
        assert_eq!(
            arrivals,
            inbox.len(),
            "{}: one event per arrival",
            org.alias
        );
        assert_eq!(
            arrivals + status_events,
            seqs.len(),
            "{}: only arrivals and status changes",
            org.alias
        );
        // As many status events as durable changes it made or was sent.
        let mut changes = 0usize;
        let outbox = client::outbox_pages(&client, String::new(), 0, true)
            .await
            .expect("outbox")
            .0;
        let ids: Vec<String> = inbox
            .iter()
            .filter_map(|e| e.document.as_ref().map(|d| d.id.clone()))
            .chain(
                outbox
                    .iter()
                    .filter_map(|e| e.document.as_ref().map(|d| d.id.clone())),
            )
            .collect();
        for id in ids {
            let history = client
                .get_history(pb::GetHistoryRequest { document_id: id })
                .await
                .expect("history")
                .into_inner()
                .changes;
            changes += history.iter().filter(|c| c.change > 0).count();
        }
        assert_eq!(
            status_events, changes,
            "{}: one event per status change",
            org.alias
        );
    }
}

/// Every organisation's report counters of this year equal a recount made
/// from its documents: each acknowledged send and status change is counted
/// (the checks above found them stored), and nothing that was not stored.
async fn check_report(server: &Server, data: &Path) {
    let mut office = connect(server, data, "vp-hdnd-ubnd").await;
    let report = office
        .get_report(pb::GetReportRequest::default())
        .await
        .expect("report")
        .into_inner();
    for row in &report.rows {
        let org = row.organization.as_ref().expect("org").alias.clone();
        let client = connect(server, data, &org).await;
        assert_eq!(
            crate::report::of_row(row),
            crate::report::recount(client, &org).await,
            "{org}: the report's counters after a SIGKILL"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_sigkills() {
    let cycles: u64 = std::env::var("LIENTHONG_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let acked: Acked = Arc::default();
    let statuses: AckedStatuses = Arc::default();
    let unfinished: Unfinished = Arc::default();
    let mut resumed = 0;
    for cycle in 0..cycles {
        let mut server = start(&data);
        load_until_killed(&server, &data, cycle, &acked, &statuses, &unfinished).await;
        let _ = server.child.wait();

        let mut server = start(&data);
        resumed += usize::from(unfinished.lock().expect("lock").is_some());
        resume_unfinished(&server, &data, cycle, &acked, &unfinished).await;
        check_documents(&server, &data, &acked).await;
        check_statuses(&server, &data, &statuses).await;
        check_mailboxes(&server, &data).await;
        check_report(&server, &data).await;
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
    let total = acked.lock().expect("lock").len();
    let changes = statuses.lock().expect("lock").len();
    eprintln!("crash test: {cycles} SIGKILL cycles, {total} acknowledged documents and {changes} acknowledged status changes, all present and valid; {resumed} uploads cut by the kill resumed and completed");
}

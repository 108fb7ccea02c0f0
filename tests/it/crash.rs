//! Crash consistency: concurrent senders and subscribers, the server killed
//! with SIGKILL at a random moment, restarted on the same data, and then:
//! every acknowledged document is there, readable, with a valid signature
//! and receipt; no mailbox has a gap or a duplicate arrival number; no
//! organisation's event log has a gap.
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
    crate::common::serve_process(data, &["--heartbeat-seconds", "0.2"])
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

async fn load_until_killed(server: &Server, data: &Path, cycle: u64, acked: &Acked) {
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let mut tasks = Vec::new();
    for (i, dept) in DEPARTMENTS.iter().enumerate() {
        let mut client = connect(server, data, dept).await;
        let signer = pki::find_signing_key(&PkiPaths::new(data.join("pki")), dept).expect("key");
        let acked = acked.clone();
        let count_tx = count_tx.clone();
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
                        acked.lock().expect("lock").insert(r.id, r.deliveries.len());
                        count_tx.send_modify(|c| *c += 1);
                    }
                    Err(_) => return, // the server is gone
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

/// Arrival numbers 1..n without gap or duplicate; events 1..m without gap,
/// one per arrival.
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
        loop {
            let item = tokio::time::timeout(Duration::from_secs(60), stream.message())
                .await
                .expect("stream answers")
                .expect("stream")
                .and_then(|i| i.item);
            match item {
                Some(pb::subscribe_response::Item::Event(e)) => seqs.push(e.seq),
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
            seqs.len(),
            inbox.len(),
            "{}: one event per arrival",
            org.alias
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
    for cycle in 0..cycles {
        let mut server = start(&data);
        load_until_killed(&server, &data, cycle, &acked).await;
        let _ = server.child.wait();

        let mut server = start(&data);
        check_documents(&server, &data, &acked).await;
        check_mailboxes(&server, &data).await;
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
    let total = acked.lock().expect("lock").len();
    eprintln!("crash test: {cycles} SIGKILL cycles, {total} acknowledged documents, all present and valid");
}

//! The store through its engine-neutral interface, against every engine in
//! [`ENGINES`]: the engine contract (atomic transactions, ordered scans,
//! durability across a reopen) and the rules of a commit (arrival numbers,
//! events, outbox, idempotency, numbering, archive, checkpoints).
//!
//! A second engine joins the whole suite by one more line in `ENGINES`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::common::postgres::TestDatabase;
use lienthong::directory::OrgCode;
use lienthong::error::Error;
use lienthong::merkle;
use lienthong::receipt::{Notary, ServiceKey};
use lienthong::store::engine::{Engine, Order, Space};
use lienthong::store::postgres::PostgresEngine;
use lienthong::store::sled::{SledEngine, SledOptions};
use lienthong::store::{
    Accepted, AcceptedStatus, CommitListener, DocId, NewDocument, Numbering, Sealed, Sealer,
    SendOutcome, Series, Store, StoreOptions, StoredDocument, StoredEvent,
};

type Factory = fn(&Place) -> Arc<dyn Engine>;

/// Every engine the suite runs against, each opened on a [`Place`] of its
/// own; opened twice on one place, it finds what it left there.
const ENGINES: &[(&str, Factory)] = &[("sled", sled), ("postgres", postgres)];

fn sled(place: &Place) -> Arc<dyn Engine> {
    let options = SledOptions {
        cache_bytes: 8 << 20,
    };
    Arc::new(SledEngine::open(&place.path().join("store"), &options).expect("open sled"))
}

/// A database of its own on the test cluster (see `common::postgres`).
fn postgres(place: &Place) -> Arc<dyn Engine> {
    let url = place.database().url();
    Arc::new(PostgresEngine::open(&url).expect("open the PostgreSQL engine"))
}

/// Where one test keeps its data: a temporary directory (the service key,
/// attachment files, sled's files) and, made at the first use, a database
/// of its own, dropped with it.
pub struct Place {
    // Declared first: the database goes before the directory.
    database: OnceLock<TestDatabase>,
    dir: tempfile::TempDir,
}

impl Place {
    pub fn new() -> Place {
        Place {
            database: OnceLock::new(),
            dir: tempfile::tempdir().expect("tmp"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn database(&self) -> &TestDatabase {
        self.database.get_or_init(TestDatabase::create)
    }
}

fn code(text: &str) -> OrgCode {
    OrgCode::parse(text).expect("code")
}

const SENDER: &str = "000.02.09.H37";
const COMMUNE_A: &str = "000.32.09.H37";
const COMMUNE_B: &str = "000.33.09.H37";

fn new_document(number: u64, to: &[&str]) -> NewDocument {
    NewDocument {
        id: DocId::random().expect("id"),
        sender: code(SENDER),
        recipients: to.iter().map(|c| code(c)).collect(),
        document_bytes: format!("document {number}").into_bytes(),
        attachments: vec![],
        content_digest: [number as u8; 32],
        idempotency_key: None,
        numbering: Numbering {
            year: 2026,
            series: Series::Ordinary,
            number: Some(number),
            notation: "CT-PNV".into(),
        },
        signing_key_id: "k".into(),
        signature: vec![1; 64],
        key_usable_until_ms: None,
        reply_to: None,
        supersedes: None,
        due_date: None,
        urgency: 0,
        paper: false,
        claims: None,
    }
}

/// A store on `engine`, with the service's own sealer, checkpointing every
/// `checkpoint_every` leaves and keeping `events_kept` events.
fn open_store(
    dir: &Path,
    engine: Arc<dyn Engine>,
    checkpoint_every: u64,
    events_kept: u64,
) -> Store {
    let (listener, mut committed) = lienthong::notify::listener();
    tokio::spawn(async move { while committed.recv().await.is_some() {} });
    open_store_telling(
        dir,
        engine,
        checkpoint_every,
        events_kept,
        Arc::new(listener),
    )
}

/// [`open_store`] with the commit listener `listener`.
fn open_store_telling(
    dir: &Path,
    engine: Arc<dyn Engine>,
    checkpoint_every: u64,
    events_kept: u64,
    listener: Arc<dyn CommitListener>,
) -> Store {
    let service = Arc::new(ServiceKey::load_or_create(dir).expect("service key"));
    open_store_sealed(
        dir,
        engine,
        checkpoint_every,
        events_kept,
        listener,
        Arc::new(Notary::new(service)),
    )
}

fn open_store_sealed(
    dir: &Path,
    engine: Arc<dyn Engine>,
    checkpoint_every: u64,
    events_kept: u64,
    listener: Arc<dyn CommitListener>,
    sealer: Arc<dyn Sealer>,
) -> Store {
    let options = StoreOptions {
        checkpoint_every,
        events_kept,
        ..StoreOptions::default()
    };
    Store::open(engine, &dir.join("attachments"), &options, sealer, listener).expect("store")
}

async fn accepted(store: &Store, new: NewDocument) -> DocId {
    match store.send(new).await.expect("send") {
        SendOutcome::Accepted(id, _) => id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[test]
fn a_transaction_commits_all_its_writes_or_none() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let engine = make(&dir);
        let failed = engine.transact(&mut |txn| {
            txn.put(Space::Counters, b"a", b"1")?;
            txn.put(Space::Inbox, b"b", b"2")?;
            // A read sees the transaction's own write.
            assert_eq!(txn.get(Space::Counters, b"a")?, Some(b"1".to_vec()));
            Err(Error::storage("abandoned on purpose"))
        });
        assert!(failed.is_err(), "{name}");
        assert_eq!(
            engine.get(Space::Counters, b"a").expect("get"),
            None,
            "{name}"
        );
        assert_eq!(engine.get(Space::Inbox, b"b").expect("get"), None, "{name}");

        engine
            .transact(&mut |txn| {
                txn.put(Space::Counters, b"a", b"1")?;
                txn.put(Space::Inbox, b"b", b"2")?;
                txn.delete(Space::Inbox, b"b")?;
                txn.put(Space::Inbox, b"c", b"3")
            })
            .expect("commit");
        assert_eq!(
            engine.get(Space::Counters, b"a").expect("get"),
            Some(b"1".to_vec()),
            "{name}"
        );
        assert_eq!(engine.get(Space::Inbox, b"b").expect("get"), None, "{name}");
        // Keyspaces are separate: the same key in another holds nothing.
        assert_eq!(
            engine.get(Space::Outbox, b"c").expect("get"),
            None,
            "{name}"
        );
    }
}

#[test]
fn a_scan_walks_its_range_in_byte_order_either_way_up_to_its_limit() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let engine = make(&dir);
        engine
            .transact(&mut |txn| {
                for k in [3u8, 1, 255, 2, 0] {
                    txn.put(Space::Events, &[k, 9], &[k])?;
                }
                Ok(())
            })
            .expect("commit");
        let keys = |start: &[u8], end: Option<&[u8]>, order, limit| -> Vec<u8> {
            engine
                .scan(Space::Events, start, end, order, limit)
                .expect("scan")
                .into_iter()
                .map(|(k, _)| k[0])
                .collect()
        };
        assert_eq!(
            keys(&[], None, Order::Ascending, 10),
            [0, 1, 2, 3, 255],
            "{name}"
        );
        assert_eq!(keys(&[], None, Order::Descending, 2), [255, 3], "{name}");
        assert_eq!(
            keys(&[1], Some(&[3]), Order::Ascending, 10),
            [1, 2],
            "{name}"
        );
        assert_eq!(
            keys(&[1], Some(&[3, 9]), Order::Descending, 10),
            [2, 1],
            "{name}"
        );
        assert_eq!(
            keys(&[4], Some(&[5]), Order::Ascending, 10),
            [] as [u8; 0],
            "{name}"
        );
    }
}

#[test]
fn what_was_synced_is_there_after_a_reopen() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        {
            let engine = make(&dir);
            engine
                .transact(&mut |txn| txn.put(Space::Documents, b"id", b"bytes"))
                .expect("commit");
            engine.sync().expect("sync");
        }
        let engine = make(&dir);
        assert_eq!(
            engine.get(Space::Documents, b"id").expect("get"),
            Some(b"bytes".to_vec()),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_numbers_arrivals_logs_events_and_fills_both_mailboxes() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let store = open_store(dir.path(), make(&dir), 1000, 100);
        let mut ids = Vec::new();
        for n in 1..=3 {
            ids.push(accepted(&store, new_document(n, &[COMMUNE_A, COMMUNE_B])).await);
        }
        ids.push(accepted(&store, new_document(4, &[COMMUNE_B])).await);

        let inbox = store.inbox_page(&code(COMMUNE_B), None, 10).expect("inbox");
        let numbers: Vec<u64> = inbox.items.iter().map(|i| i.arrival_number).collect();
        assert_eq!(numbers, [4, 3, 2, 1], "{name}: newest first, no gap");
        assert_eq!(inbox.items[0].id, ids[3], "{name}");
        let a = store.inbox_page(&code(COMMUNE_A), None, 10).expect("inbox");
        assert_eq!(a.items.len(), 3, "{name}");

        let outbox = store.outbox_page(&code(SENDER), None, 10).expect("outbox");
        let sent: Vec<DocId> = outbox.items.iter().rev().map(|i| i.id).collect();
        assert_eq!(sent, ids, "{name}");

        let events = store.events(&code(COMMUNE_B), 0, 100, 100).expect("events");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "{name}");
        assert_eq!(events[3].document_id, ids[3].0.to_vec(), "{name}");
        assert_eq!(events[3].arrival_number, 4, "{name}");
        let counters = store.event_counters().expect("counters");
        assert!(
            counters.contains(&(code(COMMUNE_B), 4)),
            "{name}: {counters:?}"
        );
        assert!(
            counters.contains(&(code(COMMUNE_A), 3)),
            "{name}: {counters:?}"
        );
        store.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_writes_nothing() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let store = open_store(dir.path(), make(&dir), 1000, 100);
        let mut first = new_document(1, &[COMMUNE_A]);
        first.idempotency_key = Some("key-1".into());
        let id = accepted(&store, first.clone()).await;

        // The same key and content: the same document, nothing new.
        let mut again = first.clone();
        again.id = DocId::random().expect("id");
        match store.send(again).await.expect("send") {
            SendOutcome::Duplicate(same, _) => assert_eq!(same, id, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        // The same key, other content.
        let mut other = new_document(2, &[COMMUNE_A]);
        other.idempotency_key = Some("key-1".into());
        assert!(
            matches!(store.send(other).await.expect("send"), SendOutcome::KeyReused(k) if k == id),
            "{name}"
        );
        // The same number and notation in the same year.
        assert!(
            matches!(store.send(new_document(1, &[COMMUNE_B])).await.expect("send"), SendOutcome::NumberTaken(k) if k == id),
            "{name}"
        );
        // A key that stopped being usable before acceptance.
        let mut late = new_document(3, &[COMMUNE_B]);
        late.key_usable_until_ms = Some(0);
        assert!(
            matches!(
                store.send(late).await.expect("send"),
                SendOutcome::KeyNoLongerUsable
            ),
            "{name}"
        );

        assert_eq!(store.archive_size().expect("size"), 1, "{name}");
        assert!(
            store
                .inbox_page(&code(COMMUNE_B), None, 10)
                .expect("inbox")
                .items
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            store
                .events(&code(COMMUNE_B), 0, 100, 100)
                .expect("events")
                .len(),
            0,
            "{name}"
        );
        // Numbering goes on from where it stood.
        accepted(&store, new_document(2, &[COMMUNE_A])).await;
        let a = store.inbox_page(&code(COMMUNE_A), None, 10).expect("inbox");
        assert_eq!(a.items[0].arrival_number, 2, "{name}");
        store.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_document_is_a_leaf_with_a_proof_and_checkpoints_come_on_schedule() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let store = open_store(dir.path(), make(&dir), 4, 100);
        let mut ids = Vec::new();
        for n in 1..=10 {
            ids.push(accepted(&store, new_document(n, &[COMMUNE_A])).await);
        }
        assert_eq!(store.archive_size().expect("size"), 10, "{name}");
        // Every 4 leaves, at the latest in the batch that reached them.
        let (size, _) = store.latest_checkpoint().expect("latest").expect("one");
        assert!((8..=10).contains(&size), "{name}: {size}");
        assert!(store.archive_grew().expect("grew") == (size < 10), "{name}");
        store.make_checkpoint().await.expect("checkpoint");
        assert!(store.checkpoint(10).expect("get").is_some(), "{name}");
        assert!(!store.archive_grew().expect("grew"), "{name}");

        let root = store.archive_root(10).expect("root");
        for (i, id) in ids.iter().enumerate() {
            let index = store.archive_index(id).expect("index").expect("indexed");
            assert_eq!(index, i as u64, "{name}");
            let leaf = store.archive_leaf(index).expect("leaf").expect("stored");
            let path = store.inclusion_proof(index, 10).expect("proof");
            assert!(
                merkle::verify_inclusion(&merkle::leaf_hash(&leaf), index, 10, &path, &root),
                "{name}: leaf {index}"
            );
        }
        let old = store.archive_root(6).expect("root");
        let proof = store.consistency_proof(6, 10).expect("proof");
        assert!(
            merkle::verify_consistency(6, 10, &old, &root, &proof),
            "{name}"
        );
        store.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_trimmed_and_pages_follow_on() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let store = open_store(dir.path(), make(&dir), 1000, 3);
        for n in 1..=7 {
            accepted(&store, new_document(n, &[COMMUNE_A])).await;
        }
        assert_eq!(
            store.oldest_event(&code(COMMUNE_A)).expect("oldest"),
            Some(5),
            "{name}: only the last 3 kept"
        );
        let first = store.inbox_page(&code(COMMUNE_A), None, 3).expect("page");
        let next = first.next.expect("more");
        let second = store
            .inbox_page(&code(COMMUNE_A), Some(next), 3)
            .expect("page");
        let third = store
            .inbox_page(&code(COMMUNE_A), second.next, 3)
            .expect("page");
        let numbers: Vec<u64> = [first.items, second.items, third.items]
            .iter()
            .flatten()
            .map(|i| i.arrival_number)
            .collect();
        assert_eq!(numbers, [7, 6, 5, 4, 3, 2, 1], "{name}");
        assert!(third.next.is_none(), "{name}");
        store.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_has_everything_and_numbers_on() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let id = {
            let store = open_store(dir.path(), make(&dir), 1000, 100);
            let id = accepted(&store, new_document(1, &[COMMUNE_A])).await;
            store.close().await.expect("close");
            id
        };
        let store = open_store(dir.path(), make(&dir), 1000, 100);
        assert!(store.document(&id).expect("read").is_some(), "{name}");
        accepted(&store, new_document(2, &[COMMUNE_A])).await;
        let inbox = store.inbox_page(&code(COMMUNE_A), None, 10).expect("inbox");
        let numbers: Vec<u64> = inbox.items.iter().map(|i| i.arrival_number).collect();
        assert_eq!(numbers, [2, 1], "{name}");
        assert_eq!(store.archive_size().expect("size"), 2, "{name}");
        store.close().await.expect("close");
        drop(store);
        // Read-only, as the audit opens it: reads work, sends are refused.
        let reader =
            Store::open_read_only(make(&dir), &dir.path().join("attachments")).expect("read-only");
        assert!(reader.document(&id).expect("read").is_some(), "{name}");
        assert!(matches!(
            reader.send(new_document(3, &[COMMUNE_A])).await,
            Err(Error::Unavailable(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_1_keeps_its_numbers_in_the_ordinary_series() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let engine = make(&dir);
        // What the earlier build wrote: one series, `org ‖ year ‖ number ‖ notation`.
        let held = DocId::random().expect("id");
        let mut old_key = code(SENDER).as_bytes().to_vec();
        old_key.extend_from_slice(&2026u16.to_be_bytes());
        old_key.extend_from_slice(&7u64.to_be_bytes());
        old_key.extend_from_slice("CT-PNV".as_bytes());
        engine
            .transact(&mut |txn| {
                txn.put(Space::Meta, b"schema", b"lienthong-store-1")?;
                txn.put(Space::Numbering, &old_key, &held.0)
            })
            .expect("write a store-1");
        let store = open_store(dir.path(), engine.clone(), 1000, 1000);
        assert_eq!(
            engine.get(Space::Meta, b"schema").expect("get"),
            Some(b"lienthong-store-3".to_vec()),
            "{name}"
        );
        // Number 7 is still taken; the next assigned one follows it.
        assert!(
            matches!(store.send(new_document(7, &[COMMUNE_A])).await.expect("send"), SendOutcome::NumberTaken(k) if k == held),
            "{name}"
        );
        let mut auto = new_document(0, &[COMMUNE_A]);
        auto.numbering.number = None;
        match store.send(auto).await.expect("send") {
            SendOutcome::Accepted(_, stored) => assert_eq!(stored.number, 8, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        store.close().await.expect("close");
    }
}

/// A document's archive leaf is in its record; a store-2 kept it under
/// `archive_index`, and such documents keep their proofs after the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_leaves_are_found_in_the_record_and_in_a_store_2s_index() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let engine = make(&dir);
        let (old, new) = {
            let store = open_store(dir.path(), engine.clone(), 1000, 100);
            let old = accepted(&store, new_document(1, &[COMMUNE_A])).await;
            let new = accepted(&store, new_document(2, &[COMMUNE_A])).await;
            store.close().await.expect("close");
            (old, new)
        };
        assert_eq!(
            engine.get(Space::ArchiveIndex, &new.0).expect("get"),
            None,
            "{name}: no key of its own"
        );
        // Make the first document what a store-2 build wrote: no leaf in
        // the record, the leaf under `archive_index`, the schema store-2.
        let bytes = engine
            .get(Space::Documents, &old.0)
            .expect("get")
            .expect("stored");
        let mut record =
            <StoredDocument as prost::Message>::decode(bytes.as_slice()).expect("decode");
        assert_eq!(record.archive_leaf, Some(0), "{name}");
        record.archive_leaf = None;
        engine
            .transact(&mut |txn| {
                txn.put(
                    Space::Documents,
                    &old.0,
                    &prost::Message::encode_to_vec(&record),
                )?;
                txn.put(Space::ArchiveIndex, &old.0, &0u64.to_be_bytes())?;
                txn.put(Space::Meta, b"schema", b"lienthong-store-2")
            })
            .expect("write a store-2");
        engine.sync().expect("sync");

        let store = open_store(dir.path(), engine.clone(), 1000, 100);
        assert_eq!(
            engine.get(Space::Meta, b"schema").expect("get"),
            Some(b"lienthong-store-3".to_vec()),
            "{name}"
        );
        let root = store.archive_root(2).expect("root");
        for (id, index) in [(old, 0u64), (new, 1)] {
            assert_eq!(
                store.archive_index(&id).expect("index"),
                Some(index),
                "{name}"
            );
            let leaf = store.archive_leaf(index).expect("leaf").expect("stored");
            let path = store.inclusion_proof(index, 2).expect("proof");
            assert!(
                merkle::verify_inclusion(&merkle::leaf_hash(&leaf), index, 2, &path, &root),
                "{name}: leaf {index}"
            );
        }
        assert_eq!(
            store
                .archive_index(&DocId::random().expect("id"))
                .expect("index"),
            None,
            "{name}: an unknown document has no leaf"
        );
        store.close().await.expect("close");
    }
}

/// The group commit is led by waiting senders in turn; a sender whose
/// request is cancelled while it waits (perhaps just as the role was
/// handed to it) must not leave the others waiting for a leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_that_give_up_while_waiting_do_not_stall_the_group_commit() {
    for (name, make) in ENGINES {
        let dir = Place::new();
        let store = Arc::new(open_store(dir.path(), make(&dir), 1000, 1000));
        let mut kept = Vec::new();
        let mut abandoned = Vec::new();
        for number in 1..=300u64 {
            let store = store.clone();
            let task =
                tokio::spawn(async move { store.send(new_document(number, &[COMMUNE_A])).await });
            if number % 3 == 0 {
                abandoned.push(task);
            } else {
                kept.push(task);
            }
        }
        for task in &abandoned {
            task.abort();
        }
        // A guard, not a measurement: a stalled commit would wait forever.
        let all = async {
            for task in kept {
                let outcome = task.await.expect("task").expect("send");
                assert!(matches!(outcome, SendOutcome::Accepted(..)), "{name}");
            }
            accepted(&store, new_document(1000, &[COMMUNE_A])).await
        };
        let last = tokio::time::timeout(std::time::Duration::from_secs(120), all)
            .await
            .unwrap_or_else(|_| panic!("{name}: the group commit stalled"));
        assert!(store.document(&last).expect("read").is_some(), "{name}");
    }
}

/// Holds the first batch's leader after its sync, until released.
struct FirstSyncHeld {
    entered: std::sync::mpsc::SyncSender<()>,
    release: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl CommitListener for FirstSyncHeld {
    fn committed(&self, _events: Vec<StoredEvent>) {}

    fn synced(&self, _jobs: usize, _sync: std::time::Duration) {
        let release = self.release.lock().expect("lock").take();
        if let Some(release) = release {
            let _ = self.entered.send(());
            let _ = release.recv();
        }
    }
}

/// Sends document 1, whose leader a [`FirstSyncHeld`] then holds, and
/// returns once it is held (told by `in_sync`).
async fn first_batch_held(
    store: &Arc<Store>,
    in_sync: std::sync::mpsc::Receiver<()>,
) -> tokio::task::JoinHandle<Result<SendOutcome, Error>> {
    let first = {
        let store = store.clone();
        tokio::spawn(async move { store.send(new_document(1, &[COMMUNE_A])).await })
    };
    tokio::task::spawn_blocking(move || in_sync.recv().expect("the first batch synced"))
        .await
        .expect("wait");
    first
}

/// The role of leader is handed to the first waiting sender; if that
/// sender's request is dropped before it could take the role, the role is
/// not lost with it: the writes still queued are committed and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_role_handed_to_a_cancelled_sender_is_not_lost() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    for (name, make) in ENGINES {
        let dir = Place::new();
        let (entered, in_sync) = std::sync::mpsc::sync_channel(1);
        let (release, released) = std::sync::mpsc::channel();
        let listener = Arc::new(FirstSyncHeld {
            entered,
            release: std::sync::Mutex::new(Some(released)),
        });
        let store = Arc::new(open_store_telling(
            dir.path(),
            make(&dir),
            1000,
            1000,
            listener,
        ));
        // A leads the first batch and is held after its sync.
        let first = first_batch_held(&store, in_sync).await;
        // B queues behind it (polled once by hand, never again), then C.
        let mut cx = Context::from_waker(Waker::noop());
        let mut second = Box::pin({
            let store = store.clone();
            async move { store.send(new_document(2, &[COMMUNE_A])).await }
        });
        assert!(second.as_mut().poll(&mut cx).is_pending(), "{name}");
        let mut third = Box::pin({
            let store = store.clone();
            async move { store.send(new_document(3, &[COMMUNE_A])).await }
        });
        assert!(
            matches!(third.as_mut().poll(&mut cx), Poll::Pending),
            "{name}"
        );
        let third = tokio::spawn(third);
        // A finishes and hands the role to B, which is never polled again.
        release.send(()).expect("release");
        let outcome = first.await.expect("task").expect("send");
        assert!(matches!(outcome, SendOutcome::Accepted(..)), "{name}");
        drop(second);
        // A guard, not a measurement: without a leader C would wait forever.
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), third)
            .await
            .unwrap_or_else(|_| panic!("{name}: no leader took the queued writes"))
            .expect("task")
            .expect("send");
        let SendOutcome::Accepted(..) = outcome else {
            panic!("{name}: expected Accepted, got {outcome:?}")
        };
    }
}

/// Holds the first batch's leader after its sync, until released, and
/// counts the jobs of every sync.
struct BatchesCounted {
    held: FirstSyncHeld,
    jobs: std::sync::Mutex<Vec<usize>>,
}

impl CommitListener for BatchesCounted {
    fn committed(&self, _events: Vec<StoredEvent>) {}

    fn synced(&self, jobs: usize, sync: std::time::Duration) {
        self.jobs.lock().expect("lock").push(jobs);
        self.held.synced(jobs, sync);
    }
}

/// The service's sealer, except that it refuses to seal the document
/// numbered `refused`: a job that fails after it has written (the arrival
/// counters come before the receipt).
struct RefusingSealer {
    inner: Notary,
    refused: u64,
}

impl Sealer for RefusingSealer {
    fn seal(&self, accepted: &Accepted<'_>) -> Result<Sealed, Error> {
        if accepted.number == self.refused {
            return Err(Error::invalid("document", "refused by the test's sealer"));
        }
        self.inner.seal(accepted)
    }

    fn seal_status(&self, accepted: &AcceptedStatus<'_>) -> Result<Sealed, Error> {
        self.inner.seal_status(accepted)
    }

    fn seal_checkpoint(&self, size: u64, root: [u8; 32], at_ms: i64) -> Result<Vec<u8>, Error> {
        self.inner.seal_checkpoint(size, root, at_ms)
    }
}

/// A batch is applied in one engine transaction, each job apart: a send
/// refused in the middle of a batch, after it had written its arrival
/// numbers, leaves nothing of itself and fails none of the others, whose
/// arrival numbers have no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_refused_inside_a_batch_leaves_nothing_and_fails_no_other() {
    use std::future::Future;
    use std::task::{Context, Waker};
    for (name, make) in ENGINES {
        let dir = Place::new();
        let (entered, in_sync) = std::sync::mpsc::sync_channel(1);
        let (release, released) = std::sync::mpsc::channel();
        let listener = Arc::new(BatchesCounted {
            held: FirstSyncHeld {
                entered,
                release: std::sync::Mutex::new(Some(released)),
            },
            jobs: std::sync::Mutex::new(Vec::new()),
        });
        let service = Arc::new(ServiceKey::load_or_create(dir.path()).expect("service key"));
        let sealer = Arc::new(RefusingSealer {
            inner: Notary::new(service),
            refused: 3,
        });
        let store = Arc::new(open_store_sealed(
            dir.path(),
            make(&dir),
            1000,
            1000,
            listener.clone(),
            sealer,
        ));
        // The first batch's leader is held after its sync, so that the
        // sends below queue up behind it and make the second batch.
        let first = first_batch_held(&store, in_sync).await;
        let queued = [
            new_document(2, &[COMMUNE_A]),
            new_document(3, &[COMMUNE_A]), // refused by the sealer
            new_document(4, &[COMMUNE_A]),
            new_document(2, &[COMMUNE_A]), // number 2 again: taken
            new_document(5, &[COMMUNE_A]),
        ];
        let mut cx = Context::from_waker(Waker::noop());
        let mut tasks = Vec::new();
        for new in queued {
            let store = store.clone();
            let mut send = Box::pin(async move { store.send(new).await });
            // Polled once by hand: queued now, in this order.
            assert!(send.as_mut().poll(&mut cx).is_pending(), "{name}");
            tasks.push(tokio::spawn(send));
        }
        release.send(()).expect("release");
        assert!(matches!(
            first.await.expect("task").expect("send"),
            SendOutcome::Accepted(..)
        ));
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        assert_eq!(
            *listener.jobs.lock().expect("lock"),
            [1, 5],
            "{name}: one batch after the first"
        );
        assert!(
            matches!(outcomes[0], Ok(SendOutcome::Accepted(..))),
            "{name}: {outcomes:?}"
        );
        match &outcomes[1] {
            Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "document", "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            matches!(outcomes[2], Ok(SendOutcome::Accepted(..))),
            "{name}"
        );
        assert!(
            matches!(outcomes[3], Ok(SendOutcome::NumberTaken(..))),
            "{name}"
        );
        assert!(
            matches!(outcomes[4], Ok(SendOutcome::Accepted(..))),
            "{name}"
        );

        let inbox = store.inbox_page(&code(COMMUNE_A), None, 10).expect("inbox");
        let numbers: Vec<u64> = inbox.items.iter().map(|i| i.arrival_number).collect();
        assert_eq!(numbers, [4, 3, 2, 1], "{name}: newest first, no gap");
        assert_eq!(store.archive_size().expect("size"), 4, "{name}");
        let events = store.events(&code(COMMUNE_A), 0, 100, 100).expect("events");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "{name}");
        store.close().await.expect("close");
    }
}

//! What is particular to the PostgreSQL engine (everything else it shares
//! with sled is in `store`): it refuses a server that would acknowledge
//! commits before they are durable, serialises writers across front ends,
//! migrates once however many open together, keeps a snapshot while
//! writes go on, works from any thread, and says what failed without
//! showing a password. Each test has a database of its own on the cluster
//! that `bash tests/run` starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use lienthong::store::engine::{Engine, Order, Space};
use lienthong::store::postgres::{PostgresEngine, PostgresUrl};
use lienthong::store::{self, StoreEngine, StoreOptions};

use crate::common::postgres::{execute, TestDatabase};
use crate::common::{directive, inbox_all, proof_that_verifies, TestServer};
use crate::lifecycle::{change, message};
use lienthong::lifecycle::Code;

fn open(database: &TestDatabase) -> PostgresEngine {
    PostgresEngine::open(&database.url()).expect("open the PostgreSQL engine")
}

fn error_of(url: &PostgresUrl) -> String {
    match PostgresEngine::open(url) {
        Ok(_) => panic!("the engine opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_server_that_acknowledges_before_the_disk_is_refused() {
    let database = TestDatabase::create();
    execute(
        "postgres",
        &format!(
            "ALTER DATABASE {} SET synchronous_commit = off",
            database.name
        ),
    )
    .expect("alter");
    let refused = error_of(&database.url());
    assert!(
        refused.contains("synchronous_commit = off") && refused.contains("Set it to on"),
        "{refused}"
    );

    // Set by the connection's options in the URL, the same.
    execute(
        "postgres",
        &format!("ALTER DATABASE {} RESET synchronous_commit", database.name),
    )
    .expect("reset");
    let url = PostgresUrl::parse(&format!(
        "{}?options=-c%20synchronous_commit%3Doff",
        database.url_text()
    ))
    .expect("url");
    assert!(error_of(&url).contains("synchronous_commit = off"));

    // `local` waits for this machine's disk, as the embedded store does.
    let url = PostgresUrl::parse(&format!(
        "{}?options=-c%20synchronous_commit%3Dlocal",
        database.url_text()
    ))
    .expect("url");
    PostgresEngine::open(&url).expect("synchronous_commit = local is accepted");
}

/// Two engines are two front ends. Each commits read-then-increment
/// transactions from its own thread at the same time; every value is
/// handed out once and the counter ends at the total: the advisory lock
/// serialises writers across processes as the committer does within one.
#[test]
fn two_front_ends_never_lose_an_increment() {
    const EACH: u64 = 150;
    let database = TestDatabase::create();
    let front_ends = [Arc::new(open(&database)), Arc::new(open(&database))];
    let threads: Vec<_> = front_ends
        .iter()
        .enumerate()
        .map(|(i, engine)| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    engine
                        .transact(&mut |txn| {
                            let last = match txn.get(Space::Counters, b"arrival")? {
                                Some(v) => u64::from_be_bytes(v.try_into().expect("8 bytes")),
                                None => 0,
                            };
                            let next = last + 1;
                            txn.put(Space::Counters, b"arrival", &next.to_be_bytes())?;
                            // Who got which number: each once.
                            txn.put(Space::Inbox, &next.to_be_bytes(), &[i as u8])
                        })
                        .expect("commit");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("front end");
    }
    let counter = front_ends[0]
        .get(Space::Counters, b"arrival")
        .expect("get")
        .expect("counter");
    assert_eq!(counter, (2 * EACH).to_be_bytes());
    let given = front_ends[1]
        .scan(Space::Inbox, &[], None, Order::Ascending, usize::MAX)
        .expect("scan");
    let numbers: Vec<u64> = given
        .iter()
        .map(|(k, _)| u64::from_be_bytes(k.clone().try_into().expect("8 bytes")))
        .collect();
    assert_eq!(numbers, (1..=2 * EACH).collect::<Vec<_>>());
    // Both front ends took part.
    for i in 0..2u8 {
        assert!(given.iter().any(|(_, v)| v == &[i]), "front end {i}");
    }
}

#[test]
fn migrations_run_once_however_many_front_ends_start_together() {
    let database = TestDatabase::create();
    let url = database.url();
    let starting: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresEngine::open(&url).map(drop))
        })
        .collect();
    for start in starting {
        start.join().expect("thread").expect("open");
    }
    let again = open(&database);
    again
        .transact(&mut |txn| txn.put(Space::Meta, b"k", b"v"))
        .expect("commit");
    drop(again);
    open(&database);
    execute(
        &database.name,
        &format!(
            "DO $$ BEGIN
               IF (SELECT count(*) FROM schema_migrations) <> {latest}
                  OR (SELECT max(version) FROM schema_migrations) <> {latest} THEN
                 RAISE EXCEPTION 'migrations applied more than once or not at all';
               END IF;
               IF (SELECT count(*) FROM information_schema.tables
                   WHERE table_schema = 'public' AND table_name <> 'schema_migrations') <> {spaces} THEN
                 RAISE EXCEPTION 'not one table per keyspace';
               END IF;
             END $$",
            latest = PostgresEngine::schema_version(),
            spaces = Space::ALL.len()
        ),
    )
    .expect("one row per migration, one table per keyspace");

    // A database that a newer build upgraded is not written by this one.
    execute(
        &database.name,
        "INSERT INTO schema_migrations (version) VALUES (9999)",
    )
    .expect("insert");
    let refused = error_of(&url);
    assert!(
        refused.contains("schema migration 9999") && refused.contains("newer"),
        "{refused}"
    );
}

/// The snapshot holds the instant it was taken, over several pages of
/// every table, while keys before and after the reader's position are
/// changed, removed and added.
#[test]
fn a_snapshot_is_the_instant_it_was_taken_while_writes_go_on() {
    let database = TestDatabase::create();
    let engine = open(&database);
    let key = |i: u32| i.to_be_bytes().to_vec();
    engine
        .transact(&mut |txn| {
            for i in 0..1500 {
                txn.put(Space::Documents, &key(i), b"before")?;
            }
            txn.put(Space::Meta, b"schema", b"x")?;
            txn.put(Space::Report, b"r", b"before")
        })
        .expect("fill");
    let mut expected: BTreeMap<(usize, Vec<u8>), Vec<u8>> = BTreeMap::new();
    for i in 0..1500 {
        expected.insert((Space::Documents.index(), key(i)), b"before".to_vec());
    }
    expected.insert((Space::Meta.index(), b"schema".to_vec()), b"x".to_vec());
    expected.insert((Space::Report.index(), b"r".to_vec()), b"before".to_vec());

    let snapshot = engine.snapshot().expect("snapshot");
    let mut seen = BTreeMap::new();
    for (round, entry) in (0u32..).zip(snapshot) {
        let (space, (k, v)) = entry.expect("entry");
        assert!(
            seen.insert((space.index(), k), v).is_none(),
            "a key given twice"
        );
        // Writes between the reader's steps, everywhere.
        if round < 40 {
            engine
                .transact(&mut |txn| {
                    txn.put(Space::Documents, &key(round * 37), b"after")?;
                    txn.delete(Space::Documents, &key(1499 - round))?;
                    txn.put(Space::Documents, &key(10_000 + round), b"new")?;
                    txn.put(Space::Report, b"r", b"after")?;
                    txn.put(Space::Meta, b"new", b"new")
                })
                .expect("write meanwhile");
        }
    }
    assert_eq!(seen, expected);
    // The writes are there, for a reader after them.
    assert_eq!(
        engine.get(Space::Report, b"r").expect("get"),
        Some(b"after".to_vec())
    );
}

/// The engine's calls block: from a tokio worker of either kind of runtime
/// (as async handlers call it) they must neither panic nor deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_works_from_a_multi_thread_runtime() {
    exercise_in_a_runtime();
}

#[tokio::test]
async fn it_works_from_a_current_thread_runtime() {
    exercise_in_a_runtime();
}

fn exercise_in_a_runtime() {
    let database = TestDatabase::create();
    let engine = open(&database);
    engine
        .transact(&mut |txn| {
            txn.put(Space::Events, b"a", b"1")?;
            assert_eq!(txn.get(Space::Events, b"a")?, Some(b"1".to_vec()));
            txn.put(Space::Events, b"b", b"2")
        })
        .expect("commit");
    engine.sync().expect("sync");
    assert_eq!(
        engine
            .scan(Space::Events, b"a", Some(b"c"), Order::Descending, 10)
            .expect("scan")
            .len(),
        2
    );
    assert_eq!(engine.snapshot().expect("snapshot").count(), 2);
}

#[test]
fn what_failed_is_said_without_the_password() {
    // Nothing listens on port 1.
    let url = PostgresUrl::parse("postgres://lienthong:sekret@127.0.0.1:1/nowhere").expect("url");
    let refused = error_of(&url);
    assert!(
        refused.contains("cannot connect to PostgreSQL at 127.0.0.1:1 database nowhere"),
        "{refused}"
    );
    assert!(!refused.contains("sekret"), "{refused}");
    assert!(!format!("{url:?}").contains("sekret"));
    assert_eq!(
        PostgresUrl::redacted("postgres://u:sekret@h:5/d?password=sekret&sslmode=disable"),
        "postgres://u:***@h:5/d?password=***&sslmode=disable"
    );

    for wrong in ["mysql://u:sekret@h/d", "./data/store", "sled"] {
        let refused = PostgresUrl::parse(wrong).expect_err(wrong);
        assert!(refused.contains("postgres://"), "{refused}");
        assert!(!refused.contains("sekret"), "{refused}");
    }
    PostgresUrl::parse("postgresql://h/d").expect("postgresql:// too");
}

/// `serve --store postgres://…`, through the real gRPC API: a send, the
/// recipient's mailbox, a status change, and an archive proof checked
/// against the signed checkpoint; then `archive audit --store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_sends_reads_changes_and_proves() {
    let database = TestDatabase::create();
    let url = database.url();
    let server = TestServer::with_config(|c| {
        c.store.engine = StoreEngine::Postgres(url.clone());
        c.store.checkpoint_every = 1;
    })
    .await;
    // Nothing of the store in the data directory: it is in the database.
    assert!(!server.dir.path().join("store").exists());

    let mut noi_vu = server.client("phong-noi-vu").await;
    let id = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await
        .id;
    let mut van_nham = server.client("xa-van-nham").await;
    let inbox = inbox_all(&mut van_nham).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].arrival_number, 1);
    assert_eq!(inbox[0].document.as_ref().expect("summary").id, id);

    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &id, Code::Registered),
    )
    .await
    .expect("status change");
    let inbox = inbox_all(&mut van_nham).await;
    assert_eq!(inbox[0].status, Code::Registered as i32);

    proof_that_verifies(&server, &mut van_nham, &id).await;

    let report = lienthong::archive::audit::audit_store(
        server.dir.path(),
        &StoreEngine::Postgres(url.clone()),
    )
    .expect("audit");
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert!(report.leaves >= 2);

    // The documents are rows of the database's tables.
    let engine = store::open_engine(
        server.dir.path(),
        &StoreOptions {
            engine: StoreEngine::Postgres(url),
            ..StoreOptions::default()
        },
    )
    .expect("engine");
    assert_eq!(
        engine
            .scan(Space::Documents, &[], None, Order::Ascending, 10)
            .expect("scan")
            .len(),
        1
    );
}

/// `bench load --store URL --front-ends 3` starts three front ends on the
/// database and spreads its clients over them: every one acknowledges sends,
/// and every acknowledged document is in the database.
#[test]
fn bench_spreads_its_clients_over_several_front_ends() {
    let database = TestDatabase::create();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["bench", "load", "--json", "--clients", "6", "--count", "60"])
        .args(["--size", "100", "--front-ends", "3", "--store"])
        .arg(database.url_text())
        .output()
        .expect("run bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["documents"], 60, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let per_server: Vec<u64> = report["per_server"]
        .as_array()
        .expect("per_server")
        .iter()
        .filter_map(|n| n.as_u64())
        .collect();
    assert_eq!(per_server.len(), 3, "{report}");
    assert!(per_server.iter().all(|n| *n > 0), "{report}");
    assert_eq!(per_server.iter().sum::<u64>(), 60);
    assert!(report["server_cpu_seconds"].as_f64().is_some(), "{report}");

    let engine = open(&database);
    assert_eq!(
        engine
            .scan(Space::Documents, &[], None, Order::Ascending, 100)
            .expect("scan")
            .len(),
        60
    );
}

/// Several front ends of its own need a store they can share.
#[test]
fn bench_refuses_several_front_ends_without_a_shared_store() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["bench", "load", "--count", "1", "--front-ends", "2"])
        .output()
        .expect("run bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--store"), "{stderr}");
}

//! `lienthong migrate`: a demo deployment's embedded store copied into
//! PostgreSQL and verified; run again (complete, or after an interrupted
//! copy) it ends in the same state; a server then serves the migrated
//! documents and proofs; a database holding another deployment, or
//! documents accepted since, is refused; so is a store a server holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use lienthong::archive::audit;
use lienthong::pb;
use lienthong::pki::{self, PkiPaths};
use lienthong::store::engine::{Engine, Space, Walk};
use lienthong::store::postgres::PostgresEngine;
use lienthong::store::sled::{SledEngine, SledOptions};
use lienthong::store::StoreEngine;

use crate::common::postgres::{execute, TestDatabase};
use crate::common::{directive, proof_that_verifies_with, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

fn migrate(data: &Path, url: &str, json: bool) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(["migrate", "--from"])
        .arg(data)
        .args(["--to", url]);
    if json {
        command.arg("--json");
    }
    command.output().expect("run lienthong migrate")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A migrate that succeeded, its JSON summary.
fn migrated(data: &Path, url: &str) -> serde_json::Value {
    let output = migrate(data, url, true);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

/// A migrate that was refused: its stderr.
fn refused(data: &Path, url: &str) -> String {
    let output = migrate(data, url, false);
    assert!(!output.status.success(), "accepted: {}", stdout(&output));
    stderr(&output)
}

/// Every entry of every keyspace of `engine`.
fn contents(engine: &dyn Engine) -> BTreeMap<(usize, Vec<u8>), Vec<u8>> {
    let mut all = BTreeMap::new();
    for space in Space::ALL {
        for entry in Walk::new(engine, space, 1000) {
            let (key, value) = entry.expect("read");
            all.insert((space.index(), key), value);
        }
    }
    all
}

fn sled_contents(data: &Path) -> BTreeMap<(usize, Vec<u8>), Vec<u8>> {
    let engine = SledEngine::open(
        &data.join("store"),
        &SledOptions {
            cache_bytes: 1 << 20,
        },
    )
    .expect("open the sled store");
    contents(&engine)
}

fn count(all: &BTreeMap<(usize, Vec<u8>), Vec<u8>>, space: Space) -> u64 {
    all.keys().filter(|(s, _)| *s == space.index()).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_deployment_moves_to_postgresql_verified_and_serves_from_there() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("demo");
    lienthong::demo::demo(&data, 30, 3, Arc::new(|_| {}))
        .await
        .expect("the demo runs");
    let source = sled_contents(&data);
    let source_audit = audit::audit(&data).expect("audit the sled store");
    assert!(source_audit.problem.is_none() && source_audit.leaves > 30);
    let root = hex::encode(source_audit.root.expect("a root"));

    let database = TestDatabase::create();
    let url = database.url_text();
    let first = migrated(&data, &url);
    assert_eq!(first["target_leaves_before"], 0);
    assert_eq!(first["copied"], source.len() as u64);
    assert_eq!(first["removed"], 0);
    for space in Space::ALL {
        assert_eq!(
            first["entries"][space.name()],
            count(&source, space),
            "{}",
            space.name()
        );
    }
    assert_eq!(first["documents"], count(&source, Space::Documents));
    assert_eq!(first["archive"]["leaves"], source_audit.leaves);
    assert_eq!(first["archive"]["checkpoints"], source_audit.checkpoints);
    assert_eq!(first["archive"]["root"], root.as_str());
    // The target holds exactly the source, and audits to the same root.
    let postgres = StoreEngine::Postgres(database.url());
    {
        let target = PostgresEngine::open(&database.url()).expect("open the target");
        assert_eq!(contents(&target), source);
    }
    let target_audit = audit::audit_store(&data, &postgres).expect("audit the target");
    assert!(target_audit.problem.is_none());
    assert_eq!(target_audit.root, source_audit.root);

    // Again: the same state, verified again.
    let again = migrated(&data, &url);
    assert_eq!(again["target_leaves_before"], source_audit.leaves);
    assert_eq!(again["removed"], 0);
    assert_eq!(again["entries"], first["entries"]);
    assert_eq!(again["archive"], first["archive"]);

    // An interrupted copy: the keyspaces are copied in order, so the first
    // ones are whole, one is partly there and the rest are empty. Plus a
    // row the source does not have (an index entry since removed). The
    // migrate completes it.
    execute(
        &database.name,
        "DELETE FROM archive_leaves WHERE key >= '\\x0000000000000010'::bytea;
         DELETE FROM archive_nodes; DELETE FROM archive_index; DELETE FROM checkpoints;
         DELETE FROM counters; DELETE FROM idempotency; DELETE FROM numbering;
         DELETE FROM statuses; DELETE FROM deadlines; DELETE FROM unread;
         DELETE FROM report; DELETE FROM attachment_files;
         INSERT INTO unread (key, value) VALUES ('\\x00ff'::bytea, '\\x01'::bytea);",
    )
    .expect("cut the copy short");
    let completed = migrated(&data, &url);
    assert_eq!(completed["target_leaves_before"], 16);
    assert_eq!(completed["removed"], 1);
    assert_eq!(completed["entries"], first["entries"]);
    assert_eq!(completed["archive"], first["archive"]);
    {
        let target = PostgresEngine::open(&database.url()).expect("open the target");
        assert_eq!(contents(&target), source);
    }

    // The text output says what was verified, and what stays in the data
    // directory.
    let text = migrate(&data, &url, false);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(text.contains(&format!("root {root}")), "{text}");
    assert!(
        text.contains("attachments") && text.contains("--store") && text.contains("fallback"),
        "{text}"
    );

    // A server on the migrated database, with the demo's data directory
    // (PKI, service key, attachments), serves its documents and proofs.
    let url_parsed = database.url();
    let mut server = TestServer::with_config(|c| {
        c.data_dir = data.clone();
        c.store.engine = StoreEngine::Postgres(url_parsed);
    })
    .await;
    let pki = PkiPaths::new(data.join("pki"));
    let mut committee = lienthong::client::connect_as(&server.url(), &pki.dir, "ubnd-huyen")
        .await
        .expect("connect");
    let (inbox, _) = lienthong::client::inbox_pages(&committee, String::new(), 0, true)
        .await
        .expect("inbox");
    let first_id = inbox
        .last()
        .and_then(|e| e.document.as_ref())
        .map(|d| d.id.clone())
        .expect("the committee received documents in the demo");
    let document = committee
        .get_document(pb::GetDocumentRequest {
            id: first_id.clone(),
            ..Default::default()
        })
        .await
        .expect("the migrated document reads")
        .into_inner();
    let stored = lienthong::store::DocId::parse(&first_id)
        .and_then(|id| source.get(&(Space::Documents.index(), id.0.to_vec())))
        .expect("in the source");
    let stored: lienthong::store::StoredDocument =
        prost::Message::decode(stored.as_slice()).expect("a stored document");
    assert_eq!(document.document_bytes, stored.document_bytes);
    let proof = proof_that_verifies_with(&pki, &mut committee, &first_id).await;

    // The demo made no checkpoint: the proof's was signed on PostgreSQL,
    // and the source has none of that size. Migrating over it is refused.
    assert_eq!(source_audit.checkpoints, 0);
    server.stop().await;
    let message = refused(&data, &url);
    assert!(
        message.contains(&format!(
            "holds a different deployment: it holds the checkpoint of tree size {}, which the \
             source does not",
            proof.tree_size
        )),
        "{message}"
    );

    // A document accepted on PostgreSQL: migrating the (older) source over
    // it again is refused, and nothing is written.
    server.restart().await;
    let mut noi_vu = lienthong::client::connect_as(&server.url(), &pki.dir, "phong-noi-vu")
        .await
        .expect("connect");
    let signer = pki::find_signing_key(&pki, "phong-noi-vu").expect("signing key");
    let request = lienthong::client::send_request(
        directive("phong-noi-vu", &["ubnd-huyen"], 0),
        Vec::new(),
        None,
        &signer,
    )
    .expect("sign");
    noi_vu.send(request).await.expect("sent on PostgreSQL");
    server.stop().await;
    let before = {
        let target = PostgresEngine::open(&database.url()).expect("open the target");
        contents(&target)
    };
    let message = refused(&data, &url);
    assert!(
        message.contains(&format!(
            "holds a different deployment: its archive holds leaf {}, which the source's does not",
            source_audit.leaves
        )),
        "{message}"
    );
    {
        let target = PostgresEngine::open(&database.url()).expect("open the target");
        assert_eq!(contents(&target), before, "nothing was written");
    }

    // Another deployment's database is refused at its first leaf.
    let other = TestDatabase::create();
    let other_url = other.url();
    let mut elsewhere = TestServer::with_config(|c| {
        c.store.engine = StoreEngine::Postgres(other_url);
    })
    .await;
    let mut sender = elsewhere.client("phong-noi-vu").await;
    elsewhere
        .send(&mut sender, directive("phong-noi-vu", &["ubnd-huyen"], 7))
        .await;
    elsewhere.stop().await;
    let message = refused(&data, &other.url_text());
    assert!(
        message.contains(
            "the target database holds a different deployment: its archive_leaves leaf 0 \
             differs from the source's"
        ),
        "{message}"
    );
    assert!(message.contains("Nothing was written"), "{message}");

    // The sled store was only read.
    assert_eq!(sled_contents(&data), source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_of_a_running_server_is_not_migrated() {
    let server = TestServer::start().await;
    let mut client = server.client("phong-noi-vu").await;
    server
        .send(&mut client, directive("phong-noi-vu", &["ubnd-huyen"], 1))
        .await;
    let database = TestDatabase::create();
    let message = refused(server.dir.path(), &database.url_text());
    assert!(
        message.contains("is in use by another process: stop the server"),
        "{message}"
    );
    // Nothing reached the target.
    let target = PostgresEngine::open(&database.url()).expect("open the target");
    assert!(contents(&target).is_empty());
}

#[test]
fn a_directory_without_a_store_is_named() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The source is looked at first: no database is reached.
    let output = migrate(dir.path(), "postgres://nobody@127.0.0.1:1/none", false);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("has no store/ directory"),
        "{}",
        stderr(&output)
    );
    // And none is made there.
    assert!(!dir.path().join("store").exists());
}

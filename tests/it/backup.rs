//! Online backup and restore: a snapshot of the store read while writes go
//! on, a backup taken from the real server during sends and restored into
//! a new directory, damaged files refused, and who may take one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use lienthong::client;
use lienthong::pb;
use lienthong::pb::operations_client::OperationsClient;
use lienthong::store::engine::{Engine, Space};
use lienthong::store::{self, StoreOptions};

use crate::common::{directive, numbered_pdf, serve_process, KeepSending, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

fn lienthong(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run lienthong")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok_json(output: Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON document on stdout")
}

/// A key to write, or with `None` to remove.
type Write = (Space, Vec<u8>, Option<Vec<u8>>);

fn put(engine: &dyn Engine, writes: &[Write]) {
    engine
        .transact(&mut |txn| {
            for (space, key, value) in writes {
                match value {
                    Some(value) => txn.put(*space, key, value)?,
                    None => txn.delete(*space, key)?,
                }
            }
            Ok(())
        })
        .expect("transaction");
}

fn key(n: u32) -> Vec<u8> {
    format!("k{n:05}").into_bytes()
}

/// The engine's snapshot, read slowly while transactions change keys the
/// reader has passed, keys ahead of it, in keyspaces before and after the
/// one it is in, adding and removing keys: it gives exactly the state of
/// its instant, each key once.
#[test]
fn a_snapshot_reads_the_store_as_it_was_while_writes_go_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = store::open_engine(dir.path(), &StoreOptions::default()).expect("engine");
    let mut initial = Vec::new();
    for n in 0..5 {
        initial.push((Space::Meta, key(n), Some(b"meta".to_vec())));
    }
    for n in 0..2000 {
        initial.push((
            Space::Documents,
            key(n),
            Some(format!("doc {n}").into_bytes()),
        ));
    }
    for n in 0..10 {
        initial.push((Space::Inbox, key(n), Some(b"inbox".to_vec())));
    }
    put(engine.as_ref(), &initial);
    let expected: BTreeMap<(usize, Vec<u8>), Vec<u8>> = initial
        .iter()
        .map(|(s, k, v)| ((s.index(), k.clone()), v.clone().unwrap_or_default()))
        .collect();

    let mut snapshot = engine.snapshot().expect("snapshot");
    let mut seen: Vec<(Space, Vec<u8>, Vec<u8>)> = Vec::new();
    // Into the documents, past the first chunk the reader takes.
    for _ in 0..600 {
        let (space, (k, v)) = snapshot.next().expect("more").expect("read");
        seen.push((space, k, v));
    }
    assert_eq!(seen.last().map(|s| s.0), Some(Space::Documents));
    let changed = b"changed".to_vec();
    put(
        engine.as_ref(),
        &[
            (Space::Meta, key(1), Some(changed.clone())), // passed keyspace
            (Space::Meta, key(9), Some(changed.clone())), // new, passed keyspace
            (Space::Documents, key(3), Some(changed.clone())), // passed key
            (Space::Documents, key(1999), Some(changed.clone())), // ahead
            (Space::Documents, key(1500), None),          // removed ahead
            (Space::Documents, key(2500), Some(changed.clone())), // new ahead
            (Space::Inbox, key(2), None),                 // later keyspace
            (Space::Inbox, key(20), Some(changed.clone())), // new, later keyspace
        ],
    );
    // The same keys again, and more, mid-way through the rest.
    for _ in 0..1000 {
        let (space, (k, v)) = snapshot.next().expect("more").expect("read");
        seen.push((space, k, v));
    }
    put(
        engine.as_ref(),
        &[
            (Space::Documents, key(1999), Some(b"again".to_vec())),
            (Space::Documents, key(1998), None),
            (Space::Inbox, key(3), Some(changed.clone())),
        ],
    );
    for entry in snapshot {
        let (space, (k, v)) = entry.expect("read");
        seen.push((space, k, v));
    }

    let mut got = BTreeMap::new();
    let mut last_space = 0;
    for (space, k, v) in seen {
        assert!(space.index() >= last_space, "keyspaces in order");
        last_space = space.index();
        assert!(
            got.insert((space.index(), k.clone()), v).is_none(),
            "key {:?} of {} given twice",
            String::from_utf8_lossy(&k),
            space.name()
        );
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the snapshot differs from its instant");

    // A snapshot taken now sees the writes.
    let now: BTreeMap<_, _> = engine
        .snapshot()
        .expect("snapshot")
        .map(|e| e.expect("read"))
        .map(|(s, (k, v))| ((s.index(), k), v))
        .collect();
    assert_eq!(
        now.get(&(Space::Documents.index(), key(1999))),
        Some(&b"again".to_vec())
    );
    assert!(!now.contains_key(&(Space::Documents.index(), key(1500))));
}

/// Everything the restored directory's server shows of one document, from
/// its sender and its recipient: `None` if neither knows it.
async fn shown(
    sender: &mut crate::common::Client,
    recipient: &mut crate::common::Client,
    outbox: &BTreeSet<String>,
    inbox: &BTreeSet<String>,
    id: &str,
) -> Option<pb::GetDocumentResponse> {
    let get = |id: &str| pb::GetDocumentRequest {
        id: id.into(),
        include_content: true,
    };
    let by_sender = sender.get_document(get(id)).await;
    let by_recipient = recipient.get_document(get(id)).await;
    match (by_sender, by_recipient) {
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), tonic::Code::NotFound, "{id}");
            assert_eq!(b.code(), tonic::Code::NotFound, "{id}");
            assert!(
                !outbox.contains(id) && !inbox.contains(id),
                "{id} half there"
            );
            None
        }
        (Ok(_), Ok(document)) => {
            assert!(outbox.contains(id) && inbox.contains(id), "{id} half there");
            Some(document.into_inner())
        }
        (a, b) => panic!(
            "{id} is half there: sender {:?}, recipient {:?}",
            a.err(),
            b.err()
        ),
    }
}

/// The backup of a running server taken while a client sends, restored
/// into a new directory: the audit passes, every send acknowledged before
/// the backup began is there with its attachment, and each send is there
/// whole or not at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_during_sends_restores_every_send_acknowledged_before_it() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = serve_process(data.path(), &[]);
    let pki = data.path().join("pki");
    let mut sending = KeepSending::start(&server.url, &pki, "phong-noi-vu", "xa-van-nham", 1).await;
    sending.until(20).await;

    let out = data.path().join("backup.lienthong");
    let args = [
        "backup",
        "--as",
        "admin",
        "--include-secrets",
        "--json",
        "--out",
    ];
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg(&out)
        .env("LIENTHONG_SERVER", &server.url)
        .env("LIENTHONG_PKI", &pki)
        .env("XDG_CONFIG_HOME", data.path());
    // Everything acknowledged before the backup began.
    let before: Vec<String> = sending.acked.borrow().clone();
    let backup = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("backup ran")
        .expect("run lienthong");
    let during = sending.count();
    let sent = sending.stop().await;
    let summary = ok_json(backup);
    let bytes = std::fs::read(&out).expect("the backup file");
    assert_eq!(summary["bytes"], bytes.len() as u64);
    let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    assert_eq!(
        summary["sha256"], sha256,
        "the SHA-256 printed is the file's"
    );
    assert!(summary["attachments"].as_u64() >= Some(before.len() as u64));
    assert!(during >= before.len());

    // A backup never overwrites a file.
    let again = Command::new(BIN)
        .args(args)
        .arg(&out)
        .env("LIENTHONG_SERVER", &server.url)
        .env("LIENTHONG_PKI", &pki)
        .output()
        .expect("run lienthong");
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("ALREADY_EXISTS"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&out).expect("the backup file"), bytes);
    drop(server);

    let restored = data.path().join("restored");
    let restore = lienthong(&[
        "restore",
        "--json",
        "--from",
        out.to_str().expect("path"),
        "--data",
        restored.to_str().expect("path"),
    ]);
    let summary = ok_json(restore);
    assert_eq!(
        summary["audit"]["problem"],
        serde_json::Value::Null,
        "{summary}"
    );
    assert!(summary["audit"]["leaves"].as_u64() >= Some(before.len() as u64));
    assert_eq!(summary["include_secrets"], true);

    // The restored directory serves, with its own keys and certificates.
    let server = serve_process(&restored, &[]);
    let pki = restored.join("pki");
    let mut sender = client::connect_as(&server.url, &pki, "phong-noi-vu")
        .await
        .expect("connect");
    let mut recipient = client::connect_as(&server.url, &pki, "xa-van-nham")
        .await
        .expect("connect");
    let outbox: BTreeSet<String> = client::outbox_pages(&sender, String::new(), 0, true)
        .await
        .expect("outbox")
        .0
        .into_iter()
        .filter_map(|e| e.document.map(|d| d.id))
        .collect();
    let inbox: BTreeSet<String> = crate::common::inbox_all(&mut recipient)
        .await
        .into_iter()
        .filter_map(|e| e.document.map(|d| d.id))
        .collect();
    assert_eq!(
        outbox, inbox,
        "the sender's outbox and the recipient's inbox agree"
    );
    let mut present = 0;
    for (n, id) in sent.iter().enumerate() {
        let Some(document) = shown(&mut sender, &mut recipient, &outbox, &inbox, id).await else {
            assert!(
                !before.contains(id),
                "{id} was acknowledged before the backup"
            );
            continue;
        };
        present += 1;
        let number = document.document.as_ref().map(|d| d.number);
        assert_eq!(number, Some(n as u64 + 1));
        let content: Vec<&[u8]> = document
            .attachments
            .iter()
            .map(|a| &a.content[..])
            .collect();
        assert_eq!(
            content,
            vec![&numbered_pdf(n as u64 + 1).content[..]],
            "{id}"
        );
    }
    assert!(present >= before.len());
    assert_eq!(
        present,
        outbox.len(),
        "no document is there that was not sent"
    );
}

/// The bytes of a backup of a small server, as the API streams them.
async fn backup_bytes(server: &TestServer, include_secrets: bool) -> Vec<u8> {
    let mut operations = OperationsClient::new(server.channel("admin", None).await);
    let mut stream = operations
        .backup(pb::BackupRequest { include_secrets })
        .await
        .expect("backup")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend(chunk.data);
    }
    bytes
}

fn restore(file: &Path, data: &Path) -> Output {
    lienthong(&[
        "restore",
        "--from",
        file.to_str().expect("path"),
        "--data",
        data.to_str().expect("path"),
    ])
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// A backup cut short or changed anywhere is refused with a message that
/// says so, and the target stays empty; a target that is not empty is
/// refused; a backup without secrets holds no private key.
#[tokio::test]
async fn a_cut_or_damaged_backup_is_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let mut client = server.client("phong-noi-vu").await;
    for n in 1..=3 {
        let request = server.signed(
            directive("phong-noi-vu", &["xa-van-nham"], n),
            vec![numbered_pdf(n)],
            None,
        );
        client.send(request).await.expect("send");
    }
    let bytes = backup_bytes(&server, false).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup");
    let target = dir.path().join("target");
    std::fs::create_dir(&target).expect("mkdir");

    let changed = |at: usize| {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        b
    };
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "cut in the middle",
            bytes[..bytes.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "without its last byte",
            bytes[..bytes.len() - 1].to_vec(),
            "truncated",
        ),
        (
            "with its checksum changed",
            changed(bytes.len() - 1),
            "the file is damaged",
        ),
        // Wherever it falls, a changed byte is refused (what it hits
        // decides how: a length, a record's type, or the checksum).
        (
            "with a byte changed",
            changed(bytes.len() / 2),
            "cannot be restored",
        ),
        (
            "not a backup",
            b"PK\x03\x04 a zip file".to_vec(),
            "not a lienthong backup",
        ),
    ];
    for (what, content, says) in cases {
        std::fs::write(&file, &content).expect("write");
        let output = restore(&file, &target);
        assert!(!output.status.success(), "a backup {what} was restored");
        let message = stderr(&output);
        assert!(message.contains(says), "{what}: {message}");
        assert!(message.contains("nothing was written"), "{what}: {message}");
        assert!(is_empty(&target), "{what}: something was written");
    }
    // Into a directory that does not exist: still nothing left behind.
    std::fs::write(&file, &bytes[..bytes.len() - 40]).expect("write");
    let missing = dir.path().join("new");
    assert!(!restore(&file, &missing).status.success());
    assert!(!missing.exists());

    std::fs::write(&file, &bytes).expect("write");
    let output = restore(&file, server.dir.path());
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not empty"),
        "{}",
        stderr(&output)
    );

    let output = restore(&file, &target);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("audit ok"), "{said}");
    assert!(
        stderr(&output).contains("holds no private keys"),
        "{}",
        stderr(&output)
    );
    let mut files = Vec::new();
    let mut stack = vec![target.join("pki")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("pki/ca.crt")));
    assert!(files.iter().any(|f| f.ends_with("pki/signing-keys.toml")));
    for file in files.iter().chain([&target.join("service-key.pub.pem")]) {
        let content = std::fs::read(file).expect("read");
        assert!(
            !lienthong::backup::is_secret(&content),
            "{} is a private key",
            file.display()
        );
    }
    assert!(!target.join("service-key.pem").exists());

    // Without the service's private key, the restored directory does not
    // start (a new key would sign receipts nobody could check).
    let mut config = lienthong::server::ServerConfig::new(&target);
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.tls = Some(lienthong::server::TlsFiles {
        cert: server.pki().server_cert(),
        key: server.pki().server_key(),
        client_ca: server.pki().ca_cert(),
    });
    config.signing_keys = Some(server.pki().signing_keys());
    let Err(refused) = lienthong::server::start(config).await else {
        panic!("a server started without the service's private key");
    };
    assert!(
        refused.to_string().contains("service-key.pem is missing"),
        "{refused}"
    );
}

/// Operators call the Operations service and nothing else; organisations
/// everything else and not it; a server accepts only the operators named.
#[tokio::test]
async fn only_operators_take_backups_and_operators_read_no_mailbox() {
    let server = TestServer::start().await;
    let mut organisation = OperationsClient::new(server.channel("phong-noi-vu", None).await);
    let denied = organisation
        .backup(pb::BackupRequest::default())
        .await
        .expect_err("an organisation may not take a backup");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("only an operator"), "{denied:?}");
    let denied = organisation
        .reload(pb::ReloadRequest {})
        .await
        .expect_err("denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    let mut admin = OperationsClient::new(server.channel("admin", None).await);
    let reloaded = admin
        .reload(pb::ReloadRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert!(
        reloaded.server_certificate.contains("lienthong server"),
        "{reloaded:?}"
    );
    assert!(reloaded.signing_keys > 0);

    let mut as_exchange = server.client("admin").await;
    let denied = as_exchange
        .send(server.request(directive("phong-noi-vu", &["xa-van-nham"], 1)))
        .await
        .expect_err("an operator may not send");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("operator"), "{denied:?}");
    let denied = as_exchange
        .list_inbox(pb::ListMailboxRequest::default())
        .await
        .expect_err("an operator may not read a mailbox");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    let other = TestServer::with_config(|c| c.operators = vec!["night-shift".into()]).await;
    let mut admin = OperationsClient::new(other.channel("admin", None).await);
    let denied = admin
        .backup(pb::BackupRequest::default())
        .await
        .expect_err("denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("not one this server accepts"),
        "{denied:?}"
    );
}

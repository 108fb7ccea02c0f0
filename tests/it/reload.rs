//! Certificate rotation without downtime: a real `lienthong serve` takes a
//! new server certificate on SIGHUP (and `lienthong reload`) while a client
//! keeps sending and a notification stream stays open, and refuses a bad
//! one, keeping the certificate it has.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lienthong::pb;
use lienthong::pki::PkiPaths;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::common::{serve_process, KeepSending, ServeProcess};

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

/// How long a log line may take to appear: only a bound for a server that
/// never reloads, not a wait.
const PATIENCE: Duration = Duration::from_secs(60);

/// The certificate the server presents to a new connection (DER).
async fn presented(server: &ServeProcess, pki: &PkiPaths) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.ca_cert()).expect("ca.crt") {
        roots.add(ca.expect("a CA certificate")).expect("add CA");
    }
    let (cert, key) = lienthong::pki::find_client(pki, "xa-van-nham").expect("client");
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("cert")
        .map(|c| c.expect("cert"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
    let tcp = tokio::net::TcpStream::connect(server.ready.addr)
        .await
        .expect("connect");
    let name = ServerName::IpAddress(server.ready.addr.ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("a server certificate");
    certs[0].to_vec()
}

fn der_of(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .expect("a certificate")
        .to_vec()
}

fn hangup(server: &ServeProcess) {
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Sends SIGHUP and returns the server's log line that says how it went.
fn reload_by_signal(server: &ServeProcess, outcome: &str) -> String {
    let after = server.log_lines();
    hangup(server);
    tokio::task::block_in_place(|| server.wait_for_log(outcome, after, PATIENCE))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for the event of document `id` on an open notification stream.
async fn arrival(stream: &mut tonic::Streaming<pb::SubscribeResponse>, id: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let item = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("the event within the patience limit")
            .expect("the stream is still open")
            .expect("the stream did not end");
        if let Some(pb::subscribe_response::Item::Event(event)) = item.item {
            if event.document_id == id {
                return;
            }
        }
    }
}

fn lienthong(server: &ServeProcess, pki: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("LIENTHONG_SERVER", &server.url)
        .env("LIENTHONG_PKI", pki)
        .output()
        .expect("run lienthong")
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_takes_a_good_certificate_and_keeps_the_old_one_for_a_bad_one() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = serve_process(data.path(), &[]);
    let pki = PkiPaths::new(data.path().join("pki"));
    let old = presented(&server, &pki).await;
    assert_eq!(old, der_of(&pki.server_cert()));

    let mut watcher = lienthong::client::connect_as(&server.url, &pki.dir, "xa-van-nham")
        .await
        .expect("connect");
    let mut stream = crate::common::subscribe_from_now(&mut watcher).await;
    let mut sending =
        KeepSending::start(&server.url, &pki.dir, "phong-noi-vu", "xa-van-nham", 1).await;
    sending.until(3).await;

    // A new server certificate from the development CA, then SIGHUP.
    let reissued = Command::new(BIN)
        .args(["pki", "reissue", "--dir"])
        .arg(&pki.dir)
        .arg("server")
        .output()
        .expect("run lienthong");
    assert!(
        reissued.status.success(),
        "{}",
        String::from_utf8_lossy(&reissued.stderr)
    );
    let new = der_of(&pki.server_cert());
    assert_ne!(new, old);
    let line = reload_by_signal(&server, "reloaded:");
    assert!(line.contains("lienthong server"), "{line}");
    assert_eq!(
        presented(&server, &pki).await,
        new,
        "new connections get the new certificate"
    );

    // The client went on sending over its connection, and the stream
    // opened before the reload delivers what was sent after it.
    let at_reload = sending.count();
    sending.until(at_reload + 3).await;
    let latest = sending.acked.borrow().last().cloned().expect("an id");
    arrival(&mut stream, &latest).await;

    // A file that is no certificate: refused, the last good one kept.
    std::fs::write(pki.server_cert(), "not a certificate\n").expect("write");
    let line = reload_by_signal(&server, "reload refused");
    assert!(line.contains("server.crt holds no certificate"), "{line}");
    assert_eq!(
        presented(&server, &pki).await,
        new,
        "the good certificate is kept"
    );

    // The same through the API, as an operator: the error says why.
    let output = lienthong(&server, &pki.dir, &["reload", "--as", "admin"]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("FAILED_PRECONDITION") && said.contains("server.crt"),
        "{said}"
    );
    // Another organisation's certificate with the server's key: the key
    // does not match, refused as well.
    let (other, _) = lienthong::pki::find_client(&pki, "xa-van-nham").expect("client");
    std::fs::copy(other, pki.server_cert()).expect("copy");
    let output = lienthong(&server, &pki.dir, &["reload", "--as", "admin"]);
    assert!(!output.status.success());
    assert_eq!(presented(&server, &pki).await, new);

    std::fs::write(
        pki.server_cert(),
        pem::encode(&pem::Pem::new("CERTIFICATE", new.clone())),
    )
    .expect("write");
    let output = lienthong(&server, &pki.dir, &["reload", "--as", "admin"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("reloaded: server certificate"));

    let at_refusal = sending.count();
    sending.until(at_refusal + 3).await;
    let latest = sending.acked.borrow().last().cloned().expect("an id");
    arrival(&mut stream, &latest).await;
    sending.stop().await;
}

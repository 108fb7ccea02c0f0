//! Test harness: a real server (mutual TLS, ephemeral port, temporary data
//! directory, development PKI) and clients that connect as an organisation.
#![allow(dead_code)]

pub mod postgres;

use std::path::PathBuf;

use lienthong::client::{self, AttachmentFile, ClientConfig};
use lienthong::crypto::SigningKey;
use lienthong::exchange::Limits;
use lienthong::pb;
use lienthong::pb::exchange_client::ExchangeClient;
use lienthong::pki::{self, PkiPaths};
use lienthong::server::{self, RunningServer, ServerConfig};
use tonic::transport::Channel;

pub type Client = ExchangeClient<Channel>;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config: ServerConfig,
    running: Option<RunningServer>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> TestServer {
        TestServer::with_config(|c| c.limits = limits).await
    }

    /// A server on the default configuration, changed by `adjust`.
    pub async fn with_config(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = ServerConfig::new(dir.path());
        config.listen = "127.0.0.1:0".parse().expect("address");
        // Tests send hundreds of documents a second from one organisation;
        // `limits` tests the send rate on its own.
        config.network.org_sends_per_minute = 0;
        adjust(&mut config);
        let running = server::start(config.clone()).await.expect("server starts");
        TestServer {
            dir,
            config,
            running: Some(running),
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("server running").addr
    }

    /// The dashboard's address, when the configuration asked for one.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.http)
            .expect("a server with a dashboard (config.http)")
    }

    /// The metrics endpoint's address, when the configuration asked for one.
    pub fn metrics_addr(&self) -> std::net::SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.metrics)
            .expect("a server with metrics (config.metrics)")
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    pub fn pki(&self) -> PkiPaths {
        PkiPaths::new(self.dir.path().join("pki"))
    }

    /// The document signing key of `org` in the development PKI.
    pub fn signer(&self, org: &str) -> SigningKey {
        pki::find_signing_key(&self.pki(), org).expect("signing key")
    }

    /// A send request signed by the document's sender (or, when `from`
    /// names no organisation, by Phòng Nội vụ, as a confused client would).
    pub fn signed(
        &self,
        document: pb::Document,
        attachments: Vec<AttachmentFile>,
        idempotency_key: Option<String>,
    ) -> pb::SendRequest {
        let signer = pki::find_signing_key(&self.pki(), &document.from)
            .unwrap_or_else(|_| self.signer("phong-noi-vu"));
        client::send_request(document, attachments, idempotency_key, &signer).expect("sign")
    }

    pub fn request(&self, document: pb::Document) -> pb::SendRequest {
        self.signed(document, Vec::new(), None)
    }

    pub async fn send(&self, client: &mut Client, document: pb::Document) -> pb::SendResponse {
        client
            .send(self.request(document))
            .await
            .expect("send accepted")
            .into_inner()
    }

    /// A client holding `org`'s certificate from the development PKI.
    pub async fn client(&self, org: &str) -> Client {
        client::connect_as(&self.url(), &self.pki().dir, org)
            .await
            .expect("connect")
    }

    pub async fn client_with(&self, cert: PathBuf, key: PathBuf) -> Client {
        let config = ClientConfig {
            server: self.url(),
            ca_cert: self.pki().ca_cert(),
            cert,
            key,
        };
        client::connect(&config).await.expect("connect")
    }

    /// A client of `org` whose HTTP/2 windows are `window` bytes: it can
    /// have at most that much unread data in flight.
    pub async fn client_with_window(&self, org: &str, window: u32) -> Client {
        Client::new(self.channel(org, Some(window)).await)
    }

    /// A channel to the server with `org`'s certificate, optionally with
    /// HTTP/2 windows of `window` bytes.
    pub async fn channel(&self, org: &str, window: Option<u32>) -> tonic::transport::Channel {
        channel_to(&self.url(), &self.pki(), org, window).await
    }

    /// Stops the server cleanly and starts a new one on the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.running = Some(
            server::start(self.config.clone())
                .await
                .expect("server restarts"),
        );
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
    }
}

/// A channel to the server at `url` with `org`'s certificate from `pki`,
/// optionally with HTTP/2 windows of `window` bytes.
pub async fn channel_to(
    url: &str,
    pki: &PkiPaths,
    org: &str,
    window: Option<u32>,
) -> tonic::transport::Channel {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let (cert, key) = pki::find_client(pki, org).expect("client certificate");
    let read = |p: PathBuf| std::fs::read(p).expect("read");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(pki.ca_cert())))
        .identity(Identity::from_pem(read(cert), read(key)));
    Endpoint::from_shared(url.to_owned())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .connect()
        .await
        .expect("connect")
}

/// The issuer part of `org`'s notations in the built-in directory
/// (`UBND` for a name it does not know).
pub fn abbreviation(org: &str) -> String {
    lienthong::directory::Directory::builtin()
        .expect("built-in directory")
        .org(org)
        .and_then(|o| o.abbreviation())
        .unwrap_or("UBND")
        .to_owned()
}

/// A valid directive (chỉ thị) from `from` to `to`: its notation is
/// `CT-` and the sender's abbreviation (`CT-PNV`).
pub fn directive(from: &str, to: &[&str], number: u64) -> pb::Document {
    pb::Document {
        from: from.into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        number,
        notation: format!("CT-{}", abbreviation(from)),
        place: "Hữu Lũng".into(),
        promulgation_date: "2026-11-20".into(),
        document_type: "chi-thi".into(),
        subject: format!("Về việc tăng cường phòng cháy chữa cháy, số {number}"),
        signer: Some(pb::Signer {
            competence: "TM.".into(),
            position: "Chủ tịch".into(),
            full_name: "Nguyễn Văn A".into(),
        }),
        ..Default::default()
    }
}

pub fn pdf(name: &str, content: &[u8]) -> AttachmentFile {
    AttachmentFile {
        name: name.into(),
        media_type: "application/pdf".into(),
        content: content.to_vec(),
    }
}

/// `client`'s inclusion proof of document `id` at the latest checkpoint,
/// after checking it as a saved proof file against the service key the
/// development PKI holds.
pub async fn proof_that_verifies(
    server: &TestServer,
    client: &mut Client,
    id: &str,
) -> pb::InclusionProof {
    proof_that_verifies_with(&server.pki(), client, id).await
}

/// [`proof_that_verifies`] against the service key of the PKI `pki` (a
/// server whose data directory is not its test directory).
pub async fn proof_that_verifies_with(
    pki: &PkiPaths,
    client: &mut Client,
    id: &str,
) -> pb::InclusionProof {
    let proof = client
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: id.into(),
            tree_size: 0,
            leaf_index: None,
        })
        .await
        .expect("proof")
        .into_inner();
    let keys = client
        .get_keys(pb::GetKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let trusted = lienthong::evidence::read_public_key(&pki.service_key()).expect("key");
    let file = lienthong::archive::proof::ProofFile::Inclusion(
        lienthong::archive::proof::InclusionFile::new(id, &proof, keys.service_key.as_ref())
            .expect("proof file"),
    );
    let checks = file.check(&trusted);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    proof
}

pub async fn inbox_all(client: &mut Client) -> Vec<pb::InboxEntry> {
    client::inbox_pages(client, String::new(), 0, true)
        .await
        .expect("inbox")
        .0
}

pub fn communes() -> Vec<String> {
    lienthong::directory::Directory::builtin()
        .expect("built-in directory")
        .organizations()
        .iter()
        .filter(|o| o.kind == "commune")
        .map(|o| o.alias.clone())
        .collect()
}

/// A `lienthong serve` process of the built binary; killed and reaped on drop.
pub type ServeProcess = lienthong::process::ServeProcess;

/// Starts the binary on a free port on `data`, with `extra` flags, and waits
/// for its readiness line.
pub fn serve_process(data: &std::path::Path, extra: &[&str]) -> ServeProcess {
    ServeProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_lienthong")),
        data,
        extra,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A plain HTTP/1.1 GET of `path` on `addr`, `Connection: close`: the
/// whole response, head and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Sends `text` as it is to `addr` and reads the answer until the server
/// closes the connection.
pub async fn http_request(addr: std::net::SocketAddr, text: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    String::from_utf8(out).expect("UTF-8")
}

/// The body of an HTTP response.
pub fn http_body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A sender that keeps sending directives, each with a PDF larger than
/// what the store keeps inline (so also an attachment file), until
/// stopped; every acknowledged id is pushed, in order, to a watch channel
/// that tests await instead of sleeping.
pub struct KeepSending {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub acked: tokio::sync::watch::Receiver<Vec<String>>,
    task: tokio::task::JoinHandle<Result<(), tonic::Status>>,
}

/// The PDF of the `n`-th document of a [`KeepSending`]: 12 KiB, different
/// for each document.
pub fn numbered_pdf(n: u64) -> AttachmentFile {
    let mut content = format!("%PDF-1.4 document {n}\n").into_bytes();
    content.resize(12 * 1024, b'0' + (n % 10) as u8);
    pdf("van-ban.pdf", &content)
}

impl KeepSending {
    /// Sends as `from` to `to` on the server at `url` whose development
    /// PKI is `pki_dir`, numbering from `first_number`.
    pub async fn start(
        url: &str,
        pki_dir: &std::path::Path,
        from: &str,
        to: &str,
        first_number: u64,
    ) -> KeepSending {
        let mut client = client::connect_as(url, pki_dir, from)
            .await
            .expect("connect");
        let signer = pki::find_signing_key(&PkiPaths::new(pki_dir), from).expect("signing key");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, acked) = tokio::sync::watch::channel(Vec::new());
        let (from, to, stopping) = (from.to_owned(), to.to_owned(), stop.clone());
        let task = tokio::spawn(async move {
            let mut number = first_number;
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                let request = client::send_request(
                    directive(&from, &[&to], number),
                    vec![numbered_pdf(number)],
                    None,
                    &signer,
                )
                .expect("sign");
                let id = client.send(request).await?.into_inner().id;
                tx.send_modify(|ids| ids.push(id));
                number += 1;
            }
            Ok(())
        });
        KeepSending { stop, acked, task }
    }

    /// Waits until `n` sends in all were acknowledged.
    pub async fn until(&mut self, n: usize) {
        self.acked
            .wait_for(|ids| ids.len() >= n)
            .await
            .expect("the sender is running");
    }

    /// How many sends were acknowledged so far.
    pub fn count(&self) -> usize {
        self.acked.borrow().len()
    }

    /// Stops after the send in flight; panics if any send failed. Returns
    /// every acknowledged id.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task
            .await
            .expect("sender task")
            .expect("every send acknowledged");
        let ids = self.acked.borrow().clone();
        ids
    }
}

/// The client's organisation's event stream from now on.
pub async fn subscribe_from_now(client: &mut Client) -> tonic::Streaming<pb::SubscribeResponse> {
    client
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            from_now: true,
        })
        .await
        .expect("subscribe")
        .into_inner()
}

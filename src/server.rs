//! Assembling and running the service: directory, certificates, store, the
//! gRPC server over mutual TLS, the dashboard if asked for, and an orderly
//! shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admission::{self, AdmissionLayer, NetworkLimits, Warnings};
use crate::api::{ExchangeApi, ExchangeServer};
use crate::archive::Archive;
use crate::calendar::Calendar;
use crate::dashboard::{self, Access, Dashboard, Pages};
use crate::deadlines::Deadlines;
use crate::directory::Directory;
use crate::exchange::{Exchange, Limits};
use crate::keys::KeyRegistry;
use crate::notify::{self, Notifier, NotifyOptions};
use crate::pki::{self, PkiPaths};
use crate::receipt::{Notary, ServiceKey};
use crate::report::Reports;
use crate::store::{self, Store, StoreOptions};
use crate::tracking::Tracking;
use crate::transfer::{Transfers, UploadLimits};

/// Certificates configured by path, for production.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that client certificates must chain to.
    pub client_ca: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The dashboard's address (`serve --http`); `None`: no dashboard.
    /// Plain HTTP on a loopback address, else HTTPS with client
    /// certificates, which needs `tls` (see [`crate::dashboard`]).
    pub http: Option<SocketAddr>,
    /// `None`: the built-in Hữu Lũng directory.
    pub directory: Option<PathBuf>,
    /// `None`: the development PKI under `DATA/pki`, created if missing.
    pub tls: Option<TlsFiles>,
    /// The registry of organisations' signing keys. `None`: the one of the
    /// development PKI (`DATA/pki/signing-keys.toml`); required with `tls`.
    pub signing_keys: Option<PathBuf>,
    /// Working days, for deadlines: the built-in holidays unless
    /// `serve --holidays FILE` gave others.
    pub calendar: Arc<Calendar>,
    /// The report's target: percent of documents exchanged electronically.
    pub target_percent: f64,
    pub limits: Limits,
    /// Uploads of large attachments: quotas and the clean-up time.
    pub uploads: UploadLimits,
    /// Connections, HTTP/2, request budgets and the send rate.
    pub network: NetworkLimits,
    pub store: StoreOptions,
    pub notify: NotifyOptions,
    /// A checkpoint of the archive is signed at least this often when
    /// documents came in (and every `store.checkpoint_every` documents).
    pub checkpoint_interval: std::time::Duration,
}

impl ServerConfig {
    /// The embedded defaults ([`crate::defaults`]), Hữu Lũng, dev PKI.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen: crate::defaults::LISTEN,
            http: None,
            directory: None,
            tls: None,
            signing_keys: None,
            calendar: Arc::new(Calendar::builtin()),
            target_percent: crate::report::DEFAULT_TARGET_PERCENT,
            limits: Limits::default(),
            uploads: UploadLimits::default(),
            network: NetworkLimits::default(),
            store: StoreOptions::default(),
            notify: NotifyOptions::default(),
            checkpoint_interval: std::time::Duration::from_secs(
                crate::defaults::CHECKPOINT_SECONDS,
            ),
        }
    }
}

/// Room on top of the document limit for the rest of a request: the
/// signature, key id and idempotency key, and the framing of each
/// attachment, which take a few kilobytes at most. A length prefix beyond
/// the limit and this margin is refused before any of the body is read, so
/// at most this much is read of a request that the limit then refuses.
const REQUEST_MARGIN: usize = 64 * 1024;

/// Room on top of the document limit for the rest of a response: the
/// receipts, signatures and keys beside a document and its attachments.
const RESPONSE_MARGIN: usize = 1024 * 1024;

/// An HTTP/2 PING this often on a connection, closed if unanswered within
/// the timeout: finds a peer that vanished (a cut line, a machine turned
/// off) even while it has a request open, which the idle time does not.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn fail(context: &str) -> impl FnOnce(&dyn std::fmt::Display) -> StartError + '_ {
    move |e| StartError(format!("{context}: {e}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError(format!("cannot read {}: {e}", path.display())))
}

/// A started server.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The dashboard's address, when it runs.
    pub http: Option<SocketAddr>,
    /// The development PKI folder, when the server uses one.
    pub dev_pki: Option<PathBuf>,
    notifier: Arc<Notifier>,
    transfers: Arc<Transfers>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StartError>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, flushes the store and
    /// returns when all of it is done.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        // Streams first: graceful shutdown waits for every open request,
        // a subscription never ends by itself, and an upload or download
        // of gigabytes would hold it for minutes (both resume).
        self.notifier.close();
        self.transfers.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops on its own (it does not, unless it fails).
    pub async fn wait(&mut self) -> Result<(), StartError> {
        (&mut self.task)
            .await
            .map_err(|e| StartError(format!("the server task failed: {e}")))?
    }
}

/// The server's TLS: a client certificate that chains to the client CA is
/// required (a connection without one never gets past the handshake), and
/// HTTP/2 is the only protocol offered.
fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, StartError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let pem_error =
        |path: &Path, e: &dyn std::fmt::Display| StartError(format!("{}: {e}", path.display()));
    let chain = CertificateDer::pem_slice_iter(&read_file(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, &e))?;
    let key = PrivateKeyDer::from_pem_slice(&read_file(&files.key)?)
        .map_err(|e| pem_error(&files.key, &e))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read_file(&files.client_ca)?) {
        let ca = ca.map_err(|e| pem_error(&files.client_ca, &e))?;
        roots.add(ca).map_err(|e| pem_error(&files.client_ca, &e))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| fail("client CA")(&e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| fail("TLS configuration")(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Starts the service and returns once it accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    // tonic is built with ring; say so explicitly in case another crate in
    // the build enabled a second provider, which would make rustls refuse to
    // pick one. An error here only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A message is a send (up to the document limit) or a chunk of an
    // upload (up to its own limit), whichever is larger.
    let message_limit = config
        .limits
        .max_document_bytes
        .max(crate::transfer::MAX_CHUNK_BYTES)
        + REQUEST_MARGIN;
    config
        .network
        .check(message_limit)
        .map_err(|e| fail("limits")(&e))?;
    if let Some(http) = config.http {
        if !http.ip().is_loopback() && config.tls.is_none() {
            return Err(StartError(format!(
                "--http {http} is not a loopback address: there the dashboard is HTTPS with client certificates, configured by path (--tls-cert, --tls-key, --client-ca); the development PKI is for one machine and its server certificate names only localhost. Give those three, or a loopback address such as 127.0.0.1:8080"
            )));
        }
    }

    let directory =
        Arc::new(Directory::load(config.directory.as_deref()).map_err(|e| fail("directory")(&e))?);
    if let Some(warning) = config
        .calendar
        .missing_year_warning(config.store.clock.today())
    {
        tracing::warn!("{warning}");
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StartError(format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;

    let (tls_files, dev_pki) = match &config.tls {
        Some(files) => (files.clone(), None),
        None => {
            let paths = PkiPaths::new(config.data_dir.join("pki"));
            let report =
                pki::ensure_dev_pki(&paths, &directory).map_err(|e| fail("development PKI")(&e))?;
            if report.created_ca {
                tracing::info!(
                    "created a development PKI in {} (CA, server certificate, one client certificate per organisation)",
                    paths.dir.display()
                );
            } else if report.issued_clients > 0 {
                tracing::info!(
                    "issued {} client certificates for new organisations in {}",
                    report.issued_clients,
                    paths.dir.display()
                );
            }
            let files = TlsFiles {
                cert: paths.server_cert(),
                key: paths.server_key(),
                client_ca: paths.ca_cert(),
            };
            (files, Some(paths.dir))
        }
    };
    let keys_file = match (&config.signing_keys, &dev_pki) {
        (Some(file), _) => file.clone(),
        (None, Some(dir)) => PkiPaths::new(dir).signing_keys(),
        (None, None) => {
            return Err(StartError(
                "with --tls-cert, give --signing-keys FILE: the registry of organisations' signing keys (see certs/README.md)".into(),
            ))
        }
    };
    let keys = KeyRegistry::load(&keys_file).map_err(|e| StartError(e.to_string()))?;
    for key in keys.orphans(&directory) {
        tracing::warn!(
            "signing key {} belongs to {}, which is not in the directory; kept to check its old documents",
            key.key_id,
            key.org
        );
    }
    let keys = Arc::new(keys);
    let service_key = Arc::new(
        ServiceKey::load_or_create(&config.data_dir).map_err(|e| fail("service key")(&e))?,
    );
    if let Some(dir) = &dev_pki {
        // Clients of the development PKI trust the service key found there.
        service_key
            .publish(&PkiPaths::new(dir).service_key())
            .map_err(|e| fail("service key")(&e))?;
    }
    let tls = tls_config(&tls_files)?;
    // Checked before the store opens: a dashboard that cannot start stops
    // `serve` at once.
    let access = match config.http {
        None => None,
        Some(http) if http.ip().is_loopback() => Some(Access::Local(
            dashboard::local_viewer(&directory).map_err(StartError)?,
        )),
        Some(_) => Some(Access::Certificate(
            dashboard::tls_config(
                &read_file(&tls_files.cert)?,
                &read_file(&tls_files.key)?,
                &read_file(&tls_files.client_ca)?,
            )
            .map_err(|e| fail("the dashboard's TLS")(&e))?,
        )),
    };

    let (listener, committed) = notify::listener();
    let engine =
        store::open_engine(&config.data_dir, &config.store).map_err(|e| fail("store")(&e))?;
    let store = Store::open(
        engine,
        &config.data_dir.join("attachments"),
        &config.store,
        Arc::new(Notary::new(service_key.clone())),
        Arc::new(listener),
    );
    let store = Arc::new(store.map_err(|e| fail("store")(&e))?);
    let notifier = Notifier::start(store.clone(), committed, config.notify.clone())
        .map_err(|e| fail("notifications")(&e))?;
    let deadlines = Arc::new(Deadlines::new(
        store.clone(),
        directory.clone(),
        config.calendar.clone(),
    ));
    let reports = Arc::new(Reports::new(
        store.clone(),
        directory.clone(),
        deadlines.clone(),
        config.target_percent,
    ));
    let exchange = Arc::new(Exchange::new(
        store.clone(),
        directory.clone(),
        keys,
        service_key,
        config.limits.clone(),
    ));
    // Checkpoints by time; the committer makes one only if the log grew.
    let ticking = store.clone();
    let interval = config.checkpoint_interval;
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            match ticking.archive_grew() {
                Ok(false) => {}
                Ok(true) => {
                    if let Err(e) = ticking.make_checkpoint().await {
                        tracing::warn!(error = %e, "periodic checkpoint");
                    }
                }
                // Logged, and tried again at the next tick: a missed
                // checkpoint loses nothing, the leaves are all stored.
                Err(e) => {
                    tracing::warn!(error = %e, "periodic checkpoint: reading the archive size")
                }
            }
        }
    });
    let mut network = config.network.clone();
    let descriptors = admission::descriptors::raise_limit();
    let fitting =
        admission::descriptors::connections_that_fit(network.max_connections, descriptors);
    if fitting < network.max_connections {
        tracing::warn!(
            "at most {fitting} connections: the process may open {} descriptors and keeps {} for its files; raise LimitNOFILE (ulimit -n) to allow --max-connections {}",
            descriptors.unwrap_or_default(),
            admission::descriptors::RESERVED,
            network.max_connections
        );
        network.max_connections = fitting;
    }
    let warnings = Arc::new(Warnings::default());
    let transfers = Transfers::new(store.clone(), exchange.clone(), config.uploads.clone())
        .map_err(|e| fail("uploads")(&e))?;
    let sweeper = tokio::spawn(transfers.clone().sweep_forever());
    let archive = Arc::new(Archive::new(store.clone(), exchange.clone()));
    let tracking = Arc::new(Tracking::new(
        store.clone(),
        exchange.clone(),
        config.calendar.clone(),
    ));
    let pages = Arc::new(Pages::new(
        reports.clone(),
        deadlines.clone(),
        tracking.clone(),
        directory.clone(),
    ));
    let service = ExchangeServer::new(ExchangeApi::new(
        exchange,
        transfers.clone(),
        tracking,
        archive,
        notifier.clone(),
        deadlines,
        reports,
    ))
    .max_decoding_message_size(message_limit)
    .max_encoding_message_size(config.limits.max_document_bytes + RESPONSE_MARGIN);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(format!("cannot read the listening address: {e}")))?;
    let dashboard = match (access, config.http) {
        (Some(access), Some(http)) => {
            let listener = tokio::net::TcpListener::bind(http).await.map_err(|e| {
                StartError(format!(
                    "cannot listen for the dashboard (--http) on {http}: {e}"
                ))
            })?;
            let running =
                Dashboard::start(listener, access, pages).map_err(|e| fail("the dashboard")(&e))?;
            tracing::info!(
                "dashboard on {}://{}",
                if http.ip().is_loopback() {
                    "http"
                } else {
                    "https"
                },
                running.addr
            );
            Some(running)
        }
        _ => None,
    };
    let http_addr = dashboard.as_ref().map(|d| d.addr);
    let max_document_bytes = config.limits.max_document_bytes;
    // Every HTTP/2 setting given, rather than left to the libraries'
    // defaults (tonic's advertise no limit on streams).
    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(network.max_streams_per_connection)
        .initial_stream_window_size(network.stream_window)
        .initial_connection_window_size(network.connection_window)
        .http2_max_header_list_size(network.max_header_list)
        .max_frame_size(network.max_frame)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(AdmissionLayer::new(
            &network,
            directory.clone(),
            warnings.clone(),
        ))
        // Broken framing is the caller's error: say so precisely.
        .layer(tower::util::MapResponseLayer::new(move |response| {
            crate::api::framing::precise(response, max_document_bytes)
        }))
        .add_service(service);

    // TLS is ours, not tonic's: the connection caps apply before it, and
    // the handshake deadline runs on to the HTTP/2 preface.
    let incoming = admission::incoming(listener, tls, &network, warnings);
    let (shutdown, stop) = oneshot::channel::<()>();
    let tasks = notifier.clone();
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            })
            .await;
        // The dashboard's pages read the store too: finish them first.
        if let Some(dashboard) = dashboard {
            dashboard.stop().await;
        }
        // Every request has finished: flush and close the store, then wait
        // for the tasks that hold it, so its files are released on return.
        tasks.close();
        ticker.abort();
        let _ = ticker.await;
        sweeper.abort();
        let _ = sweeper.await;
        tasks.join_subscriptions().await;
        let closed = store.close().await;
        tasks.join_publisher().await;
        served.map_err(|e| fail("server")(&e))?;
        closed.map_err(|e| fail("closing the store")(&e))
    });
    tracing::info!("listening on {addr}");
    Ok(RunningServer {
        addr,
        http: http_addr,
        dev_pki,
        notifier,
        transfers,
        shutdown: Some(shutdown),
        task,
    })
}

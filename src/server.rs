//! Assembling and running the service: directory, certificates, store, the
//! gRPC server over mutual TLS, and an orderly shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::http;

use crate::api::{ExchangeApi, ExchangeServer, OperationsApi, OperationsServer};
use crate::archive::Archive;
use crate::backup::BackupSource;
use crate::calendar::Calendar;
use crate::deadlines::Deadlines;
use crate::directory::Directory;
use crate::exchange::{Exchange, Limits};
use crate::keys::KeyRegistry;
use crate::notify::{self, Notifier, NotifyOptions};
use crate::pki::{self, PkiPaths};
use crate::receipt::{Notary, ServiceKey};
use crate::reload::{ReloadError, Reloaded, Reloader};
use crate::report::Reports;
use crate::store::{self, Store, StoreOptions};
use crate::tls::{self, CertFiles, LiveTls};
use crate::tracking::Tracking;

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
    pub store: StoreOptions,
    pub notify: NotifyOptions,
    /// A checkpoint of the archive is signed at least this often when
    /// documents came in (and every `store.checkpoint_every` documents).
    pub checkpoint_interval: std::time::Duration,
    /// The operators the `Operations` service accepts, by the name in
    /// their certificate. Empty: with the development PKI, its `admin`;
    /// with production certificates, nobody.
    pub operators: Vec<String>,
}

impl ServerConfig {
    /// The embedded defaults ([`crate::defaults`]), Hữu Lũng, dev PKI.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen: crate::defaults::LISTEN,
            directory: None,
            tls: None,
            signing_keys: None,
            calendar: Arc::new(Calendar::builtin()),
            target_percent: crate::report::DEFAULT_TARGET_PERCENT,
            limits: Limits::default(),
            store: StoreOptions::default(),
            notify: NotifyOptions::default(),
            checkpoint_interval: std::time::Duration::from_secs(
                crate::defaults::CHECKPOINT_SECONDS,
            ),
            operators: Vec::new(),
        }
    }
}

/// Room on top of the document limit for the rest of a request, so that a
/// document just over the limit gets our RESOURCE_EXHAUSTED naming the limit.
const ENVELOPE_MARGIN: usize = 1024 * 1024;

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

/// A started server.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The development PKI folder, when the server uses one.
    pub dev_pki: Option<PathBuf>,
    notifier: Arc<Notifier>,
    reloader: Arc<Reloader>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StartError>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, flushes the store and
    /// returns when all of it is done.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        // Streams first: graceful shutdown waits for every open request,
        // and a subscription never ends by itself.
        self.notifier.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Reads the TLS certificate and key, the client CA and the signing-key
    /// registry again (on SIGHUP); all or nothing, and logged either way.
    /// Blocking (reads files).
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        self.reloader.reload()
    }

    /// Waits until the server stops on its own (it does not, unless it fails).
    pub async fn wait(&mut self) -> Result<(), StartError> {
        (&mut self.task)
            .await
            .map_err(|e| StartError(format!("the server task failed: {e}")))?
    }
}

/// tonic refuses a request larger than its decoding limit with OUT_OF_RANGE
/// before any handler sees it. For the caller that is a size limit, which
/// gRPC spells RESOURCE_EXHAUSTED; say which limit, as for smaller excesses.
fn oversize_is_resource_exhausted(
    mut response: http::Response<tonic::body::Body>,
    max_document_bytes: usize,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    let too_large = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.replace("%20", " ").contains("message length too large"));
    if too_large {
        let message = format!(
            "max_document_bytes: the request is larger than the limit of {max_document_bytes} bytes for a document and its attachments"
        );
        if let Ok(value) = http::HeaderValue::from_str(&message) {
            headers.insert("grpc-status", http::HeaderValue::from_static("8"));
            headers.insert("grpc-message", value);
        }
    }
    response
}

/// Starts the service and returns once it accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    // tonic is built with ring; say so explicitly in case another crate in
    // the build enabled a second provider, which would make rustls refuse to
    // pick one. An error here only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();

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
                    "created a development PKI in {} (CA, server certificate, one client certificate per organisation, and the operator's)",
                    paths.dir.display()
                );
            } else if report.issued_operator {
                tracing::info!(
                    "issued the operator certificate {} in {}",
                    pki::DEV_OPERATOR,
                    paths.dir.display()
                );
            }
            if !report.created_ca && report.issued_clients > 0 {
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
    // A public key without its private half: a data directory restored
    // from a backup without secrets. A new key would sign receipts that no
    // one holding the old public key could check: refuse instead.
    let private = config.data_dir.join(crate::receipt::PRIVATE_FILE);
    if !private.exists() && config.data_dir.join(crate::receipt::PUBLIC_FILE).exists() {
        return Err(StartError(format!(
            "{} is missing, but its public half is there: put the service's key back (a backup taken without --include-secrets does not hold it), or remove the public half too to start with a new key",
            private.display()
        )));
    }
    let service_key = Arc::new(
        ServiceKey::load_or_create(&config.data_dir).map_err(|e| fail("service key")(&e))?,
    );
    if let Some(dir) = &dev_pki {
        // Clients of the development PKI trust the service key found there.
        service_key
            .publish(&PkiPaths::new(dir).service_key())
            .map_err(|e| fail("service key")(&e))?;
    }
    let cert_files = CertFiles {
        cert: tls_files.cert.clone(),
        key: tls_files.key.clone(),
        client_ca: tls_files.client_ca.clone(),
    };
    // A connection without a certificate that chains to the client CA
    // never gets past the handshake (see `tls`).
    let live_tls = Arc::new(LiveTls::new(
        tls::load(&cert_files)
            .map_err(|e| fail("TLS configuration")(&e))?
            .config,
    ));

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
        directory,
        keys,
        service_key,
        config.limits.clone(),
    ));
    let reloader = Arc::new(Reloader::new(
        cert_files,
        keys_file.clone(),
        live_tls.clone(),
        exchange.clone(),
    ));
    let operations = operations(&config, &tls_files, keys_file, &dev_pki, &store, &reloader);
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
    let message_limit = config.limits.max_document_bytes + ENVELOPE_MARGIN;
    let archive = Arc::new(Archive::new(store.clone(), exchange.clone()));
    let tracking = Arc::new(Tracking::new(
        store.clone(),
        exchange.clone(),
        config.calendar.clone(),
    ));
    let service = ExchangeServer::new(ExchangeApi::new(
        exchange,
        tracking,
        archive,
        notifier.clone(),
        deadlines,
        reports,
    ))
    .max_decoding_message_size(message_limit)
    .max_encoding_message_size(message_limit);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(format!("cannot read the listening address: {e}")))?;
    let max_document_bytes = config.limits.max_document_bytes;
    let router = tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(move |response| {
            oversize_is_resource_exhausted(response, max_document_bytes)
        }))
        .add_service(service)
        .add_service(operations);

    // Replies are small and latency matters: no Nagle delay (which, against
    // the peer's delayed ACK, adds 40 ms to some replies). The builder's own
    // tcp_nodelay does not apply to a listener we hand it, so set it here.
    let tcp = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(std::time::Duration::from_secs(60)));
    let incoming = tls::incoming(tcp, live_tls);
    let (shutdown, stop) = oneshot::channel::<()>();
    let tasks = notifier.clone();
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            })
            .await;
        // Every request has finished: flush and close the store, then wait
        // for the tasks that hold it, so its files are released on return.
        tasks.close();
        ticker.abort();
        let _ = ticker.await;
        tasks.join_subscriptions().await;
        let closed = store.close().await;
        tasks.join_publisher().await;
        served.map_err(|e| fail("server")(&e))?;
        closed.map_err(|e| fail("closing the store")(&e))
    });
    tracing::info!("listening on {addr}");
    Ok(RunningServer {
        addr,
        dev_pki,
        notifier,
        reloader,
        shutdown: Some(shutdown),
        task,
    })
}

/// The `Operations` service: who may call it, and what a backup takes.
fn operations(
    config: &ServerConfig,
    tls_files: &TlsFiles,
    keys_file: PathBuf,
    dev_pki: &Option<PathBuf>,
    store: &Arc<Store>,
    reloader: &Arc<Reloader>,
) -> OperationsServer<OperationsApi> {
    let operators = match (&config.operators[..], dev_pki) {
        ([], Some(_)) => vec![pki::DEV_OPERATOR.to_owned()],
        (named, _) => named.to_vec(),
    };
    if operators.is_empty() {
        tracing::info!("no operators configured (serve --operator NAME): backups and reloads over the API are refused");
    }
    // In a restored data directory: the service key where it was, and the
    // certificates and registry in use under pki/, as the development PKI
    // keeps them (and, with it, the rest of its folder).
    let files = vec![
        (
            crate::receipt::PUBLIC_FILE.to_owned(),
            config.data_dir.join(crate::receipt::PUBLIC_FILE),
        ),
        (
            crate::receipt::PRIVATE_FILE.to_owned(),
            config.data_dir.join(crate::receipt::PRIVATE_FILE),
        ),
        ("pki/ca.crt".to_owned(), tls_files.client_ca.clone()),
        ("pki/server.crt".to_owned(), tls_files.cert.clone()),
        ("pki/server.key".to_owned(), tls_files.key.clone()),
        ("pki/signing-keys.toml".to_owned(), keys_file),
    ];
    let source = BackupSource::new(
        store.clone(),
        config.data_dir.clone(),
        files,
        dev_pki.clone(),
    );
    OperationsServer::new(OperationsApi::new(
        operators,
        Arc::new(source),
        reloader.clone(),
    ))
}

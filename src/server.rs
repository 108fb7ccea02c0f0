//! Assembling and running the service: directory, certificates, store, the
//! gRPC server over mutual TLS (the API, health checking and reflection),
//! the dashboard, the metrics and the plain health port if asked for, and
//! an orderly shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admission::{self, AdmissionLayer, NetworkLimits, Warnings};
use crate::api::{ExchangeApi, ExchangeServer, OperationsApi, OperationsServer};
use crate::archive::Archive;
use crate::backup::BackupSource;
use crate::calendar::Calendar;
use crate::dashboard::{self, Access, Dashboard, Pages};
use crate::deadlines::Deadlines;
use crate::directory::Directory;
use crate::exchange::{Exchange, Limits};
use crate::health::{self, HealthPort, HealthState};
use crate::keys::KeyRegistry;
use crate::metrics::{Metrics, MetricsEndpoint, Sources};
use crate::notify::{self, Notifier, NotifyOptions};
use crate::pki::{self, PkiPaths};
use crate::receipt::{Notary, ServiceKey};
use crate::reload::{ReloadError, Reloaded, Reloader};
use crate::report::Reports;
use crate::store::{self, Store, StoreOptions};
use crate::tls::{self, CertFiles, LiveTls};
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
    /// The plain-text health port (`serve --health`); `None`: none, health
    /// is asked on the API's port only (see [`crate::health`]).
    pub health: Option<SocketAddr>,
    /// The metrics' address (`serve --metrics`): plain HTTP, `GET
    /// /metrics`; `None`: no metrics (see [`crate::metrics`]).
    pub metrics: Option<SocketAddr>,
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
            http: None,
            health: None,
            metrics: None,
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
            operators: Vec::new(),
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

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError(format!("cannot read {}: {e}", path.display())))
}

/// A started server.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The dashboard's address, when it runs.
    pub http: Option<SocketAddr>,
    /// The plain health port's address, when it runs.
    pub health: Option<SocketAddr>,
    /// The metrics endpoint's address, when it runs.
    pub metrics: Option<SocketAddr>,
    /// The development PKI folder, when the server uses one.
    pub dev_pki: Option<PathBuf>,
    state: HealthState,
    notifier: Arc<Notifier>,
    reloader: Arc<Reloader>,
    transfers: Arc<Transfers>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StartError>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, flushes the store and
    /// returns when all of it is done.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        // Probes first, so that load balancers stop sending here while
        // requests in flight finish.
        self.state.stopping();
        // Streams next: graceful shutdown waits for every open request, a
        // subscription never ends by itself, and an upload or download of
        // gigabytes would hold it for minutes (both resume).
        self.notifier.close();
        self.transfers.close();
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

impl ServerConfig {
    /// The checks that need nothing but the configuration: limits HTTP/2
    /// allows and that let the largest document in, a dashboard off
    /// loopback only with production certificates, and production
    /// certificates only with their signing-key registry.
    pub fn check(&self) -> Result<(), StartError> {
        // A message is a send (up to the document limit) or a chunk of an
        // upload (up to its own limit), whichever is larger.
        let message_limit = self
            .limits
            .max_document_bytes
            .max(crate::transfer::MAX_CHUNK_BYTES)
            + REQUEST_MARGIN;
        self.network
            .check(message_limit)
            .map_err(|e| fail("limits")(&e))?;
        if let Some(http) = self.http {
            if !http.ip().is_loopback() && self.tls.is_none() {
                return Err(StartError(format!(
                    "--http {http} is not a loopback address: there the dashboard is HTTPS with client certificates, configured by path (--tls-cert, --tls-key, --client-ca); the development PKI is for one machine and its server certificate names only localhost. Give those three, or a loopback address such as 127.0.0.1:8080"
                )));
            }
        }
        if self.tls.is_some() && self.signing_keys.is_none() {
            return Err(StartError(
                "with --tls-cert, give --signing-keys FILE: the registry of organisations' signing keys (see certs/README.md)".into(),
            ));
        }
        Ok(())
    }
}

/// Starts the service and returns once it accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    prepare(config).await?.open().await
}

/// A server on its way up: its configuration checked, its plain health port
/// (if asked for) answering NOT_SERVING, and its store not open yet, which
/// can take a while.
pub struct Starting {
    config: ServerConfig,
    state: HealthState,
    health_port: Option<HealthPort>,
}

/// Checks the configuration and opens the plain health port, if any.
pub async fn prepare(config: ServerConfig) -> Result<Starting, StartError> {
    // tonic is built with ring; say so explicitly in case another crate in
    // the build enabled a second provider, which would make rustls refuse to
    // pick one. An error here only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    config.check()?;
    let state = HealthState::new();
    let health_port = match config.health {
        None => None,
        Some(addr) => {
            let cannot = |e: std::io::Error| {
                StartError(format!(
                    "cannot listen for health checks (--health) on {addr}: {e}"
                ))
            };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(cannot)?;
            let port = health::serve_plain(listener, &state).map_err(cannot)?;
            tracing::info!("health checks (plain text) on {}", port.addr);
            Some(port)
        }
    };
    Ok(Starting {
        config,
        state,
        health_port,
    })
}

impl Starting {
    /// The plain health port's address, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_port.as_ref().map(|p| p.addr)
    }

    /// Opens the store and everything on it, serves, and returns once the
    /// API accepts connections (and health says SERVING).
    pub async fn open(self) -> Result<RunningServer, StartError> {
        serve(self.config, self.state, self.health_port).await
    }
}

async fn serve(
    config: ServerConfig,
    state: HealthState,
    health_port: Option<HealthPort>,
) -> Result<RunningServer, StartError> {
    let health_addr = health_port.as_ref().map(|p| p.addr);
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
        // Refused by `ServerConfig::check`.
        (None, None) => return Err(StartError("no --signing-keys".into())),
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

    let metrics = config.metrics.map(|_| Metrics::new());
    let (listener, committed) = notify::listener();
    let listener: Arc<dyn store::CommitListener> = match &metrics {
        Some(metrics) => Arc::new(metrics.observe(listener)),
        None => Arc::new(listener),
    };
    let engine =
        store::open_engine(&config.data_dir, &config.store).map_err(|e| fail("store")(&e))?;
    let store = Store::open(
        engine,
        &config.data_dir.join("attachments"),
        &config.store,
        Arc::new(Notary::new(service_key.clone())),
        listener,
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
    let warnings = Arc::new(Warnings::counted_in(metrics.clone()));
    let transfers = Transfers::new(store.clone(), exchange.clone(), config.uploads.clone())
        .map_err(|e| fail("uploads")(&e))?;
    let sweeper = tokio::spawn(transfers.clone().sweep_forever());
    let archive = Arc::new(Archive::new(store.clone(), exchange.clone()));
    let metrics_sources = Sources {
        store: store.clone(),
        archive: archive.clone(),
        notifier: notifier.clone(),
        data_dir: config.data_dir.clone(),
        server_cert: tls_files.cert.clone(),
        client_ca: tls_files.client_ca.clone(),
    };
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
    .max_decoding_message_size(
        config
            .limits
            .max_document_bytes
            .max(crate::transfer::MAX_CHUNK_BYTES)
            + REQUEST_MARGIN,
    )
    .max_encoding_message_size(config.limits.max_document_bytes + RESPONSE_MARGIN);

    let reflection = reflection()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(format!("cannot read the listening address: {e}")))?;
    // Bound before the dashboard starts, so that a port in use stops
    // `serve` with nothing left running.
    let metrics_listener = match config.metrics {
        Some(at) => Some((
            at,
            tokio::net::TcpListener::bind(at).await.map_err(|e| {
                StartError(format!(
                    "cannot listen for the metrics (--metrics) on {at}: {e}"
                ))
            })?,
        )),
        None => None,
    };
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
    let metrics_endpoint = match (&metrics, metrics_listener) {
        (Some(metrics), Some((at, listener))) => {
            let running = MetricsEndpoint::start(listener, metrics.clone(), metrics_sources)
                .map_err(|e| fail("the metrics")(&e))?;
            tracing::info!("metrics on http://{}/metrics", running.addr);
            if !at.ip().is_loopback() {
                tracing::info!(
                    "the metrics are plain HTTP without authentication: counts per organisation, no content; keep {at} reachable by Prometheus only"
                );
            }
            Some(running)
        }
        _ => None,
    };
    let metrics_addr = metrics_endpoint.as_ref().map(|m| m.addr);
    let max_document_bytes = config.limits.max_document_bytes;
    // Every HTTP/2 setting given, rather than left to the libraries'
    // defaults (tonic's advertise no limit on streams).
    let router = tonic::transport::Server::builder()
        // Outermost: it sees every call, those the admission layer refuses
        // too, and reads the caller that layer found from the answer.
        .layer(tower::util::option_layer(metrics.map(|m| m.layer())))
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
        .add_service(service)
        .add_service(state.service())
        .add_service(reflection.0)
        .add_service(reflection.1)
        .add_service(operations);

    // TLS is ours, not tonic's: the connection caps apply before it, the
    // handshake deadline runs on to the HTTP/2 preface, and each connection
    // takes the configuration current when it arrives (a reload swaps it).
    let incoming = admission::incoming(listener, live_tls, &network, warnings);
    let (shutdown, stop) = oneshot::channel::<()>();
    let tasks = notifier.clone();
    let stopping = state.clone();
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            })
            .await;
        // Said already when asked to stop; said here if the server failed.
        stopping.stopping();
        // The dashboard's pages read the store too: finish them first.
        if let Some(dashboard) = dashboard {
            dashboard.stop().await;
        }
        if let Some(endpoint) = metrics_endpoint {
            endpoint.stop().await;
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
        // Probes hear NOT_SERVING until the very end.
        if let Some(port) = health_port {
            port.stop().await;
        }
        served.map_err(|e| fail("server")(&e))?;
        closed.map_err(|e| fail("closing the store")(&e))
    });
    state.serving();
    tracing::info!("listening on {addr}");
    Ok(RunningServer {
        addr,
        http: http_addr,
        health: health_addr,
        metrics: metrics_addr,
        dev_pki,
        state,
        notifier,
        reloader,
        transfers,
        shutdown: Some(shutdown),
        task,
    })
}

/// Server reflection, v1 and v1alpha (`grpcurl` asks v1 first), each
/// listing every service on the port: the API, health, and both
/// reflections.
fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    StartError,
> {
    use tonic_reflection::{pb, server::Builder};
    let every_service = || {
        Builder::configure()
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = every_service()
        .register_encoded_file_descriptor_set(pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1();
    let v1alpha = every_service()
        .register_encoded_file_descriptor_set(pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    match (v1, v1alpha) {
        (Ok(v1), Ok(v1alpha)) => Ok((v1, v1alpha)),
        (Err(e), _) | (_, Err(e)) => Err(fail("server reflection")(&e)),
    }
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

//! `lienthong serve`: runs the service until SIGTERM or Ctrl-C; SIGHUP
//! reloads its certificates and signing keys.
//!
//! Every option here is also a key of the configuration file (`--config`)
//! and an environment variable (`LIENTHONG_` and the key): adding a field
//! to [`ServeArgs`] adds all three (see `layers.rs`), and its line to
//! `deploy/lienthong.toml`, which a test holds to this list.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use tonic::Code;

use super::error::{CliError, Result};
use super::output;
use crate::admission::NetworkLimits;
use crate::calendar::Calendar;
use crate::defaults;
use crate::exchange::Limits;
use crate::server::{self, ServerConfig, TlsFiles};
use crate::store::postgres::PostgresUrl;
use crate::store::{StoreEngine, StoreOptions};
use crate::transfer::UploadLimits;

/// The options of `serve`. Each `--KEY` is also `KEY = …` in the
/// configuration file and `LIENTHONG_KEY` in the environment; a flag wins
/// over the environment, which wins over the file.
#[derive(Args)]
pub struct ServeArgs {
    /// Read the configuration from FILE (TOML: the long names of these
    /// options as keys, e.g. `max-connections = 4096`; see
    /// deploy/lienthong.toml). The environment and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: the store, and the development PKI if no --tls-cert.
    #[arg(long, default_value = defaults::DATA_DIR)]
    pub data: PathBuf,
    /// Keep the store in the PostgreSQL database at URL
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or postgresql://)
    /// rather than embedded under DATA/store. Attachments over 8 KiB and
    /// uploads stay files under DATA/attachments: front ends that share a
    /// database must share that directory too.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value_t = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// Serve the dashboard on ADDR (off by default): plain HTTP on a
    /// loopback address (127.0.0.1:8080), where it shows the whole
    /// district; HTTPS with client certificates anywhere else, which needs
    /// --tls-cert, --tls-key and --client-ca.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Answer gRPC health checks on ADDR too (off by default), in plain
    /// text and without a client certificate, for probes that have none
    /// (Kubernetes): a loopback address, or the pod's own; never one the
    /// outside reaches. The API's port answers them with a certificate.
    #[arg(long, value_name = "ADDR")]
    pub health: Option<SocketAddr>,
    /// The log on stderr: `human` (one readable line per event) or `json`
    /// (one JSON object per line). RUST_LOG sets the level (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default):
    /// plain HTTP without authentication, counts and organisation codes
    /// only; bind it to loopback or a network only Prometheus reaches.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Directory of organisations (TOML); default: the built-in Hữu Lũng one.
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// Server certificate (PEM). With --tls-key and --client-ca, replaces
    /// the development PKI.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that client certificates must chain to.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Public holidays and working Saturdays by year (TOML), for counting
    /// working days; default: the built-in ones (deploy/holidays.toml).
    #[arg(long, value_name = "FILE")]
    pub holidays: Option<PathBuf>,
    /// The report's target: percent of documents exchanged electronically
    /// (rows below it are flagged).
    #[arg(long, value_name = "PERCENT", default_value_t = crate::report::DEFAULT_TARGET_PERCENT, value_parser = target_percent)]
    pub target_percent: f64,
    /// Registry of the organisations' public signing keys (TOML); default,
    /// with the development PKI: DATA/pki/signing-keys.toml.
    #[arg(long, value_name = "FILE")]
    pub signing_keys: Option<PathBuf>,
    /// Largest send request, in bytes: the document and the attachments it
    /// carries inside (larger attachments are uploaded before it, see
    /// --max-attachment-mib).
    #[arg(long, default_value_t = defaults::MAX_DOCUMENT_BYTES)]
    pub max_document_bytes: usize,
    /// Most recipients of one document, after groups are expanded.
    #[arg(long, default_value_t = defaults::MAX_RECIPIENTS)]
    pub max_recipients: usize,
    /// sled's page cache, in MiB (64 keeps a million documents under 300 MB
    /// of memory; more helps reads of large mailboxes).
    #[arg(long, default_value_t = defaults::CACHE_MIB)]
    pub cache_mib: u64,
    /// Mailbox events kept per organisation for subscribers to resume from.
    #[arg(long, default_value_t = defaults::EVENTS_KEPT)]
    pub events_kept: u64,
    /// Sign a checkpoint of the archive every this many documents...
    #[arg(long, default_value_t = defaults::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// ...and at least this often, in seconds, when documents came in.
    #[arg(long, default_value_t = defaults::CHECKPOINT_SECONDS as f64)]
    pub checkpoint_seconds: f64,
    /// Seconds without an event before a subscriber gets a heartbeat.
    #[arg(long, default_value_t = defaults::HEARTBEAT_SECONDS as f64)]
    pub heartbeat_seconds: f64,
    /// Events held for a subscriber that reads slowly before it is cut off.
    #[arg(long, default_value_t = defaults::EVENT_BUFFER)]
    pub event_buffer: usize,
    /// An operator who may take backups and reload (the NAME of the SAN
    /// URI urn:lienthong:operator:NAME in its certificate); repeat for
    /// several. Default: `admin` with the development PKI, nobody otherwise.
    #[arg(long = "operator", value_name = "NAME")]
    pub operators: Vec<String>,
    #[command(flatten)]
    pub uploads: UploadArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Uploads of large attachments (README, "Large attachments").
#[derive(Args)]
#[command(next_help_heading = "Large attachments")]
pub struct UploadArgs {
    /// Largest attachment that may be uploaded, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = defaults::MAX_ATTACHMENT_MIB, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_attachment_mib: u64,
    /// MiB one organisation's unfinished uploads and uploads not yet sent
    /// may take together.
    #[arg(long, value_name = "MIB", default_value_t = defaults::ORG_UPLOAD_QUOTA_MIB, value_parser = clap::value_parser!(u64).range(1..))]
    pub org_upload_quota_mib: u64,
    /// Seconds an unfinished upload is kept without a byte arriving, and a
    /// completed one waits to be sent, before they are removed.
    #[arg(long, value_name = "SECONDS", default_value_t = defaults::UPLOAD_TTL_SECONDS as f64, value_parser = upload_ttl)]
    pub upload_ttl_seconds: f64,
}

impl UploadArgs {
    fn limits(&self) -> UploadLimits {
        const MIB: u64 = 1024 * 1024;
        UploadLimits {
            max_attachment_bytes: self.max_attachment_mib.saturating_mul(MIB),
            org_quota_bytes: self.org_upload_quota_mib.saturating_mul(MIB),
            ttl: Duration::from_secs_f64(self.upload_ttl_seconds),
        }
    }
}

/// The limits against hostile or broken clients (README, "Security
/// limits"); the defaults say why each is what it is.
#[derive(Args)]
#[command(next_help_heading = "Connection and request limits")]
pub struct LimitArgs {
    /// Connections open at once, in all; more are closed at once, before TLS.
    #[arg(long, default_value_t = defaults::MAX_CONNECTIONS, value_parser = at_least_one)]
    pub max_connections: usize,
    /// Connections open at once from one source address (an IPv6 /64 is one).
    #[arg(long, default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS, value_parser = at_least_one)]
    pub max_connections_per_address: usize,
    /// Seconds for a new connection to complete its TLS handshake and start
    /// HTTP/2, else it is closed.
    #[arg(long, default_value_t = defaults::HANDSHAKE_SECONDS as f64, value_parser = seconds)]
    pub handshake_seconds: f64,
    /// Seconds a connection may stay open with no request in progress.
    #[arg(long, default_value_t = defaults::IDLE_SECONDS as f64, value_parser = seconds)]
    pub idle_seconds: f64,
    /// Seconds a request's body may send nothing before the request is
    /// refused and its memory freed.
    #[arg(long, default_value_t = defaults::STALL_SECONDS as f64, value_parser = seconds)]
    pub stall_seconds: f64,
    /// HTTP/2: requests in progress at once on one connection.
    #[arg(long, default_value_t = defaults::MAX_STREAMS_PER_CONNECTION, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,
    /// HTTP/2: KiB one request may send before the server takes them in.
    #[arg(long, default_value_t = defaults::STREAM_WINDOW_KIB, value_parser = clap::value_parser!(u32).range(1..=2_097_151))]
    pub stream_window_kib: u32,
    /// HTTP/2: KiB one connection may send before the server takes them in.
    #[arg(long, default_value_t = defaults::CONNECTION_WINDOW_KIB, value_parser = clap::value_parser!(u32).range(1..=2_097_151))]
    pub connection_window_kib: u32,
    /// HTTP/2: KiB of one request's headers.
    #[arg(long, default_value_t = defaults::MAX_HEADER_KIB, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_header_kib: u32,
    /// HTTP/2: the largest frame accepted, in KiB (16 to 16383).
    #[arg(long, default_value_t = defaults::MAX_FRAME_KIB, value_parser = clap::value_parser!(u32).range(16..=16_383))]
    pub max_frame_kib: u32,
    /// MiB of requests held in memory at once, for all callers; a request
    /// over it is refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = defaults::REQUEST_BUDGET_MIB, value_parser = at_least_one)]
    pub request_budget_mib: usize,
    /// MiB of requests held in memory at once for one organisation (at
    /// least the largest document and 1 MiB).
    #[arg(long, default_value_t = defaults::ORG_REQUEST_BUDGET_MIB, value_parser = at_least_one)]
    pub org_request_budget_mib: usize,
    /// Documents one organisation may send or record per minute, once its
    /// burst is spent; 0: no limit.
    #[arg(long, default_value_t = defaults::ORG_SENDS_PER_MINUTE)]
    pub org_sends_per_minute: u32,
    /// Documents one organisation may send at once before that rate applies.
    #[arg(long, default_value_t = defaults::ORG_SEND_BURST, value_parser = clap::value_parser!(u32).range(1..))]
    pub org_send_burst: u32,
}

impl LimitArgs {
    fn network(&self) -> NetworkLimits {
        const KIB: u32 = 1024;
        const MIB: usize = 1024 * 1024;
        NetworkLimits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            handshake: Duration::from_secs_f64(self.handshake_seconds),
            idle: Duration::from_secs_f64(self.idle_seconds),
            stall: Duration::from_secs_f64(self.stall_seconds),
            max_streams_per_connection: self.max_streams_per_connection,
            stream_window: self.stream_window_kib.saturating_mul(KIB),
            connection_window: self.connection_window_kib.saturating_mul(KIB),
            max_header_list: self.max_header_kib.saturating_mul(KIB),
            max_frame: self.max_frame_kib.saturating_mul(KIB),
            request_budget: self.request_budget_mib.saturating_mul(MIB),
            org_request_budget: self.org_request_budget_mib.saturating_mul(MIB),
            org_sends_per_minute: self.org_sends_per_minute,
            org_send_burst: self.org_send_burst,
        }
    }
}

/// How the log is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line: `timestamp`, `level`, `target`, the
    /// event's fields, and `span` with the request's `org`, `rpc` and
    /// `document_id`.
    Json,
}

impl ServeArgs {
    /// The server's configuration. Reads the holidays file, so that a bad
    /// one stops `serve` (and `config check`) at once.
    pub fn server_config(self) -> Result<ServerConfig> {
        let tls = match (self.tls_cert, self.tls_key, self.client_ca) {
            (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            _ => {
                return Err(CliError::from(
                    "production certificates need all three of --tls-cert, --tls-key and --client-ca (or tls-cert, tls-key and client-ca in the configuration file); without any of them, the development PKI is used",
                ))
            }
        };
        let calendar = Calendar::load(self.holidays.as_deref()).map_err(|e| {
            CliError::new(Code::FailedPrecondition, e.to_string())
                .with_hint("deploy/holidays.toml shows the format; without --holidays, the built-in holidays apply")
        })?;
        Ok(ServerConfig {
            data_dir: self.data,
            listen: self.listen,
            http: self.http,
            metrics: self.metrics,
            operators: self.operators.clone(),
            uploads: self.uploads.limits(),
            health: self.health,
            directory: self.directory,
            tls,
            signing_keys: self.signing_keys,
            calendar: Arc::new(calendar),
            target_percent: self.target_percent,
            limits: Limits {
                max_document_bytes: self.max_document_bytes,
                max_recipients: self.max_recipients,
            },
            network: self.limits.network(),
            store: StoreOptions {
                engine: store_engine(self.store.as_deref())?,
                cache_bytes: self.cache_mib * 1024 * 1024,
                events_kept: self.events_kept,
                checkpoint_every: self.checkpoint_every,
                ..StoreOptions::default()
            },
            checkpoint_interval: Duration::from_secs_f64(self.checkpoint_seconds.max(0.1)),
            notify: crate::notify::NotifyOptions {
                heartbeat: Duration::from_secs_f64(self.heartbeat_seconds.max(0.01)),
                buffer: self.event_buffer,
            },
        })
    }
}

/// The engine `--store` names. Checked here rather than by clap, whose
/// message would repeat the value, and a URL may hold a password.
pub(super) fn store_engine(url: Option<&str>) -> Result<StoreEngine> {
    match url {
        None => Ok(StoreEngine::Embedded),
        Some(url) => PostgresUrl::parse(url)
            .map(StoreEngine::Postgres)
            .map_err(|reason| CliError::new(Code::InvalidArgument, format!("--store: {reason}"))),
    }
}

/// The log on stderr, in `format`, at the level of RUST_LOG (default info).
fn start_log(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr closed) is dropped; the
        // default would report it with eprintln!, which panics.
        .log_internal_errors(false)
        .with_env_filter(filter);
    match format {
        LogFormat::Human => log.with_ansi(std::io::stderr().is_terminal()).init(),
        // The request's span alone, not the list of every span around the
        // event: there is only ever the one.
        LogFormat::Json => log
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

pub async fn run(args: ServeArgs) -> Result {
    start_log(args.log_format);
    if let Some(file) = &args.config {
        tracing::info!("configuration from {}", file.display());
    }
    let config = args.server_config()?;
    let data = config.data_dir.clone();
    let listen = config.listen;
    let running = server::start(config)
        .await
        .map_err(|e| start_error(e, &data, listen))?;
    if let Some(dir) = &running.dev_pki {
        tracing::info!(
            "development PKI: {} (clients: lienthong <command> --pki {} --as <org>)",
            dir.display(),
            dir.display()
        );
    }
    // The machine-readable signal that it accepts connections (see
    // `crate::process`), on stdout; the log is on stderr.
    let ready = crate::process::Ready {
        ready: true,
        addr: running.addr,
        pki: running.dev_pki.clone(),
        http: running.http,
        health: running.health,
        metrics: running.metrics,
    };
    output::announce(&serde_json::to_value(&ready).map_err(|e| e.to_string())?);
    wait_for_signal(&running).await;
    tracing::info!("shutting down: finishing requests in flight, then flushing");
    running.shutdown().await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// A failed start, with a hint where the cause is a likely one.
fn start_error(e: server::StartError, data: &std::path::Path, listen: SocketAddr) -> CliError {
    let message = e.to_string();
    // sled reports a store held by another process only in its message.
    if message.contains("could not acquire lock") {
        return CliError::new(
            Code::FailedPrecondition,
            format!("the store in {} is in use: {message}", data.display()),
        )
        .with_hint(format!(
            "another `lienthong serve` is running on {}; stop it first, or give another --data",
            data.display()
        ));
    }
    if message.contains("for the metrics (--metrics)") {
        return CliError::new(Code::Unavailable, message).with_hint(
            "something else is listening there; stop it, or give another --metrics (port 0 picks a free one)",
        );
    }
    if message.contains("for the dashboard (--http)") {
        return CliError::new(Code::Unavailable, message).with_hint(
            "something else is listening there; stop it, or give another --http (port 0 picks a free one)",
        );
    }
    if message.contains("for health checks (--health)") {
        return CliError::new(Code::Unavailable, message).with_hint(
            "something else is listening there; stop it, or give another --health (port 0 picks a free one)",
        );
    }
    if message.contains("cannot listen on") {
        return CliError::new(Code::Unavailable, message).with_hint(format!(
            "something else is listening on {listen}; stop it, or give another --listen (port 0 picks a free one)"
        ));
    }
    CliError::new(Code::FailedPrecondition, message)
}

/// Returns on SIGTERM or Ctrl-C; reloads on each SIGHUP meanwhile (the
/// reload logs what it did or why it refused).
async fn wait_for_signal(running: &server::RunningServer) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return,
                    _ = term.recv() => return,
                    _ = hangup.recv() => {
                        // Reading a few files: quick, but blocking.
                        let _ = tokio::task::block_in_place(|| running.reload());
                    }
                }
            }
        }
    }
    let _ = running;
    let _ = tokio::signal::ctrl_c().await;
}

/// A whole number of at least 1.
fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

/// A duration in seconds, more than 0 and at most a day.
fn seconds(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds above 0 and at most 86400"
        )),
    }
}

/// The upload time-to-live: more than 0, at most a year.
fn upload_ttl(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 366.0 * 86_400.0 => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds above 0 and at most a year (31622400)"
        )),
    }
}

/// A target between 0 and 100.
fn target_percent(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a percentage from 0 to 100")),
    }
}

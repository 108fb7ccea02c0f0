//! `lienthong serve`: runs the service until SIGTERM or Ctrl-C; SIGHUP
//! reloads its certificates and signing keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use tonic::Code;

use super::error::{CliError, Result};
use super::output;
use crate::calendar::Calendar;
use crate::defaults;
use crate::exchange::Limits;
use crate::server::{self, ServerConfig, TlsFiles};
use crate::store::StoreOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// Data directory: the store, and the development PKI if no --tls-cert.
    #[arg(long, env = "LIENTHONG_DATA", default_value = defaults::DATA_DIR)]
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LIENTHONG_LISTEN", default_value_t = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// Directory of organisations (TOML); default: the built-in Hữu Lũng one.
    #[arg(long, env = "LIENTHONG_DIRECTORY")]
    pub directory: Option<PathBuf>,
    /// Server certificate (PEM). With --tls-key and --client-ca, replaces
    /// the development PKI.
    #[arg(long, requires_all = ["tls_key", "client_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires_all = ["tls_cert", "client_ca"])]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that client certificates must chain to.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub client_ca: Option<PathBuf>,
    /// Public holidays and working Saturdays by year (TOML), for counting
    /// working days; default: the built-in ones (deploy/holidays.toml).
    #[arg(long, env = "LIENTHONG_HOLIDAYS")]
    pub holidays: Option<PathBuf>,
    /// The report's target: percent of documents exchanged electronically
    /// (rows below it are flagged).
    #[arg(long, value_name = "PERCENT", default_value_t = crate::report::DEFAULT_TARGET_PERCENT, value_parser = target_percent)]
    pub target_percent: f64,
    /// Registry of the organisations' public signing keys (TOML); default,
    /// with the development PKI: DATA/pki/signing-keys.toml.
    #[arg(long, env = "LIENTHONG_SIGNING_KEYS")]
    pub signing_keys: Option<PathBuf>,
    /// Largest document, attachments included, in bytes.
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
}

pub async fn run(args: ServeArgs) -> Result {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A log line that cannot be written (stderr closed) is dropped; the
        // default would report it with eprintln!, which panics.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let tls = match (args.tls_cert, args.tls_key, args.client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
            cert,
            key,
            client_ca,
        }),
        _ => None,
    };
    // Read before anything starts, so that a bad file stops `serve` at once.
    let calendar = Calendar::load(args.holidays.as_deref()).map_err(|e| {
        CliError::new(Code::FailedPrecondition, e.to_string())
            .with_hint("deploy/holidays.toml shows the format; without --holidays, the built-in holidays apply")
    })?;
    let config = ServerConfig {
        data_dir: args.data,
        listen: args.listen,
        directory: args.directory,
        tls,
        signing_keys: args.signing_keys,
        calendar: Arc::new(calendar),
        target_percent: args.target_percent,
        limits: Limits {
            max_document_bytes: args.max_document_bytes,
            max_recipients: args.max_recipients,
        },
        store: StoreOptions {
            cache_bytes: args.cache_mib * 1024 * 1024,
            events_kept: args.events_kept,
            checkpoint_every: args.checkpoint_every,
            ..StoreOptions::default()
        },
        checkpoint_interval: std::time::Duration::from_secs_f64(args.checkpoint_seconds.max(0.1)),
        notify: crate::notify::NotifyOptions {
            heartbeat: std::time::Duration::from_secs_f64(args.heartbeat_seconds.max(0.01)),
            buffer: args.event_buffer,
        },
        operators: args.operators,
    };
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

/// A target between 0 and 100.
fn target_percent(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a percentage from 0 to 100")),
    }
}

//! The command line: one binary that is both the server (`serve`) and its
//! client. Names and flags here are a contract that scripts rely on.
//!
//! Conventions: results on stdout (one JSON document with `--json`, else a
//! readable table), errors on stderr with a non-zero exit code: 1 when the
//! server or the system refused, 2 for a usage error.

mod commands;
mod output;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "lienthong",
    version,
    about = "Send, route and keep official documents between a district's departments and communes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Send a document as the organisation of --as.
    Send(Box<SendArgs>),
    /// List the documents received, newest first.
    Inbox(ListArgs),
    /// List the documents sent, newest first, with their recipients.
    Outbox(ListArgs),
    /// Show one document; --save writes its attachments.
    Show(ShowArgs),
    /// Print mailbox events as they happen, one line each, until interrupted.
    Watch(WatchArgs),
    /// Check a document saved with `show --save`, offline: the sender's
    /// signature, the service's receipt, and every attachment.
    Verify(VerifyArgs),
    /// List the organisations and groups documents can be sent to.
    Directory(DirectoryArgs),
    /// Measure: concurrent clients sending documents over mutual TLS.
    Bench(BenchArgs),
    /// Fill a stopped server's data directory with signed documents, for
    /// measuring at scale.
    Fill(FillArgs),
    /// The archive: proofs that documents are in the log and that the log
    /// only grows, and an offline audit.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Certificates for a deployment.
    #[command(subcommand)]
    Pki(PkiCommand),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Data directory: the store, and the development PKI if no --tls-cert.
    #[arg(long, env = "LIENTHONG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LIENTHONG_LISTEN", default_value = "127.0.0.1:50051")]
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
    /// Registry of the organisations' public signing keys (TOML); default,
    /// with the development PKI: DATA/pki/signing-keys.toml.
    #[arg(long, env = "LIENTHONG_SIGNING_KEYS")]
    pub signing_keys: Option<PathBuf>,
    /// Largest document, attachments included, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    pub max_document_bytes: usize,
    /// Most recipients of one document, after groups are expanded.
    #[arg(long, default_value_t = 500)]
    pub max_recipients: usize,
    /// sled's page cache, in MiB (64 keeps a million documents under 300 MB
    /// of memory; more helps reads of large mailboxes).
    #[arg(long, default_value_t = 64)]
    pub cache_mib: u64,
    /// Mailbox events kept per organisation for subscribers to resume from.
    #[arg(long, default_value_t = 10_000)]
    pub events_kept: u64,
    /// Sign a checkpoint of the archive every this many documents...
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// ...and at least this often, in seconds, when documents came in.
    #[arg(long, default_value_t = 60.0)]
    pub checkpoint_seconds: f64,
    /// Seconds without an event before a subscriber gets a heartbeat.
    #[arg(long, default_value_t = 15.0)]
    pub heartbeat_seconds: f64,
    /// Events held for a subscriber that reads slowly before it is cut off.
    #[arg(long, default_value_t = 1024)]
    pub event_buffer: usize,
}

/// How a client command reaches the server and who it is.
#[derive(Args, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(
        long,
        env = "LIENTHONG_SERVER",
        default_value = "https://127.0.0.1:50051"
    )]
    pub server: String,
    /// PKI folder holding ca.crt and clients.toml.
    #[arg(long, env = "LIENTHONG_PKI", default_value = "./data/pki")]
    pub pki: PathBuf,
    /// The organisation to act as (code or alias); its client certificate
    /// is looked up in the PKI folder.
    #[arg(long = "as", env = "LIENTHONG_AS", value_name = "ORG")]
    pub as_org: Option<String>,
    /// Client certificate (PEM), instead of looking it up by --as.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA certificate of the server (PEM); default: ca.crt in the PKI folder.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum UrgencyArg {
    Normal,
    Khan,
    ThuongKhan,
    HoaToc,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SecrecyArg {
    None,
    Mat,
    ToiMat,
    TuyetMat,
}

#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Recipients: organisation codes or aliases, or groups such as all-communes.
    #[arg(long, required = true, value_delimiter = ',', value_name = "R[,R...]")]
    pub to: Vec<String>,
    /// Document type: a code (chi-thi, cong-van, ...) or abbreviation (CT, QĐ, ...).
    #[arg(long = "type", value_name = "TYPE")]
    pub document_type: String,
    /// Number (số), restarting each year.
    #[arg(long)]
    pub number: u64,
    /// Notation (ký hiệu), e.g. CT-UBND.
    #[arg(long)]
    pub notation: String,
    /// Summary line (trích yếu).
    #[arg(long)]
    pub subject: String,
    /// Date of issue, YYYY-MM-DD; default today (Vietnam time).
    #[arg(long)]
    pub date: Option<String>,
    /// Place of issue.
    #[arg(long, default_value = "")]
    pub place: String,
    /// Short content.
    #[arg(long, default_value = "")]
    pub content: String,
    #[arg(long, default_value = "")]
    pub signer_name: String,
    #[arg(long, default_value = "")]
    pub signer_position: String,
    /// Signing authority: TM., KT., TL., TUQ. or Q.
    #[arg(long, default_value = "")]
    pub competence: String,
    #[arg(long, value_enum, default_value = "normal")]
    pub urgency: UrgencyArg,
    #[arg(long, value_enum, default_value = "none")]
    pub secrecy: SecrecyArg,
    /// Deadline for handling, YYYY-MM-DD.
    #[arg(long)]
    pub due: Option<String>,
    /// Id of the document this one answers.
    #[arg(long)]
    pub reply_to: Option<String>,
    /// A file to attach; repeat for several.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// A line of the printed "nơi nhận" list; repeat for several.
    #[arg(long, value_name = "TEXT")]
    pub to_place: Vec<String>,
    /// Makes retries safe: the same key and content returns the first send.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The organisation's document signing key (PKCS#8 PEM); default: the
    /// one listed for --as in the PKI folder's clients.toml.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Entries per page (at most 500).
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
    /// Continue from the next_page_token of an earlier listing.
    #[arg(long, default_value = "")]
    pub page_token: String,
    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Document id.
    pub id: String,
    /// Write each attachment into DIR under its own name.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
}

#[derive(Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Start after this event sequence (replaying what is stored); default:
    /// only events from now on.
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// Print heartbeats too.
    #[arg(long)]
    pub heartbeats: bool,
}

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Write the inclusion proof of a document you sent or received.
    Prove {
        #[command(flatten)]
        conn: Connection,
        /// Document id.
        id: String,
        /// Prove it in the checkpoint of this size; default the latest.
        #[arg(long, default_value_t = 0)]
        tree_size: u64,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write the proof that the checkpoint of NEW leaves extends that of OLD.
    Consistency {
        #[command(flatten)]
        conn: Connection,
        old: u64,
        new: u64,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Show the latest signed checkpoint, or make one now with --fresh.
    Checkpoint {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        fresh: bool,
    },
    /// Find documents you sent or received.
    Search {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        filter: ArchiveFilter,
    },
    /// Export documents you sent or received (attachments, signatures,
    /// receipts, inclusion proofs) as a self-contained folder.
    Export {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        filter: ArchiveFilter,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Recompute the whole archive of a stopped server's data directory (or
    /// a copy) and report the first mismatch.
    Audit {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
}

/// Which documents: every condition given must hold.
#[derive(Args, Clone, Default)]
pub struct ArchiveFilter {
    /// Sent by this organisation (code or alias).
    #[arg(long)]
    pub sender: Option<String>,
    /// Received by this organisation (code or alias).
    #[arg(long)]
    pub recipient: Option<String>,
    #[arg(long)]
    pub number: Option<u64>,
    #[arg(long)]
    pub notation: Option<String>,
    /// Type code or abbreviation.
    #[arg(long = "type")]
    pub document_type: Option<String>,
    /// Date of issue from (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// Date of issue until (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A folder written by `show --save`, or a proof file written by
    /// `archive prove` or `archive consistency`.
    pub dir: PathBuf,
    /// The registry of organisations' signing keys you trust (the server's
    /// signing-keys.toml); default: signing-keys.toml in the PKI folder if
    /// there is one, else the sender's key saved with the document, which
    /// the receipt names by its digest.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// The service public key you trust (PEM, the service's
    /// service-key.pub.pem); default: service-key.pub.pem in the PKI folder.
    /// The key saved with the evidence is never trusted.
    #[arg(long, value_name = "FILE")]
    pub service_key: Option<PathBuf>,
    /// PKI folder holding the trusted service-key.pub.pem (and
    /// signing-keys.toml), used when --service-key (--keys) is not given.
    #[arg(long, env = "LIENTHONG_PKI", default_value = "./data/pki")]
    pub pki: PathBuf,
    /// Print the checks as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DirectoryArgs {
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Server URL; without it, bench starts a server of its own on a
    /// temporary data directory and reports its CPU time and peak memory.
    #[arg(long)]
    pub server: Option<String>,
    /// PKI folder of the given server.
    #[arg(long, default_value = "./data/pki")]
    pub pki: PathBuf,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Stop after this many documents in all.
    #[arg(long)]
    pub count: Option<u64>,
    /// Attachment size per document, in bytes (0: no attachment).
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// Recipients of every document.
    #[arg(long, value_delimiter = ',', default_value = "xa-van-nham")]
    pub to: Vec<String>,
    /// Organisations that send, one per client in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "phong-noi-vu,phong-tu-phap,phong-tc-kh,phong-tn-mt,phong-ld-tbxh,phong-vh-tt,phong-gd-dt"
    )]
    pub senders: Vec<String>,
    /// What the clients do: `send` documents, or read the first `inbox` page.
    #[arg(long, default_value = "send", value_parser = ["send", "inbox"])]
    pub operation: String,
    /// The pid of the --server given, to report its CPU time and peak RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Subscribers to the recipients' event streams (spread over them), to
    /// measure the delay from acknowledgement to notification.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// Print the figures as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Instead of a load, measure this machine's ceiling for the work: sign
    /// and verify costs per algorithm, SHA-256 throughput, and fsyncs per
    /// second in --ceiling-dir.
    #[arg(long)]
    pub ceiling: bool,
    /// Instead of one load, the side-by-side comparison with NATS JetStream
    /// (workloads a, b, c; needs the `jetstream` build feature).
    #[arg(long)]
    pub compare_jetstream: bool,
    /// Rounds per workload for --compare-jetstream.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Instead of a load, the archive's cost of an append and of a proof at
    /// 1 000, 100 000 and 1 000 000 leaves (a scratch log in --ceiling-dir).
    #[arg(long)]
    pub archive_costs: bool,
    /// Where to measure fsyncs (the disk of the data directory).
    #[arg(long, default_value = ".")]
    pub ceiling_dir: PathBuf,
    /// An RSA private key (PKCS#8 PEM) to include RSA in --ceiling; ring
    /// cannot generate one.
    #[arg(long, value_name = "FILE")]
    pub rsa_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct FillArgs {
    #[arg(long, default_value = "./data")]
    pub data: PathBuf,
    #[arg(long)]
    pub count: u64,
    #[arg(long, value_delimiter = ',', default_value = "xa-van-nham")]
    pub to: Vec<String>,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
}

#[derive(Subcommand)]
pub enum PkiCommand {
    /// Create a development PKI (CA, server and client certificates) in DIR,
    /// or add client certificates for organisations that have none.
    Init {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Directory of organisations (TOML); default: the built-in one.
        #[arg(long)]
        directory: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve(args).await,
            Command::Send(args) => commands::send(*args).await,
            Command::Inbox(args) => commands::inbox(args).await,
            Command::Outbox(args) => commands::outbox(args).await,
            Command::Show(args) => commands::show(args).await,
            Command::Watch(args) => commands::watch(args).await,
            Command::Verify(args) => commands::verify(args),
            Command::Directory(args) => commands::directory(args).await,
            Command::Bench(args) => commands::bench(args).await,
            Command::Fill(args) => {
                let seconds =
                    crate::bench::fill(&args.data, args.count, &args.to, args.in_flight).await?;
                println!(
                    "filled {} documents in {seconds:.1} s ({:.0}/s)",
                    args.count,
                    args.count as f64 / seconds
                );
                Ok(())
            }
            Command::Archive(command) => commands::archive(command).await,
            Command::Pki(PkiCommand::Init { dir, directory }) => {
                commands::pki_init(&dir, directory.as_deref())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

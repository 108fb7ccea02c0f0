//! `lienthong bench`: measurements, one subcommand each. The measuring is
//! in [`crate::bench`]; this file holds the flags and prints the figures.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::error::Result;
use super::output::{self, print_json};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Concurrent clients sending documents (or reading an inbox page) over
    /// mutual TLS, against a server of its own or --server.
    Load(LoadArgs),
    /// This machine's ceiling for the work: sign and verify costs per
    /// algorithm, SHA-256 throughput, and fsyncs per second in --dir.
    Ceiling(CeilingArgs),
    /// The archive's cost of an append and of a proof at 1 000, 100 000 and
    /// 1 000 000 leaves (a scratch log in --dir).
    ArchiveCosts(ArchiveCostsArgs),
    /// The report's cost on a running server: a period's report and one
    /// organisation's explanation, each timed against a trivial call.
    Report(ReportBenchArgs),
    /// The side-by-side comparison with NATS JetStream (workloads a to d).
    #[cfg(feature = "jetstream")]
    CompareJetstream(CompareArgs),
}

#[derive(Args)]
pub struct LoadArgs {
    /// Server URL (repeatable: clients are spread over the servers in
    /// turn); without it, bench starts servers of its own on a temporary
    /// data directory and reports their CPU time and peak memory.
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,
    /// With servers of its own: their store, a PostgreSQL database
    /// (`postgres://…`), instead of the embedded one.
    #[arg(long, value_name = "URL", conflicts_with = "servers")]
    pub store: Option<String>,
    /// With servers of its own: how many front ends to start, on one data
    /// directory and the one --store.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "store")]
    pub front_ends: usize,
    /// PKI folder of the given server.
    #[arg(long, default_value = crate::defaults::PKI_DIR)]
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
    /// What the clients do: `send` documents, read the first `inbox` page,
    /// or, as the recipients of --to, move documents through the signed
    /// `status` changes 03, 04, 05 and 06 (four per document).
    #[arg(long, default_value = "send", value_parser = ["send", "inbox", "status"])]
    pub operation: String,
    /// With --operation status: documents sent to each client before the
    /// clock starts (each takes four changes).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub prepare: usize,
    /// The pid of a --server given (repeatable), to report the servers' CPU
    /// time and peak RSS.
    #[arg(long = "server-pid", value_name = "PID", requires = "servers")]
    pub server_pids: Vec<u32>,
    /// Subscribers to the recipients' event streams (spread over them), to
    /// measure the delay from acknowledgement to notification.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// Print the figures as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CeilingArgs {
    /// Where to measure fsyncs (the disk of the data directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// An RSA private key (PKCS#8 PEM) to include RSA; ring cannot
    /// generate one.
    #[arg(long, value_name = "FILE")]
    pub rsa_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct ArchiveCostsArgs {
    /// Where to grow the scratch archive (the disk of the data directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Args)]
pub struct ReportBenchArgs {
    #[command(flatten)]
    pub conn: super::connection::Connection,
    /// The period of the report (as `report --period`).
    #[arg(long, value_name = "P")]
    pub period: String,
    /// Also time `report --explain ORG` for this period.
    #[arg(long, value_name = "ORG")]
    pub explain: Option<String>,
    /// Runs of each call; the median is reported.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
}

#[cfg(feature = "jetstream")]
#[derive(Args)]
pub struct CompareArgs {
    /// Rounds per workload, alternating which side goes first.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// How long each side sends per round, in seconds (workloads a to c;
    /// d is one transfer per side and round).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// The workloads to run, by letter: a (4 KiB × 1, 64 senders), b
    /// (100 KiB × 23, 16 senders), c (1 MiB × 1, 4 senders), d (one 256 MiB
    /// attachment, streamed; JetStream's object store).
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d", value_parser = crate::compare::WORKLOAD_IDS)]
    pub workloads: Vec<String>,
}

pub async fn run(command: BenchCommand) -> Result {
    match command {
        BenchCommand::Load(args) => load(args).await,
        BenchCommand::Ceiling(args) => {
            let rsa = match &args.rsa_key {
                Some(file) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
                ),
                None => None,
            };
            print_json(&crate::bench::ceilings(&args.dir, rsa.as_deref())?);
            Ok(())
        }
        BenchCommand::ArchiveCosts(args) => {
            let dir = tempfile::tempdir_in(&args.dir).map_err(|e| e.to_string())?;
            let engine = crate::store::open_engine(dir.path(), &Default::default())
                .map_err(|e| e.to_string())?;
            let rows = crate::store::archive_costs(engine.as_ref(), &[1_000, 100_000, 1_000_000])
                .map_err(|e| e.to_string())?;
            let json: Vec<_> = rows
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "leaves": c.leaves,
                        "append_us": c.append_us,
                        "inclusion_proof_us": c.inclusion_proof_us,
                        "inclusion_proof_node_reads": c.inclusion_proof_node_reads,
                        "consistency_proof_us": c.consistency_proof_us,
                    })
                })
                .collect();
            print_json(&serde_json::Value::Array(json));
            Ok(())
        }
        BenchCommand::Report(args) => report(args).await,
        #[cfg(feature = "jetstream")]
        BenchCommand::CompareJetstream(args) => {
            let note = |line: &str| output::note(line);
            print_json(
                &crate::compare::run(args.rounds, args.seconds, &args.workloads, &note).await?,
            );
            Ok(())
        }
    }
}

async fn load(args: LoadArgs) -> Result {
    let options = crate::bench::BenchOptions {
        servers: args.servers,
        store: args.store,
        front_ends: args.front_ends,
        pki: args.pki,
        clients: args.clients,
        duration: std::time::Duration::from_secs_f64(args.seconds.max(0.1)),
        count: args.count,
        size: args.size,
        to: args.to,
        senders: args.senders,
        subscribers: args.subscribers,
        operation: match args.operation.as_str() {
            "inbox" => crate::bench::Operation::Inbox,
            "status" => crate::bench::Operation::Status {
                prepare: args.prepare,
            },
            _ => crate::bench::Operation::Send,
        },
        server_pids: args.server_pids,
    };
    let report = crate::bench::run(&options).await?;
    if args.json {
        print_json(&report.to_json(&options));
    } else {
        output::write_text(&report.to_text(&options));
    }
    Ok(())
}

/// Times `runs` calls of each kind, interleaved so that a noisy moment of the
/// machine touches all three alike, and prints the medians in milliseconds.
/// The trivial call (the directory) is the floor: TLS, HTTP/2 and the
/// handler's round trip with no store work.
async fn report(args: ReportBenchArgs) -> Result {
    use std::time::Instant;
    let mut client = super::connection::connect(&args.conn).await?;
    let runs = args.runs.max(1);
    let (mut trivial, mut report, mut explain) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rows, mut documents) = (0, 0);
    for _ in 0..runs {
        let start = Instant::now();
        client
            .get_directory(crate::pb::GetDirectoryRequest {})
            .await?;
        trivial.push(start.elapsed().as_secs_f64() * 1e3);

        let start = Instant::now();
        let answer = client
            .get_report(crate::pb::GetReportRequest {
                period: args.period.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        report.push(start.elapsed().as_secs_f64() * 1e3);
        rows = answer.rows.len();

        if let Some(organization) = &args.explain {
            let start = Instant::now();
            let answer = client
                .explain_report(crate::pb::ExplainReportRequest {
                    organization: organization.clone(),
                    period: args.period.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            explain.push(start.elapsed().as_secs_f64() * 1e3);
            documents = answer.sent_electronic.len()
                + answer.sent_paper.len()
                + answer.received_electronic.len()
                + answer.received_paper.len();
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    print_json(&serde_json::json!({
        "period": args.period,
        "runs": runs,
        "trivial_call_ms": median(trivial),
        "report_ms": median(report),
        "report_rows": rows,
        "explain": args.explain,
        "explain_ms": median(explain),
        "explain_documents_sent_and_received": documents,
    }));
    Ok(())
}

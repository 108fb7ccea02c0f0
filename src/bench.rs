//! `lienthong bench`: a load generator over real mutual TLS.
//!
//! N concurrent clients send documents of a given size to a given recipient
//! set, for a given time or count, against servers it starts itself (child
//! processes on a temporary data directory, so that the servers' own CPU time
//! and peak memory can be read from /proc: one, or several front ends on one
//! PostgreSQL store) or ones given by URL. Clients are spread over the
//! servers in turn. It reports documents/s, MB/s, acknowledgement latency
//! percentiles and the machine.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{self, connect_as, AttachmentFile};
use crate::pb;
use crate::pki::{self, PkiPaths};
use crate::process::ServeProcess;

/// What a load's clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Send documents.
    Send,
    /// Read the first page of the first recipient's inbox, over and over.
    Inbox,
    /// As recipients, move documents through 03, 04, 05 and 06, each change
    /// signed: first (untimed) a sender sends each client `prepare`
    /// documents, then the clients change their statuses.
    Status { prepare: usize },
}

impl Operation {
    /// What one acknowledged operation is, in reports.
    pub fn unit(self) -> &'static str {
        match self {
            Operation::Send => "documents",
            Operation::Inbox => "inbox pages",
            Operation::Status { .. } => "status changes",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Servers to measure, clients spread over them in turn; none: start
    /// `front_ends` servers.
    pub servers: Vec<String>,
    /// With servers of its own: the store they share (`postgres://…`);
    /// `None`: one server on the embedded store.
    pub store: Option<String>,
    /// With servers of its own: how many, on one data directory and
    /// `store` (more than one needs `store`).
    pub front_ends: usize,
    pub pki: PathBuf,
    pub clients: usize,
    pub duration: Duration,
    /// Stop after this many sends in all, if given before the duration.
    pub count: Option<u64>,
    /// Attachment bytes per document.
    pub size: usize,
    pub to: Vec<String>,
    /// Organisations that send, in turn per client.
    pub senders: Vec<String>,
    /// Subscribers to the recipients' event streams, spread over them, to
    /// measure the delay from a send's acknowledgement to its notification.
    pub subscribers: usize,
    /// What the clients do.
    pub operation: Operation,
    /// The pids of the servers given, to read their CPU time and peak RSS.
    pub server_pids: Vec<u32>,
}

/// The servers a run measures.
struct Servers {
    urls: Vec<String>,
    pki: PathBuf,
    /// Known only for servers started here or given with their pids.
    pids: Vec<u32>,
}

impl Servers {
    /// The server of the `i`-th client: each in turn.
    fn url(&self, i: usize) -> &str {
        &self.urls[i % self.urls.len()]
    }

    /// Their CPU time in all, if every one can be read.
    fn cpu_seconds(&self) -> Option<f64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|pid| cpu_seconds(*pid)).sum()
    }

    /// The largest peak RSS among them.
    fn peak_rss(&self) -> Option<u64> {
        self.pids.iter().filter_map(|pid| peak_rss(*pid)).max()
    }
}

/// The figures of one run.
#[derive(Debug)]
pub struct BenchReport {
    pub documents: u64,
    pub errors: u64,
    pub seconds: f64,
    pub bytes_per_document: usize,
    pub recipients: usize,
    pub latencies: Vec<Duration>,
    /// The servers' CPU time in all.
    pub server_cpu_seconds: Option<f64>,
    /// The largest of the servers' peak RSS.
    pub server_peak_rss_bytes: Option<u64>,
    /// Acknowledged operations per server, in the order of the URLs.
    pub per_server: Vec<u64>,
    /// Delay from acknowledgement to each subscriber's receipt of the event;
    /// zero where the event arrived before the sender had its reply.
    pub notify_delays: Vec<Duration>,
    /// Notifications expected (documents × subscribers).
    pub notify_expected: u64,
    /// What the first failed send said, if one failed.
    pub first_error: Option<String>,
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

impl BenchReport {
    fn new(bytes_per_document: usize) -> BenchReport {
        BenchReport {
            documents: 0,
            errors: 0,
            seconds: 0.0,
            bytes_per_document,
            recipients: 0,
            latencies: Vec::new(),
            server_cpu_seconds: None,
            server_peak_rss_bytes: None,
            per_server: Vec::new(),
            notify_delays: Vec::new(),
            notify_expected: 0,
            first_error: None,
        }
    }

    /// Closes the run: its length, the sorted latencies, and the servers'
    /// CPU time since `cpu_before` and peak memory, when their pids are known.
    fn finish(&mut self, started: Instant, servers: &Servers, cpu_before: Option<f64>) {
        self.seconds = started.elapsed().as_secs_f64();
        self.documents = self.latencies.len() as u64;
        self.latencies.sort_unstable();
        if let Some(before) = cpu_before {
            self.server_cpu_seconds = servers.cpu_seconds().map(|after| after - before);
            self.server_peak_rss_bytes = servers.peak_rss();
        }
    }

    /// Counts `done` operations of the `i`-th client against its server.
    fn count_for(&mut self, servers: &Servers, i: usize, done: usize) {
        self.per_server.resize(servers.urls.len(), 0);
        self.per_server[i % servers.urls.len()] += done as u64;
    }

    fn percentile(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies, p)
    }

    pub fn documents_per_second(&self) -> f64 {
        self.documents as f64 / self.seconds
    }

    pub fn to_json(&self, options: &BenchOptions) -> serde_json::Value {
        json!({
            "machine": machine(),
            "operation": options.operation.unit(),
            "clients": options.clients,
            "servers": self.per_server.len(),
            "per_server": self.per_server,
            "document_bytes": self.bytes_per_document,
            "recipients": self.recipients,
            "documents": self.documents,
            "errors": self.errors,
            "seconds": self.seconds,
            "documents_per_second": self.documents_per_second(),
            "megabytes_per_second": self.documents_per_second() * self.bytes_per_document as f64 / 1e6,
            "ack_latency_ms": {
                "p50": self.percentile(0.50),
                "p90": self.percentile(0.90),
                "p99": self.percentile(0.99),
                "max": self.percentile(1.0),
            },
            "subscribers": options.subscribers,
            "notify_delay_ms": {
                "received": self.notify_delays.len(),
                "expected": self.notify_expected,
                "p50": percentile_ms(&self.notify_delays, 0.50),
                "p99": percentile_ms(&self.notify_delays, 0.99),
                "max": percentile_ms(&self.notify_delays, 1.0),
            },
            "server_cpu_seconds": self.server_cpu_seconds,
            "server_cpu_per_document_us": self.server_cpu_seconds.map(|s| s * 1e6 / self.documents.max(1) as f64),
            "server_peak_rss_bytes": self.server_peak_rss_bytes,
            "first_error": self.first_error,
        })
    }

    pub fn to_text(&self, options: &BenchOptions) -> String {
        let mut text = format!(
            "{} clients{}, {} bytes per document, {} recipients, {:.1} s on {}\n\
             {}: {} acknowledged, {} failed{}\n\
             throughput: {:.0} {}/s, {:.1} MB/s\n\
             ack latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n",
            options.clients,
            if self.per_server.len() > 1 {
                format!(" over {} servers", self.per_server.len())
            } else {
                String::new()
            },
            self.bytes_per_document,
            self.recipients,
            self.seconds,
            machine()["summary"].as_str().unwrap_or("?"),
            options.operation.unit(),
            self.documents,
            self.errors,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            self.documents_per_second(),
            options.operation.unit(),
            self.documents_per_second() * self.bytes_per_document as f64 / 1e6,
            self.percentile(0.50),
            self.percentile(0.90),
            self.percentile(0.99),
            self.percentile(1.0),
        );
        if options.subscribers > 0 {
            text.push_str(&format!(
                "notification delay ms ({} subscribers, {} of {} received): p50 {:.2}  p99 {:.2}  max {:.2}\n",
                options.subscribers,
                self.notify_delays.len(),
                self.notify_expected,
                percentile_ms(&self.notify_delays, 0.50),
                percentile_ms(&self.notify_delays, 0.99),
                percentile_ms(&self.notify_delays, 1.0),
            ));
        }
        if let (Some(cpu), Some(rss)) = (self.server_cpu_seconds, self.server_peak_rss_bytes) {
            text.push_str(&format!(
                "server{}: {:.1} CPU s ({:.0} µs per {}), peak RSS {:.1} MiB\n",
                if self.per_server.len() > 1 {
                    "s in all"
                } else {
                    ""
                },
                cpu,
                cpu * 1e6 / self.documents.max(1) as f64,
                options.operation.unit().trim_end_matches('s'),
                rss as f64 / 1048576.0
            ));
        }
        text
    }
}

/// What this machine is: CPU model, cores, memory, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cpu": model,
        "cores": cores,
        "memory_gib": mem_kib as f64 / 1048576.0,
        "kernel": kernel.trim(),
        "summary": format!("{cores} cores ({model}), {:.0} GiB", mem_kib as f64 / 1048576.0),
    })
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// The peak resident memory of a process so far (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

pub async fn run(options: &BenchOptions) -> Result<BenchReport, String> {
    // Servers of its own: child processes on one temporary data directory,
    // killed and reaped when `spawned` is dropped.
    let mut spawned = Vec::new();
    let _data = if options.servers.is_empty() {
        if options.front_ends > 1 && options.store.is_none() {
            return Err("several front ends need a shared store: give --store postgres://…".into());
        }
        let data =
            tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        // It measures the server, not the send rate per organisation.
        let mut args = vec!["--org-sends-per-minute", "0"];
        if let Some(store) = &options.store {
            args.extend(["--store", store.as_str()]);
        }
        // One after the other: the first makes the development PKI and the
        // service key that the others then read.
        for _ in 0..options.front_ends.max(1) {
            spawned.push(ServeProcess::start(&exe, data.path(), &args)?);
        }
        Some(data)
    } else {
        None
    };
    let servers = match spawned.first() {
        Some(first) => Servers {
            urls: spawned.iter().map(|s| s.url.clone()).collect(),
            pki: first.ready.pki.clone().unwrap_or_default(),
            pids: spawned.iter().map(|s| s.child.id()).collect(),
        },
        None => Servers {
            urls: options.servers.clone(),
            pki: options.pki.clone(),
            pids: options.server_pids.clone(),
        },
    };
    drive(options, &servers).await
}

async fn drive(options: &BenchOptions, servers: &Servers) -> Result<BenchReport, String> {
    let pki_dir = servers.pki.as_path();
    if options.clients == 0 || options.senders.is_empty() {
        return Err("bench needs at least one client and one sender".into());
    }
    match options.operation {
        Operation::Send => {}
        Operation::Inbox => return drive_inbox(options, servers).await,
        Operation::Status { prepare } => return drive_statuses(options, servers, prepare).await,
    }
    let content: Vec<u8> = (0..options.size).map(|i| (i % 251) as u8).collect();
    let attachments = if options.size > 0 {
        vec![AttachmentFile {
            name: "tai-lieu.pdf".into(),
            media_type: "application/pdf".into(),
            content,
        }]
    } else {
        Vec::new()
    };
    let mut clients = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        let sender = options.senders[i % options.senders.len()].clone();
        let signer =
            pki::find_signing_key(&PkiPaths::new(pki_dir), &sender).map_err(|e| e.to_string())?;
        let mut client = connect_as(servers.url(i), pki_dir, &sender).await?;
        let notation = notation(&mut client).await?;
        clients.push((i, sender, notation, Arc::new(signer), client));
    }
    // Every document needs a number unique for its sender in the year.
    let base = crate::clock::now_ms() as u64 % 10_000_000_000 * 5;
    let next_number = Arc::new(AtomicU64::new(base + 1));
    let sent = Arc::new(AtomicU64::new(0));
    let date = crate::clock::format_date(crate::clock::today());
    let acks: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> = Arc::default();
    let (stop_subscribers, subscribers) = subscribe_all(options, servers).await?;
    let cpu_before = servers.cpu_seconds();
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, sender, notation, signer, mut client) in clients {
        let (attachments, next_number, sent, date) = (
            attachments.clone(),
            next_number.clone(),
            sent.clone(),
            date.clone(),
        );
        let acks = acks.clone();
        let to = options.to.clone();
        let count = options.count;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error: Option<String> = None;
            let mut recipients = 0usize;
            while Instant::now() < deadline {
                if let Some(limit) = count {
                    if sent.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    }
                }
                let number = next_number.fetch_add(1, Ordering::Relaxed);
                let header = pb::Document {
                    from: sender.clone(),
                    to: to.clone(),
                    number,
                    notation: notation.clone(),
                    promulgation_date: date.clone(),
                    document_type: "cong-van".into(),
                    subject: format!("V/v kiểm tra tải, số {number}"),
                    ..Default::default()
                };
                // Unique content per document, so the content-addressed
                // store cannot skip writing it.
                let mut attachments = attachments.clone();
                for a in &mut attachments {
                    let stamp = number.to_be_bytes();
                    let n = stamp.len().min(a.content.len());
                    a.content[..n].copy_from_slice(&stamp[..n]);
                }
                // Signing is part of the client's work, inside the timing.
                let t0 = Instant::now();
                let request = match client::send_request(header, attachments, None, &signer) {
                    Ok(r) => r,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        errors += 1;
                        break;
                    }
                };
                match client.send(request).await {
                    Ok(r) => {
                        let acked = Instant::now();
                        latencies.push(acked - t0);
                        let r = r.into_inner();
                        recipients = r.deliveries.len();
                        if let Ok(mut acks) = acks.lock() {
                            acks.insert(r.id, acked);
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        first_error
                            .get_or_insert_with(|| format!("{:?}: {}", e.code(), e.message()));
                    }
                }
            }
            (i, latencies, errors, first_error, recipients)
        }));
    }
    let mut report = BenchReport::new(options.size);
    for task in tasks {
        let (i, latencies, errors, first_error, recipients) =
            task.await.map_err(|e| format!("a client failed: {e}"))?;
        report.count_for(servers, i, latencies.len());
        report.latencies.extend(latencies);
        report.errors += errors;
        if report.first_error.is_none() {
            report.first_error = first_error;
        }
        report.recipients = report.recipients.max(recipients);
    }
    report.finish(started, servers, cpu_before);
    report.notify_expected = report.documents * options.subscribers as u64;
    // Let the last notifications arrive (at most a few seconds), then stop.
    let drain_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < drain_until && delivered(&subscribers) < report.notify_expected {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_subscribers.send(true);
    let acks = acks.lock().map(|a| a.clone()).unwrap_or_default();
    for log in subscribers {
        let log = log.lock().map(|l| l.clone()).unwrap_or_default();
        for (id, received) in log {
            if let Some(acked) = acks.get(&id) {
                report
                    .notify_delays
                    .push(received.saturating_duration_since(*acked));
            }
        }
    }
    report.notify_delays.sort_unstable();
    Ok(report)
}

/// The client's organisation's abbreviation, from the directory.
async fn abbreviation(
    client: &mut pb::exchange_client::ExchangeClient<tonic::transport::Channel>,
) -> Result<String, String> {
    Ok(client
        .get_directory(pb::GetDirectoryRequest {})
        .await
        .map_err(|e| format!("the directory: {}", e.message()))?
        .into_inner()
        .caller
        .map(|o| o.abbreviation)
        .unwrap_or_default())
}

/// A công văn's notation for the client's organisation: its abbreviation,
/// then a unit.
pub async fn notation(
    client: &mut pb::exchange_client::ExchangeClient<tonic::transport::Channel>,
) -> Result<String, String> {
    let abbreviation = Some(abbreviation(client).await?).filter(|a| !a.is_empty());
    Ok(format!("{}-TH", abbreviation.as_deref().unwrap_or("VP")))
}

/// Clients acting as the first recipient read the first page of its inbox
/// (50 entries, each with its document's summary) over and over.
async fn drive_inbox(options: &BenchOptions, servers: &Servers) -> Result<BenchReport, String> {
    let org = options.to.first().ok_or("bench needs --to")?.clone();
    let mut clients = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        clients.push((i, connect_as(servers.url(i), &servers.pki, &org).await?));
    }
    let cpu_before = servers.cpu_seconds();
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut tasks = Vec::new();
    for (i, mut client) in clients {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut entries = 0usize;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let request = pb::ListMailboxRequest {
                    page_size: 50,
                    page_token: String::new(),
                };
                match client.list_inbox(request).await {
                    Ok(page) => {
                        latencies.push(t0.elapsed());
                        entries = page.into_inner().entries.len();
                    }
                    Err(_) => errors += 1,
                }
            }
            (i, latencies, errors, entries)
        }));
    }
    let mut report = BenchReport::new(0);
    for t in tasks {
        let (i, latencies, errors, entries) = t.await.map_err(|e| e.to_string())?;
        report.count_for(servers, i, latencies.len());
        report.latencies.extend(latencies);
        report.errors += errors;
        report.recipients = report.recipients.max(entries);
    }
    report.finish(started, servers, cpu_before);
    Ok(report)
}

/// Each client acts as a recipient (`--to`, in turn) and moves documents it
/// received through 03 registered, 04 assigned, 05 in progress and 06
/// completed, each change signed with the recipient's key: four changes per
/// document, as fast as acknowledged. The documents are sent first, by the
/// first sender, and not timed.
async fn drive_statuses(
    options: &BenchOptions,
    servers: &Servers,
    prepare: usize,
) -> Result<BenchReport, String> {
    use prost::Message;
    let pki_dir = servers.pki.as_path();
    let sender = options.senders.first().ok_or("bench needs a sender")?;
    let signer =
        pki::find_signing_key(&PkiPaths::new(pki_dir), sender).map_err(|e| e.to_string())?;
    let mut send_client = connect_as(servers.url(0), pki_dir, sender).await?;
    let abbreviation = abbreviation(&mut send_client).await?;
    // The documents of each client, sent before the clock starts.
    let mut work: Vec<(String, Vec<String>)> = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        let to = options.to[i % options.to.len().max(1)].clone();
        let mut ids = Vec::with_capacity(prepare);
        for _ in 0..prepare {
            let header = pb::Document {
                from: sender.clone(),
                to: vec![to.clone()],
                number: 0, // assigned by the service
                notation: format!("{abbreviation}-VP"),
                place: "Hữu Lũng".into(),
                promulgation_date: crate::clock::format_date(crate::clock::today()),
                document_type: "cong-van".into(),
                subject: "V/v đo thời gian cập nhật trạng thái".into(),
                ..Default::default()
            };
            let request = client::send_request(header, Vec::new(), None, &signer)?;
            let sent = send_client
                .send(request)
                .await
                .map_err(|e| format!("preparing: {}", e.message()))?;
            ids.push(sent.into_inner().id);
        }
        work.push((to, ids));
    }
    let mut clients = Vec::with_capacity(work.len());
    for (i, (to, ids)) in work.into_iter().enumerate() {
        let key = pki::find_signing_key(&PkiPaths::new(pki_dir), &to).map_err(|e| e.to_string())?;
        let client = connect_as(servers.url(i), pki_dir, &to).await?;
        clients.push((i, client, key, to, ids));
    }
    let cpu_before = servers.cpu_seconds();
    let started = Instant::now();
    let deadline = started + options.duration;
    let limit = options.count.unwrap_or(u64::MAX);
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, mut client, key, org, ids) in clients {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            'documents: for id in ids {
                for code in [3, 4, 5, 6] {
                    if Instant::now() >= deadline
                        || done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= limit
                    {
                        break 'documents;
                    }
                    let status = pb::StatusMessage {
                        document_id: id.clone(),
                        from: org.clone(),
                        code,
                        assigned_to: if code == 4 {
                            "Công chức Văn phòng".into()
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    }
                    .encode_to_vec();
                    let t0 = Instant::now();
                    let signed = key.sign_status(&status).map_err(|e| e.to_string());
                    let result = match signed {
                        Ok((key_id, signature)) => client
                            .change_status(pb::ChangeStatusRequest {
                                status,
                                signature: Some(pb::DocumentSignature { key_id, signature }),
                            })
                            .await
                            .map_err(|e| e.message().to_owned()),
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(_) => latencies.push(t0.elapsed()),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
            (i, latencies, errors, first_error)
        }));
    }
    let mut report = BenchReport::new(0);
    report.recipients = 1;
    for t in tasks {
        let (i, latencies, errors, first_error) = t.await.map_err(|e| e.to_string())?;
        report.count_for(servers, i, latencies.len());
        report.latencies.extend(latencies);
        report.errors += errors;
        if report.first_error.is_none() {
            report.first_error = first_error;
        }
    }
    report.finish(started, servers, cpu_before);
    Ok(report)
}

type DeliveryLog = Arc<std::sync::Mutex<Vec<(String, Instant)>>>;

fn delivered(logs: &[DeliveryLog]) -> u64 {
    logs.iter()
        .map(|l| l.lock().map_or(0, |l| l.len() as u64))
        .sum()
}

/// Opens `options.subscribers` event streams, spread over the recipients,
/// each logging when every event arrives, until told to stop.
async fn subscribe_all(
    options: &BenchOptions,
    servers: &Servers,
) -> Result<(tokio::sync::watch::Sender<bool>, Vec<DeliveryLog>), String> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut logs = Vec::new();
    if options.subscribers == 0 {
        return Ok((stop, logs));
    }
    // Groups are expanded with the built-in directory.
    let directory = crate::directory::Directory::builtin().map_err(|e| e.to_string())?;
    let mut recipients: Vec<String> = Vec::new();
    for name in &options.to {
        match directory.group(name) {
            Some(members) => recipients.extend(members.into_iter().map(|o| o.alias.clone())),
            None => recipients.push(name.clone()),
        }
    }
    for i in 0..options.subscribers {
        let org = &recipients[i % recipients.len()];
        let mut client = connect_as(servers.url(i), &servers.pki, org).await?;
        let mut stream = client
            .subscribe(pb::SubscribeRequest {
                after_seq: 0,
                from_now: true,
            })
            .await
            .map_err(|e| format!("subscribe as {org}: {}", e.message()))?
            .into_inner();
        let log: DeliveryLog = Arc::default();
        logs.push(log.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _client = client; // keep the connection
            loop {
                tokio::select! {
                    item = stream.message() => match item {
                        Ok(Some(pb::SubscribeResponse { item: Some(pb::subscribe_response::Item::Event(e)) })) => {
                            let now = Instant::now();
                            if let Ok(mut log) = log.lock() {
                                log.push((e.document_id, now));
                            }
                        }
                        Ok(Some(_)) => {}
                        _ => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
        });
    }
    Ok((stop, logs))
}

/// Runs `op` repeatedly for about `budget` and returns microseconds per call.
fn time_per_call(budget: Duration, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < budget {
        for _ in 0..16 {
            op();
        }
        calls += 16;
    }
    started.elapsed().as_secs_f64() * 1e6 / calls as f64
}

/// The machine's ceiling for this service's work, measured on one core:
/// signing and verifying with each accepted algorithm, SHA-256 throughput,
/// and fsyncs per second in `dir` (on the disk the data directory is on).
pub fn ceilings(dir: &Path, rsa_pem: Option<&str>) -> Result<serde_json::Value, String> {
    use crate::crypto::{document_message, SigningKey};
    let budget = Duration::from_millis(500);
    let document = vec![0x5au8; 600]; // a typical encoded header
    let mut algorithms = serde_json::Map::new();
    let mut keys: Vec<SigningKey> = vec![
        SigningKey::from_pem(&SigningKey::generate_ed25519_pem().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
        SigningKey::from_pem(
            &rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| e.to_string())?
                .serialize_pem(),
        )
        .map_err(|e| e.to_string())?,
    ];
    if let Some(pem) = rsa_pem {
        keys.push(SigningKey::from_pem(pem).map_err(|e| e.to_string())?);
    }
    for key in &keys {
        let id = key.key_id();
        let message = document_message(&id, &document);
        let signature = key.sign(&message).map_err(|e| e.to_string())?;
        let public = key.public_key();
        let sign_us = time_per_call(budget, || {
            let _ = key.sign(&message);
        });
        let verify_us = time_per_call(budget, || {
            let _ = public.verify(&message, &signature);
        });
        algorithms.insert(
            key.algorithm().name().into(),
            json!({
                "sign_us": sign_us,
                "verify_us": verify_us,
                "verifications_per_second_per_core": 1e6 / verify_us,
            }),
        );
    }
    let block = vec![0xa5u8; 1 << 20];
    let sha_us = time_per_call(budget, || {
        let _ = crate::crypto::sha256(&block);
    });
    let fsyncs = fsyncs_per_second(dir)?;
    Ok(json!({
        "machine": machine(),
        "signatures": algorithms,
        "sha256_mb_per_second": 1.048576e6 / sha_us / 1.0,
        "fsyncs_per_second": fsyncs,
        "fsync_dir": dir.display().to_string(),
    }))
}

/// Appends 4 KiB and fsyncs, for about a second.
fn fsyncs_per_second(dir: &Path) -> Result<f64, String> {
    use std::io::Write;
    let path = dir.join(".lienthong-fsync-probe");
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = [0u8; 4096];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        file.write_all(&block).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

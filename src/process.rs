//! A `lienthong serve` child process, for `bench` and the tests: started on
//! a free port, waited for until it says it is ready, and killed and reaped
//! when dropped, so that no test or benchmark leaves a server behind.
//!
//! Readiness is machine-readable: once it accepts connections, `serve`
//! prints one JSON line on stdout, `{"ready":true,"addr":"127.0.0.1:PORT",…}`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What `serve` prints on stdout once it accepts connections.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ready {
    pub ready: bool,
    /// The address it listens on (the real port when asked for port 0).
    pub addr: std::net::SocketAddr,
    /// The development PKI folder, when the server uses one.
    pub pki: Option<PathBuf>,
    /// The dashboard's address, with `serve --http` (the real port when
    /// asked for port 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<std::net::SocketAddr>,
    /// The plain health port's address, with `serve --health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<std::net::SocketAddr>,
    /// The metrics endpoint's address, with `serve --metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// How long a server may take to become ready: a store of a million
/// documents opens in seconds; this only bounds a server that hangs.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Lines of the server's log kept, to explain a server that did not start.
const LOG_TAIL: usize = 40;

/// The end of a server's log, and how many lines it wrote in all; the
/// condition variable wakes whoever waits for a line.
#[derive(Default)]
struct Log {
    tail: Mutex<(Vec<String>, usize)>,
    grew: Condvar,
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<String>, usize)> {
        self.tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running `lienthong serve`; killed and reaped on drop.
pub struct ServeProcess {
    pub child: Child,
    /// `https://ADDR`.
    pub url: String,
    pub ready: Ready,
    log: Arc<Log>,
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    /// Runs `exe serve --listen 127.0.0.1:0 --data DATA EXTRA…` and waits for
    /// its readiness line. On failure, the error carries the end of its log.
    pub fn start(exe: &Path, data: &Path, extra: &[&str]) -> Result<ServeProcess, String> {
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env(
                "RUST_LOG",
                "warn,lienthong::server=info,lienthong::reload=info",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let log = Arc::new(Log::default());
        // Keep draining the server's log so it never blocks on a full pipe.
        let log_reader = child.stderr.take().map(|stderr| {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut tail = log.lock();
                    if tail.0.len() == LOG_TAIL {
                        tail.0.remove(0);
                    }
                    tail.0.push(line);
                    tail.1 += 1;
                    log.grew.notify_all();
                }
            })
        });
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout);
                let mut first = String::new();
                let _ = tx.send(lines.read_line(&mut first).map(|_| first));
                // Drain the rest, if it ever prints more.
                let _ = std::io::copy(&mut lines, &mut std::io::sink());
            });
        }
        let mut process = ServeProcess {
            child,
            url: String::new(),
            ready: Ready {
                ready: false,
                addr: crate::defaults::LISTEN,
                pki: None,
                http: None,
                health: None,
                metrics: None,
            },
            log,
            log_reader,
        };
        let line = match rx.recv_timeout(READY_WITHIN) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(process.failed(&format!("cannot read its stdout: {e}"))),
            Err(_) => return Err(process.failed("it did not become ready")),
        };
        let ready: Ready = match serde_json::from_str(&line) {
            Ok(ready) => ready,
            Err(_) if line.is_empty() => return Err(process.failed("it exited before ready")),
            Err(e) => return Err(process.failed(&format!("not a readiness line {line:?}: {e}"))),
        };
        process.url = format!("https://{}", ready.addr);
        process.ready = ready;
        Ok(process)
    }

    /// The end of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        self.log.lock().0.join("\n")
    }

    /// How many lines the server has logged so far.
    pub fn log_lines(&self) -> usize {
        self.log.lock().1
    }

    /// Waits for a line containing `needle` among those logged after the
    /// first `after` lines (see [`ServeProcess::log_lines`]), and returns
    /// it; an error after `within` (or if the lines scrolled out of the
    /// kept tail). Blocking.
    pub fn wait_for_log(
        &self,
        needle: &str,
        after: usize,
        within: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + within;
        let mut tail = self.log.lock();
        loop {
            let (lines, total) = (&tail.0, tail.1);
            let first = total - lines.len();
            if let Some(line) = lines
                .iter()
                .enumerate()
                .find(|(i, line)| first + i >= after && line.contains(needle))
                .map(|(_, line)| line.clone())
            {
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the server logged no line with {needle:?} within {within:?}; its log ends:\n{}",
                    tail.0.join("\n")
                ));
            }
            tail = self
                .log
                .grew
                .wait_timeout(tail, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Stops it, waits for it, and explains why it failed with its log.
    fn failed(&mut self, why: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The log ends with the process: read it to its last line.
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        format!("the server failed: {why}\n{}", self.log_tail())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

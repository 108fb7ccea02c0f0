//! Workload (d) of the comparison: one 256 MiB attachment to one recipient.
//!
//! lienthong sends it as `lienthong send` sends a large attachment: the
//! client hashes the file, uploads it in 1 MiB chunks on one stream (the
//! server hashes and writes them as they arrive, syncing as it goes, and
//! fsyncs before the upload completes), then sends a signed document that
//! names the upload by its SHA-256. Timed from the first byte hashed to the
//! send's acknowledgement.
//!
//! JetStream takes no message of that size (its limit is a few MiB), so it
//! goes through JetStream's object store, which is how JetStream itself
//! carries large objects: the object is cut into 128 KiB chunks, each one
//! message on the bucket's stream (`OBJ_<bucket>`, subject
//! `$O.<bucket>.C.<id>`), and a last metadata message records the size,
//! the chunk count and the SHA-256 of the whole. async-nats's object store
//! publishes one chunk at a time and awaits its acknowledgement before the
//! next. The bucket's stream uses file storage, so the server's
//! `sync_interval` decides whether each chunk is fsynced before it is
//! acknowledged. Timed from the first byte read to the metadata's
//! acknowledgement.
//!
//! Both sides read the same file, written once per run from a fixed
//! pattern and fsynced before the first round, so that each starts from a
//! file in the page cache and no side pays for writing back the other's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_nats::jetstream::{self, object_store, stream};
use base64::Engine;
use ring::digest::{Context, SHA256};
use serde_json::json;

use super::{Acknowledge, Side};
use crate::bench::{cpu_seconds, peak_rss};
use crate::client::{self, transfer, Outgoing};
use crate::pb;
use crate::pki::{self, PkiPaths};
use crate::process::ServeProcess;

/// The attachment's size: 256 MiB.
pub const SIZE: u64 = 256 * 1024 * 1024;

/// Bytes generated and written at a time, so that the attachment is never
/// held whole in memory.
const BLOCK: usize = 1024 * 1024;

/// The attachment of a run: a file in a temporary folder, removed with it.
pub struct Attachment {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// Writes `size` bytes of a fixed pseudo-random pattern (the same in every
/// run, and not compressible) into a new temporary folder, fsyncs them, and
/// notes their SHA-256 to check what each side stored.
pub fn make_attachment(size: u64) -> Result<Attachment, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let path = dir.path().join("ban-do.pdf");
    let write_error = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = std::fs::File::create(&path).map_err(write_error)?;
    let mut hash = Context::new(&SHA256);
    let mut block = vec![0u8; BLOCK];
    // xorshift64: cheap, deterministic, and leaves nothing to compress.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(BLOCK).min(BLOCK);
        for word in block[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        file.write_all(&block[..n]).map_err(write_error)?;
        hash.update(&block[..n]);
        left -= n as u64;
    }
    file.sync_all().map_err(write_error)?;
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(hash.finish().as_ref());
    Ok(Attachment {
        _dir: dir,
        path,
        size,
        sha256,
    })
}

/// A side's clock: the wall time from `started`, and the CPU spent since
/// then by its server and by this process (the client's share).
struct Clock {
    server_pid: u32,
    cpu_before: (Option<f64>, Option<f64>),
    started: Instant,
}

impl Clock {
    fn start(server_pid: u32) -> Clock {
        Clock {
            server_pid,
            cpu_before: Clock::cpu(server_pid),
            started: Instant::now(),
        }
    }

    fn cpu(server_pid: u32) -> (Option<f64>, Option<f64>) {
        (cpu_seconds(server_pid), cpu_seconds(std::process::id()))
    }

    /// The side's figures for one transfer of `bytes` in `seconds`, with
    /// the server's peak memory and the CPU spent, beside the side's own
    /// `detail`.
    fn side(&self, bytes: u64, seconds: f64, stored: bool, mut detail: serde_json::Value) -> Side {
        let (server, client) = Clock::cpu(self.server_pid);
        let spent = |now: Option<f64>, then: Option<f64>| now.zip(then).map(|(n, t)| n - t);
        detail["server_cpu_seconds"] = json!(spent(server, self.cpu_before.0));
        detail["client_cpu_seconds"] = json!(spent(client, self.cpu_before.1));
        let ms = seconds * 1e3;
        Side {
            documents_per_second: 1.0 / seconds.max(1e-9),
            megabytes_per_second: bytes as f64 / seconds.max(1e-9) / 1e6,
            p50_ms: ms,
            p99_ms: ms,
            consumed: u64::from(stored),
            expected_consumed: 1,
            server_peak_rss_bytes: peak_rss(self.server_pid),
            detail,
        }
    }
}

/// One round on lienthong: a server of its own on a temporary data
/// directory, `phong-noi-vu` uploading the attachment and sending it to
/// `xa-van-nham` as `lienthong send` does.
pub async fn lienthong_round(attachment: &Attachment) -> Result<Side, String> {
    let data = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let server = ServeProcess::start(&exe, data.path(), &["--org-sends-per-minute", "0"])?;
    let pki_dir = server
        .ready
        .pki
        .clone()
        .ok_or("the bench's server named no PKI folder")?;
    let (sender, recipient) = ("phong-noi-vu", "xa-van-nham");
    let signer =
        pki::find_signing_key(&PkiPaths::new(&pki_dir), sender).map_err(|e| e.to_string())?;
    let mut exchange = client::connect_as(&server.url, &pki_dir, sender).await?;
    let notation = crate::bench::notation(&mut exchange).await?;
    let clock = Clock::start(server.child.id());
    let started = clock.started;
    // The first pass, as the CLI makes it: the signed document must declare
    // the SHA-256 before the upload can be named by it.
    let path = attachment.path.clone();
    let (size, sha256) =
        tokio::task::spawn_blocking(move || transfer::hash_file(&path, &mut |_| {}))
            .await
            .map_err(|e| format!("hashing stopped: {e}"))?
            .map_err(|e| e.to_string())?;
    let hashed = Instant::now();
    transfer::upload_file(&exchange, &attachment.path, size, sha256, &|_| {})
        .await
        .map_err(|e| format!("upload: {e}"))?;
    let uploaded = Instant::now();
    let header = pb::Document {
        from: sender.into(),
        to: vec![recipient.into()],
        number: 0, // assigned by the service
        notation,
        promulgation_date: crate::clock::format_date(crate::clock::today()),
        document_type: "cong-van".into(),
        subject: "V/v gửi bản đồ địa chính (đo tải tệp lớn)".into(),
        ..Default::default()
    };
    let declared = pb::AttachmentRef {
        name: "ban-do.pdf".into(),
        media_type: "application/pdf".into(),
        size,
        sha256: sha256.to_vec(),
    };
    let request = client::signed_request(
        header,
        vec![Outgoing {
            declared,
            content: None,
        }],
        None,
        &signer,
    )?;
    let sent = exchange
        .send(request)
        .await
        .map_err(|e| format!("send: {}", e.message()))?
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();

    let stored = sha256 == attachment.sha256 && sent.deliveries.len() == 1;
    let detail = json!({
        "hash_seconds": (hashed - started).as_secs_f64(),
        "upload_seconds": (uploaded - hashed).as_secs_f64(),
        "send_seconds": uploaded.elapsed().as_secs_f64(),
        "upload_chunk_bytes": transfer::CHUNK,
    });
    Ok(clock.side(attachment.size, seconds, stored, detail))
}

/// One round on JetStream, on a fresh server: the attachment put into an
/// object store bucket with file storage.
pub async fn jetstream_round(
    attachment: &Attachment,
    binary: &Path,
    sync: Acknowledge,
) -> Result<Side, String> {
    let server = super::start_nats(binary, sync)?;
    let connection = async_nats::connect(&server.url)
        .await
        .map_err(|e| e.to_string())?;
    let bucket = jetstream::new(connection)
        .create_object_store(object_store::Config {
            bucket: "attachments".into(),
            storage: stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create object store: {e}"))?;
    let mut file = tokio::fs::File::open(&attachment.path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", attachment.path.display()))?;
    let clock = Clock::start(server.child.id());
    let info = bucket
        .put("ban-do.pdf", &mut file)
        .await
        .map_err(|e| format!("object store put: {e}"))?;
    let seconds = clock.started.elapsed().as_secs_f64();

    let digest = format!(
        "SHA-256={}",
        base64::engine::general_purpose::URL_SAFE.encode(attachment.sha256)
    );
    let stored = info.size as u64 == attachment.size && info.digest.as_deref() == Some(&*digest);
    let detail = json!({
        "chunks": info.chunks,
        "chunk_bytes": info.size / info.chunks.max(1),
    });
    Ok(clock.side(attachment.size, seconds, stored, detail))
}

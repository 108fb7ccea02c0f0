//! Large attachments from the client's side: hashing a file in pieces,
//! uploading it in chunks, downloading one into a file, each with memory
//! bounded by a few chunks whatever the size, and each resuming where it
//! stopped.
//!
//! An upload asks the server where it stands (`BeginUpload`) and sends from
//! there; when the connection breaks or the server restarts it waits a
//! little, asks again and goes on, up to [`ATTEMPTS`] times. Run again
//! after it gave up (or after the command was interrupted), it resumes the
//! same way: the server keeps what arrived for its upload time-to-live.
//!
//! A download writes into a partial file beside its target
//! ([`crate::evidence::partial_path`]) and, when interrupted, resumes from
//! that file's length with a ranged request. Once whole it is checked
//! against the SHA-256 the signed document declares, and only then takes
//! its name.

use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::digest::{Context, SHA256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::evidence::{self, Existing, FileError};
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;

/// Bytes per chunk sent.
pub const CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the network.
const AHEAD: usize = 4;
/// Tries of one upload or download before giving up.
pub const ATTEMPTS: u32 = 12;
/// The wait before the first retry; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(15);

/// Why an upload or a download did not complete.
#[derive(Debug)]
pub enum TransferError {
    /// The server refused, or could not be reached after every try.
    Server(Status),
    /// A local file could not be read or written.
    File(FileError),
    /// The bytes are not the ones the document declares.
    Mismatch(String),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Server(status) => write!(f, "{}", status.message()),
            TransferError::File(e) => e.fmt(f),
            TransferError::Mismatch(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TransferError {}

impl From<Status> for TransferError {
    fn from(status: Status) -> Self {
        TransferError::Server(status)
    }
}

impl From<FileError> for TransferError {
    fn from(e: FileError) -> Self {
        TransferError::File(e)
    }
}

/// What a transfer reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Starting (again) from this byte: what the server holds, or what the
    /// partial file holds.
    From(u64),
    /// Bytes done so far, in all.
    Done(u64),
    /// The try failed with this status; the next starts after the wait.
    Retrying(Status, Duration),
}

/// A file's size and SHA-256, read in pieces of [`CHUNK`] bytes;
/// `progress` hears the bytes read so far.
pub fn hash_file(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<(u64, [u8; 32]), FileError> {
    let read_error = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hash = Context::new(&SHA256);
    let mut buffer = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        let Some(piece) = buffer.get(..n).filter(|p| !p.is_empty()) else {
            break;
        };
        hash.update(piece);
        size += n as u64;
        progress(size);
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(hash.finish().as_ref());
    Ok((size, sha256))
}

/// Whether a failed try is worth another: the connection or the server
/// went away, the server was busy, or another stream of the same upload
/// held it.
fn retryable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable
        | Code::Unknown
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted => true,
        Code::ResourceExhausted => status.metadata().get("retry-after").is_some(),
        // The offset moved between asking and sending: ask again.
        Code::FailedPrecondition => status.message().starts_with("offset:"),
        // A transport error that tonic could not classify.
        Code::Internal => status.message().contains("transport") || status.message().contains("h2"),
        _ => false,
    }
}

/// The wait before try `attempt` (1 for the first retry).
fn wait(attempt: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(8))
        .min(MAX_WAIT)
}

/// Uploads the file at `path`, of `size` bytes with `sha256` (from
/// [`hash_file`]), resuming from what the server holds. Returns the
/// completed upload's status.
pub async fn upload_file(
    client: &ExchangeClient<Channel>,
    path: &Path,
    size: u64,
    sha256: [u8; 32],
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<pb::UploadStatus, TransferError> {
    let mut attempt = 0;
    loop {
        match upload_once(client.clone(), path, size, sha256, progress).await {
            Ok(status) => return Ok(status),
            Err(e) => again(&mut attempt, e, progress).await?,
        }
    }
}

/// After try `attempt` failed with `error`: waits before the next, or
/// gives up with the error when it is not worth another or none are left.
async fn again(
    attempt: &mut u32,
    error: TransferError,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), TransferError> {
    match error {
        TransferError::Server(status) if retryable(&status) && *attempt + 1 < ATTEMPTS => {
            *attempt += 1;
            let pause = wait(*attempt);
            progress(Progress::Retrying(status, pause));
            tokio::time::sleep(pause).await;
            Ok(())
        }
        e => Err(e),
    }
}

async fn upload_once(
    mut client: ExchangeClient<Channel>,
    path: &Path,
    size: u64,
    sha256: [u8; 32],
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<pb::UploadStatus, TransferError> {
    let status = client
        .begin_upload(pb::BeginUploadRequest {
            sha256: sha256.to_vec(),
            size,
        })
        .await?
        .into_inner();
    if status.complete {
        progress(Progress::Done(size));
        return Ok(status);
    }
    progress(Progress::From(status.offset));
    let (chunks, stream) = mpsc::channel(AHEAD);
    let read_error: Arc<Mutex<Option<FileError>>> = Arc::default();
    let reader = {
        let (path, read_error) = (path.to_owned(), read_error.clone());
        let offset = status.offset;
        std::thread::spawn(move || {
            if let Err(e) = read_chunks(&path, sha256, size, offset, &chunks) {
                *read_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
        })
    };
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(status.offset));
    let counted = sent.clone();
    let stream = tokio_stream::StreamExt::map(
        ReceiverStream::new(stream),
        move |chunk: pb::UploadChunk| {
            counted.fetch_add(
                chunk.data.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            chunk
        },
    );
    // Progress while the stream runs, from what the stream has handed on.
    let answer = client.upload_attachment(stream);
    tokio::pin!(answer);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let outcome = loop {
        tokio::select! {
            outcome = &mut answer => break outcome,
            _ = tick.tick() => progress(Progress::Done(sent.load(std::sync::atomic::Ordering::Relaxed))),
        }
    };
    let _ = reader.join();
    if let Some(e) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(e.into());
    }
    let status = outcome?.into_inner();
    if !status.complete {
        return Err(TransferError::Mismatch(format!(
            "{} ended before its {size} bytes were read: the file changed while it was uploaded",
            path.display()
        )));
    }
    progress(Progress::Done(size));
    Ok(status)
}

/// The reader thread: the file from `offset`, in chunks, the first naming
/// the upload. Stops when the stream is dropped.
fn read_chunks(
    path: &Path,
    sha256: [u8; 32],
    size: u64,
    offset: u64,
    chunks: &mpsc::Sender<pb::UploadChunk>,
) -> Result<(), FileError> {
    let read_error = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    file.seek(SeekFrom::Start(offset)).map_err(read_error)?;
    let mut first = true;
    let mut at = offset;
    while at < size || first {
        let want = usize::try_from(size - at).unwrap_or(usize::MAX).min(CHUNK);
        let mut data = vec![0u8; want];
        file.read_exact(&mut data).map_err(read_error)?;
        at += want as u64;
        let chunk = if first {
            first = false;
            pb::UploadChunk {
                sha256: sha256.to_vec(),
                size,
                offset,
                data,
            }
        } else {
            pb::UploadChunk {
                data,
                ..Default::default()
            }
        };
        if chunks.blocking_send(chunk).is_err() {
            break; // the call ended
        }
    }
    Ok(())
}

/// Downloads attachment `index` of document `document_id`, declared as
/// `declared`, into `target`: through its partial file, resuming from what
/// that holds, checked against the declared size and SHA-256, then named
/// `target` as `existing` allows.
pub async fn download_file(
    client: &ExchangeClient<Channel>,
    document_id: &str,
    index: u32,
    declared: &pb::AttachmentRef,
    target: &Path,
    existing: Existing,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), TransferError> {
    let partial = evidence::partial_path(target);
    let (mut file, mut have) = evidence::open_partial(&partial)?;
    let write_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| FileError::Write { path, source }
    };
    if have > declared.size {
        // Not this attachment's: start over.
        file.set_len(0).map_err(write_error(&partial))?;
        have = 0;
    }
    // What an earlier save wrote is hashed first.
    let mut hash = Context::new(&SHA256);
    file.seek(SeekFrom::Start(0))
        .map_err(write_error(&partial))?;
    let mut prefix = (&mut file).take(have);
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = prefix.read(&mut buffer).map_err(write_error(&partial))?;
        let Some(piece) = buffer.get(..n).filter(|p| !p.is_empty()) else {
            break;
        };
        hash.update(piece);
    }
    progress(Progress::From(have));
    let mut attempt = 0;
    while have < declared.size {
        let before = have;
        match download_range(
            client.clone(),
            document_id,
            index,
            &mut have,
            &mut file,
            &mut hash,
            &partial,
            progress,
        )
        .await
        {
            Ok(()) if have > before || have == declared.size => {}
            Ok(()) => {
                return Err(TransferError::Mismatch(format!(
                    "the server ended the download of {:?} at byte {have} of {}",
                    declared.name, declared.size
                )))
            }
            Err(e) => again(&mut attempt, e, progress).await?,
        }
    }
    if hash.finish().as_ref() != declared.sha256.as_slice() {
        drop(file);
        let _ = std::fs::remove_file(&partial);
        return Err(TransferError::Mismatch(format!(
            "the {} bytes received for {:?} do not have the SHA-256 its signed document declares; the partial download was removed, save again",
            declared.size, declared.name
        )));
    }
    file.sync_all().map_err(write_error(&partial))?;
    drop(file);
    evidence::publish(&partial, target, existing)?;
    Ok(())
}

/// One ranged request from `have` to the end, appending to `file`.
#[allow(clippy::too_many_arguments)]
async fn download_range(
    mut client: ExchangeClient<Channel>,
    document_id: &str,
    index: u32,
    have: &mut u64,
    file: &mut std::fs::File,
    hash: &mut Context,
    partial: &Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), TransferError> {
    let mut chunks = client
        .download_attachment(pb::DownloadAttachmentRequest {
            document_id: document_id.to_owned(),
            index,
            offset: *have,
            length: 0,
        })
        .await?
        .into_inner();
    while let Some(chunk) = chunks.message().await? {
        if chunk.offset != *have {
            return Err(TransferError::Mismatch(format!(
                "the server sent bytes from {} where {} was expected",
                chunk.offset, *have
            )));
        }
        file.write_all(&chunk.data)
            .map_err(|source| FileError::Write {
                path: partial.to_owned(),
                source,
            })?;
        hash.update(&chunk.data);
        *have += chunk.data.len() as u64;
        progress(Progress::Done(*have));
    }
    Ok(())
}

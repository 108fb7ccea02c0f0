//! One stream writing one upload: chunks go through a short queue to a
//! writer thread that hashes them and appends them to the partial file,
//! syncing now and then and at the end; the last byte is checked against
//! the declared SHA-256 before the upload completes.
//!
//! A session that ends without [`UploadSession::finish`] (the client
//! vanished, or another stream took over) leaves the bytes written: the
//! writer syncs them when its queue closes, and the partial file waits for
//! a resumption or the clean-up.

use std::sync::Arc;

use ring::digest::{Context, SHA256};
use tokio::sync::{mpsc, Notify, OwnedMutexGuard};
use tokio::task::JoinHandle;

use super::{blocking, Transfers, UploadStatus, MAX_CHUNK_BYTES, QUEUED_CHUNKS};
use crate::directory::Organization;
use crate::error::{Error, Result};
use crate::store::{PartialFile, UploadKey};

/// After this many bytes the writer asks for the partial file to be
/// synced in the background, so that the dirty pages stay few and the
/// sync at the end is short, without stopping the stream meanwhile.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;

/// What opening an upload found.
pub enum Opened {
    /// Already completed: nothing to write.
    Complete(UploadStatus),
    Writing(UploadSession),
}

/// The writer thread's result: the file, the hash of all of it, and the
/// right to write, kept until the upload is finished or left.
struct Written {
    partial: PartialFile,
    hash: Context,
    _writing: OwnedMutexGuard<()>,
}

pub struct UploadSession {
    transfers: Arc<Transfers>,
    caller: Organization,
    key: UploadKey,
    /// Bytes received: the offset the stream started at and its chunks.
    received: u64,
    queue: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<Result<Written>>>,
    stop: Arc<Notify>,
}

impl Transfers {
    /// Opens `caller`'s upload of `sha256` and `size` for a stream whose
    /// data starts at `offset`, which must be the bytes held (durably).
    pub async fn open(
        self: &Arc<Self>,
        caller: &Organization,
        sha256: &[u8],
        size: u64,
        offset: u64,
    ) -> Result<Opened> {
        let key = self.key(caller, sha256, size)?;
        if let Some(done) = self.completed(&key) {
            return Ok(Opened::Complete(done));
        }
        if self.closing() {
            return Err(shutting_down());
        }
        let (writing, stop) = self.take_over(&key).await;
        if let Some(done) = self.completed(&key) {
            return Ok(Opened::Complete(done));
        }
        let store = self.store.clone();
        let partial = blocking(move || store.open_upload(&key)).await?;
        let held = partial.len();
        if offset != held {
            if partial.is_empty() {
                // Nothing of it is stored: leave nothing behind either.
                let store = self.store.clone();
                blocking(move || store.discard_upload(&key)).await?;
                self.set_partial(&key, None);
            }
            return Err(wrong_offset(offset, held, size));
        }
        self.set_partial(&key, Some(held));
        let (queue, chunks) = mpsc::channel(QUEUED_CHUNKS);
        let writer = tokio::task::spawn_blocking(move || write(partial, chunks, writing));
        Ok(Opened::Writing(UploadSession {
            transfers: self.clone(),
            caller: caller.clone(),
            key,
            received: offset,
            queue: Some(queue),
            writer: Some(writer),
            stop,
        }))
    }
}

/// Why a stream stopped or was refused while the server shuts down.
pub fn shutting_down() -> Error {
    Error::Unavailable(
        "the server is shutting down; what arrived is kept: resume after it restarts".into(),
    )
}

/// The offset a stream must start at, in the words a client acts on.
fn wrong_offset(offset: u64, held: u64, size: u64) -> Error {
    if offset > size {
        return Error::OutOfRange {
            field: "offset".into(),
            reason: format!(
                "{offset} is past the end of an upload of {size} bytes; the server holds {held}: continue from {held}"
            ),
        };
    }
    Error::precondition(
        "offset",
        format!("the server holds {held} bytes of this upload, not {offset}: continue from {held}"),
    )
}

/// The writer thread: hashes what is already in the file (a resumed
/// upload), then each chunk as it comes, appending it.
fn write(
    mut partial: PartialFile,
    mut chunks: mpsc::Receiver<Vec<u8>>,
    writing: OwnedMutexGuard<()>,
) -> Result<Written> {
    let mut hash = Context::new(&SHA256);
    partial.read_back(1024 * 1024, &mut |bytes| hash.update(bytes))?;
    let syncer = Syncer::start(&partial)?;
    let mut unsynced = 0u64;
    while let Some(chunk) = chunks.blocking_recv() {
        hash.update(&chunk);
        partial.append(&chunk)?;
        unsynced += chunk.len() as u64;
        if unsynced >= SYNC_EVERY {
            syncer.ask();
            unsynced = 0;
        }
    }
    syncer.finish()?;
    // The one that counts: only after it is the length reported.
    partial.sync()?;
    Ok(Written {
        partial,
        hash,
        _writing: writing,
    })
}

/// Syncs a partial file on its own thread while the writer goes on, at
/// most one sync at a time (a request while one runs is dropped: the next
/// covers it). Its failure fails the upload at the end: an fsync error is
/// reported once, and must not be lost to the final sync.
struct Syncer {
    asks: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Syncer {
    fn start(partial: &PartialFile) -> Result<Syncer> {
        let file = partial.shared()?;
        let (asks, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("lienthong-upload-sync".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    file.sync_data()
                        .map_err(|e| Error::storage_from("syncing an upload", e))?;
                }
                Ok(())
            })
            .map_err(|e| Error::storage_from("starting an upload's sync thread", e))?;
        Ok(Syncer { asks, thread })
    }

    fn ask(&self) {
        let _ = self.asks.try_send(());
    }

    fn finish(self) -> Result<()> {
        drop(self.asks);
        self.thread
            .join()
            .map_err(|_| Error::storage("an upload's sync thread panicked"))?
    }
}

impl UploadSession {
    /// Resolves when another stream takes this upload over.
    pub fn stopped(&self) -> tokio::sync::futures::Notified<'_> {
        self.stop.notified()
    }

    /// Takes the next chunk: counted against the quota, queued for the
    /// writer. A refusal discards the upload.
    pub async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let refused = if data.len() > MAX_CHUNK_BYTES {
            Some(Error::invalid(
                "data",
                format!(
                    "a chunk carries at most {MAX_CHUNK_BYTES} bytes (got {}); this upload was discarded",
                    data.len()
                ),
            ))
        } else if self.received + data.len() as u64 > self.key.size {
            Some(Error::invalid(
                "data",
                format!(
                    "the upload declared {} bytes and more arrived; this upload was discarded",
                    self.key.size
                ),
            ))
        } else {
            self.transfers
                .reserve(&self.caller, &self.key, data.len() as u64)
                .err()
        };
        if let Some(error) = refused {
            self.discard().await?;
            return Err(error);
        }
        self.received += data.len() as u64;
        let sent = match &self.queue {
            Some(queue) => queue.send(data).await.is_ok(),
            None => false,
        };
        if !sent {
            // The writer stopped: its error says why.
            return Err(self.written().await.err().unwrap_or_else(|| {
                Error::storage("the upload's writer stopped before its stream ended")
            }));
        }
        Ok(())
    }

    /// Closes the queue and waits for the writer to have synced it all.
    async fn written(&mut self) -> Result<Written> {
        self.queue = None;
        let writer = self
            .writer
            .take()
            .ok_or_else(|| Error::storage("the upload's writer was already joined"))?;
        writer
            .await
            .map_err(|e| Error::storage_from("the upload's writer did not complete", e))?
    }

    /// Removes the upload: nothing of it stays.
    async fn discard(&mut self) -> Result<()> {
        // The writer is done with the file once joined; its error, if any,
        // does not matter any more. Its right to write is kept until the
        // file is gone, so that no other stream opens it meanwhile.
        let written = self.written().await;
        self.remove_file().await?;
        drop(written);
        Ok(())
    }

    async fn remove_file(&self) -> Result<()> {
        let (store, key) = (self.transfers.store.clone(), self.key);
        blocking(move || store.discard_upload(&key)).await?;
        self.transfers.set_partial(&self.key, None);
        Ok(())
    }

    /// The stream ended: what arrived is durable. If it is the whole
    /// content, it is checked against its SHA-256 and the upload completes;
    /// else the answer says where to continue.
    pub async fn finish(mut self) -> Result<UploadStatus> {
        let written = self.written().await?;
        if self.received < self.key.size {
            self.transfers.set_partial(&self.key, Some(self.received));
            return Ok(UploadStatus {
                key: self.key,
                offset: self.received,
                complete: false,
                expires_at_ms: self.transfers.expiry(std::time::SystemTime::now()),
            });
        }
        let Written {
            partial,
            hash,
            _writing,
        } = written;
        if hash.finish().as_ref() != self.key.sha256 {
            drop(partial);
            self.remove_file().await?;
            return Err(Error::invalid(
                "sha256",
                format!(
                    "the {} bytes received do not have the declared SHA-256 {}: the file changed while it was sent, or the digest is not its own; this upload was discarded, start again from 0",
                    self.key.size,
                    hex::encode(self.key.sha256)
                ),
            ));
        }
        let (store, key) = (self.transfers.store.clone(), self.key);
        let at = blocking(move || store.complete_upload(&key, partial)).await?;
        self.transfers.set_completed(&self.key);
        tracing::info!(
            by = %self.caller.alias,
            sha256 = %hex::encode(self.key.sha256),
            bytes = self.key.size,
            "upload completed"
        );
        Ok(UploadStatus {
            key: self.key,
            offset: self.key.size,
            complete: true,
            expires_at_ms: self.transfers.expiry(at),
        })
    }

    /// The stream broke or was taken over: what arrived is synced and
    /// kept for a resumption.
    pub async fn leave(mut self) {
        if let Err(e) = self.written().await {
            tracing::warn!(error = %e, "an upload left unfinished could not be synced");
        }
        self.transfers.set_partial(&self.key, Some(self.received));
    }
}

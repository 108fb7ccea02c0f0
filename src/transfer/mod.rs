//! Large attachments, streamed: uploads in chunks that resume from the last
//! durable byte, quotas per attachment and per organisation, the clean-up
//! of what is left unfinished or unsent, and downloads of byte ranges.
//!
//! An upload is named by the caller's organisation, the content's SHA-256
//! and its size (a [`UploadKey`]): the same three resume it, so a client
//! needs no id to remember. Its bytes are appended to a partial file as
//! they arrive and hashed on the way ([`session`]); the server holds at
//! most [`QUEUED_CHUNKS`] chunks of it in memory. The offset a client is
//! told to resume from is the partial file's length after an fsync. When
//! the last byte arrives the SHA-256 is checked, and the content becomes
//! the content-addressed attachment file a later send of the same
//! organisation may name ([`crate::exchange::Content::Uploaded`]).
//!
//! Quotas: an upload declares its size, which may not pass
//! [`UploadLimits::max_attachment_bytes`]; an organisation's unfinished
//! uploads (the bytes received) and its completed uploads no document
//! carries yet (their sizes) may not together pass
//! [`UploadLimits::org_quota_bytes`]. The chunk that would is refused and
//! that upload discarded.
//!
//! What is left is removed ([`sweep`]): an unfinished upload once nothing
//! arrived for [`UploadLimits::ttl`], a completed one that long after it
//! completed (its content stays if a document carries it).
//!
//! Only one stream writes an upload at a time. A client that reconnects
//! while the server still holds its broken stream takes over: the old
//! stream is stopped (ABORTED), its bytes synced, and the new one goes on
//! from there.

mod download;
mod session;
mod sweep;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, OwnedMutexGuard};

use crate::directory::{OrgCode, Organization};
use crate::error::{Error, Result};
use crate::exchange::Exchange;
use crate::store::{Store, UploadKey};

pub use download::Download;
pub use session::{shutting_down, Opened, UploadSession};

/// Chunks of one upload held in memory at most, between the network and
/// the disk.
pub const QUEUED_CHUNKS: usize = 4;
/// The largest chunk one message may carry.
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// The quotas and the clean-up time of uploads.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    /// The largest attachment that may be uploaded.
    pub max_attachment_bytes: u64,
    /// An organisation's unfinished uploads and completed ones not yet
    /// sent, together.
    pub org_quota_bytes: u64,
    /// An unfinished upload is removed after this long without a byte; a
    /// completed one this long after it completed.
    pub ttl: Duration,
}

impl Default for UploadLimits {
    fn default() -> UploadLimits {
        const MIB: u64 = 1024 * 1024;
        UploadLimits {
            max_attachment_bytes: crate::defaults::MAX_ATTACHMENT_MIB * MIB,
            org_quota_bytes: crate::defaults::ORG_UPLOAD_QUOTA_MIB * MIB,
            ttl: Duration::from_secs(crate::defaults::UPLOAD_TTL_SECONDS),
        }
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub key: UploadKey,
    /// Bytes held durably.
    pub offset: u64,
    pub complete: bool,
    /// When it will be removed if left as it is (Unix milliseconds).
    pub expires_at_ms: i64,
}

pub struct Transfers {
    store: Arc<Store>,
    exchange: Arc<Exchange>,
    limits: UploadLimits,
    state: Mutex<State>,
    /// The server is shutting down: streams stop, keeping what arrived.
    closing: Arc<AtomicBool>,
}

/// What the quotas count, and who writes what.
#[derive(Default)]
struct State {
    /// Bytes received of each unfinished upload.
    partial: HashMap<UploadKey, u64>,
    /// Completed uploads not known to be carried by a document yet, and
    /// their sizes.
    unsent: HashMap<UploadKey, u64>,
    /// The one stream that may write each upload.
    slots: HashMap<UploadKey, Arc<Slot>>,
}

/// The right to write one upload, and how to stop whoever holds it.
struct Slot {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Told to the stream writing now when another takes over.
    stop: Mutex<Arc<Notify>>,
}

impl Transfers {
    /// Starts from the uploads the store holds.
    pub fn new(
        store: Arc<Store>,
        exchange: Arc<Exchange>,
        limits: UploadLimits,
    ) -> Result<Arc<Transfers>> {
        let mut state = State::default();
        for found in store.partial_uploads()? {
            state.partial.insert(found.key, found.len);
        }
        for (key, _) in store.completed_uploads() {
            if !store.attachment_referenced(&key.sha256)? {
                state.unsent.insert(key, key.size);
            }
        }
        Ok(Arc::new(Transfers {
            store,
            exchange,
            limits,
            state: Mutex::new(state),
            closing: Arc::default(),
        }))
    }

    /// Stops every upload and download in progress, for a shutdown that
    /// should not wait for them: uploads keep what arrived (synced), and
    /// clients resume both after the restart.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        for slot in self.state().slots.values() {
            slot.stop().notify_one();
        }
    }

    /// Whether [`Transfers::close`] was called.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each use is a few map operations: consistent even if poisoned.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The upload `caller` names, checked against the quota per attachment.
    fn key(&self, caller: &Organization, sha256: &[u8], size: u64) -> Result<UploadKey> {
        let sha256: [u8; 32] = sha256.try_into().map_err(|_| {
            Error::invalid(
                "sha256",
                format!(
                    "must be the 32 bytes of a SHA-256 (got {} bytes)",
                    sha256.len()
                ),
            )
        })?;
        if size == 0 {
            return Err(Error::invalid(
                "size",
                "must be at least 1: an empty attachment travels inside the send",
            ));
        }
        if size > self.limits.max_attachment_bytes {
            return Err(Error::exhausted(
                "max_attachment_bytes",
                format!(
                    "an attachment of {size} bytes is larger than the largest the server takes, {} bytes",
                    self.limits.max_attachment_bytes
                ),
            ));
        }
        Ok(UploadKey {
            org: caller.code,
            sha256,
            size,
        })
    }

    /// The status of a completed upload, if `key` is one.
    fn completed(&self, key: &UploadKey) -> Option<UploadStatus> {
        let at = self.store.upload_completed_at(key)?;
        Some(UploadStatus {
            key: *key,
            offset: key.size,
            complete: true,
            expires_at_ms: self.expiry(at),
        })
    }

    /// Unix milliseconds at which something last touched at `at` expires.
    fn expiry(&self, at: SystemTime) -> i64 {
        let at = at + self.limits.ttl;
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Starts an upload, or says where an interrupted one stands: the
    /// bytes held durably. A stream still writing it is stopped first, so
    /// that the answer holds.
    pub async fn begin(
        &self,
        caller: &Organization,
        sha256: &[u8],
        size: u64,
    ) -> Result<UploadStatus> {
        let key = self.key(caller, sha256, size)?;
        if let Some(done) = self.completed(&key) {
            return Ok(done);
        }
        let _writing = self.take_over(&key).await;
        if let Some(done) = self.completed(&key) {
            return Ok(done);
        }
        let store = self.store.clone();
        let found = blocking(move || store.upload_offset(&key)).await?;
        let (offset, touched) = found.unwrap_or((0, SystemTime::now()));
        Ok(UploadStatus {
            key,
            offset,
            complete: false,
            expires_at_ms: self.expiry(touched),
        })
    }

    /// The right to write `key`: whoever holds it is told to stop, and
    /// this waits until it has (its bytes synced).
    async fn take_over(&self, key: &UploadKey) -> (OwnedMutexGuard<()>, Arc<Notify>) {
        let slot = self.slot(key);
        let previous = slot.stop();
        // A permit stays until the stream writing now looks for it.
        previous.notify_one();
        let guard = slot.lock.clone().lock_owned().await;
        let stop = Arc::new(Notify::new());
        *slot
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stop.clone();
        (guard, stop)
    }

    /// The slot of `key`, made if there is none.
    fn slot(&self, key: &UploadKey) -> Arc<Slot> {
        self.state()
            .slots
            .entry(*key)
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Arc::new(tokio::sync::Mutex::new(())),
                    stop: Mutex::new(Arc::new(Notify::new())),
                })
            })
            .clone()
    }

    /// Counts `bytes` more of `key` against its organisation's quota, or
    /// refuses them.
    fn reserve(&self, caller: &Organization, key: &UploadKey, bytes: u64) -> Result<()> {
        let mut state = self.state();
        // Completed uploads a document now carries count no more.
        let mine: Vec<UploadKey> = state
            .unsent
            .keys()
            .filter(|k| k.org == key.org)
            .copied()
            .collect();
        for done in mine {
            if self.store.attachment_referenced(&done.sha256)? {
                state.unsent.remove(&done);
            }
        }
        let used = usage(&state.partial, &key.org) + usage(&state.unsent, &key.org);
        let quota = self.limits.org_quota_bytes;
        if used.saturating_add(bytes) > quota {
            return Err(Error::exhausted(
                "org_upload_quota_bytes",
                format!(
                    "{}'s unfinished uploads and uploads not yet sent would take {} bytes, more than its quota of {quota}; this upload was discarded: send or let expire what is uploaded, then upload again",
                    caller.alias,
                    used.saturating_add(bytes)
                ),
            ));
        }
        *state.partial.entry(*key).or_insert(0) += bytes;
        Ok(())
    }

    /// Records where an unfinished upload stands now.
    fn set_partial(&self, key: &UploadKey, bytes: Option<u64>) {
        let mut state = self.state();
        match bytes {
            Some(bytes) => state.partial.insert(*key, bytes),
            None => state.partial.remove(key),
        };
    }

    /// Records a completed upload.
    fn set_completed(&self, key: &UploadKey) {
        let mut state = self.state();
        state.partial.remove(key);
        state.unsent.insert(*key, key.size);
    }
}

impl Slot {
    fn stop(&self) -> Arc<Notify> {
        self.stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// An organisation's bytes in `uploads`.
fn usage(uploads: &HashMap<UploadKey, u64>, org: &OrgCode) -> u64 {
    uploads
        .iter()
        .filter(|(k, _)| k.org == *org)
        .map(|(_, bytes)| *bytes)
        .sum()
}

/// Runs file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::storage_from("file work did not complete", e))?
}

//! Group commit: one thread applies every write and flushes for all of them.
//!
//! Senders hand their [`NewDocument`] to the committer and wait. The
//! committer takes everything queued (up to a batch limit), applies each send
//! as its own multi-tree transaction, flushes once (sled and fsync), and only then
//! answers each sender. One fsync covers many sends, and no reply leaves
//! before its data is on disk.
//!
//! Why a thread and not `flush_async`: sled 0.34.7 deadlocks when several
//! `flush_async` calls run concurrently. Here exactly one flush is ever in
//! progress, on a thread that may block.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use tokio::sync::{mpsc, oneshot};

use super::keys;
use super::records::StoredEvent;
use super::records::{StoredDelivery, StoredDocument};
use super::{
    decode_document, Accepted, CommitListener, DocId, NewDocument, Pending, Sealer, SendOutcome,
    Trees,
};
use crate::clock;
use crate::error::{Error, Result};

/// How many sends one flush covers at most.
const MAX_BATCH: usize = 512;
/// How many sends may wait for the committer before senders are held back.
const QUEUE: usize = 4096;

enum Job {
    Send {
        new: Box<NewDocument>,
        reply: oneshot::Sender<Result<SendOutcome>>,
    },
    /// Sign a checkpoint of the archive as it stands (or return the latest
    /// if nothing was appended since).
    Checkpoint {
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
}

/// A job's result, held until the flush that makes it durable.
enum Answer {
    Send(oneshot::Sender<Result<SendOutcome>>, Result<SendOutcome>),
    Checkpoint(oneshot::Sender<Result<Vec<u8>>>, Result<Vec<u8>>),
}

impl Answer {
    fn deliver(self) {
        match self {
            Answer::Send(reply, outcome) => {
                let _ = reply.send(outcome);
            }
            Answer::Checkpoint(reply, outcome) => {
                let _ = reply.send(outcome);
            }
        }
    }

    fn fail(self, error: Error) {
        match self {
            Answer::Send(reply, _) => {
                let _ = reply.send(Err(error));
            }
            Answer::Checkpoint(reply, _) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

fn job_answer_unavailable(job: Job, error: Error) {
    match job {
        Job::Send { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Job::Checkpoint { reply } => {
            let _ = reply.send(Err(error));
        }
    }
}

/// sled's files, which the committer fsyncs after each `flush()`.
///
/// On Linux sled 0.34.7 ends a flush with `sync_file_range`, which does not
/// persist the file's size or the drive's write cache, and it never syncs
/// the blob files it writes for oversized pages (only its periodic flusher,
/// switched off here, calls `sync_all`). fsync on our own descriptor of the
/// same file covers what it wrote.
pub(super) struct SledFiles {
    db: File,
    blobs: PathBuf,
    /// The highest blob file (they are named by log sequence number) synced.
    last_blob: u64,
}

impl SledFiles {
    pub(super) fn open(dir: &Path) -> Result<SledFiles> {
        let path = dir.join("db");
        let db = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::Storage(format!("{}: {e}", path.display())))?;
        let mut files = SledFiles {
            db,
            blobs: dir.join("blobs"),
            last_blob: 0,
        };
        files.sync()?;
        super::files::sync_dir(dir)?;
        Ok(files)
    }

    fn sync(&mut self) -> Result<()> {
        self.db
            .sync_all()
            .map_err(|e| Error::Storage(format!("fsync of sled's log: {e}")))?;
        let mut newest = self.last_blob;
        if let Ok(entries) = std::fs::read_dir(&self.blobs) {
            for entry in entries.flatten() {
                let lsn = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u64>().ok());
                let Some(lsn) = lsn.filter(|l| *l > self.last_blob) else {
                    continue;
                };
                File::open(entry.path())
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::Storage(format!("fsync of a sled blob: {e}")))?;
                newest = newest.max(lsn);
            }
        }
        if newest > self.last_blob {
            super::files::sync_dir(&self.blobs)?;
            self.last_blob = newest;
        }
        Ok(())
    }
}

pub(super) struct Committer {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub(super) fn start(setup: Setup) -> Result<Committer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("lienthong-committer".into())
            .spawn(move || run(setup, rx))
            .map_err(|e| Error::Storage(format!("cannot start the committer thread: {e}")))?;
        Ok(Committer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub(super) async fn submit(&self, new: NewDocument) -> Result<SendOutcome> {
        let queue = self.queue.lock().ok().and_then(|q| q.clone());
        let closed = || Error::Unavailable("the service is shutting down; send again later".into());
        let queue = queue.ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        queue
            .send(Job::Send {
                new: Box::new(new),
                reply,
            })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// A signed checkpoint of the archive, durable when returned.
    pub(super) async fn checkpoint(&self) -> Result<Vec<u8>> {
        let queue = self.queue.lock().ok().and_then(|q| q.clone());
        let closed = || Error::Unavailable("the service is shutting down".into());
        let queue = queue.ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        queue
            .send(Job::Checkpoint { reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Closes the queue, lets the committer finish what was queued, and
    /// waits for its last flush.
    pub(super) async fn stop(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// sled's flush, then fsync of its files: only after both is a write durable.
fn flush(db: &sled::Db, files: &mut SledFiles) -> Result<()> {
    db.flush()?;
    files.sync()
}

/// Everything the committer thread owns.
pub(super) struct Setup {
    pub db: sled::Db,
    pub trees: Trees,
    pub files: SledFiles,
    pub pending: Arc<Pending>,
    pub sealer: Arc<dyn Sealer>,
    pub listener: Arc<dyn CommitListener>,
    pub events_kept: u64,
    /// A checkpoint is made once this many leaves were appended since the
    /// last one.
    pub checkpoint_every: u64,
    /// The size of the last checkpoint.
    pub last_checkpoint: u64,
}

/// Makes and stores a signed checkpoint of the archive as it stands, if
/// `force` or `checkpoint_every` leaves were appended since the last one;
/// otherwise returns the latest. Runs on the committer thread: the size it
/// reads cannot move under it.
fn checkpoint(setup: &mut Setup, force: bool) -> Result<Vec<u8>> {
    let t = &setup.trees;
    let size = read_counter(&t.counters, keys::ARCHIVE_SIZE)?;
    let due = size > setup.last_checkpoint
        && (force || size - setup.last_checkpoint >= setup.checkpoint_every);
    if !due {
        return match t.checkpoints.get(setup.last_checkpoint.to_be_bytes())? {
            Some(latest) => Ok(latest.to_vec()),
            None if force => Err(Error::not_found("a checkpoint (the archive is empty)")),
            None => Ok(Vec::new()),
        };
    }
    let root = crate::merkle::Tree::new(&super::ArchiveNodes(&t.archive_nodes))
        .root(size)
        .map_err(Error::Storage)?;
    let signed = setup.sealer.seal_checkpoint(size, root, clock::now_ms())?;
    t.checkpoints
        .insert(size.to_be_bytes(), signed.as_slice())?;
    setup.last_checkpoint = size;
    Ok(signed)
}

fn read_counter(tree: &sled::Tree, key: &[u8]) -> Result<u64> {
    match tree.get(key)? {
        None => Ok(0),
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Storage("a counter is not 8 bytes".into())),
    }
}

fn run(mut setup: Setup, mut rx: mpsc::Receiver<Job>) {
    // After a failed flush, what is in memory may never reach the disk: take
    // no more writes, so nothing is acknowledged on top of a lost one.
    let mut failed: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = &failed {
            for job in jobs {
                job_answer_unavailable(
                    job,
                    Error::Unavailable(format!(
                        "storage failed earlier ({reason}); the service must be restarted"
                    )),
                );
            }
            continue;
        }

        let mut ids = Vec::with_capacity(jobs.len());
        let mut answers = Vec::with_capacity(jobs.len());
        let mut events = Vec::new();
        for job in jobs {
            match job {
                Job::Send { new, reply } => {
                    setup.pending.insert(new.id);
                    ids.push(new.id);
                    let outcome = apply(&setup, &new).map(|(outcome, mut new_events)| {
                        events.append(&mut new_events);
                        outcome
                    });
                    answers.push(Answer::Send(reply, outcome));
                }
                Job::Checkpoint { reply } => {
                    answers.push(Answer::Checkpoint(reply, checkpoint(&mut setup, true)));
                }
            }
        }
        // Every `checkpoint_every` appends, a checkpoint in the same flush.
        if let Err(e) = checkpoint(&mut setup, false) {
            tracing::error!(error = %e, "cannot make the periodic checkpoint");
        }
        match flush(&setup.db, &mut setup.files) {
            Ok(()) => {
                setup.pending.remove(&ids);
                // Durable now: first tell the listener, so that a sender who
                // subscribes right after its acknowledgement finds the event.
                if !events.is_empty() {
                    setup.listener.committed(events);
                }
                for answer in answers {
                    answer.deliver();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "flush failed; refusing further writes");
                let reason = e.to_string();
                for answer in answers {
                    answer.fail(Error::Storage(format!("flush failed: {reason}")));
                }
                failed = Some(reason);
            }
        }
    }
    if let Err(e) = flush(&setup.db, &mut setup.files) {
        tracing::error!(error = %e, "final flush failed");
    }
}

type TxError = ConflictableTransactionError<Error>;

fn abort(message: impl Into<String>) -> TxError {
    ConflictableTransactionError::Abort(Error::Storage(message.into()))
}

fn read_u64(value: Option<sled::IVec>) -> Result<u64, TxError> {
    match value {
        None => Ok(0),
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| abort("a counter is not 8 bytes")),
    }
}

/// Applies one send as one transaction over every tree it touches. Runs only
/// on the committer thread, so the transaction never conflicts.
fn apply(setup: &Setup, new: &NewDocument) -> Result<(SendOutcome, Vec<StoredEvent>)> {
    let t = &setup.trees;
    let kept = setup.events_kept;
    let result = (
        &t.documents,
        &t.small_attachments,
        &t.inbox,
        &t.events,
        &t.archive_leaves,
        &t.archive_nodes,
        &t.archive_index,
        &t.outbox,
        &t.counters,
        &t.idempotency,
        &t.numbering,
    )
        .transaction(
            |(
                documents,
                small_attachments,
                inbox,
                events,
                leaves,
                nodes,
                index,
                outbox,
                counters,
                idempotency,
                numbering,
            )| {
                let stored = |id: &DocId| -> Result<StoredDocument, TxError> {
                    let bytes = documents
                        .get(id.0)?
                        .ok_or_else(|| abort(format!("document {id} is indexed but missing")))?;
                    decode_document(&bytes).map_err(ConflictableTransactionError::Abort)
                };

                if let Some(key) = &new.idempotency_key {
                    if let Some(v) = idempotency.get(keys::idempotency(&new.sender, key))? {
                        let id =
                            DocId::from_slice(&v).map_err(ConflictableTransactionError::Abort)?;
                        return if v.get(16..) == Some(&new.content_digest[..]) {
                            Ok((SendOutcome::Duplicate(id, stored(&id)?), Vec::new()))
                        } else {
                            Ok((SendOutcome::KeyReused(id), Vec::new()))
                        };
                    }
                }
                let (year, number, notation) = &new.numbering;
                let numbering_key = keys::numbering(&new.sender, *year, *number, notation);
                if let Some(v) = numbering.get(&numbering_key)? {
                    let id = DocId::from_slice(&v).map_err(ConflictableTransactionError::Abort)?;
                    return Ok((SendOutcome::NumberTaken(id), Vec::new()));
                }

                // Accepted now: the time, and so the arrival year, is fixed in
                // the same place as the arrival numbers.
                let accepted_at_ms = clock::now_ms();
                // Before any write: an Ok return commits what was written.
                if new
                    .key_usable_until_ms
                    .is_some_and(|until| accepted_at_ms >= until)
                {
                    return Ok((SendOutcome::KeyNoLongerUsable, Vec::new()));
                }
                let arrival_year = clock::vietnam_date(accepted_at_ms).year() as u16;
                let mut deliveries = Vec::with_capacity(new.recipients.len());
                let mut new_events = Vec::with_capacity(new.recipients.len());
                for recipient in &new.recipients {
                    let counter = keys::arrival_counter(recipient, arrival_year);
                    let arrival_number = read_u64(counters.get(&counter)?)? + 1;
                    counters.insert(counter, &arrival_number.to_be_bytes())?;
                    inbox.insert(
                        keys::inbox(recipient, arrival_year, arrival_number),
                        &new.id.0,
                    )?;
                    deliveries.push(StoredDelivery {
                        recipient: recipient.to_string(),
                        arrival_year: u32::from(arrival_year),
                        arrival_number,
                    });
                    // The recipient's event log: next sequence, and the
                    // oldest one out once more than `kept` are held.
                    let counter = keys::event_counter(recipient);
                    let seq = read_u64(counters.get(&counter)?)? + 1;
                    counters.insert(counter, &seq.to_be_bytes())?;
                    let event = StoredEvent {
                        org: recipient.to_string(),
                        seq,
                        kind: crate::pb::EventKind::DocumentArrived as i32,
                        document_id: new.id.0.to_vec(),
                        at_ms: accepted_at_ms,
                        sender: new.sender.to_string(),
                        arrival_year: u32::from(arrival_year),
                        arrival_number,
                    };
                    events.insert(
                        keys::event(recipient, seq),
                        prost::Message::encode_to_vec(&event),
                    )?;
                    if seq > kept {
                        events.remove(keys::event(recipient, seq - kept))?;
                    }
                    new_events.push(event);
                }
                let counter = keys::outbox_counter(&new.sender);
                let seq = read_u64(counters.get(&counter)?)? + 1;
                counters.insert(counter, &seq.to_be_bytes())?;
                outbox.insert(keys::outbox(&new.sender, seq), &new.id.0)?;

                let (receipt, receipt_signature) = setup
                    .sealer
                    .seal(&Accepted {
                        new,
                        accepted_at_ms,
                        deliveries: &deliveries,
                    })
                    .map_err(ConflictableTransactionError::Abort)?;
                let document = StoredDocument {
                    document_bytes: new.document_bytes.clone(),
                    sender: new.sender.to_string(),
                    deliveries,
                    accepted_at_ms,
                    content_digest: new.content_digest.to_vec(),
                    attachment_count: new.attachments.len() as u32,
                    attachment_sha256: new.attachments.iter().map(|a| a.sha256.to_vec()).collect(),
                    signing_key_id: new.signing_key_id.clone(),
                    signature: new.signature.clone(),
                    receipt,
                    receipt_signature,
                };
                documents.insert(&new.id.0, prost::Message::encode_to_vec(&document))?;

                // The archive: one leaf committing to the sealed receipt, and
                // the perfect subtrees it completes.
                let entry = crate::pb::ArchiveEntry {
                    kind: crate::pb::ArchiveEntryKind::DocumentAccepted as i32,
                    document_id: new.id.to_string(),
                    receipt: Some(crate::pb::SealedReceipt {
                        receipt: document.receipt.clone(),
                        signature: document.receipt_signature.clone(),
                    }),
                };
                let leaf = prost::Message::encode_to_vec(&entry);
                let at = read_u64(counters.get(keys::ARCHIVE_SIZE)?)?;
                let completed = crate::merkle::appended_nodes(
                    at,
                    crate::merkle::leaf_hash(&leaf),
                    |level, i| {
                        let stored = nodes
                            .get(keys::archive_node(level, i))
                            .map_err(|e| format!("{e:?}"))?
                            .ok_or_else(|| format!("archive node {level}/{i} is missing"))?;
                        stored
                            .as_ref()
                            .try_into()
                            .map_err(|_| format!("archive node {level}/{i} is not 32 bytes"))
                    },
                )
                .map_err(abort)?;
                for (level, i, hash) in completed {
                    nodes.insert(keys::archive_node(level, i), &hash)?;
                }
                leaves.insert(&at.to_be_bytes(), leaf)?;
                index.insert(&new.id.0, &at.to_be_bytes())?;
                counters.insert(keys::ARCHIVE_SIZE, &(at + 1).to_be_bytes())?;
                for attachment in &new.attachments {
                    if let Some(content) = &attachment.content {
                        small_attachments.insert(&attachment.sha256, content.as_slice())?;
                    }
                }
                if let Some(key) = &new.idempotency_key {
                    let mut value = new.id.0.to_vec();
                    value.extend_from_slice(&new.content_digest);
                    idempotency.insert(keys::idempotency(&new.sender, key), value)?;
                }
                numbering.insert(numbering_key, &new.id.0)?;
                Ok((SendOutcome::Accepted(new.id, document), new_events))
            },
        );
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => Error::from(e),
    })
}

//! Durable storage behind one narrow interface: commit a new document,
//! read a document, page through a mailbox, read the archive log.
//!
//! Three layers, top to bottom:
//!
//! - [`Store`] (this file): what the domain calls. Engine-neutral; hides
//!   documents that are committed but not yet durable.
//! - `committer`, `overlay` and `commit`: group commit (one leader at a
//!   time, one transaction per batch, each job apart), and the rules of
//!   a commit (numbering, arrival numbers, events, receipt, archive append,
//!   idempotency), written once against [`engine::Txn`].
//! - [`engine::Engine`]: keyspaces of ordered byte keys with transactions
//!   and `sync`. [`sled::SledEngine`] is the embedded default;
//!   [`postgres::PostgresEngine`] (`serve --store postgres://…`) implements
//!   the same five calls over tables of the same keys (its schema is
//!   documented in `postgres`).
//!
//! # Key layout
//!
//! Keyspaces ([`engine::Space`]; with sled, one tree each, in one database
//! under `DATA/store/`), their keys (`‖` is concatenation, integers are
//! big-endian so that byte order is numeric order, `org` is the 13-byte
//! code) and values; attachment contents are files under
//! `DATA/attachments/` (see `files`). Keys are built in `keys`.
//!
//! | keyspace      | key                                   | value                                |
//! |---------------|---------------------------------------|--------------------------------------|
//! | `meta`        | `"schema"`                            | `"lienthong-store-3"`                |
//! |               | `"deadlines-index"`                   | `"1"`: the deadlines index covers every document |
//! | `documents`   | `doc_id[16]`                          | [`StoredDocument`] (prost)           |
//! | `small_attachments` | `sha256[32]`                    | content of an attachment ≤ 8 KiB     |
//! | `inbox`       | `org ‖ year u16 ‖ arrival_number u64` | `doc_id[16]`                         |
//! | `outbox`      | `org ‖ seq u64`                       | `doc_id[16]`                         |
//! | `events`      | `org ‖ seq u64`                       | [`StoredEvent`] (prost)              |
//! | `archive_leaves` | `index u64`                        | leaf: opaque bytes from the [`Sealer`] |
//! | `archive_nodes`  | `level u8 ‖ index u64`             | hash of a perfect subtree, 32 bytes  |
//! | `archive_index`  | `doc_id[16]`                       | the document's leaf index, u64: written by store-2 builds only; since, the leaf is in the record (`archive_leaf`) |
//! | `checkpoints`    | `tree_size u64`                    | signed checkpoint from the [`Sealer`] |
//! | `counters`    | `"arrival" ‖ org ‖ year u16`          | last arrival number, u64             |
//! |               | `"outbox" ‖ org`                      | last outbox seq, u64                 |
//! |               | `"events" ‖ org`                      | last event seq, u64                  |
//! |               | `"archive"`                           | leaves in the archive log, u64       |
//! |               | `"checkpoint"`                        | leaves in the latest checkpoint, u64 (absent in stores from before it: then the greatest `checkpoints` key) |
//! |               | `"issued" ‖ org ‖ year u16 ‖ series u8` | highest number the issuer used in that series, u64 |
//! | `idempotency` | `org ‖ key`                           | `doc_id[16] ‖ content_digest[32]`    |
//! | `numbering`   | `org ‖ year u16 ‖ series u8 ‖ number u64 ‖ notation` | `doc_id[16]`        |
//! | `statuses`    | `doc_id[16] ‖ org ‖ change u32`       | [`StoredStatus`] (prost)             |
//! | `counters`    | `"status" ‖ doc_id[16] ‖ org`         | last change number, u64              |
//! | `deadlines`   | `date u32 ‖ org ‖ doc_id[16] ‖ kind u8` | empty                              |
//! | `unread`      | `org ‖ (3 - urgency) u8 ‖ year u16 ‖ arrival_number u64` | `doc_id[16]`      |
//! | `report`      | `org ‖ year u16 ‖ month u8`           | [`StoredReportMonth`] (prost)        |
//! | `attachment_files` | `sha256[32]`                     | `doc_id[16]`: the first document carrying that attachment file |
//!
//! `report` holds each organisation's counters for each month (Vietnam
//! time) in which something happened to it: sent and received, electronic
//! and paper, registrations on time or late and their delays, completions
//! on time or late, rejections (see `counters`). The commit of each send
//! and status change updates them, so a report of a year reads
//! O(organisations × months) records, one range per organisation, and
//! never scans documents. Counting starts with the build that added the
//! keyspace: documents accepted before it are not counted.
//!
//! `unread` indexes the part of each inbox not yet acted on (status 01,
//! not frozen), hỏa tốc first, then by arrival (see `unread`); the commit
//! adds an entry at delivery and removes it at the recipient's first change
//! or answer and when the document is frozen. A store from an earlier build
//! gets the index built once when opened (marked by `meta` key
//! `"unread-index"`).
//!
//! The registers read what is already ordered: the incoming register of a
//! year is the `inbox` range `org ‖ year`, in arrival order; the outgoing
//! register of a year is the `numbering` range `org ‖ year`, in number
//! order within each series.
//!
//! A document's life after sending: each recipient's current status (and
//! answer, assignment, deadline) sits in its [`StoredDelivery`], inside the
//! document's record, so that views read one record; every signed change
//! is kept in `statuses`, in order, with its receipt and archive leaf; a
//! revocation, update or replacement freezes the record (`frozen_by`), and
//! replies and supersessions are listed on the earlier document's record.
//!
//! The `deadlines` index holds one entry per open deadline of a recipient
//! (see `deadlines`): `date` is `YYYYMMDD` as a number, so byte order is
//! date order and "due by D" is one range scan; `kind` is 1 handling (dated
//! by the assignment's deadline, else the header's due date) or 2
//! registration (dated by the arrival date, while the delivery is at 01).
//! The commit that delivers, moves a status or freezes a document keeps it;
//! a store from a build before the index gets it built once when opened.
//!
//! `series` is 0 for ordinary documents and 1 for secret ones, which
//! Decree 30 numbers apart ([`Series`]). The `"issued"` counter rises with
//! every number used, given or assigned, so the next assigned number is
//! the highest used plus one.
//!
//! Attachments are content-addressed by their SHA-256, which the document
//! record lists: up to [`INLINE_ATTACHMENT_MAX`] bytes in `small_attachments`
//! (covered by the group commit's one fsync), larger ones as files
//! (`DATA/attachments/ab/abcd…`, each synced on its own, before the commit).
//! `attachment_files` says which files documents refer to (`references`);
//! one that none refers to and nothing claims is removed (`files`).
//! Uploads in progress and completed ones not yet sent are files too, under
//! `DATA/attachments/uploads/` (`uploads`).
//!
//! A document and its attachments are stored once, however many recipients
//! it has; each recipient's inbox holds only the id. The inbox key *is* the
//! arrival number, so a page of a mailbox is one range scan whose cost does
//! not depend on the mailbox's size.
//!
//! The store holds no wire (protobuf API) types: receipts, archive leaves
//! and checkpoints are bytes that the [`Sealer`] makes, so the store's
//! format does not change with the API.
//!
//! # Durability
//!
//! A send first makes its attachment files durable (`files`), then goes
//! through the group commit (see `committer`): one leader at a time
//! applies the queued sends in one transaction, each send kept apart in an
//! overlay (`overlay`) so that it is all or nothing on its own, then syncs
//! once for all of them, and only then answers them.
//!
//! With sled, "sync" means more than sled's `flush()`: on Linux that only
//! calls `sync_file_range`, which writes neither the file's metadata nor the
//! drive's cache, so the engine also fsyncs sled's files itself; and sled's
//! own periodic flush is switched off, so nothing else flushes concurrently.
//!
//! Between commit and sync a document is committed but not yet on disk; it
//! is kept *pending* and invisible to readers, so no recipient ever sees a
//! document that a crash could still take away.

mod commit;
pub(crate) mod committer;
mod costs;
mod counters;
mod deadlines;
pub mod engine;
pub(crate) mod files;
mod keys;
pub mod load;
mod overlay;
pub mod postgres;
mod records;
mod references;
pub mod sled;
mod unread;
mod upgrade;
pub mod uploads;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::directory::OrgCode;
pub use crate::document::Series;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Code, Frozen};
use crate::merkle::{self, Hash};
pub use costs::{archive_costs, ArchiveCost};
pub use counters::{estimated_median_hours, DELAY_BUCKETS, DELAY_BUCKETS_HOURS};
pub use deadlines::{open_deadlines, DeadlineEntry, DeadlineKind};
use engine::{Engine, Order, Space};
pub use records::{
    EventKind, StoredDelivery, StoredDocument, StoredEvent, StoredReportMonth, StoredStatus,
};

use committer::Committer;
pub use committer::{Sequence, Turn};
use files::AttachmentFiles;
use uploads::UploadFiles;
pub use uploads::{FoundPartial, PartialFile, UploadKey};

/// The `meta` key `"schema"` of a store this build wrote.
pub const SCHEMA: &[u8] = b"lienthong-store-3";

/// Attachments up to this size stay inside the engine. Larger values would
/// make sled rewrite whole leaves as unsynced blob files (a leaf holds up to
/// 16 entries, and any page over 128 KiB becomes a blob), so they go to files.
pub const INLINE_ATTACHMENT_MAX: usize = 8 * 1024;

/// A document's id: 16 random bytes, shown as 32 lowercase hex characters.
/// Random rather than sequential so ids say nothing about others' traffic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub [u8; 16]);

impl DocId {
    pub fn random() -> Result<DocId> {
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| Error::storage("the system random generator failed"))?;
        Ok(DocId(bytes))
    }

    /// Parses the 32-hex-character form.
    pub fn parse(text: &str) -> Option<DocId> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(DocId(bytes))
    }

    fn from_slice(bytes: &[u8]) -> Result<DocId> {
        bytes
            .get(..16)
            .and_then(|b| b.try_into().ok())
            .map(DocId)
            .ok_or_else(|| Error::storage("a stored document id is truncated"))
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

/// An attachment whose SHA-256 was checked against its content.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub sha256: [u8; 32],
    /// `None` once written to a file, or when uploaded: the commit then
    /// only records the digest.
    pub content: Option<Vec<u8>>,
    /// Uploaded beforehand by the sender (see `uploads`); `content` is
    /// `None` and the size is the declared one.
    pub uploaded: Option<u64>,
}

/// A document the exchange has checked and routed, ready to be committed.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub id: DocId,
    pub sender: OrgCode,
    pub recipients: Vec<OrgCode>,
    pub document_bytes: Vec<u8>,
    pub attachments: Vec<NewAttachment>,
    pub content_digest: [u8; 32],
    pub idempotency_key: Option<String>,
    /// Where the document takes its number.
    pub numbering: Numbering,
    pub signing_key_id: String,
    pub signature: Vec<u8>,
    /// The signing key may not sign from this instant on: checked against
    /// the acceptance time that the commit fixes.
    pub key_usable_until_ms: Option<i64>,
    /// The document it answers: checked in the commit (it must exist, the
    /// sender must be one of its parties, and it must not be revoked).
    pub reply_to: Option<DocId>,
    /// The document it updates or replaces: checked in the commit (sent by
    /// the same sender, not frozen).
    pub supersedes: Option<(DocId, Frozen)>,
    /// The header's due date (hạn xử lý), for the deadlines index.
    pub due_date: Option<time::Date>,
    /// Its urgency, 0 (normal) to 3 (hỏa tốc), from the header: it orders
    /// the unread part of each recipient's inbox.
    pub urgency: u8,
    /// Recorded from paper (see `paper`): `document_bytes` are a signed
    /// paper record. False for electronic documents.
    pub paper: bool,
    /// The attachment files this send needs, claimed until the commit is
    /// applied or refused (set by [`Store::send`]).
    pub claims: Option<Arc<FileClaims>>,
}

/// Claims on attachment files (see `files`), released when the last holder
/// drops them: after the committer applied or refused the send that holds
/// them, or when the send never reached it. A file released that no
/// document refers to is removed then: what a failed send wrote goes at
/// once.
pub struct FileClaims {
    files: Arc<AttachmentFiles>,
    engine: Arc<dyn Engine>,
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for FileClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileClaims({} files)", self.digests.len())
    }
}

impl Drop for FileClaims {
    fn drop(&mut self) {
        let engine = self.engine.as_ref();
        let referenced = |sha: &[u8; 32]| references::referenced(engine, sha);
        match self.files.release(&self.digests, &referenced) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(removed, "removed attachment files of a send that failed")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove the attachment files of a send that failed; the sweep after the next start will")
            }
        }
    }
}

/// Where a stored attachment's content is, for reading it in pieces.
pub enum AttachmentSource {
    /// A small one, kept in the engine: already read.
    Inline(Vec<u8>),
    /// A file, open, and its length.
    File(std::fs::File, u64),
}

impl NewDocument {
    /// A paper document recorded by its recipient (see `paper`).
    pub fn incoming_paper(&self) -> bool {
        self.paper && !self.recipients.is_empty()
    }

    /// The organisation that submitted it, whose uploads its uploaded
    /// attachments are: the sender, except for an incoming paper record,
    /// which its one recipient recorded (its sender only says where the
    /// paper came from).
    pub fn submitted_by(&self) -> OrgCode {
        match self.recipients.as_slice() {
            [recorder] if self.incoming_paper() => *recorder,
            _ => self.sender,
        }
    }
}

/// A signed change in a document's life, checked by the domain (signature,
/// fields), ready to be committed. Whether it is allowed is decided in the
/// commit, against the state it finds there.
#[derive(Debug, Clone)]
pub struct NewStatus {
    pub document: DocId,
    /// The organisation that signed it: a recipient, or for a revocation
    /// the sender.
    pub from: OrgCode,
    /// The code asked for; `None` for a revocation.
    pub code: Option<Code>,
    pub status_bytes: Vec<u8>,
    pub signing_key_id: String,
    pub signature: Vec<u8>,
    pub key_usable_until_ms: Option<i64>,
    /// For 04: the unit or person assigned, and the deadline if any.
    pub assigned_to: String,
    pub deadline: String,
    /// For a move to 03–06: whether it is on or before the registration
    /// due day of the document's arrival (Decree 30: the same or the next
    /// working day), judged by the domain, which has the calendar; the
    /// report counts it if the commit finds this is the first move out of
    /// 01 (a registration).
    pub registration_on_time: Option<bool>,
    /// For 06: whether it is on or before the due date (the assignment's
    /// deadline if set, else the document's due date; none: on time),
    /// judged by the domain.
    pub completion_on_time: Option<bool>,
}

/// What the store knows when it accepts a status change, for its receipt.
#[derive(Debug)]
pub struct AcceptedStatus<'a> {
    pub new: &'a NewStatus,
    /// The signer's n-th change of this document.
    pub change: u32,
    pub accepted_at_ms: i64,
}

/// What committing a [`NewStatus`] did.
#[derive(Debug)]
pub enum StatusOutcome {
    /// Stored and durable.
    Accepted(StoredStatus),
    /// No such document, or the signer is not the party that may make this
    /// change (a recipient for a status, the sender for a revocation): the
    /// same answer, so it reveals nothing.
    NotFound,
    /// The lifecycle rules refuse the move from where it stands.
    Refused(lifecycle::Refused),
    /// A revocation of a document already frozen (revoked, updated or
    /// replaced).
    AlreadyFrozen(Frozen),
    /// The signing key stopped being usable before the acceptance time.
    KeyNoLongerUsable,
}

/// A document's number within its issuer's series: number and notation
/// are unique per sender, year and series (Decree 30).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbering {
    /// The year of issue: numbers restart each 1 January.
    pub year: u16,
    pub series: Series,
    /// `None`: the commit assigns the next number of the series.
    pub number: Option<u64>,
    pub notation: String,
}

/// What the store knows when it accepts a document, for its receipt.
#[derive(Debug)]
pub struct Accepted<'a> {
    pub new: &'a NewDocument,
    /// The document's number: as given, or as the commit assigned it.
    pub number: u64,
    pub accepted_at_ms: i64,
    pub deliveries: &'a [StoredDelivery],
}

/// A receipt and what the archive keeps of it, as the [`Sealer`] made them.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub receipt: Vec<u8>,
    pub signature: Vec<u8>,
    /// The archive log's leaf for this document (opaque to the store).
    pub archive_leaf: Vec<u8>,
}

/// Told of the events of every batch once the batch is durable, in commit
/// order. Called by the commit leader: it must not block.
pub trait CommitListener: Send + Sync {
    fn committed(&self, events: Vec<StoredEvent>);

    /// A batch of `jobs` writes was made durable by one sync that took
    /// `sync` (for the metrics; before [`CommitListener::committed`]).
    fn synced(&self, jobs: usize, sync: std::time::Duration) {
        let _ = (jobs, sync);
    }
}

/// Makes the signed receipt of an accepted document and its archive leaf,
/// inside the commit, so that a document is never stored without them.
pub trait Sealer: Send + Sync {
    fn seal(&self, accepted: &Accepted<'_>) -> Result<Sealed>;
    /// The receipt of a status change or revocation, and its archive leaf.
    fn seal_status(&self, accepted: &AcceptedStatus<'_>) -> Result<Sealed>;
    /// Signs the archive's tree head; returns the signed checkpoint's bytes.
    fn seal_checkpoint(&self, size: u64, root: [u8; 32], at_ms: i64) -> Result<Vec<u8>>;
}

/// What committing a [`NewDocument`] did.
#[derive(Debug)]
pub enum SendOutcome {
    /// Stored and durable.
    Accepted(DocId, StoredDocument),
    /// The idempotency key was used before for the same content: that
    /// document, nothing new.
    Duplicate(DocId, StoredDocument),
    /// The idempotency key was used before for other content.
    KeyReused(DocId),
    /// The sender already used this number and notation in the year and
    /// series of the document.
    NumberTaken(DocId),
    /// The signing key stopped being usable before the acceptance time.
    KeyNoLongerUsable,
}

/// One entry of an inbox, with its document.
#[derive(Debug)]
pub struct InboxItem {
    pub arrival_year: u16,
    pub arrival_number: u64,
    pub id: DocId,
    pub document: StoredDocument,
}

/// One entry of an outbox, with its document.
#[derive(Debug)]
pub struct OutboxItem {
    pub seq: u64,
    pub id: DocId,
    pub document: StoredDocument,
}

/// One entry of an issuer's numbering: a document it issued.
#[derive(Debug)]
pub struct IssuedItem {
    pub series: Series,
    pub number: u64,
    pub notation: String,
    pub id: DocId,
    pub document: StoredDocument,
}

/// One entry of the unread part of an inbox.
#[derive(Debug)]
pub struct UnreadItem {
    /// 0 (normal) to 3 (hỏa tốc).
    pub urgency: u8,
    pub arrival_year: u16,
    pub arrival_number: u64,
    pub id: DocId,
    pub document: StoredDocument,
}

/// A page of a listing, in its order, and where the next page starts.
#[derive(Debug)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// The position to pass back for the next page; `None` at the end.
    pub next: Option<C>,
}

/// What is committed but not yet synced, and so must not be seen yet: new
/// documents are hidden; a document whose record a pending change rewrote
/// (a status, a revocation, a reply or supersession) is shown as it was,
/// and the pending changes in its history are hidden.
#[derive(Default)]
struct Pending(Mutex<PendingSets>);

#[derive(Default)]
struct PendingSets {
    new: HashSet<DocId>,
    changing: HashMap<DocId, Changing>,
}

/// A document with changes in flight: its last durable record, and for each
/// organisation changing it, how many of its changes are durable.
struct Changing {
    record: Option<Vec<u8>>,
    durable_changes: HashMap<String, u64>,
}

impl Pending {
    /// The sets. Each use of them is a few inserts, removals or lookups,
    /// which a panic elsewhere cannot leave half done, so a poisoned lock
    /// still guards consistent sets and is taken over rather than failing
    /// every later read (or leaving documents pending forever).
    fn sets(&self) -> MutexGuard<'_, PendingSets> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn contains(&self, id: &DocId) -> bool {
        self.sets().new.contains(id)
    }
    fn insert(&self, id: DocId) {
        self.sets().new.insert(id);
    }
    /// Before a change to `id`'s record is applied: keeps the durable
    /// record (the first one, if several changes share a batch) and, for
    /// `org`, the durable number of its changes.
    fn hold(&self, engine: &dyn Engine, id: DocId, org: Option<&OrgCode>) -> Result<()> {
        let record = engine.get(Space::Documents, &id.0)?;
        let durable = match org {
            Some(org) => Some((
                org.to_string(),
                match engine.get(Space::Counters, &keys::status_counter(&id.0, org))? {
                    Some(v) => {
                        keys::be_u64(&v).ok_or_else(|| commit::corrupt_counter(b"status"))?
                    }
                    None => 0,
                },
            )),
            None => None,
        };
        let mut sets = self.sets();
        let changing = sets.changing.entry(id).or_insert(Changing {
            record,
            durable_changes: HashMap::new(),
        });
        if let Some((org, count)) = durable {
            changing.durable_changes.entry(org).or_insert(count);
        }
        Ok(())
    }
    /// The durable record of a document with changes in flight.
    fn held_record(&self, id: &DocId) -> Option<Option<Vec<u8>>> {
        self.sets().changing.get(id).map(|c| c.record.clone())
    }
    /// Whether change `change` of `org` to `id` is still in flight.
    fn hides(&self, id: &DocId, org: &str, change: u32) -> bool {
        self.sets()
            .changing
            .get(id)
            .and_then(|c| c.durable_changes.get(org))
            .is_some_and(|durable| u64::from(change) > *durable)
    }
    /// After the sync that made them durable.
    fn remove(&self, ids: &[DocId]) {
        let mut sets = self.sets();
        for id in ids {
            sets.new.remove(id);
            sets.changing.remove(id);
        }
    }
}

/// Storage tuning, and the clock that fixes acceptance times.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Acceptance times, and so arrival years, come from this clock.
    pub clock: crate::clock::Clock,
    /// The engine's page cache, bytes.
    pub cache_bytes: u64,
    /// Events kept per organisation; older ones are removed as new ones come.
    pub events_kept: u64,
    /// A checkpoint of the archive is signed every this many leaves.
    pub checkpoint_every: u64,
    /// Which engine holds the store.
    pub engine: StoreEngine,
}

/// Which engine holds the store (see [`open_engine`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreEngine {
    /// sled, under `DATA/store/`: the default, which needs nothing else.
    #[default]
    Embedded,
    /// A PostgreSQL database (`--store postgres://…`).
    Postgres(postgres::PostgresUrl),
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            clock: crate::clock::Clock::system(),
            cache_bytes: crate::defaults::CACHE_MIB * 1024 * 1024,
            events_kept: crate::defaults::EVENTS_KEPT,
            checkpoint_every: crate::defaults::CHECKPOINT_EVERY,
            engine: StoreEngine::Embedded,
        }
    }
}

/// The archive's stored perfect subtrees, for [`merkle::Tree`].
struct EngineNodes<'a>(&'a dyn Engine);

impl merkle::Nodes for EngineNodes<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        node_hash_of(
            level,
            index,
            self.0
                .get(Space::ArchiveNodes, &keys::archive_node(level, index))?,
        )
    }
}

/// A stored archive node's value as a hash.
fn node_hash_of(level: u32, index: u64, value: Option<Vec<u8>>) -> Result<Hash> {
    let value =
        value.ok_or_else(|| Error::storage(format!("archive node {level}/{index} is missing")))?;
    value
        .as_slice()
        .try_into()
        .map_err(|_| Error::storage(format!("archive node {level}/{index} is not 32 bytes")))
}

pub struct Store {
    clock: crate::clock::Clock,
    engine: Arc<dyn Engine>,
    files: Arc<AttachmentFiles>,
    uploads: Arc<UploadFiles>,
    pending: Arc<Pending>,
    /// `None` when opened read-only (`open_read_only`).
    committer: Option<Committer>,
}

impl Store {
    /// Opens the store on `engine`, with attachment files in
    /// `attachments_dir`; `sealer` makes each accepted document's receipt.
    pub fn open(
        engine: Arc<dyn Engine>,
        attachments_dir: &Path,
        options: &StoreOptions,
        sealer: Arc<dyn Sealer>,
        listener: Arc<dyn CommitListener>,
    ) -> Result<Store> {
        // Front ends starting together on one database take turns: the
        // second finds each mark set by the first and builds nothing twice.
        engine.exclusive(&mut || {
            check_schema(engine.as_ref())?;
            deadlines::build_index_once(engine.as_ref())?;
            unread::build_index_once(engine.as_ref())?;
            counters::rebuild_once(engine.as_ref())?;
            references::build_once(engine.as_ref())
        })?;
        let files = Arc::new(AttachmentFiles::open(attachments_dir, engine.shared())?);
        files.clear_tmp()?;
        let uploads = Arc::new(UploadFiles::open(
            &attachments_dir.join("uploads"),
            &|sha| files.exists(sha),
        )?);
        // A completed upload claims its content while it lives.
        for (key, _) in uploads.all_completed() {
            files.claim(&[key.sha256]);
        }
        let pending = Arc::new(Pending::default());
        let last_checkpoint = match engine::last(engine.as_ref(), Space::Checkpoints)? {
            Some((key, _)) => keys::be_u64(&key)
                .ok_or_else(|| Error::storage("a checkpoint key is not 8 bytes"))?,
            None => 0,
        };
        let committer = Committer::start(committer::Setup {
            engine: engine.clone(),
            pending: pending.clone(),
            sealer,
            listener,
            events_kept: options.events_kept.max(1),
            checkpoint_every: options.checkpoint_every.max(1),
            last_checkpoint,
            clock: options.clock.clone(),
            failed: None,
        })?;
        Ok(Store {
            clock: options.clock.clone(),
            engine,
            files,
            uploads,
            pending,
            committer: Some(committer),
        })
    }

    /// Opens the store for reading only (the audit): sends are refused.
    pub fn open_read_only(engine: Arc<dyn Engine>, attachments_dir: &Path) -> Result<Store> {
        check_schema(engine.as_ref())?;
        Ok(Store {
            clock: crate::clock::Clock::system(),
            engine,
            // Removes nothing: read-only.
            files: Arc::new(AttachmentFiles::open(attachments_dir, true)?),
            // Reads nothing of uploads; forgets none.
            uploads: Arc::new(UploadFiles::open(
                &attachments_dir.join("uploads"),
                &|_| true,
            )?),
            pending: Arc::new(Pending::default()),
            committer: None,
        })
    }

    /// The clock that fixes acceptance times; the domain dates by it too.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    fn committer(&self) -> Result<&Committer> {
        self.committer
            .as_ref()
            .ok_or_else(|| Error::Unavailable("the store is open read-only".into()))
    }

    /// Commits a new document: either all of it is stored and durable when
    /// this returns `Accepted`, or no record of it was written. An uploaded
    /// attachment must be a completed upload of the sender's, else
    /// FAILED_PRECONDITION naming it.
    pub async fn send(&self, new: NewDocument) -> Result<SendOutcome> {
        self.send_in_turn(new, None).await
    }

    /// [`Store::send`], reaching the committer in `turn` (a batch keeps
    /// its order: the earlier document takes a contested number, and
    /// numbers assigned follow the batch).
    pub async fn send_in_turn(
        &self,
        mut new: NewDocument,
        turn: Option<Turn>,
    ) -> Result<SendOutcome> {
        let committer = self.committer()?;
        // Claimed before anything looks at the files, so that no clean-up
        // removes one between here and the commit.
        let digests: Vec<[u8; 32]> = new
            .attachments
            .iter()
            .filter(|a| {
                a.uploaded.is_some()
                    || a.content
                        .as_ref()
                        .is_some_and(|c| c.len() > INLINE_ATTACHMENT_MAX)
            })
            .map(|a| a.sha256)
            .collect();
        if !digests.is_empty() {
            self.files.claim(&digests);
            new.claims = Some(Arc::new(FileClaims {
                files: self.files.clone(),
                engine: self.engine.clone(),
                digests,
            }));
        }
        for (index, attachment) in new.attachments.iter().enumerate() {
            if let Some(size) = attachment.uploaded {
                let key = UploadKey {
                    org: new.submitted_by(),
                    sha256: attachment.sha256,
                    size,
                };
                if self.uploads.completed_at(&key).is_none() {
                    return Err(Error::precondition(
                        format!("attachments[{index}]"),
                        format!(
                            "is marked uploaded, but {} has no complete upload of SHA-256 {} ({size} bytes): upload it first (BeginUpload, UploadAttachment); uploads not sent in time are removed",
                            key.org,
                            hex::encode(attachment.sha256)
                        ),
                    ));
                }
            }
        }
        // Large attachments become files, durable before the commit that
        // refers to them; written here, by each sender in parallel, not by
        // the single committer, which then needs only their digests.
        let contents: Vec<([u8; 32], Vec<u8>)> = new
            .attachments
            .iter_mut()
            .filter(|a| {
                a.content
                    .as_ref()
                    .is_some_and(|c| c.len() > INLINE_ATTACHMENT_MAX)
            })
            .filter_map(|a| Some((a.sha256, a.content.take()?)))
            .collect();
        if !contents.is_empty() {
            let files = self.files.clone();
            tokio::task::spawn_blocking(move || files.put_all(&contents))
                .await
                .map_err(|e| Error::storage_from("writing attachments did not complete", e))??;
        }
        committer.submit(new, turn).await
    }

    /// A durable document, as it stands durably, or `None`.
    pub fn document(&self, id: &DocId) -> Result<Option<StoredDocument>> {
        if self.pending.contains(id) {
            return Ok(None);
        }
        let bytes = match self.pending.held_record(id) {
            Some(held) => held,
            None => self.engine.get(Space::Documents, &id.0)?,
        };
        bytes.map(|bytes| decode_document(&bytes)).transpose()
    }

    /// Commits a status change or a revocation: stored and durable when
    /// this returns `Accepted`, or nothing was written.
    pub async fn change_status(&self, new: NewStatus) -> Result<StatusOutcome> {
        self.committer()?.submit_status(new).await
    }

    /// One signed change: `org`'s `change`-th of document `id`.
    pub fn status(&self, id: &DocId, org: &OrgCode, change: u32) -> Result<Option<StoredStatus>> {
        if self.pending.hides(id, org.as_str(), change) {
            return Ok(None);
        }
        self.engine
            .get(Space::Statuses, &keys::status(&id.0, org, change))?
            .map(|value| {
                prost::Message::decode(value.as_slice())
                    .map_err(|e| Error::storage_from("a stored status does not decode", e))
            })
            .transpose()
    }

    /// Every durable signed change of a document's life, by organisation
    /// and then in order.
    pub fn statuses(&self, id: &DocId) -> Result<Vec<StoredStatus>> {
        let (start, end) = keys::status_range(&id.0);
        self.statuses_in(id, &start, &end)
    }

    /// The durable signed changes of `org` to document `id`, in order.
    pub fn statuses_by(&self, id: &DocId, org: &OrgCode) -> Result<Vec<StoredStatus>> {
        let start = keys::status(&id.0, org, 0);
        let end = keys::status(&id.0, org, u32::MAX);
        self.statuses_in(id, &start, &end)
    }

    /// The durable changes of document `id` with keys in `[start, end)`.
    fn statuses_in(&self, id: &DocId, start: &[u8], end: &[u8]) -> Result<Vec<StoredStatus>> {
        let mut out = Vec::new();
        let entries = self.engine.scan(
            Space::Statuses,
            start,
            Some(end),
            Order::Ascending,
            usize::MAX,
        )?;
        for (_, value) in entries {
            let status: StoredStatus = prost::Message::decode(value.as_slice())
                .map_err(|e| Error::storage_from("a stored status does not decode", e))?;
            if !self.pending.hides(id, &status.org, status.change) {
                out.push(status);
            }
        }
        Ok(out)
    }

    /// The content of the attachment with this SHA-256, checked against it.
    /// Blocking (may read a file).
    pub fn attachment(&self, sha256: &[u8]) -> Result<Option<Vec<u8>>> {
        let digest: [u8; 32] = sha256
            .try_into()
            .map_err(|_| Error::storage("a stored attachment digest is not 32 bytes"))?;
        if let Some(content) = self.engine.get(Space::SmallAttachments, &digest)? {
            if ring::digest::digest(&ring::digest::SHA256, &content).as_ref() != digest {
                return Err(Error::storage(format!(
                    "the stored attachment {} does not match its SHA-256",
                    hex::encode(digest)
                )));
            }
            return Ok(Some(content));
        }
        self.files.get(&digest)
    }

    /// Where the attachment with this SHA-256 is, to be read in pieces
    /// (by the caller, who checks the digest when it reads it all).
    /// Blocking (may open a file).
    pub fn attachment_source(&self, sha256: &[u8]) -> Result<Option<AttachmentSource>> {
        let digest: [u8; 32] = sha256
            .try_into()
            .map_err(|_| Error::storage("a stored attachment digest is not 32 bytes"))?;
        if let Some(content) = self.engine.get(Space::SmallAttachments, &digest)? {
            return Ok(Some(AttachmentSource::Inline(content)));
        }
        Ok(self
            .files
            .open_file(&digest)?
            .map(|(file, len)| AttachmentSource::File(file, len)))
    }

    /// Whether a document refers to the attachment file of this content.
    pub fn attachment_referenced(&self, sha256: &[u8; 32]) -> Result<bool> {
        references::referenced(self.engine.as_ref(), sha256)
    }

    /// Removes the attachment files that no document refers to and nothing
    /// claims: what a crash left between writing a send's files and its
    /// commit. Returns how many. Blocking.
    pub fn sweep_attachment_files(&self) -> Result<usize> {
        let engine = self.engine.as_ref();
        let uploaded = if engine.shared() {
            self.uploads.completed_on_disk()?.into_iter().collect()
        } else {
            std::collections::HashSet::new()
        };
        self.files.sweep(
            &|sha: &[u8; 32]| references::referenced(engine, sha),
            &uploaded,
        )
    }

    /// The partial file of an upload, created empty if there is none, its
    /// length durable. Blocking.
    pub fn open_upload(&self, key: &UploadKey) -> Result<PartialFile> {
        self.uploads.open_partial(key)
    }

    /// The durable length of an upload's partial file and its last write,
    /// if there is one. Blocking.
    pub fn upload_offset(&self, key: &UploadKey) -> Result<Option<(u64, std::time::SystemTime)>> {
        self.uploads.partial_len(key)
    }

    /// Removes an upload's partial file. Blocking.
    pub fn discard_upload(&self, key: &UploadKey) -> Result<()> {
        self.uploads.remove_partial(key)
    }

    /// Every partial upload on disk. Blocking.
    pub fn partial_uploads(&self) -> Result<Vec<FoundPartial>> {
        self.uploads.partials()
    }

    /// Completes an upload whose bytes the caller checked against its
    /// SHA-256: the content becomes the attachment file of that digest and
    /// the upload is recorded as completed, durably, when this returns; it
    /// then claims the file until [`Store::forget_upload`]. Blocking.
    pub fn complete_upload(
        &self,
        key: &UploadKey,
        mut partial: PartialFile,
    ) -> Result<std::time::SystemTime> {
        partial.sync()?;
        let fresh = self.uploads.completed_at(key).is_none();
        if fresh {
            self.files.claim(&[key.sha256]);
        }
        let done = self
            .files
            .adopt(partial.path(), &key.sha256)
            .and_then(|()| self.uploads.mark_complete(key));
        if done.is_err() && fresh {
            let engine = self.engine.as_ref();
            let referenced = |sha: &[u8; 32]| references::referenced(engine, sha);
            self.files.release(&[key.sha256], &referenced)?;
        }
        done
    }

    /// When an upload completed, if it did and was not forgotten.
    pub fn upload_completed_at(&self, key: &UploadKey) -> Option<std::time::SystemTime> {
        self.uploads.completed_at(key)
    }

    /// Every completed upload not forgotten, with when it completed.
    pub fn completed_uploads(&self) -> Vec<(UploadKey, std::time::SystemTime)> {
        self.uploads.all_completed()
    }

    /// Forgets a completed upload: a send may no longer name it, and its
    /// content file goes unless a document refers to it or another claim
    /// holds it. Blocking.
    pub fn forget_upload(&self, key: &UploadKey) -> Result<()> {
        if self.uploads.forget(key)? {
            let engine = self.engine.as_ref();
            let referenced = |sha: &[u8; 32]| references::referenced(engine, sha);
            self.files.release(&[key.sha256], &referenced)?;
        }
        Ok(())
    }

    /// Up to `limit` entries of `org`'s inbox, newest first, strictly before
    /// `before` (a (year, arrival number) from a previous page).
    pub fn inbox_page(
        &self,
        org: &OrgCode,
        before: Option<(u16, u64)>,
        limit: usize,
    ) -> Result<Page<InboxItem, (u16, u64)>> {
        let (start, org_end) = keys::org_range(org);
        let end = match before {
            Some((year, number)) => keys::inbox(org, year, number),
            None => org_end,
        };
        let (items, more) = self.page(Space::Inbox, start, end, limit, |key, id, document| {
            let (arrival_year, arrival_number) = keys::inbox_position(key)
                .ok_or_else(|| Error::storage("an inbox key is truncated"))?;
            Ok(InboxItem {
                arrival_year,
                arrival_number,
                id,
                document,
            })
        })?;
        Ok(Page {
            next: more
                .then(|| items.last().map(|i| (i.arrival_year, i.arrival_number)))
                .flatten(),
            items,
        })
    }

    /// Up to `limit` entries of `org`'s outbox, newest first, strictly before
    /// sequence `before`.
    pub fn outbox_page(
        &self,
        org: &OrgCode,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<OutboxItem, u64>> {
        let (start, org_end) = keys::org_range(org);
        let end = match before {
            Some(seq) => keys::outbox(org, seq),
            None => org_end,
        };
        let (items, more) = self.page(Space::Outbox, start, end, limit, |key, id, document| {
            let seq =
                keys::org_seq(key).ok_or_else(|| Error::storage("an outbox key is truncated"))?;
            Ok(OutboxItem { seq, id, document })
        })?;
        Ok(Page {
            next: more.then(|| items.last().map(|i| i.seq)).flatten(),
            items,
        })
    }

    /// Walks `space` backwards over `[start, end)`, skipping pending
    /// documents, and returns at most `limit` items and whether more follow.
    fn page<T>(
        &self,
        space: Space,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        make: impl Fn(&[u8], DocId, StoredDocument) -> Result<T>,
    ) -> Result<(Vec<T>, bool)> {
        self.scan_page(space, start, end, Order::Descending, limit, make)
    }

    /// Walks `space` over `[start, end)` in `order`, skipping pending
    /// documents, and returns at most `limit` items and whether more follow.
    fn scan_page<T>(
        &self,
        space: Space,
        mut start: Vec<u8>,
        mut end: Vec<u8>,
        order: Order,
        limit: usize,
        make: impl Fn(&[u8], DocId, StoredDocument) -> Result<T>,
    ) -> Result<(Vec<T>, bool)> {
        let mut items = Vec::with_capacity(limit.min(512));
        // One more than needed, to know whether more follow; pending
        // documents (rare, and only for a moment) may take further scans.
        let chunk = limit.saturating_add(1).min(4096);
        loop {
            let entries = self.engine.scan(space, &start, Some(&end), order, chunk)?;
            let exhausted = entries.len() < chunk;
            for (key, value) in &entries {
                let id = DocId::from_slice(value)?;
                let Some(document) = self.document(&id)? else {
                    continue; // pending: not durable yet
                };
                if items.len() == limit {
                    return Ok((items, true));
                }
                items.push(make(key, id, document)?);
            }
            match (entries.last(), order) {
                (Some((key, _)), Order::Descending) if !exhausted => end = key.clone(),
                (Some((key, _)), Order::Ascending) if !exhausted => start = after_key(key.clone()),
                _ => return Ok((items, false)),
            }
        }
    }

    /// [`Store::scan_page`] forwards, as a page whose next position is
    /// that of its last item.
    fn ascending_page<T, C>(
        &self,
        space: Space,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        make: impl Fn(&[u8], DocId, StoredDocument) -> Result<T>,
        position: impl Fn(&T) -> C,
    ) -> Result<Page<T, C>> {
        let (items, more) = self.scan_page(space, start, end, Order::Ascending, limit, make)?;
        Ok(Page {
            next: more.then(|| items.last().map(position)).flatten(),
            items,
        })
    }

    /// Up to `limit` entries of `org`'s register of arrivals of `year`, in
    /// arrival order, after arrival number `after`.
    pub fn register_page(
        &self,
        org: &OrgCode,
        year: u16,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<InboxItem, u64>> {
        let (year_start, end) = keys::year_range(org, year);
        let start = match after {
            Some(number) => after_key(keys::inbox(org, year, number)),
            None => year_start,
        };
        self.ascending_page(
            Space::Inbox,
            start,
            end,
            limit,
            |key, id, document| {
                let (arrival_year, arrival_number) = keys::inbox_position(key)
                    .ok_or_else(|| Error::storage("an inbox key is truncated"))?;
                Ok(InboxItem {
                    arrival_year,
                    arrival_number,
                    id,
                    document,
                })
            },
            |i| i.arrival_number,
        )
    }

    /// Up to `limit` documents `org` issued with a date of issue in `year`,
    /// the ordinary series then the secret one, each in number order, after
    /// the position `after` (series, number, notation) of a previous page.
    pub fn issued_page(
        &self,
        org: &OrgCode,
        year: u16,
        after: Option<(Series, u64, String)>,
        limit: usize,
    ) -> Result<Page<IssuedItem, (Series, u64, String)>> {
        let (year_start, end) = keys::year_range(org, year);
        let start = match after {
            Some((series, number, notation)) => {
                after_key(keys::numbering(org, year, series, number, &notation))
            }
            None => year_start,
        };
        self.ascending_page(
            Space::Numbering,
            start,
            end,
            limit,
            |key, id, document| {
                let (series, number, notation) = keys::numbering_position(key)
                    .ok_or_else(|| Error::storage("a numbering key is malformed"))?;
                Ok(IssuedItem {
                    series,
                    number,
                    notation,
                    id,
                    document,
                })
            },
            |i| (i.series, i.number, i.notation.clone()),
        )
    }

    /// Up to `limit` documents of `org`'s inbox that it has not acted on
    /// (status 01, not frozen), most urgent first, then by arrival, after
    /// the position `after` (urgency, year, arrival number).
    ///
    /// The index is read as committed: for the moment between the commit
    /// of a status change and its sync, the document has already left
    /// this list while its record still shows 01.
    pub fn unread_page(
        &self,
        org: &OrgCode,
        after: Option<(u8, u16, u64)>,
        limit: usize,
    ) -> Result<Page<UnreadItem, (u8, u16, u64)>> {
        let (org_start, end) = keys::org_range(org);
        let start = match after {
            Some((urgency, year, number)) => after_key(keys::unread(org, urgency, year, number)),
            None => org_start,
        };
        self.ascending_page(
            Space::Unread,
            start,
            end,
            limit,
            |key, id, document| {
                let (urgency, arrival_year, arrival_number) = keys::unread_position(key)
                    .ok_or_else(|| Error::storage("an unread key is malformed"))?;
                Ok(UnreadItem {
                    urgency,
                    arrival_year,
                    arrival_number,
                    id,
                    document,
                })
            },
            |i| (i.urgency, i.arrival_year, i.arrival_number),
        )
    }

    /// `org`'s report counters of the months from `from` to `to` (each a
    /// year and a month, both included), in order: one range scan of at
    /// most one record per month, whatever the traffic. Read as committed:
    /// for the moment between a commit and its sync, they may already
    /// count a change not yet durable.
    pub fn report_months(
        &self,
        org: &OrgCode,
        from: (u16, u8),
        to: (u16, u8),
    ) -> Result<Vec<((u16, u8), StoredReportMonth)>> {
        let start = keys::report(org, from.0, from.1);
        let end = after_key(keys::report(org, to.0, to.1));
        self.engine
            .scan(
                Space::Report,
                &start,
                Some(&end),
                Order::Ascending,
                usize::MAX,
            )?
            .into_iter()
            .map(|(key, value)| {
                let month = keys::report_month(&key)
                    .ok_or_else(|| Error::storage("a report key is malformed"))?;
                Ok((month, counters::decode(&value)?))
            })
            .collect()
    }

    /// Events of `org` with `after < seq <= up_to`, at most `limit`, in order.
    pub fn events(
        &self,
        org: &OrgCode,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        if up_to <= after {
            return Ok(Vec::new());
        }
        let start = keys::event(org, after.saturating_add(1));
        let end = keys::event(org, up_to.saturating_add(1));
        self.engine
            .scan(Space::Events, &start, Some(&end), Order::Ascending, limit)?
            .into_iter()
            .map(|(_, value)| {
                prost::Message::decode(value.as_slice())
                    .map_err(|e| Error::storage_from("a stored event does not decode", e))
            })
            .collect()
    }

    /// The oldest event of `org` still kept, if any.
    pub fn oldest_event(&self, org: &OrgCode) -> Result<Option<u64>> {
        let (start, end) = keys::org_range(org);
        match self
            .engine
            .scan(Space::Events, &start, Some(&end), Order::Ascending, 1)?
            .first()
        {
            Some((key, _)) => {
                Ok(Some(keys::org_seq(key).ok_or_else(|| {
                    Error::storage("an event key is truncated")
                })?))
            }
            None => Ok(None),
        }
    }

    /// The last event sequence of every organisation that has one. At start
    /// everything in the store is durable, so these are durable watermarks.
    pub fn event_counters(&self) -> Result<Vec<(OrgCode, u64)>> {
        let (start, end) = keys::event_counter_range();
        let mut out = Vec::new();
        for (key, value) in self.engine.scan(
            Space::Counters,
            &start,
            Some(&end),
            Order::Ascending,
            usize::MAX,
        )? {
            let org = keys::event_counter_org(&key).ok_or_else(|| {
                Error::storage(format!(
                    "the event counter {:?} names no organisation code",
                    String::from_utf8_lossy(&key)
                ))
            })?;
            let seq = keys::be_u64(&value).ok_or_else(|| commit::corrupt_counter(&key))?;
            out.push((org, seq));
        }
        Ok(out)
    }

    /// The last event sequence of `org` as committed now (0 if none). Only
    /// for a store that other front ends share ([`Store::watch_others`]),
    /// where committed is durable: with an embedded engine it may count
    /// events not yet synced.
    pub fn committed_event_counter(&self, org: &OrgCode) -> Result<u64> {
        let key = keys::event_counter(org);
        match self.engine.get(Space::Counters, &key)? {
            Some(value) => keys::be_u64(&value).ok_or_else(|| commit::corrupt_counter(&key)),
            None => Ok(0),
        }
    }

    /// Whether other front ends share this store (and its files).
    pub fn shared(&self) -> bool {
        self.engine.shared()
    }

    /// Whether other front ends commit to this store too; if so, `wake`
    /// is called after their commits (see [`Engine::watch_others`]).
    pub fn watch_others(&self, wake: engine::Wake) -> Result<bool> {
        self.engine.watch_others(wake)
    }

    /// Signs a checkpoint of the archive now (if anything was appended since
    /// the last) and returns the latest, durable.
    pub async fn make_checkpoint(&self) -> Result<Vec<u8>> {
        self.committer()?.checkpoint().await
    }

    /// The number of leaves in the archive log.
    pub fn archive_size(&self) -> Result<u64> {
        match self.engine.get(Space::Counters, keys::ARCHIVE_SIZE)? {
            None => Ok(0),
            Some(v) => keys::be_u64(&v).ok_or_else(|| commit::corrupt_counter(keys::ARCHIVE_SIZE)),
        }
    }

    /// Whether leaves were appended since the latest checkpoint.
    pub fn archive_grew(&self) -> Result<bool> {
        let last = self.latest_checkpoint()?.map_or(0, |(size, _)| size);
        Ok(self.archive_size()? > last)
    }

    /// The signed checkpoint of exactly `size` leaves, if one was made.
    pub fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>> {
        self.engine.get(Space::Checkpoints, &size.to_be_bytes())
    }

    /// The latest signed checkpoint and its size.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>> {
        match engine::last(self.engine.as_ref(), Space::Checkpoints)? {
            Some((key, value)) => {
                let size = keys::be_u64(&key)
                    .ok_or_else(|| Error::storage("a checkpoint key is not 8 bytes"))?;
                Ok(Some((size, value)))
            }
            None => Ok(None),
        }
    }

    /// The leaf index of a durable document in the archive.
    pub fn archive_index(&self, id: &DocId) -> Result<Option<u64>> {
        match self.document(id)? {
            Some(document) => self.archive_leaf_of(id, &document),
            None => Ok(None),
        }
    }

    /// The leaf index of `document` (whose id is `id`): in its record, or,
    /// for a document a store-2 build wrote, in `archive_index`.
    pub fn archive_leaf_of(&self, id: &DocId, document: &StoredDocument) -> Result<Option<u64>> {
        if let Some(leaf) = document.archive_leaf {
            return Ok(Some(leaf));
        }
        match self.engine.get(Space::ArchiveIndex, &id.0)? {
            Some(v) => Ok(Some(keys::be_u64(&v).ok_or_else(|| {
                Error::storage(format!("the archive index of {id} is not 8 bytes"))
            })?)),
            None => Ok(None),
        }
    }

    pub fn archive_leaf(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.engine.get(Space::ArchiveLeaves, &index.to_be_bytes())
    }

    /// The stored hash of the perfect subtree of 2^level leaves starting at
    /// leaf `index << level`, as stored (for the audit), if any.
    pub fn archive_node(&self, level: u32, index: u64) -> Result<Option<Vec<u8>>> {
        self.engine
            .get(Space::ArchiveNodes, &keys::archive_node(level, index))
    }

    /// The root hash of the tree of the first `size` leaves.
    pub fn archive_root(&self, size: u64) -> Result<Hash> {
        merkle::Tree::new(&EngineNodes(self.engine.as_ref())).root(size)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        merkle::Tree::new(&EngineNodes(self.engine.as_ref())).inclusion(index, size)
    }

    /// The consistency proof from `first` to `second` leaves.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>> {
        merkle::Tree::new(&EngineNodes(self.engine.as_ref())).consistency(first, second)
    }

    /// Every keyspace as committed at one instant between two sends, which
    /// includes every send acknowledged before the call, all of it durable;
    /// sends go on while it is read (an online backup). Reading it blocks:
    /// iterate off the async workers. Attachments stored as files are not
    /// in it: they never change, so [`Store::attachment_files`] read
    /// afterwards has every one the snapshot refers to.
    pub async fn snapshot(&self) -> Result<engine::Snapshot> {
        match &self.committer {
            Some(committer) => committer.snapshot().await,
            None => self.engine.snapshot(),
        }
    }

    /// The digests of the attachments stored as files (larger than
    /// [`INLINE_ATTACHMENT_MAX`]), in no order; blocking.
    pub fn attachment_files(&self) -> Result<Vec<[u8; 32]>> {
        self.files.list()
    }

    /// The size of the attachment file of this digest, if there is one.
    pub fn attachment_file_size(&self, sha256: &[u8; 32]) -> Result<Option<u64>> {
        self.files.size(sha256)
    }

    /// The content of the attachment file of this digest, checked against
    /// it; blocking.
    pub fn attachment_file(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        self.files.get(sha256)
    }

    /// Stops taking writes, waits for those in flight, and syncs.
    pub async fn close(&self) -> Result<()> {
        // The committer's last act is a full sync.
        if let Some(committer) = &self.committer {
            committer.stop().await;
        }
        Ok(())
    }
}

/// Opens the storage engine that `options` names: the embedded sled
/// database in `DATA/store/` of the data directory `data_dir`, or a
/// PostgreSQL database. The one place that chooses an engine.
pub fn open_engine(data_dir: &Path, options: &StoreOptions) -> Result<Arc<dyn Engine>> {
    match &options.engine {
        StoreEngine::Embedded => {
            let sled = sled::SledOptions {
                cache_bytes: options.cache_bytes,
            };
            Ok(Arc::new(sled::SledEngine::open(
                &data_dir.join("store"),
                &sled,
            )?))
        }
        StoreEngine::Postgres(url) => Ok(Arc::new(postgres::PostgresEngine::open(url)?)),
    }
}

/// The bytes the engine's files take in the data directory `data_dir`
/// (attachment files not counted); 0 for what cannot be read.
pub fn size_on_disk(data_dir: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(&data_dir.join("store"))
}

/// Checks that the store holds this build's schema, upgrades an earlier
/// one (`upgrade`), or writes it into an empty one.
fn check_schema(engine: &dyn Engine) -> Result<()> {
    match engine.get(Space::Meta, b"schema")? {
        Some(v) if v == SCHEMA => Ok(()),
        Some(v) if v == upgrade::STORE_1 => upgrade::from_store_1(engine, SCHEMA),
        Some(v) if v == upgrade::STORE_2 => upgrade::from_store_2(engine, SCHEMA),
        Some(v) => Err(Error::storage(format!(
            "the store holds schema {:?}, this build reads {:?}",
            String::from_utf8_lossy(&v),
            String::from_utf8_lossy(SCHEMA)
        ))),
        None => {
            engine.transact(&mut |txn| txn.put(Space::Meta, b"schema", SCHEMA))?;
            engine.sync()
        }
    }
}

/// The smallest key after `key` (for a scan that resumes after it).
fn after_key(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

/// Every stored document, in key order, handed to `each` in batches of
/// 512: for the indexes a store from an earlier build gets once.
fn each_document_batch(
    engine: &dyn Engine,
    mut each: impl FnMut(Vec<(DocId, StoredDocument)>) -> Result<()>,
) -> Result<()> {
    let mut start: Vec<u8> = Vec::new();
    loop {
        let batch = engine.scan(Space::Documents, &start, None, Order::Ascending, 512)?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        start = after_key(last.clone());
        each(
            batch
                .iter()
                .map(|(key, bytes)| Ok((DocId::from_slice(key)?, decode_document(bytes)?)))
                .collect::<Result<_>>()?,
        )?;
    }
}

fn decode_document(bytes: &[u8]) -> Result<StoredDocument> {
    prost::Message::decode(bytes)
        .map_err(|e| Error::storage_from("a stored document does not decode", e))
}

//! Durable storage: the only code that knows sled, its trees and its keys.
//!
//! The domain sees a narrow interface — commit a new document, read a
//! document, page through a mailbox — so that another engine can later sit
//! behind the same methods without the domain changing.
//!
//! # Key layout
//!
//! One sled database under `DATA/store/`, with these trees (`‖` is
//! concatenation, integers are big-endian, `org` is the 13-byte code), and
//! attachment contents as files under `DATA/attachments/` (see `files`):
//!
//! | tree          | key                                   | value                                |
//! |---------------|---------------------------------------|--------------------------------------|
//! | `meta`        | `"schema"`                            | `"lienthong-store-1"`                |
//! | `documents`   | `doc_id[16]`                          | [`StoredDocument`] (prost)           |
//! | `small_attachments` | `sha256[32]`                    | content of an attachment ≤ 8 KiB     |
//! | `inbox`       | `org ‖ year u16 ‖ arrival_number u64` | `doc_id[16]`                         |
//! | `outbox`      | `org ‖ seq u64`                       | `doc_id[16]`                         |
//! | `events`      | `org ‖ seq u64`                       | [`StoredEvent`] (prost)              |
//! | `archive_leaves` | `index u64`                        | leaf: an encoded `ArchiveEntry`      |
//! | `archive_nodes`  | `level u8 ‖ index u64`             | hash of a perfect subtree, 32 bytes  |
//! | `archive_index`  | `doc_id[16]`                       | the document's leaf index, u64       |
//! | `checkpoints`    | `tree_size u64`                    | an encoded `SignedCheckpoint`        |
//! | `counters`    | `"arrival" ‖ org ‖ year u16`          | last arrival number, u64             |
//! |               | `"outbox" ‖ org`                      | last outbox seq, u64                 |
//! |               | `"events" ‖ org`                      | last event seq, u64                  |
//! |               | `"archive"`                           | leaves in the archive log, u64       |
//! | `idempotency` | `org ‖ key`                           | `doc_id[16] ‖ content_digest[32]`    |
//! | `numbering`   | `org ‖ year u16 ‖ number u64 ‖ notation` | `doc_id[16]`                      |
//!
//! Attachments are content-addressed by their SHA-256, which the document
//! record lists: up to [`INLINE_ATTACHMENT_MAX`] bytes in `small_attachments`
//! (covered by the group commit's one fsync), larger ones as files
//! (`DATA/attachments/ab/abcd…`, each synced on its own, before the commit).
//!
//! A document and its attachments are stored once, however many recipients
//! it has; each recipient's inbox holds only the id. The inbox key *is* the
//! arrival number, so a page of a mailbox is one range scan whose cost does
//! not depend on the mailbox's size.
//!
//! # Durability
//!
//! A send first makes its attachment files durable (`files`), then goes
//! through one committer thread (see `committer`): it applies each send as
//! one multi-tree transaction, then flushes once for all the sends it
//! applied, and only then answers them. sled's own periodic flush is
//! switched off, so nothing else flushes concurrently.
//!
//! "Flushes" means more than sled's `flush()`: on Linux that only calls
//! `sync_file_range`, which writes neither the file's metadata nor the
//! drive's cache, so the committer also fsyncs sled's files itself.
//!
//! Between apply and flush a document is in sled's memory but not yet on
//! disk; it is kept *pending* and invisible to readers, so no recipient ever
//! sees a document that a crash could still take away.

pub mod audit;
pub(crate) mod committer;
mod files;
mod keys;
mod records;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use crate::directory::OrgCode;
use crate::error::{Error, Result};
pub use records::{StoredDelivery, StoredDocument, StoredEvent};

use committer::{Committer, SledFiles};
use files::AttachmentFiles;

const SCHEMA: &[u8] = b"lienthong-store-1";

/// Attachments up to this size stay inside sled. Larger values would make
/// sled rewrite whole leaves as unsynced blob files (a leaf holds up to 16
/// entries, and any page over 128 KiB becomes a blob), so they go to files.
pub const INLINE_ATTACHMENT_MAX: usize = 8 * 1024;

/// A document's id: 16 random bytes, shown as 32 lowercase hex characters.
/// Random rather than sequential so ids say nothing about others' traffic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub [u8; 16]);

impl DocId {
    pub fn random() -> Result<DocId> {
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| Error::Storage("the system random generator failed".into()))?;
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
            .ok_or_else(|| Error::Storage("a stored document id is truncated".into()))
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
    /// `None` once written to a file: the commit then only records the digest.
    pub content: Option<Vec<u8>>,
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
    /// Year, number and notation: unique per sender (Decree 30).
    pub numbering: (u16, u64, String),
    pub signing_key_id: String,
    pub signature: Vec<u8>,
    /// The signing key may not sign from this instant on: checked against
    /// the acceptance time that the committer fixes.
    pub key_usable_until_ms: Option<i64>,
}

/// What the store knows when it accepts a document, for its receipt.
#[derive(Debug)]
pub struct Accepted<'a> {
    pub new: &'a NewDocument,
    pub accepted_at_ms: i64,
    pub deliveries: &'a [StoredDelivery],
}

/// Told of the events of every batch once the batch is durable, in commit
/// order. Called on the committer thread: it must not block.
pub trait CommitListener: Send + Sync {
    fn committed(&self, events: Vec<StoredEvent>);
}

/// Makes the signed receipt of an accepted document, inside the commit, so
/// that a document is never stored without one. Returns the receipt bytes
/// and the signature.
pub trait Sealer: Send + Sync {
    fn seal(&self, accepted: &Accepted<'_>) -> Result<(Vec<u8>, Vec<u8>)>;
    /// Signs the archive's tree head; returns an encoded `SignedCheckpoint`.
    fn seal_checkpoint(&self, size: u64, root: [u8; 32], at_ms: i64) -> Result<Vec<u8>>;
}

/// The archive's stored perfect subtrees, for `merkle`.
pub struct ArchiveNodes<'a>(pub(crate) &'a sled::Tree);

/// What an archive operation costs at a size.
#[derive(Debug, Clone)]
pub struct ArchiveCost {
    pub leaves: u64,
    pub append_us: f64,
    pub inclusion_proof_us: f64,
    pub inclusion_proof_node_reads: f64,
    pub consistency_proof_us: f64,
}

/// Appends leaves to a scratch archive in `dir` with the service's own code
/// and node layout, and times 1000 appends and 1000 proofs of each kind
/// whenever the log reaches one of `marks`.
pub fn archive_costs(dir: &Path, marks: &[u64]) -> Result<Vec<ArchiveCost>> {
    use crate::merkle::{appended_nodes, leaf_hash, Nodes, Tree};
    use std::cell::Cell;
    use std::time::Instant;
    struct Counting<'a>(ArchiveNodes<'a>, Cell<u64>);
    impl Nodes for Counting<'_> {
        fn node(&self, level: u32, index: u64) -> std::result::Result<[u8; 32], String> {
            self.1.set(self.1.get() + 1);
            self.0.node(level, index)
        }
    }
    let db = sled::Config::new().path(dir).flush_every_ms(None).open()?;
    let tree = db.open_tree("archive_nodes")?;
    let nodes = ArchiveNodes(&tree);
    let append = |n: u64| -> Result<()> {
        let leaf = leaf_hash(format!("leaf {n}").as_bytes());
        for (level, index, hash) in
            appended_nodes(n, leaf, |l, i| nodes.node(l, i)).map_err(Error::Storage)?
        {
            tree.insert(keys::archive_node(level, index), &hash)?;
        }
        Ok(())
    };
    let mut out = Vec::new();
    let mut n = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64; // xorshift: leaf indexes to prove
    for &mark in marks {
        while n < mark {
            append(n)?;
            n += 1;
        }
        // 1000 appends from this size on, timed; then proofs at this size.
        let started = Instant::now();
        for i in 0..1000 {
            append(n + i)?;
        }
        let append_us = started.elapsed().as_secs_f64() * 1e6 / 1000.0;
        n += 1000;
        let counting = Counting(ArchiveNodes(&tree), Cell::new(0));
        let started = Instant::now();
        for _ in 0..1000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            Tree::new(&counting)
                .inclusion(rng % mark, mark)
                .map_err(Error::Storage)?;
        }
        let proof_us = started.elapsed().as_secs_f64() * 1e6 / 1000.0;
        let reads = counting.1.get() as f64 / 1000.0;
        let started = Instant::now();
        for i in 0..1000 {
            Tree::new(&counting)
                .consistency(mark / 2 + i % (mark / 2), mark)
                .map_err(Error::Storage)?;
        }
        let consistency_us = started.elapsed().as_secs_f64() * 1e6 / 1000.0;
        out.push(ArchiveCost {
            leaves: mark,
            append_us,
            inclusion_proof_us: proof_us,
            inclusion_proof_node_reads: reads,
            consistency_proof_us: consistency_us,
        });
    }
    Ok(out)
}

impl crate::merkle::Nodes for ArchiveNodes<'_> {
    fn node(&self, level: u32, index: u64) -> Result<[u8; 32], String> {
        let value = self
            .0
            .get(keys::archive_node(level, index))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("archive node {level}/{index} is missing"))?;
        value
            .as_ref()
            .try_into()
            .map_err(|_| format!("archive node {level}/{index} is not 32 bytes"))
    }
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
    /// The sender already used this number and notation this year.
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

/// A page of a listing, newest first, and where the next page starts.
#[derive(Debug)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// The position to pass back for the next page; `None` at the end.
    pub next: Option<C>,
}

#[derive(Clone)]
struct Trees {
    documents: sled::Tree,
    small_attachments: sled::Tree,
    inbox: sled::Tree,
    events: sled::Tree,
    archive_leaves: sled::Tree,
    archive_nodes: sled::Tree,
    archive_index: sled::Tree,
    checkpoints: sled::Tree,
    outbox: sled::Tree,
    counters: sled::Tree,
    idempotency: sled::Tree,
    numbering: sled::Tree,
}

/// Documents committed to sled's memory but not yet flushed: hidden from
/// readers until the flush that makes them durable.
#[derive(Default)]
struct Pending(Mutex<HashSet<DocId>>);

impl Pending {
    fn contains(&self, id: &DocId) -> bool {
        self.0.lock().map(|s| s.contains(id)).unwrap_or(true)
    }
    fn insert(&self, id: DocId) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(id);
        }
    }
    fn remove(&self, ids: &[DocId]) {
        if let Ok(mut s) = self.0.lock() {
            for id in ids {
                s.remove(id);
            }
        }
    }
}

/// Storage tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
    /// Events kept per organisation; older ones are removed as new ones come.
    pub events_kept: u64,
    /// A checkpoint of the archive is signed every this many leaves.
    pub checkpoint_every: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: crate::defaults::CACHE_MIB * 1024 * 1024,
            events_kept: crate::defaults::EVENTS_KEPT,
            checkpoint_every: crate::defaults::CHECKPOINT_EVERY,
        }
    }
}

pub struct Store {
    trees: Trees,
    files: std::sync::Arc<AttachmentFiles>,
    pending: std::sync::Arc<Pending>,
    committer: Committer,
}

impl Store {
    /// Opens (or creates) the store: sled in `dir`, attachment files in
    /// `attachments_dir`; `sealer` makes each accepted document's receipt.
    pub fn open(
        dir: &Path,
        attachments_dir: &Path,
        options: &StoreOptions,
        sealer: std::sync::Arc<dyn Sealer>,
        listener: std::sync::Arc<dyn CommitListener>,
    ) -> Result<Store> {
        let db = open_sled(
            sled::Config::new()
                .path(dir)
                .cache_capacity(options.cache_bytes)
                // Only the committer flushes: see the module documentation.
                .flush_every_ms(None),
        )?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema")? {
            Some(v) if v.as_ref() == SCHEMA => {}
            Some(v) => {
                return Err(Error::Storage(format!(
                    "{} holds schema {:?}, this build reads {:?}",
                    dir.display(),
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(SCHEMA)
                )))
            }
            None => {
                meta.insert("schema", SCHEMA)?;
                db.flush()?;
            }
        }
        let sled_files = SledFiles::open(dir)?;
        let files = std::sync::Arc::new(AttachmentFiles::open(attachments_dir)?);
        let trees = Trees {
            documents: db.open_tree("documents")?,
            small_attachments: db.open_tree("small_attachments")?,
            events: db.open_tree("events")?,
            archive_leaves: db.open_tree("archive_leaves")?,
            archive_nodes: db.open_tree("archive_nodes")?,
            archive_index: db.open_tree("archive_index")?,
            checkpoints: db.open_tree("checkpoints")?,
            inbox: db.open_tree("inbox")?,
            outbox: db.open_tree("outbox")?,
            counters: db.open_tree("counters")?,
            idempotency: db.open_tree("idempotency")?,
            numbering: db.open_tree("numbering")?,
        };
        let pending = std::sync::Arc::new(Pending::default());
        let committer = Committer::start(committer::Setup {
            db: db.clone(),
            trees: trees.clone(),
            files: sled_files,
            pending: pending.clone(),
            sealer,
            listener,
            events_kept: options.events_kept.max(1),
            checkpoint_every: options.checkpoint_every.max(1),
            last_checkpoint: trees
                .checkpoints
                .last()?
                .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0),
        })?;
        Ok(Store {
            trees,
            files,
            pending,
            committer,
        })
    }

    /// Commits a new document: either all of it is stored and durable when
    /// this returns `Accepted`, or no record of it was written.
    pub async fn send(&self, mut new: NewDocument) -> Result<SendOutcome> {
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
                .map_err(|e| {
                    Error::Storage(format!("writing attachments did not complete: {e}"))
                })??;
        }
        self.committer.submit(new).await
    }

    /// A durable document, or `None`.
    pub fn document(&self, id: &DocId) -> Result<Option<StoredDocument>> {
        if self.pending.contains(id) {
            return Ok(None);
        }
        self.trees
            .documents
            .get(id.0)?
            .map(|bytes| decode_document(&bytes))
            .transpose()
    }

    /// The content of the attachment with this SHA-256, checked against it.
    /// Blocking (may read a file).
    pub fn attachment(&self, sha256: &[u8]) -> Result<Option<Vec<u8>>> {
        let digest: [u8; 32] = sha256
            .try_into()
            .map_err(|_| Error::Storage("a stored attachment digest is not 32 bytes".into()))?;
        if let Some(content) = self.trees.small_attachments.get(digest)? {
            if ring::digest::digest(&ring::digest::SHA256, &content).as_ref() != digest {
                return Err(Error::Storage(format!(
                    "the stored attachment {} does not match its SHA-256",
                    hex::encode(digest)
                )));
            }
            return Ok(Some(content.to_vec()));
        }
        self.files.get(&digest)
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
        self.page(&self.trees.inbox, start, end, limit, |key, id, document| {
            let (arrival_year, arrival_number) = keys::inbox_position(key)
                .ok_or_else(|| Error::Storage("an inbox key is truncated".into()))?;
            Ok(InboxItem {
                arrival_year,
                arrival_number,
                id,
                document,
            })
        })
        .map(|(items, more)| Page {
            next: more
                .then(|| {
                    items
                        .last()
                        .map(|i: &InboxItem| (i.arrival_year, i.arrival_number))
                })
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
        self.page(
            &self.trees.outbox,
            start,
            end,
            limit,
            |key, id, document| {
                let seq = keys::outbox_seq(key)
                    .ok_or_else(|| Error::Storage("an outbox key is truncated".into()))?;
                Ok(OutboxItem { seq, id, document })
            },
        )
        .map(|(items, more)| Page {
            next: more
                .then(|| items.last().map(|i: &OutboxItem| i.seq))
                .flatten(),
            items,
        })
    }

    /// Walks `tree` backwards over `[start, end)`, skipping pending documents,
    /// and returns at most `limit` items and whether more follow.
    fn page<T>(
        &self,
        tree: &sled::Tree,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        make: impl Fn(&[u8], DocId, StoredDocument) -> Result<T>,
    ) -> Result<(Vec<T>, bool)> {
        let mut items = Vec::with_capacity(limit.min(512));
        for entry in tree.range(start..end).rev() {
            let (key, value) = entry?;
            let id = DocId::from_slice(&value)?;
            let Some(document) = self.document(&id)? else {
                continue; // pending: not durable yet
            };
            if items.len() == limit {
                return Ok((items, true));
            }
            items.push(make(&key, id, document)?);
        }
        Ok((items, false))
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
        let range =
            keys::event(org, after.saturating_add(1))..keys::event(org, up_to.saturating_add(1));
        self.trees
            .events
            .range(range)
            .take(limit)
            .map(|entry| {
                let (_, value) = entry?;
                prost::Message::decode(value.as_ref())
                    .map_err(|e| Error::Storage(format!("a stored event does not decode: {e}")))
            })
            .collect()
    }

    /// The oldest event of `org` still kept, if any.
    pub fn oldest_event(&self, org: &OrgCode) -> Result<Option<u64>> {
        let (start, end) = keys::org_range(org);
        match self.trees.events.range(start..end).next() {
            Some(entry) => Ok(keys::outbox_seq(&entry?.0)),
            None => Ok(None),
        }
    }

    /// The last event sequence of every organisation that has one. At start
    /// everything in the store is durable, so these are durable watermarks.
    pub fn event_counters(&self) -> Result<Vec<(OrgCode, u64)>> {
        let mut out = Vec::new();
        for entry in self.trees.counters.scan_prefix(b"events") {
            let (key, value) = entry?;
            let org = OrgCode::from_key(&key[b"events".len()..]);
            let seq = value.as_ref().try_into().map(u64::from_be_bytes).ok();
            if let (Some(org), Some(seq)) = (org, seq) {
                out.push((org, seq));
            }
        }
        Ok(out)
    }

    /// Signs a checkpoint of the archive now (if anything was appended since
    /// the last) and returns the latest, durable.
    pub async fn make_checkpoint(&self) -> Result<Vec<u8>> {
        self.committer.checkpoint().await
    }

    /// Whether leaves were appended since the latest checkpoint.
    pub fn archive_grew(&self) -> bool {
        let size = self
            .trees
            .counters
            .get(keys::ARCHIVE_SIZE)
            .ok()
            .flatten()
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let last = self
            .latest_checkpoint()
            .ok()
            .flatten()
            .map_or(0, |(s, _)| s);
        size > last
    }

    /// The signed checkpoint of exactly `size` leaves, if one was made.
    pub fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees
            .checkpoints
            .get(size.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// The latest signed checkpoint and its size.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.trees.checkpoints.last()?.and_then(|(k, v)| {
            let size = u64::from_be_bytes(k.as_ref().try_into().ok()?);
            Some((size, v.to_vec()))
        }))
    }

    /// The leaf index of a document in the archive.
    pub fn archive_index(&self, id: &DocId) -> Result<Option<u64>> {
        if self.pending.contains(id) {
            return Ok(None);
        }
        Ok(self
            .trees
            .archive_index
            .get(id.0)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    pub fn archive_leaf(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees
            .archive_leaves
            .get(index.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// The root hash of the tree of the first `size` leaves.
    pub fn archive_root(&self, size: u64) -> Result<[u8; 32]> {
        crate::merkle::Tree::new(&ArchiveNodes(&self.trees.archive_nodes))
            .root(size)
            .map_err(Error::Storage)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>> {
        crate::merkle::Tree::new(&ArchiveNodes(&self.trees.archive_nodes))
            .inclusion(index, size)
            .map_err(Error::Storage)
    }

    /// The consistency proof from `first` to `second` leaves.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<[u8; 32]>> {
        crate::merkle::Tree::new(&ArchiveNodes(&self.trees.archive_nodes))
            .consistency(first, second)
            .map_err(Error::Storage)
    }

    /// Stops taking writes, waits for those in flight, and flushes.
    pub async fn close(&self) -> Result<()> {
        // The committer's last act is a full flush (sled's and fsync).
        self.committer.stop().await;
        Ok(())
    }
}

/// Opens sled, waiting up to ten seconds for a previous owner of the
/// directory to let go of its lock: sled's I/O threads release it a moment
/// after the process (or, in one process, the store) that held it is gone,
/// and sled offers no signal to wait for instead.
pub fn open_sled(config: sled::Config) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match config.open() {
            // sled reports a held lock as ErrorKind::Other with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return Ok(other?),
        }
    }
}

fn decode_document(bytes: &[u8]) -> Result<StoredDocument> {
    prost::Message::decode(bytes)
        .map_err(|e| Error::Storage(format!("a stored document does not decode: {e}")))
}

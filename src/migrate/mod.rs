//! `lienthong migrate`: copies a stopped deployment's embedded (sled) store
//! into a PostgreSQL database, entry for entry, and verifies the copy.
//!
//! The PostgreSQL engine's tables are the keyspaces and its rows the very
//! keys and values of the sled layout (see `store::postgres`), so the copy
//! is the source's snapshot written through the target engine, a few
//! thousand entries per transaction. The source is only read: sled's own
//! lock makes a running server's store impossible to open, so a store that
//! opens is one that no server is writing. Attachment files, the PKI and the
//! service key are not in the store: they stay in the data directory, which
//! every front end then mounts (`serve --data DIR --store postgres://…`).
//!
//! # Which target is accepted
//!
//! A deployment's history is its archive: every document, paper record and
//! status change appends a signed leaf, and checkpoints sign the log's
//! roots. Everything else in the store (mailboxes, counters, indexes,
//! events) follows from what the archive records. So the target is the
//! *same* deployment, at an earlier point or complete, when
//!
//! - its `meta` schema, if it has one, is the source's;
//! - each archive leaf it holds is the source's leaf of the same index,
//!   byte for byte (so it has no leaf the source lacks);
//! - each checkpoint it holds is the source's of the same tree size, byte
//!   for byte.
//!
//! An empty database, an interrupted earlier migrate (a subset of the
//! source), a complete one, or one made before the source went on serving
//! for a while all pass; the copy then makes the target equal to the source:
//! every source entry is written again (an upsert), and target entries the
//! source no longer has (trimmed events, index entries since removed) are
//! deleted. A target with anything else — another deployment, or documents
//! accepted on it since an earlier migrate, which the copy would overwrite —
//! is refused before anything is written (`target`).
//!
//! # What is verified
//!
//! After the copy (`verify`): every keyspace walked on both sides in key
//! order, entry for entry (so the counts per keyspace are equal and any
//! difference is named by keyspace and key); every document's receipt equal
//! on both sides and signed by the data directory's service key; and the
//! archive audited on each side (`archive::audit`), its root recomputed from
//! the leaves and equal on both.

mod target;
mod verify;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::audit;
use crate::error::Error;
use crate::merkle::Hash;
use crate::store::engine::{self, Engine, Space};
use crate::store::load::Batches;
use crate::store::postgres::{PostgresEngine, PostgresUrl};
use crate::store::sled::{self as sled_engine, SledEngine, SledOptions};
use crate::store::SCHEMA;

/// Entries per transaction of the copy: few enough that one transaction's
/// upserts (one statement per keyspace) stay small, many enough that the
/// round trips do not dominate.
const BATCH_ENTRIES: usize = 4096;

/// Entries read at a time when walking a keyspace.
const PAGE: usize = 4096;

/// Why a migrate stopped. Nothing it wrote needs undoing: a re-run
/// completes it.
#[derive(Debug)]
pub enum MigrateError {
    /// `DIR/store` does not exist: not a data directory of the embedded store.
    NoSource { dir: PathBuf },
    /// The sled store is held by another process: a server runs on it.
    SourceInUse { dir: PathBuf },
    /// The source holds no store, or another schema than this build's.
    SourceSchema { found: Option<String> },
    /// The data directory's service key cannot be read.
    ServiceKey(Error),
    /// The target holds a different deployment: why, naming what differs.
    /// Nothing was written.
    Different(String),
    /// After the copy the two sides differ: what, naming keyspace and key.
    Mismatch(String),
    /// Reading the source failed.
    Source(Error),
    /// Reaching, reading or writing the target failed.
    Target(Error),
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::NoSource { dir } => write!(
                f,
                "{} has no store/ directory: --from takes the data directory of a server that \
                 used the embedded store",
                dir.display()
            ),
            MigrateError::SourceInUse { dir } => write!(
                f,
                "the store in {} is in use by another process: stop the server (every \
                 `lienthong serve --data {}`) first, then migrate",
                dir.display(),
                dir.display()
            ),
            MigrateError::SourceSchema { found: None } => f.write_str(
                "the source store holds no data (no schema in its meta keyspace): nothing to migrate",
            ),
            MigrateError::SourceSchema { found: Some(found) } => write!(
                f,
                "the source store holds schema {found:?}, this build migrates {:?}: start and \
                 stop this build's server on it once (it upgrades the store), then migrate",
                String::from_utf8_lossy(SCHEMA)
            ),
            MigrateError::ServiceKey(e) => write!(
                f,
                "cannot read the service key that signed the archive: {e}"
            ),
            MigrateError::Different(why) => write!(
                f,
                "the target database holds a different deployment: {why}. Nothing was written; \
                 migrate into an empty database"
            ),
            MigrateError::Mismatch(what) => write!(f, "the copy does not verify: {what}"),
            MigrateError::Source(e) => write!(f, "reading the source store: {e}"),
            MigrateError::Target(e) => write!(f, "the target database: {e}"),
        }
    }
}

impl std::error::Error for MigrateError {}

type Result<T> = std::result::Result<T, MigrateError>;

/// A step under way, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Opening the source (this waits a few seconds for the lock of a
    /// server that has just stopped).
    OpeningSource,
    /// Connecting to the target and checking what it holds.
    CheckingTarget,
    /// Copying: entries read from the source so far.
    Copying { entries: u64 },
    /// Removing target entries the source does not have: this keyspace.
    Pruning(Space),
    /// Comparing this keyspace on both sides.
    Verifying(Space),
    /// Auditing the archive of the source (`false`) or the target (`true`).
    Auditing { target: bool },
}

/// The archive as audited on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub leaves: u64,
    pub checkpoints: u64,
    /// Recomputed from the leaves; `None` for an empty archive.
    pub root: Option<Hash>,
}

/// What a migrate did and verified.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// Archive leaves the target held before (0: it was empty of them).
    pub target_leaves_before: u64,
    /// Entries written (every entry of the source).
    pub copied: u64,
    /// Target entries the source does not have, deleted.
    pub removed: u64,
    /// Entries per keyspace, equal on both sides, in [`Space::ALL`] order.
    pub entries: Vec<(Space, u64)>,
    /// Documents, each with its receipt equal on both sides and signed by
    /// the service key.
    pub documents: u64,
    /// The service key's id.
    pub service_key_id: String,
    /// The archive, equal on both sides.
    pub archive: Archive,
}

/// Copies the embedded store of the stopped data directory `data_dir` into
/// the PostgreSQL database at `url`, then verifies the copy; `progress` is
/// told each step. See the module's documentation for what is accepted and
/// verified.
pub fn migrate(data_dir: &Path, url: &PostgresUrl, progress: &dyn Fn(Step)) -> Result<Migrated> {
    progress(Step::OpeningSource);
    let source: Arc<dyn Engine> = Arc::new(open_source(data_dir)?);
    let service = audit::service_public_key(data_dir).map_err(MigrateError::ServiceKey)?;
    progress(Step::CheckingTarget);
    let target: Arc<dyn Engine> =
        Arc::new(PostgresEngine::open(url).map_err(MigrateError::Target)?);
    let target_leaves_before = target::check(source.as_ref(), target.as_ref())?;

    let copied = copy(source.as_ref(), target.clone(), progress)?;
    let removed = prune(source.as_ref(), target.clone(), progress)?;

    let compared = verify::compare(source.as_ref(), target.as_ref(), &service, progress)?;
    let attachments = data_dir.join("attachments");
    let mut archives = Vec::new();
    for (engine, is_target) in [(source, false), (target, true)] {
        progress(Step::Auditing { target: is_target });
        archives.push(verify::audit_side(
            engine,
            service.clone(),
            &attachments,
            is_target,
        )?);
    }
    let archive = verify::same_archive(&archives[0], &archives[1])?;
    Ok(Migrated {
        target_leaves_before,
        copied,
        removed,
        entries: compared.entries,
        documents: compared.documents,
        service_key_id: service.key_id(),
        archive,
    })
}

/// The sled store of `data_dir`, refused if a server holds it or if it is
/// not this build's.
fn open_source(data_dir: &Path) -> Result<SledEngine> {
    let dir = data_dir.join("store");
    // sled would create an empty store where there is none.
    if !dir.is_dir() {
        return Err(MigrateError::NoSource {
            dir: data_dir.to_owned(),
        });
    }
    let options = SledOptions {
        cache_bytes: crate::defaults::CACHE_MIB * 1024 * 1024,
    };
    let source = SledEngine::open(&dir, &options).map_err(|e| {
        if sled_engine::is_locked(&e) {
            MigrateError::SourceInUse {
                dir: data_dir.to_owned(),
            }
        } else {
            MigrateError::Source(e)
        }
    })?;
    // Checked here, not upgraded: the source is only read.
    match source
        .get(Space::Meta, b"schema")
        .map_err(MigrateError::Source)?
    {
        Some(schema) if schema == SCHEMA => Ok(source),
        found => Err(MigrateError::SourceSchema {
            found: found.map(|s| String::from_utf8_lossy(&s).into_owned()),
        }),
    }
}

/// Writes every entry of the source into the target; returns how many.
fn copy(source: &dyn Engine, target: Arc<dyn Engine>, progress: &dyn Fn(Step)) -> Result<u64> {
    let mut batches = Batches::new(target, BATCH_ENTRIES);
    let mut entries = 0u64;
    for item in source.snapshot().map_err(MigrateError::Source)? {
        let (space, (key, value)) = item.map_err(MigrateError::Source)?;
        batches
            .put(space, key, value)
            .map_err(MigrateError::Target)?;
        entries += 1;
        progress(Step::Copying { entries });
    }
    batches.finish().map_err(MigrateError::Target)?;
    Ok(entries)
}

/// Deletes the target's entries that the source does not have; returns how
/// many.
fn prune(source: &dyn Engine, target: Arc<dyn Engine>, progress: &dyn Fn(Step)) -> Result<u64> {
    let mut removed = 0u64;
    let mut batches = Batches::new(target.clone(), BATCH_ENTRIES);
    for space in Space::ALL {
        progress(Step::Pruning(space));
        for entry in engine::Walk::new(target.as_ref(), space, PAGE) {
            let (key, _) = entry.map_err(MigrateError::Target)?;
            if source
                .get(space, &key)
                .map_err(MigrateError::Source)?
                .is_none()
            {
                batches.delete(space, key).map_err(MigrateError::Target)?;
                removed += 1;
            }
        }
    }
    batches.finish().map_err(MigrateError::Target)?;
    Ok(removed)
}

/// A key for messages: big-endian numbers as such (archive leaves,
/// checkpoints), anything else in hex.
fn show_key(space: Space, key: &[u8]) -> String {
    match (space, <[u8; 8]>::try_from(key)) {
        (Space::ArchiveLeaves, Ok(index)) => format!("leaf {}", u64::from_be_bytes(index)),
        (Space::Checkpoints, Ok(size)) => format!("tree size {}", u64::from_be_bytes(size)),
        _ => format!("key {}", hex::encode(key)),
    }
}

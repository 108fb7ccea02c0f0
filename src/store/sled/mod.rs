//! The sled engine: each keyspace is a sled tree in one database under
//! `DATA/store/`, a transaction is one sled multi-tree transaction, and
//! `sync` is sled's flush followed by our own fsyncs (see [`SledFiles`]).
//!
//! This module and `store::keys` are the only code that knows how the
//! service's data sits in sled; the layout is documented in `store`.

mod files;
mod snapshot;

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ::sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use ::sled::{Db, Transactional, Tree};

use super::engine::{Engine, Entry, Order, Snapshot, Space, Txn};
use crate::error::{Error, Result};
use files::SledFiles;
use snapshot::{Log, SledSnapshot};

/// sled tuning.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
}

pub struct SledEngine {
    db: Db,
    /// One tree per keyspace, in [`Space::ALL`] order.
    trees: Vec<Tree>,
    /// Only the committer syncs; the lock is never contended.
    files: Mutex<SledFiles>,
    /// The logs of the snapshots being read. Held for the whole of each
    /// transaction, so that a snapshot begins between two transactions.
    snapshots: Mutex<Vec<Weak<Log>>>,
}

fn sled_error(what: &str, e: ::sled::Error) -> Error {
    Error::storage_from(format!("sled: {what}"), e)
}

impl SledEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, options: &SledOptions) -> Result<SledEngine> {
        let db = open_sled(
            ::sled::Config::new()
                .path(dir)
                .cache_capacity(options.cache_bytes)
                // Only the committer flushes, through `sync`: sled's own
                // periodic flush would run concurrently with it.
                .flush_every_ms(None),
        )?;
        let trees = Space::ALL
            .iter()
            .map(|space| {
                db.open_tree(space.name())
                    .map_err(|e| sled_error(space.name(), e))
            })
            .collect::<Result<Vec<_>>>()?;
        let files = SledFiles::open(dir)?;
        return_recovery_memory();
        Ok(SledEngine {
            db,
            trees,
            files: Mutex::new(files),
            snapshots: Mutex::new(Vec::new()),
        })
    }

    /// The snapshots' logs, which a panic elsewhere cannot leave half
    /// changed (each use is a push or a retain).
    fn snapshots(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Log>>> {
        self.snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tree(&self, space: Space) -> &Tree {
        &self.trees[space.index()]
    }
}

/// A transaction's view of the trees. sled reports conflicts and storage
/// failures through our `Result`, so the first one is kept here to be handed
/// back to sled as what it is (a conflict makes sled retry).
struct SledTxn<'a> {
    trees: &'a [TransactionalTree],
    failure: Option<UnabortableTransactionError>,
    /// The snapshots being read, told of each key before it is written.
    snapshots: &'a [Arc<Log>],
}

impl SledTxn<'_> {
    fn failed(&mut self, e: UnabortableTransactionError) -> Error {
        let error = match &e {
            UnabortableTransactionError::Conflict => {
                Error::storage("sled: the transaction conflicted")
            }
            UnabortableTransactionError::Storage(inner) => {
                sled_error("in a transaction", inner.clone())
            }
        };
        self.failure.get_or_insert(e);
        error
    }
}

impl SledTxn<'_> {
    fn before_write(&mut self, space: Space, key: &[u8]) -> Result<()> {
        let tree = &self.trees[space.index()];
        for log in self.snapshots {
            let kept = log.before_write(space.index(), key, || {
                tree.get(key).map(|v| v.map(|v| v.to_vec()))
            });
            if let Err(e) = kept {
                return Err(self.failed(e));
            }
        }
        Ok(())
    }
}

impl Txn for SledTxn<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.trees[space.index()].get(key) {
            Ok(value) => Ok(value.map(|v| v.to_vec())),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()> {
        self.before_write(space, key)?;
        match self.trees[space.index()].insert(key, value) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()> {
        self.before_write(space, key)?;
        match self.trees[space.index()].remove(key) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }
}

impl Engine for SledEngine {
    fn transact(&self, work: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        let mut registered = self.snapshots();
        registered.retain(|log| log.strong_count() > 0);
        let snapshots: Vec<Arc<Log>> = registered.iter().filter_map(Weak::upgrade).collect();
        // sled wants a `Fn` it may call again on conflict.
        let work = RefCell::new(work);
        let result = self.trees[..].transaction(
            |trees: &Vec<TransactionalTree>| -> std::result::Result<(), ConflictableTransactionError<Error>> {
                let mut txn = SledTxn {
                    trees,
                    failure: None,
                    snapshots: &snapshots,
                };
                let outcome = (work.borrow_mut())(&mut txn);
                match (txn.failure, outcome) {
                    (Some(UnabortableTransactionError::Conflict), _) => {
                        Err(ConflictableTransactionError::Conflict)
                    }
                    (Some(UnabortableTransactionError::Storage(e)), _) => {
                        Err(ConflictableTransactionError::Storage(e))
                    }
                    (None, Ok(())) => Ok(()),
                    (None, Err(e)) => Err(ConflictableTransactionError::Abort(e)),
                }
            },
        );
        let result = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => sled_error("committing a transaction", e),
        });
        drop(registered);
        result
    }

    fn sync(&self) -> Result<()> {
        self.db
            .flush()
            .map_err(|e| sled_error("flushing the log", e))?;
        let mut files = self
            .files
            .lock()
            .map_err(|_| Error::storage("an earlier sync panicked; the store must be reopened"))?;
        files.sync()
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tree(space)
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| sled_error(space.name(), e))
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let tree = self.tree(space);
        let range = match end {
            Some(end) => tree.range(start..end),
            None => tree.range(start..),
        };
        let entries: Box<dyn Iterator<Item = _>> = match order {
            Order::Ascending => Box::new(range),
            Order::Descending => Box::new(range.rev()),
        };
        entries
            .take(limit)
            .map(|entry| {
                entry
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| sled_error(space.name(), e))
            })
            .collect()
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let log = Arc::new(Log::default());
        // Waits for a transaction in progress: the snapshot's instant falls
        // between two.
        self.snapshots().push(Arc::downgrade(&log));
        Ok(Box::new(SledSnapshot::new(self.trees.clone(), log)))
    }
}

/// Gives back to the system the memory sled's recovery has freed.
///
/// Opening a large store, sled reads its snapshot (every page's place in
/// the log) and builds its page table from it: both are in memory together,
/// then the snapshot is freed. Its small allocations sit between the page
/// table's, so glibc's allocator keeps them mapped, and the server would
/// carry them for its whole life: at a million documents, about 90 MiB of a
/// 386 MiB resident set right after start. `malloc_trim` returns every
/// wholly free page of every arena. Only glibc has it; elsewhere there is
/// nothing to do.
fn return_recovery_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // its locks; it takes no pointer and frees nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What [`open_sled`] says when another owner holds the store.
const LOCKED: &str =
    "the store is locked by another process (is a server running on this data directory?)";

/// Whether `e` is [`open_sled`]'s refusal of a store that another process
/// (a running server) holds.
pub fn is_locked(e: &Error) -> bool {
    matches!(e, Error::Storage(s) if s.what == LOCKED)
}

/// Opens sled, waiting up to ten seconds for a previous owner of the
/// directory to let go of its lock: sled's I/O threads release it a moment
/// after the process (or, in one process, the store) that held it is gone,
/// and sled offers no signal to wait for instead.
pub fn open_sled(config: ::sled::Config) -> Result<Db> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = false;
    loop {
        match config.open() {
            // sled reports a held lock as ErrorKind::Other with this text.
            Err(::sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                if !said {
                    // Not silently: another server on the same data holds
                    // it for good, and the wait then ends in an error.
                    tracing::warn!(
                        "the store is locked; waiting up to 10 s for its owner to let go (another `lienthong serve` on the same data?)"
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(::sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                return Err(Error::storage_from(LOCKED, e))
            }
            Err(e) => return Err(sled_error("opening the database", e)),
            Ok(db) => return Ok(db),
        }
    }
}

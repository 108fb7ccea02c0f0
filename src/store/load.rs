//! Writing a store in bulk, with no server running on it: from a backup's
//! records into a new data directory (`lienthong restore`), and from one
//! engine into another (`lienthong migrate`).
//!
//! Entries go in as they come, in transactions of a bounded size
//! ([`Batches`]), and one sync at the end: a bulk write that fails half way
//! leaves a store the caller removes or writes again, so nothing needs to
//! be durable before the end.

use std::path::Path;
use std::sync::Arc;

use super::engine::{Engine, Space};
use super::files::AttachmentFiles;
use super::{open_engine, StoreOptions};
use crate::error::Result;

/// Entries per transaction of a restore, and their bytes at most (keys and
/// values).
const BATCH_ENTRIES: usize = 1024;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Puts and deletes into an engine, committed a transaction of at most
/// `entries` writes (or [`BATCH_BYTES`]) at a time.
pub struct Batches {
    engine: Arc<dyn Engine>,
    /// `None` deletes the key.
    batch: Vec<(Space, Vec<u8>, Option<Vec<u8>>)>,
    batch_bytes: usize,
    entries: usize,
}

impl Batches {
    pub fn new(engine: Arc<dyn Engine>, entries: usize) -> Batches {
        let entries = entries.max(1);
        Batches {
            engine,
            batch: Vec::with_capacity(entries),
            batch_bytes: 0,
            entries,
        }
    }

    /// Writes `value` at `key`; returns how many writes this committed
    /// (0 while the batch fills).
    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) -> Result<usize> {
        self.batch_bytes += key.len() + value.len();
        self.batch.push((space, key, Some(value)));
        self.commit_if_full()
    }

    /// Removes `key`; returns how many writes this committed.
    pub fn delete(&mut self, space: Space, key: Vec<u8>) -> Result<usize> {
        self.batch_bytes += key.len();
        self.batch.push((space, key, None));
        self.commit_if_full()
    }

    fn commit_if_full(&mut self) -> Result<usize> {
        if self.batch.len() >= self.entries || self.batch_bytes >= BATCH_BYTES {
            self.commit()
        } else {
            Ok(0)
        }
    }

    /// Commits the writes waiting; returns how many there were.
    pub fn commit(&mut self) -> Result<usize> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if batch.is_empty() {
            return Ok(0);
        }
        self.engine.transact(&mut |txn| {
            for (space, key, value) in &batch {
                match value {
                    Some(value) => txn.put(*space, key, value)?,
                    None => txn.delete(*space, key)?,
                }
            }
            Ok(())
        })?;
        Ok(batch.len())
    }

    /// Commits what is left and makes all of it durable; returns how many
    /// writes that last commit held.
    pub fn finish(mut self) -> Result<usize> {
        let last = self.commit()?;
        self.engine.sync()?;
        Ok(last)
    }
}

/// A new store in a data directory, from a backup's records.
pub struct Loader {
    batches: Batches,
    files: AttachmentFiles,
}

impl Loader {
    /// Opens a new store in the data directory `data_dir`.
    pub fn create(data_dir: &Path) -> Result<Loader> {
        Ok(Loader {
            batches: Batches::new(
                open_engine(data_dir, &StoreOptions::default())?,
                BATCH_ENTRIES,
            ),
            files: AttachmentFiles::open(&data_dir.join("attachments"), false)?,
        })
    }

    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.batches.put(space, key, value).map(drop)
    }

    /// An attachment stored as a file (the caller checked its digest).
    pub fn attachment(&mut self, sha256: [u8; 32], content: Vec<u8>) -> Result<()> {
        self.files.put_all(&[(sha256, content)])
    }

    /// Commits what is left and makes all of it durable.
    pub fn finish(self) -> Result<()> {
        self.batches.finish().map(drop)
    }
}

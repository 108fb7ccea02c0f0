//! Writing a store from a backup's records, into a new data directory with
//! no server running on it (`lienthong restore`).
//!
//! Entries go in as they come, in transactions of a bounded size, and one
//! sync at the end: a restore that fails half way leaves a directory the
//! caller removes, so nothing needs to be durable before the end.

use std::path::Path;
use std::sync::Arc;

use super::engine::{Engine, Space};
use super::files::AttachmentFiles;
use super::{open_engine, StoreOptions};
use crate::error::Result;

/// Entries per transaction, and their bytes at most (keys and values).
const BATCH_ENTRIES: usize = 1024;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

pub struct Loader {
    engine: Arc<dyn Engine>,
    files: AttachmentFiles,
    batch: Vec<(Space, Vec<u8>, Vec<u8>)>,
    batch_bytes: usize,
}

impl Loader {
    /// Opens a new store in the data directory `data_dir`.
    pub fn create(data_dir: &Path) -> Result<Loader> {
        Ok(Loader {
            engine: open_engine(data_dir, &StoreOptions::default())?,
            files: AttachmentFiles::open(&data_dir.join("attachments"), false)?,
            batch: Vec::with_capacity(BATCH_ENTRIES),
            batch_bytes: 0,
        })
    }

    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.batch_bytes += key.len() + value.len();
        self.batch.push((space, key, value));
        if self.batch.len() >= BATCH_ENTRIES || self.batch_bytes >= BATCH_BYTES {
            self.commit()?;
        }
        Ok(())
    }

    /// An attachment stored as a file (the caller checked its digest).
    pub fn attachment(&mut self, sha256: [u8; 32], content: Vec<u8>) -> Result<()> {
        self.files.put_all(&[(sha256, content)])
    }

    fn commit(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.engine.transact(&mut |txn| {
            for (space, key, value) in &batch {
                txn.put(*space, key, value)?;
            }
            Ok(())
        })
    }

    /// Commits what is left and makes all of it durable.
    pub fn finish(mut self) -> Result<()> {
        self.commit()?;
        self.engine.sync()
    }
}

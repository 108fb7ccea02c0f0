//! fsync of sled's own files, which sled 0.34.7 does not do itself.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::files::sync_dir;

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
            .map_err(|e| Error::storage_from(path.display().to_string(), e))?;
        let mut files = SledFiles {
            db,
            blobs: dir.join("blobs"),
            last_blob: 0,
        };
        files.sync()?;
        sync_dir(dir)?;
        Ok(files)
    }

    pub(super) fn sync(&mut self) -> Result<()> {
        self.db
            .sync_all()
            .map_err(|e| Error::storage_from("fsync of sled's log", e))?;
        let mut newest = self.last_blob;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            // sled makes the folder with its first blob: none yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::storage_from("listing sled's blobs", e)),
        };
        {
            for entry in entries {
                let entry = entry.map_err(|e| Error::storage_from("listing sled's blobs", e))?;
                let lsn = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u64>().ok());
                let Some(lsn) = lsn.filter(|l| *l > self.last_blob) else {
                    continue;
                };
                File::open(entry.path())
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::storage_from("fsync of a sled blob", e))?;
                newest = newest.max(lsn);
            }
        }
        if newest > self.last_blob {
            sync_dir(&self.blobs)?;
            self.last_blob = newest;
        }
        Ok(())
    }
}

//! Uploads of large attachments on disk, under
//! `DATA/attachments/uploads/ORG/` (`ORG` the organisation's code):
//!
//! | file | what |
//! |---|---|
//! | `SHA-SIZE.part` | the bytes received so far of the content with that SHA-256 (hex) and size; its length is the upload's offset once synced |
//! | `SHA-SIZE.done` | empty: that organisation completed the upload at the file's time; the content is then the attachment file `DATA/attachments/sh/SHA…` |
//!
//! The partial file is appended to as chunks arrive and synced before its
//! length is reported as the offset to resume from; a power cut can at
//! worst leave bytes past that offset, which the SHA-256 check at the end
//! refuses. A completed upload's marker is what lets a later send of the
//! same organisation name the content without carrying it; while it lives
//! the store claims the attachment file (see `files`).
//!
//! Everything here is blocking file work: call it off the async workers.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use super::files::{io, sync_dir};
use crate::directory::OrgCode;
use crate::error::Result;

/// One upload: whose, and of which content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadKey {
    pub org: OrgCode,
    pub sha256: [u8; 32],
    pub size: u64,
}

impl UploadKey {
    fn stem(&self) -> String {
        format!("{}-{}", hex::encode(self.sha256), self.size)
    }

    /// The key a file name in `org`'s folder stands for, and whether it is
    /// a partial upload (`.part`) or a completed one (`.done`).
    fn parse(org: OrgCode, name: &str) -> Option<(UploadKey, bool)> {
        let (stem, partial) = match name.rsplit_once('.')? {
            (stem, "part") => (stem, true),
            (stem, "done") => (stem, false),
            _ => return None,
        };
        let (sha, size) = stem.split_once('-')?;
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(sha, &mut sha256).ok()?;
        let size = size.parse().ok()?;
        Some((UploadKey { org, sha256, size }, partial))
    }
}

/// A partial upload found on disk.
#[derive(Debug, Clone)]
pub struct FoundPartial {
    pub key: UploadKey,
    /// Bytes in the file.
    pub len: u64,
    /// Its last write.
    pub modified: SystemTime,
}

/// The partial file of one upload, open for appending.
pub struct PartialFile {
    file: File,
    path: PathBuf,
    len: u64,
}

impl PartialFile {
    /// Bytes written so far (durable after [`PartialFile::sync`]).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file.write_all(data).map_err(|e| io(&self.path, e))?;
        self.len += data.len() as u64;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| io(&self.path, e))
    }

    /// The same open file, for syncing it from another thread.
    pub fn shared(&self) -> Result<File> {
        self.file.try_clone().map_err(|e| io(&self.path, e))
    }

    /// Feeds the bytes already in the file to `each`, in order, in pieces
    /// of at most `buffer` bytes: to hash what an earlier stream wrote.
    pub fn read_back(&self, buffer: usize, each: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut reader = File::open(&self.path).map_err(|e| io(&self.path, e))?;
        let mut left = self.len;
        let mut piece = vec![0u8; buffer.max(1)];
        while left > 0 {
            let want = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let Some(target) = piece.get_mut(..want) else {
                break;
            };
            reader.read_exact(target).map_err(|e| io(&self.path, e))?;
            each(target);
            left -= want as u64;
        }
        Ok(())
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// The uploads folder, and the completed uploads it holds.
pub struct UploadFiles {
    dir: PathBuf,
    completed: Mutex<HashMap<UploadKey, SystemTime>>,
}

impl UploadFiles {
    /// Opens `dir`, creating it if needed, and reads which uploads were
    /// completed; one whose content file `exists` says is missing is
    /// forgotten.
    pub fn open(dir: &Path, exists: &dyn Fn(&[u8; 32]) -> bool) -> Result<UploadFiles> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut completed = HashMap::new();
        for (key, partial, entry) in entries(dir)? {
            if partial {
                continue; // see `partials`
            }
            if exists(&key.sha256) {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map_err(|e| io(&entry.path(), e))?;
                completed.insert(key, modified);
            } else {
                // Completed, but the content is gone (removed by hand): the
                // upload is not there either.
                let marker = entry.path();
                fs::remove_file(&marker).map_err(|e| io(&marker, e))?;
            }
        }
        Ok(UploadFiles {
            dir: dir.to_owned(),
            completed: Mutex::new(completed),
        })
    }

    fn completed(&self) -> MutexGuard<'_, HashMap<UploadKey, SystemTime>> {
        // A few map operations per use: consistent even if poisoned.
        self.completed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn org_dir(&self, org: &OrgCode) -> PathBuf {
        self.dir.join(org.as_str())
    }

    fn partial_path(&self, key: &UploadKey) -> PathBuf {
        self.org_dir(&key.org).join(format!("{}.part", key.stem()))
    }

    fn marker_path(&self, key: &UploadKey) -> PathBuf {
        self.org_dir(&key.org).join(format!("{}.done", key.stem()))
    }

    /// The partial file of `key`, created empty if there is none, synced,
    /// so that its length is durable.
    pub fn open_partial(&self, key: &UploadKey) -> Result<PartialFile> {
        let org_dir = self.org_dir(&key.org);
        fs::create_dir_all(&org_dir).map_err(|e| io(&org_dir, e))?;
        let path = self.partial_path(key);
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        if created {
            sync_dir(&org_dir)?;
        }
        file.sync_data().map_err(|e| io(&path, e))?;
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        Ok(PartialFile { file, path, len })
    }

    /// The durable length of `key`'s partial file and its last write, if
    /// there is one.
    pub fn partial_len(&self, key: &UploadKey) -> Result<Option<(u64, SystemTime)>> {
        let path = self.partial_path(key);
        match OpenOptions::new().append(true).open(&path) {
            Ok(file) => {
                file.sync_data().map_err(|e| io(&path, e))?;
                let meta = file.metadata().map_err(|e| io(&path, e))?;
                let modified = meta.modified().map_err(|e| io(&path, e))?;
                Ok(Some((meta.len(), modified)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Removes `key`'s partial file, if any.
    pub fn remove_partial(&self, key: &UploadKey) -> Result<()> {
        let path = self.partial_path(key);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.org_dir(&key.org)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// The partial files now on disk, with their lengths and last writes.
    pub fn partials(&self) -> Result<Vec<FoundPartial>> {
        let mut out = Vec::new();
        for (key, partial, entry) in entries(&self.dir)? {
            // Markers are not partial; a file gone meanwhile (completed
            // or removed) is skipped.
            let Some(meta) = entry.metadata().ok().filter(|_| partial) else {
                continue;
            };
            out.push(FoundPartial {
                key,
                len: meta.len(),
                modified: meta.modified().map_err(|e| io(&entry.path(), e))?,
            });
        }
        Ok(out)
    }

    /// Records `key` as completed, durably (its content is in place).
    pub fn mark_complete(&self, key: &UploadKey) -> Result<SystemTime> {
        let path = self.marker_path(key);
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
        let at = file
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| io(&path, e))?;
        sync_dir(&self.org_dir(&key.org))?;
        self.completed().insert(*key, at);
        Ok(at)
    }

    /// When `key` completed, if it did and has not been forgotten. Looks
    /// on disk too: with several front ends sharing the directory, another
    /// may have completed it (a client that reconnected elsewhere).
    pub fn completed_at(&self, key: &UploadKey) -> Option<SystemTime> {
        if let Some(at) = self.completed().get(key).copied() {
            return Some(at);
        }
        let at = fs::metadata(self.marker_path(key))
            .and_then(|m| m.modified())
            .ok()?;
        self.completed().insert(*key, at);
        Some(at)
    }

    /// The content digest of every completed upload on disk now, whichever
    /// front end completed it.
    pub fn completed_on_disk(&self) -> Result<Vec<[u8; 32]>> {
        Ok(entries(&self.dir)?
            .into_iter()
            .filter(|(_, partial, _)| !partial)
            .map(|(key, _, _)| key.sha256)
            .collect())
    }

    /// Every completed upload, with when it completed.
    pub fn all_completed(&self) -> Vec<(UploadKey, SystemTime)> {
        self.completed().iter().map(|(k, at)| (*k, *at)).collect()
    }

    /// Forgets a completed upload: its marker goes. Whether it was there.
    pub fn forget(&self, key: &UploadKey) -> Result<bool> {
        if self.completed().remove(key).is_none() {
            return Ok(false);
        }
        let path = self.marker_path(key);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.org_dir(&key.org))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path, e)),
        }
        Ok(true)
    }
}

/// Every upload file under `dir`: its upload, whether it is partial, and
/// its entry. Other files are passed over.
fn entries(dir: &Path) -> Result<Vec<(UploadKey, bool, fs::DirEntry)>> {
    let mut out = Vec::new();
    for org_dir in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let org_dir = org_dir.map_err(|e| io(dir, e))?;
        let Some(org) = org_dir.file_name().to_str().and_then(OrgCode::parse) else {
            continue;
        };
        let path = org_dir.path();
        for entry in fs::read_dir(&path).map_err(|e| io(&path, e))? {
            let entry = entry.map_err(|e| io(&path, e))?;
            let found = entry
                .file_name()
                .to_str()
                .and_then(|n| UploadKey::parse(org, n));
            if let Some((key, partial)) = found {
                out.push((key, partial, entry));
            }
        }
    }
    Ok(out)
}

//! Attachment contents, as files named by their SHA-256, written and synced
//! by us rather than by sled.
//!
//! Why not in sled: sled 0.34.7 writes any value larger than about an eighth
//! of a segment to a separate blob file with a plain `write` and never
//! fsyncs it, so a power cut can lose an attachment that was acknowledged.
//! Here each file is written to `tmp/` (or arrives as a finished upload,
//! see `uploads`), fsynced, renamed into place, and its directory fsynced,
//! before the sled commit that refers to it.
//!
//! Content addressing stores identical attachments once, across documents
//! too. Which files documents refer to is the store's `attachment_files`
//! keyspace, written in the commit. A file no document refers to is
//! removed, unless something *claims* it: a send between writing its files
//! and learning its commit's outcome, or a completed upload not yet sent
//! nor expired. Claims are counted here, and a file is only removed under
//! the same lock that takes claims, so a send that finds a file in place
//! (and skips writing it) can never lose it to a concurrent clean-up.
//!
//! With several front ends on one folder (a shared store), a front end
//! cannot see the others' claims: then files are removed only by the
//! sweep, and only once older than [`SHARED_GRACE`] and named by no
//! completed upload on disk; the sweep then runs at every upload clean-up
//! interval rather than once.
//!
//! When files are removed: right after a send that wrote them failed
//! ([`AttachmentFiles::release`]); when a completed upload expires unsent;
//! and in one sweep after each start ([`AttachmentFiles::sweep`]), for the
//! files a crash left between writing them and the commit. `tmp/` is
//! emptied when the store opens for writing: nothing in it is referred to.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

pub(super) fn io(path: &Path, e: std::io::Error) -> Error {
    Error::storage_from(path.display().to_string(), e)
}

/// Whether a document refers to the content with this digest.
pub(super) type Referenced<'a> = &'a dyn Fn(&[u8; 32]) -> Result<bool>;

/// With several front ends on one folder, how old an unreferenced file must
/// be before one front end may remove it: far longer than any send takes
/// between writing its files and committing.
pub const SHARED_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether the file at `path` was last modified longer than
/// [`SHARED_GRACE`] ago (a file gone meanwhile counts as young: nothing
/// to remove).
fn older_than_grace(path: &Path) -> Result<bool> {
    match fs::metadata(path).and_then(|m| m.modified()) {
        Ok(modified) => Ok(modified.elapsed().is_ok_and(|age| age > SHARED_GRACE)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(path, e)),
    }
}

pub struct AttachmentFiles {
    dir: PathBuf,
    /// Claims on digests: a file claimed is never removed.
    claims: Mutex<HashMap<[u8; 32], usize>>,
    /// Other front ends write here too: a file is removed only by the
    /// sweep, once older than [`SHARED_GRACE`].
    shared: bool,
}

impl AttachmentFiles {
    /// Opens `dir`; `shared` if other front ends use it too (their claims
    /// are not visible here: see [`SHARED_GRACE`]).
    pub fn open(dir: &Path, shared: bool) -> Result<AttachmentFiles> {
        fs::create_dir_all(dir.join("tmp")).map_err(|e| io(dir, e))?;
        Ok(AttachmentFiles {
            dir: dir.to_owned(),
            claims: Mutex::new(HashMap::new()),
            shared,
        })
    }

    /// Removes what a write interrupted by a crash left in `tmp/`. Only
    /// when the store opens for writing: no write of this process is in
    /// progress then. When shared, other front ends may be writing into
    /// the same folder: only files older than [`SHARED_GRACE`] go.
    pub(super) fn clear_tmp(&self) -> Result<usize> {
        let shared = self.shared;
        let tmp = self.dir.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(|e| io(&tmp, e))? {
            let path = entry.map_err(|e| io(&tmp, e))?.path();
            if shared && !older_than_grace(&path)? {
                continue;
            }
            fs::remove_file(&path).map_err(|e| io(&path, e))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// `DIR/ab/abcdef…`: 256 subdirectories keep each one small.
    fn path(&self, sha256: &[u8; 32]) -> PathBuf {
        let name = hex::encode(sha256);
        self.dir.join(&name[..2]).join(name)
    }

    fn claims(&self) -> MutexGuard<'_, HashMap<[u8; 32], usize>> {
        // Each use is a few map operations, which a panic cannot leave half
        // done: a poisoned lock still guards a consistent map.
        self.claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims each digest once more: its file is not removed until
    /// released.
    pub fn claim(&self, digests: &[[u8; 32]]) {
        let mut claims = self.claims();
        for digest in digests {
            *claims.entry(*digest).or_insert(0) += 1;
        }
    }

    /// Drops one claim on each digest, and removes the file of each that
    /// nobody claims any more and no document refers to. Returns how many
    /// files were removed. When shared, removes none: another front end
    /// may be sending the same content now; the sweep removes it later.
    pub fn release(&self, digests: &[[u8; 32]], referenced: Referenced<'_>) -> Result<usize> {
        let mut claims = self.claims();
        let mut removed = 0;
        for digest in digests {
            match claims.get_mut(digest) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    continue;
                }
                _ => {
                    claims.remove(digest);
                }
            }
            if !self.shared && !referenced(digest)? && self.remove(digest)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the file of `digest` if it is there; whether it was.
    fn remove(&self, digest: &[u8; 32]) -> Result<bool> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Removes every file that nobody claims and no document refers to.
    /// Returns how many. When shared (other front ends on the same
    /// folder, whose claims this process cannot see), a file is also kept
    /// if it is younger than [`SHARED_GRACE`] — a send of theirs between
    /// writing it and committing — or named in `uploaded` (their completed
    /// uploads, read from disk by the caller).
    pub fn sweep(
        &self,
        referenced: Referenced<'_>,
        uploaded: &std::collections::HashSet<[u8; 32]>,
    ) -> Result<usize> {
        let shared = self.shared;
        let mut removed = 0;
        for sub in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let sub = sub.map_err(|e| io(&self.dir, e))?.path();
            // The 256 folders `00`..`ff`; not `tmp/` nor `uploads/`.
            let is_fanout = sub
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_fanout || !sub.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&sub).map_err(|e| io(&sub, e))? {
                let name = entry.map_err(|e| io(&sub, e))?.file_name();
                let mut digest = [0u8; 32];
                let Some(()) = name
                    .to_str()
                    .and_then(|n| hex::decode_to_slice(n, &mut digest).ok())
                else {
                    continue; // not one of ours
                };
                if shared && (uploaded.contains(&digest) || !older_than_grace(&self.path(&digest))?)
                {
                    continue;
                }
                // Under the claims' lock, so no send claims it meanwhile.
                let claims = self.claims();
                if !claims.contains_key(&digest) && !referenced(&digest)? && self.remove(&digest)? {
                    removed += 1;
                }
                drop(claims);
            }
        }
        Ok(removed)
    }

    /// Makes each content durable under its digest (the caller checked that
    /// the digests are right, and claimed them). Blocking: call off the
    /// async workers.
    pub fn put_all(&self, contents: &[([u8; 32], Vec<u8>)]) -> Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (sha256, content) in contents {
            let target = self.path(sha256);
            if target.exists() {
                continue; // the same bytes are already durable
            }
            let tmp = self.dir.join("tmp").join(format!(
                "{}.{}",
                hex::encode(&sha256[..8]),
                crate::store::DocId::random()?
            ));
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io(&tmp, e))?;
            file.write_all(content).map_err(|e| io(&tmp, e))?;
            file.sync_all().map_err(|e| io(&tmp, e))?;
            let parent = self.place(&tmp, sha256)?;
            if !dirs.contains(&parent) {
                dirs.push(parent);
            }
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Renames a synced file with content `sha256` into place; the caller
    /// syncs the returned folder.
    fn place(&self, from: &Path, sha256: &[u8; 32]) -> Result<PathBuf> {
        let target = self.path(sha256);
        let parent = target.parent().map(Path::to_path_buf).unwrap_or_default();
        fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        fs::rename(from, &target).map_err(|e| io(&target, e))?;
        Ok(parent)
    }

    /// Takes a finished upload, checked against `sha256` and synced, as
    /// the file of that content (or drops it if the content is already
    /// there), durably. The caller claimed the digest.
    pub fn adopt(&self, from: &Path, sha256: &[u8; 32]) -> Result<()> {
        if self.path(sha256).exists() {
            return fs::remove_file(from).map_err(|e| io(from, e));
        }
        let parent = self.place(from, sha256)?;
        sync_dir(&parent)?;
        if let Some(source) = from.parent() {
            sync_dir(source)?;
        }
        Ok(())
    }

    /// Whether the file of this content is there.
    pub fn exists(&self, sha256: &[u8; 32]) -> bool {
        self.path(sha256).is_file()
    }

    /// The content with this digest, checked against it: a file changed or
    /// damaged on disk is reported, never served.
    pub fn get(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        let path = self.path(sha256);
        let content = match fs::read(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        if ring::digest::digest(&ring::digest::SHA256, &content).as_ref() != sha256 {
            return Err(damaged(&path));
        }
        Ok(Some(content))
    }

    /// The digests of every attachment stored as a file, in no order.
    /// Files still being written (in `tmp/`) are not listed.
    pub fn list(&self) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let prefix = entry.file_name();
            let is_prefix = prefix.len() == 2
                && prefix
                    .to_str()
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_prefix {
                continue; // tmp/, or anything not ours
            }
            let dir = entry.path();
            for file in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
                let file = file.map_err(|e| io(&dir, e))?;
                let mut sha256 = [0u8; 32];
                let name = file.file_name();
                if hex::decode_to_slice(name.as_encoded_bytes(), &mut sha256).is_ok() {
                    out.push(sha256);
                }
            }
        }
        Ok(out)
    }

    /// The size of the file of this digest, if there is one.
    pub fn size(&self, sha256: &[u8; 32]) -> Result<Option<u64>> {
        let path = self.path(sha256);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// The file with this digest, open for reading, and its length.
    pub fn open_file(&self, sha256: &[u8; 32]) -> Result<Option<(File, u64)>> {
        let path = self.path(sha256);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        Ok(Some((file, len)))
    }
}

/// A stored attachment whose bytes do not hash to its name.
pub fn damaged(path: &Path) -> Error {
    Error::storage(format!(
        "{} does not match its SHA-256: the file was changed or damaged",
        path.display()
    ))
}

/// fsync a directory, so that names created in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

//! Attachment contents, as files named by their SHA-256, written and synced
//! by us rather than by sled.
//!
//! Why not in sled: sled 0.34.7 writes any value larger than about an eighth
//! of a segment to a separate blob file with a plain `write` and never
//! fsyncs it, so a power cut can lose an attachment that was acknowledged.
//! Here each file is written to `tmp/`, fsynced, renamed into place, and its
//! directory fsynced, before the sled commit that refers to it.
//!
//! Content addressing stores identical attachments once, across documents
//! too. A send that fails after its files were written leaves them
//! unreferenced; they are harmless, and a future sweep can remove them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::storage_from(path.display().to_string(), e)
}

pub struct AttachmentFiles {
    dir: PathBuf,
}

impl AttachmentFiles {
    pub fn open(dir: &Path) -> Result<AttachmentFiles> {
        fs::create_dir_all(dir.join("tmp")).map_err(|e| io(dir, e))?;
        Ok(AttachmentFiles {
            dir: dir.to_owned(),
        })
    }

    /// `DIR/ab/abcdef…`: 256 subdirectories keep each one small.
    fn path(&self, sha256: &[u8; 32]) -> PathBuf {
        let name = hex::encode(sha256);
        self.dir.join(&name[..2]).join(name)
    }

    /// Makes each content durable under its digest (the caller checked that
    /// the digests are right). Blocking: call off the async workers.
    pub fn put_all(&self, contents: &[([u8; 32], Vec<u8>)]) -> Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (sha256, content) in contents {
            let target = self.path(sha256);
            if target.exists() {
                continue; // the same bytes are already durable
            }
            let parent = target.parent().map(Path::to_path_buf).unwrap_or_default();
            fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
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
            fs::rename(&tmp, &target).map_err(|e| io(&target, e))?;
            if !dirs.contains(&parent) {
                dirs.push(parent);
            }
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        Ok(())
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
            return Err(Error::storage(format!(
                "{} does not match its SHA-256: the file was changed or damaged",
                path.display()
            )));
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
}

/// fsync a directory, so that names created in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

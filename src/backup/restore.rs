//! `lienthong restore`: a data directory rebuilt from a backup file, with
//! no server running on it.
//!
//! Never half restored: the whole file is read and checked first (its
//! structure, its SHA-256, each attachment against its digest, each file's
//! path), and nothing is written unless all of it holds; the directory must
//! be empty or new; a failure while writing removes what was written. Then
//! the archive audit runs on the result.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::format::{Counts, FormatError, Header, Reader, Record};
use crate::archive::audit::{self, AuditReport};
use crate::receipt::{PRIVATE_FILE, PUBLIC_FILE};
use crate::store::load::Loader;

/// Why nothing was restored.
#[derive(Debug)]
pub enum RestoreError {
    /// The target holds something already.
    NotEmpty(PathBuf),
    Open(PathBuf, std::io::Error),
    /// The file is not an intact backup; nothing was written.
    Refused(PathBuf, String),
    /// Writing failed; what was written was removed.
    Write(PathBuf, String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::NotEmpty(dir) => write!(
                f,
                "{} is not empty: restore only into a new or empty directory, so nothing is overwritten",
                dir.display()
            ),
            RestoreError::Open(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            RestoreError::Refused(path, why) => write!(
                f,
                "{} cannot be restored: {why}; nothing was written",
                path.display()
            ),
            RestoreError::Write(dir, why) => write!(
                f,
                "restoring into {} failed: {why}; what was written was removed",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for RestoreError {}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub header: Header,
    pub counts: Counts,
    /// The archive audit of the restored directory: `Err` if it could not
    /// run, else its findings.
    pub audit: Result<AuditReport, String>,
}

/// Restores the backup `from` into `data_dir`, which must be empty or not
/// exist, and audits the result.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Restored, RestoreError> {
    let created = match std::fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RestoreError::NotEmpty(data_dir.to_owned()));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(RestoreError::Open(data_dir.to_owned(), e)),
    };
    let refused = |why: String| RestoreError::Refused(from.to_owned(), why);

    // First pass: the whole file, checked; nothing written.
    let mut reader = open(from)?;
    while let Some(record) = reader.next_record().map_err(|e| refused(e.to_string()))? {
        check(&record).map_err(refused)?;
    }
    let header = reader.header().clone();
    let counts = reader.counts();

    // Second pass: written, checked again as it goes (the file could have
    // changed since); on any failure, what was written goes.
    if let Err(why) = write(from, data_dir) {
        let cleanup = if created {
            std::fs::remove_dir_all(data_dir)
        } else {
            empty(data_dir)
        };
        let why = match cleanup {
            Ok(()) => why,
            Err(e) => format!("{why} (and removing what was written failed too: {e})"),
        };
        return Err(RestoreError::Write(data_dir.to_owned(), why));
    }
    let audit = audit::audit(data_dir).map_err(|e| e.to_string());
    Ok(Restored {
        header,
        counts,
        audit,
    })
}

fn open(from: &Path) -> Result<Reader<BufReader<File>>, RestoreError> {
    let file = File::open(from).map_err(|e| RestoreError::Open(from.to_owned(), e))?;
    Reader::open(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| RestoreError::Refused(from.to_owned(), e.to_string()))
}

/// What the first pass checks beyond the format: each attachment against
/// its digest, each file's path.
fn check(record: &Record) -> Result<(), String> {
    match record {
        Record::Entry { .. } => Ok(()),
        Record::Attachment { sha256, content } => {
            if ring::digest::digest(&ring::digest::SHA256, content).as_ref() == sha256 {
                Ok(())
            } else {
                Err(format!(
                    "attachment {} does not match its SHA-256",
                    hex::encode(sha256)
                ))
            }
        }
        Record::File { path, .. } => {
            if allowed(path) {
                Ok(())
            } else {
                Err(format!(
                    "it names a file {path:?}, which is not one a backup holds"
                ))
            }
        }
    }
}

/// A file's path in a backup: the service's key files, or something under
/// `pki/`, without any `..` or empty part, so that a restore writes
/// nowhere else.
fn allowed(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let plain = parts
        .iter()
        .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'));
    plain
        && match parts.as_slice() {
            [name] => *name == PRIVATE_FILE || *name == PUBLIC_FILE,
            ["pki", _, ..] => true,
            _ => false,
        }
}

fn write(from: &Path, data_dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut reader = open(from).map_err(|e| e.to_string())?;
    let mut loader = Loader::create(data_dir).map_err(|e| e.to_string())?;
    while let Some(record) = reader
        .next_record()
        .map_err(|e: FormatError| e.to_string())?
    {
        check(&record)?;
        match record {
            Record::Entry { space, key, value } => {
                loader.put(space, key, value).map_err(|e| e.to_string())?
            }
            Record::Attachment { sha256, content } => loader
                .attachment(sha256, content)
                .map_err(|e| e.to_string())?,
            Record::File {
                path,
                secret,
                content,
            } => write_file(&data_dir.join(&path), secret, &content)?,
        }
    }
    loader.finish().map_err(|e| e.to_string())
}

/// Writes a new file (never over one), private keys readable by the owner
/// only, and syncs it.
fn write_file(path: &Path, secret: bool, content: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(fail)
}

/// Removes everything in `dir` (which was empty before the restore).
fn empty(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn a_backup_writes_only_the_key_files_and_under_pki() {
        assert!(allowed("service-key.pub.pem"));
        assert!(allowed("service-key.pem"));
        assert!(allowed("pki/clients/000.02.09.H37.crt"));
        for bad in [
            "pki",
            "pki/",
            "pki/../store/db",
            "/etc/passwd",
            "store/db",
            "attachments/ab/cd",
            "pki//x",
            "pki/./x",
            "pki\\..\\x",
        ] {
            assert!(!allowed(bad), "{bad} allowed");
        }
    }
}

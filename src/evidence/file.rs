//! Reading and writing the files of evidence and proofs, with errors that
//! name the file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A file that could not be read or written.
#[derive(Debug)]
pub enum FileError {
    Read { path: PathBuf, source: io::Error },
    Write { path: PathBuf, source: io::Error },
}

impl FileError {
    /// Whether the file is simply not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            FileError::Read { source, .. } | FileError::Write { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            FileError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for FileError {}

pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    std::fs::write(path, bytes).map_err(|source| FileError::Write {
        path: path.to_owned(),
        source,
    })
}

pub fn create_dir(path: &Path) -> Result<(), FileError> {
    std::fs::create_dir_all(path).map_err(|source| FileError::Write {
        path: path.to_owned(),
        source,
    })
}

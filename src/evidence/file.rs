//! Reading and writing the files of evidence, proofs and exports, with
//! errors that name the file.
//!
//! What a client saves comes from a server and lands in a folder others may
//! also write to, so a save never follows a symbolic link and never
//! overwrites by accident: each file is created new (`O_CREAT|O_EXCL`, which
//! refuses an existing path, a dangling link included), each folder is
//! created or found to be a real folder, not a link. Replacing what an
//! earlier save left is asked for explicitly ([`Existing::Replace`]) and
//! removes a regular file first — a link is refused even then.
//!
//! A large attachment is downloaded into a partial file beside its target
//! ([`partial_path`]), opened without following a link (`O_NOFOLLOW`) so
//! that an interrupted save resumes where it stopped, and published under
//! its name only once checked ([`publish`]): linked into place, which
//! refuses an existing path as `create_new` does.
//!
//! Left open: a folder swapped for a link between its check and a write
//! into it. Closing that needs `openat`, which std does not offer; the
//! file is then still created new, so nothing existing is overwritten.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a write does when its file is there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse: an earlier save is evidence.
    Refuse,
    /// Replace a regular file (never a link, never a folder).
    Replace,
}

/// A file that could not be read or written.
#[derive(Debug)]
pub enum FileError {
    Read {
        path: PathBuf,
        source: io::Error,
    },
    Write {
        path: PathBuf,
        source: io::Error,
    },
    /// A file or folder is there and the save was not asked to replace it.
    Exists {
        path: PathBuf,
    },
    /// A symbolic link where a file or folder is to be written.
    Symlink {
        path: PathBuf,
    },
    /// Something other than a folder where a folder is to be written, or a
    /// folder where a file is.
    WrongKind {
        path: PathBuf,
        expected: &'static str,
    },
}

impl FileError {
    /// Whether the file is simply not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            FileError::Read { source, .. } | FileError::Write { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            _ => false,
        }
    }

    /// Whether the save was refused because something is in the way (an
    /// earlier save, a link), rather than failed.
    pub fn is_in_the_way(&self) -> bool {
        matches!(
            self,
            FileError::Exists { .. } | FileError::Symlink { .. } | FileError::WrongKind { .. }
        )
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
            FileError::Exists { path } => write!(
                f,
                "{} exists; refusing to overwrite it (save into a new folder, \
                 or give --force to replace what an earlier save left)",
                path.display()
            ),
            FileError::Symlink { path } => write!(
                f,
                "{} is a symbolic link; refusing to write through it, even with --force \
                 (it could point anywhere): remove it or save into a new folder",
                path.display()
            ),
            FileError::WrongKind { path, expected } => write!(
                f,
                "{} exists and is not {expected}; save into a new folder",
                path.display()
            ),
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

/// Why `path` is in the way of a new file or folder, if it is: a link is
/// always in the way; otherwise what [`std::fs::symlink_metadata`] says.
fn in_the_way(path: &Path) -> Option<FileError> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(if meta.file_type().is_symlink() {
        FileError::Symlink {
            path: path.to_owned(),
        }
    } else {
        FileError::Exists {
            path: path.to_owned(),
        }
    })
}

/// Removes the regular file at `path`, if any, to replace it: never a link
/// (refused), never a folder.
fn clear(path: &Path) -> Result<(), FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(FileError::Symlink {
            path: path.to_owned(),
        }),
        Ok(meta) if meta.is_dir() => Err(FileError::WrongKind {
            path: path.to_owned(),
            expected: "a file",
        }),
        // Removing a link that replaced the file meanwhile removes the
        // link, not its target; the create that follows is exclusive anyway.
        Ok(_) => match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(FileError::Write {
                path: path.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// Writes `bytes` to a new file at `path`, never through a link; with
/// [`Existing::Replace`] a regular file there is removed first.
pub fn write(path: &Path, bytes: &[u8], existing: Existing) -> Result<(), FileError> {
    let failed = |source| FileError::Write {
        path: path.to_owned(),
        source,
    };
    if existing == Existing::Replace {
        clear(path)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => in_the_way(path).unwrap_or_else(|| failed(e)),
            _ => failed(e),
        })?;
    file.write_all(bytes).map_err(failed)
}

/// Where a download into `target` keeps its bytes until it is complete:
/// `.NAME.lienthong-partial` beside it.
pub fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.lienthong-partial"))
}

/// Opens the partial file at `path` for reading and appending, created if
/// missing, never through a symbolic link. Returns it and its length.
pub fn open_partial(path: &Path) -> Result<(std::fs::File, u64), FileError> {
    let failed = |source| FileError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    #[cfg(not(unix))]
    if let Some(e) = in_the_way(path).filter(|e| matches!(e, FileError::Symlink { .. })) {
        return Err(e);
    }
    let file = options.open(path).map_err(|e| {
        // ELOOP: the last component is a link.
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => FileError::Symlink {
                path: path.to_owned(),
            },
            _ => failed(e),
        }
    })?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(FileError::WrongKind {
            path: path.to_owned(),
            expected: "a file",
        });
    }
    Ok((file, meta.len()))
}

/// Gives the finished file `from` the name `to`, as [`write`] would create
/// it: a hard link, which refuses anything already at `to` (a link
/// included); with [`Existing::Replace`] a regular file there is removed
/// first. Then `from` goes.
pub fn publish(from: &Path, to: &Path, existing: Existing) -> Result<(), FileError> {
    let failed = |source| FileError::Write {
        path: to.to_owned(),
        source,
    };
    if existing == Existing::Replace {
        clear(to)?;
    }
    std::fs::hard_link(from, to).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => in_the_way(to).unwrap_or_else(|| failed(e)),
        _ => failed(e),
    })?;
    std::fs::remove_file(from).map_err(|source| FileError::Write {
        path: from.to_owned(),
        source,
    })
}

/// Creates the folder `path` and any missing parents. The folder itself
/// must not be a link: the caller named it, but someone else may have put
/// a link there first.
pub fn create_dir_all(path: &Path) -> Result<(), FileError> {
    std::fs::create_dir_all(path).map_err(|source| FileError::Write {
        path: path.to_owned(),
        source,
    })?;
    real_dir(path)
}

/// Creates the folder `path` inside a folder that exists, or takes the one
/// there if it is a real folder (not a link, not a file).
pub fn create_dir(path: &Path) -> Result<(), FileError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => real_dir(path),
        Err(source) => Err(FileError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

/// That `path` is a folder and not a link to one.
fn real_dir(path: &Path) -> Result<(), FileError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| FileError::Write {
        path: path.to_owned(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        Err(FileError::Symlink {
            path: path.to_owned(),
        })
    } else if !meta.is_dir() {
        Err(FileError::WrongKind {
            path: path.to_owned(),
            expected: "a folder",
        })
    } else {
        Ok(())
    }
}

/// Refuses, before anything is written, a save into `paths`: a link
/// always, anything else there unless `existing` is [`Existing::Replace`].
pub fn check_free(paths: &[PathBuf], existing: Existing) -> Result<(), FileError> {
    for path in paths {
        match in_the_way(path) {
            Some(e @ FileError::Symlink { .. }) => return Err(e),
            Some(e) if existing == Existing::Refuse => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_link_is_never_written_through_nor_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim.txt");
        std::fs::write(&victim, "victim").unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let link = out.join("report.pdf");
        std::os::unix::fs::symlink("../victim.txt", &link).unwrap();
        for existing in [Existing::Refuse, Existing::Replace] {
            let e = write(&link, b"attacker", existing).unwrap_err();
            assert!(matches!(e, FileError::Symlink { .. }), "{e}");
        }
        // A dangling link too: creating through it would make a file where
        // the link points.
        let dangling = out.join("new.pdf");
        std::os::unix::fs::symlink("../created-elsewhere", &dangling).unwrap();
        let e = write(&dangling, b"x", Existing::Refuse).unwrap_err();
        assert!(matches!(e, FileError::Symlink { .. }), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
        assert!(!tmp.path().join("created-elsewhere").exists());
        assert!(check_free(&[link], Existing::Replace).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = tmp.path().join("proof");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert!(matches!(
            create_dir(&link).unwrap_err(),
            FileError::Symlink { .. }
        ));
        assert!(matches!(
            create_dir_all(&link).unwrap_err(),
            FileError::Symlink { .. }
        ));
    }

    #[test]
    fn an_existing_file_is_refused_unless_replacing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.pdf");
        write(&path, b"first", Existing::Refuse).unwrap();
        let e = write(&path, b"second", Existing::Refuse).unwrap_err();
        assert!(matches!(e, FileError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("a.pdf exists"), "{e}");
        assert!(check_free(std::slice::from_ref(&path), Existing::Refuse).is_err());
        check_free(std::slice::from_ref(&path), Existing::Replace).unwrap();
        write(&path, b"second", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A folder in the way is not removed.
        let e = write(tmp.path(), b"x", Existing::Replace).unwrap_err();
        assert!(matches!(e, FileError::WrongKind { .. }), "{e}");
        // A file where a folder goes.
        assert!(matches!(
            create_dir(&path).unwrap_err(),
            FileError::WrongKind { .. }
        ));
    }
}

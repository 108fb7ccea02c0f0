//! Writing what a client command saves: attachments, proofs and JSON
//! files. Nothing is overwritten without `--force`, since a clerk's earlier
//! save is evidence, and nothing is written through a symbolic link, even
//! with it (see [`crate::evidence::Existing`]).

use std::path::{Path, PathBuf};

use tonic::Code;

use super::error::{CliError, Result};
use crate::evidence::{self, Existing};

/// What `--force` asks of a write.
pub fn existing(force: bool) -> Existing {
    if force {
        Existing::Replace
    } else {
        Existing::Refuse
    }
}

/// Refuses, before anything is written, any of `paths` that is a link, and
/// unless `force` any that exists.
pub fn refuse_to_overwrite(paths: &[PathBuf], force: bool) -> Result {
    Ok(evidence::check_free(paths, existing(force))?)
}

/// Refuses a folder that is a link, and unless `force` one that exists and
/// holds anything.
pub fn refuse_to_merge(dir: &Path, force: bool) -> Result {
    let is_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return Err(evidence::FileError::Symlink {
            path: dir.to_owned(),
        }
        .into());
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force {
        return Err(CliError::new(
            Code::AlreadyExists,
            format!(
                "{} exists and is not empty; refusing to write into it",
                dir.display()
            ),
        )
        .with_hint("choose a new folder, or give --force to replace what an earlier export left"));
    }
    Ok(())
}

/// Writes a JSON document, pretty, to a new file at `path`.
pub fn write_json(path: &Path, value: &serde_json::Value, existing: Existing) -> Result {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    Ok(evidence::write_file(path, text.as_bytes(), existing)?)
}

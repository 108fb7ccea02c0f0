//! Writing what a client command saves: attachments, proofs and JSON
//! files. Nothing is overwritten without `--force`: a clerk's earlier save
//! is evidence.

use std::path::{Path, PathBuf};

use tonic::Code;

use super::error::{CliError, Result};
use crate::pb;

/// Refuses, unless `force`, when any of `paths` exists.
pub fn refuse_to_overwrite(paths: &[PathBuf], force: bool) -> Result {
    if force {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        None => Ok(()),
        Some(p) => Err(CliError::new(
            Code::AlreadyExists,
            format!("{} exists; refusing to overwrite it", p.display()),
        )
        .with_hint("give --force to overwrite, or choose another place")),
    }
}

/// Refuses, unless `force`, a folder that exists and holds anything.
pub fn refuse_to_merge(dir: &Path, force: bool) -> Result {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force {
        return Err(CliError::new(
            Code::AlreadyExists,
            format!(
                "{} exists and is not empty; refusing to write into it",
                dir.display()
            ),
        )
        .with_hint("give --force to write into it anyway, or choose a new folder"));
    }
    Ok(())
}

/// What `show --save` writes into DIR: each attachment and the proof folder.
pub fn save_targets(dir: &Path, document: &pb::GetDocumentResponse) -> Vec<PathBuf> {
    let mut targets: Vec<PathBuf> = document
        .attachments
        .iter()
        .filter_map(|a| a.r#ref.as_ref())
        .map(|r| dir.join(&r.name))
        .collect();
    targets.push(dir.join(crate::evidence::PROOF_DIR));
    targets
}

/// Writes each attachment under its own name, after checking again that the
/// name is a plain file name: the server checks it too, but a client does
/// not write outside DIR on anyone's word.
pub fn save_attachments(dir: &Path, document: &pb::GetDocumentResponse) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut saved = Vec::new();
    for (i, attachment) in document.attachments.iter().enumerate() {
        let name = attachment
            .r#ref
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default();
        crate::document::check_file_name(&format!("attachments[{i}].name"), name)
            .map_err(|e| format!("refusing to save: {e}"))?;
        if name == crate::evidence::PROOF_DIR {
            return Err(format!(
                "refusing to save: an attachment is named {name:?}, the folder the proof goes in"
            )
            .into());
        }
        let path = dir.join(name);
        std::fs::write(&path, &attachment.content)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        saved.push(path.display().to_string());
    }
    Ok(saved)
}

/// Writes a JSON document, pretty, to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text)
        .map_err(|e| CliError::io(format_args!("cannot write {}", path.display()), &e))
}

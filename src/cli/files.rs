//! Writing what a client command saves: attachments and JSON files.

use std::path::Path;

use super::connection::Result;
use crate::pb;

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
            ));
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
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

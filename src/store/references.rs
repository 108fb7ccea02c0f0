//! Which attachment files documents refer to: the `attachment_files`
//! keyspace, `sha256[32]` → the id of the first document that carried the
//! content as a file. The commit of a send writes it; documents are never
//! removed, so an entry never goes. A file without an entry (and without a
//! claim, see `files`) is left over and may be removed.
//!
//! A store from a build before the keyspace gets it built once when
//! opened, from every document's attachment digests (small attachments
//! included: an entry for content kept in the engine is harmless).

use super::engine::{Engine, Space};
use crate::error::Result;

const INDEX_BUILT: &[u8] = b"attachment-files-index";

/// Whether a document refers to the content with this digest.
pub(super) fn referenced(engine: &dyn Engine, sha256: &[u8; 32]) -> Result<bool> {
    Ok(engine.get(Space::AttachmentFiles, sha256)?.is_some())
}

/// Builds the keyspace from the documents, once per store.
pub(super) fn build_once(engine: &dyn Engine) -> Result<()> {
    if engine.get(Space::Meta, INDEX_BUILT)?.is_some() {
        return Ok(());
    }
    super::each_document_batch(engine, |documents| {
        engine.transact(&mut |txn| {
            for (id, document) in &documents {
                for sha256 in &document.attachment_sha256 {
                    if txn.get(Space::AttachmentFiles, sha256)?.is_none() {
                        txn.put(Space::AttachmentFiles, sha256, &id.0)?;
                    }
                }
            }
            Ok(())
        })
    })?;
    engine.transact(&mut |txn| txn.put(Space::Meta, INDEX_BUILT, b"1"))?;
    engine.sync()
}

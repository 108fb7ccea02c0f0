//! The tamper-evident archive: an append-only Merkle log (RFC 9162) of
//! every accepted document, with signed checkpoints and proofs that anyone
//! can check offline.
//!
//! Leaves are appended by the store inside each send's commit (so no
//! document is ever stored outside the log); this module serves what is
//! read from the log: checkpoints, inclusion proofs for a document's
//! parties, consistency proofs, and the offline audit.

pub mod audit;
pub mod proof;

use std::sync::Arc;

use prost::Message;

use crate::directory::Organization;
use crate::error::{Error, Result};
use crate::exchange::Exchange;
use crate::pb;
use crate::store::Store;

fn signed(bytes: Vec<u8>) -> Result<pb::SignedCheckpoint> {
    pb::SignedCheckpoint::decode(bytes.as_slice())
        .map_err(|e| Error::storage_from("a stored checkpoint does not decode", e))
}

fn hashes(path: Vec<[u8; 32]>) -> Vec<Vec<u8>> {
    path.into_iter().map(|h| h.to_vec()).collect()
}

/// The archive's read side, as served over gRPC.
pub struct Archive {
    store: Arc<Store>,
    /// Decides who may see a document, and so who may prove it.
    exchange: Arc<Exchange>,
}

impl Archive {
    pub fn new(store: Arc<Store>, exchange: Arc<Exchange>) -> Archive {
        Archive { store, exchange }
    }

    /// The signed checkpoint of `size` leaves, or the latest (0), or a new
    /// one made now (`fresh`).
    pub async fn checkpoint(&self, size: u64, fresh: bool) -> Result<pb::SignedCheckpoint> {
        if fresh {
            return signed(self.store.make_checkpoint().await?);
        }
        if size == 0 {
            return match self.store.latest_checkpoint()? {
                Some((_, bytes)) => signed(bytes),
                None => signed(self.store.make_checkpoint().await?),
            };
        }
        let bytes = self.store.checkpoint(size)?.ok_or_else(|| {
            Error::not_found(format!(
                "a checkpoint of tree_size {size} (ask for one that was made, or 0 for the latest)"
            ))
        })?;
        signed(bytes)
    }

    /// The latest checkpoint made, if any, without making one.
    pub fn latest(&self) -> Result<Option<pb::Checkpoint>> {
        let Some((_, bytes)) = self.store.latest_checkpoint()? else {
            return Ok(None);
        };
        signed(bytes)?.decoded().map(Some)
    }

    /// That the document `id`, which the caller sent or received, is leaf
    /// `i` of the log, up to a signed checkpoint.
    pub async fn inclusion_proof(
        &self,
        caller: &Organization,
        id: &str,
        tree_size: u64,
        leaf_index: Option<u64>,
    ) -> Result<pb::InclusionProof> {
        let view = self.exchange.readable(caller, "document_id", id)?;
        let index = match leaf_index {
            None => self
                .store
                .archive_index(&view.id)?
                .ok_or_else(|| Error::storage(format!("document {id} is not in the archive")))?,
            // Another leaf about the same document (a status change, the
            // revocation): the caller may prove it as it may read the
            // document. A leaf about another document reads as unknown.
            Some(index) => {
                let about = self
                    .store
                    .archive_leaf(index)?
                    .and_then(|leaf| pb::ArchiveEntry::decode(leaf.as_slice()).ok())
                    .map(|entry| entry.document_id);
                if about.as_deref() != Some(view.id.to_string().as_str()) {
                    return Err(Error::not_found(format!(
                        "leaf {index} about document {}",
                        crate::error::quote(id)
                    )));
                }
                index
            }
        };
        let (size, checkpoint) = if tree_size == 0 {
            match self.store.latest_checkpoint()? {
                Some((size, bytes)) if size > index => (size, bytes),
                _ => {
                    let bytes = self.store.make_checkpoint().await?;
                    (signed(bytes.clone())?.checkpoint_size()?, bytes)
                }
            }
        } else {
            if index >= tree_size {
                return Err(Error::OutOfRange {
                    field: "tree_size".into(),
                    reason: format!(
                        "the document is leaf {index}, after a tree of {tree_size} leaves"
                    ),
                });
            }
            let bytes = self.store.checkpoint(tree_size)?.ok_or_else(|| {
                Error::not_found(format!("a checkpoint of tree_size {tree_size}"))
            })?;
            (tree_size, bytes)
        };
        let leaf = self
            .store
            .archive_leaf(index)?
            .ok_or_else(|| Error::storage(format!("archive leaf {index} is missing")))?;
        Ok(pb::InclusionProof {
            leaf_index: index,
            tree_size: size,
            leaf,
            audit_path: hashes(self.store.inclusion_proof(index, size)?),
            checkpoint: Some(signed(checkpoint)?),
        })
    }

    /// That the checkpoint of `second` leaves extends that of `first`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<pb::ConsistencyProof> {
        if first == 0 || first > second {
            return Err(Error::invalid(
                "first_size",
                format!("must be from 1 to second_size ({second}), got {first}"),
            ));
        }
        let get = |size: u64, field: &str| -> Result<pb::SignedCheckpoint> {
            let bytes = self
                .store
                .checkpoint(size)?
                .ok_or_else(|| Error::not_found(format!("a checkpoint of {field} {size}")))?;
            signed(bytes)
        };
        Ok(pb::ConsistencyProof {
            proof: hashes(self.store.consistency_proof(first, second)?),
            first: Some(get(first, "first_size")?),
            second: Some(get(second, "second_size")?),
        })
    }
}

impl pb::SignedCheckpoint {
    /// The checkpoint inside the signed bytes.
    pub fn decoded(&self) -> Result<pb::Checkpoint> {
        pb::Checkpoint::decode(self.checkpoint.as_slice())
            .map_err(|e| Error::storage_from("a checkpoint does not decode", e))
    }

    /// The tree size inside the signed bytes.
    pub fn checkpoint_size(&self) -> Result<u64> {
        self.decoded().map(|c| c.tree_size)
    }
}

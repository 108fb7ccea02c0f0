//! The checks of a proof file, against the service key the user trusts.
//! Each is its own function returning what it established or the
//! [`ProofError`] that says why not; [`ProofFile::check`] makes them all.

use prost::Message;

use super::{CheckpointFile, ConsistencyFile, InclusionFile, ProofError, ProofFile};
use crate::crypto::{self, PublicKey};
use crate::evidence::Check;
use crate::merkle::{self, Hash};
use crate::pb;

fn check(subject: &str, outcome: Result<String, ProofError>) -> Check {
    let (ok, detail) = match outcome {
        Ok(detail) => (true, detail),
        Err(e) => (false, e.to_string()),
    };
    Check {
        subject: subject.into(),
        ok,
        detail,
    }
}

impl ProofFile {
    /// Every check of the file, each reported; it holds if all pass.
    pub fn check(&self, trusted: &PublicKey) -> Vec<Check> {
        match self {
            ProofFile::Inclusion(f) => vec![
                check("leaf", f.check_leaf()),
                check("inclusion", f.check_path()),
                check(
                    "checkpoint",
                    f.checkpoint.check(f.tree_size, &f.root_hash.0, trusted),
                ),
            ],
            ProofFile::Consistency(f) => vec![
                check("consistency", f.check_proof()),
                check(
                    "first checkpoint",
                    f.first_checkpoint
                        .check(f.first_size, &f.first_root.0, trusted),
                ),
                check(
                    "second checkpoint",
                    f.second_checkpoint
                        .check(f.second_size, &f.second_root.0, trusted),
                ),
            ],
        }
    }
}

impl InclusionFile {
    /// The leaf hashes to `leaf_hash` and is the archive entry of
    /// `document_id`.
    pub fn check_leaf(&self) -> Result<String, ProofError> {
        if merkle::leaf_hash(&self.leaf.0) != self.leaf_hash.0 {
            return Err(ProofError::LeafHash);
        }
        let entry = pb::ArchiveEntry::decode(self.leaf.0.as_slice()).map_err(|source| {
            ProofError::Undecodable {
                what: "the leaf (an ArchiveEntry)",
                source,
            }
        })?;
        if entry.document_id != self.document_id {
            return Err(ProofError::LeafOfAnotherDocument {
                leaf: entry.document_id,
                file: self.document_id.clone(),
            });
        }
        Ok(format!(
            "the archive entry of document {}; leaf_hash is SHA-256(0x00 ‖ leaf)",
            self.document_id
        ))
    }

    /// The audit path leads from `leaf_hash` to `root_hash`.
    pub fn check_path(&self) -> Result<String, ProofError> {
        let path: Vec<Hash> = self.audit_path.iter().map(|h| h.0).collect();
        let (index, size) = (self.leaf_index, self.tree_size);
        if merkle::verify_inclusion(&self.leaf_hash.0, index, size, &path, &self.root_hash.0) {
            Ok(format!("leaf {index} is in the tree of {size} leaves"))
        } else {
            Err(ProofError::InclusionPath { index, size })
        }
    }
}

impl ConsistencyFile {
    /// The proof connects `first_root` to `second_root`.
    pub fn check_proof(&self) -> Result<String, ProofError> {
        let proof: Vec<Hash> = self.proof.iter().map(|h| h.0).collect();
        let (first, second) = (self.first_size, self.second_size);
        if merkle::verify_consistency(
            first,
            second,
            &self.first_root.0,
            &self.second_root.0,
            &proof,
        ) {
            Ok(format!(
                "the tree of {second} leaves extends the tree of {first}"
            ))
        } else {
            Err(ProofError::Consistency { first, second })
        }
    }
}

impl CheckpointFile {
    /// Signed by the trusted service key, and signing `size` and `root`;
    /// the readable fields agree with the signed bytes.
    pub fn check(&self, size: u64, root: &Hash, trusted: &PublicKey) -> Result<String, ProofError> {
        let signed = pb::Checkpoint::decode(self.bytes.0.as_slice()).map_err(|source| {
            ProofError::Undecodable {
                what: "the checkpoint's bytes (a Checkpoint)",
                source,
            }
        })?;
        let trusted_id = trusted.key_id();
        if signed.service_key_id != trusted_id {
            return Err(ProofError::UntrustedKey {
                named: signed.service_key_id,
                trusted: trusted_id,
            });
        }
        let message = crypto::checkpoint_message(&signed.service_key_id, &self.bytes.0);
        if !trusted.verify(&message, &self.signature.0) {
            return Err(ProofError::BadSignature);
        }
        if signed.tree_size != size || signed.root_hash.as_slice() != root {
            return Err(ProofError::CheckpointDisagrees {
                signed_size: signed.tree_size,
                size,
            });
        }
        let copies = [
            ("tree_size", self.tree_size == signed.tree_size),
            ("root_hash", self.root_hash.0.as_slice() == signed.root_hash),
            ("timestamp_ms", self.timestamp_ms == signed.timestamp_ms),
            (
                "service_key_id",
                self.service_key_id == signed.service_key_id,
            ),
        ];
        if let Some((field, _)) = copies.iter().find(|(_, same)| !same) {
            return Err(ProofError::ReadableCopyDiffers(field));
        }
        Ok(format!(
            "size {size}, signed by service key {} at {}",
            signed.service_key_id,
            crate::clock::format_vietnam(signed.timestamp_ms)
        ))
    }
}

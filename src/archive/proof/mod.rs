//! Proof files: an inclusion or consistency proof with its signed
//! checkpoint(s), as JSON that can be checked offline (format in the
//! README), and the checks themselves ([`ProofFile::check`]), made against
//! the service key the user trusts. The `service_key` a file carries is a
//! copy for the reader: a forger would put their own key there.

mod check;
mod error;
mod hex;

use std::path::Path;

use prost::Message;
use serde::{Deserialize, Serialize};

pub use error::ProofError;
pub use hex::{HexBytes, HexHash};

use crate::pb;

/// A proof file, as `archive prove` or `archive consistency` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProofFile {
    Inclusion(InclusionFile),
    Consistency(ConsistencyFile),
}

/// That the archive entry of `document_id` is leaf `leaf_index` of the
/// tree of `tree_size` leaves, whose root a signed checkpoint names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InclusionFile {
    pub document_id: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The leaf: an encoded `ArchiveEntry`.
    pub leaf: HexBytes,
    pub leaf_hash: HexHash,
    /// Sibling hashes, bottom up (RFC 9162 §2.1.3).
    pub audit_path: Vec<HexHash>,
    pub root_hash: HexHash,
    pub checkpoint: CheckpointFile,
    pub service_key: ServiceKeyFile,
}

/// That the tree of `second_size` leaves extends that of `first_size`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsistencyFile {
    pub first_size: u64,
    pub second_size: u64,
    pub first_root: HexHash,
    pub second_root: HexHash,
    /// RFC 9162 §2.1.4.
    pub proof: Vec<HexHash>,
    pub first_checkpoint: CheckpointFile,
    pub second_checkpoint: CheckpointFile,
    pub service_key: ServiceKeyFile,
}

/// A signed checkpoint: `bytes` (an encoded `Checkpoint`) and `signature`
/// are what is checked; the other fields are a readable copy of `bytes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub tree_size: u64,
    pub root_hash: HexHash,
    pub timestamp_ms: i64,
    pub service_key_id: String,
    pub bytes: HexBytes,
    pub signature: HexBytes,
}

/// The service key the server offered, for the reader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceKeyFile {
    pub key_id: String,
    pub algorithm: String,
    /// DER SubjectPublicKeyInfo.
    pub public_key: HexBytes,
}

impl ProofFile {
    pub fn read(path: &Path) -> Result<ProofFile, ProofError> {
        let text = crate::evidence::read_file(path)?;
        serde_json::from_slice(&text).map_err(|source| ProofError::NotAProofFile {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the file as JSON: a new file, never through a link, replacing
    /// an earlier one only if `existing` says so.
    pub fn write(
        &self,
        path: &Path,
        existing: crate::evidence::Existing,
    ) -> Result<(), ProofError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|source| ProofError::NotAProofFile {
                path: path.to_owned(),
                source,
            })?;
        Ok(crate::evidence::write_file(
            path,
            text.as_bytes(),
            existing,
        )?)
    }
}

fn decode_checkpoint(
    signed: Option<&pb::SignedCheckpoint>,
    what: &'static str,
) -> Result<CheckpointFile, ProofError> {
    let signed = signed.ok_or(ProofError::Missing(what))?;
    let c = pb::Checkpoint::decode(signed.checkpoint.as_slice())
        .map_err(|source| ProofError::Undecodable { what, source })?;
    Ok(CheckpointFile {
        tree_size: c.tree_size,
        root_hash: HexHash::from_slice(&c.root_hash, "root_hash")?,
        timestamp_ms: c.timestamp_ms,
        service_key_id: c.service_key_id,
        bytes: HexBytes(signed.checkpoint.clone()),
        signature: HexBytes(signed.signature.clone()),
    })
}

fn hashes(path: &[Vec<u8>], field: &'static str) -> Result<Vec<HexHash>, ProofError> {
    path.iter().map(|h| HexHash::from_slice(h, field)).collect()
}

impl ServiceKeyFile {
    pub fn new(key: Option<&pb::ServiceKey>) -> Result<ServiceKeyFile, ProofError> {
        let key = key.ok_or(ProofError::Missing("service key"))?;
        Ok(ServiceKeyFile {
            key_id: key.key_id.clone(),
            algorithm: key.algorithm.clone(),
            public_key: HexBytes(key.public_key.clone()),
        })
    }
}

impl InclusionFile {
    /// The file for the proof the server sent for `document_id` (the id
    /// asked for: the check will find a leaf of another document).
    pub fn new(
        document_id: &str,
        p: &pb::InclusionProof,
        service_key: Option<&pb::ServiceKey>,
    ) -> Result<InclusionFile, ProofError> {
        let checkpoint = decode_checkpoint(p.checkpoint.as_ref(), "checkpoint")?;
        Ok(InclusionFile {
            document_id: document_id.to_owned(),
            leaf_index: p.leaf_index,
            tree_size: p.tree_size,
            leaf: HexBytes(p.leaf.clone()),
            leaf_hash: HexHash(crate::merkle::leaf_hash(&p.leaf)),
            audit_path: hashes(&p.audit_path, "audit_path")?,
            root_hash: checkpoint.root_hash,
            checkpoint,
            service_key: ServiceKeyFile::new(service_key)?,
        })
    }
}

impl ConsistencyFile {
    pub fn new(
        p: &pb::ConsistencyProof,
        service_key: Option<&pb::ServiceKey>,
    ) -> Result<ConsistencyFile, ProofError> {
        let first_checkpoint = decode_checkpoint(p.first.as_ref(), "first checkpoint")?;
        let second_checkpoint = decode_checkpoint(p.second.as_ref(), "second checkpoint")?;
        Ok(ConsistencyFile {
            first_size: first_checkpoint.tree_size,
            second_size: second_checkpoint.tree_size,
            first_root: first_checkpoint.root_hash,
            second_root: second_checkpoint.root_hash,
            proof: hashes(&p.proof, "proof")?,
            first_checkpoint,
            second_checkpoint,
            service_key: ServiceKeyFile::new(service_key)?,
        })
    }
}

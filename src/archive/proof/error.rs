//! What can be wrong with a proof file: reading or writing it, building it
//! from the server's answer, and each check that can fail. The message says
//! what to do or what was changed.

use std::fmt;
use std::path::PathBuf;

use crate::evidence::FileError;

#[derive(Debug)]
pub enum ProofError {
    File(FileError),
    /// Not JSON, or a field is missing or malformed (a proof without its
    /// `leaf` or `document_id` is refused here).
    NotAProofFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The server's answer lacks a part of the proof.
    Missing(&'static str),
    /// Bytes that must decode as a protobuf message do not.
    Undecodable {
        what: &'static str,
        source: prost::DecodeError,
    },
    /// A hash from the server that is not 32 bytes.
    NotAHash {
        field: &'static str,
        len: usize,
    },

    /// The leaf does not hash to `leaf_hash`.
    LeafHash,
    /// The leaf is another document's entry.
    LeafOfAnotherDocument {
        leaf: String,
        file: String,
    },
    /// The audit path does not lead from the leaf to `root_hash`.
    InclusionPath {
        index: u64,
        size: u64,
    },
    /// The consistency proof does not connect the two roots.
    Consistency {
        first: u64,
        second: u64,
    },
    /// A checkpoint signed with a key other than the trusted one.
    UntrustedKey {
        named: String,
        trusted: String,
    },
    /// A checkpoint whose signature does not verify.
    BadSignature,
    /// The checkpoint signs another size or root than the proof's.
    CheckpointDisagrees {
        signed_size: u64,
        size: u64,
    },
    /// A readable copy of a checkpoint field differs from the signed bytes.
    ReadableCopyDiffers(&'static str),
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::File(e) => e.fmt(f),
            ProofError::NotAProofFile { path, source } => write!(
                f,
                "{} is not a proof file as `archive prove` or `archive consistency` writes it: {source}",
                path.display()
            ),
            ProofError::Missing(what) => write!(
                f,
                "the server's answer has no {what}; no proof file was written"
            ),
            ProofError::Undecodable { what, source } => {
                write!(f, "{what} does not decode: {source}")
            }
            ProofError::NotAHash { field, len } => write!(
                f,
                "{field}: a hash is 32 bytes, the server sent {len}"
            ),
            ProofError::LeafHash => f.write_str(
                "leaf does not hash to leaf_hash: the leaf or leaf_hash was changed",
            ),
            ProofError::LeafOfAnotherDocument { leaf, file } => write!(
                f,
                "the leaf is the archive entry of document {leaf:?}, not of {file:?}, the document the file is for"
            ),
            ProofError::InclusionPath { index, size } => write!(
                f,
                "the audit path does not lead from leaf {index} to root_hash in a tree of {size} leaves"
            ),
            ProofError::Consistency { first, second } => write!(
                f,
                "the proof does not connect the root of {first} leaves to the root of {second}"
            ),
            ProofError::UntrustedKey { named, trusted } => write!(
                f,
                "signed with service key {named}, but the key you trust is {trusted}: \
                 a forgery, or a checkpoint of another service or of a key since replaced \
                 (give that key's public half with --service-key)"
            ),
            ProofError::BadSignature => f.write_str(
                "the service's signature does not verify: its bytes or signature was changed",
            ),
            ProofError::CheckpointDisagrees { signed_size, size } => write!(
                f,
                "signs a tree of {signed_size} leaves and its root, which is not the proof's tree of {size} leaves and root"
            ),
            ProofError::ReadableCopyDiffers(field) => write!(
                f,
                "its readable {field} differs from the signed bytes: the file was changed"
            ),
        }
    }
}

impl std::error::Error for ProofError {}

impl From<FileError> for ProofError {
    fn from(e: FileError) -> Self {
        ProofError::File(e)
    }
}

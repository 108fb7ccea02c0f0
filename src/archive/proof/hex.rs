//! Bytes and hashes as lowercase hex in proof files; a hash that is not 32
//! bytes is refused when the file is read, naming what it is.

use serde::{Deserialize, Serialize};

use crate::merkle::Hash;

/// Bytes, as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HexBytes(pub Vec<u8>);

/// A SHA-256 hash, as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HexHash(pub Hash);

impl TryFrom<String> for HexBytes {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        hex::decode(&text)
            .map(HexBytes)
            .map_err(|e| format!("not hex: {e}"))
    }
}

impl From<HexBytes> for String {
    fn from(bytes: HexBytes) -> String {
        hex::encode(bytes.0)
    }
}

impl TryFrom<String> for HexHash {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let bytes = HexBytes::try_from(text)?.0;
        let len = bytes.len();
        bytes
            .try_into()
            .map(HexHash)
            .map_err(|_| format!("a hash is 32 bytes (64 hex digits), this one is {len} bytes"))
    }
}

impl From<HexHash> for String {
    fn from(hash: HexHash) -> String {
        hex::encode(hash.0)
    }
}

impl HexHash {
    /// A hash the server sent, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8], field: &'static str) -> Result<HexHash, super::ProofError> {
        bytes
            .try_into()
            .map(HexHash)
            .map_err(|_| super::ProofError::NotAHash {
                field,
                len: bytes.len(),
            })
    }
}

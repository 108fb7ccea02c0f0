//! The tamper-evident archive: an append-only Merkle log (RFC 9162) of
//! every accepted document, with signed checkpoints and proofs that anyone
//! can check offline.

pub mod merkle;

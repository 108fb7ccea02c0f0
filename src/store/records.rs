//! The values stored in sled, encoded with prost. Field tags are part of the
//! on-disk format: add fields with new tags, never renumber.

use prost::Message;

/// One accepted document: the sender's bytes, exactly as received, and what
/// the service decided about them. Attachment contents are stored apart.
#[derive(Clone, PartialEq, Message)]
pub struct StoredDocument {
    #[prost(bytes = "vec", tag = "1")]
    pub document_bytes: Vec<u8>,
    /// Sender's organisation code.
    #[prost(string, tag = "2")]
    pub sender: String,
    #[prost(message, repeated, tag = "3")]
    pub deliveries: Vec<StoredDelivery>,
    #[prost(int64, tag = "4")]
    pub accepted_at_ms: i64,
    /// SHA-256 over the document bytes and every attachment's digest: what an
    /// idempotent retry must match.
    #[prost(bytes = "vec", tag = "5")]
    pub content_digest: Vec<u8>,
    #[prost(uint32, tag = "6")]
    pub attachment_count: u32,
    /// SHA-256 of each attachment, in order: the name of its file.
    #[prost(bytes = "vec", repeated, tag = "7")]
    pub attachment_sha256: Vec<Vec<u8>>,
    /// The sender's signature over the document bytes, and its key.
    #[prost(string, tag = "8")]
    pub signing_key_id: String,
    #[prost(bytes = "vec", tag = "9")]
    pub signature: Vec<u8>,
    /// The service's receipt (an encoded `lienthong.v1.Receipt`) and its
    /// signature, made in the same transaction as everything else.
    #[prost(bytes = "vec", tag = "10")]
    pub receipt: Vec<u8>,
    #[prost(bytes = "vec", tag = "11")]
    pub receipt_signature: Vec<u8>,
    /// The document's number: as in its header, or the one the service
    /// assigned when the header carries 0 (the signed bytes stay as sent).
    #[prost(uint64, tag = "12")]
    pub number: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct StoredDelivery {
    /// Recipient's organisation code.
    #[prost(string, tag = "1")]
    pub recipient: String,
    #[prost(uint32, tag = "2")]
    pub arrival_year: u32,
    #[prost(uint64, tag = "3")]
    pub arrival_number: u64,
}

/// One entry of an organisation's event log.
#[derive(Clone, PartialEq, Message)]
pub struct StoredEvent {
    /// The organisation whose mailbox changed.
    #[prost(string, tag = "1")]
    pub org: String,
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// An [`EventKind`].
    #[prost(enumeration = "EventKind", tag = "3")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub document_id: Vec<u8>,
    #[prost(int64, tag = "5")]
    pub at_ms: i64,
    #[prost(string, tag = "6")]
    pub sender: String,
    #[prost(uint32, tag = "7")]
    pub arrival_year: u32,
    #[prost(uint64, tag = "8")]
    pub arrival_number: u64,
}

/// What happened to a mailbox. The numbers are part of the on-disk format;
/// `notify` maps them to the API's `EventKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EventKind {
    Unspecified = 0,
    /// A document arrived in the organisation's inbox.
    DocumentArrived = 1,
}

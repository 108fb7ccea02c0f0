//! The values stored, encoded with prost. Field tags are part of the
//! on-disk format: add fields with new tags, never renumber.

#[allow(unused_imports)] // for the doc links
use crate::lifecycle;

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
    /// When its sender revoked it (0: never). A revoked, updated or
    /// replaced document is frozen: see `lifecycle`.
    #[prost(int64, tag = "12")]
    pub revoked_at_ms: i64,
    /// Why it is frozen: a [`lifecycle::Frozen`] as 1 revoked, 2 updated,
    /// 3 replaced (the edXML operation numbers); 0 not frozen.
    #[prost(int32, tag = "13")]
    pub frozen_by: i32,
    /// Documents that update or replace it, in the order they came.
    #[prost(bytes = "vec", repeated, tag = "14")]
    pub superseded_by: Vec<Vec<u8>>,
    /// The document this one updates or replaces, and how (2 or 3).
    #[prost(bytes = "vec", tag = "15")]
    pub supersedes: Vec<u8>,
    #[prost(int32, tag = "16")]
    pub supersedes_operation: i32,
    /// Documents that reply to it (ResponseFor), in the order they came.
    #[prost(bytes = "vec", repeated, tag = "17")]
    pub replies: Vec<Vec<u8>>,
    /// The document's number: as in its header, or the one the service
    /// assigned when the header carries 0 (the signed bytes stay as sent).
    #[prost(uint64, tag = "18")]
    pub number: u64,
    /// Recorded from paper: `document_bytes` are a signed
    /// `lienthong.v1.PaperRecord`, not a `Document` (read both through
    /// `document::header`). An incoming one has one delivery, to the
    /// organisation that recorded it; an outgoing one none.
    #[prost(bool, tag = "19")]
    pub paper: bool,
    /// The document's leaf in the archive log. Absent in documents a
    /// store-2 build wrote, whose leaf is in the `archive_index` keyspace.
    #[prost(uint64, optional, tag = "20")]
    pub archive_leaf: Option<u64>,
}

impl StoredDocument {
    /// A paper document recorded by its recipient: its `sender` only says
    /// where it came from (see `paper`) and takes no part in it.
    pub fn incoming_paper(&self) -> bool {
        self.paper && !self.deliveries.is_empty()
    }

    /// Whether `org` is a party to it: its sender (unless the sender only
    /// names where an incoming paper document came from) or a recipient.
    pub fn is_party(&self, org: &str) -> bool {
        (self.sender == org && !self.incoming_paper())
            || self.deliveries.iter().any(|d| d.recipient == org)
    }
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
    /// The recipient's current status: a [`lifecycle::Code`] number; 0 for
    /// 01 arrived, which every delivery starts with.
    #[prost(uint32, tag = "4")]
    pub status: u32,
    #[prost(int64, tag = "5")]
    pub status_at_ms: i64,
    /// Its 15/16 answer to a freeze, if given (0: none).
    #[prost(uint32, tag = "6")]
    pub answer: u32,
    /// From 04: the unit or person assigned, and the handling deadline
    /// (YYYY-MM-DD) if one was set.
    #[prost(string, tag = "7")]
    pub assigned_to: String,
    #[prost(string, tag = "8")]
    pub deadline: String,
}

/// One signed change in a document's life: a recipient's status change or
/// answer, or the sender's revocation. Kept under `statuses`.
#[derive(Clone, PartialEq, Message)]
pub struct StoredStatus {
    /// The organisation that signed it, and its n-th change of the document.
    #[prost(string, tag = "1")]
    pub org: String,
    #[prost(uint32, tag = "2")]
    pub change: u32,
    /// A [`lifecycle::Code`] number, or 0 for a revocation.
    #[prost(uint32, tag = "3")]
    pub code: u32,
    #[prost(bool, tag = "4")]
    pub revocation: bool,
    /// The signed message, byte for byte, and its signature.
    #[prost(bytes = "vec", tag = "5")]
    pub status_bytes: Vec<u8>,
    #[prost(string, tag = "6")]
    pub signing_key_id: String,
    #[prost(bytes = "vec", tag = "7")]
    pub signature: Vec<u8>,
    #[prost(int64, tag = "8")]
    pub accepted_at_ms: i64,
    /// The service's receipt, from the [`super::Sealer`], and its leaf.
    #[prost(bytes = "vec", tag = "9")]
    pub receipt: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    pub receipt_signature: Vec<u8>,
    #[prost(uint64, tag = "11")]
    pub leaf_index: u64,
    /// What the report counted for it (see `counters`): set when it was a
    /// registration (the first move out of 01 to 03–06), true if on time;
    /// and when it was a completion (06), true if on time. Absent on
    /// changes stored before the report kept them.
    #[prost(bool, optional, tag = "12")]
    pub registration_on_time: Option<bool>,
    #[prost(bool, optional, tag = "13")]
    pub completion_on_time: Option<bool>,
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
    /// For a status change: the new code, and the organisation that made it.
    #[prost(uint32, tag = "9")]
    pub status: u32,
    #[prost(string, tag = "10")]
    pub by: String,
    /// For an update or replacement: the new document.
    #[prost(bytes = "vec", tag = "11")]
    pub superseded_by: Vec<u8>,
}

/// What happened to a mailbox. The numbers are part of the on-disk format;
/// `notify` maps them to the API's `EventKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EventKind {
    Unspecified = 0,
    /// A document arrived in the organisation's inbox.
    DocumentArrived = 1,
    /// A recipient changed its status of a document (to the sender and to
    /// that recipient).
    StatusChanged = 2,
    /// A document the organisation received was revoked, updated or
    /// replaced by its sender.
    DocumentRevoked = 3,
    DocumentUpdated = 4,
    DocumentReplaced = 5,
}

/// One organisation's counts for one month (Vietnam time) of the events
/// dated in it, kept up to date by every commit (`counters`), so that a
/// report reads these records and never the documents.
#[derive(Clone, PartialEq, Message)]
pub struct StoredReportMonth {
    /// Documents it sent (each once, however many recipients), and
    /// deliveries it received, electronically or recorded from paper.
    #[prost(uint64, tag = "1")]
    pub sent_electronic: u64,
    #[prost(uint64, tag = "2")]
    pub sent_paper: u64,
    #[prost(uint64, tag = "3")]
    pub received_electronic: u64,
    #[prost(uint64, tag = "4")]
    pub received_paper: u64,
    /// Registrations (its first move of a delivery out of 01 to 03–06), on
    /// or before the Decree 30 due day, or after it.
    #[prost(uint64, tag = "5")]
    pub registered_on_time: u64,
    #[prost(uint64, tag = "6")]
    pub registered_late: u64,
    /// Registrations by time from arrival, one count per bucket of
    /// `counters::DELAY_BUCKETS_HOURS` (a missing tail counts 0).
    #[prost(uint64, repeated, tag = "7")]
    pub registration_delays: Vec<u64>,
    /// Completions (06) on or before the due date, or after it.
    #[prost(uint64, tag = "8")]
    pub completed_on_time: u64,
    #[prost(uint64, tag = "9")]
    pub completed_late: u64,
    /// Rejections (02).
    #[prost(uint64, tag = "10")]
    pub rejected: u64,
}

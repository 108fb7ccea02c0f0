//! The rules of a commit, written once for every engine against [`Txn`]:
//! idempotency, Decree 30 numbering, arrival numbers, each recipient's
//! event log, the outbox, the sealed receipt, and the archive append.
//!
//! Each function runs inside one transaction that the committer opens, so
//! everything a send writes is committed together or not at all. Nothing
//! here knows how an engine stores a key.

use std::cell::RefCell;

use super::engine::{Space, Txn};
use super::keys;
use super::records::{EventKind, StoredDelivery, StoredDocument, StoredEvent};
use super::{Accepted, DocId, NewDocument, Sealer, SendOutcome};
use crate::clock;
use crate::error::{Error, Result};
use crate::merkle::{self, Hash, Nodes};

/// The value of a counter, 0 if never set.
pub(super) fn counter(txn: &mut dyn Txn, key: &[u8]) -> Result<u64> {
    match txn.get(Space::Counters, key)? {
        None => Ok(0),
        Some(v) => keys::be_u64(&v).ok_or_else(|| corrupt_counter(key)),
    }
}

pub(super) fn corrupt_counter(key: &[u8]) -> Error {
    Error::storage(format!(
        "the counter {:?} is not 8 bytes",
        String::from_utf8_lossy(key)
    ))
}

/// Increments a counter and returns its new value.
fn next(txn: &mut dyn Txn, key: &[u8]) -> Result<u64> {
    let value = counter(txn, key)? + 1;
    txn.put(Space::Counters, key, &value.to_be_bytes())?;
    Ok(value)
}

fn stored_document(txn: &mut dyn Txn, id: &DocId) -> Result<StoredDocument> {
    let bytes = txn
        .get(Space::Documents, &id.0)?
        .ok_or_else(|| Error::storage(format!("document {id} is indexed but missing")))?;
    super::decode_document(&bytes)
}

/// Applies one send. Outcomes other than `Accepted` write nothing.
pub(super) fn send(
    txn: &mut dyn Txn,
    new: &NewDocument,
    sealer: &dyn Sealer,
    events_kept: u64,
    now_ms: i64,
) -> Result<(SendOutcome, Vec<StoredEvent>)> {
    if let Some(key) = &new.idempotency_key {
        if let Some(v) = txn.get(Space::Idempotency, &keys::idempotency(&new.sender, key))? {
            let id = DocId::from_slice(&v)?;
            return if v.get(16..) == Some(&new.content_digest[..]) {
                Ok((
                    SendOutcome::Duplicate(id, stored_document(txn, &id)?),
                    Vec::new(),
                ))
            } else {
                Ok((SendOutcome::KeyReused(id), Vec::new()))
            };
        }
    }
    let number = match claim_number(txn, new)? {
        Ok(claim) => claim,
        Err(taken) => return Ok((SendOutcome::NumberTaken(taken), Vec::new())),
    };

    // Accepted now: the time, and so the arrival year, is fixed in the same
    // transaction as the arrival numbers.
    let accepted_at_ms = now_ms;
    if new
        .key_usable_until_ms
        .is_some_and(|until| accepted_at_ms >= until)
    {
        return Ok((SendOutcome::KeyNoLongerUsable, Vec::new()));
    }
    let arrival_year = clock::vietnam_date(accepted_at_ms).year() as u16;
    let mut deliveries = Vec::with_capacity(new.recipients.len());
    let mut events = Vec::with_capacity(new.recipients.len());
    for recipient in &new.recipients {
        let arrival_number = next(txn, &keys::arrival_counter(recipient, arrival_year))?;
        txn.put(
            Space::Inbox,
            &keys::inbox(recipient, arrival_year, arrival_number),
            &new.id.0,
        )?;
        deliveries.push(StoredDelivery {
            recipient: recipient.to_string(),
            arrival_year: u32::from(arrival_year),
            arrival_number,
        });
        let event = StoredEvent {
            org: recipient.to_string(),
            seq: 0, // set by `append_event`
            kind: EventKind::DocumentArrived as i32,
            document_id: new.id.0.to_vec(),
            at_ms: accepted_at_ms,
            sender: new.sender.to_string(),
            arrival_year: u32::from(arrival_year),
            arrival_number,
        };
        events.push(append_event(txn, recipient, event, events_kept)?);
    }
    let seq = next(txn, &keys::outbox_counter(&new.sender))?;
    txn.put(Space::Outbox, &keys::outbox(&new.sender, seq), &new.id.0)?;

    let sealed = sealer.seal(&Accepted {
        new,
        number: number.number,
        accepted_at_ms,
        deliveries: &deliveries,
    })?;
    let document = StoredDocument {
        document_bytes: new.document_bytes.clone(),
        sender: new.sender.to_string(),
        deliveries,
        accepted_at_ms,
        content_digest: new.content_digest.to_vec(),
        attachment_count: new.attachments.len() as u32,
        attachment_sha256: new.attachments.iter().map(|a| a.sha256.to_vec()).collect(),
        signing_key_id: new.signing_key_id.clone(),
        signature: new.signature.clone(),
        receipt: sealed.receipt,
        receipt_signature: sealed.signature,
        number: number.number,
    };
    txn.put(
        Space::Documents,
        &new.id.0,
        &prost::Message::encode_to_vec(&document),
    )?;
    let index = append_leaf(txn, &sealed.archive_leaf)?;
    txn.put(Space::ArchiveIndex, &new.id.0, &index.to_be_bytes())?;
    for attachment in &new.attachments {
        if let Some(content) = &attachment.content {
            txn.put(Space::SmallAttachments, &attachment.sha256, content)?;
        }
    }
    if let Some(key) = &new.idempotency_key {
        let mut value = new.id.0.to_vec();
        value.extend_from_slice(&new.content_digest);
        txn.put(
            Space::Idempotency,
            &keys::idempotency(&new.sender, key),
            &value,
        )?;
    }
    number.record(txn, &new.id)?;
    Ok((SendOutcome::Accepted(new.id, document), events))
}

/// A number of the sender's series, free for the document's notation.
struct NumberClaim {
    number: u64,
    key: Vec<u8>,
    issued_key: Vec<u8>,
    highest: u64,
}

impl NumberClaim {
    /// Takes the number, and raises the series' highest if it is above.
    fn record(&self, txn: &mut dyn Txn, id: &DocId) -> Result<()> {
        txn.put(Space::Numbering, &self.key, &id.0)?;
        if self.number > self.highest {
            txn.put(
                Space::Counters,
                &self.issued_key,
                &self.number.to_be_bytes(),
            )?;
        }
        Ok(())
    }
}

/// The document's number: the one it gives, or, for 0, the highest of its
/// series plus one, assigned here, in the one writer's transaction, so that
/// concurrent sends never get the same one and the series has no gap.
/// `Err` names the document that already holds it. Writes nothing.
fn claim_number(txn: &mut dyn Txn, new: &NewDocument) -> Result<Result<NumberClaim, DocId>> {
    let n = &new.numbering;
    let issued_key = keys::issued_counter(&new.sender, n.year, n.series);
    let highest = counter(txn, &issued_key)?;
    let number = match n.number {
        Some(number) => number,
        None if highest >= crate::document::MAX_NUMBER => {
            return Err(Error::exhausted(
                "document.number",
                format!(
                    "the {} of {} is full: its last number, {}, is used",
                    n.series.describe(),
                    n.year,
                    crate::document::MAX_NUMBER
                ),
            ))
        }
        None => highest + 1,
    };
    let key = keys::numbering(&new.sender, n.year, n.series, number, &n.notation);
    if let Some(v) = txn.get(Space::Numbering, &key)? {
        return Ok(Err(DocId::from_slice(&v)?));
    }
    Ok(Ok(NumberClaim {
        number,
        key,
        issued_key,
        highest,
    }))
}

/// Gives `event` the next sequence of `org`'s log and stores it; once more
/// than `kept` are held, the oldest goes.
fn append_event(
    txn: &mut dyn Txn,
    org: &crate::directory::OrgCode,
    mut event: StoredEvent,
    kept: u64,
) -> Result<StoredEvent> {
    event.seq = next(txn, &keys::event_counter(org))?;
    txn.put(
        Space::Events,
        &keys::event(org, event.seq),
        &prost::Message::encode_to_vec(&event),
    )?;
    if event.seq > kept {
        txn.delete(Space::Events, &keys::event(org, event.seq - kept))?;
    }
    Ok(event)
}

/// The archive's perfect subtrees as the transaction sees them.
struct TxnNodes<'a, 'b>(RefCell<&'a mut (dyn Txn + 'b)>);

impl Nodes for TxnNodes<'_, '_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let value = self
            .0
            .borrow_mut()
            .get(Space::ArchiveNodes, &keys::archive_node(level, index))?;
        super::node_hash_of(level, index, value)
    }
}

/// Appends `leaf` to the archive log, storing the perfect subtrees it
/// completes; returns its index.
pub(super) fn append_leaf(txn: &mut dyn Txn, leaf: &[u8]) -> Result<u64> {
    let at = counter(txn, keys::ARCHIVE_SIZE)?;
    let completed = {
        let nodes = TxnNodes(RefCell::new(&mut *txn));
        merkle::appended_nodes(at, merkle::leaf_hash(leaf), |level, i| nodes.node(level, i))?
    };
    for (level, i, hash) in completed {
        txn.put(Space::ArchiveNodes, &keys::archive_node(level, i), &hash)?;
    }
    txn.put(Space::ArchiveLeaves, &at.to_be_bytes(), leaf)?;
    txn.put(Space::Counters, keys::ARCHIVE_SIZE, &(at + 1).to_be_bytes())?;
    Ok(at)
}

/// What [`checkpoint`] found or made.
pub(super) enum Checkpoint {
    /// Signed now, of this many leaves.
    Made(u64, Vec<u8>),
    /// Not due: the latest one (empty if none was ever made).
    Latest(Vec<u8>),
}

/// Signs and stores a checkpoint of the archive as it stands if `force` or
/// if `every` leaves were appended since the one of size `last`.
pub(super) fn checkpoint(
    txn: &mut dyn Txn,
    sealer: &dyn Sealer,
    last: u64,
    every: u64,
    force: bool,
    now_ms: i64,
) -> Result<Checkpoint> {
    let size = counter(txn, keys::ARCHIVE_SIZE)?;
    let due = size > last && (force || size - last >= every);
    if !due {
        return match txn.get(Space::Checkpoints, &last.to_be_bytes())? {
            Some(latest) => Ok(Checkpoint::Latest(latest)),
            None if force => Err(Error::not_found("a checkpoint (the archive is empty)")),
            None => Ok(Checkpoint::Latest(Vec::new())),
        };
    }
    let root = merkle::Tree::new(&TxnNodes(RefCell::new(&mut *txn))).root(size)?;
    let signed = sealer.seal_checkpoint(size, root, now_ms)?;
    txn.put(Space::Checkpoints, &size.to_be_bytes(), &signed)?;
    Ok(Checkpoint::Made(size, signed))
}

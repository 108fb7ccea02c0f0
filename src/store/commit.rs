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
use super::records::{EventKind, StoredDelivery, StoredDocument, StoredEvent, StoredStatus};
use super::{
    Accepted, AcceptedStatus, DocId, NewDocument, NewStatus, Sealer, SendOutcome, StatusOutcome,
};
use crate::clock;
use crate::directory::OrgCode;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Code, Frozen, State};
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
    find_document(txn, id)?
        .ok_or_else(|| Error::storage(format!("document {id} is indexed but missing")))
}

fn find_document(txn: &mut dyn Txn, id: &DocId) -> Result<Option<StoredDocument>> {
    txn.get(Space::Documents, &id.0)?
        .map(|bytes| super::decode_document(&bytes))
        .transpose()
}

fn put_document(txn: &mut dyn Txn, id: &DocId, document: &StoredDocument) -> Result<()> {
    txn.put(
        Space::Documents,
        &id.0,
        &prost::Message::encode_to_vec(document),
    )
}

/// Why a stored document is frozen, if it is.
pub(super) fn frozen(document: &StoredDocument) -> Option<Frozen> {
    match document.frozen_by {
        1 => Some(Frozen::Revoked),
        2 => Some(Frozen::Updated),
        3 => Some(Frozen::Replaced),
        _ => None,
    }
}

fn frozen_number(frozen: Frozen) -> i32 {
    match frozen {
        Frozen::Revoked => 1,
        Frozen::Updated => 2,
        Frozen::Replaced => 3,
    }
}

fn is_party(document: &StoredDocument, org: &OrgCode) -> bool {
    document.is_party(org.as_str())
}

/// The earlier documents a send refers to, read and checked before any
/// write, and changed after the new document is stored.
struct Referred {
    reply_to: Option<(DocId, StoredDocument)>,
    supersedes: Option<(DocId, Frozen, StoredDocument)>,
}

fn referred(txn: &mut dyn Txn, new: &NewDocument) -> Result<Referred> {
    let mut out = Referred {
        reply_to: None,
        supersedes: None,
    };
    if let Some(target) = new.reply_to {
        // Unknown and not the sender's to see read the same.
        let unknown = || {
            Error::invalid(
                "document.reply_to",
                format!("no document {target} that you sent or received"),
            )
        };
        let document = find_document(txn, &target)?.ok_or_else(unknown)?;
        if !is_party(&document, &new.sender) {
            return Err(unknown());
        }
        if frozen(&document) == Some(Frozen::Revoked) {
            return Err(Error::precondition(
                "document.reply_to",
                format!("document {target} was revoked by its sender and cannot be answered"),
            ));
        }
        out.reply_to = Some((target, document));
    }
    if let Some((target, how)) = new.supersedes {
        let unknown = || {
            Error::invalid(
                "document.supersedes.document_id",
                format!("no document {target} that you sent"),
            )
        };
        let document = find_document(txn, &target)?.ok_or_else(unknown)?;
        if document.sender != new.sender.as_str() {
            return Err(unknown());
        }
        // Once only: a document already updated or replaced is superseded
        // by its latest version. A revoked one may still be replaced once,
        // which links the replacement to it (it stays revoked).
        if let Some(latest) = document.superseded_by.last() {
            return Err(Error::precondition(
                "document.supersedes.document_id",
                format!(
                    "document {target} was already {} by {}; update or replace that one instead",
                    frozen(&document).map_or("superseded".to_owned(), |f| f.to_string()),
                    hex::encode(latest)
                ),
            ));
        }
        out.supersedes = Some((target, how, document));
    }
    Ok(out)
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
    // Checked here, in the same transaction as the writes, so that a
    // revocation cannot slip in between the check and the reply.
    let referred = referred(txn, new)?;

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
            ..StoredDelivery::default()
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
            ..StoredEvent::default()
        };
        events.push(append_event(txn, recipient, event, events_kept)?);
    }
    super::unread::on_send(txn, new, &deliveries, referred.supersedes.as_ref())?;
    file_in_outbox(txn, new)?;
    super::counters::on_send(txn, new, accepted_at_ms)?;

    let sealed = sealer.seal(&Accepted {
        new,
        number: number.number,
        accepted_at_ms,
        deliveries: &deliveries,
    })?;
    let (supersedes, supersedes_operation) = match &referred.supersedes {
        Some((target, how, _)) => (target.0.to_vec(), frozen_number(*how)),
        None => (Vec::new(), 0),
    };
    let document = StoredDocument {
        supersedes,
        supersedes_operation,
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
        paper: new.paper,
        // In the record rather than under a key of its own: one key less
        // per document, and sled's memory grows with the number of keys.
        archive_leaf: Some(append_leaf(txn, &sealed.archive_leaf)?),
        ..StoredDocument::default()
    };
    put_document(txn, &new.id, &document)?;
    for attachment in &new.attachments {
        match &attachment.content {
            Some(content) => txn.put(Space::SmallAttachments, &attachment.sha256, content)?,
            // A file: from now on a document refers to it (the first one
            // to is recorded), so it is never removed.
            None => {
                if txn
                    .get(Space::AttachmentFiles, &attachment.sha256)?
                    .is_none()
                {
                    txn.put(Space::AttachmentFiles, &attachment.sha256, &new.id.0)?;
                }
            }
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

    // The earlier documents learn of this one. Both may be the same
    // document: change one copy of it.
    let mut changed: Vec<(DocId, StoredDocument)> = Vec::new();
    if let Some((target, earlier)) = referred.reply_to {
        changed.push((target, earlier));
        if let Some((_, earlier)) = changed.last_mut() {
            earlier.replies.push(new.id.0.to_vec());
        }
    }
    if let Some((target, how, earlier)) = referred.supersedes {
        let index = match changed.iter().position(|(id, _)| *id == target) {
            Some(index) => index,
            None => {
                changed.push((target, earlier));
                changed.len() - 1
            }
        };
        let earlier = &mut changed[index].1;
        earlier.superseded_by.push(new.id.0.to_vec());
        if earlier.frozen_by == 0 {
            earlier.frozen_by = frozen_number(how);
        }
        let kind = match how {
            Frozen::Replaced => EventKind::DocumentReplaced,
            _ => EventKind::DocumentUpdated,
        };
        for delivery in earlier.deliveries.clone() {
            let recipient = stored_org(&delivery.recipient)?;
            let event = StoredEvent {
                org: delivery.recipient.clone(),
                kind: kind as i32,
                document_id: target.0.to_vec(),
                at_ms: accepted_at_ms,
                sender: new.sender.to_string(),
                arrival_year: delivery.arrival_year,
                arrival_number: delivery.arrival_number,
                superseded_by: new.id.0.to_vec(),
                ..StoredEvent::default()
            };
            events.push(append_event(txn, &recipient, event, events_kept)?);
        }
    }
    for (id, earlier) in &changed {
        put_document(txn, id, earlier)?;
    }
    super::deadlines::index_sent(txn, new, &document, &changed)?;
    Ok((SendOutcome::Accepted(new.id, document), events))
}

fn stored_org(code: &str) -> Result<OrgCode> {
    OrgCode::parse(code)
        .ok_or_else(|| Error::storage(format!("a stored organisation code {code:?} is malformed")))
}

/// Applies one status change or revocation. Outcomes other than `Accepted`
/// write nothing.
pub(super) fn status(
    txn: &mut dyn Txn,
    new: &NewStatus,
    sealer: &dyn Sealer,
    events_kept: u64,
    now_ms: i64,
) -> Result<(StatusOutcome, Vec<StoredEvent>)> {
    let Some(mut document) = find_document(txn, &new.document)? else {
        return Ok((StatusOutcome::NotFound, Vec::new()));
    };
    let from = new.from.as_str();
    let frozen_now = frozen(&document);
    let delivery_index = document.deliveries.iter().position(|d| d.recipient == from);
    match (new.code, delivery_index) {
        (None, _) => {
            if document.incoming_paper() || document.sender != from {
                return Ok((StatusOutcome::NotFound, Vec::new()));
            }
            if let Some(frozen) = frozen_now {
                return Ok((StatusOutcome::AlreadyFrozen(frozen), Vec::new()));
            }
        }
        (Some(_), None) => return Ok((StatusOutcome::NotFound, Vec::new())),
        (Some(code), Some(i)) => {
            let delivery = &document.deliveries[i];
            let state = State {
                status: Code::from_number(delivery.status).unwrap_or(Code::Arrived),
                frozen: frozen_now,
                answer: Code::from_number(delivery.answer),
            };
            if let Err(refused) = lifecycle::check(&state, code) {
                return Ok((StatusOutcome::Refused(refused), Vec::new()));
            }
        }
    }
    if new.key_usable_until_ms.is_some_and(|until| now_ms >= until) {
        return Ok((StatusOutcome::KeyNoLongerUsable, Vec::new()));
    }

    let change = u32::try_from(next(
        txn,
        &keys::status_counter(&new.document.0, &new.from),
    )?)
    .map_err(|_| Error::storage("a change counter passed u32"))?;
    let sealed = sealer.seal_status(&AcceptedStatus {
        new,
        change,
        accepted_at_ms: now_ms,
    })?;
    let leaf_index = append_leaf(txn, &sealed.archive_leaf)?;
    let counted = super::counters::on_status(txn, new, &document, delivery_index, now_ms)?;
    let stored = StoredStatus {
        org: from.to_owned(),
        change,
        code: new.code.map_or(0, |c| c as u32),
        revocation: new.code.is_none(),
        status_bytes: new.status_bytes.clone(),
        signing_key_id: new.signing_key_id.clone(),
        signature: new.signature.clone(),
        accepted_at_ms: now_ms,
        receipt: sealed.receipt,
        receipt_signature: sealed.signature,
        leaf_index,
        registration_on_time: counted.registration_on_time,
        completion_on_time: counted.completion_on_time,
    };
    txn.put(
        Space::Statuses,
        &keys::status(&new.document.0, &new.from, change),
        &prost::Message::encode_to_vec(&stored),
    )?;

    super::unread::on_status(txn, new, &document)?;
    let mut events = Vec::new();
    let sender = document.sender.clone();
    let event = |org: &str, kind: EventKind, delivery: &StoredDelivery| StoredEvent {
        org: org.to_owned(),
        kind: kind as i32,
        document_id: new.document.0.to_vec(),
        at_ms: now_ms,
        sender: sender.clone(),
        arrival_year: delivery.arrival_year,
        arrival_number: delivery.arrival_number,
        status: stored.code,
        by: from.to_owned(),
        ..StoredEvent::default()
    };
    match (new.code, delivery_index) {
        (None, _) => {
            document.revoked_at_ms = now_ms;
            document.frozen_by = frozen_number(Frozen::Revoked);
            for delivery in &document.deliveries {
                let e = event(&delivery.recipient, EventKind::DocumentRevoked, delivery);
                events.push(append_event(
                    txn,
                    &stored_org(&delivery.recipient)?,
                    e,
                    events_kept,
                )?);
            }
        }
        (Some(code), Some(i)) => {
            let delivery = &mut document.deliveries[i];
            if matches!(code, Code::Agreed | Code::Refused) {
                delivery.answer = code as u32;
            } else {
                delivery.status = code as u32;
                delivery.status_at_ms = now_ms;
                if code == Code::Assigned {
                    delivery.assigned_to = new.assigned_to.clone();
                    delivery.deadline = new.deadline.clone();
                }
            }
            let delivery = document.deliveries[i].clone();
            // The sender follows it; the recipient's own stream shows it too.
            for org in followers(&document, &delivery) {
                let e = event(&org, EventKind::StatusChanged, &delivery);
                events.push(append_event(txn, &stored_org(&org)?, e, events_kept)?);
            }
        }
        // Returned above, before any write.
        (Some(_), None) => return Err(Error::storage("a status lost its delivery")),
    }
    super::deadlines::index_status(txn, &new.document, &document, new.code.and(delivery_index))?;
    put_document(txn, &new.document, &document)?;
    Ok((StatusOutcome::Accepted(stored), events))
}

/// Puts a document in its sender's outbox: every document but an incoming
/// paper one, whose sender only names where it came from.
fn file_in_outbox(txn: &mut dyn Txn, new: &NewDocument) -> Result<()> {
    if new.incoming_paper() {
        return Ok(());
    }
    let seq = next(txn, &keys::outbox_counter(&new.sender))?;
    txn.put(Space::Outbox, &keys::outbox(&new.sender, seq), &new.id.0)
}

/// Who hears of a recipient's status change: the sender, which follows
/// it (not the sender named by an incoming paper record, which takes no
/// part in it), and the recipient's own stream.
fn followers(document: &StoredDocument, delivery: &StoredDelivery) -> Vec<String> {
    let mut orgs = vec![delivery.recipient.clone()];
    if document.is_party(&document.sender) && document.sender != delivery.recipient {
        orgs.insert(0, document.sender.clone());
    }
    orgs
}

/// A number of the sender's series, free for the document's notation.
struct NumberClaim {
    number: u64,
    key: Vec<u8>,
    issued_key: Vec<u8>,
    highest: u64,
}

impl NumberClaim {
    /// An incoming paper document keeps the number printed on it: it takes
    /// none of its issuer's series, which the service does not keep.
    fn unnumbered(new: &NewDocument) -> Option<NumberClaim> {
        new.incoming_paper().then(|| NumberClaim {
            number: new.numbering.number.unwrap_or(0),
            key: Vec::new(),
            issued_key: Vec::new(),
            highest: 0,
        })
    }

    /// Takes the number, and raises the series' highest if it is above.
    fn record(&self, txn: &mut dyn Txn, id: &DocId) -> Result<()> {
        if self.key.is_empty() {
            return Ok(()); // unnumbered
        }
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
    if let Some(claim) = NumberClaim::unnumbered(new) {
        return Ok(Ok(claim));
    }
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
    org: &OrgCode,
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
    /// Not due: the latest one, of this many leaves (empty if none was
    /// ever made).
    Latest(u64, Vec<u8>),
}

/// Signs and stores a checkpoint of the archive as it stands if `force` or
/// if `every` leaves were appended since the latest.
///
/// The latest checkpoint's size is read from the store (counter
/// `"checkpoint"`), not taken from the caller, whose memory of it may be
/// old when other front ends make checkpoints too; `last` is only for a
/// store written before that counter.
pub(super) fn checkpoint(
    txn: &mut dyn Txn,
    sealer: &dyn Sealer,
    last: u64,
    every: u64,
    force: bool,
    now_ms: i64,
) -> Result<Checkpoint> {
    let last = match txn.get(Space::Counters, keys::LAST_CHECKPOINT)? {
        Some(v) => keys::be_u64(&v).ok_or_else(|| corrupt_counter(keys::LAST_CHECKPOINT))?,
        None => last,
    };
    let size = counter(txn, keys::ARCHIVE_SIZE)?;
    let due = size > last && (force || size - last >= every);
    if !due {
        return match txn.get(Space::Checkpoints, &last.to_be_bytes())? {
            Some(latest) => Ok(Checkpoint::Latest(last, latest)),
            None if force => Err(Error::not_found("a checkpoint (the archive is empty)")),
            None => Ok(Checkpoint::Latest(last, Vec::new())),
        };
    }
    let root = merkle::Tree::new(&TxnNodes(RefCell::new(&mut *txn))).root(size)?;
    let signed = sealer.seal_checkpoint(size, root, now_ms)?;
    txn.put(Space::Checkpoints, &size.to_be_bytes(), &signed)?;
    txn.put(Space::Counters, keys::LAST_CHECKPOINT, &size.to_be_bytes())?;
    Ok(Checkpoint::Made(size, signed))
}

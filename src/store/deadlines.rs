//! The deadlines index: for each open document a recipient holds, an entry
//! under the date it is due, so that "what is late or due within N days"
//! reads one range of keys up to that date — the entries due, not every
//! document.
//!
//! Two kinds, both kept inside the commit that changes what they depend on:
//! - handling: dated by the assignment's deadline (04) if one was set, else
//!   by the document's own due date (header `due_date`); while the delivery
//!   is open (not 02 rejected, not 06 completed);
//! - registration: while the delivery stands at 01, dated by its *arrival
//!   date* (the acceptance time the commit fixed, in Vietnam). The commit
//!   has no calendar: the reader applies the working days to that date
//!   (the registration is due the next working day, so after it), and a
//!   change of the holidays file applies to documents already stored.
//!
//! A frozen document (revoked, updated, replaced) has no entry. The entries
//! are only a way to find candidates: a reader judges each against the
//! document's durable record (see [`Store::deadline_entries`]).

use time::Date;

use super::engine::{Engine, Order, Space, Txn};
use super::keys;
use super::records::{StoredDelivery, StoredDocument};
use super::{DocId, NewDocument, Store};
use crate::clock;
use crate::directory::OrgCode;
use crate::error::{Error, Result};

/// What a recipient must do by an entry's date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadlineKind {
    /// Handle the document (its due date, or the assignment's deadline).
    Handling = 1,
    /// Register it (entry dated by the arrival date).
    Registration = 2,
}

impl DeadlineKind {
    fn from_byte(b: u8) -> Option<DeadlineKind> {
        match b {
            1 => Some(DeadlineKind::Handling),
            2 => Some(DeadlineKind::Registration),
            _ => None,
        }
    }
}

/// One entry of the index as stored: a candidate, to be judged against the
/// document's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineEntry {
    /// The key's date: the due date for handling, the arrival date for
    /// registration.
    pub date: Date,
    pub org: OrgCode,
    pub id: DocId,
    pub kind: DeadlineKind,
}

/// The header's due date of a stored document, if it has one.
fn header_due_date(document: &StoredDocument) -> Result<Option<Date>> {
    let header = crate::document::header(document.paper, &document.document_bytes)
        .map_err(|e| Error::storage(format!("a stored document does not decode: {e}")))?;
    Ok(clock::parse_date(&header.due_date))
}

/// The entries `delivery` of `document` has while it stands as it does,
/// each with its key date. `header_due` is the document's own due date.
pub fn open_deadlines(
    document: &StoredDocument,
    delivery: &StoredDelivery,
    header_due: Option<Date>,
) -> Vec<(DeadlineKind, Date)> {
    if document.frozen_by != 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(2);
    // Status 0 is 01 arrived, as every delivery starts.
    if delivery.status <= 1 {
        out.push((
            DeadlineKind::Registration,
            clock::vietnam_date(document.accepted_at_ms),
        ));
    }
    let closed = [
        crate::lifecycle::Code::Rejected as u32,
        crate::lifecycle::Code::Completed as u32,
    ];
    let due = clock::parse_date(&delivery.deadline).or(header_due);
    if let (false, Some(due)) = (closed.contains(&delivery.status), due) {
        out.push((DeadlineKind::Handling, due));
    }
    out
}

/// Puts the entries `delivery` should have and deletes those it may have
/// had: the registration one, and handling under the header's due date or
/// the assignment's deadline. `fresh`: a new document, nothing to delete.
fn reindex(
    txn: &mut dyn Txn,
    id: &DocId,
    document: &StoredDocument,
    delivery: &StoredDelivery,
    header_due: Option<Date>,
    fresh: bool,
) -> Result<()> {
    let org = OrgCode::parse(&delivery.recipient).ok_or_else(|| {
        Error::storage(format!(
            "a stored recipient code {:?} is malformed",
            delivery.recipient
        ))
    })?;
    let key = |(kind, date): (DeadlineKind, Date)| keys::deadline(date, &org, &id.0, kind as u8);
    let wanted: Vec<Vec<u8>> = open_deadlines(document, delivery, header_due)
        .into_iter()
        .map(key)
        .collect();
    for k in &wanted {
        txn.put(Space::Deadlines, k, &[])?;
    }
    if fresh {
        return Ok(());
    }
    let arrival = clock::vietnam_date(document.accepted_at_ms);
    let mut possible = vec![key((DeadlineKind::Registration, arrival))];
    possible.extend(header_due.map(|d| key((DeadlineKind::Handling, d))));
    possible
        .extend(clock::parse_date(&delivery.deadline).map(|d| key((DeadlineKind::Handling, d))));
    for k in possible.iter().filter(|k| !wanted.contains(k)) {
        txn.delete(Space::Deadlines, k)?;
    }
    Ok(())
}

/// After a send: the new document's entries, and none left for the
/// documents it updates or replaces (now frozen).
pub(super) fn index_sent(
    txn: &mut dyn Txn,
    new: &NewDocument,
    document: &StoredDocument,
    changed: &[(DocId, StoredDocument)],
) -> Result<()> {
    for delivery in &document.deliveries {
        reindex(txn, &new.id, document, delivery, new.due_date, true)?;
    }
    for (id, earlier) in changed.iter().filter(|(_, d)| d.frozen_by != 0) {
        let due = header_due_date(earlier)?;
        for delivery in &earlier.deliveries {
            reindex(txn, id, earlier, delivery, due, false)?;
        }
    }
    Ok(())
}

/// After a status change (of delivery `index`) or a revocation (`None`:
/// every delivery), with `document` as changed.
pub(super) fn index_status(
    txn: &mut dyn Txn,
    id: &DocId,
    document: &StoredDocument,
    index: Option<usize>,
) -> Result<()> {
    let due = header_due_date(document)?;
    let deliveries = match index {
        Some(i) => document.deliveries.get(i..=i).unwrap_or_default(),
        None => &document.deliveries,
    };
    for delivery in deliveries {
        reindex(txn, id, document, delivery, due, false)?;
    }
    Ok(())
}

/// Marks in `meta` a store whose deadlines index covers every document.
const INDEX_BUILT: &[u8] = b"deadlines-index";

/// Builds the index for documents stored before it existed, once: a store
/// written by an earlier build has documents and no entries. In batches of
/// documents, each one transaction; the mark is written last, so a build
/// cut short is done again (putting an entry twice changes nothing).
pub(super) fn build_index_once(engine: &dyn Engine) -> Result<()> {
    if engine.get(Space::Meta, INDEX_BUILT)?.is_some() {
        return Ok(());
    }
    super::each_document_batch(engine, |batch| {
        let mut documents = Vec::with_capacity(batch.len());
        for (id, document) in batch {
            let due = header_due_date(&document)?;
            documents.push((id, document, due));
        }
        engine.transact(&mut |txn| {
            for (id, document, due) in &documents {
                for delivery in &document.deliveries {
                    reindex(txn, id, document, delivery, *due, true)?;
                }
            }
            Ok(())
        })
    })?;
    engine.transact(&mut |txn| txn.put(Space::Meta, INDEX_BUILT, b"1"))?;
    engine.sync()
}

impl Store {
    /// The entries of the index dated from `from` up to and including
    /// `until`, by date, then organisation, then document. Committed entries, some perhaps
    /// not yet synced: judge each against [`Store::document`], which hides
    /// pending documents and shows changed ones as they stand durably (an
    /// entry a pending change just removed is missing for that moment).
    pub fn deadline_entries(&self, from: Date, until: Date) -> Result<Vec<DeadlineEntry>> {
        let start = keys::date_number(from).to_be_bytes();
        let end = (keys::date_number(until) + 1).to_be_bytes();
        self.engine
            .scan(
                Space::Deadlines,
                &start,
                Some(&end),
                Order::Ascending,
                usize::MAX,
            )?
            .into_iter()
            .map(|(key, _)| {
                entry(&key).ok_or_else(|| {
                    Error::storage(format!(
                        "the deadlines key {} is malformed",
                        hex::encode(&key)
                    ))
                })
            })
            .collect()
    }
}

fn entry(key: &[u8]) -> Option<DeadlineEntry> {
    let (number, org, id, kind) = keys::deadline_parts(key)?;
    let month = time::Month::try_from(u8::try_from(number / 100 % 100).ok()?).ok()?;
    let date = Date::from_calendar_date(
        i32::try_from(number / 10_000).ok()?,
        month,
        u8::try_from(number % 100).ok()?,
    )
    .ok()?;
    Some(DeadlineEntry {
        date,
        org,
        id: DocId(id),
        kind: DeadlineKind::from_byte(kind)?,
    })
}

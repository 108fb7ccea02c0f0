//! The `unread` index: each organisation's documents that it has not acted
//! on yet (status 01, not frozen), most urgent first (hỏa tốc > thượng
//! khẩn > khẩn > normal), then in order of arrival, so that the unread part
//! of an inbox is one range scan whatever the inbox's size.
//!
//! Kept inside the commit: an entry is added at delivery and removed at the
//! recipient's first status change or answer, and for every recipient when
//! the document is frozen (revoked, updated, replaced).

use super::engine::{Space, Txn};
use super::keys;
use super::records::{StoredDelivery, StoredDocument};
use super::{DocId, NewDocument, NewStatus};
use crate::directory::OrgCode;
use crate::error::{Error, Result};
use crate::lifecycle::Frozen;

/// At a send: the new document is unread by each recipient; the document
/// it updates or replaces, if any, is frozen and so read by none.
pub(super) fn on_send(
    txn: &mut dyn Txn,
    new: &NewDocument,
    deliveries: &[StoredDelivery],
    superseded: Option<&(DocId, Frozen, StoredDocument)>,
) -> Result<()> {
    for (recipient, delivery) in new.recipients.iter().zip(deliveries) {
        let key = keys::unread(
            recipient,
            new.urgency,
            year(delivery)?,
            delivery.arrival_number,
        );
        txn.put(Space::Unread, &key, &new.id.0)?;
    }
    if let Some((_, _, earlier)) = superseded {
        remove(txn, &earlier.deliveries)?;
    }
    Ok(())
}

/// At a status change, answer or revocation of `document` (its record as
/// it was before): the recipient that moved has acted on it; a revoked
/// document is unread by no one.
pub(super) fn on_status(
    txn: &mut dyn Txn,
    new: &NewStatus,
    document: &StoredDocument,
) -> Result<()> {
    match new.code {
        None => remove(txn, &document.deliveries),
        Some(_) => {
            let mine: Vec<StoredDelivery> = document
                .deliveries
                .iter()
                .filter(|d| d.recipient == new.from.as_str())
                .cloned()
                .collect();
            remove(txn, &mine)
        }
    }
}

/// Removes the entries of these deliveries. The urgency, part of the key,
/// is in the signed header, which the store does not decode: the key is
/// deleted under each of the four urgencies (point deletes, cheap).
fn remove(txn: &mut dyn Txn, deliveries: &[StoredDelivery]) -> Result<()> {
    for delivery in deliveries {
        let org = OrgCode::parse(&delivery.recipient).ok_or_else(|| {
            Error::storage(format!(
                "a stored organisation code {:?} is malformed",
                delivery.recipient
            ))
        })?;
        for urgency in 0..=keys::MOST_URGENT {
            let key = keys::unread(&org, urgency, year(delivery)?, delivery.arrival_number);
            txn.delete(Space::Unread, &key)?;
        }
    }
    Ok(())
}

fn year(delivery: &StoredDelivery) -> Result<u16> {
    u16::try_from(delivery.arrival_year).map_err(|_| {
        Error::storage(format!(
            "a stored arrival year {} is out of range",
            delivery.arrival_year
        ))
    })
}

/// Marks, in `meta`, that every document is in the index.
const INDEX_BUILT: &[u8] = b"unread-index";

/// A store written before the index existed gets it built once, from its
/// documents, when it is opened: every delivery still at 01 of a document
/// not frozen. In batches of 512 documents, each in one transaction, and
/// the mark last, so that an interrupted build simply runs again (its puts
/// are idempotent).
pub(super) fn build_index_once(engine: &dyn super::engine::Engine) -> Result<()> {
    if engine.get(Space::Meta, INDEX_BUILT)?.is_some() {
        return Ok(());
    }
    super::each_document_batch(engine, |batch| {
        let mut entries = Vec::new();
        for (id, document) in batch {
            if document.frozen_by != 0 {
                continue;
            }
            let header = crate::document::header(document.paper, &document.document_bytes)
                .map_err(|e| Error::storage(format!("a stored document does not decode: {e}")))?;
            let urgency = u8::try_from(header.urgency)
                .unwrap_or(0)
                .min(keys::MOST_URGENT);
            for delivery in &document.deliveries {
                if delivery.status == 0 && delivery.answer == 0 {
                    let org = OrgCode::parse(&delivery.recipient).ok_or_else(|| {
                        Error::storage(format!(
                            "a stored organisation code {:?} is malformed",
                            delivery.recipient
                        ))
                    })?;
                    entries.push((
                        keys::unread(&org, urgency, year(delivery)?, delivery.arrival_number),
                        id,
                    ));
                }
            }
        }
        engine.transact(&mut |txn| {
            for (key, id) in &entries {
                txn.put(Space::Unread, key, &id.0)?;
            }
            Ok(())
        })
    })?;
    engine.transact(&mut |txn| txn.put(Space::Meta, INDEX_BUILT, b"1"))?;
    engine.sync()
}

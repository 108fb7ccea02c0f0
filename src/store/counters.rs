//! The report counters: per organisation and per month (Vietnam time), how
//! many documents it sent and received (electronic and paper), how many it
//! registered on time or late and how long that took, how many it completed
//! on time or late, and how many it rejected.
//!
//! Kept inside the commit of each send and status change, in the same
//! transaction, so that they always agree with the documents; a report of a
//! year then reads O(organisations × months) records (keyspace `report`,
//! key `org ‖ year u16 ‖ month u8`) and never scans documents.
//!
//! Each event counts in the month of the instant the commit fixed for it:
//! a send at its acceptance, a status change at its acceptance. Whether a
//! registration or completion was on time needs working days, which the
//! commit does not know: the domain judges it and passes it in
//! [`NewStatus`] (`registration_on_time`, `completion_on_time`).

use std::collections::BTreeMap;

use super::engine::{Engine, Order, Space, Txn};
use super::keys;
use super::records::{StoredDocument, StoredReportMonth, StoredStatus};
use super::{NewDocument, NewStatus};
use crate::clock;
use crate::directory::OrgCode;
use crate::error::{Error, Result};
use crate::lifecycle::Code;

/// Upper bounds, in hours, of the buckets of the time from arrival to
/// registration: bucket `i` counts delays `< DELAY_BUCKETS_HOURS[i]` hours
/// and at least the bound before it; one more bucket counts the rest
/// (a month or more). Coarse on purpose: a median is estimated from them
/// (see `estimated_median_hours`).
pub const DELAY_BUCKETS_HOURS: [u64; 9] = [1, 4, 8, 24, 48, 72, 168, 336, 720];

/// The number of delay buckets, the open last one included.
pub const DELAY_BUCKETS: usize = DELAY_BUCKETS_HOURS.len() + 1;

/// The bucket of a delay of `ms` milliseconds.
fn delay_bucket(ms: i64) -> usize {
    let hours_ms = |h: u64| i64::try_from(h * 3_600_000).unwrap_or(i64::MAX);
    DELAY_BUCKETS_HOURS
        .iter()
        .position(|&h| ms < hours_ms(h))
        .unwrap_or(DELAY_BUCKETS_HOURS.len())
}

/// At a send: the sender sent one document, each recipient received one,
/// counted as paper or electronic by `new.paper`, in the month of
/// `accepted_at_ms`.
pub(super) fn on_send(txn: &mut dyn Txn, new: &NewDocument, accepted_at_ms: i64) -> Result<()> {
    count_send(
        &mut InTxn(txn),
        &new.sender,
        &new.recipients,
        new.paper,
        accepted_at_ms,
    )
}

/// The counting of a send, shared by the commit and the rebuild.
fn count_send(
    months: &mut dyn Months,
    sender: &OrgCode,
    recipients: &[OrgCode],
    paper: bool,
    accepted_at_ms: i64,
) -> Result<()> {
    // An incoming paper record counts at the organisation that recorded it
    // only: its `sender` just names where it came from, and that body, if
    // it is in the district, counts its own outgoing record.
    let incoming_paper = paper && !recipients.is_empty();
    if !incoming_paper {
        months.update(sender, accepted_at_ms, &mut |m| {
            if paper {
                m.sent_paper += 1;
            } else {
                m.sent_electronic += 1;
            }
        })?;
    }
    for recipient in recipients {
        months.update(recipient, accepted_at_ms, &mut |m| {
            if paper {
                m.received_paper += 1;
            } else {
                m.received_electronic += 1;
            }
        })?;
    }
    Ok(())
}

/// What the counters counted for one status change, kept on its stored
/// record so that the report's explanation lists exactly what was counted.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counted {
    /// A registration: whether on time.
    pub registration_on_time: Option<bool>,
    /// A completion: whether on time.
    pub completion_on_time: Option<bool>,
}

/// At a status change of `document` (its record as it was before the
/// change) accepted at `now_ms`: a rejection, a registration (the first
/// move out of 01 to 03–06), a completion. Answers and revocations count
/// nothing.
pub(super) fn on_status(
    txn: &mut dyn Txn,
    new: &NewStatus,
    document: &StoredDocument,
    delivery: Option<usize>,
    now_ms: i64,
) -> Result<Counted> {
    let (Some(code), Some(delivery)) =
        (new.code, delivery.and_then(|i| document.deliveries.get(i)))
    else {
        return Ok(Counted::default());
    };
    let was_arrived = delivery.status <= Code::Arrived as u32;
    let registers = was_arrived
        && matches!(
            code,
            Code::Registered | Code::Assigned | Code::InProgress | Code::Completed
        );
    if !(registers || matches!(code, Code::Rejected | Code::Completed)) {
        return Ok(Counted::default());
    }
    // Judged by the domain; a change it could not judge (none in
    // practice) counts as on time.
    let counted = Counted {
        registration_on_time: registers.then(|| new.registration_on_time.unwrap_or(true)),
        completion_on_time: (code == Code::Completed)
            .then(|| new.completion_on_time.unwrap_or(true)),
    };
    count_status(
        &mut InTxn(txn),
        &new.from,
        code == Code::Rejected,
        counted,
        now_ms.saturating_sub(document.accepted_at_ms),
        now_ms,
    )?;
    Ok(counted)
}

/// The counting of a status change, shared by the commit and the rebuild:
/// `delay_ms` is the time from the document's arrival to the change.
fn count_status(
    months: &mut dyn Months,
    from: &OrgCode,
    rejection: bool,
    counted: Counted,
    delay_ms: i64,
    at_ms: i64,
) -> Result<()> {
    let delay = delay_bucket(delay_ms);
    months.update(from, at_ms, &mut |m| {
        if rejection {
            m.rejected += 1;
        }
        if let Some(on_time) = counted.registration_on_time {
            if on_time {
                m.registered_on_time += 1;
            } else {
                m.registered_late += 1;
            }
            if m.registration_delays.len() < DELAY_BUCKETS {
                m.registration_delays.resize(DELAY_BUCKETS, 0);
            }
            m.registration_delays[delay] += 1;
        }
        match counted.completion_on_time {
            Some(true) => m.completed_on_time += 1,
            Some(false) => m.completed_late += 1,
            None => {}
        }
    })
}

/// Where counting writes: the commit's transaction, or the rebuild's
/// tally in memory.
trait Months {
    fn update(
        &mut self,
        org: &OrgCode,
        at_ms: i64,
        change: &mut dyn FnMut(&mut StoredReportMonth),
    ) -> Result<()>;
}

struct InTxn<'a>(&'a mut dyn Txn);

impl Months for InTxn<'_> {
    fn update(
        &mut self,
        org: &OrgCode,
        at_ms: i64,
        change: &mut dyn FnMut(&mut StoredReportMonth),
    ) -> Result<()> {
        update(self.0, org, at_ms, change)
    }
}

/// The rebuild's tally: every month record, by key.
#[derive(Default)]
struct Tally(BTreeMap<Vec<u8>, StoredReportMonth>);

impl Months for Tally {
    fn update(
        &mut self,
        org: &OrgCode,
        at_ms: i64,
        change: &mut dyn FnMut(&mut StoredReportMonth),
    ) -> Result<()> {
        change(self.0.entry(month_key(org, at_ms)?).or_default());
        Ok(())
    }
}

/// Reads, changes and writes back `org`'s record for the month of `at_ms`.
fn update(
    txn: &mut dyn Txn,
    org: &OrgCode,
    at_ms: i64,
    change: &mut dyn FnMut(&mut StoredReportMonth),
) -> Result<()> {
    let key = month_key(org, at_ms)?;
    let mut month = match txn.get(Space::Report, &key)? {
        Some(bytes) => decode(&bytes)?,
        None => StoredReportMonth::default(),
    };
    change(&mut month);
    txn.put(Space::Report, &key, &prost::Message::encode_to_vec(&month))
}

/// The key of `org`'s record for the month (Vietnam time) of `at_ms`.
fn month_key(org: &OrgCode, at_ms: i64) -> Result<Vec<u8>> {
    let date = clock::vietnam_date(at_ms);
    let year = u16::try_from(date.year())
        .map_err(|_| Error::storage(format!("the year {} is out of range", date.year())))?;
    Ok(keys::report(org, year, u8::from(date.month())))
}

/// Marks, in `meta`, that the counters count every document and change.
const COUNTERS_BUILT: &[u8] = b"report-counters";

/// A store written before the counters existed (or before this mark) gets
/// them counted once, from its documents and status changes, when it is
/// opened; otherwise its report would show nothing before the upgrade.
/// The tally is made in memory (one record per organisation and month:
/// small) by the same counting functions the commit uses, and replaces the
/// keyspace in one transaction with the mark, so an interrupted rebuild
/// simply runs again. On a store whose counters were kept all along, it
/// writes the same numbers. Changes stored before the report judged them
/// (`registration_on_time` absent) count as rejections only: whether they
/// were on time was never decided.
pub(super) fn rebuild_once(engine: &dyn Engine) -> Result<()> {
    if engine.get(Space::Meta, COUNTERS_BUILT)?.is_some() {
        return Ok(());
    }
    let mut tally = Tally::default();
    let mut documents = 0u64;
    each(engine, Space::Documents, &mut |_key, bytes| {
        let document = super::decode_document(bytes)?;
        documents += 1;
        let recipients = document
            .deliveries
            .iter()
            .map(|d| org_code(&d.recipient))
            .collect::<Result<Vec<_>>>()?;
        count_send(
            &mut tally,
            &org_code(&document.sender)?,
            &recipients,
            document.paper,
            document.accepted_at_ms,
        )
    })?;
    // Changes are keyed by document first: the document's arrival time is
    // read once per document.
    let mut arrival: Option<([u8; 16], i64)> = None;
    each(engine, Space::Statuses, &mut |key, bytes| {
        let status: StoredStatus = prost::Message::decode(bytes)
            .map_err(|e| Error::storage_from("a stored status change does not decode", e))?;
        if status.revocation {
            return Ok(());
        }
        let id: [u8; 16] = key
            .get(..16)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| Error::storage("a status key is malformed"))?;
        let arrived_at = match arrival {
            Some((doc, at)) if doc == id => at,
            _ => {
                let bytes = engine
                    .get(Space::Documents, &id)?
                    .ok_or_else(|| Error::storage("a status change has no document"))?;
                let at = super::decode_document(&bytes)?.accepted_at_ms;
                arrival = Some((id, at));
                at
            }
        };
        count_status(
            &mut tally,
            &org_code(&status.org)?,
            status.code == Code::Rejected as u32,
            Counted {
                registration_on_time: status.registration_on_time,
                completion_on_time: status.completion_on_time,
            },
            status.accepted_at_ms.saturating_sub(arrived_at),
            status.accepted_at_ms,
        )
    })?;
    let stale: Vec<Vec<u8>> = engine
        .scan(Space::Report, &[], None, Order::Ascending, usize::MAX)?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    engine.transact(&mut |txn| {
        for key in &stale {
            txn.delete(Space::Report, key)?;
        }
        for (key, month) in &tally.0 {
            txn.put(Space::Report, key, &prost::Message::encode_to_vec(month))?;
        }
        txn.put(Space::Meta, COUNTERS_BUILT, b"1")
    })?;
    engine.sync()?;
    if documents > 0 {
        tracing::info!(
            documents,
            months = tally.0.len(),
            "report counters counted from the stored documents (once, after an upgrade)"
        );
    }
    Ok(())
}

/// What [`each`] calls with each key and value.
type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Calls `visit` on every entry of `space`, in key order, reading 512 at a
/// time.
fn each(engine: &dyn Engine, space: Space, visit: &mut Visit<'_>) -> Result<()> {
    let mut start: Vec<u8> = Vec::new();
    loop {
        let batch = engine.scan(space, &start, None, Order::Ascending, 512)?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        start = last.clone();
        start.push(0); // the next key after the last
        for (key, value) in &batch {
            visit(key, value)?;
        }
    }
}

fn org_code(code: &str) -> Result<OrgCode> {
    OrgCode::parse(code)
        .ok_or_else(|| Error::storage(format!("a stored organisation code {code:?} is malformed")))
}

pub(super) fn decode(bytes: &[u8]) -> Result<StoredReportMonth> {
    prost::Message::decode(bytes)
        .map_err(|e| Error::storage_from("a stored report month does not decode", e))
}

/// An estimate of the median of the delays counted in `buckets` (summed
/// over the months of a period), in hours: the bucket holding the middle
/// registration is found, and the median placed in it by linear
/// interpolation between its bounds, as if its delays were spread evenly;
/// in the open last bucket, its lower bound (30 days). `None` without any
/// registration.
pub fn estimated_median_hours(buckets: &[u64]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let middle = total as f64 / 2.0;
    let mut below = 0u64;
    for (i, &count) in buckets.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= middle {
            let low = if i == 0 {
                0
            } else {
                DELAY_BUCKETS_HOURS[i - 1]
            } as f64;
            let Some(&high) = DELAY_BUCKETS_HOURS.get(i) else {
                return Some(low);
            };
            let fraction = (middle - below as f64) / count as f64;
            return Some(low + fraction * (high as f64 - low));
        }
        below += count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_fall_in_their_buckets() {
        assert_eq!(delay_bucket(0), 0);
        assert_eq!(delay_bucket(3_599_999), 0);
        assert_eq!(delay_bucket(3_600_000), 1);
        assert_eq!(delay_bucket(23 * 3_600_000), 3);
        assert_eq!(delay_bucket(40 * 24 * 3_600_000), DELAY_BUCKETS - 1);
    }

    #[test]
    fn the_median_is_interpolated_in_its_bucket() {
        assert_eq!(estimated_median_hours(&[]), None);
        // Two registrations, both within the first hour: the middle one is
        // half-way through [0, 1).
        assert_eq!(estimated_median_hours(&[2]), Some(0.5));
        // 1 in [0,1), 3 in [1,4): the middle (2nd of 4) is 1/3 into [1,4).
        assert_eq!(estimated_median_hours(&[1, 3]), Some(2.0));
        let mut open = vec![0; DELAY_BUCKETS];
        open[DELAY_BUCKETS - 1] = 5;
        assert_eq!(estimated_median_hours(&open), Some(720.0));
    }
}

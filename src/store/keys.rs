//! Encoding of storage keys (the layout is in the parent module). Integers
//! are big-endian so that an engine's byte order is numeric order, and every
//! mailbox key starts with the fixed-width organisation code so that one
//! mailbox is one contiguous range.

use crate::directory::OrgCode;
use crate::document::Series;

/// `org ‖ year u16 ‖ arrival_number u64`
pub fn inbox(org: &OrgCode, year: u16, number: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(OrgCode::LEN + 10);
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(&year.to_be_bytes());
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// The (year, number) of an inbox key.
pub fn inbox_position(key: &[u8]) -> Option<(u16, u64)> {
    let rest = key.get(OrgCode::LEN..)?;
    let year = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
    let number = u64::from_be_bytes(rest.get(2..10)?.try_into().ok()?);
    Some((year, number))
}

/// `org ‖ seq u64`
pub fn outbox(org: &OrgCode, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(OrgCode::LEN + 8);
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence of an `org ‖ seq u64` key (outbox, events).
pub fn org_seq(key: &[u8]) -> Option<u64> {
    be_u64(key.get(OrgCode::LEN..)?)
}

/// A stored big-endian u64 (counters, indexes), or `None` if it is not
/// exactly 8 bytes.
pub fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// `"arrival" ‖ org ‖ year u16`: the last arrival number given that year.
pub fn arrival_counter(org: &OrgCode, year: u16) -> Vec<u8> {
    let mut k = b"arrival".to_vec();
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(&year.to_be_bytes());
    k
}

/// `"outbox" ‖ org`: the last outbox sequence used.
pub fn outbox_counter(org: &OrgCode) -> Vec<u8> {
    let mut k = b"outbox".to_vec();
    k.extend_from_slice(org.as_bytes());
    k
}

/// `org ‖ key`: the sender's idempotency key.
pub fn idempotency(org: &OrgCode, key: &str) -> Vec<u8> {
    let mut k = org.as_bytes().to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// `org ‖ year u16 ‖ series u8 ‖ number u64 ‖ notation`: Decree 30 makes
/// number and notation unique per issuer within a year and a series.
pub fn numbering(org: &OrgCode, year: u16, series: Series, number: u64, notation: &str) -> Vec<u8> {
    let mut k = org.as_bytes().to_vec();
    k.extend_from_slice(&year.to_be_bytes());
    k.push(series as u8);
    k.extend_from_slice(&number.to_be_bytes());
    k.extend_from_slice(notation.as_bytes());
    k
}

/// `"issued" ‖ org ‖ year u16 ‖ series u8`: the highest number used.
pub fn issued_counter(org: &OrgCode, year: u16, series: Series) -> Vec<u8> {
    let mut k = b"issued".to_vec();
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(&year.to_be_bytes());
    k.push(series as u8);
    k
}

/// The smallest and one-past-largest key of an organisation's range.
pub fn org_range(org: &OrgCode) -> (Vec<u8>, Vec<u8>) {
    let start = org.as_bytes().to_vec();
    let mut end = start.clone();
    // Codes are ASCII, so the last byte is below 0xff and can be bumped.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    (start, end)
}

/// `org ‖ seq u64`: one event of an organisation's log.
pub fn event(org: &OrgCode, seq: u64) -> Vec<u8> {
    outbox(org, seq)
}

/// `"events" ‖ org`: the last event sequence used.
pub fn event_counter(org: &OrgCode) -> Vec<u8> {
    let mut k = b"events".to_vec();
    k.extend_from_slice(org.as_bytes());
    k
}

/// The range of every `"events" ‖ org` counter.
pub fn event_counter_range() -> (Vec<u8>, Vec<u8>) {
    (b"events".to_vec(), b"eventt".to_vec())
}

/// The organisation of an `"events" ‖ org` counter key.
pub fn event_counter_org(key: &[u8]) -> Option<OrgCode> {
    OrgCode::from_key(key.strip_prefix(b"events")?)
}

/// The number of leaves in the archive log.
pub const ARCHIVE_SIZE: &[u8] = b"archive";
/// The size of the latest checkpoint (`counters`).
pub const LAST_CHECKPOINT: &[u8] = b"checkpoint";

/// `level u8 ‖ index u64`: the perfect subtree of 2^level leaves starting
/// at leaf `index << level`.
pub fn archive_node(level: u32, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(level as u8);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// `doc_id[16] ‖ org ‖ change u32`: one signed change in a document's life.
pub fn status(doc: &[u8; 16], org: &OrgCode, change: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + OrgCode::LEN + 4);
    k.extend_from_slice(doc);
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(&change.to_be_bytes());
    k
}

/// The range of every change of a document.
pub fn status_range(doc: &[u8; 16]) -> (Vec<u8>, Vec<u8>) {
    let start = doc.to_vec();
    let mut end = start.clone();
    end.push(0xff);
    (start, end)
}

/// `"status" ‖ doc_id[16] ‖ org`: the last change number of an organisation
/// for a document.
pub fn status_counter(doc: &[u8; 16], org: &OrgCode) -> Vec<u8> {
    let mut k = b"status".to_vec();
    k.extend_from_slice(doc);
    k.extend_from_slice(org.as_bytes());
    k
}

/// A date as the deadlines index orders it: `YYYYMMDD`, so that big-endian
/// byte order is date order.
pub fn date_number(date: time::Date) -> u32 {
    let year = u32::try_from(date.year()).unwrap_or(0);
    year * 10_000 + u32::from(u8::from(date.month())) * 100 + u32::from(date.day())
}

/// `date u32 ‖ org ‖ doc_id[16] ‖ kind u8`: one entry of the deadlines
/// index (`date` is [`date_number`]).
pub fn deadline(date: time::Date, org: &OrgCode, doc: &[u8; 16], kind: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + OrgCode::LEN + 16 + 1);
    k.extend_from_slice(&date_number(date).to_be_bytes());
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(doc);
    k.push(kind);
    k
}

/// The parts of a deadlines key: date number, organisation, document, kind.
pub fn deadline_parts(key: &[u8]) -> Option<(u32, OrgCode, [u8; 16], u8)> {
    let date = u32::from_be_bytes(key.get(..4)?.try_into().ok()?);
    let org = OrgCode::from_key(key.get(4..)?)?;
    let rest = key.get(4 + OrgCode::LEN..)?;
    let doc: [u8; 16] = rest.get(..16)?.try_into().ok()?;
    let kind = *rest.get(16)?;
    (rest.len() == 17).then_some((date, org, doc, kind))
}

/// The keys `org ‖ year u16 ‖ …`: one year of an inbox (a register of
/// arrivals) or of the numbering (what an issuer issued that year).
pub fn year_range(org: &OrgCode, year: u16) -> (Vec<u8>, Vec<u8>) {
    let mut start = org.as_bytes().to_vec();
    start.extend_from_slice(&year.to_be_bytes());
    let end = match year.checked_add(1) {
        Some(next) => {
            let mut end = org.as_bytes().to_vec();
            end.extend_from_slice(&next.to_be_bytes());
            end
        }
        None => org_range(org).1,
    };
    (start, end)
}

/// The series, number and notation of a numbering key.
pub fn numbering_position(key: &[u8]) -> Option<(Series, u64, String)> {
    let rest = key.get(OrgCode::LEN + 2..)?;
    let series = match rest.first()? {
        0 => Series::Ordinary,
        1 => Series::Secret,
        _ => return None,
    };
    let number = be_u64(rest.get(1..9)?)?;
    let notation = String::from_utf8(rest.get(9..)?.to_vec()).ok()?;
    Some((series, number, notation))
}

/// `org ‖ (3 - urgency) u8 ‖ year u16 ‖ arrival_number u64`: a document
/// the organisation has not yet acted on, most urgent first, then in order
/// of arrival.
pub fn unread(org: &OrgCode, urgency: u8, year: u16, number: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(OrgCode::LEN + 11);
    k.extend_from_slice(org.as_bytes());
    k.push(MOST_URGENT.saturating_sub(urgency));
    k.extend_from_slice(&year.to_be_bytes());
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// Hỏa tốc, the highest urgency (edXML priority 3).
pub const MOST_URGENT: u8 = 3;

/// The (urgency, year, arrival number) of an unread key.
pub fn unread_position(key: &[u8]) -> Option<(u8, u16, u64)> {
    let rest = key.get(OrgCode::LEN..)?;
    let urgency = MOST_URGENT.checked_sub(*rest.first()?)?;
    let year = u16::from_be_bytes(rest.get(1..3)?.try_into().ok()?);
    let number = be_u64(rest.get(3..11)?)?;
    Some((urgency, year, number))
}

/// `org ‖ year u16 ‖ month u8`: one organisation's report counters for a
/// month (Vietnam time).
pub fn report(org: &OrgCode, year: u16, month: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(OrgCode::LEN + 3);
    k.extend_from_slice(org.as_bytes());
    k.extend_from_slice(&year.to_be_bytes());
    k.push(month);
    k
}

/// The (year, month) of a report key.
pub fn report_month(key: &[u8]) -> Option<(u16, u8)> {
    let rest = key.get(OrgCode::LEN..)?;
    let year = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
    let month = *rest.get(2)?;
    (rest.len() == 3).then_some((year, month))
}

//! The registers a clerk keeps (Decree 30): the incoming register (sổ đăng
//! ký văn bản đến) and the outgoing register (sổ văn bản đi) of one year,
//! and the unread part of an inbox, most urgent first.
//!
//! Each reads an index the commit already keeps in the order a register is
//! written: the inbox of one arrival year in arrival-number order, the
//! issuer's numbering of one year of issue in number order per series, and
//! the `unread` index. A page costs its own entries, not the year's.

use std::sync::Arc;

use prost::Message;

use crate::directory::{OrgCode, Organization};
use crate::error::{Error, Result};
use crate::exchange::{self, DocumentView, Exchange, InboxView, Listing};
use crate::lifecycle::Code;
use crate::pb;
use crate::store::{Series, StoredDelivery, StoredStatus};

/// One line of the incoming register.
#[derive(Debug)]
pub struct IncomingLine {
    pub arrival: InboxView,
    /// The caller's delivery: status, answer, assignment.
    pub delivery: StoredDelivery,
    /// When it was passed on (its 04), if it was.
    pub passed_on_at_ms: Option<i64>,
    pub notes: String,
}

/// One line of the outgoing register.
#[derive(Debug)]
pub struct OutgoingLine {
    pub view: DocumentView,
    pub series: Series,
    pub notes: String,
}

/// A page of one register.
#[derive(Debug)]
pub enum RegisterLines {
    Incoming(Vec<IncomingLine>),
    Outgoing(Vec<OutgoingLine>),
}

#[derive(Debug)]
pub struct RegisterPage {
    pub year: u16,
    pub lines: RegisterLines,
    pub next_page_token: String,
}

/// The years a register may be asked for.
const YEARS: std::ops::RangeInclusive<u32> = 1970..=9999;

// Page tokens, beside the mailboxes' (`exchange`).
const TOKEN_INCOMING: u8 = b'r';
const TOKEN_OUTGOING: u8 = b'g';
const TOKEN_UNREAD: u8 = b'u';

pub struct Registers {
    exchange: Arc<Exchange>,
}

impl Registers {
    pub fn new(exchange: Arc<Exchange>) -> Registers {
        Registers { exchange }
    }

    /// A page of `caller`'s incoming register of `year` (0: this year in
    /// Vietnam), or of its outgoing register.
    pub fn register(
        &self,
        caller: &Organization,
        year: u32,
        outgoing: bool,
        page_size: u32,
        page_token: &str,
    ) -> Result<RegisterPage> {
        let year = self.year(year)?;
        let limit = exchange::page_limit(page_size)?;
        if outgoing {
            self.outgoing(&caller.code, year, limit, page_token)
        } else {
            self.incoming(&caller.code, year, limit, page_token)
        }
    }

    fn year(&self, asked: u32) -> Result<u16> {
        let year = match asked {
            0 => u32::try_from(self.exchange.store.clock().today().year()).unwrap_or(0),
            n => n,
        };
        if !YEARS.contains(&year) {
            return Err(Error::invalid(
                "year",
                format!(
                    "must be 0 (this year) or from {} to {}, got {year}",
                    YEARS.start(),
                    YEARS.end()
                ),
            ));
        }
        u16::try_from(year).map_err(|_| Error::invalid("year", "is out of range"))
    }

    fn incoming(
        &self,
        org: &OrgCode,
        year: u16,
        limit: usize,
        page_token: &str,
    ) -> Result<RegisterPage> {
        let after = match exchange::decode_token(page_token, TOKEN_INCOMING)? {
            None => None,
            Some(b) => Some(number(of_year(&b, year)?)?),
        };
        let store = &self.exchange.store;
        let page = store.register_page(org, year, after, limit)?;
        let mut lines = Vec::with_capacity(page.items.len());
        for item in page.items {
            let view = DocumentView::new(item.id, item.document)?;
            let delivery = view
                .stored
                .deliveries
                .iter()
                .find(|d| d.recipient == org.as_str())
                .cloned()
                .ok_or_else(|| {
                    Error::storage(format!(
                        "{} is in an inbox it was not delivered to",
                        view.id
                    ))
                })?;
            // Only a recipient that moved has changes to read.
            let changes = if delivery.status != 0 || delivery.answer != 0 {
                store.statuses_by(&view.id, org)?
            } else {
                Vec::new()
            };
            let passed_on_at_ms = changes
                .iter()
                .find(|c| c.code == Code::Assigned as u32)
                .map(|c| c.accepted_at_ms);
            let mut notes = self.document_notes(&view)?;
            if let Some(rejection) = changes.iter().find(|c| c.code == Code::Rejected as u32) {
                notes.push(format!("Trả lại: {}", description(rejection)));
            }
            match Code::from_number(delivery.answer) {
                Some(Code::Agreed) => notes.push("Đã đồng ý (15)".into()),
                Some(Code::Refused) => notes.push("Không đồng ý (16)".into()),
                _ => {}
            }
            lines.push(IncomingLine {
                arrival: InboxView {
                    arrival_year: item.arrival_year,
                    arrival_number: item.arrival_number,
                    view,
                },
                delivery,
                passed_on_at_ms,
                notes: notes.join("; "),
            });
        }
        let next_page_token = page.next.map_or(String::new(), |number| {
            let mut b = year.to_be_bytes().to_vec();
            b.extend_from_slice(&number.to_be_bytes());
            exchange::encode_token(TOKEN_INCOMING, &b)
        });
        Ok(RegisterPage {
            year,
            lines: RegisterLines::Incoming(lines),
            next_page_token,
        })
    }

    fn outgoing(
        &self,
        org: &OrgCode,
        year: u16,
        limit: usize,
        page_token: &str,
    ) -> Result<RegisterPage> {
        let after = match exchange::decode_token(page_token, TOKEN_OUTGOING)? {
            None => None,
            Some(b) => {
                // series u8 ‖ number u64 ‖ notation
                let rest = of_year(&b, year)?;
                let series = match rest.first() {
                    Some(0) => Series::Ordinary,
                    Some(1) => Series::Secret,
                    _ => return Err(exchange::bad_token()),
                };
                let number = number(rest.get(1..9).unwrap_or_default())?;
                let notation = String::from_utf8(rest.get(9..).unwrap_or_default().to_vec())
                    .map_err(|_| exchange::bad_token())?;
                Some((series, number, notation))
            }
        };
        let page = self.exchange.store.issued_page(org, year, after, limit)?;
        let mut lines = Vec::with_capacity(page.items.len());
        for item in page.items {
            let view = DocumentView::new(item.id, item.document)?;
            let notes = self.document_notes(&view)?.join("; ");
            lines.push(OutgoingLine {
                view,
                series: item.series,
                notes,
            });
        }
        let next_page_token = page
            .next
            .map_or(String::new(), |(series, number, notation)| {
                let mut b = year.to_be_bytes().to_vec();
                b.push(series as u8);
                b.extend_from_slice(&number.to_be_bytes());
                b.extend_from_slice(notation.as_bytes());
                exchange::encode_token(TOKEN_OUTGOING, &b)
            });
        Ok(RegisterPage {
            year,
            lines: RegisterLines::Outgoing(lines),
            next_page_token,
        })
    }

    /// What both registers note of a document: its freeze and why, what
    /// superseded it, and what it updates, replaces or answers.
    fn document_notes(&self, view: &DocumentView) -> Result<Vec<String>> {
        let stored = &view.stored;
        let mut notes = Vec::new();
        if stored.revoked_at_ms != 0 {
            let sender = OrgCode::parse(&stored.sender)
                .ok_or_else(|| Error::storage(format!("the sender of {} is malformed", view.id)))?;
            let reason = self
                .exchange
                .store
                .statuses_by(&view.id, &sender)?
                .iter()
                .find(|s| s.revocation)
                .map(description)
                .unwrap_or_default();
            notes.push(format!("Đã thu hồi: {reason}"));
        }
        if !stored.superseded_by.is_empty() {
            let how = if stored.frozen_by == pb::Operation::Update as i32 {
                "Được cập nhật bằng văn bản"
            } else {
                "Được thay thế bằng văn bản"
            };
            let ids: Vec<String> = stored.superseded_by.iter().map(hex::encode).collect();
            notes.push(format!("{how} {}", ids.join(", ")));
        }
        if !stored.supersedes.is_empty() {
            let how = if stored.supersedes_operation == pb::Operation::Update as i32 {
                "Cập nhật văn bản"
            } else {
                "Thay thế văn bản"
            };
            notes.push(format!("{how} {}", hex::encode(&stored.supersedes)));
        }
        if !view.header.reply_to.is_empty() {
            notes.push(format!("Phúc đáp văn bản {}", view.header.reply_to));
        }
        Ok(notes)
    }

    /// A page of the unread part of `caller`'s inbox, most urgent first.
    pub fn unread(
        &self,
        caller: &Organization,
        page_size: u32,
        page_token: &str,
    ) -> Result<Listing<InboxView>> {
        let limit = exchange::page_limit(page_size)?;
        let after = match exchange::decode_token(page_token, TOKEN_UNREAD)? {
            None => None,
            Some(b) => {
                let (&urgency, rest) = b.split_first().ok_or_else(exchange::bad_token)?;
                let year = rest.get(..2).ok_or_else(exchange::bad_token)?;
                let year = u16::from_be_bytes([year[0], year[1]]);
                Some((urgency, year, number(of_year(rest, year)?)?))
            }
        };
        let page = self
            .exchange
            .store
            .unread_page(&caller.code, after, limit)?;
        let items = page
            .items
            .into_iter()
            .map(|item| {
                Ok(InboxView {
                    arrival_year: item.arrival_year,
                    arrival_number: item.arrival_number,
                    view: DocumentView::new(item.id, item.document)?,
                })
            })
            .collect::<Result<_>>()?;
        let next_page_token = page.next.map_or(String::new(), |(urgency, year, number)| {
            let mut b = vec![urgency];
            b.extend_from_slice(&year.to_be_bytes());
            b.extend_from_slice(&number.to_be_bytes());
            exchange::encode_token(TOKEN_UNREAD, &b)
        });
        Ok(Listing {
            items,
            next_page_token,
        })
    }
}

/// What follows `year u16` in a page token of that year's register (a
/// token of another year is refused).
fn of_year(token: &[u8], year: u16) -> Result<&[u8]> {
    match token.split_at_checked(2) {
        Some((y, rest)) if y == year.to_be_bytes() => Ok(rest),
        _ => Err(exchange::bad_token()),
    }
}

/// A `number u64` of a page token.
fn number(bytes: &[u8]) -> Result<u64> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| exchange::bad_token())
}

/// The reason or note a signed change carries. It was checked when it came
/// in; one that no longer decodes shows empty rather than failing the page.
fn description(status: &StoredStatus) -> String {
    pb::StatusMessage::decode(status.status_bytes.as_slice())
        .map(|m| m.description)
        .unwrap_or_default()
}

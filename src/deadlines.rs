//! Deadlines: which documents a recipient must still register or handle,
//! late or due soon, by working days (`calendar`) and the service's date
//! (`clock`), and the same across the district for the committee and its
//! office.
//!
//! The store's `deadlines` index finds the candidates (the entries dated up
//! to the last day asked for); each is then judged against the document's
//! durable record, so the rules of what is open live in one place
//! ([`crate::store::open_deadlines`]) and the index is never trusted beyond
//! finding things. Registration entries are dated by arrival: the working
//! days are applied here, so a new holidays file applies to documents
//! already stored.

use std::collections::HashMap;
use std::sync::Arc;

use time::{Date, Duration};

use crate::calendar::Calendar;
use crate::directory::{Directory, OrgCode, Organization};
use crate::error::{Error, Result};
use crate::exchange::DocumentView;
use crate::lifecycle::Code;
use crate::store::{self, DeadlineKind, DocId, Store};

/// The furthest ahead one may look, in calendar days.
pub const MAX_WITHIN_DAYS: u32 = 366;

/// The directory kinds that may see the whole district's deadlines.
pub(crate) const DISTRICT_KINDS: [&str; 2] = ["committee", "office"];

/// What the district view shows of a secret document the viewer is no
/// party to, instead of its summary and content.
pub const SECRET_SUBJECT: &str = "(văn bản mật: trích yếu không hiển thị)";

/// In the district view, the committee or office sees that a secret
/// document (mật, tối mật, tuyệt mật) is late and where, but not what it
/// is about unless it sent or received it: Decree 30 keeps secret documents
/// to those they are addressed to, and a deadline list needs no more.
fn redact_secret(entries: &mut [Deadline], viewer: &Organization) {
    for entry in entries {
        let view = &entry.view;
        if view.header.secrecy != 0 && !view.stored.is_party(viewer.code.as_str()) {
            entry.view = Arc::new(hide_secret(DocumentView::clone(view), viewer));
        }
    }
}

/// `view` as a district viewer sees it: a secret document's subject and
/// content stay with its parties (the rule of [`redact_secret`]), for the
/// report's explanation and the dashboard's document view too.
pub(crate) fn hide_secret(mut view: DocumentView, viewer: &Organization) -> DocumentView {
    if view.header.secrecy != 0 && !view.stored.is_party(viewer.code.as_str()) {
        view.header.subject = SECRET_SUBJECT.to_owned();
        view.header.content.clear();
    }
    view
}

/// The last day an overdue deadline can be due on. Every index entry of
/// an overdue deadline is dated on or before it (a registration entry by
/// its arrival, before its due day), so a scan up to it finds them all and
/// skips what only arrived, or falls due, today.
fn yesterday(today: Date) -> Date {
    today.previous_day().unwrap_or(today)
}

/// One open deadline of one recipient.
#[derive(Debug, Clone)]
pub struct Deadline {
    pub view: Arc<DocumentView>,
    pub recipient: OrgCode,
    pub arrival_year: u32,
    pub arrival_number: u64,
    pub kind: DeadlineKind,
    pub due: Date,
    /// [`Calendar::working_days_between`] today and `due`: negative when late.
    pub working_days_left: i64,
    /// `due` is before today.
    pub overdue: bool,
    pub status: Code,
    pub assigned_to: String,
}

/// An open deadline as the index has it, with its due day worked out:
/// small (no document read), so that a scan over a million of them costs
/// keys, not documents. Ordered as listings show deadlines: earliest due
/// first, then recipient, kind and document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    pub due: Date,
    pub recipient: OrgCode,
    pub kind: DeadlineKind,
    pub id: DocId,
}

/// What a listing shows, and the date it was judged by.
#[derive(Debug)]
pub struct DeadlineList {
    pub today: Date,
    pub entries: Vec<Deadline>,
    /// Where the next page starts, if there is more.
    pub next_page_token: Option<String>,
}

/// Per organisation, its overdue registrations and handlings.
pub type OverdueCounts = HashMap<OrgCode, (u64, u64)>;

/// Deadlines per page when the caller does not say, and at most.
pub const DEFAULT_PAGE: usize = 500;
pub const MAX_PAGE: usize = 5_000;

pub struct Deadlines {
    store: Arc<Store>,
    directory: Arc<Directory>,
    calendar: Arc<Calendar>,
}

impl Deadlines {
    pub fn new(store: Arc<Store>, directory: Arc<Directory>, calendar: Arc<Calendar>) -> Deadlines {
        Deadlines {
            store,
            directory,
            calendar,
        }
    }

    /// The first page of the caller's open deadlines (every organisation's
    /// with `district`) that are late or due within `within_days` calendar
    /// days of today, earliest due first.
    pub fn list(
        &self,
        caller: &Organization,
        within_days: u32,
        district: bool,
    ) -> Result<DeadlineList> {
        self.page(caller, within_days, district, 0, "")
    }

    /// One page of [`Deadlines::list`]: `page_size` deadlines (0: the
    /// default) after `page_token` (empty: from the first). The index is
    /// walked by key only and sorted in memory (a few dozen bytes a
    /// deadline); only the page's documents are read.
    pub fn page(
        &self,
        caller: &Organization,
        within_days: u32,
        district: bool,
        page_size: u32,
        page_token: &str,
    ) -> Result<DeadlineList> {
        if within_days > MAX_WITHIN_DAYS {
            return Err(Error::invalid(
                "within_days",
                format!("is {within_days}; at most {MAX_WITHIN_DAYS} (a year ahead)"),
            ));
        }
        let page_size = match usize::try_from(page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(Error::invalid(
                    "page_size",
                    format!("at most {MAX_PAGE} deadlines a page"),
                ))
            }
            n => n,
        };
        let after = match page_token {
            "" => None,
            token => Some(parse_token(token)?),
        };
        if district && !DISTRICT_KINDS.contains(&caller.kind.as_str()) {
            return Err(Error::PermissionDenied(format!(
                "district: the whole district's deadlines are for the district committee and its office ({}); {} may list its own only",
                self.district_viewers(),
                caller.alias
            )));
        }
        let today = self.store.clock().today();
        let until = today
            .checked_add(Duration::days(i64::from(within_days)))
            .unwrap_or(Date::MAX);
        let me = caller.code;
        // A later page needs only the index entries that can be due on or
        // after the last one shown: not every entry from the first again.
        let from = match after {
            Some(after) => earliest_entry_due_by(&self.calendar, after.due),
            None => Date::MIN,
        };
        let candidates = self.candidates(from, until, |org| district || *org == me)?;
        let rest = match after {
            Some(after) => &candidates[candidates.partition_point(|c| *c <= after)..],
            None => &candidates[..],
        };
        let page = rest.get(..page_size).unwrap_or(rest);
        let next_page_token = match (page.last(), rest.len() > page.len()) {
            (Some(last), true) => Some(token(last)),
            _ => None,
        };
        let mut entries = self.judged(page, today)?;
        if district {
            redact_secret(&mut entries, caller);
        }
        Ok(DeadlineList {
            today,
            entries,
            next_page_token,
        })
    }

    /// The open deadlines due by `until` of the organisations `wanted`
    /// picks, from index entries dated `from` on, sorted, from the index's
    /// keys alone.
    fn candidates(
        &self,
        from: Date,
        until: Date,
        wanted: impl Fn(&OrgCode) -> bool,
    ) -> Result<Vec<Candidate>> {
        let mut out = Vec::new();
        for entry in self.store.deadline_entries(from, until)? {
            if !wanted(&entry.org) {
                continue;
            }
            let due = match entry.kind {
                DeadlineKind::Handling => entry.date,
                DeadlineKind::Registration => self.calendar.registration_due(entry.date),
            };
            if due <= until {
                out.push(Candidate {
                    due,
                    recipient: entry.org,
                    kind: entry.kind,
                    id: entry.id,
                });
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Each candidate judged against its document's durable record (which
    /// drops one whose change is not yet durable), in order.
    fn judged(&self, candidates: &[Candidate], today: Date) -> Result<Vec<Deadline>> {
        let mut documents: HashMap<DocId, Option<Arc<DocumentView>>> = HashMap::new();
        let mut entries = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            if let Some(deadline) = self.judge_one(candidate, today, &mut documents)? {
                entries.push(deadline);
            }
        }
        Ok(entries)
    }

    fn judge_one(
        &self,
        candidate: &Candidate,
        today: Date,
        documents: &mut HashMap<DocId, Option<Arc<DocumentView>>>,
    ) -> Result<Option<Deadline>> {
        let view = match documents.get(&candidate.id) {
            Some(view) => view.clone(),
            None => {
                let view = match self.store.document(&candidate.id)? {
                    Some(stored) => Some(Arc::new(DocumentView::new(candidate.id, stored)?)),
                    None => None, // not durable yet
                };
                documents.insert(candidate.id, view.clone());
                view
            }
        };
        Ok(view.and_then(|view| self.judge(&view, &candidate.recipient, candidate.kind, today)))
    }

    /// One overdue deadline, read and judged (for the report's
    /// explanation, which reads only the window it shows).
    pub fn deadline(&self, candidate: &Candidate, today: Date) -> Result<Option<Deadline>> {
        self.judge_one(candidate, today, &mut HashMap::new())
    }

    /// How many registrations and handlings are overdue today, per
    /// organisation (for the report; no permission check: the caller
    /// decides whose it shows). Counted from the index's keys, read as
    /// committed like the report's counters: no document is read, so the
    /// report costs keys even when a million documents are overdue.
    pub fn overdue_now(&self) -> Result<(Date, OverdueCounts)> {
        let today = self.store.clock().today();
        let mut out: HashMap<OrgCode, (u64, u64)> = HashMap::new();
        for candidate in self.candidates(Date::MIN, yesterday(today), |_| true)? {
            if candidate.due >= today {
                continue;
            }
            let counts = out.entry(candidate.recipient).or_default();
            match candidate.kind {
                DeadlineKind::Registration => counts.0 += 1,
                DeadlineKind::Handling => counts.1 += 1,
            }
        }
        Ok((today, out))
    }

    /// `org`'s overdue registrations and handlings today, earliest due
    /// first, as candidates (for the report's explanation; no permission
    /// check): [`Deadlines::deadline`] reads the ones it shows.
    pub fn overdue_of(&self, org: &OrgCode) -> Result<(Date, Vec<Candidate>)> {
        let today = self.store.clock().today();
        let mut entries = self.candidates(Date::MIN, yesterday(today), |o| o == org)?;
        entries.retain(|c| c.due < today);
        entries.sort_by_key(|c| (c.due, c.kind, c.id));
        Ok((today, entries))
    }

    /// The deadline of `kind` that `org`'s delivery of the document has as
    /// it durably stands, if it is still open.
    fn judge(
        &self,
        view: &Arc<DocumentView>,
        org: &OrgCode,
        kind: DeadlineKind,
        today: Date,
    ) -> Option<Deadline> {
        let delivery = view
            .stored
            .deliveries
            .iter()
            .find(|d| d.recipient == org.as_str())?;
        let header_due = crate::clock::parse_date(&view.header.due_date);
        let (_, date) = store::open_deadlines(&view.stored, delivery, header_due)
            .into_iter()
            .find(|(k, _)| *k == kind)?;
        let due = match kind {
            DeadlineKind::Handling => date,
            DeadlineKind::Registration => self.calendar.registration_due(date),
        };
        Some(Deadline {
            view: view.clone(),
            recipient: *org,
            arrival_year: delivery.arrival_year,
            arrival_number: delivery.arrival_number,
            kind,
            due,
            working_days_left: self.calendar.working_days_between(today, due),
            overdue: due < today,
            status: Code::from_number(delivery.status).unwrap_or(Code::Arrived),
            assigned_to: delivery.assigned_to.clone(),
        })
    }

    /// Who may ask for the district view, by alias.
    pub(crate) fn district_viewers(&self) -> String {
        let aliases: Vec<&str> = self
            .directory
            .organizations()
            .iter()
            .filter(|o| DISTRICT_KINDS.contains(&o.kind.as_str()))
            .map(|o| o.alias.as_str())
            .collect();
        if aliases.is_empty() {
            "organisations of kind committee or office; the directory lists none".to_owned()
        } else {
            aliases.join(", ")
        }
    }
}

/// The earliest index date of an entry that can be due on `due` or
/// later: a handling entry is dated by its due day, a registration entry
/// by its arrival, which is due the next working day, so arrivals back
/// to the last working day before `due` (over a weekend or Tết) can be.
fn earliest_entry_due_by(calendar: &Calendar, due: Date) -> Date {
    let mut day = due;
    // A year back at the most, whatever the holidays file says.
    for _ in 0..366 {
        match day.previous_day() {
            Some(before) if calendar.registration_due(before) >= due => day = before,
            _ => break,
        }
    }
    day
}

/// A page token: the last deadline of the page, as
/// `YYYY-MM-DD_org_kind_document` (organisation codes hold dots), so the
/// next page starts after it even if deadlines came or went in between.
fn token(last: &Candidate) -> String {
    format!(
        "{}_{}_{}_{}",
        crate::clock::format_date(last.due),
        last.recipient.as_str(),
        last.kind as u8,
        last.id
    )
}

fn parse_token(token: &str) -> Result<Candidate> {
    let bad = || {
        Error::invalid(
            "page_token",
            "is not a token from an earlier page; start again without one",
        )
    };
    let mut parts = token.splitn(4, '_');
    let (Some(due), Some(org), Some(kind), Some(id)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok(Candidate {
        due: crate::clock::parse_date(due).ok_or_else(bad)?,
        recipient: OrgCode::parse(org).ok_or_else(bad)?,
        kind: match kind {
            "1" => DeadlineKind::Handling,
            "2" => DeadlineKind::Registration,
            _ => return Err(bad()),
        },
        id: DocId::parse(id).ok_or_else(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        crate::clock::parse_date(text).unwrap_or_else(|| panic!("{text} is a date"))
    }

    #[test]
    fn a_later_page_reads_back_to_the_arrivals_that_can_fall_due_on_it() {
        let calendar = Calendar::builtin();
        // 30 April and 1 May 2026 are holidays, then a weekend: what arrived
        // on Wednesday 29 April is due for registration on Monday 4 May.
        assert_eq!(calendar.registration_due(d("2026-04-29")), d("2026-05-04"));
        assert_eq!(
            earliest_entry_due_by(&calendar, d("2026-05-04")),
            d("2026-04-29")
        );
        // An ordinary Wednesday: Tuesday's arrivals.
        assert_eq!(
            earliest_entry_due_by(&calendar, d("2026-06-10")),
            d("2026-06-09")
        );
    }

    #[test]
    fn page_tokens_read_back_and_refuse_anything_else() {
        let last = Candidate {
            due: d("2026-05-04"),
            recipient: OrgCode::parse("000.00.31.H37").unwrap_or_else(|| panic!("a code")),
            kind: DeadlineKind::Registration,
            id: DocId([7; 16]),
        };
        assert_eq!(parse_token(&token(&last)).ok(), Some(last));
        for bad in ["", "2026-05-04", "2026-13-01_000.00.31.H37_2_00", "x_y_z_w"] {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
    }
}

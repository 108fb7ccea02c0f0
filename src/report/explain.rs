//! The documents behind one organisation's report row: for a period, what
//! it sent and received (electronic and paper), the registrations,
//! completions and rejections it made, and what is overdue for it now.
//!
//! Unlike the report, this reads documents: the organisation's outbox and
//! its inbox up to the period's end, and its own changes to each document
//! it received that left 01 — O(that organisation's documents), never the
//! whole district's. Each list follows the rules the counters follow
//! (`store::counters`), so its length is the row's number: a send or an
//! arrival counts in the month the service accepted it, a change in the
//! month it was accepted, and whether a registration or a completion was
//! on time is the judgement stored with the change when it was counted.

use std::sync::Arc;

use time::Date;

use super::{Period, Reports, Row};
use crate::clock;
use crate::deadlines::{hide_secret, DISTRICT_KINDS};
use crate::directory::{OrgCode, Organization};
use crate::error::{Error, Result};
use crate::exchange::DocumentView;
use crate::lifecycle::Code;
use crate::store::{DeadlineKind, DocId, StoredDocument, StoredStatus};

/// Inbox and outbox entries read per page.
const PAGE: usize = 500;

/// One document in one list.
#[derive(Debug, Clone)]
pub struct Entry {
    pub view: Arc<DocumentView>,
    /// The caller's arrival number of it; 0 for what it sent.
    pub arrival_number: u64,
    /// The change that put it in the list (registration, completion,
    /// rejection), when it was accepted.
    pub changed_at_ms: Option<i64>,
    /// For what is overdue: the day it was due.
    pub due: Option<Date>,
}

/// Which documents of each list an explanation keeps: `limit` of them from
/// the `offset`-th. The walk still visits every document of the
/// organisation (a list's length is its row's number), but only the window
/// is decoded and held, so memory stays bounded whatever the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: usize,
    pub limit: usize,
}

impl Window {
    /// Documents per list when the caller does not say.
    pub const DEFAULT_LIMIT: usize = 1_000;
    /// The most a caller may ask for: 11 lists of this many stay within a
    /// gRPC answer of a few tens of megabytes.
    pub const MAX_LIMIT: usize = 10_000;

    fn holds(&self, index: usize) -> bool {
        index >= self.offset && index - self.offset < self.limit
    }
}

impl Default for Window {
    fn default() -> Window {
        Window {
            offset: 0,
            limit: Window::DEFAULT_LIMIT,
        }
    }
}

/// The lists of an explanation, named as the row's numbers.
#[derive(Debug, Clone, Copy)]
enum Kind {
    SentElectronic,
    SentPaper,
    ReceivedElectronic,
    ReceivedPaper,
    RegisteredOnTime,
    RegisteredLate,
    CompletedOnTime,
    CompletedLate,
    Rejected,
    OverdueRegistration,
    OverdueHandling,
}

/// The documents behind each number of a row, in the order the store
/// reads them (newest first): the window of each list.
#[derive(Debug, Default)]
pub struct Lists {
    pub sent_electronic: Vec<Entry>,
    pub sent_paper: Vec<Entry>,
    pub received_electronic: Vec<Entry>,
    pub received_paper: Vec<Entry>,
    pub registered_on_time: Vec<Entry>,
    pub registered_late: Vec<Entry>,
    pub completed_on_time: Vec<Entry>,
    pub completed_late: Vec<Entry>,
    pub rejected: Vec<Entry>,
    pub overdue_registration: Vec<Entry>,
    pub overdue_handling: Vec<Entry>,
    /// The window kept, and how many documents each list has in all.
    pub window: Window,
    seen: [usize; 11],
}

impl Lists {
    fn new(window: Window) -> Lists {
        Lists {
            window,
            ..Lists::default()
        }
    }

    fn list(&mut self, kind: Kind) -> &mut Vec<Entry> {
        match kind {
            Kind::SentElectronic => &mut self.sent_electronic,
            Kind::SentPaper => &mut self.sent_paper,
            Kind::ReceivedElectronic => &mut self.received_electronic,
            Kind::ReceivedPaper => &mut self.received_paper,
            Kind::RegisteredOnTime => &mut self.registered_on_time,
            Kind::RegisteredLate => &mut self.registered_late,
            Kind::CompletedOnTime => &mut self.completed_on_time,
            Kind::CompletedLate => &mut self.completed_late,
            Kind::Rejected => &mut self.rejected,
            Kind::OverdueRegistration => &mut self.overdue_registration,
            Kind::OverdueHandling => &mut self.overdue_handling,
        }
    }

    /// Counts one more document of `kind`, and keeps it (made by `make`,
    /// only then) when it falls in the window.
    fn add(&mut self, kind: Kind, make: &mut dyn FnMut() -> Result<Entry>) -> Result<()> {
        self.add_if(kind, &mut || make().map(Some))
    }

    /// [`Lists::add`] for an entry that may turn out not to be there (an
    /// overdue deadline whose change is not yet durable): it is counted,
    /// as the report counts it, and not shown.
    fn add_if(
        &mut self,
        kind: Kind,
        make: &mut dyn FnMut() -> Result<Option<Entry>>,
    ) -> Result<()> {
        let index = self.seen[kind as usize];
        self.seen[kind as usize] += 1;
        if self.window.holds(index) {
            if let Some(entry) = make()? {
                self.list(kind).push(entry);
            }
        }
        Ok(())
    }

    /// How many documents the list of `kind` has in all.
    fn total(&self, kind: Kind) -> u64 {
        self.seen[kind as usize] as u64
    }
}

/// A document's entry, decoded the first time a list keeps it.
struct LazyEntry {
    id: DocId,
    stored: Option<StoredDocument>,
    arrival_number: u64,
    made: Option<Entry>,
}

impl LazyEntry {
    fn get(&mut self, redact: &dyn Fn(DocumentView) -> DocumentView) -> Result<Entry> {
        if let Some(made) = &self.made {
            return Ok(made.clone());
        }
        let stored = self
            .stored
            .take()
            .ok_or_else(|| Error::storage("an explained document was taken twice"))?;
        let made = entry(self.id, stored, self.arrival_number, redact)?;
        self.made = Some(made.clone());
        Ok(made)
    }
}

/// An organisation's row and the documents behind it.
#[derive(Debug)]
pub struct Explanation {
    pub period: Period,
    pub today: Date,
    pub target_percent: f64,
    pub row: Row,
    pub lists: Lists,
}

impl Reports {
    /// The documents behind `org`'s row of `period`, for `caller`: the
    /// committee and its office may ask about any organisation, anyone
    /// else about itself only.
    pub fn explain(
        &self,
        caller: &Organization,
        org: &str,
        period: Period,
        window: Window,
    ) -> Result<Explanation> {
        let org = self
            .directory
            .org(org.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "organization",
                    format!(
                        "{} is not an organisation of the directory (a code or an alias)",
                        crate::error::quote(org)
                    ),
                )
            })?
            .clone();
        if org.code != caller.code && !DISTRICT_KINDS.contains(&caller.kind.as_str()) {
            return Err(Error::PermissionDenied(format!(
                "organization: another organisation's figures are for the district committee and its office ({}); {} may explain its own only",
                self.deadlines.district_viewers(),
                caller.alias
            )));
        }
        let (today, overdue) = self.deadlines.overdue_of(&org.code)?;
        let mut lists = Lists::new(window);
        let redact = |view: DocumentView| hide_secret(view, caller);
        self.explain_sent(&org.code, period, &mut lists, &redact)?;
        self.explain_received(&org.code, period, &mut lists, &redact)?;
        for candidate in overdue {
            let kind = match candidate.kind {
                DeadlineKind::Registration => Kind::OverdueRegistration,
                DeadlineKind::Handling => Kind::OverdueHandling,
            };
            lists.add_if(kind, &mut || {
                Ok(self
                    .deadlines
                    .deadline(&candidate, today)?
                    .map(|deadline| Entry {
                        view: Arc::new(redact(DocumentView::clone(&deadline.view))),
                        arrival_number: deadline.arrival_number,
                        changed_at_ms: None,
                        due: Some(deadline.due),
                    }))
            })?;
        }
        let mut row = self.row(&org, period)?;
        row.overdue_registration = lists.total(Kind::OverdueRegistration);
        row.overdue_handling = lists.total(Kind::OverdueHandling);
        Ok(Explanation {
            period,
            today,
            target_percent: self.target_percent,
            row,
            lists,
        })
    }

    /// What `org` sent in the period: its outbox, whole (the acceptance
    /// instants of a clock set back need not follow the outbox's order).
    fn explain_sent(
        &self,
        org: &OrgCode,
        period: Period,
        lists: &mut Lists,
        redact: &dyn Fn(DocumentView) -> DocumentView,
    ) -> Result<()> {
        let mut before = None;
        loop {
            let page = self.store.outbox_page(org, before, PAGE)?;
            for item in page.items {
                if !period.holds(item.document.accepted_at_ms) {
                    continue;
                }
                let kind = if item.document.paper {
                    Kind::SentPaper
                } else {
                    Kind::SentElectronic
                };
                let mut document = Some(item.document);
                lists.add(kind, &mut || {
                    let stored = document
                        .take()
                        .ok_or_else(|| Error::storage("an explained document was taken twice"))?;
                    entry(item.id, stored, 0, redact)
                })?;
            }
            match page.next {
                Some(next) => before = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// What `org` received in the period, and its registrations,
    /// completions and rejections in the period of anything it received
    /// until the period's end.
    fn explain_received(
        &self,
        org: &OrgCode,
        period: Period,
        lists: &mut Lists,
        redact: &dyn Fn(DocumentView) -> DocumentView,
    ) -> Result<()> {
        // Nothing received after the period's year can have been handled
        // in the period.
        let mut before = Some((period.to.0.saturating_add(1), 0));
        loop {
            let page = self.store.inbox_page(org, before, PAGE)?;
            for item in page.items {
                let number = item.arrival_number;
                let arrived = item.document.accepted_at_ms;
                let handled = item
                    .document
                    .deliveries
                    .iter()
                    .find(|d| d.recipient == org.as_str())
                    .is_some_and(|d| d.status > Code::Arrived as u32);
                let received = period.holds(arrived);
                if !received && !handled {
                    continue;
                }
                let changes: Vec<StoredStatus> = if handled {
                    self.store
                        .statuses_by(&item.id, org)?
                        .into_iter()
                        .filter(|s| period.holds(s.accepted_at_ms))
                        .collect()
                } else {
                    Vec::new()
                };
                if !received && changes.is_empty() {
                    continue;
                }
                let paper = item.document.paper;
                let mut first = LazyEntry {
                    id: item.id,
                    stored: Some(item.document),
                    arrival_number: number,
                    made: None,
                };
                if received {
                    let kind = if paper {
                        Kind::ReceivedPaper
                    } else {
                        Kind::ReceivedElectronic
                    };
                    lists.add(kind, &mut || first.get(redact))?;
                }
                for change in changes {
                    let at = Some(change.accepted_at_ms);
                    let mut kinds = Vec::new();
                    if change.code == Code::Rejected as u32 {
                        kinds.push(Kind::Rejected);
                    }
                    match change.registration_on_time {
                        Some(true) => kinds.push(Kind::RegisteredOnTime),
                        Some(false) => kinds.push(Kind::RegisteredLate),
                        None => {}
                    }
                    match change.completion_on_time {
                        Some(true) => kinds.push(Kind::CompletedOnTime),
                        Some(false) => kinds.push(Kind::CompletedLate),
                        None => {}
                    }
                    for kind in kinds {
                        lists.add(kind, &mut || {
                            Ok(Entry {
                                changed_at_ms: at,
                                ..first.get(redact)?
                            })
                        })?;
                    }
                }
            }
            match page.next {
                Some(next) => before = Some(next),
                None => return Ok(()),
            }
        }
    }
}

impl Period {
    /// Whether the instant `ms` falls in one of the period's months,
    /// Vietnam time.
    pub fn holds(&self, ms: i64) -> bool {
        let date = clock::vietnam_date(ms);
        let month = (
            u16::try_from(date.year()).unwrap_or(0),
            u8::from(date.month()),
        );
        self.from <= month && month <= self.to
    }
}

fn entry(
    id: DocId,
    stored: StoredDocument,
    arrival_number: u64,
    redact: &dyn Fn(DocumentView) -> DocumentView,
) -> Result<Entry> {
    Ok(Entry {
        view: Arc::new(redact(DocumentView::new(id, stored)?)),
        arrival_number,
        changed_at_ms: None,
        due: None,
    })
}

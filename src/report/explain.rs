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

/// The documents behind each number of a row, in the order the store
/// reads them (newest first).
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
    pub fn explain(&self, caller: &Organization, org: &str, period: Period) -> Result<Explanation> {
        let org = self
            .directory
            .org(org.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "organization",
                    format!("{org:?} is not an organisation of the directory (a code or an alias)"),
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
        let mut lists = Lists::default();
        let redact = |view: DocumentView| hide_secret(view, caller);
        self.explain_sent(&org.code, period, &mut lists, &redact)?;
        self.explain_received(&org.code, period, &mut lists, &redact)?;
        for deadline in overdue {
            let entry = Entry {
                view: Arc::new(hide_secret(DocumentView::clone(&deadline.view), caller)),
                arrival_number: deadline.arrival_number,
                changed_at_ms: None,
                due: Some(deadline.due),
            };
            match deadline.kind {
                DeadlineKind::Registration => lists.overdue_registration.push(entry),
                DeadlineKind::Handling => lists.overdue_handling.push(entry),
            }
        }
        let mut row = self.row(&org, period)?;
        row.overdue_registration = lists.overdue_registration.len() as u64;
        row.overdue_handling = lists.overdue_handling.len() as u64;
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
                let list = if item.document.paper {
                    &mut lists.sent_paper
                } else {
                    &mut lists.sent_electronic
                };
                list.push(entry(item.id, item.document, 0, redact)?);
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
                let first = entry(item.id, item.document, number, redact)?;
                if received {
                    if first.view.stored.paper {
                        lists.received_paper.push(first.clone());
                    } else {
                        lists.received_electronic.push(first.clone());
                    }
                }
                for change in changes {
                    let at = Some(change.accepted_at_ms);
                    let with_change = || Entry {
                        changed_at_ms: at,
                        ..first.clone()
                    };
                    if change.code == Code::Rejected as u32 {
                        lists.rejected.push(with_change());
                    }
                    match change.registration_on_time {
                        Some(true) => lists.registered_on_time.push(with_change()),
                        Some(false) => lists.registered_late.push(with_change()),
                        None => {}
                    }
                    match change.completion_on_time {
                        Some(true) => lists.completed_on_time.push(with_change()),
                        Some(false) => lists.completed_late.push(with_change()),
                        None => {}
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

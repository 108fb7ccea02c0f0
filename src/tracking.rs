//! Following a document after it is sent: recipients' signed status
//! changes (edXML 02–06) and answers (15/16), the sender's signed
//! revocation, and a document's history.
//!
//! Here the signed status message is decoded and checked — the signature
//! under the same key rules as a document, each field named in errors —
//! and handed to the store, whose commit decides against the current state
//! whether the move is allowed (`lifecycle`). The store seals each change
//! with a receipt and appends it to the archive.

use std::sync::Arc;

use time::Date;

use crate::calendar::Calendar;
use crate::crypto;
use crate::deadlines::{hide_secret, DISTRICT_KINDS};
use crate::directory::Organization;
use crate::document;
use crate::error::{quote, Error, Result};
use crate::exchange::{DocumentView, Exchange};
use crate::lifecycle::Code;
use crate::pb;
use crate::store::{DocId, NewStatus, StatusOutcome, Store, StoredStatus};

/// Longest description (reason or note), as for a document's summary.
const MAX_DESCRIPTION: usize = 500;
/// Longest staff field, and the unit or person assigned.
const MAX_STAFF_FIELD: usize = 200;

/// A signed change as it arrived.
#[derive(Debug, Default)]
pub struct StatusInput {
    pub status_bytes: Vec<u8>,
    pub signature: Option<pb::DocumentSignature>,
}

/// One entry of a document's history: a signed change, or the 01 the
/// service set at delivery (`stored` is `None`; the document's receipt
/// proves it).
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub document: DocId,
    /// Organisation code of who made it.
    pub by: String,
    pub code: Option<Code>,
    pub at_ms: i64,
    pub stored: Option<StoredStatus>,
}

impl HistoryEntry {
    fn of(document: DocId, stored: StoredStatus) -> HistoryEntry {
        HistoryEntry {
            document,
            by: stored.org.clone(),
            code: Code::from_number(stored.code),
            at_ms: stored.accepted_at_ms,
            stored: Some(stored),
        }
    }
}

/// A document, its history, and how much of it the viewer may see.
#[derive(Debug)]
pub struct Followed {
    pub view: DocumentView,
    pub history: Vec<HistoryEntry>,
    /// Every recipient's status is shown, not only the viewer's own.
    pub every_recipient: bool,
}

pub struct Tracking {
    store: Arc<Store>,
    exchange: Arc<Exchange>,
    /// Working days, to judge whether a registration is on time.
    calendar: Arc<Calendar>,
}

impl Tracking {
    pub fn new(store: Arc<Store>, exchange: Arc<Exchange>, calendar: Arc<Calendar>) -> Tracking {
        Tracking {
            store,
            exchange,
            calendar,
        }
    }

    /// A recipient's status change or answer.
    pub async fn change_status(
        &self,
        caller: &Organization,
        input: StatusInput,
    ) -> Result<HistoryEntry> {
        let (message, new) = self.check(caller, input, false)?;
        self.commit(new, &message).await
    }

    /// The sender's revocation.
    pub async fn revoke(&self, caller: &Organization, input: StatusInput) -> Result<HistoryEntry> {
        let (message, new) = self.check(caller, input, true)?;
        self.commit(new, &message).await
    }

    async fn commit(&self, new: NewStatus, message: &pb::StatusMessage) -> Result<HistoryEntry> {
        let document = new.document;
        match self.store.change_status(new).await? {
            StatusOutcome::Accepted(stored) => Ok(HistoryEntry::of(document, stored)),
            StatusOutcome::NotFound => Err(Error::not_found(format!(
                "document {}",
                quote(&message.document_id)
            ))),
            StatusOutcome::Refused(refused) => {
                Err(Error::precondition("status.code", refused.to_string()))
            }
            StatusOutcome::AlreadyFrozen(frozen) => Err(Error::precondition(
                "status.document_id",
                format!("the document was already {frozen}; it cannot be revoked"),
            )),
            StatusOutcome::KeyNoLongerUsable => Err(Error::invalid(
                "signature.key_id",
                "the key stopped being usable while the status was being accepted; sign with a current key",
            )),
        }
    }

    /// Decodes and checks a signed status message from `caller`.
    fn check(
        &self,
        caller: &Organization,
        input: StatusInput,
        revocation: bool,
    ) -> Result<(pb::StatusMessage, NewStatus)> {
        let message: pb::StatusMessage =
            document::decode_signed(&input.status_bytes, "status", "lienthong.v1.StatusMessage")?;
        let directory = self.exchange.directory();
        let from = directory.org(&message.from);
        if from.map(|o| o.code) != Some(caller.code) {
            return Err(Error::invalid(
                "status.from",
                format!(
                    "{} is not you: a status is signed in the name of the caller, {} ({})",
                    quote(&message.from),
                    caller.code,
                    caller.alias
                ),
            ));
        }
        let document = DocId::parse(&message.document_id).ok_or_else(|| {
            Error::invalid(
                "status.document_id",
                format!(
                    "{} is not a document id (32 hexadecimal characters)",
                    quote(&message.document_id)
                ),
            )
        })?;
        let code = check_code(&message, revocation)?;
        check_fields(&message, code, self.store.clock().today())?;
        let key = self.exchange.rules().check_signed(
            caller,
            &input.status_bytes,
            input.signature.as_ref(),
            crypto::status_message,
            "the status",
        )?;
        let key_usable_until_ms = key.usable_until_ms();
        let signature = input.signature.unwrap_or_default();
        let new = NewStatus {
            document,
            from: caller.code,
            code,
            status_bytes: input.status_bytes,
            signing_key_id: signature.key_id,
            signature: signature.signature,
            key_usable_until_ms,
            assigned_to: message.assigned_to.trim().to_owned(),
            deadline: message.deadline.clone(),
            registration_on_time: None,
            completion_on_time: None,
        };
        let new = self.judge(new)?;
        Ok((message, new))
    }

    /// Judges, for the report, whether a move to 03–06 would be an on-time
    /// registration and a 06 an on-time completion, by today's date (the
    /// service's clock). The commit fixes the acceptance instant a moment
    /// later: a change sent across midnight is judged by the day it was
    /// checked on. The document's arrival date never changes; the due date
    /// of a completion is the caller's assignment deadline as it durably
    /// stands (else the document's own due date; none: on time).
    fn judge(&self, mut new: NewStatus) -> Result<NewStatus> {
        let Some(code) = new.code else {
            return Ok(new);
        };
        if !matches!(
            code,
            Code::Registered | Code::Assigned | Code::InProgress | Code::Completed
        ) {
            return Ok(new);
        }
        // Not durable yet (or not there): nothing to judge; the commit
        // decides whether the change is allowed at all.
        let Some(stored) = self.store.document(&new.document)? else {
            return Ok(new);
        };
        let today = self.store.clock().today();
        let arrival = crate::clock::vietnam_date(stored.accepted_at_ms);
        new.registration_on_time = Some(today <= self.calendar.registration_due(arrival));
        if code == Code::Completed {
            let assigned = stored
                .deliveries
                .iter()
                .find(|d| d.recipient == new.from.as_str())
                .and_then(|d| crate::clock::parse_date(&d.deadline));
            let due = match assigned {
                Some(date) => Some(date),
                None => {
                    let header = crate::document::header(stored.paper, &stored.document_bytes)?;
                    crate::clock::parse_date(&header.due_date)
                }
            };
            new.completion_on_time = Some(due.is_none_or(|due| today <= due));
        }
        Ok(new)
    }

    /// The history of a document for `caller`: everything for its sender,
    /// a recipient's own changes (and the revocation) for a recipient.
    /// Oldest first.
    pub fn history(&self, caller: &Organization, id: &str) -> Result<Vec<HistoryEntry>> {
        let view = self.exchange.readable(caller, "document_id", id)?;
        let sender = view.stored.sender == caller.code.as_str();
        self.history_of(&view, caller, sender)
    }

    /// A document as the dashboard shows it to `viewer`: to its parties,
    /// what `show` and `history` show them; to the district committee and
    /// its office, any document, with every recipient's status and change,
    /// a secret one without its subject — what their district deadline list
    /// and the report's explanation already show of it. Anyone else gets
    /// NOT_FOUND, as for an unknown id.
    pub fn follow(&self, viewer: &Organization, id: &str) -> Result<Followed> {
        let district = DISTRICT_KINDS.contains(&viewer.kind.as_str());
        let view = match self.exchange.readable(viewer, "id", id) {
            Ok(view) => view,
            Err(Error::NotFound { .. }) if district => {
                hide_secret(self.exchange.stored("id", id)?, viewer)
            }
            Err(e) => return Err(e),
        };
        let every_recipient = district || view.stored.sender == viewer.code.as_str();
        let history = self.history_of(&view, viewer, every_recipient)?;
        Ok(Followed {
            view,
            history,
            every_recipient,
        })
    }

    /// `view`'s history: every recipient's with `everything`, else
    /// `caller`'s own changes and the revocation. Oldest first.
    fn history_of(
        &self,
        view: &DocumentView,
        caller: &Organization,
        everything: bool,
    ) -> Result<Vec<HistoryEntry>> {
        let me = caller.code.as_str();
        let mut entries: Vec<HistoryEntry> = view
            .stored
            .deliveries
            .iter()
            .filter(|d| everything || d.recipient == me)
            .map(|d| HistoryEntry {
                document: view.id,
                by: d.recipient.clone(),
                code: Some(Code::Arrived),
                at_ms: view.stored.accepted_at_ms,
                stored: None,
            })
            .collect();
        entries.extend(
            self.store
                .statuses(&view.id)?
                .into_iter()
                .filter(|s| everything || s.org == me || s.revocation)
                .map(|s| HistoryEntry::of(view.id, s)),
        );
        entries.sort_by(|a, b| (a.at_ms, &a.by).cmp(&(b.at_ms, &b.by)));
        Ok(entries)
    }
}

/// The code a message asks for; `None` for a revocation.
fn check_code(message: &pb::StatusMessage, revocation: bool) -> Result<Option<Code>> {
    let operation = pb::Operation::try_from(message.operation).ok();
    if revocation {
        if operation != Some(pb::Operation::Revoke) || message.code != 0 {
            return Err(Error::invalid(
                "status.operation",
                "a revocation carries operation OPERATION_REVOKE and no status code",
            ));
        }
        return Ok(None);
    }
    if operation != Some(pb::Operation::New) {
        return Err(Error::invalid(
            "status.operation",
            "a status change carries no operation; revoke with the Revoke call, update or replace by sending a new document",
        ));
    }
    match u32::try_from(message.code).ok().and_then(Code::from_number) {
        Some(Code::Arrived) => Err(Error::invalid(
            "status.code",
            "01 arrived is set by the service at delivery",
        )),
        Some(code) => Ok(Some(code)),
        None => Err(Error::invalid(
            "status.code",
            format!(
                "{} is not a status a recipient sets: 02 rejected, 03 registered, 04 assigned, 05 in progress, 06 completed, 15 agreed, 16 refused",
                message.code
            ),
        )),
    }
}

/// The free text of a status follows the text rules of a document; a
/// handling deadline lies at most `MAX_DUE_YEARS` after `today`.
fn check_fields(message: &pb::StatusMessage, code: Option<Code>, today: Date) -> Result<()> {
    document::check_text(
        "status.description",
        &message.description,
        MAX_DESCRIPTION,
        false,
    )?;
    if message.description.trim().is_empty() && matches!(code, None | Some(Code::Rejected)) {
        return Err(Error::invalid(
            "status.description",
            "the reason is required to reject or revoke a document",
        ));
    }
    let staff = message.staff.clone().unwrap_or_default();
    for (field, value) in [
        ("status.staff.department", &staff.department),
        ("status.staff.name", &staff.name),
        ("status.staff.mobile", &staff.mobile),
        ("status.staff.email", &staff.email),
        ("status.assigned_to", &message.assigned_to),
    ] {
        document::check_line(field, value, MAX_STAFF_FIELD, false)?;
    }
    let assigning = code == Some(Code::Assigned);
    if assigning && message.assigned_to.trim().is_empty() {
        return Err(Error::invalid(
            "status.assigned_to",
            "04 assigned names the unit or person the document is assigned to",
        ));
    }
    if !assigning && (!message.assigned_to.is_empty() || !message.deadline.is_empty()) {
        return Err(Error::invalid(
            "status.assigned_to",
            "an assignee and a handling deadline go with 04 assigned only",
        ));
    }
    if !message.deadline.is_empty() {
        let deadline = crate::clock::parse_date(&message.deadline).ok_or_else(|| {
            Error::invalid(
                "status.deadline",
                format!("{} is not a date YYYY-MM-DD", quote(&message.deadline)),
            )
        })?;
        let latest = document::years_after(today, document::MAX_DUE_YEARS);
        if deadline > latest {
            return Err(Error::invalid(
                "status.deadline",
                format!(
                    "{} is more than {} years after today ({}); check the year",
                    message.deadline,
                    document::MAX_DUE_YEARS,
                    crate::clock::format_date(today)
                ),
            ));
        }
    }
    Ok(())
}

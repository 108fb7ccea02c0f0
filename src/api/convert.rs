//! From domain values to the protobuf messages of `lienthong.v1`.

use crate::clock;
use crate::deadlines::Deadline;
use crate::directory::{Directory, Group, OrgCode, Organization};
use crate::document;
use crate::exchange::{DocumentView, Exchange, Fetched, InboxView, Listing, Sent};
use crate::keys::RegisteredKey;
use crate::lifecycle::Code;
use crate::pb;
use crate::store::{DeadlineKind, StoredDelivery};
use crate::tracking::HistoryEntry;
use prost::Message;

pub fn organization(org: &Organization) -> pb::Organization {
    pb::Organization {
        code: org.code.to_string(),
        alias: org.alias.clone(),
        name: org.name.clone(),
        kind: org.kind.clone(),
        abbreviation: org.abbreviation().unwrap_or_default().to_owned(),
    }
}

/// An organisation by code. One removed from the directory since it sent or
/// received still shows by its code.
pub fn organization_by_code(directory: &Directory, code: &str) -> pb::Organization {
    OrgCode::parse(code)
        .and_then(|c| directory.org_by_code(&c))
        .map(organization)
        .unwrap_or_else(|| pb::Organization {
            code: code.to_owned(),
            ..Default::default()
        })
}

pub fn group(g: &Group) -> pb::Group {
    pb::Group {
        alias: g.alias.clone(),
        name: g.name.clone(),
        kinds: g.kinds.clone(),
    }
}

/// A stored status number as the API's code (01 when never moved).
pub(super) fn status_code(n: u32) -> i32 {
    Code::from_number(n).map_or(pb::StatusCode::Arrived as i32, |c| c as i32)
}

pub(super) fn delivery(
    directory: &Directory,
    d: &StoredDelivery,
    accepted_at_ms: i64,
) -> pb::Delivery {
    pb::Delivery {
        recipient: Some(organization_by_code(directory, &d.recipient)),
        arrival_year: d.arrival_year,
        arrival_number: d.arrival_number,
        status: status_code(d.status),
        status_at_ms: if d.status_at_ms == 0 {
            accepted_at_ms
        } else {
            d.status_at_ms
        },
        answer: d.answer as i32,
    }
}

/// Every recipient's delivery. Its status is the sender's and that
/// recipient's business: `viewer` (a recipient) sees only its own.
fn deliveries(directory: &Directory, view: &DocumentView, viewer: &str) -> Vec<pb::Delivery> {
    let sender = view.stored.sender == viewer;
    view.stored
        .deliveries
        .iter()
        .map(|d| {
            let mut out = delivery(directory, d, view.stored.accepted_at_ms);
            if !sender && d.recipient != viewer {
                out.status = pb::StatusCode::Unspecified as i32;
                out.status_at_ms = 0;
                out.answer = 0;
            }
            out
        })
        .collect()
}

fn ids(list: &[Vec<u8>]) -> Vec<String> {
    list.iter().map(hex::encode).collect()
}

pub fn edxml_id(view: &DocumentView) -> String {
    let h = &view.header;
    document::edxml_id(
        &view.stored.sender,
        &h.promulgation_date,
        h.number,
        &h.notation,
    )
}

/// Who issued a document: its sender; for a paper record, the issuer as
/// the record names it (an organisation of the directory, or the name of
/// a body outside it).
pub fn issuer(directory: &Directory, view: &DocumentView) -> pb::Organization {
    if !view.stored.paper {
        return organization_by_code(directory, &view.stored.sender);
    }
    let from = view.header.from.trim();
    directory
        .org(from)
        .map(organization)
        .unwrap_or_else(|| pb::Organization {
            name: from.to_owned(),
            ..Default::default()
        })
}

pub fn summary(directory: &Directory, view: &DocumentView) -> pb::DocumentSummary {
    let h = &view.header;
    pb::DocumentSummary {
        id: view.id.to_string(),
        sender: Some(issuer(directory, view)),
        number: h.number,
        notation: h.notation.clone(),
        document_type: h.document_type.clone(),
        subject: h.subject.clone(),
        promulgation_date: h.promulgation_date.clone(),
        due_date: h.due_date.clone(),
        urgency: h.urgency,
        secrecy: h.secrecy,
        accepted_at_ms: view.stored.accepted_at_ms,
        attachment_count: view.stored.attachment_count,
        revoked: view.stored.revoked_at_ms != 0,
        superseded_by: ids(&view.stored.superseded_by),
        paper: view.stored.paper,
    }
}

pub fn signing_key(key: &RegisteredKey) -> pb::SigningKey {
    pb::SigningKey {
        key_id: key.key_id.clone(),
        org: key.org.to_string(),
        algorithm: key.public.algorithm.name().into(),
        public_key: key.public.spki_der.clone(),
        not_before_ms: key.not_before_ms,
        not_after_ms: key.not_after_ms,
        revoked_at_ms: key.revoked_at_ms,
    }
}

fn sealed_receipt(view: &DocumentView) -> pb::SealedReceipt {
    pb::SealedReceipt {
        receipt: view.stored.receipt.clone(),
        signature: view.stored.receipt_signature.clone(),
    }
}

pub fn send_response(directory: &Directory, sent: &Sent) -> pb::SendResponse {
    pb::SendResponse {
        id: sent.view.id.to_string(),
        edxml_id: edxml_id(&sent.view),
        accepted_at_ms: sent.view.stored.accepted_at_ms,
        deliveries: deliveries(directory, &sent.view, &sent.view.stored.sender),
        duplicate: sent.duplicate,
        receipt: Some(sealed_receipt(&sent.view)),
        number: sent.view.header.number,
    }
}

pub fn inbox_entry(
    directory: &Directory,
    caller: &Organization,
    item: &InboxView,
) -> pb::InboxEntry {
    let mine = item
        .view
        .stored
        .deliveries
        .iter()
        .find(|d| d.recipient == caller.code.as_str());
    pb::InboxEntry {
        document: Some(summary(directory, &item.view)),
        arrival_year: u32::from(item.arrival_year),
        arrival_number: item.arrival_number,
        status: status_code(mine.map_or(0, |d| d.status)),
    }
}

pub fn inbox_response(
    directory: &Directory,
    caller: &Organization,
    listing: Listing<InboxView>,
) -> pb::ListInboxResponse {
    pb::ListInboxResponse {
        entries: listing
            .items
            .iter()
            .map(|i| inbox_entry(directory, caller, i))
            .collect(),
        next_page_token: listing.next_page_token,
    }
}

pub fn outbox_entry(directory: &Directory, view: &DocumentView) -> pb::OutboxEntry {
    pb::OutboxEntry {
        document: Some(summary(directory, view)),
        deliveries: deliveries(directory, view, &view.stored.sender),
    }
}

/// One entry of a document's history.
pub fn status_change(directory: &Directory, entry: &HistoryEntry) -> pb::StatusChange {
    let by = Some(organization_by_code(directory, &entry.by));
    let code = entry.code.map_or(0, |c| c as i32);
    let Some(stored) = &entry.stored else {
        return pb::StatusChange {
            document_id: entry.document.to_string(),
            by,
            code,
            accepted_at_ms: entry.at_ms,
            ..Default::default()
        };
    };
    pb::StatusChange {
        document_id: entry.document.to_string(),
        by,
        change: stored.change,
        code,
        operation: if stored.revocation {
            pb::Operation::Revoke as i32
        } else {
            pb::Operation::New as i32
        },
        status: stored.status_bytes.clone(),
        // The bytes were checked when they came in; a stored message that
        // no longer decodes shows empty rather than failing the history.
        message: pb::StatusMessage::decode(stored.status_bytes.as_slice()).ok(),
        signature: Some(pb::DocumentSignature {
            key_id: stored.signing_key_id.clone(),
            signature: stored.signature.clone(),
        }),
        receipt: Some(pb::SealedReceipt {
            receipt: stored.receipt.clone(),
            signature: stored.receipt_signature.clone(),
        }),
        accepted_at_ms: stored.accepted_at_ms,
        leaf_index: Some(stored.leaf_index),
    }
}

pub fn get_response(
    exchange: &Exchange,
    caller: &Organization,
    fetched: Fetched,
) -> pb::GetDocumentResponse {
    let directory = exchange.directory();
    let view = &fetched.view;
    let my_delivery = view
        .stored
        .deliveries
        .iter()
        .find(|d| d.recipient == caller.code.as_str())
        .map(|d| delivery(directory, d, view.stored.accepted_at_ms));
    let attachments = view
        .header
        .attachments
        .iter()
        .cloned()
        .zip(fetched.contents)
        .map(|(r, content)| pb::Attachment {
            r#ref: Some(r),
            content: content.unwrap_or_default(),
        })
        .collect();
    pb::GetDocumentResponse {
        id: view.id.to_string(),
        edxml_id: edxml_id(view),
        document_bytes: view.stored.document_bytes.clone(),
        document: Some(view.header.clone()),
        sender: Some(organization_by_code(directory, &view.stored.sender)),
        deliveries: deliveries(directory, view, caller.code.as_str()),
        attachments,
        accepted_at_ms: view.stored.accepted_at_ms,
        my_delivery,
        signature: Some(pb::DocumentSignature {
            key_id: view.stored.signing_key_id.clone(),
            signature: view.stored.signature.clone(),
        }),
        receipt: Some(sealed_receipt(view)),
        // A key removed from the registry since is no longer offered; the
        // receipt still names it.
        signing_key: exchange
            .keys()
            .get(&view.stored.signing_key_id)
            .map(signing_key),
        service_key: Some(exchange.service_key().to_pb()),
        paper: view.stored.paper,
        revocation: fetched.revocation.map(|stored| {
            status_change(
                directory,
                &HistoryEntry {
                    document: view.id,
                    by: stored.org.clone(),
                    code: None,
                    at_ms: stored.accepted_at_ms,
                    stored: Some(stored),
                },
            )
        }),
        superseded_by: ids(&view.stored.superseded_by),
        supersedes: if view.stored.supersedes.is_empty() {
            String::new()
        } else {
            hex::encode(&view.stored.supersedes)
        },
        replies: fetched.replies.iter().map(|id| id.to_string()).collect(),
    }
}

/// One open deadline of a recipient.
pub fn deadline(directory: &Directory, d: &Deadline) -> pb::DeadlineEntry {
    pb::DeadlineEntry {
        document: Some(summary(directory, &d.view)),
        recipient: Some(organization_by_code(directory, d.recipient.as_str())),
        arrival_year: d.arrival_year,
        arrival_number: d.arrival_number,
        kind: match d.kind {
            DeadlineKind::Handling => pb::DeadlineKind::Handling,
            DeadlineKind::Registration => pb::DeadlineKind::Registration,
        } as i32,
        due_date: clock::format_date(d.due),
        working_days_left: d.working_days_left,
        overdue: d.overdue,
        status: d.status as i32,
        assigned_to: d.assigned_to.clone(),
    }
}

/// A report as the API shows it.
pub fn report(report: &crate::report::Report) -> pb::GetReportResponse {
    let target = report.target_percent;
    pb::GetReportResponse {
        from_month: crate::report::format_month(report.period.from),
        to_month: crate::report::format_month(report.period.to),
        target_percent: target,
        today: clock::format_date(report.today),
        rows: report.rows.iter().map(|r| report_row(r, target)).collect(),
        district: report.district.as_ref().map(|r| report_row(r, target)),
    }
}

/// The window of an explanation's lists, from the request's `offset` and
/// `limit` (0: the default).
pub fn explain_window(offset: u32, limit: u32) -> crate::error::Result<crate::report::Window> {
    use crate::report::Window;
    let limit = match usize::try_from(limit).unwrap_or(usize::MAX) {
        0 => Window::DEFAULT_LIMIT,
        n if n > Window::MAX_LIMIT => {
            return Err(crate::error::Error::invalid(
                "limit",
                format!(
                    "at most {} documents per list; ask again with a larger offset for more",
                    Window::MAX_LIMIT
                ),
            ))
        }
        n => n,
    };
    Ok(Window {
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        limit,
    })
}

/// An explanation of one row as the API shows it.
pub fn explanation(
    directory: &Directory,
    explanation: &crate::report::Explanation,
) -> pb::ExplainReportResponse {
    let target = explanation.target_percent;
    let l = &explanation.lists;
    let list = |entries: &[crate::report::Entry]| {
        entries
            .iter()
            .map(|e| explained(directory, e))
            .collect::<Vec<_>>()
    };
    pb::ExplainReportResponse {
        from_month: crate::report::format_month(explanation.period.from),
        to_month: crate::report::format_month(explanation.period.to),
        target_percent: target,
        today: clock::format_date(explanation.today),
        row: Some(report_row(&explanation.row, target)),
        sent_electronic: list(&l.sent_electronic),
        sent_paper: list(&l.sent_paper),
        received_electronic: list(&l.received_electronic),
        received_paper: list(&l.received_paper),
        registered_on_time: list(&l.registered_on_time),
        registered_late: list(&l.registered_late),
        completed_on_time: list(&l.completed_on_time),
        completed_late: list(&l.completed_late),
        rejected: list(&l.rejected),
        offset: u32::try_from(l.window.offset).unwrap_or(u32::MAX),
        limit: u32::try_from(l.window.limit).unwrap_or(u32::MAX),
        overdue_registration: list(&l.overdue_registration),
        overdue_handling: list(&l.overdue_handling),
    }
}

fn explained(directory: &Directory, entry: &crate::report::Entry) -> pb::ExplainedDocument {
    let view = &entry.view;
    let header = &view.header;
    let name = |code: &str| {
        directory
            .org(code)
            .map_or_else(|| code.to_owned(), |o| o.alias.clone())
    };
    // Sent: to its recipients (a paper record: whom the header names);
    // received: from its sender (a paper record: whom the header names).
    let counterpart = if entry.arrival_number == 0 && !view.stored.paper {
        let recipients: Vec<String> = view
            .stored
            .deliveries
            .iter()
            .map(|d| name(&d.recipient))
            .collect();
        recipients.join(", ")
    } else if entry.arrival_number == 0 {
        header.to.join(", ")
    } else if view.stored.paper {
        header.from.clone()
    } else {
        name(&view.stored.sender)
    };
    let date = |ms: i64| clock::format_date(clock::vietnam_date(ms));
    pb::ExplainedDocument {
        id: view.id.to_string(),
        number: header.number,
        notation: header.notation.clone(),
        promulgation_date: header.promulgation_date.clone(),
        subject: header.subject.clone(),
        paper: view.stored.paper,
        counterpart,
        accepted_date: date(view.stored.accepted_at_ms),
        accepted_at_ms: view.stored.accepted_at_ms,
        arrival_number: entry.arrival_number,
        changed_date: entry.changed_at_ms.map(date).unwrap_or_default(),
        changed_at_ms: entry.changed_at_ms.unwrap_or_default(),
        due_date: entry.due.map(clock::format_date).unwrap_or_default(),
    }
}

fn report_row(row: &crate::report::Row, target: f64) -> pb::ReportRow {
    let c = &row.counts;
    let rate = row.electronic_percent();
    pb::ReportRow {
        organization: row.organization.as_ref().map(organization),
        sent_electronic: c.sent_electronic,
        sent_paper: c.sent_paper,
        received_electronic: c.received_electronic,
        received_paper: c.received_paper,
        electronic_percent: rate,
        meets_target: rate.is_some_and(|r| r >= target),
        registered_on_time: c.registered_on_time,
        registered_late: c.registered_late,
        median_registration_hours: row.median_registration_hours(),
        completed_on_time: c.completed_on_time,
        completed_late: c.completed_late,
        rejected: c.rejected,
        overdue_registration: row.overdue_registration,
        overdue_handling: row.overdue_handling,
    }
}

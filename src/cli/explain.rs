//! `report --explain ORG` (called by `report`): the documents behind each
//! number of one organisation's row, as a list per number or one JSON
//! document.

use serde_json::{json, Value};

use super::output::{self, outln, print_json};
use crate::pb;

/// One number of the row: its JSON key, its heading, its full length (the
/// row's number) and the window of its list the server returned.
type Numbered<'a> = (&'static str, &'static str, u64, &'a [pb::ExplainedDocument]);

/// Each number of the row, with its list.
fn lists(r: &pb::ExplainReportResponse) -> [Numbered<'_>; 11] {
    let row = r.row.clone().unwrap_or_default();
    [
        (
            "sent_electronic",
            "Sent electronically",
            row.sent_electronic,
            &r.sent_electronic,
        ),
        ("sent_paper", "Sent on paper", row.sent_paper, &r.sent_paper),
        (
            "received_electronic",
            "Received electronically",
            row.received_electronic,
            &r.received_electronic,
        ),
        (
            "received_paper",
            "Received on paper",
            row.received_paper,
            &r.received_paper,
        ),
        (
            "registered_on_time",
            "Registered on time",
            row.registered_on_time,
            &r.registered_on_time,
        ),
        (
            "registered_late",
            "Registered late",
            row.registered_late,
            &r.registered_late,
        ),
        (
            "completed_on_time",
            "Completed on time",
            row.completed_on_time,
            &r.completed_on_time,
        ),
        (
            "completed_late",
            "Completed late",
            row.completed_late,
            &r.completed_late,
        ),
        ("rejected", "Rejected", row.rejected, &r.rejected),
        (
            "overdue_registration",
            "Registration overdue now",
            row.overdue_registration,
            &r.overdue_registration,
        ),
        (
            "overdue_handling",
            "Handling overdue now",
            row.overdue_handling,
            &r.overdue_handling,
        ),
    ]
}

fn document_json(d: &pb::ExplainedDocument) -> Value {
    json!({
        "id": d.id,
        "number": d.number,
        "notation": d.notation,
        "so_ky_hieu": output::so_ky_hieu(d.number, &d.notation),
        "promulgation_date": d.promulgation_date,
        "subject": d.subject,
        "paper": d.paper,
        "counterpart": d.counterpart,
        "accepted_date": d.accepted_date,
        "accepted_at": output::at(d.accepted_at_ms),
        "arrival_number": (d.arrival_number > 0).then_some(d.arrival_number),
        "changed_date": (!d.changed_date.is_empty()).then_some(&d.changed_date),
        "due_date": (!d.due_date.is_empty()).then_some(&d.due_date),
    })
}

pub fn print(response: &pb::ExplainReportResponse, json: bool) {
    let row = response.row.clone().unwrap_or_default();
    if json {
        let mut numbers = serde_json::Map::new();
        let mut totals = serde_json::Map::new();
        for (key, _, total, list) in lists(response) {
            numbers.insert(
                key.to_owned(),
                Value::Array(list.iter().map(document_json).collect()),
            );
            totals.insert(key.to_owned(), json!(total));
        }
        print_json(&json!({
            "organization": output::org(&row.organization),
            "from_month": response.from_month,
            "to_month": response.to_month,
            "target_percent": response.target_percent,
            "today": response.today,
            "electronic_percent": row.electronic_percent,
            "totals": totals,
            "offset": response.offset,
            "limit": response.limit,
            "documents": numbers,
        }));
        return;
    }
    outln!(
        "{}: the documents behind its report {} to {} (overdue as of {})",
        output::org_short(&row.organization),
        response.from_month,
        response.to_month,
        response.today
    );
    let mut cut = false;
    for (_, heading, total, list) in lists(response) {
        outln!("");
        if list.len() as u64 == total {
            outln!("{heading}: {total}");
        } else {
            cut = true;
            let first = u64::from(response.offset);
            match list.len() as u64 {
                0 => outln!("{heading}: {total} (none from no. {})", first + 1),
                n => outln!(
                    "{heading}: {total} (nos. {}–{} below)",
                    first + 1,
                    first + n
                ),
            }
        }
        for d in list {
            outln!("  {}", line(d));
        }
    }
    if cut {
        outln!("");
        outln!(
            "Lists are cut to {} documents; --offset {} shows the next ones.",
            response.limit,
            u64::from(response.offset) + u64::from(response.limit)
        );
    }
}

/// `12/CT-UBND  2026-11-02  Subject…  arrived 2026-11-02 (no. 7), registered 2026-11-05`.
fn line(d: &pb::ExplainedDocument) -> String {
    let mut dates = vec![match d.arrival_number {
        0 => format!("sent {}", d.accepted_date),
        n => format!("arrived {} (no. {n})", d.accepted_date),
    }];
    if !d.changed_date.is_empty() {
        dates.push(format!("changed {}", d.changed_date));
    }
    if !d.due_date.is_empty() {
        dates.push(format!("due {}", d.due_date));
    }
    format!(
        "{:<18} {:<10}  {:<40}  {}{}  {}  {}",
        output::cut(&output::so_ky_hieu(d.number, &d.notation), 18),
        d.promulgation_date,
        output::cut(&d.subject, 40),
        if d.paper { "[paper] " } else { "" },
        output::cut(&d.counterpart, 24),
        dates.join(", "),
        d.id
    )
}

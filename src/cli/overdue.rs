//! `overdue`: the documents to register or handle that are late or due
//! soon, the caller's or (`--district`) the whole district's.

use clap::Args;
use serde_json::{json, Value};

use super::connection::{connect, Connection};
use super::error::Result;
use super::output::{self, outln, print_json};
use crate::pb;

#[derive(Args)]
pub struct OverdueArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Also list what is due within DAYS calendar days from today (0: the
    /// late ones and those due today).
    #[arg(long, value_name = "DAYS", default_value_t = 0)]
    pub within: u32,
    /// Every organisation's deadlines, not only yours (the district
    /// committee and its office only).
    #[arg(long)]
    pub district: bool,
}

pub async fn run(args: OverdueArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    // Page by page (the server sends at most a few thousand at a time), the
    // table printed as the pages come.
    let mut page_token = String::new();
    let mut all = Vec::new();
    let mut first = true;
    loop {
        let response = client
            .list_deadlines(pb::ListDeadlinesRequest {
                within_days: args.within,
                district: args.district,
                // The largest page: each page walks the index's keys.
                page_size: crate::deadlines::MAX_PAGE as u32,
                page_token: page_token.clone(),
            })
            .await?
            .into_inner();
        if args.conn.json {
            all.extend(response.entries.iter().map(entry_json));
        } else {
            print_page(&args, &response, first);
        }
        first = false;
        if response.next_page_token.is_empty() {
            if args.conn.json {
                print_json(&json!({ "today": response.today, "entries": all }));
            }
            return Ok(());
        }
        page_token = response.next_page_token;
    }
}

/// One page of the table; the first prints the heading (or that there is
/// nothing).
fn print_page(args: &OverdueArgs, response: &pb::ListDeadlinesResponse, first: bool) {
    if first && response.entries.is_empty() {
        outln!(
            "nothing late or due by {} (today is {})",
            if args.within == 0 {
                "today".to_owned()
            } else {
                format!("{} days from now", args.within)
            },
            response.today
        );
        return;
    }
    if first {
        outln!(
            "{:<10} {:<12} {:<13} {:<20} {:<10} {:<14} {:<16} SUBJECT",
            "WHEN",
            "DUE",
            "TO DO",
            "RECIPIENT",
            "ARRIVAL",
            "NUMBER",
            "STATUS"
        );
    }
    for e in &response.entries {
        let s = e.document.clone().unwrap_or_default();
        outln!(
            "{:<10} {:<12} {:<13} {:<20} {:<10} {:<14} {:<16} {}",
            when(e),
            e.due_date,
            kind(e.kind),
            output::org_short(&e.recipient),
            format!("{}/{}", e.arrival_number, e.arrival_year),
            output::so_ky_hieu(s.number, &s.notation),
            output::status_name(e.status),
            output::cut(&s.subject, 50)
        );
    }
}

/// `late 3`, `today`, `in 2`: working days, as the deadline counts them
/// (a deadline that passed over a weekend is late by 0 working days).
fn when(e: &pb::DeadlineEntry) -> String {
    match (e.overdue, e.working_days_left) {
        (true, days) if days < 0 => format!("late {}", -days),
        (true, _) => "late".to_owned(),
        (false, 0) => "today".to_owned(),
        (false, days) => format!("in {days}"),
    }
}

/// What is to do, as the table says it.
fn kind(kind: i32) -> &'static str {
    match pb::DeadlineKind::try_from(kind) {
        Ok(pb::DeadlineKind::Registration) => "register",
        Ok(pb::DeadlineKind::Handling) => "handle",
        _ => "?",
    }
}

/// The kind as JSON names it.
fn kind_name(kind: i32) -> &'static str {
    match pb::DeadlineKind::try_from(kind) {
        Ok(pb::DeadlineKind::Registration) => "registration",
        Ok(pb::DeadlineKind::Handling) => "handling",
        _ => "unspecified",
    }
}

fn entry_json(e: &pb::DeadlineEntry) -> Value {
    json!({
        "document": e.document.as_ref().map(output::summary),
        "recipient": output::org(&e.recipient),
        "arrival_year": e.arrival_year,
        "arrival_number": e.arrival_number,
        "kind": kind_name(e.kind),
        "due_date": e.due_date,
        "working_days_left": e.working_days_left,
        "overdue": e.overdue,
        "status": output::status_name(e.status),
        "assigned_to": e.assigned_to,
    })
}

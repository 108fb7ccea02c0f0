//! `lienthong demo`: a small demo year, then a server on its data
//! directory; the report for the year and for one month equals, for every
//! organisation, a recount made from the documents themselves (outboxes,
//! inboxes, paper flags and histories, never the counters), asked as the
//! committee, which sees every row.

use std::collections::HashMap;
use std::sync::Arc;

use lienthong::calendar::Calendar;
use lienthong::client;
use lienthong::clock::{parse_date, vietnam_date};
use lienthong::lifecycle::Code;
use lienthong::pb;
use lienthong::server::{self, ServerConfig};
use time::Date;

type Client = lienthong::pb::exchange_client::ExchangeClient<tonic::transport::Channel>;

/// The figures of a row, recounted.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Recount {
    sent_electronic: u64,
    sent_paper: u64,
    received_electronic: u64,
    received_paper: u64,
    registered_on_time: u64,
    registered_late: u64,
    completed_on_time: u64,
    completed_late: u64,
    rejected: u64,
}

fn of_row(row: &pb::ReportRow) -> Recount {
    Recount {
        sent_electronic: row.sent_electronic,
        sent_paper: row.sent_paper,
        received_electronic: row.received_electronic,
        received_paper: row.received_paper,
        registered_on_time: row.registered_on_time,
        registered_late: row.registered_late,
        completed_on_time: row.completed_on_time,
        completed_late: row.completed_late,
        rejected: row.rejected,
    }
}

/// `(year, month)` of a date; a period is a year and optionally a month.
fn within(date: Date, year: i32, month: Option<u8>) -> bool {
    date.year() == year && month.is_none_or(|m| u8::from(date.month()) == m)
}

/// Recounts `org`'s figures for the period from its outbox, its inbox and
/// its own history of each document it received.
async fn recount(client: &Client, org: &str, year: i32, month: Option<u8>) -> Recount {
    let calendar = Calendar::builtin();
    let mut out = Recount::default();
    let (sent, _) = client::outbox_pages(client, String::new(), 0, true)
        .await
        .expect("outbox");
    for entry in sent {
        let summary = entry.document.expect("summary");
        if within(vietnam_date(summary.accepted_at_ms), year, month) {
            match summary.paper {
                true => out.sent_paper += 1,
                false => out.sent_electronic += 1,
            }
        }
    }
    let (received, _) = client::inbox_pages(client, String::new(), 0, true)
        .await
        .expect("inbox");
    for entry in received {
        let summary = entry.document.expect("summary");
        let arrival = vietnam_date(summary.accepted_at_ms);
        if within(arrival, year, month) {
            match summary.paper {
                true => out.received_paper += 1,
                false => out.received_electronic += 1,
            }
        }
        let changes = client
            .clone()
            .get_history(pb::GetHistoryRequest {
                document_id: summary.id.clone(),
            })
            .await
            .expect("history")
            .into_inner()
            .changes;
        let mut registered = false;
        let mut deadline = parse_date(&summary.due_date);
        for c in changes
            .iter()
            .filter(|c| c.by.as_ref().is_some_and(|b| b.alias == org) && c.receipt.is_some())
        {
            let Some(code) = Code::from_number(c.code as u32) else {
                continue;
            };
            let day = vietnam_date(c.accepted_at_ms);
            let counts = within(day, year, month);
            if code == Code::Assigned {
                if let Some(d) = c.message.as_ref().and_then(|m| parse_date(&m.deadline)) {
                    deadline = Some(d);
                }
            }
            if code == Code::Rejected && counts {
                out.rejected += 1;
            }
            if !registered
                && matches!(
                    code,
                    Code::Registered | Code::Assigned | Code::InProgress | Code::Completed
                )
            {
                registered = true;
                if counts {
                    if day <= calendar.registration_due(arrival) {
                        out.registered_on_time += 1;
                    } else {
                        out.registered_late += 1;
                    }
                }
            }
            if code == Code::Completed && counts {
                match deadline {
                    Some(due) if day > due => out.completed_late += 1,
                    _ => out.completed_on_time += 1,
                }
            }
        }
    }
    out
}

async fn report(client: &Client, period: &str) -> HashMap<String, Recount> {
    client
        .clone()
        .get_report(pb::GetReportRequest {
            period: period.into(),
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner()
        .rows
        .iter()
        .map(|r| {
            (
                r.organization.as_ref().expect("org").alias.clone(),
                of_row(r),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_demo_year_equals_a_recount_from_its_documents() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("demo");
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = done.clone();
    let made = lienthong::demo::demo(
        &data,
        150,
        7,
        Arc::new(move |p: lienthong::demo::Progress| {
            seen.store(p.done, std::sync::atomic::Ordering::Relaxed);
        }),
    )
    .await
    .expect("the demo runs");
    assert_eq!(made.documents, 150);
    assert_eq!(made.revoked, 1);
    assert!(made.paper > 0 && made.paper_received > 0 && made.status_changes > 0);
    assert!(done.load(std::sync::atomic::Ordering::Relaxed) > made.documents);

    // The directory is an ordinary one for a server.
    let mut config = ServerConfig::new(&data);
    config.listen = "127.0.0.1:0".parse().expect("address");
    let running = server::start(config)
        .await
        .expect("a server on the demo's data");
    let url = format!("https://{}", running.addr);
    let pki = data.join("pki");
    let committee = client::connect_as(&url, &pki, "ubnd-huyen")
        .await
        .expect("connect");

    let year = parse_date(&made.first_day).expect("first day").year();
    let month = 3u8;
    let directory = lienthong::directory::Directory::builtin().expect("directory");
    let year_rows = report(&committee, &year.to_string()).await;
    let month_rows = report(&committee, &format!("{year}-{month:02}")).await;
    assert_eq!(year_rows.len(), directory.organizations().len());
    let mut total = Recount::default();
    for org in directory.organizations() {
        let client = client::connect_as(&url, &pki, &org.alias)
            .await
            .expect("connect");
        let counted = recount(&client, &org.alias, year, None).await;
        assert_eq!(year_rows[&org.alias], counted, "{} in {year}", org.alias);
        let counted_month = recount(&client, &org.alias, year, Some(month)).await;
        assert_eq!(
            month_rows[&org.alias], counted_month,
            "{} in {year}-{month:02}",
            org.alias
        );
        total.sent_paper += counted.sent_paper;
        total.received_paper += counted.received_paper;
        total.registered_late += counted.registered_late;
        total.completed_late += counted.completed_late;
        total.rejected += counted.rejected;
    }
    // The year holds every kind of count.
    assert!(
        total.sent_paper > 0 && total.received_paper > 0,
        "{total:?}"
    );
    assert!(
        total.registered_late > 0 && total.completed_late > 0,
        "{total:?}"
    );
    running.shutdown().await.expect("clean shutdown");
}

//! The report's explanation through the real gRPC API: after mixed traffic
//! (electronic and paper, registered on time and late, completed on time
//! and late, rejected, left overdue), each list of documents behind a row
//! is as long as the row's number; who may explain whose row.

use std::collections::HashSet;

use crate::common::*;
use crate::lifecycle::{change, message};
use crate::numbering::server_at;
use crate::paper::{incoming, outgoing, PROVINCE};
use crate::report::{parties, random_traffic, record_monday, report, MONDAY_2_NOVEMBER};
use lienthong::lifecycle::Code;
use lienthong::pb;
use tonic::Code as Grpc;

async fn explain(
    server: &TestServer,
    caller: &str,
    org: &str,
    period: &str,
) -> Result<pb::ExplainReportResponse, tonic::Status> {
    server
        .client(caller)
        .await
        .explain_report(pb::ExplainReportRequest {
            organization: org.into(),
            period: period.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Each number of `row` and the length of the list behind it.
fn numbers(row: &pb::ReportRow, e: &pb::ExplainReportResponse) -> Vec<(&'static str, u64, usize)> {
    vec![
        (
            "sent_electronic",
            row.sent_electronic,
            e.sent_electronic.len(),
        ),
        ("sent_paper", row.sent_paper, e.sent_paper.len()),
        (
            "received_electronic",
            row.received_electronic,
            e.received_electronic.len(),
        ),
        ("received_paper", row.received_paper, e.received_paper.len()),
        (
            "registered_on_time",
            row.registered_on_time,
            e.registered_on_time.len(),
        ),
        (
            "registered_late",
            row.registered_late,
            e.registered_late.len(),
        ),
        (
            "completed_on_time",
            row.completed_on_time,
            e.completed_on_time.len(),
        ),
        ("completed_late", row.completed_late, e.completed_late.len()),
        ("rejected", row.rejected, e.rejected.len()),
        (
            "overdue_registration",
            row.overdue_registration,
            e.overdue_registration.len(),
        ),
        (
            "overdue_handling",
            row.overdue_handling,
            e.overdue_handling.len(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_list_is_as_long_as_its_number_after_mixed_traffic() {
    let (server, clock) = server_at(MONDAY_2_NOVEMBER).await;
    let parties = parties();
    let (a, b) = (parties[0].clone(), parties[4].clone());
    // Paper on Monday: two incoming at `a` (one registered on Thursday,
    // late; one left at 01, overdue by Thursday), one outgoing from `b`.
    let late = record_monday(&server, &a, incoming(&a, PROVINCE, 7)).await;
    record_monday(&server, &a, incoming(&a, &b, 8)).await;
    record_monday(&server, &b, outgoing(&b, &a, 0)).await;
    random_traffic(&server, &clock, &parties).await;
    change(&server, &a, message(&a, &late, Code::Registered))
        .await
        .expect("registered late");

    let report = report(&server, "vp-hdnd-ubnd", "2026-11")
        .await
        .expect("report");
    let mut totals = [0u64; 11];
    for row in &report.rows {
        let org = row.organization.as_ref().expect("org").alias.clone();
        let e = explain(&server, "vp-hdnd-ubnd", &org, "2026-11")
            .await
            .expect("explained");
        assert_eq!(e.row.as_ref(), Some(row), "{org}: the row explained");
        for (i, (what, number, listed)) in numbers(row, &e).into_iter().enumerate() {
            assert_eq!(number, listed as u64, "{org}: {what}");
            totals[i] += number;
        }
        // Each document once per list, with the dates that put it there.
        for d in e.registered_late.iter().chain(&e.completed_on_time) {
            assert!(!d.changed_date.is_empty() && d.arrival_number > 0, "{d:?}");
        }
        let ids: HashSet<&str> = e
            .received_electronic
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids.len(), e.received_electronic.len(), "{org}");
    }
    // The traffic exercised every list.
    for (i, total) in totals.iter().enumerate() {
        assert!(*total > 0, "list {i} is empty everywhere");
    }
    // The paper record registered late is listed as such at `a`, with its
    // arrival and registration dates.
    let e = explain(&server, &a, &a, "2026-11").await.expect("own");
    let listed = e
        .registered_late
        .iter()
        .find(|d| d.id == late)
        .expect("listed late");
    assert!(listed.paper);
    assert_eq!(listed.accepted_date, "2026-11-02");
    assert_eq!(listed.changed_date, "2026-11-05");
    assert_eq!(listed.counterpart, PROVINCE);
    // Another month explains nothing.
    let october = explain(&server, "ubnd-huyen", &a, "2026-10")
        .await
        .expect("october");
    assert!(october.sent_electronic.is_empty() && october.registered_late.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_committee_and_its_office_explain_another_organisation() {
    let (server, _clock) = server_at(MONDAY_2_NOVEMBER).await;
    let commune = communes()[0].clone();
    explain(&server, &commune, &commune, "2026-11")
        .await
        .expect("its own");
    let refused = explain(&server, &commune, "phong-noi-vu", "2026-11")
        .await
        .expect_err("another's");
    assert_eq!(refused.code(), Grpc::PermissionDenied);
    assert!(
        refused.message().contains("vp-hdnd-ubnd") && refused.message().contains("ubnd-huyen"),
        "{}",
        refused.message()
    );
    for org in ["ubnd-huyen", "vp-hdnd-ubnd"] {
        explain(&server, org, &commune, "2026-11").await.expect(org);
    }
    let unknown = explain(&server, "vp-hdnd-ubnd", "no-such-org", "2026")
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Grpc::InvalidArgument);
    assert!(
        unknown.message().starts_with("organization"),
        "{}",
        unknown.message()
    );
    let bad = explain(&server, "vp-hdnd-ubnd", &commune, "2026-13")
        .await
        .expect_err("bad period");
    assert!(bad.message().starts_with("period"), "{}", bad.message());
}

/// Lists come in windows: `limit` documents from the `offset`-th, each
/// window a slice of the whole list in the same order, the row's numbers
/// whole whatever the window; an oversized limit is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_windows_of_the_whole() {
    let (server, _clock) = server_at(MONDAY_2_NOVEMBER).await;
    let mut client = server.client("phong-noi-vu").await;
    for n in 0..5 {
        let mut d = directive("phong-noi-vu", &["xa-van-nham"], 0);
        d.promulgation_date = "2026-11-02".into();
        d.subject = format!("Kế hoạch số {n}");
        server.send(&mut client, d).await;
    }
    let window = |offset: u32, limit: u32| {
        let server = &server;
        async move {
            server
                .client("phong-noi-vu")
                .await
                .explain_report(pb::ExplainReportRequest {
                    organization: "phong-noi-vu".into(),
                    period: "2026-11".into(),
                    offset,
                    limit,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
        }
    };
    let ids = |e: &pb::ExplainReportResponse| -> Vec<String> {
        e.sent_electronic.iter().map(|d| d.id.clone()).collect()
    };
    let whole = window(0, 0).await.expect("default window");
    assert_eq!((whole.offset, whole.limit), (0, 1000));
    assert_eq!(ids(&whole).len(), 5);
    let mut pieces = Vec::new();
    for offset in [0, 2, 4] {
        let part = window(offset, 2).await.expect("window");
        assert_eq!(part.row.as_ref().map(|r| r.sent_electronic), Some(5));
        assert_eq!((part.offset, part.limit), (offset, 2));
        pieces.extend(ids(&part));
    }
    assert_eq!(pieces, ids(&whole));
    assert!(ids(&window(5, 2).await.expect("past the end")).is_empty());
    let refused = window(0, 10_001).await.expect_err("too large a window");
    assert_eq!(refused.code(), Grpc::InvalidArgument);
    assert!(
        refused.message().starts_with("limit:"),
        "{}",
        refused.message()
    );
}

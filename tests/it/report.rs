//! The report through the real gRPC API: after random traffic among
//! departments and communes (registrations on time and late by the server's
//! clock, completions on time and late, rejections), every organisation's
//! counters equal a recount made from the documents themselves (mailboxes
//! and histories, never the counters), before and after a restart; who sees
//! which rows; period errors naming their field.

use std::collections::HashMap;

use crate::common::*;
use crate::lifecycle::{change, message};
use crate::numbering::server_at;
use crate::paper::{incoming, outgoing, record_paper, PROVINCE};
use lienthong::calendar::Calendar;
use lienthong::clock::{parse_date, vietnam_date, Clock};
use lienthong::lifecycle::Code;
use lienthong::pb;
use tonic::Code as Grpc;

/// Monday 2 November 2026, 09:00 in Vietnam.
pub(crate) const MONDAY_2_NOVEMBER: i64 = 1_793_584_800_000;
/// Thursday 5 November 2026, 10:00 in Vietnam: registrations of Monday's
/// arrivals are late (due Tuesday).
pub(crate) const THURSDAY_5_NOVEMBER: i64 = 1_793_847_600_000;

/// A tiny deterministic generator: the same traffic on every run.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

pub(crate) fn aliases(kind: &str) -> Vec<String> {
    lienthong::directory::Directory::builtin()
        .expect("directory")
        .organizations()
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.alias.clone())
        .collect()
}

/// The figures a row must show, recounted from the documents.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub(crate) struct Recount {
    sent: u64,
    received: u64,
    registered_on_time: u64,
    registered_late: u64,
    completed_on_time: u64,
    completed_late: u64,
    rejected: u64,
}

pub(crate) fn of_row(row: &pb::ReportRow) -> Recount {
    assert_eq!((row.sent_paper, row.received_paper), (0, 0));
    Recount {
        sent: row.sent_electronic,
        received: row.received_electronic,
        registered_on_time: row.registered_on_time,
        registered_late: row.registered_late,
        completed_on_time: row.completed_on_time,
        completed_late: row.completed_late,
        rejected: row.rejected,
    }
}

/// Recounts `org`'s figures from its outbox, its inbox and its own history
/// of each document it received (all in one year: the tests' November
/// 2026, or the crash test's today), through `client`, connected as `org`.
pub(crate) async fn recount(mut client: Client, org: &str) -> Recount {
    let calendar = Calendar::builtin();
    let mut out = Recount::default();
    let (sent, _) = lienthong::client::outbox_pages(&client, String::new(), 0, true)
        .await
        .expect("outbox");
    out.sent = sent.len() as u64;
    for entry in inbox_all(&mut client).await {
        out.received += 1;
        let summary = entry.document.expect("summary");
        let arrival = vietnam_date(summary.accepted_at_ms);
        let changes = client
            .get_history(pb::GetHistoryRequest {
                document_id: summary.id.clone(),
            })
            .await
            .expect("history")
            .into_inner()
            .changes;
        let mine = changes
            .iter()
            .filter(|c| c.by.as_ref().is_some_and(|b| b.alias == org) && c.receipt.is_some());
        let mut registered = false;
        for c in mine {
            let code = Code::from_number(c.code as u32).expect("a code");
            let day = vietnam_date(c.accepted_at_ms);
            if code == Code::Rejected {
                out.rejected += 1;
            }
            if !registered && matches!(code, Code::Registered | Code::Completed) {
                registered = true;
                if day <= calendar.registration_due(arrival) {
                    out.registered_on_time += 1;
                } else {
                    out.registered_late += 1;
                }
            }
            if code == Code::Completed {
                match parse_date(&summary.due_date) {
                    Some(due) if day > due => out.completed_late += 1,
                    _ => out.completed_on_time += 1,
                }
            }
        }
    }
    out
}

pub(crate) async fn report(
    server: &TestServer,
    org: &str,
    period: &str,
) -> Result<pb::GetReportResponse, tonic::Status> {
    let mut client = server.client(org).await;
    client
        .get_report(pb::GetReportRequest {
            period: period.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Every organisation's row for the office equals its recount, and the
/// district total is their sum (its rate over what was sent).
async fn assert_counters_match(server: &TestServer, parties: &[String]) {
    let response = report(server, "vp-hdnd-ubnd", "2026-11")
        .await
        .expect("report");
    let rows: HashMap<String, &pb::ReportRow> = response
        .rows
        .iter()
        .map(|r| (r.organization.as_ref().expect("org").alias.clone(), r))
        .collect();
    let mut sent = 0;
    for org in parties {
        let counted = of_row(rows[org.as_str()]);
        assert_eq!(
            counted,
            recount(server.client(org).await, org).await,
            "{org}"
        );
        sent += counted.sent;
    }
    let district = response.district.expect("district total");
    assert_eq!(district.sent_electronic, sent);
    assert_eq!(district.electronic_percent, Some(100.0));
    // The traffic exercised every kind of count.
    for (what, n) in [
        ("registered on time", district.registered_on_time),
        ("registered late", district.registered_late),
        ("completed on time", district.completed_on_time),
        ("completed late", district.completed_late),
        ("rejected", district.rejected),
    ] {
        assert!(n > 0, "no {what} in the traffic");
    }
    assert!(district.median_registration_hours.is_some());
    // The year holds the same (nothing happened in other months).
    let year = report(server, "vp-hdnd-ubnd", "2026").await.expect("year");
    assert_eq!(year.rows, response.rows);
    let october = report(server, "vp-hdnd-ubnd", "2026-10")
        .await
        .expect("october");
    assert!(october.rows.iter().all(|r| r.electronic_percent.is_none()));
}

/// Three departments and four communes of the directory.
pub(crate) fn parties() -> Vec<String> {
    let departments = aliases("department");
    let communes = communes();
    departments
        .iter()
        .take(3)
        .chain(communes.iter().take(4))
        .cloned()
        .collect()
}

/// Random electronic traffic among `parties` on Monday 2 November, with
/// registrations on time and late, rejections, completions on time and
/// late; leaves `clock` on Thursday 5 November.
pub(crate) async fn random_traffic(server: &TestServer, clock: &Clock, parties: &[String]) {
    let mut random = Lcg(12);
    // (document id, recipient, due date) of every delivery.
    let mut deliveries = Vec::new();
    for i in 0..20u64 {
        let from = &parties[random.below(parties.len())];
        let mut to: Vec<&str> = Vec::new();
        while to.len() < 1 + random.below(2) {
            let candidate = parties[random.below(parties.len())].as_str();
            if candidate != from && !to.contains(&candidate) {
                to.push(candidate);
            }
        }
        let mut d = directive(from, &to, 0);
        d.promulgation_date = "2026-11-02".into();
        d.subject = format!("Báo cáo số {i}");
        let due = ["", "2026-11-04", "2026-11-30"][(i % 3) as usize];
        d.due_date = due.into();
        let mut client = server.client(from).await;
        let id = server.send(&mut client, d).await.id;
        deliveries.extend(to.iter().map(|r| (id.clone(), r.to_string(), due)));
    }
    // Monday: some registered on time, some rejected, some completed at once.
    let mut later = Vec::new();
    for (id, org, due) in &deliveries {
        match random.below(4) {
            0 => change(server, org, message(org, id, Code::Registered))
                .await
                .map(|_| ())
                .expect("registered"),
            1 => change(server, org, message(org, id, Code::Rejected))
                .await
                .map(|_| ())
                .expect("rejected"),
            2 => change(server, org, message(org, id, Code::Completed))
                .await
                .map(|_| ())
                .expect("completed"),
            _ => later.push((id.clone(), org.clone(), *due)),
        }
    }
    // Thursday: the rest registered late; those due on the 4th completed
    // late, every other one of the others completed (on time).
    clock.set(THURSDAY_5_NOVEMBER);
    for (n, (id, org, due)) in later.iter().enumerate() {
        change(server, org, message(org, id, Code::Registered))
            .await
            .expect("registered late");
        if n % 2 == 0 || *due == "2026-11-04" {
            change(server, org, message(org, id, Code::Completed))
                .await
                .expect("completed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_a_recount_from_the_documents_after_random_traffic_and_a_restart() {
    let (mut server, clock) = server_at(MONDAY_2_NOVEMBER).await;
    let parties = parties();
    random_traffic(&server, &clock, &parties).await;
    assert_counters_match(&server, &parties).await;
    server.restart().await;
    assert_counters_match(&server, &parties).await;
}

/// A store from before the counters (none kept, no mark) has them counted
/// from its documents and changes when it is opened: the same rows as the
/// counters kept by every commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_counted_once_from_the_documents_of_a_store_from_before_them() {
    use lienthong::store::engine::{Order, Space};
    let (mut server, clock) = server_at(MONDAY_2_NOVEMBER).await;
    let parties = parties();
    random_traffic(&server, &clock, &parties).await;
    let kept = report(&server, "vp-hdnd-ubnd", "2026")
        .await
        .expect("report");
    server.stop().await;
    {
        let engine = lienthong::store::open_engine(&server.config.data_dir, &Default::default())
            .expect("open the engine");
        let months = engine
            .scan(Space::Report, &[], None, Order::Ascending, usize::MAX)
            .expect("scan");
        assert!(!months.is_empty(), "the commits kept counters");
        engine
            .transact(&mut |txn| {
                for (key, _) in &months {
                    txn.delete(Space::Report, key)?;
                }
                txn.delete(Space::Meta, b"report-counters")
            })
            .expect("forget the counters");
        engine.sync().expect("sync");
    }
    server.restart().await;
    let counted = report(&server, "vp-hdnd-ubnd", "2026")
        .await
        .expect("report");
    assert_eq!(counted.rows, kept.rows);
    assert_eq!(counted.district, kept.district);
    assert_counters_match(&server, &parties).await;
}

/// A server on Monday 2 November where phong-noi-vu sent one document to
/// a commune, and that commune.
async fn one_send_to_a_commune() -> (TestServer, String) {
    let (server, _clock) = server_at(MONDAY_2_NOVEMBER).await;
    let commune = communes()[0].clone();
    let mut d = directive("phong-noi-vu", &[commune.as_str()], 0);
    d.promulgation_date = "2026-11-02".into();
    let mut noi_vu = server.client("phong-noi-vu").await;
    server.send(&mut noi_vu, d).await;
    (server, commune)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_and_a_department_see_their_own_row_the_committee_all() {
    let (server, commune) = one_send_to_a_commune().await;

    for org in [commune.as_str(), "phong-noi-vu"] {
        let r = report(&server, org, "2026-11").await.expect("report");
        assert_eq!(r.rows.len(), 1, "{org}");
        assert_eq!(r.rows[0].organization.as_ref().expect("org").alias, org);
        assert!(r.district.is_none(), "{org}");
        assert_eq!(r.rows[0].sent_electronic + r.rows[0].received_electronic, 1);
    }
    let directory = lienthong::directory::Directory::builtin().expect("directory");
    for org in ["ubnd-huyen", "vp-hdnd-ubnd"] {
        let r = report(&server, org, "2026-11").await.expect("report");
        assert_eq!(r.rows.len(), directory.organizations().len(), "{org}");
        let district = r.district.expect("district");
        assert_eq!(district.sent_electronic, 1);
        assert_eq!(district.received_electronic, 1);
        assert_eq!(
            (r.from_month.as_str(), r.to_month.as_str()),
            ("2026-11", "2026-11")
        );
        assert_eq!(r.target_percent, 90.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn period_errors_name_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client("vp-hdnd-ubnd").await;
    for (request, field) in [
        (("2026-13", "", ""), "period"),
        (("2026-Q5", "", ""), "period"),
        (("", "2026-02-30", "2026-03-01"), "from"),
        (("", "2026-03-01", "2026-02-01"), "to"),
        (("", "2026-03-01", ""), "to"),
        (("2026", "2026-03-01", "2026-03-02"), "period"),
    ] {
        let status = client
            .get_report(pb::GetReportRequest {
                period: request.0.into(),
                from: request.1.into(),
                to: request.2.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Grpc::InvalidArgument, "{request:?}");
        assert!(
            status.message().starts_with(field),
            "{request:?}: {}",
            status.message()
        );
    }
}

/// Records a paper document dated Monday 2 November as `org`.
pub(crate) async fn record_monday(
    server: &TestServer,
    org: &str,
    mut record: pb::PaperRecord,
) -> String {
    record.promulgation_date = "2026-11-02".into();
    record_paper(server, org, record)
        .await
        .expect("recorded")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_records_count_as_paper_at_their_recorder_only() {
    let (server, commune) = one_send_to_a_commune().await;
    // Two incoming paper records at phong-noi-vu: from outside the
    // directory, and from the commune (which counts nothing for it); one
    // outgoing to the commune (which records its own copy, if any).
    record_monday(
        &server,
        "phong-noi-vu",
        incoming("phong-noi-vu", PROVINCE, 7),
    )
    .await;
    record_monday(
        &server,
        "phong-noi-vu",
        incoming("phong-noi-vu", &commune, 8),
    )
    .await;
    record_monday(
        &server,
        "phong-noi-vu",
        outgoing("phong-noi-vu", &commune, 0),
    )
    .await;

    let r = report(&server, "vp-hdnd-ubnd", "2026-11")
        .await
        .expect("report");
    let row = |alias: &str| {
        r.rows
            .iter()
            .find(|row| row.organization.as_ref().is_some_and(|o| o.alias == alias))
            .expect("a row")
    };
    let noi_vu = row("phong-noi-vu");
    assert_eq!(
        (
            noi_vu.sent_electronic,
            noi_vu.sent_paper,
            noi_vu.received_electronic,
            noi_vu.received_paper
        ),
        (1, 1, 0, 2)
    );
    assert_eq!(noi_vu.electronic_percent, Some(25.0));
    assert!(!noi_vu.meets_target);
    let xa = row(&commune);
    assert_eq!(
        (
            xa.sent_electronic,
            xa.sent_paper,
            xa.received_electronic,
            xa.received_paper
        ),
        (0, 0, 1, 0)
    );
    assert_eq!(xa.electronic_percent, Some(100.0));
    assert!(xa.meets_target);
    // The district counts each document once, at its issuer: the one
    // electronic send and the one outgoing paper record.
    let district = r.district.expect("district");
    assert_eq!((district.sent_electronic, district.sent_paper), (1, 1));
    assert_eq!(district.electronic_percent, Some(50.0));
}

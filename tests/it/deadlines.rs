//! Deadlines through the real gRPC API, on a server whose clock is set to
//! dates of 2026 (whose holidays are built in): registration due the next
//! working day across a weekend and a holiday, overdue against due within
//! N days, an assignment's deadline replacing the document's due date,
//! completed, rejected and revoked documents leaving the list, and the
//! district's view for the committee only.

use crate::common::*;
use crate::lifecycle::{change, message, revoke};
use crate::numbering::server_at;
use lienthong::lifecycle::Code;
use lienthong::pb;
use tonic::Code as Grpc;

/// Thursday 30 April 2026, 10:00 in Vietnam: Reunification Day, the eve of
/// Labour Day (Friday 1 May), before a weekend.
const THURSDAY_30_APRIL: i64 = 1_777_518_000_000;
/// Monday 4 May 2026, 12:00 in Vietnam.
const MONDAY_4_MAY: i64 = 1_777_870_800_000;
/// Tuesday 5 May 2026, 09:00 in Vietnam.
const TUESDAY_5_MAY: i64 = 1_777_946_400_000;
/// Wednesday 10 June 2026, 09:00 in Vietnam.
const WEDNESDAY_10_JUNE: i64 = 1_781_056_800_000;
/// Monday 15 June 2026, 09:00 in Vietnam.
const MONDAY_15_JUNE: i64 = 1_781_488_800_000;

/// A directive from Phòng Nội vụ, dated `date`, due on `due` (or none).
fn due_directive(to: &[&str], number: u64, date: &str, due: &str) -> pb::Document {
    let mut d = directive("phong-noi-vu", to, number);
    d.promulgation_date = date.into();
    d.due_date = due.into();
    d
}

/// Sends [`due_directive`] and returns its id.
async fn send_due(
    server: &TestServer,
    noi_vu: &mut Client,
    to: &[&str],
    number: u64,
    date: &str,
    due: &str,
) -> String {
    let document = due_directive(to, number, date, due);
    server.send(noi_vu, document).await.id
}

async fn deadlines(
    server: &TestServer,
    org: &str,
    within_days: u32,
    district: bool,
) -> Result<pb::ListDeadlinesResponse, tonic::Status> {
    let mut client = server.client(org).await;
    client
        .list_deadlines(pb::ListDeadlinesRequest {
            within_days,
            district,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// (document id, recipient alias, kind, due date, working days left,
/// overdue) of each entry, in the order listed.
type Row = (String, String, pb::DeadlineKind, String, i64, bool);

async fn rows(server: &TestServer, org: &str, within_days: u32, district: bool) -> Vec<Row> {
    deadlines(server, org, within_days, district)
        .await
        .expect("deadlines")
        .entries
        .into_iter()
        .map(|e| {
            (
                e.document.map(|d| d.id).unwrap_or_default(),
                e.recipient.map(|r| r.alias).unwrap_or_default(),
                pb::DeadlineKind::try_from(e.kind).expect("a kind"),
                e.due_date,
                e.working_days_left,
                e.overdue,
            )
        })
        .collect()
}

fn row(id: &str, org: &str, kind: pb::DeadlineKind, due: &str, left: i64, overdue: bool) -> Row {
    (id.into(), org.into(), kind, due.into(), left, overdue)
}

use pb::DeadlineKind::{Handling, Registration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_due_the_next_working_day_across_a_holiday_and_a_weekend() {
    let (server, clock) = server_at(THURSDAY_30_APRIL).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let id = send_due(
        &server,
        &mut noi_vu,
        &["xa-van-nham"],
        1,
        "2026-04-30",
        "2026-05-08",
    )
    .await;

    // Arrived on a holiday, before Labour Day and a weekend: registration
    // is due on Monday 4 May, four calendar days and one working day away.
    assert_eq!(rows(&server, "xa-van-nham", 0, false).await, vec![]);
    assert_eq!(rows(&server, "xa-van-nham", 3, false).await, vec![]);
    assert_eq!(
        rows(&server, "xa-van-nham", 4, false).await,
        vec![row(
            &id,
            "xa-van-nham",
            Registration,
            "2026-05-04",
            1,
            false
        )]
    );
    // Only the recipient's: the sender has nothing to do.
    assert_eq!(rows(&server, "phong-noi-vu", 30, false).await, vec![]);

    // Monday: due today, not late.
    clock.set(MONDAY_4_MAY);
    assert_eq!(
        rows(&server, "xa-van-nham", 0, false).await,
        vec![row(
            &id,
            "xa-van-nham",
            Registration,
            "2026-05-04",
            0,
            false
        )]
    );
    // Tuesday: late by one working day; handling due Friday 8 May is three
    // working days away, listed once the window reaches it.
    clock.set(TUESDAY_5_MAY);
    let response = deadlines(&server, "xa-van-nham", 0, false).await.unwrap();
    assert_eq!(response.today, "2026-05-05");
    assert_eq!(response.entries.len(), 1);
    let entry = &response.entries[0];
    assert_eq!(entry.arrival_number, 1);
    assert_eq!(entry.status, pb::StatusCode::Arrived as i32);
    assert_eq!(
        entry.document.as_ref().map(|d| d.subject.as_str()),
        Some("Về việc tăng cường phòng cháy chữa cháy, số 1")
    );
    assert_eq!(
        rows(&server, "xa-van-nham", 3, false).await,
        vec![
            row(&id, "xa-van-nham", Registration, "2026-05-04", -1, true),
            row(&id, "xa-van-nham", Handling, "2026-05-08", 3, false),
        ]
    );

    // Registered (late): only the handling remains.
    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &id, Code::Registered),
    )
    .await
    .expect("registered");
    assert_eq!(
        rows(&server, "xa-van-nham", 3, false).await,
        vec![row(&id, "xa-van-nham", Handling, "2026-05-08", 3, false)]
    );

    // Replaced: the old one leaves, the new one is to register tomorrow.
    let mut replacement = due_directive(&["xa-van-nham"], 2, "2026-05-05", "2026-05-08");
    replacement.supersedes = Some(pb::Supersedes {
        document_id: id.clone(),
        operation: pb::Operation::Replace as i32,
        reason: "Sửa thời hạn".into(),
    });
    let new = server.send(&mut noi_vu, replacement).await.id;
    assert_eq!(
        rows(&server, "xa-van-nham", 3, false).await,
        vec![
            row(&new, "xa-van-nham", Registration, "2026-05-06", 1, false),
            row(&new, "xa-van-nham", Handling, "2026-05-08", 3, false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_deadline_replaces_the_due_date_and_closed_documents_leave() {
    let (server, clock) = server_at(WEDNESDAY_10_JUNE).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let communes = ["xa-van-nham", "xa-yen-vuong", "xa-dong-tan", "xa-ho-son"];
    let a = send_due(
        &server,
        &mut noi_vu,
        &communes,
        1,
        "2026-06-10",
        "2026-06-12",
    )
    .await;
    let b = send_due(
        &server,
        &mut noi_vu,
        &["xa-van-nham"],
        2,
        "2026-06-10",
        "2026-06-11",
    )
    .await;
    for org in communes {
        change(&server, org, message(org, &a, Code::Registered))
            .await
            .expect("registered");
    }
    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &b, Code::Registered),
    )
    .await
    .expect("registered");

    // Xã Vân Nham assigns A with a later deadline, Xã Đồng Tân with an
    // earlier one: theirs replace the document's Friday 12 June.
    for (org, deadline) in [("xa-van-nham", "2026-06-30"), ("xa-dong-tan", "2026-06-11")] {
        let mut assign = message(org, &a, Code::Assigned);
        assign.deadline = deadline.into();
        change(&server, org, assign).await.expect("assigned");
    }
    assert_eq!(
        rows(&server, "xa-van-nham", 2, false).await,
        vec![row(&b, "xa-van-nham", Handling, "2026-06-11", 1, false)]
    );
    assert_eq!(
        rows(&server, "xa-van-nham", 20, false).await,
        vec![
            row(&b, "xa-van-nham", Handling, "2026-06-11", 1, false),
            row(&a, "xa-van-nham", Handling, "2026-06-30", 14, false),
        ]
    );
    assert_eq!(
        rows(&server, "xa-dong-tan", 1, false).await,
        vec![row(&a, "xa-dong-tan", Handling, "2026-06-11", 1, false)]
    );

    // Completed, rejected (before 04) and revoked leave the list.
    change(
        &server,
        "xa-yen-vuong",
        message("xa-yen-vuong", &a, Code::Completed),
    )
    .await
    .expect("completed");
    let c = send_due(
        &server,
        &mut noi_vu,
        &["xa-ho-son"],
        3,
        "2026-06-10",
        "2026-06-12",
    )
    .await;
    change(
        &server,
        "xa-ho-son",
        message("xa-ho-son", &c, Code::Rejected),
    )
    .await
    .expect("rejected");
    revoke(&server, "phong-noi-vu", &b).await.expect("revoked");

    // Monday 15 June: A is overdue where its own due date stands (Friday,
    // one working day ago) and at Đồng Tân (Thursday, two); not yet at Vân
    // Nham, whose deadline is the 30th.
    clock.set(MONDAY_15_JUNE);
    assert_eq!(rows(&server, "xa-yen-vuong", 30, false).await, vec![]);
    assert_eq!(
        rows(&server, "xa-ho-son", 30, false).await,
        vec![row(&a, "xa-ho-son", Handling, "2026-06-12", -1, true)]
    );
    assert_eq!(
        rows(&server, "xa-dong-tan", 0, false).await,
        vec![row(&a, "xa-dong-tan", Handling, "2026-06-11", -2, true)]
    );
    assert_eq!(rows(&server, "xa-van-nham", 0, false).await, vec![]);
    assert_eq!(
        rows(&server, "xa-van-nham", 15, false).await,
        vec![row(&a, "xa-van-nham", Handling, "2026-06-30", 11, false)]
    );

    // The district's view: everyone's, most overdue first, for the
    // committee and its office.
    let district = vec![
        row(&a, "xa-dong-tan", Handling, "2026-06-11", -2, true),
        row(&a, "xa-ho-son", Handling, "2026-06-12", -1, true),
    ];
    assert_eq!(rows(&server, "ubnd-huyen", 0, true).await, district);
    assert_eq!(rows(&server, "vp-hdnd-ubnd", 0, true).await, district);
    // Without --district, the committee's own (none).
    assert_eq!(rows(&server, "ubnd-huyen", 0, false).await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_committee_and_its_office_see_the_district() {
    let server = TestServer::start().await;
    for org in ["xa-van-nham", "phong-noi-vu"] {
        let err = deadlines(&server, org, 0, true).await.expect_err("refused");
        assert_eq!(err.code(), Grpc::PermissionDenied, "{}", err.message());
        assert!(
            err.message().starts_with("district: ")
                && err.message().contains("ubnd-huyen, vp-hdnd-ubnd")
                && err.message().contains(org),
            "{}",
            err.message()
        );
    }
    let err = deadlines(&server, "xa-van-nham", 367, false)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Grpc::InvalidArgument);
    assert!(
        err.message()
            .starts_with("within_days: is 367; at most 366"),
        "{}",
        err.message()
    );
}

#[test]
fn overdue_lists_from_the_command_line() {
    use crate::cli::cli;
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let server = serve_process(&data, &[]);
    let today = lienthong::clock::format_date(lienthong::clock::today());
    let sent = cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--type",
            "CT",
            "--number",
            "auto",
            "--notation",
            "CT-PNV",
            "--subject",
            "Chỉ thị hạn hôm nay",
            "--due",
            &today,
            "--json",
        ],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let sent: serde_json::Value = serde_json::from_slice(&sent.stdout).expect("JSON");
    let id = sent["id"].as_str().expect("id");

    // Handling is due today; registration on the next working day, within
    // 30 days whatever today is (Tết is the longest break).
    let listed = cli(
        &server,
        &data,
        &["overdue", "--as", "xa-van-nham", "--within", "30", "--json"],
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("one JSON");
    let kinds: Vec<(&str, &str)> = listed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            assert_eq!(e["document"]["id"], id);
            assert_eq!(e["recipient"]["alias"], "xa-van-nham");
            (
                e["kind"].as_str().expect("kind"),
                e["due_date"].as_str().expect("due"),
            )
        })
        .collect();
    assert_eq!(kinds[0], ("handling", today.as_str()));
    assert_eq!(kinds.len(), 2);
    assert_eq!(kinds[1].0, "registration");

    let table = cli(&server, &data, &["overdue", "--as", "xa-van-nham"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("WHEN ") && text.contains("today") && text.contains("handle"),
        "{text}"
    );

    let refused = cli(
        &server,
        &data,
        &["overdue", "--as", "xa-van-nham", "--district"],
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("error: PERMISSION_DENIED: district: "),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_the_index_gets_it_built_when_opened() {
    use lienthong::store::engine::{transact, Order, Space};
    let (mut server, _clock) = server_at(WEDNESDAY_10_JUNE).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let id = send_due(
        &server,
        &mut noi_vu,
        &["xa-van-nham"],
        1,
        "2026-06-10",
        "2026-06-12",
    )
    .await;
    let listed = rows(&server, "xa-van-nham", 2, false).await;
    assert_eq!(listed.len(), 2);

    // As an earlier build left it: documents, no index, no mark.
    server.stop().await;
    {
        let engine = lienthong::store::open_engine(&server.config.data_dir, &server.config.store)
            .expect("engine");
        let entries = engine
            .scan(Space::Deadlines, &[], None, Order::Ascending, usize::MAX)
            .expect("scan");
        assert_eq!(entries.len(), 2);
        transact(engine.as_ref(), |txn| {
            for (key, _) in &entries {
                txn.delete(Space::Deadlines, key)?;
            }
            txn.delete(Space::Meta, b"deadlines-index")
        })
        .expect("remove the index");
        engine.sync().expect("sync");
    }
    server.restart().await;
    assert_eq!(rows(&server, "xa-van-nham", 2, false).await, listed);
    assert_eq!(listed[0].0, id);
}

/// The district view shows that a secret document is late, and where, but
/// not its summary to a committee or office that is no party to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_district_view_hides_what_a_secret_document_is_about() {
    let (server, _clock) = server_at(WEDNESDAY_10_JUNE).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut secret = due_directive(&["xa-van-nham"], 1, "2026-06-10", "2026-06-12");
    secret.secrecy = pb::Secrecy::Mat as i32;
    let secret_id = server.send(&mut noi_vu, secret).await.id;
    let open_id = send_due(
        &server,
        &mut noi_vu,
        &["xa-van-nham"],
        2,
        "2026-06-10",
        "2026-06-12",
    )
    .await;

    let subject_of = |list: &pb::ListDeadlinesResponse, id: &str| -> Vec<String> {
        list.entries
            .iter()
            .filter_map(|e| e.document.as_ref())
            .filter(|d| d.id == id)
            .map(|d| d.subject.clone())
            .collect()
    };
    let office = deadlines(&server, "vp-hdnd-ubnd", 5, true)
        .await
        .expect("district");
    let hidden = subject_of(&office, &secret_id);
    assert!(!hidden.is_empty(), "the secret document is listed");
    assert!(hidden
        .iter()
        .all(|s| s == lienthong::deadlines::SECRET_SUBJECT));
    assert!(subject_of(&office, &open_id)
        .iter()
        .all(|s| s != lienthong::deadlines::SECRET_SUBJECT));
    // Its recipient sees what it is about.
    let own = deadlines(&server, "xa-van-nham", 5, false)
        .await
        .expect("own");
    assert!(subject_of(&own, &secret_id)
        .iter()
        .all(|s| s != lienthong::deadlines::SECRET_SUBJECT));
}

/// A long list comes in pages, each continuing where the one before
/// stopped, together the one-page list in the same order; sizes and tokens
/// are checked by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_comes_in_pages() {
    let (server, clock) = server_at(THURSDAY_30_APRIL).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    for n in 0..7 {
        let due = ["2026-05-04", "2026-05-05", ""][n % 3];
        send_due(
            &server,
            &mut noi_vu,
            &["xa-van-nham", "xa-yen-vuong"],
            0,
            "2026-04-29",
            due,
        )
        .await;
    }
    clock.set(WEDNESDAY_10_JUNE);
    let page = |size: u32, token: String| {
        let server = &server;
        async move {
            server
                .client("vp-hdnd-ubnd")
                .await
                .list_deadlines(pb::ListDeadlinesRequest {
                    within_days: 0,
                    district: true,
                    page_size: size,
                    page_token: token,
                })
                .await
                .map(|r| r.into_inner())
        }
    };
    let key = |e: &pb::DeadlineEntry| {
        (
            e.due_date.clone(),
            e.recipient.as_ref().map(|r| r.code.clone()),
            e.kind,
            e.document.as_ref().map(|d| d.id.clone()),
        )
    };
    let whole = page(0, String::new()).await.expect("one page");
    assert!(whole.next_page_token.is_empty());
    // 14 registrations and 10 handlings overdue (two recipients each).
    assert_eq!(whole.entries.len(), 24);
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let part = page(5, token).await.expect("page");
        assert!(part.entries.len() <= 5);
        pages.extend(part.entries.iter().map(key));
        if part.next_page_token.is_empty() {
            break;
        }
        token = part.next_page_token;
    }
    assert_eq!(pages, whole.entries.iter().map(key).collect::<Vec<_>>());
    let too_big = page(5_001, String::new()).await.expect_err("page too big");
    assert_eq!(too_big.code(), Grpc::InvalidArgument);
    assert!(
        too_big.message().starts_with("page_size:"),
        "{}",
        too_big.message()
    );
    let forged = page(5, "not-a-token".into()).await.expect_err("bad token");
    assert_eq!(forged.code(), Grpc::InvalidArgument);
    assert!(
        forged.message().starts_with("page_token:"),
        "{}",
        forged.message()
    );
}

//! The registers of Decree 30 through the real API and command line: the
//! incoming register's columns after a small life, paging, privacy, the
//! clerk's CSV, the year turning at midnight Vietnam time, and the unread
//! part of an inbox, most urgent first.

use crate::common::*;
use crate::lifecycle::{change, message, revoke};
use crate::numbering::{
    dated, server_at, NEW_YEARS_EVE_LAST_HALF_SECOND, NEW_YEARS_EVE_LAST_MINUTE,
};
use lienthong::lifecycle::Code;
use lienthong::pb;

/// 2026-01-01 00:00:00.000 in Vietnam.
const NEW_YEAR_MIDNIGHT: i64 = NEW_YEARS_EVE_LAST_HALF_SECOND + 500;

async fn register(
    server: &TestServer,
    org: &str,
    year: u32,
    outgoing: bool,
    page_size: u32,
    page_token: String,
) -> pb::GetRegisterResponse {
    let mut client = server.client(org).await;
    client
        .get_register(pb::GetRegisterRequest {
            year,
            outgoing,
            page_size,
            page_token,
        })
        .await
        .expect("register")
        .into_inner()
}

async fn unread(server: &TestServer, org: &str) -> Vec<pb::InboxEntry> {
    let client = server.client(org).await;
    lienthong::client::unread_pages(&client, String::new(), 0, true)
        .await
        .expect("unread")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incoming_register_shows_a_small_life() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut ids = Vec::new();
    for number in 1..=3 {
        let sent = server
            .send(
                &mut noi_vu,
                directive("phong-noi-vu", &["xa-van-nham"], number),
            )
            .await;
        ids.push(sent.id);
    }
    // To another commune only: never in xa-van-nham's register.
    server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-dong-tan"], 4))
        .await;
    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &ids[0], Code::Registered),
    )
    .await
    .expect("register 03");
    let assigned = change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &ids[1], Code::Assigned),
    )
    .await
    .expect("assign 04");
    revoke(&server, "phong-noi-vu", &ids[2])
        .await
        .expect("revoke");

    let page = register(&server, "xa-van-nham", 0, false, 0, String::new()).await;
    let today = lienthong::clock::today();
    assert_eq!(page.year, today.year() as u32);
    assert!(page.next_page_token.is_empty());
    assert!(page.outgoing.is_empty());
    let entries = &page.incoming;
    assert_eq!(
        entries
            .iter()
            .map(|e| e.document_id.clone())
            .collect::<Vec<_>>(),
        ids,
        "the three documents, in arrival order, and nothing else"
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.arrival_number, i as u64 + 1);
        assert_eq!(e.arrival_year, page.year);
        assert_eq!(
            e.arrival_date,
            lienthong::clock::format_date(lienthong::clock::vietnam_date(e.arrived_at_ms))
        );
        assert_eq!(e.issuer.as_ref().unwrap().alias, "phong-noi-vu");
        assert_eq!(e.number, i as u64 + 1);
        assert_eq!(e.notation, "CT-PNV");
        assert_eq!(e.promulgation_date, "2026-11-20");
        assert_eq!(e.document_type, "chi-thi");
        assert!(e.subject.ends_with(&format!("số {}", i + 1)));
    }
    let [registered, passed_on, revoked] = &entries[..] else {
        panic!("three entries")
    };
    assert_eq!(registered.status, pb::StatusCode::Registered as i32);
    assert!(registered.assigned_to.is_empty() && registered.passed_on_date.is_empty());
    assert!(registered.notes.is_empty(), "{}", registered.notes);

    assert_eq!(passed_on.status, pb::StatusCode::Assigned as i32);
    assert_eq!(passed_on.assigned_to, "Công chức Tư pháp – Hộ tịch");
    assert_eq!(passed_on.passed_on_at_ms, assigned.accepted_at_ms);
    assert_eq!(
        passed_on.passed_on_date,
        lienthong::clock::format_date(lienthong::clock::vietnam_date(assigned.accepted_at_ms))
    );

    assert_eq!(revoked.status, pb::StatusCode::Arrived as i32);
    assert_eq!(revoked.frozen_by, pb::Operation::Revoke as i32);
    assert_eq!(
        revoked.notes, "Đã thu hồi: Thu hồi để sửa đổi thời hạn",
        "the revocation and its reason"
    );

    // Only the caller's own: the other commune sees its one document; the
    // sender's incoming register is empty; its outgoing one lists all four
    // in number order, with recipients.
    let other = register(&server, "xa-dong-tan", 0, false, 0, String::new()).await;
    assert_eq!(other.incoming.len(), 1);
    assert!(other.incoming.iter().all(|e| !ids.contains(&e.document_id)));
    let sender_in = register(&server, "phong-noi-vu", 0, false, 0, String::new()).await;
    assert!(sender_in.incoming.is_empty());
    let sent = register(&server, "phong-noi-vu", 2026, true, 0, String::new()).await;
    assert!(sent.incoming.is_empty());
    assert_eq!(
        sent.outgoing.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let first = &sent.outgoing[0];
    assert_eq!(first.signer, "TM. Chủ tịch Nguyễn Văn A");
    assert_eq!(
        first.deliveries[0].recipient.as_ref().unwrap().alias,
        "xa-van-nham"
    );
    assert_eq!(sent.outgoing[2].frozen_by, pb::Operation::Revoke as i32);
    // A year with nothing in it, and a year out of range.
    let empty = register(&server, "xa-van-nham", 2001, false, 0, String::new()).await;
    assert!(empty.incoming.is_empty() && empty.next_page_token.is_empty());
    let mut client = server.client("xa-van-nham").await;
    let err = client
        .get_register(pb::GetRegisterRequest {
            year: 12,
            ..Default::default()
        })
        .await
        .expect_err("year 12 is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("year:"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_pages_in_arrival_order() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    for number in 1..=5 {
        server
            .send(
                &mut noi_vu,
                directive("phong-noi-vu", &["xa-van-nham"], number),
            )
            .await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = register(&server, "xa-van-nham", 0, false, 2, token).await;
        pages += 1;
        assert!(page.incoming.len() <= 2);
        seen.extend(page.incoming.iter().map(|e| e.arrival_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    assert_eq!(pages, 3);
    // The outgoing register pages too, and a token of one register is no
    // token for the other.
    let first = register(&server, "phong-noi-vu", 2026, true, 2, String::new()).await;
    assert_eq!(
        first.outgoing.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let rest = register(
        &server,
        "phong-noi-vu",
        2026,
        true,
        0,
        first.next_page_token.clone(),
    )
    .await;
    assert_eq!(
        rest.outgoing.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let mut client = server.client("phong-noi-vu").await;
    let err = client
        .get_register(pb::GetRegisterRequest {
            year: 2026,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("an outgoing token for the incoming register");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().starts_with("page_token:"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_year_turns_at_midnight_in_vietnam() {
    // The server stands a minute before midnight, so that a slow machine
    // cannot cross it before the first send; then half a second after.
    let (server, clock) = server_at(NEW_YEARS_EVE_LAST_MINUTE).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let before = server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 1, "2025-12-31", pb::Secrecy::None),
        )
        .await;
    let before_at = before.accepted_at_ms;
    assert!(before_at < NEW_YEAR_MIDNIGHT, "sent before midnight");
    clock.set(NEW_YEAR_MIDNIGHT + 500);
    let after = server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 2, "2025-12-31", pb::Secrecy::None),
        )
        .await;
    let also_after = server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 3, "2025-12-31", pb::Secrecy::None),
        )
        .await;

    let old = register(&server, "xa-van-nham", 2025, false, 0, String::new()).await;
    let new = register(&server, "xa-van-nham", 2026, false, 0, String::new()).await;
    let numbers = |page: &pb::GetRegisterResponse| {
        page.incoming
            .iter()
            .map(|e| {
                (
                    e.document_id.clone(),
                    e.arrival_number,
                    e.arrival_date.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&old), vec![(before.id, 1, "2025-12-31".to_owned())]);
    assert_eq!(
        numbers(&new),
        vec![
            (after.id, 1, "2026-01-01".to_owned()),
            (also_after.id, 2, "2026-01-01".to_owned())
        ]
    );
    // The year of the outgoing register is the year of issue: all three
    // are 2025's.
    let issued = register(&server, "phong-noi-vu", 2025, true, 0, String::new()).await;
    assert_eq!(issued.outgoing.len(), 3);
    // This year, by the server's clock, is 2026.
    let current = register(&server, "xa-van-nham", 0, false, 0, String::new()).await;
    assert_eq!(current.year, 2026);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_documents_come_most_urgent_first_and_leave_when_acted_on() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let urgencies = [
        pb::Urgency::Normal,
        pb::Urgency::HoaToc,
        pb::Urgency::Khan,
        pb::Urgency::ThuongKhan,
        pb::Urgency::HoaToc,
        pb::Urgency::Normal,
    ];
    let mut ids = Vec::new();
    for (i, urgency) in urgencies.iter().enumerate() {
        let mut d = directive(
            "phong-noi-vu",
            &["xa-van-nham", "xa-dong-tan"],
            i as u64 + 1,
        );
        d.urgency = *urgency as i32;
        ids.push(server.send(&mut noi_vu, d).await.id);
    }
    let order =
        |entries: &[pb::InboxEntry]| entries.iter().map(|e| e.arrival_number).collect::<Vec<_>>();
    // Hỏa tốc (2, 5), thượng khẩn (4), khẩn (3), normal (1, 6).
    assert_eq!(
        order(&unread(&server, "xa-van-nham").await),
        vec![2, 5, 4, 3, 1, 6]
    );

    // Registered: gone for that recipient only.
    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &ids[1], Code::Registered),
    )
    .await
    .expect("register");
    assert_eq!(
        order(&unread(&server, "xa-van-nham").await),
        vec![5, 4, 3, 1, 6]
    );
    assert_eq!(
        order(&unread(&server, "xa-dong-tan").await),
        vec![2, 5, 4, 3, 1, 6]
    );

    // Revoked: gone for every recipient.
    revoke(&server, "phong-noi-vu", &ids[3])
        .await
        .expect("revoke");
    assert_eq!(
        order(&unread(&server, "xa-van-nham").await),
        vec![5, 3, 1, 6]
    );
    assert_eq!(
        order(&unread(&server, "xa-dong-tan").await),
        vec![2, 5, 3, 1, 6]
    );

    // Paged one at a time, the same order.
    let client = server.client("xa-dong-tan").await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = lienthong::client::unread_pages(&client, token, 1, false)
            .await
            .expect("a page");
        seen.extend(order(&page));
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(seen, vec![2, 5, 3, 1, 6]);
    // The sender has none: it received nothing.
    assert!(unread(&server, "phong-noi-vu").await.is_empty());
}

/// Splits RFC 4180 CSV into records of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[test]
fn the_register_on_the_command_line_is_the_clerks_csv() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = serve_process(&data, &[]);
    let subject = r#"V/v kiểm tra "khẩn", báo cáo trước ngày 25"#;
    let sent = crate::cli::cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--type",
            "cong-van",
            "--number",
            "auto",
            "--notation",
            "PNV-VX",
            "--subject",
            subject,
            "--urgency",
            "hoa-toc",
            "--json",
        ],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let out = crate::cli::cli(
        &server,
        &data,
        &["register", "--as", "xa-van-nham", "--csv"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let records = parse_csv(&text);
    assert_eq!(
        records[0],
        [
            "Ngày đến",
            "Số đến",
            "Tác giả",
            "Số, ký hiệu",
            "Ngày tháng",
            "Tên loại và trích yếu nội dung",
            "Đơn vị hoặc người nhận",
            "Ngày chuyển",
            "Tình trạng",
            "Ghi chú"
        ]
    );
    assert_eq!(records.len(), 2, "{text}");
    let row = &records[1];
    assert_eq!(row.len(), 10);
    assert_eq!(row[1], "1");
    assert_eq!(row[3], "01/PNV-VX");
    assert_eq!(row[5], format!("Công văn {subject}"));
    assert_eq!(row[8], "đã đến");
    assert!(
        text.contains("\"Số, ký hiệu\""),
        "the header's comma is quoted"
    );

    // inbox --unread lists it; --json gives one document.
    let unread = crate::cli::cli(
        &server,
        &data,
        &["inbox", "--as", "xa-van-nham", "--unread", "--json"],
    );
    assert!(
        unread.status.success(),
        "{}",
        String::from_utf8_lossy(&unread.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&unread.stdout).expect("JSON");
    assert_eq!(listed["entries"][0]["urgency"], "hoa-toc");
    let json = crate::cli::cli(
        &server,
        &data,
        &["register", "--as", "xa-van-nham", "--json"],
    );
    let register: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(register["register"], "incoming");
    assert_eq!(register["entries"][0]["Số đến"], "1");
}

/// A store from a build before the `unread` index gets it built when
/// opened: the same unread list, most urgent first, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_the_unread_index_gets_it_built_when_opened() {
    use lienthong::store::engine::{transact, Order, Space};
    let mut server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    for (n, urgency) in [
        (1, pb::Urgency::Normal),
        (2, pb::Urgency::HoaToc),
        (3, pb::Urgency::Khan),
    ] {
        let mut d = directive("phong-noi-vu", &["xa-van-nham"], n);
        d.urgency = urgency as i32;
        server.send(&mut noi_vu, d).await;
    }
    let first = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 4))
        .await
        .id;
    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &first, Code::Registered),
    )
    .await
    .expect("register");
    let listed = unread(&server, "xa-van-nham").await;
    assert_eq!(listed.len(), 3);

    // As an earlier build left it: documents, no index, no mark.
    server.stop().await;
    {
        let engine = lienthong::store::open_engine(&server.config.data_dir, &server.config.store)
            .expect("engine");
        let entries = engine
            .scan(Space::Unread, &[], None, Order::Ascending, usize::MAX)
            .expect("scan");
        assert_eq!(entries.len(), 3);
        transact(engine.as_ref(), |txn| {
            for (key, _) in &entries {
                txn.delete(Space::Unread, key)?;
            }
            txn.delete(Space::Meta, b"unread-index")
        })
        .expect("remove the index");
        engine.sync().expect("sync");
    }
    server.restart().await;
    let rebuilt = unread(&server, "xa-van-nham").await;
    let ids = |entries: &[pb::InboxEntry]| -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| e.document.as_ref().map(|d| d.id.clone()))
            .collect()
    };
    assert_eq!(ids(&rebuilt), ids(&listed));
}

/// An updated or replaced document leaves the unread list of every
/// recipient: it is frozen, and its successor takes its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updated_document_leaves_the_unread_list() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let first = server
        .send(
            &mut noi_vu,
            directive("phong-noi-vu", &["xa-van-nham", "xa-dong-tan"], 1),
        )
        .await
        .id;
    let mut update = directive("phong-noi-vu", &["xa-van-nham", "xa-dong-tan"], 2);
    update.supersedes = Some(pb::Supersedes {
        document_id: first.clone(),
        operation: pb::Operation::Update as i32,
        reason: "Cập nhật thời hạn".into(),
    });
    let second = server.send(&mut noi_vu, update).await.id;
    for org in ["xa-van-nham", "xa-dong-tan"] {
        let ids: Vec<String> = unread(&server, org)
            .await
            .iter()
            .filter_map(|e| e.document.as_ref().map(|d| d.id.clone()))
            .collect();
        assert_eq!(ids, std::slice::from_ref(&second), "{org}");
    }
}

//! Numbering and the clerical form (Decree 30): the secret series, the
//! issuer part of the notation, "V/v" on a công văn, a plausible date of
//! issue, the year turning at midnight Vietnam time, and numbers the
//! service assigns (`number` 0, `send --number auto`).

use std::collections::BTreeSet;

use crate::common::*;
use lienthong::clock::Clock;
use lienthong::evidence::{self, Evidence, TrustedKeys};
use lienthong::keys::KeyRegistry;
use lienthong::pb;
use prost::Message;
use tonic::Code;

/// 2025-12-31 23:59:59.500 in Vietnam (16:59:59.500 UTC).
pub(crate) const NEW_YEARS_EVE_LAST_HALF_SECOND: i64 = 1_767_200_399_500;
/// 2025-12-31 23:59:00 in Vietnam: a minute before the year turns.
pub(crate) const NEW_YEARS_EVE_LAST_MINUTE: i64 = 1_767_200_340_000;
/// 2026-01-01 00:00:00.500 in Vietnam.
const NEW_YEAR_HALF_SECOND_IN: i64 = 1_767_200_400_500;
/// 2026-03-10 12:00 in Vietnam.
const TENTH_OF_MARCH_NOON: i64 = 1_773_118_800_000;

/// A server whose clock reads `at_ms` now. The development PKI dates its
/// signing keys from yesterday by the machine's clock, which may be after
/// `at_ms`: their `not_before` is dropped, so they are valid from any time.
pub(crate) async fn server_at(at_ms: i64) -> (TestServer, Clock) {
    server_at_with(at_ms, |_| {}).await
}

/// [`server_at`], its configuration changed by `adjust` first.
pub(crate) async fn server_at_with(
    at_ms: i64,
    adjust: impl FnOnce(&mut lienthong::server::ServerConfig),
) -> (TestServer, Clock) {
    let clock = Clock::starting_at(at_ms);
    let mut server = TestServer::with_config(|c| {
        c.store.clock = clock.clone();
        adjust(c);
    })
    .await;
    let registry = server.pki().signing_keys();
    let text = std::fs::read_to_string(&registry).expect("key registry");
    let rows: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("not_before"))
        .collect();
    std::fs::write(&registry, rows.join("\n")).expect("write key registry");
    server.restart().await;
    (server, clock)
}

/// `directive` from `from`, with its date of issue and secrecy.
pub(crate) fn dated(from: &str, number: u64, date: &str, secrecy: pb::Secrecy) -> pb::Document {
    let mut d = directive(from, &["xa-van-nham"], number);
    d.promulgation_date = date.into();
    d.secrecy = secrecy as i32;
    d
}

async fn refused(server: &TestServer, client: &mut Client, d: pb::Document) -> tonic::Status {
    client
        .send(server.request(d))
        .await
        .expect_err("the send is refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_documents_have_their_own_series() {
    let server = TestServer::start().await;
    let mut ubnd = server.client("ubnd-huyen").await;
    let ordinary = dated("ubnd-huyen", 12, "2026-11-20", pb::Secrecy::None);
    server.send(&mut ubnd, ordinary.clone()).await;
    // 12/CT-UBND once more, secret: the other series, so no clash.
    let secret = dated("ubnd-huyen", 12, "2026-11-20", pb::Secrecy::Mat);
    let sent = server.send(&mut ubnd, secret).await;
    assert!(sent.edxml_id.ends_with(",12/CT-UBND"), "{}", sent.edxml_id);

    // Each series still holds its number once; every secrecy level is one
    // series.
    for (again, series) in [
        (ordinary, "ordinary series"),
        (
            dated("ubnd-huyen", 12, "2026-11-20", pb::Secrecy::TuyetMat),
            "secret series",
        ),
    ] {
        let err = refused(&server, &mut ubnd, again).await;
        assert_eq!(err.code(), Code::AlreadyExists);
        let message = err.message();
        assert!(
            message.starts_with(
                "document.number: 12/CT-UBND was already issued by ubnd-huyen in 2026, in its "
            ) && message.contains(series),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notation_names_the_issuer() {
    let server = TestServer::start().await;
    // (sender, type, notation, accepted)
    let table: &[(&str, &str, &str, bool)] = &[
        ("phong-noi-vu", "CT", "CT-PNV", true),
        ("phong-noi-vu", "CT", "CT-PNV-TCCB", true),
        ("phong-noi-vu", "cong-van", "PNV", true),
        ("phong-noi-vu", "cong-van", "PNV-VX", true),
        ("ubnd-huyen", "CT", "CT-UBND", true),
        ("ubnd-huyen", "QĐ", "QĐ-UBND-VP", true),
        ("vp-hdnd-ubnd", "TB", "TB-VP", true),
        ("xa-van-nham", "BC", "BC-UBND", true),
        ("xa-van-nham", "cong-van", "UBND-VX", true),
        ("phong-gd-dt", "KH", "KH-GDĐT", true),
        // In the committee's name: the committee issues it, not the department.
        ("phong-noi-vu", "CT", "CT-UBND", false),
        ("phong-noi-vu", "cong-van", "UBND-PNV", false),
        ("phong-noi-vu", "CT", "CT-VX-PNV", false),
        ("phong-noi-vu", "CT", "CT-pnv", false),
        ("phong-noi-vu", "cong-van", "CT-PNV", false),
        ("ubnd-huyen", "CT", "CT-PNV", false),
        ("vp-hdnd-ubnd", "TB", "TB-UBND", false),
        ("phong-gd-dt", "KH", "KH-GDDT", false),
    ];
    for (number, (from, kind, notation, accepted)) in (1..).zip(table) {
        let mut client = server.client(from).await;
        let mut d = directive(from, &["xa-yen-vuong"], number);
        d.document_type = kind.to_string();
        d.notation = notation.to_string();
        d.subject = format!("V/v thử ký hiệu {notation}");
        let result = client.send(server.request(d)).await;
        let case = format!("{from} {kind} {notation}");
        match (accepted, result) {
            (true, Ok(_)) => {}
            (false, Err(e)) => {
                assert_eq!(e.code(), Code::InvalidArgument, "{case}: {}", e.message());
                let abbreviation = abbreviation(from);
                assert!(
                    e.message().starts_with("document.notation: ")
                        && e.message()
                            .contains(&format!("issues as \"{abbreviation}\"")),
                    "{case}: {}",
                    e.message()
                );
            }
            (true, Err(e)) => panic!("{case} refused: {}", e.message()),
            (false, Ok(_)) => panic!("{case} accepted"),
        }
    }
    // The message says what was expected, and why a department cannot.
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut d = directive("phong-noi-vu", &["xa-yen-vuong"], 100);
    d.notation = "CT-UBND".into();
    let message = refused(&server, &mut noi_vu, d).await.message().to_owned();
    assert!(
        message.contains("\"CT-PNV\"") && message.contains("committee's name"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cong_van_says_what_it_is_about() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut letter = directive("phong-noi-vu", &["xa-van-nham"], 1);
    letter.document_type = "cong-van".into();
    letter.notation = "PNV-VX".into();
    letter.subject = "Triển khai kế hoạch phòng cháy".into();
    let err = refused(&server, &mut noi_vu, letter.clone()).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("document.subject: ") && err.message().contains("\"V/v\""),
        "{}",
        err.message()
    );
    letter.subject = "V/v triển khai kế hoạch phòng cháy".into();
    server.send(&mut noi_vu, letter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_date_of_issue_is_plausible_by_the_servers_clock() {
    let (server, _clock) = server_at(TENTH_OF_MARCH_NOON).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    for (number, date, accepted) in [
        (1, "2026-03-11", false),
        (2, "2027-01-01", false),
        (3, "2016-03-09", false),
        (4, "1996-03-10", false),
        (5, "2026-03-10", true),
        (6, "2016-03-10", true),
    ] {
        let d = dated("phong-noi-vu", number, date, pb::Secrecy::None);
        let result = noi_vu.send(server.request(d)).await;
        match (accepted, result) {
            (true, Ok(_)) => {}
            (false, Err(e)) => {
                assert_eq!(e.code(), Code::InvalidArgument, "{date}");
                assert!(
                    e.message()
                        .starts_with(&format!("document.promulgation_date: {date} is ")),
                    "{}",
                    e.message()
                );
            }
            (_, result) => panic!("{date}: {result:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clash_names_the_year_of_the_number() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let last_year = dated("phong-noi-vu", 5, "2025-06-01", pb::Secrecy::None);
    server.send(&mut noi_vu, last_year.clone()).await;
    let err = refused(&server, &mut noi_vu, last_year).await;
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message()
            .contains("05/CT-PNV was already issued by phong-noi-vu in 2025"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("this year"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_restart_when_the_year_turns_in_vietnam() {
    let (server, clock) = server_at(NEW_YEARS_EVE_LAST_HALF_SECOND).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let eve = dated("phong-noi-vu", 1, "2025-12-31", pb::Secrecy::None);
    server.send(&mut noi_vu, eve.clone()).await;
    let auto_2025 = server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 0, "2025-12-31", pb::Secrecy::None),
        )
        .await;
    assert_eq!(auto_2025.number, 2);

    // Still 2025 in Vietnam, though 1 January has begun in places east of
    // it: a document dated 2026 is not issued yet. (A minute before
    // midnight, so that a slow machine cannot cross it meanwhile.)
    clock.set(NEW_YEARS_EVE_LAST_MINUTE);
    let new_year = dated("phong-noi-vu", 1, "2026-01-01", pb::Secrecy::None);
    let err = refused(&server, &mut noi_vu, new_year.clone()).await;
    assert!(
        err.message()
            .starts_with("document.promulgation_date: 2026-01-01 is after today (2025-12-31"),
        "{}",
        err.message()
    );

    // Half a second into 2026 in Vietnam (still 2025 in UTC): number 1 is
    // free again, and assigned numbers start again after it.
    clock.set(NEW_YEAR_HALF_SECOND_IN);
    let first = server.send(&mut noi_vu, new_year).await;
    assert!(
        first.edxml_id.ends_with(",2026/01/01,01/CT-PNV"),
        "{}",
        first.edxml_id
    );
    let auto_2026 = server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 0, "2026-01-01", pb::Secrecy::None),
        )
        .await;
    assert_eq!(auto_2026.number, 2);
    // The number of 2025 stays taken, and the error says which year.
    let err = refused(&server, &mut noi_vu, eve).await;
    assert!(err.message().contains("in 2025"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_auto_numbers_have_no_duplicate_and_no_gap() {
    let server = TestServer::start().await;
    let noi_vu = server.client("phong-noi-vu").await;
    let mut sends = Vec::new();
    for i in 0..50 {
        let mut client = noi_vu.clone();
        let mut d = directive("phong-noi-vu", &["xa-van-nham"], 0);
        d.subject = format!("Chỉ thị gửi cùng lúc, lần {i}");
        let request = server.request(d);
        sends.push(tokio::spawn(async move {
            client.send(request).await.expect("auto send").into_inner()
        }));
    }
    let mut numbers = BTreeSet::new();
    for send in sends {
        let sent = send.await.expect("task");
        assert!(
            sent.edxml_id
                .ends_with(&format!(",{:02}/CT-PNV", sent.number)),
            "{}",
            sent.edxml_id
        );
        let receipt = pb::Receipt::decode(sent.receipt.expect("receipt").receipt.as_slice())
            .expect("receipt decodes");
        assert_eq!(receipt.number, sent.number);
        assert!(numbers.insert(sent.number), "{} twice", sent.number);
    }
    assert_eq!(numbers, (1..=50).collect::<BTreeSet<u64>>());

    // The recipient's inbox shows the same numbers.
    let mut van_nham = server.client("xa-van-nham").await;
    let seen: BTreeSet<u64> = inbox_all(&mut van_nham)
        .await
        .iter()
        .map(|e| e.document.as_ref().expect("summary").number)
        .collect();
    assert_eq!(seen, numbers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_numbers_continue_after_the_highest_used() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let auto = |notation: &str, secrecy: pb::Secrecy| {
        let mut d = dated("phong-noi-vu", 0, "2026-11-20", secrecy);
        d.notation = notation.into();
        if notation.starts_with("KH-") {
            d.document_type = "KH".into();
        }
        d
    };
    server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 7, "2026-11-20", pb::Secrecy::None),
        )
        .await;
    assert_eq!(
        server
            .send(&mut noi_vu, auto("CT-PNV", pb::Secrecy::None))
            .await
            .number,
        8
    );
    // A lower number given by hand leaves the series where it stood.
    server
        .send(
            &mut noi_vu,
            dated("phong-noi-vu", 3, "2026-11-20", pb::Secrecy::None),
        )
        .await;
    // One series per issuer, whatever the notation.
    assert_eq!(
        server
            .send(&mut noi_vu, auto("KH-PNV", pb::Secrecy::None))
            .await
            .number,
        9
    );
    // The secret series counts apart; another year too.
    assert_eq!(
        server
            .send(&mut noi_vu, auto("CT-PNV", pb::Secrecy::Mat))
            .await
            .number,
        1
    );
    let mut last_year = auto("CT-PNV", pb::Secrecy::None);
    last_year.promulgation_date = "2025-11-20".into();
    assert_eq!(server.send(&mut noi_vu, last_year).await.number, 1);
    // And the given number 8 is taken by the assigned one.
    let err = refused(
        &server,
        &mut noi_vu,
        dated("phong-noi-vu", 8, "2026-11-20", pb::Secrecy::None),
    )
    .await;
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_number_leaves_the_signature_valid_and_is_attested() {
    let mut server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 4))
        .await;
    let request = server.request(directive("phong-noi-vu", &["xa-van-nham"], 0));
    let retry = request.clone();
    let sent = noi_vu.send(request).await.expect("send").into_inner();
    assert_eq!(sent.number, 5);

    // Restarted: what was assigned is stored, not recomputed.
    server.restart().await;
    let mut van_nham = server.client("xa-van-nham").await;
    let doc = van_nham
        .get_document(pb::GetDocumentRequest {
            id: sent.id.clone(),
            include_content: false,
        })
        .await
        .expect("get")
        .into_inner();
    // The bytes are as signed, with 0; the view shows the number.
    assert_eq!(
        pb::Document::decode(doc.document_bytes.as_slice())
            .expect("decodes")
            .number,
        0
    );
    assert_eq!(doc.document.as_ref().map(|d| d.number), Some(5));
    assert!(doc.edxml_id.ends_with(",05/CT-PNV"), "{}", doc.edxml_id);

    // Offline: the signature verifies over the bytes, and the receipt, under
    // the service's signature, gives the number.
    let receipt = doc.receipt.clone().expect("receipt");
    let evidence = Evidence {
        document: doc.document_bytes.clone(),
        signature: doc.signature.clone().expect("signature").signature,
        receipt: receipt.receipt,
        receipt_signature: receipt.signature,
        signing_key: None,
        paper: false,
    };
    let trusted = TrustedKeys {
        registry: Some(KeyRegistry::load(&server.pki().signing_keys()).expect("registry")),
        service_key: evidence::read_public_key(&server.dir.path().join("service-key.pub.pem"))
            .expect("service key"),
    };
    let checks = evidence::check(&evidence, &trusted, &|name| {
        panic!("no attachment {name} to read")
    });
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(
        checks
            .iter()
            .any(|c| c.detail.contains("numbered 05 by the service")),
        "{checks:?}"
    );

    // A retry of the same send gets the same number, not a new one.
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut keyed = retry;
    keyed.idempotency_key = "auto-5".into();
    let first = noi_vu.send(keyed.clone()).await.expect("send").into_inner();
    let again = noi_vu.send(keyed).await.expect("retry").into_inner();
    assert!(again.duplicate);
    assert_eq!((first.number, again.number), (6, 6));
}

#[test]
fn send_number_auto_on_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = serve_process(&data, &[]);
    let send = |number: &str, json: bool| {
        let mut args = vec![
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--type",
            "cong-van",
            "--number",
            number,
            "--notation",
            "PNV-VX",
            "--subject",
            "V/v đánh số tự động",
        ];
        if json {
            args.push("--json");
        }
        crate::cli::cli(&server, &data, &args)
    };
    let text = send("auto", false);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("number: 01 (assigned by the server)\n"),
        "{stdout}"
    );
    assert!(stdout.contains(",01/PNV-VX\n"), "{stdout}");

    let json = send("auto", true);
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let sent: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(
        (sent["number"].as_u64(), sent["number_assigned"].as_bool()),
        (Some(2), Some(true))
    );

    let zero = send("0", false);
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("auto"));
}

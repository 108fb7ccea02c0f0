//! Paper documents through the real API: an incoming one shares the
//! arrival numbering and the life of electronic ones, an outgoing one the
//! issuer's series; only for one's own organisation; every bad field named;
//! each recording sealed in the archive, which audits and proves it.

use crate::common::*;
use crate::lifecycle::{change, message};
use lienthong::client::{self, AttachmentFile};
use lienthong::lifecycle::Code;
use lienthong::pb;
use prost::Message;

pub(crate) const PROVINCE: &str = "Sở Nội vụ tỉnh Lạng Sơn";

fn record(
    direction: pb::PaperDirection,
    org: &str,
    counterpart: &str,
    number: u64,
) -> pb::PaperRecord {
    let issuer = match direction {
        pb::PaperDirection::Outgoing => abbreviation(org),
        _ => "SNV".to_owned(),
    };
    pb::PaperRecord {
        direction: direction as i32,
        organization: org.into(),
        counterpart: counterpart.into(),
        number,
        notation: format!("KH-{issuer}"),
        document_type: "ke-hoach".into(),
        promulgation_date: "2026-11-20".into(),
        subject: format!("Kế hoạch cải cách hành chính, số {number}"),
        scan: None,
    }
}

pub(crate) fn incoming(org: &str, counterpart: &str, number: u64) -> pb::PaperRecord {
    record(pb::PaperDirection::Incoming, org, counterpart, number)
}

pub(crate) fn outgoing(org: &str, counterpart: &str, number: u64) -> pb::PaperRecord {
    record(pb::PaperDirection::Outgoing, org, counterpart, number)
}

/// Records `paper` as `caller`, signed by `signer`'s key.
async fn record_as(
    server: &TestServer,
    caller: &str,
    signer: &str,
    paper: pb::PaperRecord,
    scan: Option<AttachmentFile>,
) -> Result<pb::SendResponse, tonic::Status> {
    let request = client::paper_request(paper, scan, &server.signer(signer)).expect("sign");
    server
        .client(caller)
        .await
        .record_paper(request)
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn record_paper(
    server: &TestServer,
    org: &str,
    paper: pb::PaperRecord,
) -> Result<pb::SendResponse, tonic::Status> {
    record_as(server, org, org, paper, None).await
}

async fn register(server: &TestServer, org: &str, outgoing: bool) -> pb::GetRegisterResponse {
    server
        .client(org)
        .await
        .get_register(pb::GetRegisterRequest {
            year: 0,
            outgoing,
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("register")
        .into_inner()
}

/// The whole outbox of `org` (a page is enough for these tests).
async fn outbox(server: &TestServer, org: &str) -> Vec<pb::OutboxEntry> {
    server
        .client(org)
        .await
        .list_outbox(pb::ListMailboxRequest {
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("outbox")
        .into_inner()
        .entries
}

fn leaf_kind(leaf: &[u8]) -> i32 {
    pb::ArchiveEntry::decode(leaf)
        .expect("an archive entry")
        .kind
}

fn assert_invalid(result: Result<pb::SendResponse, tonic::Status>, field: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(field),
        "{field}: {}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_paper_document_shares_the_arrival_numbers_and_lives_like_any() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut arrivals = Vec::new();
    let electronic = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    arrivals.push(electronic.deliveries[0].arrival_number);
    let from_province = record_paper(&server, "xa-van-nham", incoming("xa-van-nham", PROVINCE, 7))
        .await
        .expect("recorded");
    arrivals.push(from_province.deliveries[0].arrival_number);
    let electronic = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 2))
        .await;
    arrivals.push(electronic.deliveries[0].arrival_number);
    // From an organisation of the directory, on paper.
    let mut from_noi_vu = incoming("xa-van-nham", "phong-noi-vu", 3);
    from_noi_vu.notation = format!("KH-{}", abbreviation("phong-noi-vu"));
    let from_noi_vu = record_paper(&server, "xa-van-nham", from_noi_vu)
        .await
        .expect("recorded");
    arrivals.push(from_noi_vu.deliveries[0].arrival_number);
    assert_eq!(arrivals, [1, 2, 3, 4], "one numbering, without gap");

    let page = register(&server, "xa-van-nham", false).await;
    let lines: Vec<_> = page
        .incoming
        .iter()
        .map(|e| {
            let issuer = e.issuer.clone().unwrap_or_default();
            (e.arrival_number, e.paper, issuer.name, issuer.alias)
        })
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[1],
        (2, true, PROVINCE.to_owned(), String::new()),
        "the body outside the directory is named as recorded"
    );
    assert_eq!(
        (lines[3].0, lines[3].1, lines[3].3.as_str()),
        (4, true, "phong-noi-vu")
    );
    assert!(!lines[0].1 && !lines[2].1);
    let line = &page.incoming[1];
    assert_eq!(
        (
            line.number,
            line.notation.as_str(),
            line.document_type.as_str()
        ),
        (7, "KH-SNV", "ke-hoach")
    );

    // Unread, then through 03..06 like any delivery.
    let mut van_nham = server.client("xa-van-nham").await;
    let unread = client::unread_pages(&van_nham, String::new(), 0, true)
        .await
        .expect("unread")
        .0;
    let paper: Vec<_> = unread
        .iter()
        .filter_map(|e| e.document.as_ref())
        .filter(|d| d.paper)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(paper, [from_province.id.clone(), from_noi_vu.id.clone()]);
    for code in [
        Code::Registered,
        Code::Assigned,
        Code::InProgress,
        Code::Completed,
    ] {
        change(
            &server,
            "xa-van-nham",
            message("xa-van-nham", &from_province.id, code),
        )
        .await
        .unwrap_or_else(|e| panic!("{code:?}: {e:?}"));
    }
    let inbox = inbox_all(&mut van_nham).await;
    let mine = inbox
        .iter()
        .find(|e| e.document.as_ref().map(|d| d.id.as_str()) == Some(&from_province.id))
        .expect("in the inbox");
    assert_eq!(mine.status, pb::StatusCode::Completed as i32);

    // The counterpart named took no part: it cannot read the clerk's record,
    // which is not in its outbox either.
    let hidden = noi_vu
        .get_document(pb::GetDocumentRequest {
            id: from_noi_vu.id.clone(),
            include_content: false,
        })
        .await
        .expect_err("not the counterpart's");
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    let sent = outbox(&server, "phong-noi-vu").await;
    assert_eq!(sent.len(), 2, "only its two electronic documents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_paper_document_takes_a_number_in_the_series() {
    let server = TestServer::start().await;
    let first = record_paper(&server, "xa-van-nham", outgoing("xa-van-nham", PROVINCE, 5))
        .await
        .expect("recorded");
    assert_eq!(first.number, 5);
    assert!(first.deliveries.is_empty(), "the recipient records its own");
    let taken = record_paper(&server, "xa-van-nham", outgoing("xa-van-nham", PROVINCE, 5))
        .await
        .expect_err("the number is taken");
    assert_eq!(taken.code(), tonic::Code::AlreadyExists);
    assert!(taken.message().starts_with("record.number"), "{taken:?}");
    let auto = record_paper(
        &server,
        "xa-van-nham",
        outgoing("xa-van-nham", "phong-noi-vu", 0),
    )
    .await
    .expect("recorded");
    assert_eq!(auto.number, 6);
    // The phòng got nothing: paper is not delivered electronically.
    let mut noi_vu = server.client("phong-noi-vu").await;
    assert!(inbox_all(&mut noi_vu).await.is_empty());

    let page = register(&server, "xa-van-nham", true).await;
    let lines: Vec<_> = page
        .outgoing
        .iter()
        .map(|e| (e.number, e.paper, e.notation.clone()))
        .collect();
    let notation = format!("KH-{}", abbreviation("xa-van-nham"));
    assert_eq!(
        lines,
        [(5, true, notation.clone()), (6, true, notation.clone())]
    );
    let sent = outbox(&server, "xa-van-nham").await;
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|e| e.document.as_ref().is_some_and(|d| d.paper)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_for_ones_own_organisation_and_every_bad_field_named() {
    let server = TestServer::start().await;
    // Recording for another commune, signed with one's own key: refused by
    // the identity of the certificate.
    let other = record_paper(&server, "xa-van-nham", incoming("xa-dong-tan", PROVINCE, 1))
        .await
        .expect_err("not one's own");
    assert_eq!(other.code(), tonic::Code::PermissionDenied);
    assert!(
        other.message().starts_with("record.organization"),
        "{other:?}"
    );
    let other = record_paper(&server, "xa-van-nham", outgoing("xa-dong-tan", PROVINCE, 1))
        .await
        .expect_err("not one's own");
    assert!(other.message().contains("issuer"), "{other:?}");
    // Another organisation's key.
    assert_invalid(
        record_as(
            &server,
            "xa-van-nham",
            "xa-dong-tan",
            incoming("xa-van-nham", PROVINCE, 1),
            None,
        )
        .await,
        "signature.key_id",
    );
    // A changed signature.
    let mut request = client::paper_request(
        incoming("xa-van-nham", PROVINCE, 1),
        None,
        &server.signer("xa-van-nham"),
    )
    .expect("sign");
    if let Some(s) = request.signature.as_mut() {
        s.signature[0] ^= 1;
    }
    let bad = server
        .client("xa-van-nham")
        .await
        .record_paper(request)
        .await;
    assert_invalid(bad.map(|r| r.into_inner()), "signature");

    let mut bad_type = incoming("xa-van-nham", PROVINCE, 1);
    bad_type.document_type = "thu-tay".into();
    assert_invalid(
        record_paper(&server, "xa-van-nham", bad_type).await,
        "record.document_type",
    );
    let long = "Ủ".repeat(201);
    assert_invalid(
        record_paper(&server, "xa-van-nham", incoming("xa-van-nham", &long, 1)).await,
        "record.counterpart",
    );
    let mut no_direction = incoming("xa-van-nham", PROVINCE, 1);
    no_direction.direction = 0;
    assert_invalid(
        record_paper(&server, "xa-van-nham", no_direction).await,
        "record.direction",
    );
    assert_invalid(
        record_paper(&server, "xa-van-nham", incoming("xa-van-nham", PROVINCE, 0)).await,
        "record.number",
    );
    // A scan whose content is not the one declared.
    let mut request = client::paper_request(
        incoming("xa-van-nham", PROVINCE, 1),
        Some(pdf("ban-chup.pdf", b"%PDF-1.7 the scan")),
        &server.signer("xa-van-nham"),
    )
    .expect("sign");
    request.scan[0].content = b"%PDF-1.7 another".to_vec();
    let bad = server
        .client("xa-van-nham")
        .await
        .record_paper(request)
        .await;
    assert_invalid(bad.map(|r| r.into_inner()), "scan");

    // Nothing of it was stored.
    let mut van_nham = server.client("xa-van-nham").await;
    assert!(inbox_all(&mut van_nham).await.is_empty());
}

/// A scan marked uploaded must be a complete upload of the caller's; the
/// refusal names the scan, and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_marked_uploaded_without_its_upload_is_refused_by_name() {
    let server = TestServer::start().await;
    let declared = client::Outgoing::inline(pdf("ban-chup.pdf", b"%PDF-1.7 never uploaded"));
    let not_uploaded = client::Outgoing {
        declared: declared.declared,
        content: None,
    };
    let request = client::signed_paper_request(
        incoming("xa-van-nham", PROVINCE, 1),
        Some(not_uploaded),
        &server.signer("xa-van-nham"),
    )
    .expect("sign");
    let refused = server
        .client("xa-van-nham")
        .await
        .record_paper(request)
        .await
        .expect_err("no upload");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().starts_with("scan: "), "{refused:?}");
    assert!(register(&server, "xa-van-nham", false)
        .await
        .incoming
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_sealed_audited_and_proved() {
    let mut server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    let scan = pdf("ban-chup.pdf", b"%PDF-1.7 the scanned copy");
    let recorded = record_as(
        &server,
        "xa-van-nham",
        "xa-van-nham",
        incoming("xa-van-nham", PROVINCE, 9),
        Some(scan.clone()),
    )
    .await
    .expect("recorded");
    change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &recorded.id, Code::Registered),
    )
    .await
    .expect("03");
    record_paper(&server, "xa-van-nham", outgoing("xa-van-nham", PROVINCE, 0))
        .await
        .expect("recorded");

    let mut van_nham = server.client("xa-van-nham").await;
    let fetched = van_nham
        .get_document(pb::GetDocumentRequest {
            id: recorded.id.clone(),
            include_content: true,
        })
        .await
        .expect("the recorder reads it")
        .into_inner();
    assert_eq!(fetched.attachments.len(), 1);
    assert_eq!(fetched.attachments[0].content, scan.content);
    assert_eq!(
        fetched.document.as_ref().map(|d| d.from.as_str()),
        Some(PROVINCE)
    );

    van_nham
        .get_checkpoint(pb::GetCheckpointRequest {
            tree_size: 0,
            fresh: true,
        })
        .await
        .expect("checkpoint");
    let proof = proof_that_verifies(&server, &mut van_nham, &recorded.id).await;
    assert_eq!(
        leaf_kind(&proof.leaf),
        pb::ArchiveEntryKind::PaperRecorded as i32
    );

    server.stop().await;
    let report = lienthong::archive::audit::audit(server.dir.path()).expect("audit");
    // A document, two paper records, one status change.
    assert_eq!((report.leaves, report.problem), (4, None));
}

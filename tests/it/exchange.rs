//! The exchange end to end: real server, real mutual TLS, generated client.

use crate::common::*;
use lienthong::pb;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_to_all_communes_reaches_each_commune_with_arrival_numbers() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let content = b"%PDF-1.7 ke hoach".repeat(1000);
    let first = noi_vu
        .send(server.signed(
            directive("phong-noi-vu", &["all-communes"], 1),
            vec![pdf("ke-hoach.pdf", &content)],
            None,
        ))
        .await
        .expect("send")
        .into_inner();
    let second = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["all-communes"], 2))
        .await;

    let communes = communes();
    assert_eq!(communes.len(), 23);
    assert_eq!(first.deliveries.len(), 23);
    assert!(first.deliveries.iter().all(|d| d.arrival_number == 1));
    assert!(second.deliveries.iter().all(|d| d.arrival_number == 2));
    assert_eq!(first.edxml_id, "000.02.09.H37,2026/11/20,01/CT-PNV");

    for commune in &communes {
        let mut client = server.client(commune).await;
        let inbox = inbox_all(&mut client).await;
        let seen: Vec<(String, u64)> = inbox
            .iter()
            .map(|e| {
                (
                    e.document.as_ref().expect("summary").id.clone(),
                    e.arrival_number,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![(second.id.clone(), 2), (first.id.clone(), 1)],
            "{commune}'s inbox, newest first"
        );
        let got = client
            .get_document(pb::GetDocumentRequest {
                id: first.id.clone(),
                include_content: true,
            })
            .await
            .expect("a recipient reads the document")
            .into_inner();
        assert_eq!(got.attachments.len(), 1);
        assert_eq!(got.attachments[0].content, content);
        assert_eq!(got.my_delivery.map(|d| d.arrival_number), Some(1));
    }

    // The sender is not among the recipients and sees both in its outbox.
    assert!(inbox_all(&mut noi_vu).await.is_empty());
    let outbox = noi_vu
        .list_outbox(pb::ListMailboxRequest::default())
        .await
        .expect("outbox")
        .into_inner();
    assert_eq!(outbox.entries.len(), 2);
    assert!(outbox.entries.iter().all(|e| e.deliveries.len() == 23));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_are_expanded_deduplicated_and_exclude_the_sender() {
    let server = TestServer::start().await;
    let mut van_nham = server.client("xa-van-nham").await;
    let mut report = directive(
        "xa-van-nham",
        &[
            "phong-noi-vu",
            "000.02.09.H37",
            "all-communes",
            "phong-noi-vu",
        ],
        5,
    );
    report.document_type = "BC".into();
    report.notation = "BC-UBND".into();
    let sent = server.send(&mut van_nham, report).await;
    // 22 other communes and the department once, not the sender.
    assert_eq!(sent.deliveries.len(), 23);
    let codes: std::collections::HashSet<_> = sent
        .deliveries
        .iter()
        .map(|d| d.recipient.as_ref().expect("recipient").alias.clone())
        .collect();
    assert_eq!(codes.len(), 23);
    assert!(codes.contains("phong-noi-vu"));
    assert!(!codes.contains("xa-van-nham"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_cannot_read_another_communes_document() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let sent = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;

    let mut yen_vuong = server.client("xa-yen-vuong").await;
    assert!(inbox_all(&mut yen_vuong).await.is_empty());
    let forbidden = yen_vuong
        .get_document(pb::GetDocumentRequest {
            id: sent.id.clone(),
            include_content: true,
        })
        .await
        .expect_err("not a party to the document");
    let unknown_id = "0123456789abcdef0123456789abcdef";
    let unknown = yen_vuong
        .get_document(pb::GetDocumentRequest {
            id: unknown_id.into(),
            include_content: true,
        })
        .await
        .expect_err("no such document");
    // The same answer as for a document that does not exist.
    assert_eq!(forbidden.code(), Code::NotFound);
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(
        forbidden.message().replace(&sent.id, "ID"),
        unknown.message().replace(unknown_id, "ID")
    );

    // Replying to it is refused the same way as replying to nothing.
    let mut reply = directive("xa-yen-vuong", &["phong-noi-vu"], 1);
    reply.reply_to = sent.id.clone();
    let err = yen_vuong
        .send(server.request(reply))
        .await
        .expect_err("not its document");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("document.reply_to:"),
        "{}",
        err.message()
    );

    // The recipient can reply.
    let mut van_nham = server.client("xa-van-nham").await;
    let mut reply = directive("xa-van-nham", &["phong-noi-vu"], 1);
    reply.reply_to = sent.id.clone();
    server.send(&mut van_nham, reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_cannot_send_as_another_organisation() {
    let server = TestServer::start().await;
    let mut van_nham = server.client("xa-van-nham").await;
    let err = van_nham
        .send(server.request(directive("phong-noi-vu", &["all-communes"], 1)))
        .await
        .expect_err("impersonation");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("000.32.09.H37"), "{}", err.message());
    assert!(err.message().contains("phong-noi-vu"), "{}", err.message());

    // Nothing was delivered anywhere.
    let mut yen_vuong = server.client("xa-yen-vuong").await;
    assert!(inbox_all(&mut yen_vuong).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_returns_the_original_and_creates_nothing() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let document = directive("phong-noi-vu", &["xa-van-nham", "xa-yen-vuong"], 7);
    let key = Some("send-2026-0007".to_string());
    let attachment = vec![pdf("a.pdf", b"%PDF one")];
    let first = noi_vu
        .send(server.signed(document.clone(), attachment.clone(), key.clone()))
        .await
        .expect("first")
        .into_inner();
    let retry = noi_vu
        .send(server.signed(document.clone(), attachment.clone(), key.clone()))
        .await
        .expect("retry")
        .into_inner();
    assert!(!first.duplicate);
    assert!(retry.duplicate);
    assert_eq!(retry.id, first.id);
    assert_eq!(retry.deliveries, first.deliveries);

    let mut van_nham = server.client("xa-van-nham").await;
    assert_eq!(inbox_all(&mut van_nham).await.len(), 1);

    // Same key, other content: refused, whatever changed.
    let mut changed = document.clone();
    changed.subject.push_str(" (sửa)");
    let err = noi_vu
        .send(server.signed(changed, attachment, key.clone()))
        .await
        .expect_err("key reused");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().starts_with("idempotency_key:"),
        "{}",
        err.message()
    );
    let err = noi_vu
        .send(server.signed(document, vec![pdf("a.pdf", b"%PDF two")], key))
        .await
        .expect_err("key reused with another attachment");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(inbox_all(&mut van_nham).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_and_notation_are_unique_per_issuer_within_a_year() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 3))
        .await;
    let err = noi_vu
        .send(server.request(directive("phong-noi-vu", &["xa-yen-vuong"], 3)))
        .await
        .expect_err("number reused");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().starts_with("document.number:"),
        "{}",
        err.message()
    );

    // Another issuer may use the same number, and so may another year.
    let mut tu_phap = server.client("phong-tu-phap").await;
    server
        .send(
            &mut tu_phap,
            directive("phong-tu-phap", &["xa-van-nham"], 3),
        )
        .await;
    let mut last_year = directive("phong-noi-vu", &["xa-van-nham"], 3);
    last_year.promulgation_date = "2025-11-20".into();
    server.send(&mut noi_vu, last_year).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart_and_numbering_continues() {
    let mut server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let first = noi_vu
        .send(server.signed(
            directive("phong-noi-vu", &["all-communes"], 1),
            vec![pdf("p.pdf", b"%PDF persistent")],
            Some("k1".into()),
        ))
        .await
        .expect("send")
        .into_inner();

    server.restart().await;

    let mut van_nham = server.client("xa-van-nham").await;
    let inbox = inbox_all(&mut van_nham).await;
    assert_eq!(inbox.len(), 1);
    let got = van_nham
        .get_document(pb::GetDocumentRequest {
            id: first.id.clone(),
            include_content: true,
        })
        .await
        .expect("still there")
        .into_inner();
    assert_eq!(got.attachments[0].content, b"%PDF persistent");

    let mut noi_vu = server.client("phong-noi-vu").await;
    let second = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["all-communes"], 2))
        .await;
    assert!(second.deliveries.iter().all(|d| d.arrival_number == 2));
    // The idempotency key is remembered too.
    let retry = noi_vu
        .send(server.signed(
            directive("phong-noi-vu", &["all-communes"], 1),
            vec![pdf("p.pdf", b"%PDF persistent")],
            Some("k1".into()),
        ))
        .await
        .expect("retry")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.id, first.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_walks_a_mailbox_larger_than_one_page_exactly_once() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    const N: u64 = 120;
    for number in 1..=N {
        server
            .send(
                &mut noi_vu,
                directive("phong-noi-vu", &["xa-van-nham"], number),
            )
            .await;
    }
    let mut van_nham = server.client("xa-van-nham").await;
    let mut token = String::new();
    let mut pages = Vec::new();
    let mut arrival_numbers = Vec::new();
    loop {
        let page = van_nham
            .list_inbox(pb::ListMailboxRequest {
                page_size: 50,
                page_token: token,
            })
            .await
            .expect("page")
            .into_inner();
        pages.push(page.entries.len());
        arrival_numbers.extend(page.entries.iter().map(|e| e.arrival_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, vec![50, 50, 20]);
    assert_eq!(arrival_numbers, (1..=N).rev().collect::<Vec<_>>());

    // The outbox pages the same way.
    let first = noi_vu
        .list_outbox(pb::ListMailboxRequest {
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("outbox")
        .into_inner();
    assert_eq!(first.entries.len(), 100);
    let rest = noi_vu
        .list_outbox(pb::ListMailboxRequest {
            page_size: 100,
            page_token: first.next_page_token,
        })
        .await
        .expect("outbox page 2")
        .into_inner();
    assert_eq!(rest.entries.len(), 20);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_distinct_consecutive_arrival_numbers() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for (i, dept) in [
        "phong-noi-vu",
        "phong-tu-phap",
        "phong-tc-kh",
        "phong-tn-mt",
    ]
    .into_iter()
    .enumerate()
    {
        let mut client = server.client(dept).await;
        let signer = server.signer(dept);
        tasks.push(tokio::spawn(async move {
            for n in 1..=25u64 {
                let mut d = directive(dept, &["all-communes"], n);
                d.subject = format!("Công văn {i}-{n}");
                let request =
                    lienthong::client::send_request(d, vec![], None, &signer).expect("sign");
                client.send(request).await.expect("send");
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender task");
    }
    for commune in ["xa-van-nham", "tt-huu-lung"] {
        let mut client = server.client(commune).await;
        let mut numbers: Vec<u64> = inbox_all(&mut client)
            .await
            .iter()
            .map(|e| e.arrival_number)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=100).collect::<Vec<_>>(), "{commune}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_names_the_caller_from_its_certificate() {
    let server = TestServer::start().await;
    let mut client = server.client("xa-van-nham").await;
    let dir = client
        .get_directory(pb::GetDirectoryRequest {})
        .await
        .expect("directory")
        .into_inner();
    assert_eq!(dir.caller.map(|c| c.alias), Some("xa-van-nham".to_string()));
    assert_eq!(dir.organizations.len(), 32);
    assert!(dir.groups.iter().any(|g| g.alias == "all-communes"));
}

/// Attachment files under DATA/attachments (not counting tmp/).
fn attachment_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root.join("attachments"))
        .expect("attachments dir")
        .flatten()
    {
        if dir.file_name() == "tmp" {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).expect("subdir").flatten() {
            files.push(file.path());
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_is_stored_once_and_a_damaged_file_is_never_served() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let sent = noi_vu
        .send(server.signed(
            directive("phong-noi-vu", &["all-communes"], 1),
            vec![pdf("lon.pdf", &content)],
            None,
        ))
        .await
        .expect("send")
        .into_inner();
    assert_eq!(sent.deliveries.len(), 23);
    let files = attachment_files(server.dir.path());
    assert_eq!(files.len(), 1, "one copy for 23 recipients");

    // One byte changed on disk: refused, never handed out as the document.
    let mut bytes = std::fs::read(&files[0]).expect("read");
    bytes[100] ^= 1;
    std::fs::write(&files[0], bytes).expect("tamper");
    let mut van_nham = server.client("xa-van-nham").await;
    let err = van_nham
        .get_document(pb::GetDocumentRequest {
            id: sent.id,
            include_content: true,
        })
        .await
        .expect_err("damaged content");
    assert_eq!(err.code(), Code::Internal);
}

//! Every invalid request gets a precise status naming the field or limit, and
//! leaves nothing behind: after all of them, no mailbox has anything and the
//! server still serves normally.

use crate::common::*;
use lienthong::exchange::Limits;
use lienthong::pb;
use prost::Message;
use tonic::Code;

type Mutation = fn(&mut pb::Document);

/// (what is wrong, the change, expected code, the message's beginning)
fn header_cases() -> Vec<(&'static str, Mutation, Code, &'static str)> {
    use Code::*;
    vec![
        (
            "no sender",
            |d| d.from.clear(),
            InvalidArgument,
            "document.from:",
        ),
        (
            "unknown sender",
            |d| d.from = "phong-khong-co".into(),
            InvalidArgument,
            "document.from:",
        ),
        (
            "no recipient",
            |d| d.to.clear(),
            InvalidArgument,
            "document.to:",
        ),
        (
            "unknown recipient",
            |d| d.to.push("xa-khong-co".into()),
            InvalidArgument,
            "document.to[1]:",
        ),
        (
            "empty recipient",
            |d| d.to.push(String::new()),
            InvalidArgument,
            "document.to[1]:",
        ),
        (
            "only the sender",
            |d| d.to = vec!["phong-noi-vu".into()],
            InvalidArgument,
            "document.to:",
        ),
        (
            "number of 12 digits",
            |d| d.number = 100_000_000_000,
            InvalidArgument,
            "document.number:",
        ),
        (
            "no notation",
            |d| d.notation.clear(),
            InvalidArgument,
            "document.notation:",
        ),
        (
            "notation too long",
            |d| d.notation = format!("CT-{}", "U".repeat(28)),
            InvalidArgument,
            "document.notation:",
        ),
        (
            "notation of another type",
            |d| d.notation = "QĐ-UBND".into(),
            InvalidArgument,
            "document.notation:",
        ),
        (
            "notation in the committee's name from a department",
            |d| d.notation = "CT-UBND".into(),
            InvalidArgument,
            "document.notation:",
        ),
        (
            "notation with an empty part",
            |d| d.notation = "CT--PNV".into(),
            InvalidArgument,
            "document.notation:",
        ),
        (
            "công văn without V/v",
            |d| {
                d.document_type = "cong-van".into();
                d.notation = "PNV-VX".into();
            },
            InvalidArgument,
            "document.subject:",
        ),
        (
            "date of issue in the future",
            // Two days ahead, so that midnight passing during the test
            // cannot make it today.
            |d| {
                let ahead = lienthong::clock::today() + time::Duration::days(2);
                d.promulgation_date = lienthong::clock::format_date(ahead);
            },
            InvalidArgument,
            "document.promulgation_date:",
        ),
        (
            "date of issue decades back",
            |d| d.promulgation_date = "1990-11-20".into(),
            InvalidArgument,
            "document.promulgation_date:",
        ),
        (
            "number inside notation",
            |d| d.notation = "CT-UBND/12".into(),
            InvalidArgument,
            "document.notation:",
        ),
        (
            "unknown type",
            |d| d.document_type = "XYZ".into(),
            InvalidArgument,
            "document.document_type:",
        ),
        (
            "no type",
            |d| d.document_type.clear(),
            InvalidArgument,
            "document.document_type:",
        ),
        (
            "no subject",
            |d| d.subject.clear(),
            InvalidArgument,
            "document.subject:",
        ),
        (
            "subject of 501 characters",
            |d| d.subject = "ệ".repeat(501),
            InvalidArgument,
            "document.subject:",
        ),
        (
            "subject on two lines",
            |d| d.subject = "a\nb".into(),
            InvalidArgument,
            "document.subject:",
        ),
        (
            "control character",
            |d| d.subject = "a\u{1b}[31m".into(),
            InvalidArgument,
            "document.subject:",
        ),
        (
            "content of 501 characters",
            |d| d.content = "x".repeat(501),
            InvalidArgument,
            "document.content:",
        ),
        (
            "place too long",
            |d| d.place = "p".repeat(151),
            InvalidArgument,
            "document.place:",
        ),
        (
            "no date",
            |d| d.promulgation_date.clear(),
            InvalidArgument,
            "document.promulgation_date:",
        ),
        (
            "date in another format",
            |d| d.promulgation_date = "20/11/2026".into(),
            InvalidArgument,
            "document.promulgation_date:",
        ),
        (
            "impossible date",
            |d| d.promulgation_date = "2026-02-30".into(),
            InvalidArgument,
            "document.promulgation_date:",
        ),
        (
            "due before issue",
            |d| d.due_date = "2026-11-19".into(),
            InvalidArgument,
            "document.due_date:",
        ),
        (
            "bad due date",
            |d| d.due_date = "soon".into(),
            InvalidArgument,
            "document.due_date:",
        ),
        (
            "unknown urgency",
            |d| d.urgency = 4,
            InvalidArgument,
            "document.urgency:",
        ),
        (
            "unknown secrecy",
            |d| d.secrecy = 7,
            InvalidArgument,
            "document.secrecy:",
        ),
        (
            "unknown competence",
            |d| {
                d.signer = Some(pb::Signer {
                    competence: "XX.".into(),
                    ..Default::default()
                })
            },
            InvalidArgument,
            "document.signer.competence:",
        ),
        (
            "signer name too long",
            |d| {
                d.signer = Some(pb::Signer {
                    full_name: "n".repeat(101),
                    ..Default::default()
                })
            },
            InvalidArgument,
            "document.signer.full_name:",
        ),
        (
            "empty place of receipt",
            |d| d.to_places.push(" ".into()),
            InvalidArgument,
            "document.to_places[0]:",
        ),
        (
            "malformed reply-to",
            |d| d.reply_to = "12".into(),
            InvalidArgument,
            "document.reply_to:",
        ),
        (
            "unknown reply-to",
            |d| d.reply_to = "0".repeat(32),
            InvalidArgument,
            "document.reply_to:",
        ),
    ]
}

fn with_attachment(name: &str, media_type: &str) -> pb::AttachmentRef {
    pb::AttachmentRef {
        name: name.into(),
        media_type: media_type.into(),
        size: 4,
        sha256: ring::digest::digest(&ring::digest::SHA256, b"%PDF")
            .as_ref()
            .to_vec(),
    }
}

/// Requests whose attachments disagree with the header.
fn attachment_cases(
    server: &TestServer,
) -> Vec<(&'static str, pb::SendRequest, Code, &'static str)> {
    use Code::*;
    let signer = server.signer("phong-noi-vu");
    let encoded = |refs: Vec<pb::AttachmentRef>, contents: Vec<&[u8]>| {
        let mut d = directive("phong-noi-vu", &["xa-van-nham"], 1);
        d.attachments = refs;
        let document = d.encode_to_vec();
        let (key_id, signature) = signer.sign_document(&document).expect("sign");
        pb::SendRequest {
            signature: Some(pb::DocumentSignature { key_id, signature }),
            document,
            attachments: contents
                .into_iter()
                .map(|c| pb::AttachmentContent {
                    content: c.to_vec(),
                    uploaded: false,
                })
                .collect(),
            idempotency_key: String::new(),
        }
    };
    let ok = || with_attachment("a.pdf", "application/pdf");
    vec![
        (
            "path in a name",
            encoded(
                vec![with_attachment("../a.pdf", "application/pdf")],
                vec![b"%PDF"],
            ),
            InvalidArgument,
            "document.attachments[0].name:",
        ),
        (
            "empty name",
            encoded(vec![with_attachment("", "application/pdf")], vec![b"%PDF"]),
            InvalidArgument,
            "document.attachments[0].name:",
        ),
        (
            "same name twice",
            encoded(vec![ok(), ok()], vec![b"%PDF", b"%PDF"]),
            InvalidArgument,
            "document.attachments[1].name:",
        ),
        (
            "bad media type",
            encoded(vec![with_attachment("a.pdf", "pdf")], vec![b"%PDF"]),
            InvalidArgument,
            "document.attachments[0].media_type:",
        ),
        (
            "short digest",
            encoded(
                vec![pb::AttachmentRef {
                    sha256: vec![1; 31],
                    ..ok()
                }],
                vec![b"%PDF"],
            ),
            InvalidArgument,
            "document.attachments[0].sha256:",
        ),
        (
            "content missing",
            encoded(vec![ok()], vec![]),
            InvalidArgument,
            "attachments:",
        ),
        (
            "content not declared",
            encoded(vec![], vec![b"%PDF"]),
            InvalidArgument,
            "attachments:",
        ),
        (
            "wrong size",
            encoded(vec![ok()], vec![b"%PDF-1"]),
            InvalidArgument,
            "attachments[0]:",
        ),
        (
            "tampered content",
            encoded(vec![ok()], vec![b"%PDX"]),
            InvalidArgument,
            "attachments[0]:",
        ),
    ]
}

async fn expect_status(
    client: &mut Client,
    what: &str,
    request: pb::SendRequest,
    code: Code,
    prefix: &str,
) {
    let err = client
        .send(request)
        .await
        .expect_err(&format!("{what}: must be refused"));
    assert_eq!(err.code(), code, "{what}: {}", err.message());
    assert!(
        err.message().starts_with(prefix),
        "{what}: expected a message starting {prefix:?}, got {:?}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_send_is_refused_naming_the_field_and_nothing_is_written() {
    let server = TestServer::with_limits(Limits {
        max_document_bytes: 64 * 1024,
        max_recipients: 10,
    })
    .await;
    let mut client = server.client("phong-noi-vu").await;

    for (what, mutate, code, prefix) in header_cases() {
        let mut d = directive("phong-noi-vu", &["xa-van-nham"], 1);
        mutate(&mut d);
        expect_status(&mut client, what, server.request(d), code, prefix).await;
    }
    for (what, req, code, prefix) in attachment_cases(&server) {
        expect_status(&mut client, what, req, code, prefix).await;
    }

    // Bytes that are not a Document at all, and a string that is not UTF-8.
    let garbage = pb::SendRequest {
        document: vec![0xff, 0xff, 0xff],
        ..Default::default()
    };
    expect_status(
        &mut client,
        "garbage",
        garbage,
        Code::InvalidArgument,
        "document:",
    )
    .await;
    let mut bytes = directive("phong-noi-vu", &["xa-van-nham"], 1).encode_to_vec();
    bytes.extend_from_slice(&[(8 << 3) | 2, 2, 0xff, 0xfe]); // subject = invalid UTF-8
    let not_utf8 = pb::SendRequest {
        document: bytes,
        ..Default::default()
    };
    expect_status(
        &mut client,
        "invalid UTF-8",
        not_utf8,
        Code::InvalidArgument,
        "document:",
    )
    .await;

    let bad_key = server.signed(
        directive("phong-noi-vu", &["xa-van-nham"], 1),
        vec![],
        Some("has space".into()),
    );
    expect_status(
        &mut client,
        "idempotency key",
        bad_key,
        Code::InvalidArgument,
        "idempotency_key:",
    )
    .await;

    // Limits: RESOURCE_EXHAUSTED naming the limit.
    let big = server.signed(
        directive("phong-noi-vu", &["xa-van-nham"], 1),
        vec![pdf("big.pdf", &vec![7u8; 65 * 1024])],
        None,
    );
    expect_status(
        &mut client,
        "oversized",
        big,
        Code::ResourceExhausted,
        "max_document_bytes:",
    )
    .await;
    let huge = server.signed(
        directive("phong-noi-vu", &["xa-van-nham"], 1),
        vec![pdf("huge.pdf", &vec![7u8; 3 * 1024 * 1024])],
        None,
    );
    expect_status(
        &mut client,
        "far oversized",
        huge,
        Code::ResourceExhausted,
        "max_document_bytes:",
    )
    .await;
    let many = server.request(directive("phong-noi-vu", &["all-communes"], 1));
    expect_status(
        &mut client,
        "too many recipients",
        many,
        Code::ResourceExhausted,
        "max_recipients:",
    )
    .await;

    // Nothing was half-written: no mailbox has anything.
    let mut van_nham = server.client("xa-van-nham").await;
    assert!(inbox_all(&mut van_nham).await.is_empty());
    let outbox = client
        .list_outbox(pb::ListMailboxRequest::default())
        .await
        .expect("outbox")
        .into_inner();
    assert!(outbox.entries.is_empty());

    // And the server serves normally afterwards.
    let sent = server
        .send(&mut client, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    assert_eq!(sent.deliveries[0].arrival_number, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reads_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client("xa-van-nham").await;
    let cases = [
        (
            "page_size",
            pb::ListMailboxRequest {
                page_size: 501,
                page_token: String::new(),
            },
        ),
        (
            "page_token",
            pb::ListMailboxRequest {
                page_size: 0,
                page_token: "zz".into(),
            },
        ),
        (
            "page_token",
            pb::ListMailboxRequest {
                page_size: 0,
                page_token: "6f0000000000000001".into(),
            },
        ),
    ];
    for (field, req) in cases {
        let err = client.list_inbox(req).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with(&format!("{field}:")),
            "{}",
            err.message()
        );
    }
    let err = client
        .get_document(pb::GetDocumentRequest {
            id: "not-an-id".into(),
            include_content: false,
        })
        .await
        .expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("id:"), "{}", err.message());
}

/// Sends raw bytes as the body of a gRPC call, to test what the generated
/// client cannot produce: an envelope that is not valid protobuf.
mod raw {
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::Status;

    #[derive(Default)]
    pub struct RawCodec;

    pub struct RawEncoder;
    pub struct RawDecoder;

    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
            bytes::BufMut::put_slice(buf, &item);
            Ok(())
        }
    }

    impl Decoder for RawDecoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
            let n = bytes::Buf::remaining(buf);
            Ok(Some(bytes::Buf::copy_to_bytes(buf, n).to_vec()))
        }
    }

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawEncoder;
        type Decoder = RawDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> RawDecoder {
            RawDecoder
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_envelope_is_invalid_argument_and_the_server_carries_on() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel("phong-noi-vu", None).await);
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/lienthong.v1.Exchange/Send");
    // Field 3 (idempotency_key, a string) holding bytes that are not UTF-8;
    // then bytes that are not protobuf at all.
    for body in [vec![(3 << 3) | 2, 2, 0xff, 0xfe], vec![0xff; 16]] {
        grpc.ready().await.expect("ready");
        let err = grpc
            .unary(tonic::Request::new(body), path.clone(), raw::RawCodec)
            .await
            .expect_err("malformed");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(
            err.message().contains("not valid protobuf"),
            "{}",
            err.message()
        );
    }
    let mut client = server.client("phong-noi-vu").await;
    server
        .send(&mut client, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_recipients_are_merged_not_refused() {
    let server = TestServer::start().await;
    let mut client = server.client("phong-noi-vu").await;
    let sent = server
        .send(
            &mut client,
            directive(
                "phong-noi-vu",
                &["xa-van-nham", "xa-van-nham", "000.32.09.H37"],
                1,
            ),
        )
        .await;
    assert_eq!(sent.deliveries.len(), 1);
}

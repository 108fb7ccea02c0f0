//! Input from a buggy or malicious client, each class reproduced through the
//! real API: values too long to echo, text that hides or spoofs, fields a
//! recipient cannot see inside signed bytes, a name the recipient's software
//! reserves, and broken gRPC framing. Each gets a precise status naming the
//! field, nothing is stored, and the server carries on.

use crate::common::*;
use crate::lifecycle::{message, signed_status};
use crate::paper::{incoming, PROVINCE};
use lienthong::client;
use lienthong::lifecycle::Code;
use lienthong::pb;
use prost::Message;
use tonic::Code as Grpc;

/// 100 000 characters: far over what fits in a status's HTTP/2 header.
fn long() -> String {
    "x".repeat(100_000)
}

/// The status must be `code` and name `field`, and quote at most a short
/// prefix of the input.
#[track_caller]
fn assert_names(result: Result<impl std::fmt::Debug, tonic::Status>, code: Grpc, field: &str) {
    let status = result.expect_err(&format!("{field}: must be refused"));
    assert_eq!(status.code(), code, "{field}: {}", status.message());
    assert!(
        status.message().starts_with(&format!("{field}: ")) || status.message().starts_with(field),
        "expected a message naming {field}, got {:?}",
        status.message()
    );
    assert!(
        status.message().len() < 500,
        "{field}: a message of {} bytes",
        status.message().len()
    );
}

fn attachment(name: &str) -> pb::AttachmentRef {
    pb::AttachmentRef {
        name: name.into(),
        media_type: "application/pdf".into(),
        size: 4,
        sha256: lienthong::crypto::sha256(b"%PDF").to_vec(),
    }
}

/// A send of `document` signed over exactly `bytes`, with one attachment
/// content per declared attachment.
fn signed_bytes(server: &TestServer, bytes: Vec<u8>, contents: usize) -> pb::SendRequest {
    let (key_id, signature) = server
        .signer("phong-noi-vu")
        .sign_document(&bytes)
        .expect("sign");
    pb::SendRequest {
        document: bytes,
        attachments: vec![
            pb::AttachmentContent {
                content: b"%PDF".to_vec(),
                uploaded: false,
            };
            contents
        ],
        idempotency_key: String::new(),
        signature: Some(pb::DocumentSignature { key_id, signature }),
    }
}

fn signed_document(server: &TestServer, document: pb::Document) -> pb::SendRequest {
    let contents = document.attachments.len();
    signed_bytes(server, document.encode_to_vec(), contents)
}

fn valid() -> pb::Document {
    directive("phong-noi-vu", &["xa-van-nham"], 1)
}

/// Nothing was stored by the refused requests, and a proper one goes through.
async fn nothing_stored_and_still_serving(server: &TestServer, client: &mut Client) {
    let outbox = client
        .list_outbox(pb::ListMailboxRequest::default())
        .await
        .expect("outbox")
        .into_inner();
    assert_eq!(outbox.entries.len(), 0);
    let mut van_nham = server.client("xa-van-nham").await;
    assert!(inbox_all(&mut van_nham).await.is_empty());
    server.send(client, valid()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_values_are_refused_naming_the_field_and_quoted_short() {
    let server = TestServer::start().await;
    let mut client = server.client("phong-noi-vu").await;
    type Mutation = Box<dyn Fn(&mut pb::Document)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "document.attachments[0].media_type",
            Box::new(|d| {
                d.attachments = vec![pb::AttachmentRef {
                    media_type: long(),
                    ..attachment("a.pdf")
                }]
            }),
        ),
        (
            "document.document_type",
            Box::new(|d| d.document_type = long()),
        ),
        (
            "document.promulgation_date",
            Box::new(|d| d.promulgation_date = long()),
        ),
        ("document.due_date", Box::new(|d| d.due_date = long())),
        ("document.reply_to", Box::new(|d| d.reply_to = long())),
        (
            "document.signer.competence",
            Box::new(|d| {
                if let Some(s) = d.signer.as_mut() {
                    s.competence = long();
                }
            }),
        ),
        (
            "document.supersedes.document_id",
            Box::new(|d| {
                d.supersedes = Some(pb::Supersedes {
                    document_id: long(),
                    operation: pb::Operation::Replace as i32,
                    reason: "Thay thế".into(),
                })
            }),
        ),
        ("document.subject", Box::new(|d| d.subject = long())),
        ("document.to[0]", Box::new(|d| d.to = vec![long()])),
    ];
    for (field, mutate) in cases {
        let mut d = valid();
        mutate(&mut d);
        assert_names(
            client.send(signed_document(&server, d)).await,
            Grpc::InvalidArgument,
            field,
        );
    }

    let mut request = server.request(valid());
    if let Some(s) = request.signature.as_mut() {
        s.key_id = long();
    }
    assert_names(
        client.send(request).await,
        Grpc::InvalidArgument,
        "signature.key_id",
    );

    let get = pb::GetDocumentRequest {
        id: long(),
        include_content: false,
    };
    assert_names(client.get_document(get).await, Grpc::InvalidArgument, "id");
    let proof = pb::GetInclusionProofRequest {
        document_id: long(),
        tree_size: 0,
        leaf_index: None,
    };
    assert_names(
        client.get_inclusion_proof(proof).await,
        Grpc::InvalidArgument,
        "document_id",
    );
    let history = pb::GetHistoryRequest {
        document_id: long(),
    };
    assert_names(
        client.get_history(history).await,
        Grpc::InvalidArgument,
        "document_id",
    );
    let report = pb::GetReportRequest {
        period: long(),
        ..Default::default()
    };
    assert_names(
        client.get_report(report).await,
        Grpc::InvalidArgument,
        "period",
    );
    let report = pb::GetReportRequest {
        from: long(),
        to: "2026-11-30".into(),
        ..Default::default()
    };
    assert_names(
        client.get_report(report).await,
        Grpc::InvalidArgument,
        "from",
    );
    let explain = pb::ExplainReportRequest {
        organization: long(),
        ..Default::default()
    };
    assert_names(
        client.explain_report(explain).await,
        Grpc::InvalidArgument,
        "organization",
    );

    let sent = server.send(&mut client, valid()).await;
    let mut van_nham = server.client("xa-van-nham").await;
    for (field, change) in [
        ("status.from", {
            let mut m = message("xa-van-nham", &sent.id, Code::Registered);
            m.from = long();
            m
        }),
        (
            "status.document_id",
            message("xa-van-nham", &long(), Code::Registered),
        ),
        ("status.deadline", {
            let mut m = message("xa-van-nham", &sent.id, Code::Assigned);
            m.deadline = long();
            m
        }),
    ] {
        let (status, signature) = signed_status(&server, "xa-van-nham", change);
        let request = pb::ChangeStatusRequest { status, signature };
        assert_names(
            van_nham.change_status(request).await,
            Grpc::InvalidArgument,
            field,
        );
    }

    let mut record = incoming("xa-van-nham", PROVINCE, 45);
    record.organization = long();
    let request = client::paper_request(record, None, &server.signer("xa-van-nham")).expect("sign");
    assert_names(
        van_nham.record_paper(request).await,
        Grpc::InvalidArgument,
        "record.organization",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_hides_or_spoofs_is_refused_in_a_signed_document() {
    let server = TestServer::start().await;
    let mut client = server.client("phong-noi-vu").await;
    type Mutation = fn(&mut pb::Document);
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "document.attachments[0].name",
            |d| d.attachments = vec![attachment("a\u{202e}fdp.exe")],
            "contains a right-to-left override (U+202E), which can disguise a file's type",
        ),
        (
            "document.subject",
            |d| d.subject = "Về việc\u{2028}phòng cháy".into(),
            "must be a single line; it contains a line separator (U+2028)",
        ),
        (
            "document.notation",
            |d| d.notation = "CT-PNV\u{200b}".into(),
            "contains a zero-width space (U+200B)",
        ),
        (
            "document.signer.full_name",
            |d| {
                if let Some(s) = d.signer.as_mut() {
                    s.full_name = "Nguyễn\u{2066}Văn A".into();
                }
            },
            "contains a left-to-right isolate (U+2066)",
        ),
        (
            "document.place",
            |d| d.place = "Hữu\u{0085}Lũng".into(),
            "must be a single line; it contains a next-line character (U+0085)",
        ),
        (
            "document.attachments[1].name",
            |d| d.attachments = vec![attachment("Kế hoạch.pdf"), attachment("KẾ HOẠCH.PDF")],
            "differs only in case",
        ),
        (
            "document.to_places",
            |d| d.to_places = vec![String::new(); 100_000],
            "at most 200 lines (got 100000)",
        ),
        (
            "document.due_date",
            |d| d.due_date = "9999-12-31".into(),
            "5 years after it",
        ),
        (
            "document.to[0]",
            |d| d.to = vec![" xa-van-nham".into()],
            "starts or ends with a space",
        ),
        (
            "document.attachments[0].name",
            |d| d.attachments = vec![attachment("Lienthong-Proof")],
            "is reserved",
        ),
    ];
    for (field, mutate, says) in cases {
        let mut d = valid();
        mutate(&mut d);
        let status = client
            .send(signed_document(&server, d))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Grpc::InvalidArgument, "{}", status.message());
        assert!(
            status.message().starts_with(&format!("{field}: ")) && status.message().contains(says),
            "{field}: expected {says:?}, got {:?}",
            status.message()
        );
    }

    // A megabyte the decoder drops, in bytes the sender signed.
    let mut bytes = valid().encode_to_vec();
    bytes.extend_from_slice(&[0x9a, 0x06, 0x80, 0x80, 0x40]); // field 99, 1 MiB
    bytes.resize(bytes.len() + (1 << 20), 0);
    let status = client
        .send(signed_bytes(&server, bytes, 0))
        .await
        .expect_err("an unknown field");
    assert_eq!(status.code(), Grpc::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("document: unknown or non-canonical fields"),
        "{}",
        status.message()
    );

    nothing_stored_and_still_serving(&server, &mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_records_and_status_changes_follow_the_same_text_rules() {
    let server = TestServer::start().await;
    let mut sender = server.client("phong-noi-vu").await;
    let sent = server.send(&mut sender, valid()).await;
    let mut van_nham = server.client("xa-van-nham").await;
    let signer = server.signer("xa-van-nham");

    type Paper = fn(&mut pb::PaperRecord);
    let papers: Vec<(&str, Paper)> = vec![
        ("record.subject", |r| r.subject = "Kế hoạch\u{202e}".into()),
        ("record.counterpart", |r| {
            r.counterpart = format!(" {PROVINCE}")
        }),
        ("record.counterpart", |r| {
            r.counterpart = format!("Sở\u{200d}{PROVINCE}")
        }),
        ("record.organization", |r| {
            r.organization = "xa-van-nham ".into()
        }),
    ];
    for (field, mutate) in papers {
        let mut record = incoming("xa-van-nham", PROVINCE, 45);
        mutate(&mut record);
        let request = client::paper_request(record, None, &signer).expect("sign");
        assert_names(
            van_nham.record_paper(request).await,
            Grpc::InvalidArgument,
            field,
        );
    }
    let mut bytes = incoming("xa-van-nham", PROVINCE, 45).encode_to_vec();
    bytes.extend_from_slice(&[0xa2, 0x06, 0x01, b'x']); // field 100: "x"
    let (key_id, signature) = signer.sign_paper(&bytes).expect("sign");
    let request = pb::RecordPaperRequest {
        record: bytes,
        signature: Some(pb::DocumentSignature { key_id, signature }),
        scan: vec![],
    };
    assert_names(
        van_nham.record_paper(request).await,
        Grpc::InvalidArgument,
        "record: unknown or non-canonical fields",
    );

    type Status = fn(&mut pb::StatusMessage);
    let changes: Vec<(&str, Code, Status)> = vec![
        ("status.description", Code::Rejected, |m| {
            m.description = "Gửi nhầm\u{202e}".into()
        }),
        ("status.assigned_to", Code::Assigned, |m| {
            m.assigned_to = "Tư pháp\u{2028}Hộ tịch".into()
        }),
        ("status.staff.name", Code::Registered, |m| {
            m.staff = Some(pb::StaffInfo {
                name: "Văn\u{feff}thư".into(),
                ..Default::default()
            })
        }),
        ("status.deadline", Code::Assigned, |m| {
            m.deadline = "9999-12-31".into()
        }),
    ];
    for (field, code, mutate) in changes {
        let mut m = message("xa-van-nham", &sent.id, code);
        mutate(&mut m);
        let (status, signature) = signed_status(&server, "xa-van-nham", m);
        assert_names(
            van_nham
                .change_status(pb::ChangeStatusRequest { status, signature })
                .await,
            Grpc::InvalidArgument,
            field,
        );
    }
    let mut bytes = message("xa-van-nham", &sent.id, Code::Registered).encode_to_vec();
    bytes.extend_from_slice(&[0xa2, 0x06, 0x01, b'x']);
    let (key_id, signature) = signer.sign_status(&bytes).expect("sign");
    let request = pb::ChangeStatusRequest {
        status: bytes,
        signature: Some(pb::DocumentSignature { key_id, signature }),
    };
    assert_names(
        van_nham.change_status(request).await,
        Grpc::InvalidArgument,
        "status: unknown or non-canonical fields",
    );

    // Nothing was recorded or changed: the inbox holds the one document,
    // still unregistered; and a proper registration goes through.
    let inbox = inbox_all(&mut van_nham).await;
    assert_eq!(inbox.len(), 1);
    let history = van_nham
        .get_history(pb::GetHistoryRequest {
            document_id: sent.id.clone(),
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.changes.len(), 1, "only the arrival");
    crate::lifecycle::change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &sent.id, Code::Registered),
    )
    .await
    .expect("a proper registration");
}

#[test]
fn the_reserved_name_is_the_proof_folder() {
    assert_eq!(
        lienthong::document::text::RESERVED_FILE_NAME,
        lienthong::evidence::PROOF_DIR
    );
}

/// Raw gRPC bodies, written byte for byte, sent over the channel's HTTP/2:
/// what no generated client produces.
mod raw {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;
    use tonic::codegen::http;
    use tower::ServiceExt;

    pub type BodySender = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

    /// Starts a call to `method`, with `grpc-encoding` if given, and returns the sender of
    /// its body and the pending response. The body stays open until the
    /// sender is dropped.
    pub fn call(
        channel: tonic::transport::Channel,
        url: &str,
        method: &str,
        encoding: Option<&str>,
    ) -> (BodySender, tokio::task::JoinHandle<tonic::Status>) {
        let (tx, rx) = mpsc::channel(4);
        let body = tonic::body::Body::new(StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("{url}/lienthong.v1.Exchange/{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        let request = request.body(body).expect("request");
        let response = tokio::spawn(async move {
            let response = channel.oneshot(request).await.expect("an HTTP/2 response");
            // Trailers-only: the status is in the headers; else in the
            // trailers after the body.
            if let Some(status) = tonic::Status::from_header_map(response.headers()) {
                return status;
            }
            let collected = response.into_body().collect().await.expect("body");
            collected
                .trailers()
                .and_then(tonic::Status::from_header_map)
                .expect("a grpc-status")
        });
        (tx, response)
    }

    /// Sends `bytes` as more of the body. The server may already have
    /// answered and stopped reading it (a refusal from the length prefix
    /// alone does just that), which is no failure here: the status the
    /// call gets is what each test checks.
    pub async fn send(tx: &BodySender, bytes: &[u8]) {
        let _ = tx
            .send(Ok(Frame::data(Bytes::copy_from_slice(bytes))))
            .await;
    }
}

/// A call with a broken body, and the status it must get.
struct Framing {
    what: &'static str,
    method: &'static str,
    /// The `grpc-encoding` header, if any.
    encoding: Option<&'static str>,
    body: Vec<u8>,
    code: Grpc,
    /// The message's beginning.
    says: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_framing_is_the_callers_error_never_internal() {
    let server = TestServer::start().await;
    let channel = server.channel("phong-noi-vu", None).await;
    let cases = vec![
        Framing {
            what: "an empty unary body",
            method: "Send",
            encoding: None,
            body: vec![],
            code: Grpc::InvalidArgument,
            says: "request: the body holds no gRPC message",
        },
        Framing {
            what: "an empty body for a stream",
            method: "Subscribe",
            encoding: None,
            body: vec![],
            code: Grpc::InvalidArgument,
            says: "request: the body holds no gRPC message",
        },
        Framing {
            what: "a truncated frame",
            method: "Send",
            encoding: None,
            body: [&[0, 0, 0, 0, 100][..], &[1; 10]].concat(),
            code: Grpc::InvalidArgument,
            says: "request: the body ends inside a gRPC message",
        },
        Framing {
            what: "a truncated header",
            method: "GetDocument",
            encoding: None,
            body: vec![0, 0, 0],
            code: Grpc::InvalidArgument,
            says: "request: the body ends inside a gRPC message",
        },
        Framing {
            what: "the compressed flag without an encoding",
            method: "Send",
            encoding: None,
            body: vec![1, 0, 0, 0, 2, 0x08, 0x01],
            code: Grpc::InvalidArgument,
            says: "request: the message's compressed flag is 1",
        },
        Framing {
            what: "a flag byte of 0x80",
            method: "Send",
            encoding: None,
            body: vec![0x80, 0, 0, 0, 0],
            code: Grpc::InvalidArgument,
            says: "request: a gRPC message begins with a flag byte of 0 (uncompressed) or 1 (compressed); this one begins with 128",
        },
        Framing {
            what: "an encoding the server does not take",
            method: "Send",
            encoding: Some("gzip"),
            body: vec![1, 0, 0, 0, 2, 0x1f, 0x8b],
            code: Grpc::Unimplemented,
            says: "grpc-encoding: this server takes uncompressed messages only",
        },
    ];
    for Framing {
        what,
        method,
        encoding,
        body,
        code,
        says,
    } in cases
    {
        let (tx, response) = raw::call(channel.clone(), &server.url(), method, encoding);
        if !body.is_empty() {
            raw::send(&tx, &body).await;
        }
        drop(tx); // the end of the stream
        let status = response.await.expect("the call completes");
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        assert!(
            status.message().starts_with(says),
            "{what}: expected {says:?}, got {:?}",
            status.message()
        );
    }

    // A length prefix just under the old window (the limit plus 1 MiB) is
    // refused from the prefix alone: the body stays open and nothing more
    // is sent, so an answer proves the server did not wait for the body.
    let announced = (lienthong::defaults::MAX_DOCUMENT_BYTES + 1024 * 1024 - 1) as u32;
    let (tx, response) = raw::call(channel.clone(), &server.url(), "Send", None);
    let mut header = vec![0];
    header.extend_from_slice(&announced.to_be_bytes());
    raw::send(&tx, &header).await;
    raw::send(&tx, &[0; 1024]).await;
    // A guard against a hang, not a measure: the answer comes at once.
    let status = tokio::time::timeout(std::time::Duration::from_secs(120), response)
        .await
        .expect("refused before the body is read")
        .expect("the call completes");
    assert_eq!(
        status.code(),
        Grpc::ResourceExhausted,
        "{}",
        status.message()
    );
    assert!(
        status.message().starts_with("max_document_bytes: "),
        "{}",
        status.message()
    );
    drop(tx);

    // And the server carries on.
    let mut client = server.client("phong-noi-vu").await;
    server.send(&mut client, valid()).await;
}

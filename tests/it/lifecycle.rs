//! A document's life after sending, through the real gRPC API: signed
//! status changes, revocation, replacement, answers, what each party sees,
//! the sender's event stream, proofs of every change, and the audit.

use std::collections::BTreeMap;

use crate::common::*;
use lienthong::archive::proof::{InclusionFile, ProofFile};
use lienthong::lifecycle::{self, Code, State};
use lienthong::pb;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::Code as Grpc;

/// A status message from `org` about `id`, signed with `org`'s key.
pub(crate) fn signed_status(
    server: &TestServer,
    org: &str,
    message: pb::StatusMessage,
) -> (Vec<u8>, Option<pb::DocumentSignature>) {
    let bytes = message.encode_to_vec();
    let (key_id, signature) = server
        .signer(org)
        .sign_status(&bytes)
        .expect("sign the status");
    (bytes, Some(pb::DocumentSignature { key_id, signature }))
}

pub(crate) fn message(org: &str, id: &str, code: Code) -> pb::StatusMessage {
    pb::StatusMessage {
        document_id: id.into(),
        from: org.into(),
        code: code as i32,
        description: if code == Code::Rejected {
            "Gửi nhầm: văn bản không thuộc thẩm quyền của xã".into()
        } else {
            String::new()
        },
        assigned_to: if code == Code::Assigned {
            "Công chức Tư pháp – Hộ tịch".into()
        } else {
            String::new()
        },
        staff: Some(pb::StaffInfo {
            department: "Văn phòng".into(),
            name: "Văn thư".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) async fn change(
    server: &TestServer,
    org: &str,
    message: pb::StatusMessage,
) -> Result<pb::StatusChange, tonic::Status> {
    let (status, signature) = signed_status(server, org, message);
    let mut client = server.client(org).await;
    client
        .change_status(pb::ChangeStatusRequest { status, signature })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn revoke(
    server: &TestServer,
    org: &str,
    id: &str,
) -> Result<pb::StatusChange, tonic::Status> {
    let (status, signature) = signed_status(
        server,
        org,
        pb::StatusMessage {
            document_id: id.into(),
            from: org.into(),
            operation: pb::Operation::Revoke as i32,
            description: "Thu hồi để sửa đổi thời hạn".into(),
            ..Default::default()
        },
    );
    let mut client = server.client(org).await;
    client
        .revoke(pb::RevokeRequest { status, signature })
        .await
        .map(|r| r.into_inner())
}

/// Each recipient's status as the sender's outbox shows it, by alias.
async fn outbox_statuses(
    server: &TestServer,
    sender: &str,
    id: &str,
) -> BTreeMap<String, (i32, i32)> {
    let mut client = server.client(sender).await;
    let outbox = client
        .list_outbox(pb::ListMailboxRequest::default())
        .await
        .expect("outbox")
        .into_inner();
    let entry = outbox
        .entries
        .iter()
        .find(|e| e.document.as_ref().is_some_and(|d| d.id == id))
        .expect("the document is in the outbox");
    entry
        .deliveries
        .iter()
        .map(|d| {
            (
                d.recipient
                    .as_ref()
                    .map(|o| o.alias.clone())
                    .unwrap_or_default(),
                (d.status, d.answer),
            )
        })
        .collect()
}

async fn inbox_status(server: &TestServer, org: &str, id: &str) -> (i32, bool) {
    let mut client = server.client(org).await;
    let entries = inbox_all(&mut client).await;
    let entry = entries
        .iter()
        .find(|e| e.document.as_ref().is_some_and(|d| d.id == id))
        .expect("in the inbox");
    (
        entry.status,
        entry.document.as_ref().is_some_and(|d| d.revoked),
    )
}

async fn history(server: &TestServer, org: &str, id: &str) -> Vec<pb::StatusChange> {
    let mut client = server.client(org).await;
    client
        .get_history(pb::GetHistoryRequest {
            document_id: id.into(),
        })
        .await
        .expect("history")
        .into_inner()
        .changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directive_lives_from_arrival_to_revocation_replacement_and_answers() {
    let server = TestServer::start().await;
    let sender = "phong-noi-vu";
    let communes = communes();
    assert_eq!(communes.len(), 23);
    let mut noi_vu = server.client(sender).await;
    let mut events = crate::common::subscribe_from_now(&mut noi_vu).await;
    let sent = server
        .send(&mut noi_vu, directive(sender, &["all-communes"], 1))
        .await;
    let id = sent.id.clone();

    // All arrive: 01, set by the service, the same instant.
    let statuses = outbox_statuses(&server, sender, &id).await;
    assert_eq!(statuses.len(), 23);
    assert!(statuses.values().all(|s| *s == (Code::Arrived as i32, 0)));

    // Twenty register; one rejects as misaddressed.
    for commune in &communes[..20] {
        let c = change(&server, commune, message(commune, &id, Code::Registered))
            .await
            .expect("register");
        assert_eq!(c.code, Code::Registered as i32);
        assert_eq!(c.change, 1);
    }
    let rejected = &communes[20];
    change(&server, rejected, message(rejected, &id, Code::Rejected))
        .await
        .expect("reject");
    // Assignments with deadlines: five with time left, five already past
    // (late); some complete.
    let today = lienthong::clock::Clock::system().today();
    let in_time = lienthong::clock::format_date(today + time::Duration::days(20));
    let past = lienthong::clock::format_date(today - time::Duration::days(3));
    for (i, commune) in communes[..10].iter().enumerate() {
        let mut m = message(commune, &id, Code::Assigned);
        m.deadline = if i < 5 { in_time.clone() } else { past.clone() };
        change(&server, commune, m).await.expect("assign");
    }
    // The late ones are overdue for handling, at their own deadline.
    for (i, commune) in communes[..10].iter().enumerate() {
        let mut client = server.client(commune).await;
        let due = client
            .list_deadlines(pb::ListDeadlinesRequest {
                within_days: 0,
                district: false,
                ..Default::default()
            })
            .await
            .expect("deadlines")
            .into_inner()
            .entries;
        let late: Vec<&str> = due
            .iter()
            .filter(|e| e.document.as_ref().is_some_and(|d| d.id == id) && e.overdue)
            .map(|e| e.due_date.as_str())
            .collect();
        let expected: &[&str] = if i < 5 { &[] } else { &[past.as_str()] };
        assert_eq!(late, expected, "{commune}");
    }
    for commune in &communes[..5] {
        change(&server, commune, message(commune, &id, Code::Completed))
            .await
            .expect("complete");
    }
    // One completes straight from registration: steps may be skipped.
    change(
        &server,
        &communes[15],
        message(&communes[15], &id, Code::Completed),
    )
    .await
    .expect("03 -> 06");

    let statuses = outbox_statuses(&server, sender, &id).await;
    let count = |code: Code| statuses.values().filter(|s| s.0 == code as i32).count();
    assert_eq!(count(Code::Completed), 6);
    assert_eq!(count(Code::Assigned), 5);
    assert_eq!(count(Code::Registered), 9);
    assert_eq!(count(Code::Rejected), 1);
    assert_eq!(count(Code::Arrived), 2);
    assert_eq!(
        inbox_status(&server, &communes[0], &id).await,
        (Code::Completed as i32, false)
    );
    assert_eq!(
        inbox_status(&server, &communes[22], &id).await,
        (Code::Arrived as i32, false)
    );

    // A recipient sees its own history only; the sender sees everyone's.
    let own = history(&server, &communes[0], &id).await;
    let codes: Vec<i32> = own.iter().map(|c| c.code).collect();
    assert_eq!(codes, [1, 3, 4, 6]);
    assert!(own
        .iter()
        .all(|c| c.by.as_ref().map(|o| o.alias.as_str()) == Some(communes[0].as_str())));
    let assigned = &own[2];
    assert_eq!(
        assigned.message.as_ref().map(|m| m.deadline.as_str()),
        Some(in_time.as_str())
    );
    let all = history(&server, sender, &id).await;
    let signed_changes = 20 + 1 + 10 + 5 + 1;
    assert_eq!(all.len(), 23 + signed_changes);

    // The sender revokes it and issues a replacement.
    let revocation = revoke(&server, sender, &id).await.expect("revoke");
    assert_eq!(revocation.operation, pb::Operation::Revoke as i32);
    assert!(inbox_status(&server, &communes[3], &id).await.1);
    let mut replacement = directive(sender, &["all-communes"], 2);
    replacement.supersedes = Some(pb::Supersedes {
        document_id: id.clone(),
        operation: pb::Operation::Replace as i32,
        reason: "Thay thế Chỉ thị số 01 đã thu hồi".into(),
    });
    let replaced_by = server.send(&mut noi_vu, replacement).await.id;
    let mut commune_client = server.client(&communes[0]).await;
    let original = commune_client
        .get_document(pb::GetDocumentRequest {
            id: id.clone(),
            include_content: false,
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(original.superseded_by, std::slice::from_ref(&replaced_by));
    assert!(original.revocation.is_some());
    let newer = commune_client
        .get_document(pb::GetDocumentRequest {
            id: replaced_by.clone(),
            include_content: false,
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(newer.supersedes, id);

    // Frozen: no more handling; each recipient answers once.
    let err = change(
        &server,
        &communes[5],
        message(&communes[5], &id, Code::InProgress),
    )
    .await
    .expect_err("frozen");
    assert_eq!(err.code(), Grpc::FailedPrecondition);
    assert!(err.message().contains("revoked"), "{}", err.message());
    for (i, commune) in communes.iter().enumerate() {
        let answer = if i % 4 == 0 {
            Code::Refused
        } else {
            Code::Agreed
        };
        change(&server, commune, message(commune, &id, answer))
            .await
            .expect("answer");
    }
    let again = change(
        &server,
        &communes[0],
        message(&communes[0], &id, Code::Agreed),
    )
    .await
    .expect_err("one answer");
    assert_eq!(again.code(), Grpc::FailedPrecondition);
    let statuses = outbox_statuses(&server, sender, &id).await;
    assert_eq!(
        statuses[&communes[0]],
        (Code::Completed as i32, Code::Refused as i32)
    );
    assert_eq!(
        statuses[&communes[1]],
        (Code::Completed as i32, Code::Agreed as i32)
    );

    // The sender's stream: one event per signed recipient change, in order,
    // no gap, no duplicate (its own sends and revocation make none).
    let expected = signed_changes + 23;
    let mut seqs = Vec::new();
    while seqs.len() < expected {
        let item = events.next().await.expect("stream open").expect("event");
        if let Some(pb::subscribe_response::Item::Event(e)) = item.item {
            assert_eq!(e.kind, pb::EventKind::StatusChanged as i32);
            assert_eq!(e.document_id, id);
            seqs.push(e.seq);
        }
    }
    let first = seqs[0];
    assert_eq!(seqs, (first..first + expected as u64).collect::<Vec<_>>());

    // Every change has an inclusion proof that verifies offline against the
    // service key the PKI folder holds.
    let trusted = lienthong::evidence::read_public_key(&server.pki().service_key())
        .expect("trusted service key");
    let keys = noi_vu
        .get_keys(pb::GetKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let all = history(&server, sender, &id).await;
    let leaves: Vec<u64> = all.iter().filter_map(|c| c.leaf_index).collect();
    assert_eq!(leaves.len(), signed_changes + 1 + 23);
    for leaf in leaves {
        let proof = noi_vu
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                document_id: id.clone(),
                tree_size: 0,
                leaf_index: Some(leaf),
            })
            .await
            .expect("proof")
            .into_inner();
        let file = ProofFile::Inclusion(
            InclusionFile::new(&id, &proof, keys.service_key.as_ref()).expect("file"),
        );
        let checks = file.check(&trusted);
        assert!(checks.iter().all(|c| c.ok), "leaf {leaf}: {checks:?}");
    }
    // And through the command a clerk runs, offline, against the key the
    // PKI folder holds.
    let last = all.last().and_then(|c| c.leaf_index).expect("a leaf");
    let proof = noi_vu
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: id.clone(),
            tree_size: 0,
            leaf_index: Some(last),
        })
        .await
        .expect("proof")
        .into_inner();
    let file = server.dir.path().join("status-proof.json");
    ProofFile::Inclusion(InclusionFile::new(&id, &proof, keys.service_key.as_ref()).expect("file"))
        .write(&file, lienthong::evidence::Existing::Refuse)
        .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("verify")
        .arg(&file)
        .arg("--pki")
        .arg(server.dir.path().join("pki"))
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A recipient cannot prove, or even see, another organisation's leaf
    // about a document it does not hold.
    let mut outsider = server.client("phong-tu-phap").await;
    let err = outsider
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: id.clone(),
            tree_size: 0,
            leaf_index: all[30].leaf_index,
        })
        .await
        .expect_err("not a party");
    assert_eq!(err.code(), Grpc::NotFound);

    // The audit recomputes every leaf, document and status alike.
    let mut server = server;
    server.stop().await;
    let report = lienthong::archive::audit::audit(server.dir.path()).expect("audit");
    assert_eq!(report.problem, None);
    assert_eq!(report.leaves, 2 + signed_changes as u64 + 1 + 23);
}

/// Every (from, to) pair through the real API: allowed exactly when the
/// rules allow it, refused with FAILED_PRECONDITION naming the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_is_allowed_or_refused_through_the_api() {
    let server = TestServer::start().await;
    let sender = "phong-tu-phap";
    let communes = communes();
    let mut client = server.client(sender).await;
    let starts = [
        Code::Arrived,
        Code::Rejected,
        Code::Registered,
        Code::Assigned,
        Code::InProgress,
        Code::Completed,
    ];
    let targets = [
        Code::Rejected,
        Code::Registered,
        Code::Assigned,
        Code::InProgress,
        Code::Completed,
        Code::Agreed,
        Code::Refused,
    ];
    for (n, start) in starts.into_iter().enumerate() {
        let id = server
            .send(
                &mut client,
                directive(sender, &["all-communes"], n as u64 + 1),
            )
            .await
            .id;
        for (commune, target) in communes.iter().zip(targets) {
            if start != Code::Arrived {
                change(&server, commune, message(commune, &id, start))
                    .await
                    .expect("reach the start");
            }
            let state = State {
                status: start,
                frozen: None,
                answer: None,
            };
            let result = change(&server, commune, message(commune, &id, target)).await;
            match lifecycle::check(&state, target) {
                Ok(()) => {
                    result.unwrap_or_else(|e| panic!("{start} -> {target}: {e:?}"));
                }
                Err(refused) => {
                    let err = result.expect_err("refused");
                    assert_eq!(err.code(), Grpc::FailedPrecondition, "{start} -> {target}");
                    assert!(
                        err.message().contains(&refused.to_string()),
                        "{start} -> {target}: {}",
                        err.message()
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_recipient_moves_its_status_and_only_with_its_own_key() {
    let server = TestServer::start().await;
    let mut sender = server.client("phong-noi-vu").await;
    let id = server
        .send(&mut sender, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await
        .id;
    // Not a recipient: NOT_FOUND, exactly as for an unknown document.
    let outsider = change(
        &server,
        "xa-dong-tan",
        message("xa-dong-tan", &id, Code::Registered),
    )
    .await
    .expect_err("not a recipient");
    let unknown_id = "0".repeat(32);
    let unknown = change(
        &server,
        "xa-dong-tan",
        message("xa-dong-tan", &unknown_id, Code::Registered),
    )
    .await
    .expect_err("unknown");
    assert_eq!(outsider.code(), Grpc::NotFound);
    assert_eq!(unknown.code(), Grpc::NotFound);
    assert_eq!(
        outsider.message().replace(&id, "ID"),
        unknown.message().replace(&unknown_id, "ID")
    );
    // The sender is no recipient either.
    let own = change(
        &server,
        "phong-noi-vu",
        message("phong-noi-vu", &id, Code::Registered),
    )
    .await
    .expect_err("the sender");
    assert_eq!(own.code(), Grpc::NotFound);

    // Signed with another organisation's key.
    let bytes = message("xa-van-nham", &id, Code::Registered).encode_to_vec();
    let (key_id, signature) = server
        .signer("xa-dong-tan")
        .sign_status(&bytes)
        .expect("sign");
    let mut van_nham = server.client("xa-van-nham").await;
    let err = van_nham
        .change_status(pb::ChangeStatusRequest {
            status: bytes.clone(),
            signature: Some(pb::DocumentSignature { key_id, signature }),
        })
        .await
        .expect_err("foreign key");
    assert_eq!(err.code(), Grpc::InvalidArgument);
    assert!(
        err.message().starts_with("signature.key_id"),
        "{}",
        err.message()
    );
    // A document signature does not pass for a status signature.
    let (key_id, signature) = server
        .signer("xa-van-nham")
        .sign_document(&bytes)
        .expect("sign");
    let err = van_nham
        .change_status(pb::ChangeStatusRequest {
            status: bytes,
            signature: Some(pb::DocumentSignature { key_id, signature }),
        })
        .await
        .expect_err("wrong context");
    assert_eq!(err.code(), Grpc::InvalidArgument);
    // In another's name.
    let err = change(
        &server,
        "xa-van-nham",
        message("xa-dong-tan", &id, Code::Registered),
    )
    .await
    .expect_err("in another's name");
    assert!(
        err.message().starts_with("status.from"),
        "{}",
        err.message()
    );
    // Bad fields are named.
    let mut no_reason = message("xa-van-nham", &id, Code::Rejected);
    no_reason.description.clear();
    let err = change(&server, "xa-van-nham", no_reason)
        .await
        .expect_err("reason");
    assert!(
        err.message().starts_with("status.description"),
        "{}",
        err.message()
    );
    let mut nobody = message("xa-van-nham", &id, Code::Assigned);
    nobody.assigned_to.clear();
    let err = change(&server, "xa-van-nham", nobody)
        .await
        .expect_err("assignee");
    assert!(
        err.message().starts_with("status.assigned_to"),
        "{}",
        err.message()
    );
    let err = change(
        &server,
        "xa-van-nham",
        message("xa-van-nham", &id, Code::Arrived),
    )
    .await
    .expect_err("01");
    assert!(
        err.message().starts_with("status.code"),
        "{}",
        err.message()
    );
    // Only the sender revokes; a recipient gets NOT_FOUND.
    let err = revoke(&server, "xa-van-nham", &id)
        .await
        .expect_err("not the sender");
    assert_eq!(err.code(), Grpc::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_document_takes_no_reply_no_second_replacement_and_no_second_revocation() {
    let server = TestServer::start().await;
    let sender = "phong-noi-vu";
    let mut client = server.client(sender).await;
    let id = server
        .send(&mut client, directive(sender, &["xa-van-nham"], 1))
        .await
        .id;
    revoke(&server, sender, &id).await.expect("revoke");
    let err = revoke(&server, sender, &id).await.expect_err("twice");
    assert_eq!(err.code(), Grpc::FailedPrecondition);

    // A reply to a revoked document is refused inside the commit.
    let mut reply = directive("xa-van-nham", &[sender], 1);
    reply.document_type = "bao-cao".into();
    reply.notation = "BC-UBND".into();
    reply.reply_to = id.clone();
    let mut van_nham = server.client("xa-van-nham").await;
    let err = van_nham
        .send(server.request(reply))
        .await
        .expect_err("reply to revoked");
    assert_eq!(err.code(), Grpc::FailedPrecondition);
    assert!(
        err.message().starts_with("document.reply_to"),
        "{}",
        err.message()
    );

    // One replacement links to it; a second one is refused.
    let replace = |n: u64| {
        let mut d = directive(sender, &["xa-van-nham"], n);
        d.supersedes = Some(pb::Supersedes {
            document_id: id.clone(),
            operation: pb::Operation::Replace as i32,
            reason: "Thay thế".into(),
        });
        d
    };
    server.send(&mut client, replace(2)).await;
    let err = client
        .send(server.request(replace(3)))
        .await
        .expect_err("second replacement");
    assert_eq!(err.code(), Grpc::FailedPrecondition);
    assert!(
        err.message().starts_with("document.supersedes"),
        "{}",
        err.message()
    );

    // Replies to a live document are listed for its parties.
    let live = server
        .send(&mut client, directive(sender, &["xa-van-nham"], 4))
        .await
        .id;
    let mut reply = directive("xa-van-nham", &[sender], 2);
    reply.document_type = "bao-cao".into();
    reply.notation = "BC-UBND".into();
    reply.reply_to = live.clone();
    let reply_id = server.send(&mut van_nham, reply).await.id;
    let view = client
        .get_document(pb::GetDocumentRequest {
            id: live,
            include_content: false,
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(view.replies, [reply_id]);
}

/// `bench load --operation status` (the README's measured cost of a status
/// change) moves each prepared document through four signed changes.
#[test]
fn the_status_workload_moves_documents_through_four_signed_changes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args([
            "bench",
            "load",
            "--operation",
            "status",
            "--clients",
            "2",
            "--prepare",
            "3",
            "--to",
            "xa-van-nham,xa-yen-vuong",
            "--json",
        ])
        .output()
        .expect("bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["operation"], "status changes", "{report}");
    assert_eq!(report["documents"], 2 * 3 * 4, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

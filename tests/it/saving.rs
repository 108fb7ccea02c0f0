//! Saving cannot be steered outside its folder: `show --save` and `archive
//! export` never write through a symbolic link, a linked proof folder is
//! refused, an attachment named like the proof folder is kept apart from
//! the proof (and `verify` still finds it), and one document that cannot be
//! exported does not stop the others nor the index.

use std::process::{Command, Output};

use crate::common::*;
use lienthong::crypto::{self, SigningKey};
use lienthong::{evidence, pb};
use prost::Message;

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

/// The real command as a client of `server`, off the runtime's threads.
async fn lienthong(server: &TestServer, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("LIENTHONG_SERVER", server.url())
        .env("LIENTHONG_PKI", server.pki().dir)
        .env_remove("LIENTHONG_AS");
    tokio::task::spawn_blocking(move || command.output().expect("run lienthong"))
        .await
        .expect("join")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A directive with `report.pdf` from Phòng Nội vụ to Xã Vân Nham; its id.
async fn sent_with_report(server: &TestServer, number: u64) -> String {
    let mut noi_vu = server.client("phong-noi-vu").await;
    let request = server.signed(
        directive("phong-noi-vu", &["xa-van-nham"], number),
        vec![pdf("report.pdf", b"%PDF-1.7 the directive")],
        None,
    );
    noi_vu.send(request).await.expect("send").into_inner().id
}

/// `show ID --save OUT` as Xã Vân Nham, without and with `--force`: both
/// refused as ALREADY_EXISTS; their error output.
async fn show_save_refused(server: &TestServer, id: &str, out: &std::path::Path) -> Vec<String> {
    let out = out.to_str().expect("path");
    let mut errors = Vec::new();
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["show", "--as", "xa-van-nham", id, "--save", out];
        args.extend_from_slice(force);
        let refused = lienthong(server, &args).await;
        assert!(!refused.status.success(), "{force:?}");
        let err = stderr_of(&refused);
        assert!(err.starts_with("error: ALREADY_EXISTS: "), "{err}");
        errors.push(err);
    }
    errors
}

/// The document `id` as Xã Vân Nham fetches it to save it.
async fn fetched(server: &TestServer, id: String) -> pb::GetDocumentResponse {
    let mut van_nham = server.client("xa-van-nham").await;
    van_nham
        .get_document(pb::GetDocumentRequest {
            id,
            include_content: true,
        })
        .await
        .expect("get")
        .into_inner()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_save_never_writes_through_a_link_even_with_force() {
    let server = TestServer::start().await;
    let id = sent_with_report(&server, 1).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "the victim's own words").expect("write");
    let out = tmp.path().join("OUT");
    std::fs::create_dir(&out).expect("mkdir");
    let link = out.join("report.pdf");
    std::os::unix::fs::symlink("../victim.txt", &link).expect("symlink");
    for err in show_save_refused(&server, &id, &out).await {
        assert!(err.contains("report.pdf is a symbolic link"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "the victim's own words"
    );
    // Refused before anything was written.
    assert!(!out.join(evidence::PROOF_DIR).exists());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_proof_folder_is_refused() {
    let server = TestServer::start().await;
    let id = sent_with_report(&server, 1).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let out = tmp.path().join("OUT");
    std::fs::create_dir(&out).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, out.join(evidence::PROOF_DIR)).expect("symlink");
    for err in show_save_refused(&server, &id, &out).await {
        assert!(err.contains("lienthong-proof is a symbolic link"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);
    assert!(!out.join("report.pdf").exists());
    // The library's save refuses it too, if anything got past the check.
    let document = fetched(&server, id).await;
    let e = evidence::save(&out, &document, evidence::Existing::Replace).expect_err("refused");
    assert!(e.to_string().contains("is a symbolic link"), "{e}");
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);
}

/// `document` as a server would have returned it before it refused such
/// names: the same document with `attachments` instead, signed by its
/// sender and receipted with the service's key.
fn stored_with(
    server: &TestServer,
    mut document: pb::GetDocumentResponse,
    attachments: &[(&str, &[u8])],
) -> pb::GetDocumentResponse {
    let mut header = pb::Document::decode(document.document_bytes.as_slice()).expect("document");
    header.attachments = attachments
        .iter()
        .map(|(name, content)| pb::AttachmentRef {
            name: (*name).into(),
            media_type: "application/pdf".into(),
            size: content.len() as u64,
            sha256: crypto::sha256(content).to_vec(),
        })
        .collect();
    let document_bytes = header.encode_to_vec();
    let (key_id, signature) = server
        .signer("phong-noi-vu")
        .sign_document(&document_bytes)
        .expect("sign");
    let sealed = document.receipt.as_ref().expect("receipt");
    let mut receipt = pb::Receipt::decode(sealed.receipt.as_slice()).expect("receipt");
    receipt.document_sha256 = crypto::sha256(&document_bytes).to_vec();
    receipt.signing_key_id = key_id.clone();
    receipt.signature_sha256 = crypto::sha256(&signature).to_vec();
    let service_pem =
        std::fs::read_to_string(server.dir.path().join("service-key.pem")).expect("service key");
    let service = SigningKey::from_pem(&service_pem).expect("service key");
    let receipt_bytes = receipt.encode_to_vec();
    let receipt_signature = service
        .sign(&crypto::receipt_message(&service.key_id(), &receipt_bytes))
        .expect("sign");
    document.document_bytes = document_bytes;
    document.signature = Some(pb::DocumentSignature { key_id, signature });
    document.receipt = Some(pb::SealedReceipt {
        receipt: receipt_bytes,
        signature: receipt_signature,
    });
    document.attachments = header
        .attachments
        .iter()
        .zip(attachments)
        .map(|(r, (_, content))| pb::Attachment {
            r#ref: Some(r.clone()),
            content: content.to_vec(),
        })
        .collect();
    document
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_named_like_the_proof_folder_is_kept_apart_and_verifies() {
    let server = TestServer::start().await;
    let id = sent_with_report(&server, 1).await;
    let document = stored_with(
        &server,
        fetched(&server, id).await,
        &[
            ("LienThong-Proof", b"an attachment, not the proof"),
            ("report.pdf", b"%PDF-1.7 the directive"),
        ],
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("OUT");
    let saved = evidence::save(&out, &document, evidence::Existing::Refuse).expect("saved");
    let renamed: Vec<_> = saved.iter().filter(|s| s.renamed_from.is_some()).collect();
    assert_eq!(renamed.len(), 1, "{saved:?}");
    assert_eq!(renamed[0].renamed_from.as_deref(), Some("LienThong-Proof"));
    assert_eq!(renamed[0].path, out.join("LienThong-Proof.attachment"));
    assert_eq!(
        std::fs::read(out.join("LienThong-Proof.attachment")).expect("read"),
        b"an attachment, not the proof"
    );
    assert!(out.join(evidence::PROOF_DIR).join("document.pb").is_file());
    assert!(out.join("report.pdf").is_file());

    // `verify DIR` finds the attachment where it was saved, with the real
    // service key and the registry of the PKI folder.
    let verified = Command::new(BIN)
        .args(["verify", "--json", "--pki"])
        .arg(server.pki().dir)
        .arg(&out)
        .output()
        .expect("verify");
    assert!(verified.status.success(), "{}", stderr_of(&verified));
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).expect("json");
    let renamed_check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["subject"] == "attachment \"LienThong-Proof\"")
        .expect("the renamed attachment is checked");
    assert_eq!(renamed_check["ok"], true, "{report}");
    assert!(
        renamed_check["detail"]
            .as_str()
            .expect("detail")
            .contains("saved as \"LienThong-Proof.attachment\""),
        "{report}"
    );

    // A change to it is caught as for any attachment.
    std::fs::write(out.join("LienThong-Proof.attachment"), b"changed").expect("write");
    let tampered = Command::new(BIN)
        .args(["verify", "--pki"])
        .arg(server.pki().dir)
        .arg(&out)
        .output()
        .expect("verify");
    assert!(!tampered.status.success());
    assert!(
        stderr_of(&tampered).contains("attachment \"LienThong-Proof\""),
        "{}",
        stderr_of(&tampered)
    );
}

/// A link planted in an earlier export: `--force` replaces that export's
/// files but the linked document fails alone, reported, and the index is
/// written with it under `failed`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_goes_on_past_a_document_it_cannot_write_and_writes_its_index() {
    let server = TestServer::start().await;
    let first = sent_with_report(&server, 1).await;
    let second = sent_with_report(&server, 2).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("export");
    let out_s = out.to_str().expect("path");
    let export = ["archive", "export", "--as", "xa-van-nham", "--out", out_s];
    let done = lienthong(&server, &export).await;
    assert!(done.status.success(), "{}", stderr_of(&done));

    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "the victim's own words").expect("write");
    let planted = out.join(&first).join("report.pdf");
    std::fs::remove_file(&planted).expect("rm");
    std::os::unix::fs::symlink(&victim, &planted).expect("symlink");

    let mut again = export.to_vec();
    again.extend(["--force", "--json"]);
    let partial = lienthong(&server, &again).await;
    assert!(!partial.status.success());
    let err = stderr_of(&partial);
    assert!(
        err.contains(&format!("warning: document {first} not exported")),
        "{err}"
    );
    assert!(err.contains("1 document was not exported"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&partial.stdout).expect("json");
    assert_eq!(summary["documents"], 1, "{summary}");
    assert_eq!(summary["failed"][0]["id"], first.as_str(), "{summary}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "the victim's own words"
    );

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).expect("index"))
            .expect("json");
    let ids: Vec<&str> = index["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, [second.as_str()]);
    assert_eq!(index["failed"][0]["id"], first.as_str());
    assert!(
        index["failed"][0]["error"]
            .as_str()
            .expect("error")
            .contains("symbolic link"),
        "{index}"
    );

    // `verify` checks what is there and counts the missing document as a
    // failed check.
    let verified = Command::new(BIN)
        .args(["verify", "--pki"])
        .arg(server.pki().dir)
        .arg(&out)
        .output()
        .expect("verify");
    assert!(!verified.status.success());
    let err = stderr_of(&verified);
    assert!(err.contains(&format!("{first}: export")), "{err}");
    let checks = String::from_utf8_lossy(&verified.stdout);
    assert!(
        checks.contains(&format!("ok     {second}: signature")),
        "{checks}"
    );
}

//! `verify` fails closed: it checks evidence and proof files against the
//! service key the user trusts (given, or in the PKI folder), never against
//! the key inside what it checks. Forgeries here are self-consistent, made
//! with an Ed25519 key of the test's own, and are run through the real
//! binary.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use base64::Engine;
use lienthong::archive::proof::{
    CheckpointFile, HexBytes, HexHash, InclusionFile, ProofFile, ServiceKeyFile,
};
use lienthong::crypto::{self, SigningKey};
use lienthong::{evidence, merkle, pb};
use prost::Message;

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");
const NO_TRUSTED_KEY: &str = "no trusted service key";

fn ed25519_key() -> SigningKey {
    SigningKey::from_pem(&SigningKey::generate_ed25519_pem().expect("pem")).expect("ed25519")
}

/// Writes the public half of `key` as PEM, as a service publishes its key.
fn publish(key: &SigningKey, path: &Path) {
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", key.spki_der().to_vec()));
    std::fs::write(path, pem).expect("write key");
}

fn verify(args: &[&Path]) -> Output {
    Command::new(BIN)
        .arg("verify")
        .arg("--json")
        .args(args)
        .output()
        .expect("run verify")
}

/// The subjects of the failed checks and their details; asserts the exit
/// status says failure.
fn failures(out: &Output) -> Vec<(String, String)> {
    assert!(!out.status.success(), "verify must fail");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["subject"].as_str().unwrap_or_default().to_owned(),
                c["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["ok"], true, "{report}");
}

/// The forgery at `target` verifies for whoever trusts the `forger`'s key:
/// it is self-consistent, so what makes it fail is the key alone.
fn assert_convinces_whoever_trusts(forger: &SigningKey, tmp: &Path, target: &Path) {
    let key = tmp.join("forger.pub.pem");
    publish(forger, &key);
    let no_pki = tmp.join("no-pki");
    assert_ok(&verify(&[
        "--service-key".as_ref(),
        &key,
        "--pki".as_ref(),
        &no_pki,
        target,
    ]));
}

/// Without a trusted key, verify refuses before checking anything.
fn assert_refused_for_want_of_a_key(out: &Output) {
    assert!(
        !out.status.success(),
        "verify must fail without a trusted key"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(NO_TRUSTED_KEY), "{stderr}");
    assert!(
        stderr.contains("--service-key"),
        "says what to do: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no report of checks that were not made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_evidence_folder_fails_with_the_trusted_key_and_without_one_says_so() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let sent = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    let mut van_nham = server.client("xa-van-nham").await;
    let document = van_nham
        .get_document(pb::GetDocumentRequest {
            id: sent.id.clone(),
            include_content: true,
        })
        .await
        .expect("get")
        .into_inner();
    let tmp = tempfile::tempdir().expect("tmp");
    let genuine = tmp.path().join("genuine");
    evidence::save(&genuine, &document, evidence::Existing::Refuse).expect("save");
    let pki = server.pki().dir;
    let empty_pki = tmp.path().join("empty-pki");
    std::fs::create_dir_all(&empty_pki).expect("mkdir");

    // The genuine evidence verifies against the key in the PKI folder.
    assert_ok(&verify(&["--pki".as_ref(), &pki, &genuine]));

    // The forger changes the subject, signs the document with a key of
    // their own, and issues a receipt for it with another key of their own.
    let signer = ed25519_key();
    let service = ed25519_key();
    let forged = tmp.path().join("forged");
    let proof = forged.join(evidence::PROOF_DIR);
    std::fs::create_dir_all(&proof).expect("mkdir");
    let mut doc = pb::Document::decode(document.document_bytes.as_slice()).expect("document");
    doc.subject = "Về việc điều chỉnh dự toán ngân sách".into();
    let document_bytes = doc.encode_to_vec();
    let (signing_key_id, signature) = signer.sign_document(&document_bytes).expect("sign");
    let mut receipt = pb::Receipt::decode(
        document
            .receipt
            .as_ref()
            .expect("receipt")
            .receipt
            .as_slice(),
    )
    .expect("receipt");
    receipt.document_sha256 = crypto::sha256(&document_bytes).to_vec();
    receipt.signing_key_id = signing_key_id.clone();
    receipt.signature_sha256 = crypto::sha256(&signature).to_vec();
    receipt.service_key_id = service.key_id();
    let receipt_bytes = receipt.encode_to_vec();
    let receipt_signature = service
        .sign(&crypto::receipt_message(&service.key_id(), &receipt_bytes))
        .expect("sign");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let keys = serde_json::json!({
        "signing_key": {
            "key_id": signing_key_id,
            "org": receipt.sender,
            "algorithm": "ed25519",
            "public_key": b64(signer.spki_der()),
            "not_before_ms": null, "not_after_ms": null, "revoked_at_ms": null,
        },
        "service_key": {
            "key_id": service.key_id(),
            "algorithm": "ed25519",
            "public_key": b64(service.spki_der()),
        },
    });
    for (name, bytes) in [
        ("document.pb", document_bytes),
        ("document.sig", signature),
        ("receipt.pb", receipt_bytes),
        ("receipt.sig", receipt_signature),
        ("keys.json", keys.to_string().into_bytes()),
    ] {
        std::fs::write(proof.join(name), bytes).expect("write");
    }
    // Self-consistent: whoever trusts the forger's key is convinced...
    assert_convinces_whoever_trusts(&service, tmp.path(), &forged);
    // ...but against the service's key, given or from the PKI folder, the
    // receipt fails, naming both keys; the PKI folder's registry does not
    // know the forger's signing key either.
    let service_key_file = server.pki().service_key();
    let service_id = evidence::read_public_key(&service_key_file)
        .expect("key")
        .key_id();
    for (args, expected) in [
        (
            vec![
                "--service-key".as_ref(),
                service_key_file.as_path(),
                "--pki".as_ref(),
                &empty_pki,
                &forged,
            ],
            vec!["receipt"],
        ),
        (
            vec!["--pki".as_ref(), pki.as_path(), &forged],
            vec!["receipt", "signature"],
        ),
    ] {
        let failed = failures(&verify(&args));
        let subjects: Vec<&str> = failed.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(subjects, expected, "{failed:?}");
        assert!(
            failed[0].1.contains(&service.key_id()) && failed[0].1.contains(&service_id),
            "{failed:?}"
        );
    }

    // With no trusted key at all, neither the forgery nor the genuine
    // evidence is taken on its own word.
    for dir in [&forged, &genuine] {
        assert_refused_for_want_of_a_key(&verify(&["--pki".as_ref(), &empty_pki, dir]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_proof_file_fails_with_the_trusted_key_and_without_one_says_so() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let sent = server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    let proof = noi_vu
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: sent.id.clone(),
            tree_size: 0,
            leaf_index: None,
        })
        .await
        .expect("proof")
        .into_inner();
    let keys = noi_vu
        .get_keys(pb::GetKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = server.pki().dir;
    let empty_pki = tmp.path().join("empty-pki");
    std::fs::create_dir_all(&empty_pki).expect("mkdir");
    let genuine = InclusionFile::new(&sent.id, &proof, keys.service_key.as_ref()).expect("file");
    let genuine_path = tmp.path().join("genuine.json");
    ProofFile::Inclusion(genuine.clone())
        .write(&genuine_path, evidence::Existing::Refuse)
        .expect("write");
    assert_ok(&verify(&["--pki".as_ref(), &pki, &genuine_path]));

    // The forger appends an entry for a document never sent to the genuine
    // leaf, and signs a checkpoint of that tree with a key of their own.
    let service = ed25519_key();
    let entry = pb::ArchiveEntry {
        kind: pb::ArchiveEntryKind::DocumentAccepted as i32,
        document_id: "0000000000000000000000000000forged".into(),
        receipt: None,
    };
    let leaf = entry.encode_to_vec();
    let leaf_hash = merkle::leaf_hash(&leaf);
    let root = merkle::node_hash(&genuine.leaf_hash.0, &leaf_hash);
    let checkpoint = pb::Checkpoint {
        tree_size: 2,
        root_hash: root.to_vec(),
        timestamp_ms: lienthong::clock::now_ms(),
        service_key_id: service.key_id(),
    };
    let bytes = checkpoint.encode_to_vec();
    let signature = service
        .sign(&crypto::checkpoint_message(&service.key_id(), &bytes))
        .expect("sign");
    let forged = ProofFile::Inclusion(InclusionFile {
        document_id: entry.document_id.clone(),
        leaf_index: 1,
        tree_size: 2,
        leaf: HexBytes(leaf),
        leaf_hash: HexHash(leaf_hash),
        audit_path: vec![genuine.leaf_hash],
        root_hash: HexHash(root),
        checkpoint: CheckpointFile {
            tree_size: 2,
            root_hash: HexHash(root),
            timestamp_ms: checkpoint.timestamp_ms,
            service_key_id: service.key_id(),
            bytes: HexBytes(bytes),
            signature: HexBytes(signature),
        },
        service_key: ServiceKeyFile {
            key_id: service.key_id(),
            algorithm: "ed25519".into(),
            public_key: HexBytes(service.spki_der().to_vec()),
        },
    });
    let forged_path = tmp.path().join("forged.json");
    forged
        .write(&forged_path, evidence::Existing::Refuse)
        .expect("write");
    // Self-consistent: whoever trusts the forger's key is convinced...
    assert_convinces_whoever_trusts(&service, tmp.path(), &forged_path);
    // ...but against the service's key the checkpoint fails.
    let failed = failures(&verify(&["--pki".as_ref(), &pki, &forged_path]));
    let subjects: Vec<&str> = failed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, vec!["checkpoint"], "{failed:?}");
    assert!(failed[0].1.contains(&service.key_id()), "{failed:?}");

    // With no trusted key at all, neither file is taken on its own word.
    for file in [&forged_path, &genuine_path] {
        assert_refused_for_want_of_a_key(&verify(&["--pki".as_ref(), &empty_pki, file]));
    }

    // A proof file without its leaf is refused, naming the field.
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&genuine_path).expect("read")).expect("json");
    json.as_object_mut().expect("object").remove("leaf");
    let leafless = tmp.path().join("leafless.json");
    std::fs::write(&leafless, json.to_string()).expect("write");
    let out = verify(&["--pki".as_ref(), &pki, &leafless]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing field `leaf`"), "{stderr}");
}

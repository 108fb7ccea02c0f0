//! Signed documents and receipts: what the server accepts, and what a
//! recipient can prove offline afterwards.

use crate::common::*;
use lienthong::client::send_request;
use lienthong::crypto::SigningKey;
use lienthong::evidence::{self, Check, TrustedKeys};
use lienthong::keys::{key_row, KeyRegistry};
use lienthong::pb;
use prost::Message;
use tonic::Code;

const DAY: i64 = 86_400_000;
const NOI_VU: &str = "000.02.09.H37";
const TU_PHAP: &str = "000.03.09.H37";

fn now() -> i64 {
    lienthong::clock::now_ms()
}

fn ecdsa_key() -> SigningKey {
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .expect("ecdsa key")
        .serialize_pem();
    SigningKey::from_pem(&pem).expect("ecdsa")
}

fn ed25519_key() -> SigningKey {
    SigningKey::from_pem(&SigningKey::generate_ed25519_pem().expect("pem")).expect("ed25519")
}

fn rsa_key() -> SigningKey {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rsa-2048.TEST-ONLY-private-key.pem"
    ))
    .expect("fixture");
    SigningKey::from_pem(&pem).expect("rsa")
}

/// Appends `rows` to the server's signing key registry and restarts it.
async fn register(server: &mut TestServer, rows: &[String]) {
    let file = server.pki().signing_keys();
    let mut text = std::fs::read_to_string(&file).expect("registry");
    for row in rows {
        text.push_str(row);
    }
    std::fs::write(&file, text).expect("write registry");
    server.restart().await;
}

fn registry(server: &TestServer) -> KeyRegistry {
    KeyRegistry::load(&server.pki().signing_keys()).expect("registry")
}

fn org(code: &str) -> lienthong::directory::OrgCode {
    lienthong::directory::OrgCode::parse(code).expect("code")
}

/// `show --save` as a recipient would do it, then `verify`.
async fn save_and_verify(
    server: &TestServer,
    as_org: &str,
    id: &str,
    dir: &std::path::Path,
) -> Vec<Check> {
    save(server, as_org, id, dir).await;
    evidence::verify(dir, &trusted(server)).expect("verify runs")
}

async fn save(server: &TestServer, as_org: &str, id: &str, dir: &std::path::Path) {
    let mut client = server.client(as_org).await;
    let doc = client
        .get_document(pb::GetDocumentRequest {
            id: id.into(),
            include_content: true,
        })
        .await
        .expect("get")
        .into_inner();
    evidence::save(dir, &doc, evidence::Existing::Refuse).expect("save");
}

/// The keys a recipient trusts: the registry and the service key from disk.
fn trusted(server: &TestServer) -> TrustedKeys {
    let service_key = server.dir.path().join("service-key.pub.pem");
    TrustedKeys {
        registry: Some(registry(server)),
        service_key: evidence::read_public_key(&service_key).expect("service key"),
    }
}

fn failed(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.subject.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_accepted_algorithm_signs_and_verifies_offline() {
    let mut server = TestServer::start().await;
    let keys = [
        ("ed25519", ed25519_key()),
        ("ecdsa-p256-sha256", ecdsa_key()),
        ("rsa-pkcs1-sha256", rsa_key()),
    ];
    let rows: Vec<String> = keys
        .iter()
        .map(|(_, k)| key_row(&org(NOI_VU), k.spki_der(), now() - DAY, now() + DAY))
        .collect();
    register(&mut server, &rows).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let out = tempfile::tempdir().expect("tmp");
    for (n, (name, key)) in keys.iter().enumerate() {
        assert_eq!(key.algorithm().name(), *name);
        let request = send_request(
            directive("phong-noi-vu", &["xa-van-nham"], n as u64 + 1),
            vec![pdf("van-ban.pdf", format!("%PDF {name}").as_bytes())],
            None,
            key,
        )
        .expect("sign");
        let sent = noi_vu.send(request).await.expect(name).into_inner();
        let dir = out.path().join(name);
        let checks = save_and_verify(&server, "xa-van-nham", &sent.id, &dir).await;
        assert!(failed(&checks).is_empty(), "{name}: {checks:?}");
        assert_eq!(
            checks.len(),
            4,
            "receipt, document, signature, one attachment"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_unknown_missing_and_foreign_keys_are_refused() {
    let mut server = TestServer::start().await;
    let foreign = ed25519_key(); // registered to Phòng Tư pháp
    register(
        &mut server,
        &[key_row(
            &org(TU_PHAP),
            foreign.spki_der(),
            now() - DAY,
            now() + DAY,
        )],
    )
    .await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let document = directive("phong-noi-vu", &["xa-van-nham"], 1);
    let own = server.signer("phong-noi-vu");

    // Signed by another key than the one it names.
    let mut request = send_request(document.clone(), vec![], None, &own).expect("sign");
    let (_, other_signature) = ed25519_key()
        .sign_document(&request.document)
        .expect("sign");
    request.signature.as_mut().expect("sig").signature = other_signature;
    let err = noi_vu.send(request).await.expect_err("wrong key");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("signature:"), "{}", err.message());

    // A key nobody registered.
    let request = send_request(document.clone(), vec![], None, &ed25519_key()).expect("sign");
    let err = noi_vu.send(request).await.expect_err("unknown key");
    assert!(
        err.message().starts_with("signature.key_id:") && err.message().contains("not registered"),
        "{}",
        err.message()
    );

    // Another organisation's key, even a valid one.
    let request = send_request(document.clone(), vec![], None, &foreign).expect("sign");
    let err = noi_vu.send(request).await.expect_err("foreign key");
    assert!(
        err.message().contains("belongs to 000.03.09.H37"),
        "{}",
        err.message()
    );

    // No signature at all.
    let mut request = send_request(document.clone(), vec![], None, &own).expect("sign");
    request.signature = None;
    let err = noi_vu.send(request).await.expect_err("unsigned");
    assert!(
        err.message().starts_with("signature: is required"),
        "{}",
        err.message()
    );

    // One byte of the document changed after signing.
    let mut request = send_request(document.clone(), vec![], None, &own).expect("sign");
    let last = request.document.len() - 1;
    request.document[last] ^= 0x01;
    let err = noi_vu.send(request).await.expect_err("tampered");
    assert_eq!(err.code(), Code::InvalidArgument);

    // An attachment changed after signing (its digest is in the signed bytes).
    let mut request = send_request(
        document.clone(),
        vec![pdf("a.pdf", b"%PDF original")],
        None,
        &own,
    )
    .expect("sign");
    request.attachments[0].content[5] ^= 0x01;
    let err = noi_vu.send(request).await.expect_err("tampered attachment");
    assert!(
        err.message().starts_with("attachments[0]:"),
        "{}",
        err.message()
    );

    // Nothing got through.
    let mut van_nham = server.client("xa-van-nham").await;
    assert!(inbox_all(&mut van_nham).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_not_yet_valid_and_revoked_keys_are_refused() {
    let mut server = TestServer::start().await;
    let expired = ed25519_key();
    let future = ed25519_key();
    let revoked = ed25519_key();
    let revoked_row = key_row(&org(NOI_VU), revoked.spki_der(), now() - DAY, now() + DAY).replace(
        "not_after",
        &format!(
            "revoked_at = \"{}\"\nnot_after",
            lienthong::keys::format_ms(now() - 1000)
        ),
    );
    register(
        &mut server,
        &[
            key_row(
                &org(NOI_VU),
                expired.spki_der(),
                now() - 2 * DAY,
                now() - DAY,
            ),
            key_row(
                &org(NOI_VU),
                future.spki_der(),
                now() + DAY,
                now() + 2 * DAY,
            ),
            revoked_row,
        ],
    )
    .await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    for (key, word) in [
        (&expired, "expired"),
        (&future, "not valid before"),
        (&revoked, "revoked"),
    ] {
        let request = send_request(
            directive("phong-noi-vu", &["xa-van-nham"], 1),
            vec![],
            None,
            key,
        )
        .expect("sign");
        let err = noi_vu.send(request).await.expect_err(word);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with("signature.key_id:") && err.message().contains(word),
            "{}",
            err.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_old_documents_still_verify_and_the_old_key_no_longer_signs() {
    let mut server = TestServer::start().await;
    let old_key = ed25519_key();
    let new_key = ed25519_key();
    let old_row = key_row(&org(NOI_VU), old_key.spki_der(), now() - DAY, now() + DAY);
    register(&mut server, std::slice::from_ref(&old_row)).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let request = send_request(
        directive("phong-noi-vu", &["xa-van-nham"], 1),
        vec![pdf("a.pdf", b"%PDF before rotation")],
        None,
        &old_key,
    )
    .expect("sign");
    let old_doc = noi_vu.send(request).await.expect("send").into_inner();

    // Rotate: the old key ends now, the new one begins.
    let file = server.pki().signing_keys();
    let rotated = std::fs::read_to_string(&file).expect("registry").replace(
        &old_row,
        &key_row(&org(NOI_VU), old_key.spki_der(), now() - DAY, now()),
    );
    std::fs::write(&file, rotated).expect("write");
    register(
        &mut server,
        &[key_row(
            &org(NOI_VU),
            new_key.spki_der(),
            now() - 1000,
            now() + DAY,
        )],
    )
    .await;

    let out = tempfile::tempdir().expect("tmp");
    let checks = save_and_verify(&server, "xa-van-nham", &old_doc.id, out.path()).await;
    assert!(
        failed(&checks).is_empty(),
        "signed before rotation, still valid: {checks:?}"
    );

    let mut noi_vu = server.client("phong-noi-vu").await;
    let request = send_request(
        directive("phong-noi-vu", &["xa-van-nham"], 2),
        vec![],
        None,
        &old_key,
    )
    .expect("sign");
    let err = noi_vu.send(request).await.expect_err("rotated out");
    assert!(err.message().contains("expired"), "{}", err.message());
    let request = send_request(
        directive("phong-noi-vu", &["xa-van-nham"], 2),
        vec![],
        None,
        &new_key,
    )
    .expect("sign");
    noi_vu.send(request).await.expect("the new key signs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_anywhere_in_the_saved_proof_is_named() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let sent = noi_vu
        .send(server.signed(
            directive("phong-noi-vu", &["xa-van-nham"], 1),
            vec![pdf("ke-hoach.pdf", &[7u8; 20_000])],
            None,
        ))
        .await
        .expect("send")
        .into_inner();

    // The receipt from Send is the one stored.
    let receipt = sent.receipt.clone().expect("receipt");
    let decoded = pb::Receipt::decode(receipt.receipt.as_slice()).expect("receipt decodes");
    assert_eq!(decoded.document_id, sent.id);
    assert_eq!(decoded.deliveries.len(), 1);
    assert_eq!(decoded.sender, NOI_VU);

    let out = tempfile::tempdir().expect("tmp");
    let cases = [
        ("lienthong-proof/document.pb", "document"),
        ("lienthong-proof/document.sig", "signature"),
        ("lienthong-proof/receipt.pb", "receipt"),
        ("lienthong-proof/receipt.sig", "receipt"),
        ("ke-hoach.pdf", "attachment \"ke-hoach.pdf\""),
    ];
    for (i, (file, subject)) in cases.iter().enumerate() {
        let dir = out.path().join(i.to_string());
        let clean = save_and_verify(&server, "xa-van-nham", &sent.id, &dir).await;
        assert!(failed(&clean).is_empty(), "{clean:?}");
        let path = dir.join(file);
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&path, bytes).expect("flip");
        let checks = evidence::verify(&dir, &trusted(&server)).expect("verify");
        let bad = failed(&checks);
        assert!(bad.contains(&subject.to_string()), "{file}: {checks:?}");
    }

    // A receipt re-signed with another key is not the service's.
    let dir = out.path().join("forged");
    save(&server, "xa-van-nham", &sent.id, &dir).await;
    let forger = ed25519_key();
    let forged = forger
        .sign(&lienthong::crypto::receipt_message(
            &decoded.service_key_id,
            &receipt.receipt,
        ))
        .expect("sign");
    std::fs::write(dir.join("lienthong-proof/receipt.sig"), forged).expect("write");
    let checks = evidence::verify(&dir, &trusted(&server)).expect("verify");
    assert_eq!(failed(&checks), vec!["receipt".to_string()]);
}

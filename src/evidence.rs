//! Offline evidence: what `show --save DIR` writes beside the attachments,
//! and how `verify DIR` checks it with no server.
//!
//! `DIR/lienthong-proof/` holds:
//!
//! | file | content |
//! |---|---|
//! | `document.pb` | the document bytes exactly as signed and stored (an encoded `lienthong.v1.Document`) |
//! | `document.sig` | the sender's signature over them, raw bytes |
//! | `receipt.pb` | the service's receipt (an encoded `lienthong.v1.Receipt`) |
//! | `receipt.sig` | the service's Ed25519 signature over it, raw 64 bytes |
//! | `keys.json` | the public keys the server offered: the sender's signing key and the service key |
//!
//! The attachments are in `DIR` under their own names. The checks, in the
//! order `verify` makes them, are described in the README.

use std::path::{Path, PathBuf};

use base64::Engine;
use prost::Message;
use serde_json::json;

use crate::crypto::{self, PublicKey};
use crate::directory::OrgCode;
use crate::keys::{self, KeyRegistry, RegisteredKey};
use crate::pb;

pub const PROOF_DIR: &str = "lienthong-proof";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes the evidence of a fetched document into `dir/lienthong-proof/`.
pub fn save(dir: &Path, document: &pb::GetDocumentResponse) -> Result<PathBuf, String> {
    let proof = dir.join(PROOF_DIR);
    std::fs::create_dir_all(&proof)
        .map_err(|e| format!("cannot create {}: {e}", proof.display()))?;
    let signature = document.signature.clone().unwrap_or_default();
    let receipt = document.receipt.clone().unwrap_or_default();
    write(&proof.join("document.pb"), &document.document_bytes)?;
    write(&proof.join("document.sig"), &signature.signature)?;
    write(&proof.join("receipt.pb"), &receipt.receipt)?;
    write(&proof.join("receipt.sig"), &receipt.signature)?;
    let signing_key = document.signing_key.as_ref().map(|k| {
        json!({
            "key_id": k.key_id,
            "org": k.org,
            "algorithm": k.algorithm,
            "public_key": b64(&k.public_key),
            "not_before_ms": k.not_before_ms,
            "not_after_ms": k.not_after_ms,
            "revoked_at_ms": k.revoked_at_ms,
        })
    });
    let service_key = document.service_key.as_ref().map(
        |k| json!({"key_id": k.key_id, "algorithm": k.algorithm, "public_key": b64(&k.public_key)}),
    );
    let keys = json!({"signing_key": signing_key, "service_key": service_key});
    let text = serde_json::to_string_pretty(&keys).map_err(|e| e.to_string())?;
    write(&proof.join("keys.json"), text.as_bytes())?;
    Ok(proof)
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: "receipt", "document", "signature", "attachment NAME".
    pub subject: String,
    pub ok: bool,
    pub detail: String,
}

fn pass(subject: &str, detail: String) -> Check {
    Check {
        subject: subject.into(),
        ok: true,
        detail,
    }
}

fn fail(subject: &str, detail: String) -> Check {
    Check {
        subject: subject.into(),
        ok: false,
        detail,
    }
}

/// Trusted copies of the keys, instead of those saved with the document.
#[derive(Debug, Default)]
pub struct TrustedKeys {
    /// A signing key registry (the server's `signing-keys.toml`).
    pub registry: Option<KeyRegistry>,
    /// The service's public key (its `service-key.pub.pem`).
    pub service_key: Option<PublicKey>,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn saved_keys(proof: &Path) -> Result<(Option<RegisteredKey>, Option<PublicKey>), String> {
    let text = read(&proof.join("keys.json"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("keys.json is not JSON: {e}"))?;
    let decode = |v: &serde_json::Value| -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str()?)
            .ok()
    };
    let signing = json
        .get("signing_key")
        .filter(|v| !v.is_null())
        .and_then(|k| {
            let public = PublicKey::from_spki_der(&decode(&k["public_key"])?).ok()?;
            Some(RegisteredKey {
                key_id: public.key_id(),
                org: OrgCode::parse(k["org"].as_str()?)?,
                public,
                not_before_ms: k["not_before_ms"].as_i64(),
                not_after_ms: k["not_after_ms"].as_i64(),
                revoked_at_ms: k["revoked_at_ms"].as_i64(),
            })
        });
    let service = json
        .get("service_key")
        .and_then(|k| PublicKey::from_spki_der(&decode(&k["public_key"])?).ok());
    Ok((signing, service))
}

/// The proof of one document, as saved.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub document: Vec<u8>,
    pub signature: Vec<u8>,
    pub receipt: Vec<u8>,
    pub receipt_signature: Vec<u8>,
    /// The keys saved beside it (`keys.json`).
    pub signing_key: Option<RegisteredKey>,
    pub service_key: Option<PublicKey>,
}

/// Reads the proof saved in `dir`.
pub fn load(dir: &Path) -> Result<Evidence, String> {
    let proof = dir.join(PROOF_DIR);
    let (signing_key, service_key) = saved_keys(&proof)?;
    Ok(Evidence {
        document: read(&proof.join("document.pb"))?,
        signature: read(&proof.join("document.sig"))?,
        receipt: read(&proof.join("receipt.pb"))?,
        receipt_signature: read(&proof.join("receipt.sig"))?,
        signing_key,
        service_key,
    })
}

/// Checks the evidence in `dir`. Every check is made and reported, so that
/// one changed byte is reported against the file it is in.
pub fn verify(dir: &Path, trusted: &TrustedKeys) -> Result<Vec<Check>, String> {
    let evidence = load(dir)?;
    Ok(check(&evidence, trusted, &|name| read(&dir.join(name))))
}

/// The checks themselves, on evidence in memory; `attachment` reads an
/// attachment by name.
pub fn check(
    evidence: &Evidence,
    trusted: &TrustedKeys,
    attachment: &dyn Fn(&str) -> Result<Vec<u8>, String>,
) -> Vec<Check> {
    let document_bytes = &evidence.document;
    let signature = &evidence.signature;
    let receipt_bytes = &evidence.receipt;
    let receipt_signature = &evidence.receipt_signature;
    let saved_signing = evidence.signing_key.clone();
    let saved_service = evidence.service_key.clone();
    let mut checks = Vec::new();

    // 1. The receipt: signed by the service key it names.
    let service_key = trusted.service_key.clone().or(saved_service);
    let receipt = pb::Receipt::decode(receipt_bytes.as_slice()).ok();
    match (&receipt, &service_key) {
        (None, _) => checks.push(fail(
            "receipt",
            "receipt.pb is not an encoded Receipt".into(),
        )),
        (_, None) => checks.push(fail("receipt", "no service key to check it with".into())),
        (Some(r), Some(key)) => {
            let message = crypto::receipt_message(&r.service_key_id, receipt_bytes);
            if key.key_id() != r.service_key_id {
                checks.push(fail(
                    "receipt",
                    format!(
                        "names service key {}, but the key at hand is {}",
                        r.service_key_id,
                        key.key_id()
                    ),
                ));
            } else if key.verify(&message, receipt_signature) {
                checks.push(pass(
                    "receipt",
                    format!(
                        "signed by service key {}: document {} from {} accepted at {}",
                        r.service_key_id,
                        r.document_id,
                        r.sender,
                        keys::format_ms(r.accepted_at_ms)
                    ),
                ));
            } else {
                checks.push(fail(
                    "receipt",
                    "the service's signature does not verify: receipt.pb or receipt.sig was changed".into(),
                ));
            }
        }
    }
    let receipt = receipt.unwrap_or_default();

    // 2. The document: the bytes the receipt attests.
    if crypto::sha256(document_bytes).as_slice() == receipt.document_sha256.as_slice() {
        checks.push(pass(
            "document",
            "document.pb is the document the receipt attests".into(),
        ));
    } else {
        checks.push(fail(
            "document",
            "document.pb differs from the document the receipt attests".into(),
        ));
    }

    // 3. The sender's signature, with its key as of the acceptance time.
    let key = match &trusted.registry {
        Some(registry) => registry.get(&receipt.signing_key_id).cloned(),
        None => saved_signing,
    };
    let signature_check = match key {
        None => fail(
            "signature",
            format!("no key {:?} to check it with", receipt.signing_key_id),
        ),
        Some(key) if key.key_id != receipt.signing_key_id => fail(
            "signature",
            format!(
                "the receipt names key {}, the key at hand is {}",
                receipt.signing_key_id, key.key_id
            ),
        ),
        Some(key) if key.org.as_str() != receipt.sender => fail(
            "signature",
            format!(
                "key {} belongs to {}, not to the sender {}",
                key.key_id, key.org, receipt.sender
            ),
        ),
        Some(key) => {
            let message = crypto::document_message(&key.key_id, document_bytes);
            if crypto::sha256(signature).as_slice() != receipt.signature_sha256.as_slice() {
                fail(
                    "signature",
                    "document.sig is not the signature the receipt attests".into(),
                )
            } else if !key.public.verify(&message, signature) {
                fail(
                    "signature",
                    format!("does not verify with key {} over document.pb", key.key_id),
                )
            } else if let Err(problem) = key.usable_at(receipt.accepted_at_ms) {
                fail(
                    "signature",
                    format!(
                        "{problem} (the document was accepted at {})",
                        keys::format_ms(receipt.accepted_at_ms)
                    ),
                )
            } else {
                pass(
                    "signature",
                    format!(
                        "signed by {} with key {} ({})",
                        key.org, key.key_id, key.public.algorithm
                    ),
                )
            }
        }
    };
    checks.push(signature_check);

    // 4. Each attachment: the bytes the signed document declares.
    match pb::Document::decode(document_bytes.as_slice()) {
        Err(e) => checks.push(fail(
            "document",
            format!("document.pb does not decode: {e}"),
        )),
        Ok(document) => {
            for a in &document.attachments {
                let subject = format!("attachment {:?}", a.name);
                if crate::document::check_file_name("name", &a.name).is_err() {
                    checks.push(fail(&subject, "is not a plain file name".into()));
                    continue;
                }
                match attachment(&a.name) {
                    Err(e) => checks.push(fail(&subject, format!("cannot read it: {e}"))),
                    Ok(content) if crypto::sha256(&content).as_slice() == a.sha256.as_slice() => {
                        checks.push(pass(
                            &subject,
                            format!("{} bytes, SHA-256 as signed", content.len()),
                        ))
                    }
                    Ok(_) => checks.push(fail(
                        &subject,
                        "its SHA-256 differs from the one in the signed document".into(),
                    )),
                }
            }
        }
    }
    checks
}

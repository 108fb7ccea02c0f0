//! Offline verification of a saved proof (receipt, signature, document,
//! attachments) and the parsing of public keys. The input is cut into the
//! proof's parts; the keys are fixed and valid, so the checks run in full.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lienthong::crypto::{PublicKey, SigningKey};
use lienthong::directory::OrgCode;
use lienthong::evidence::{check, Evidence, TrustedKeys};
use lienthong::keys::RegisteredKey;

fn keys() -> &'static (RegisteredKey, PublicKey) {
    static KEYS: OnceLock<(RegisteredKey, PublicKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signer = SigningKey::from_pem(&SigningKey::generate_ed25519_pem().expect("key")).expect("key");
        let service = SigningKey::from_pem(&SigningKey::generate_ed25519_pem().expect("key")).expect("key");
        let registered = RegisteredKey {
            key_id: signer.key_id(),
            org: OrgCode::parse("000.02.09.H37").expect("code"),
            public: signer.public_key(),
            not_before_ms: None,
            not_after_ms: None,
            revoked_at_ms: None,
        };
        (registered, service.public_key())
    })
}

/// Splits `data` into parts, each preceded by a one-byte length.
fn parts(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((len, rest)) = data.split_first() {
        let n = (*len as usize).min(rest.len());
        out.push(rest[..n].to_vec());
        data = &rest[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let _ = PublicKey::from_spki_der(data);
    let mut p = parts(data).into_iter();
    let (signing, service) = keys();
    let evidence = Evidence {
        document: p.next().unwrap_or_default(),
        signature: p.next().unwrap_or_default(),
        receipt: p.next().unwrap_or_default(),
        receipt_signature: p.next().unwrap_or_default(),
        signing_key: Some(signing.clone()),
    };
    let attachment = p.next().unwrap_or_default();
    let _ = check(&evidence, &TrustedKeys::new(service.clone()), &|_| {
        Ok(attachment.clone())
    });
});

//! A send request, through every check the server makes before storing it.
//! The first byte chooses: 0, the input is a whole encoded SendRequest (as
//! off the wire); otherwise, the input is the document bytes, correctly
//! signed by the caller's key, so the fuzzer gets past the signature into
//! routing and the attachment checks.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use lienthong::crypto::SigningKey;
use lienthong::directory::Directory;
use lienthong::exchange::{Limits, Rules, SendInput};
use lienthong::keys::{key_row, KeyRegistry};
use lienthong::pb;
use prost::Message;

struct World {
    rules: Rules,
    key: SigningKey,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let directory = Directory::builtin().expect("built-in directory");
        let key = SigningKey::from_pem(&SigningKey::generate_ed25519_pem().expect("key")).expect("key");
        let caller = directory.org("phong-noi-vu").expect("org").code;
        // Valid until 2100-01-01: far enough, and representable in RFC 3339.
        let registry = KeyRegistry::from_toml(&key_row(&caller, key.spki_der(), 0, 4_102_444_800_000)).expect("registry");
        World {
            rules: Rules {
                clock: lienthong::clock::Clock::system(),
                directory: Arc::new(directory),
                keys: Arc::new(registry),
                limits: Limits { max_document_bytes: 1 << 20, max_recipients: 500 },
            },
            key,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let Some(caller) = world.rules.directory.org("phong-noi-vu").cloned() else { return };
    let Some((mode, rest)) = data.split_first() else { return };
    let input = if *mode == 0 {
        let Ok(request) = pb::SendRequest::decode(rest) else { return };
        SendInput {
            document_bytes: request.document,
            attachments: request.attachments.into_iter().map(|a| a.content).collect(),
            idempotency_key: request.idempotency_key,
            signature: request.signature,
        }
    } else {
        let (key_id, signature) = world.key.sign_document(rest).expect("sign");
        // The declared attachments, with contents of the declared sizes
        // (capped), so that the digest comparison runs.
        let contents = pb::Document::decode(rest)
            .map(|d| d.attachments.iter().map(|a| vec![*mode; (a.size as usize).min(4096)]).collect())
            .unwrap_or_default();
        SendInput {
            document_bytes: rest.to_vec(),
            attachments: contents,
            idempotency_key: String::new(),
            signature: Some(pb::DocumentSignature { key_id, signature }),
        }
    };
    let _ = world.rules.check_send(&caller, &input);
});

//! Proof files: an inclusion or consistency proof with its signed
//! checkpoint(s) and the service key, as JSON that can be checked offline
//! (format in the README), and the check itself.

use prost::Message;
use serde_json::{json, Value};

use crate::crypto::{self, PublicKey};
use crate::evidence::Check;
use crate::merkle::{self, Hash};
use crate::pb;

fn checkpoint_json(signed: &pb::SignedCheckpoint) -> Value {
    let c = pb::Checkpoint::decode(signed.checkpoint.as_slice()).unwrap_or_default();
    json!({
        "tree_size": c.tree_size,
        "root_hash": hex::encode(&c.root_hash),
        "timestamp_ms": c.timestamp_ms,
        "service_key_id": c.service_key_id,
        "bytes": hex::encode(&signed.checkpoint),
        "signature": hex::encode(&signed.signature),
    })
}

fn key_json(key: &pb::ServiceKey) -> Value {
    json!({"key_id": key.key_id, "algorithm": key.algorithm, "public_key": hex::encode(&key.public_key)})
}

pub fn inclusion_json(p: &pb::InclusionProof, service_key: &pb::ServiceKey) -> Value {
    let checkpoint = p.checkpoint.clone().unwrap_or_default();
    let root = pb::Checkpoint::decode(checkpoint.checkpoint.as_slice())
        .unwrap_or_default()
        .root_hash;
    json!({
        "type": "inclusion",
        "leaf_index": p.leaf_index,
        "tree_size": p.tree_size,
        "leaf": hex::encode(&p.leaf),
        "leaf_hash": hex::encode(merkle::leaf_hash(&p.leaf)),
        "audit_path": p.audit_path.iter().map(hex::encode).collect::<Vec<_>>(),
        "root_hash": hex::encode(root),
        "checkpoint": checkpoint_json(&checkpoint),
        "service_key": key_json(service_key),
    })
}

pub fn consistency_json(p: &pb::ConsistencyProof, service_key: &pb::ServiceKey) -> Value {
    let first = p.first.clone().unwrap_or_default();
    let second = p.second.clone().unwrap_or_default();
    let decode = |s: &pb::SignedCheckpoint| {
        pb::Checkpoint::decode(s.checkpoint.as_slice()).unwrap_or_default()
    };
    let (a, b) = (decode(&first), decode(&second));
    json!({
        "type": "consistency",
        "first_size": a.tree_size,
        "second_size": b.tree_size,
        "first_root": hex::encode(&a.root_hash),
        "second_root": hex::encode(&b.root_hash),
        "proof": p.proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "first_checkpoint": checkpoint_json(&first),
        "second_checkpoint": checkpoint_json(&second),
        "service_key": key_json(service_key),
    })
}

fn check(subject: &str, ok: bool, detail: String) -> Check {
    Check {
        subject: subject.into(),
        ok,
        detail,
    }
}

fn hash(v: &Value) -> Option<Hash> {
    hex::decode(v.as_str()?).ok()?.try_into().ok()
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    hex::decode(v.as_str()?).ok()
}

/// A checkpoint in a proof file: signed by the service key, and saying the
/// size and root the proof claims.
fn check_checkpoint(
    name: &str,
    c: &Value,
    size: u64,
    root: &Hash,
    key: Option<&PublicKey>,
) -> Check {
    let (Some(signed), Some(signature)) = (bytes(&c["bytes"]), bytes(&c["signature"])) else {
        return check(name, false, "bytes or signature missing or not hex".into());
    };
    let Ok(inner) = pb::Checkpoint::decode(signed.as_slice()) else {
        return check(name, false, "bytes are not an encoded Checkpoint".into());
    };
    let Some(key) = key else {
        return check(name, false, "no service key to check it with".into());
    };
    if key.key_id() != inner.service_key_id {
        return check(
            name,
            false,
            format!(
                "names key {}, the key at hand is {}",
                inner.service_key_id,
                key.key_id()
            ),
        );
    }
    if !key.verify(
        &crypto::checkpoint_message(&inner.service_key_id, &signed),
        &signature,
    ) {
        return check(
            name,
            false,
            "the service's signature does not verify".into(),
        );
    }
    if inner.tree_size != size || inner.root_hash.as_slice() != root {
        return check(
            name,
            false,
            format!(
                "signs size {} and another root than the proof's",
                inner.tree_size
            ),
        );
    }
    check(
        name,
        true,
        format!(
            "size {size}, signed by service key {}",
            inner.service_key_id
        ),
    )
}

/// Checks a proof file (as written by `archive prove` or `archive
/// consistency`) with `trusted` as the service key, or the one in the file.
pub fn verify(file: &Value, trusted: Option<&PublicKey>) -> Vec<Check> {
    let saved = bytes(&file["service_key"]["public_key"])
        .and_then(|der| PublicKey::from_spki_der(&der).ok());
    let key = trusted.or(saved.as_ref());
    let mut checks = Vec::new();
    let path: Option<Vec<Hash>> = file["audit_path"]
        .as_array()
        .or(file["proof"].as_array())
        .map(|a| a.iter().map(hash).collect::<Option<Vec<_>>>())
        .unwrap_or(Some(Vec::new()));
    let Some(path) = path else {
        return vec![check(
            "proof",
            false,
            "a hash is not 32 bytes of hex".into(),
        )];
    };
    match file["type"].as_str() {
        Some("inclusion") => {
            let (index, size) = (
                file["leaf_index"].as_u64().unwrap_or(u64::MAX),
                file["tree_size"].as_u64().unwrap_or(0),
            );
            let (Some(leaf_hash), Some(root)) =
                (hash(&file["leaf_hash"]), hash(&file["root_hash"]))
            else {
                return vec![check(
                    "proof",
                    false,
                    "leaf_hash or root_hash missing".into(),
                )];
            };
            if let Some(leaf) = bytes(&file["leaf"]) {
                let ok = merkle::leaf_hash(&leaf) == leaf_hash;
                checks.push(check(
                    "leaf",
                    ok,
                    if ok {
                        "leaf_hash is SHA-256(0x00 ‖ leaf)".into()
                    } else {
                        "leaf does not hash to leaf_hash".into()
                    },
                ));
            }
            let ok = merkle::verify_inclusion(&leaf_hash, index, size, &path, &root);
            checks.push(check(
                "inclusion",
                ok,
                if ok {
                    format!("leaf {index} is in the tree of {size} leaves")
                } else {
                    "the audit path does not lead to root_hash".into()
                },
            ));
            checks.push(check_checkpoint(
                "checkpoint",
                &file["checkpoint"],
                size,
                &root,
                key,
            ));
        }
        Some("consistency") => {
            let (first, second) = (
                file["first_size"].as_u64().unwrap_or(0),
                file["second_size"].as_u64().unwrap_or(0),
            );
            let (Some(a), Some(b)) = (hash(&file["first_root"]), hash(&file["second_root"])) else {
                return vec![check(
                    "proof",
                    false,
                    "first_root or second_root missing".into(),
                )];
            };
            let ok = merkle::verify_consistency(first, second, &a, &b, &path);
            checks.push(check(
                "consistency",
                ok,
                if ok {
                    format!("the tree of {second} extends the tree of {first}")
                } else {
                    "the proof does not connect the two roots".into()
                },
            ));
            checks.push(check_checkpoint(
                "first checkpoint",
                &file["first_checkpoint"],
                first,
                &a,
                key,
            ));
            checks.push(check_checkpoint(
                "second checkpoint",
                &file["second_checkpoint"],
                second,
                &b,
                key,
            ));
        }
        _ => checks.push(check(
            "proof",
            false,
            "type is neither \"inclusion\" nor \"consistency\"".into(),
        )),
    }
    checks
}

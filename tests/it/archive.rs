//! The archive log against RFC 9162, with a verifier written from the RFC
//! alone (it shares no code with the service), and the audit against
//! edits made directly in the storage engine.

use std::sync::Arc;

use crate::common::*;
use lienthong::directory::OrgCode;
use lienthong::pb;
use lienthong::receipt::{Notary, ServiceKey};
use lienthong::store::engine::Space;
use lienthong::store::{DocId, NewDocument, Store, StoreOptions};
use ring::digest::{digest, SHA256};
use tonic::Code;

/// RFC 9162 §2.1, independently of `lienthong::archive`, transcribed as
/// the RFC writes it (hence `% 2` rather than clippy's preferred form).
#[allow(clippy::manual_is_multiple_of)]
mod rfc {
    use super::*;
    pub type H = [u8; 32];

    pub fn sha(parts: &[&[u8]]) -> H {
        let joined: Vec<u8> = parts.concat();
        digest(&SHA256, &joined)
            .as_ref()
            .try_into()
            .expect("32 bytes")
    }

    pub fn leaf(d: &[u8]) -> H {
        sha(&[&[0u8], d])
    }

    /// MTH(D[n]), §2.1.1, straight from the definition.
    pub fn mth(leaves: &[Vec<u8>]) -> H {
        let n = leaves.len();
        if n == 1 {
            return leaf(&leaves[0]);
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        sha(&[&[1u8], &mth(&leaves[..k]), &mth(&leaves[k..])])
    }

    /// §2.1.3.2.
    pub fn verify_inclusion(
        leaf_index: u64,
        tree_size: u64,
        leaf_hash: H,
        path: &[H],
        root: H,
    ) -> bool {
        if leaf_index >= tree_size {
            return false;
        }
        let mut fnode = leaf_index;
        let mut snode = tree_size - 1;
        let mut r = leaf_hash;
        for p in path {
            if snode == 0 {
                return false;
            }
            if fnode % 2 == 1 || fnode == snode {
                r = sha(&[&[1u8], p, &r]);
                if fnode % 2 == 0 {
                    while fnode % 2 == 0 && fnode != 0 {
                        fnode /= 2;
                        snode /= 2;
                    }
                }
            } else {
                r = sha(&[&[1u8], &r, p]);
            }
            fnode /= 2;
            snode /= 2;
        }
        snode == 0 && r == root
    }

    /// §2.1.4.2.
    pub fn verify_consistency(
        first: u64,
        second: u64,
        first_hash: H,
        second_hash: H,
        consistency_path: &[H],
    ) -> bool {
        if first == second {
            return consistency_path.is_empty() && first_hash == second_hash;
        }
        let mut path = consistency_path.to_vec();
        if first.is_power_of_two() {
            path.insert(0, first_hash);
        }
        if path.is_empty() {
            return false;
        }
        let mut fnode = first - 1;
        let mut snode = second - 1;
        while fnode % 2 == 1 {
            fnode /= 2;
            snode /= 2;
        }
        let mut fr = path[0];
        let mut sr = path[0];
        for c in &path[1..] {
            if snode == 0 {
                return false;
            }
            if fnode % 2 == 1 || fnode == snode {
                fr = sha(&[&[1u8], c, &fr]);
                sr = sha(&[&[1u8], c, &sr]);
                if fnode % 2 == 0 {
                    while fnode % 2 == 0 && fnode != 0 {
                        fnode /= 2;
                        snode /= 2;
                    }
                }
            } else {
                sr = sha(&[&[1u8], &sr, c]);
            }
            fnode /= 2;
            snode /= 2;
        }
        snode == 0 && fr == first_hash && sr == second_hash
    }
}

/// A store with `n` documents, each appended to the archive by the real
/// commit path; returns it and its leaves as stored.
async fn archive_of(dir: &std::path::Path, n: u64) -> (Store, Vec<Vec<u8>>) {
    let service = Arc::new(ServiceKey::load_or_create(dir).expect("service key"));
    let (listener, mut committed) = lienthong::notify::listener();
    tokio::spawn(async move { while committed.recv().await.is_some() {} });
    let options = StoreOptions {
        checkpoint_every: 1_000_000,
        ..StoreOptions::default()
    };
    let engine = lienthong::store::open_engine(dir, &options).expect("engine");
    let store = Store::open(
        engine,
        &dir.join("attachments"),
        &options,
        Arc::new(Notary::new(service)),
        Arc::new(listener),
    )
    .expect("store");
    let store = Arc::new(store);
    let sender = OrgCode::parse("000.02.09.H37").expect("code");
    let recipient = OrgCode::parse("000.32.09.H37").expect("code");
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let mut sends = Vec::new();
        for &i in chunk {
            let store = store.clone();
            sends.push(tokio::spawn(async move {
                let new = NewDocument {
                    id: DocId::random().expect("id"),
                    sender,
                    recipients: vec![recipient],
                    document_bytes: format!("document {i}").into_bytes(),
                    attachments: vec![],
                    content_digest: [0; 32],
                    idempotency_key: None,
                    numbering: (2026, i + 1, "UBND-VP".into()),
                    signing_key_id: "k".into(),
                    signature: vec![1; 64],
                    key_usable_until_ms: None,
                };
                store.send(new).await.expect("append");
            }));
        }
        for s in sends {
            s.await.expect("task");
        }
    }
    let store = Arc::try_unwrap(store).unwrap_or_else(|_| panic!("store still shared"));
    let leaves = (0..n)
        .map(|i| store.archive_leaf(i).expect("read").expect("leaf"))
        .collect();
    (store, leaves)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inclusion_proofs_verify_for_every_size_to_1000_and_every_leaf() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, leaves) = archive_of(dir.path(), 1000).await;
    let leaf_hashes: Vec<rfc::H> = leaves.iter().map(|l| rfc::leaf(l)).collect();
    for n in 1..=1000u64 {
        let root = rfc::mth(&leaves[..n as usize]);
        assert_eq!(
            store.archive_root(n).expect("root"),
            root,
            "root of size {n}"
        );
        for m in 0..n {
            let path = store.inclusion_proof(m, n).expect("proof");
            assert!(
                rfc::verify_inclusion(m, n, leaf_hashes[m as usize], &path, root),
                "leaf {m} of {n}"
            );
        }
    }
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_proofs_verify_between_every_pair_of_sizes() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, leaves) = archive_of(dir.path(), 128).await;
    let roots: Vec<rfc::H> = (1..=128).map(|n| rfc::mth(&leaves[..n])).collect();
    for second in 1..=128u64 {
        for first in 1..=second {
            let proof = store.consistency_proof(first, second).expect("proof");
            let (a, b) = (roots[first as usize - 1], roots[second as usize - 1]);
            assert!(
                rfc::verify_consistency(first, second, a, b, &proof),
                "{first} -> {second}"
            );
        }
    }
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_in_a_proof_or_an_entry_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, leaves) = archive_of(dir.path(), 300).await;
    let (m, n) = (137u64, 300u64);
    let root = rfc::mth(&leaves);
    let path = store.inclusion_proof(m, n).expect("proof");
    assert!(rfc::verify_inclusion(
        m,
        n,
        rfc::leaf(&leaves[m as usize]),
        &path,
        root
    ));
    for i in 0..path.len() {
        for byte in [0, 17, 31] {
            let mut bad = path.clone();
            bad[i][byte] ^= 0x01;
            assert!(!rfc::verify_inclusion(
                m,
                n,
                rfc::leaf(&leaves[m as usize]),
                &bad,
                root
            ));
        }
    }
    let mut entry = leaves[m as usize].clone();
    entry[3] ^= 0x01;
    assert!(!rfc::verify_inclusion(m, n, rfc::leaf(&entry), &path, root));
    let proof = store.consistency_proof(100, n).expect("consistency");
    let mut bad = proof.clone();
    bad[0][0] ^= 0x01;
    assert!(!rfc::verify_consistency(
        100,
        n,
        rfc::mth(&leaves[..100]),
        root,
        &bad
    ));
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_catches_a_leaf_or_a_node_edited_directly_in_the_engine() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _) = archive_of(dir.path(), 40).await;
    store.make_checkpoint().await.expect("checkpoint");
    store.close().await.expect("close");
    drop(store);
    let report = lienthong::archive::audit::audit(dir.path()).expect("audit");
    assert_eq!(
        (report.leaves, report.checkpoints, report.problem.clone()),
        (40, 1, None)
    );

    // Edits below the service: straight through the storage engine.
    let edit = |space: Space, key: Vec<u8>| {
        let engine = lienthong::store::open_engine(dir.path(), &StoreOptions::default())
            .expect("open the engine");
        let mut v = engine.get(space, &key).expect("get").expect("value");
        let middle = v.len() / 2;
        v[middle] ^= 0x01;
        engine
            .transact(&mut |txn| txn.put(space, &key, &v))
            .expect("edit");
        engine.sync().expect("sync");
    };
    edit(Space::ArchiveLeaves, 5u64.to_be_bytes().to_vec());
    let report = lienthong::archive::audit::audit(dir.path()).expect("audit");
    let problem = report.problem.expect("the edit is found");
    assert!(problem.starts_with("leaf 5:"), "{problem}");
    edit(Space::ArchiveLeaves, 5u64.to_be_bytes().to_vec()); // undo
    assert!(lienthong::archive::audit::audit(dir.path())
        .expect("audit")
        .problem
        .is_none());

    let mut node = vec![2u8]; // level 2, index 3: leaves 12..16
    node.extend_from_slice(&3u64.to_be_bytes());
    edit(Space::ArchiveNodes, node);
    let problem = lienthong::archive::audit::audit(dir.path())
        .expect("audit")
        .problem
        .expect("found");
    assert!(problem.contains("node 2/3"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_gets_a_proof_file_that_verifies_and_others_get_not_found() {
    let server = TestServer::with_config(|c| c.store.checkpoint_every = 2).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            server
                .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], n))
                .await
                .id,
        );
    }
    let mut van_nham = server.client("xa-van-nham").await;
    let proof = van_nham
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: ids[2].clone(),
            tree_size: 0,
        })
        .await
        .expect("proof")
        .into_inner();
    assert_eq!(proof.leaf_index, 2);
    let keys = van_nham
        .get_keys(pb::GetKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let file =
        lienthong::archive::proof::inclusion_json(&proof, &keys.service_key.clone().expect("key"));
    let checks = lienthong::archive::proof::verify(&file, None);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");

    // The checkpoint of 2 leaves, then of 4: the second extends the first.
    let consistency = van_nham
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: 2,
            second_size: 4,
        })
        .await
        .expect("consistency")
        .into_inner();
    let file =
        lienthong::archive::proof::consistency_json(&consistency, &keys.service_key.expect("key"));
    assert!(lienthong::archive::proof::verify(&file, None)
        .iter()
        .all(|c| c.ok));

    let mut tu_phap = server.client("phong-tu-phap").await;
    let err = tu_phap
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: ids[2].clone(),
            tree_size: 0,
        })
        .await
        .expect_err("not a party");
    assert_eq!(err.code(), Code::NotFound);
}

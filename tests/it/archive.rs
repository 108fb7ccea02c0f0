//! The archive log against RFC 9162, with a verifier written from the RFC
//! alone (it shares no code with the service), and the audit against
//! edits made directly in the storage engine.

use std::sync::Arc;

use crate::common::*;
use lienthong::archive::proof::{ConsistencyFile, InclusionFile, ProofError, ProofFile};
use lienthong::directory::OrgCode;
use lienthong::merkle;
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
                    numbering: lienthong::store::Numbering {
                        year: 2026,
                        series: lienthong::store::Series::Ordinary,
                        number: Some(i + 1),
                        notation: "UBND-VP".into(),
                    },
                    signing_key_id: "k".into(),
                    signature: vec![1; 64],
                    key_usable_until_ms: None,
                    reply_to: None,
                    supersedes: None,
                    due_date: None,
                    urgency: 0,
                    paper: false,
                    claims: None,
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

/// A document record that no longer decodes is a finding of the audit,
/// naming its leaf, not a failure to run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_an_unreadable_document_record_as_a_finding() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _) = archive_of(dir.path(), 4).await;
    store.close().await.expect("close");
    drop(store);
    {
        let engine = lienthong::store::open_engine(dir.path(), &StoreOptions::default())
            .expect("open the engine");
        let (key, _) = engine
            .scan(
                Space::Documents,
                &[],
                None,
                lienthong::store::engine::Order::Ascending,
                1,
            )
            .expect("scan")
            .into_iter()
            .next()
            .expect("a record");
        engine
            .transact(&mut |txn| txn.put(Space::Documents, &key, &[0xff]))
            .expect("edit");
        engine.sync().expect("sync");
    }
    let report = lienthong::archive::audit::audit(dir.path()).expect("the audit runs");
    let problem = report.problem.expect("the record is found");
    assert!(problem.contains("is unreadable"), "{problem}");
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
            leaf_index: None,
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
    // The development PKI holds the service key the clients trust.
    let trusted = lienthong::evidence::read_public_key(&server.pki().service_key()).expect("key");
    assert_eq!(
        trusted.key_id(),
        keys.service_key.as_ref().expect("key").key_id
    );
    let file = ProofFile::Inclusion(
        InclusionFile::new(&ids[2], &proof, keys.service_key.as_ref()).expect("proof file"),
    );
    let checks = file.check(&trusted);
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
    let file = ProofFile::Consistency(
        ConsistencyFile::new(&consistency, keys.service_key.as_ref()).expect("proof file"),
    );
    let checks = file.check(&trusted);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");

    let mut tu_phap = server.client("phong-tu-phap").await;
    let err = tu_phap
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: ids[2].clone(),
            tree_size: 0,
            leaf_index: None,
        })
        .await
        .expect_err("not a party");
    assert_eq!(err.code(), Code::NotFound);
}

/// The published known-answer vectors of RFC 6962 (Certificate
/// Transparency), which RFC 9162 leaves unchanged: the 8-leaf reference tree
/// of google/certificate-transparency, `cpp/merkletree/merkle_tree_test.cc`
/// (`kInputs`, `kSHA256Roots`, `kSHA256Paths`, `kSHA256Proofs`). There
/// leaves count from 1; here from 0.
mod ct {
    pub const INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// The root of the first 1, 2, …, 8 leaves.
    pub const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (leaf index, tree size, audit path).
    pub const PATHS: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// (first size, second size, consistency proof).
    pub const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
}

/// The reference tree's nodes, appended as the store appends them.
#[derive(Default)]
struct MemoryNodes(std::collections::HashMap<(u32, u64), merkle::Hash>);

impl merkle::Nodes for MemoryNodes {
    fn node(&self, level: u32, index: u64) -> lienthong::error::Result<merkle::Hash> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or_else(|| lienthong::error::Error::storage(format!("no node {level}/{index}")))
    }
}

fn unhex(h: &str) -> merkle::Hash {
    hex::decode(h).expect("hex").try_into().expect("32 bytes")
}

fn unhex_all(hashes: &[&str]) -> Vec<merkle::Hash> {
    hashes.iter().map(|h| unhex(h)).collect()
}

#[test]
fn the_merkle_tree_gives_the_published_rfc_6962_roots_paths_and_proofs() {
    let mut nodes = MemoryNodes::default();
    for (n, input) in ct::INPUTS.iter().enumerate() {
        let leaf = merkle::leaf_hash(&hex::decode(input).expect("hex"));
        let appended = merkle::appended_nodes(n as u64, leaf, |level, i| {
            merkle::Nodes::node(&nodes, level, i)
        })
        .expect("append");
        nodes
            .0
            .extend(appended.into_iter().map(|(l, i, h)| ((l, i), h)));
    }
    let tree = merkle::Tree::new(&nodes);
    for (n, root) in ct::ROOTS.iter().enumerate() {
        let size = n as u64 + 1;
        assert_eq!(
            hex::encode(tree.root(size).expect("root")),
            *root,
            "size {size}"
        );
    }

    for (index, size, expected) in ct::PATHS {
        let path = tree.inclusion(index, size).expect("path");
        assert_eq!(path, unhex_all(expected), "leaf {index} of {size}");
        let leaf = merkle::leaf_hash(&hex::decode(ct::INPUTS[index as usize]).expect("hex"));
        let root = unhex(ct::ROOTS[size as usize - 1]);
        assert!(merkle::verify_inclusion(&leaf, index, size, &path, &root));
        // The same path for a neighbouring leaf, or with a hash changed, fails.
        assert!(!merkle::verify_inclusion(
            &leaf,
            index ^ 1,
            size,
            &path,
            &root
        ));
        for i in 0..path.len() {
            let mut bad = path.clone();
            bad[i][0] ^= 1;
            assert!(!merkle::verify_inclusion(&leaf, index, size, &bad, &root));
        }
    }

    for (first, second, expected) in ct::CONSISTENCY {
        let proof = tree.consistency(first, second).expect("proof");
        assert_eq!(proof, unhex_all(expected), "{first} -> {second}");
        let (a, b) = (
            unhex(ct::ROOTS[first as usize - 1]),
            unhex(ct::ROOTS[second as usize - 1]),
        );
        assert!(merkle::verify_consistency(first, second, &a, &b, &proof));
        if first != second {
            assert!(!merkle::verify_consistency(first, second, &b, &a, &proof));
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i][0] ^= 1;
                assert!(!merkle::verify_consistency(first, second, &a, &b, &bad));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_without_its_leaf_or_with_another_documents_leaf_fails() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(
            server
                .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], n))
                .await
                .id,
        );
    }
    let trusted = lienthong::evidence::read_public_key(&server.pki().service_key()).expect("key");
    let service_key = noi_vu
        .get_keys(pb::GetKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .service_key;
    let mut file_of = async |id: &str| {
        let proof = noi_vu
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                document_id: id.into(),
                tree_size: 0,
                leaf_index: None,
            })
            .await
            .expect("proof")
            .into_inner();
        InclusionFile::new(id, &proof, service_key.as_ref()).expect("proof file")
    };
    let genuine = file_of(&ids[2]).await;
    let other = file_of(&ids[1]).await;
    let failed = |file: InclusionFile| -> Vec<String> {
        ProofFile::Inclusion(file)
            .check(&trusted)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.subject)
            .collect()
    };
    assert!(failed(genuine.clone()).is_empty());

    // Without its leaf, or without the document it is for, it is not a
    // proof file at all.
    for field in ["leaf", "document_id"] {
        let mut json = serde_json::to_value(ProofFile::Inclusion(genuine.clone())).expect("json");
        json.as_object_mut().expect("object").remove(field);
        let err = serde_json::from_value::<ProofFile>(json).expect_err("refused");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }

    // Another document's (genuine, checkpointed) proof, relabelled: the
    // leaf names the other document.
    let relabelled = InclusionFile {
        document_id: ids[2].clone(),
        ..other.clone()
    };
    assert!(matches!(
        relabelled.check_leaf(),
        Err(ProofError::LeafOfAnotherDocument { ref leaf, ref file }) if *leaf == ids[1] && *file == ids[2]
    ));
    assert_eq!(failed(relabelled), vec!["leaf"]);

    // Another document's leaf put in: it does not hash to leaf_hash; with
    // its leaf_hash too, the audit path no longer leads to the root.
    let swapped = InclusionFile {
        leaf: other.leaf.clone(),
        ..genuine.clone()
    };
    assert!(matches!(swapped.check_leaf(), Err(ProofError::LeafHash)));
    assert_eq!(failed(swapped), vec!["leaf"]);
    let swapped = InclusionFile {
        leaf: other.leaf.clone(),
        leaf_hash: other.leaf_hash,
        ..genuine.clone()
    };
    assert_eq!(failed(swapped), vec!["leaf", "inclusion"]);
}

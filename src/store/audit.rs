//! `lienthong archive audit`: with the server stopped, recompute the whole
//! archive from its stored leaves and compare with everything stored.
//!
//! Every leaf is hashed again and every perfect subtree recomputed (holding
//! one hash per level, so memory stays small); each stored node, each
//! checkpoint's root and signature, each leaf's receipt signature and its
//! agreement with the stored document are checked. The first mismatch is
//! reported: a changed byte in a leaf, a node, a checkpoint, or a receipt
//! of the documents tree shows up.

use std::path::Path;

use prost::Message;

use super::{keys, StoredDocument};
use crate::merkle::{appended_nodes, leaf_hash, node_hash, Hash};
use crate::crypto::{self, PublicKey};
use crate::pb;

#[derive(Debug, Default)]
pub struct AuditReport {
    pub leaves: u64,
    pub checkpoints: u64,
    /// The first mismatch, if any.
    pub problem: Option<String>,
}

fn u64_of(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Audits the store in `data_dir/store` with the service key in `data_dir`.
pub fn audit(data_dir: &Path) -> Result<AuditReport, String> {
    let pem_path = data_dir.join(crate::receipt::PUBLIC_FILE);
    let pem_text =
        std::fs::read_to_string(&pem_path).map_err(|e| format!("{}: {e}", pem_path.display()))?;
    let service = pem::parse(pem_text)
        .map_err(|e| e.to_string())
        .and_then(|b| PublicKey::from_spki_der(b.contents()).map_err(|e| e.to_string()))?;
    let db = super::open_sled(sled::Config::new().path(data_dir.join("store")))
        .map_err(|e| format!("cannot open the store (is the server still running? audit a stopped server or a copy): {e}"))?;
    let open = |name: &str| db.open_tree(name).map_err(|e| e.to_string());
    let (counters, leaves, nodes, index, checkpoints, documents) = (
        open("counters")?,
        open("archive_leaves")?,
        open("archive_nodes")?,
        open("archive_index")?,
        open("checkpoints")?,
        open("documents")?,
    );
    let size = counters
        .get(keys::ARCHIVE_SIZE)
        .map_err(|e| e.to_string())?
        .and_then(|v| u64_of(&v))
        .unwrap_or(0);
    let mut report = AuditReport::default();
    let fail = |mut report: AuditReport, m: String| {
        report.problem = Some(m);
        Ok(report)
    };
    // The last completed perfect subtree at each level.
    let mut last: Vec<Option<Hash>> = vec![None; 64];
    for i in 0..size {
        let Some(leaf) = leaves.get(i.to_be_bytes()).map_err(|e| e.to_string())? else {
            return fail(report, format!("leaf {i} is missing"));
        };
        let completed = appended_nodes(i, leaf_hash(&leaf), |level, _| {
            last[level as usize].ok_or_else(|| format!("no left sibling at level {level}"))
        })?;
        for (level, idx, hash) in completed {
            let stored = nodes
                .get(keys::archive_node(level, idx))
                .map_err(|e| e.to_string())?;
            if stored.as_deref() != Some(&hash[..]) {
                return fail(
                    report,
                    format!("leaf {i}: the stored hash of node {level}/{idx} differs from the one recomputed from the leaves (a leaf or a node was changed)"),
                );
            }
            last[level as usize] = Some(hash);
        }
        report.leaves = i + 1;

        // The leaf's content: a receipt signed by the service, agreeing with
        // the document it names.
        let Ok(entry) = pb::ArchiveEntry::decode(leaf.as_ref()) else {
            return fail(report, format!("leaf {i} is not an ArchiveEntry"));
        };
        let sealed = entry.receipt.unwrap_or_default();
        let receipt = pb::Receipt::decode(sealed.receipt.as_slice()).unwrap_or_default();
        if !service.verify(
            &crypto::receipt_message(&receipt.service_key_id, &sealed.receipt),
            &sealed.signature,
        ) {
            return fail(
                report,
                format!("leaf {i}: the receipt's signature does not verify"),
            );
        }
        let Some(id) = crate::store::DocId::parse(&entry.document_id) else {
            return fail(report, format!("leaf {i}: bad document id"));
        };
        if index
            .get(id.0)
            .map_err(|e| e.to_string())?
            .and_then(|v| u64_of(&v))
            != Some(i)
        {
            return fail(
                report,
                format!("leaf {i}: the index does not point back to it"),
            );
        }
        let stored: Option<StoredDocument> = documents
            .get(id.0)
            .map_err(|e| e.to_string())?
            .and_then(|v| StoredDocument::decode(v.as_ref()).ok());
        match stored {
            Some(d)
                if d.receipt == sealed.receipt
                    && crypto::sha256(&d.document_bytes).as_slice() == receipt.document_sha256 => {}
            _ => {
                return fail(
                    report,
                    format!(
                    "leaf {i}: document {id} is missing or differs from what its receipt attests"
                ),
                )
            }
        }

        // A checkpoint at this size: its root and signature.
        if let Some(signed) = checkpoints
            .get((i + 1).to_be_bytes())
            .map_err(|e| e.to_string())?
        {
            let signed = pb::SignedCheckpoint::decode(signed.as_ref()).unwrap_or_default();
            let c = pb::Checkpoint::decode(signed.checkpoint.as_slice()).unwrap_or_default();
            let mut root: Option<Hash> = None;
            for level in 0..64u32 {
                if (i + 1) >> level & 1 == 1 {
                    let node = last[level as usize].ok_or("frontier")?;
                    root = Some(match root {
                        None => node,
                        Some(right) => node_hash(&node, &right),
                    });
                }
            }
            let ok_sig = service.verify(
                &crypto::checkpoint_message(&c.service_key_id, &signed.checkpoint),
                &signed.signature,
            );
            if !ok_sig || c.tree_size != i + 1 || root.map(|r| r.to_vec()) != Some(c.root_hash) {
                return fail(
                    report,
                    format!(
                        "checkpoint of size {}: its signature or root does not match the leaves",
                        i + 1
                    ),
                );
            }
            report.checkpoints += 1;
        }
    }
    Ok(report)
}

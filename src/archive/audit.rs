//! `lienthong archive audit`: with the server stopped, recompute the whole
//! archive from its stored leaves and compare with everything stored.
//!
//! Every leaf is hashed again and every perfect subtree recomputed (holding
//! one hash per level, so memory stays small); each stored node, each
//! checkpoint's root and signature, each leaf's receipt signature and its
//! agreement with the stored document are checked. The first mismatch is
//! reported: a changed byte in a leaf, a node, a checkpoint, or a receipt
//! of the documents tree shows up. Everything is read through the store's
//! interface, so the audit works on any engine.

use std::path::Path;
use std::sync::Arc;

use prost::Message;

use crate::crypto::{self, PublicKey};
use crate::error::{Error, Result};
use crate::merkle::{appended_nodes, leaf_hash, node_hash, Hash};
use crate::pb;
use crate::store::engine::Engine;
use crate::store::{self, DocId, Store, StoreEngine, StoreOptions};

#[derive(Debug, Default)]
pub struct AuditReport {
    pub leaves: u64,
    pub checkpoints: u64,
    /// The root recomputed from the leaves checked (`None` for an empty
    /// archive, or when the audit stopped at a problem).
    pub root: Option<Hash>,
    /// The first mismatch, if any.
    pub problem: Option<String>,
}

/// Audits the store of the data directory `data_dir` with the service key
/// kept there. An `Err` means the audit could not run (no key, the store
/// cannot be opened or read); what it finds wrong is in the report.
pub fn audit(data_dir: &Path) -> Result<AuditReport> {
    audit_store(data_dir, &StoreEngine::Embedded)
}

/// [`audit`] of the store that `engine` names (a PostgreSQL database may be
/// audited while front ends write to it: the audit reads up to the archive
/// size it finds first), with the service key of `data_dir`.
pub fn audit_store(data_dir: &Path, engine: &StoreEngine) -> Result<AuditReport> {
    let service = service_public_key(data_dir)?;
    let options = StoreOptions {
        engine: engine.clone(),
        ..StoreOptions::default()
    };
    let engine = store::open_engine(data_dir, &options).map_err(|e| match engine {
        StoreEngine::Embedded => Error::storage(format!(
            "cannot open the store (is the server still running? audit a stopped server or a copy): {e}"
        )),
        StoreEngine::Postgres(_) => e,
    })?;
    audit_engine(service, engine, &data_dir.join("attachments"))
}

/// [`audit`] of a store already open on `engine`, against the service key
/// `service` (attachment files in `attachments_dir`). Nothing is written.
pub fn audit_engine(
    service: PublicKey,
    engine: Arc<dyn Engine>,
    attachments_dir: &Path,
) -> Result<AuditReport> {
    let store = Store::open_read_only(engine, attachments_dir)?;
    Auditor {
        store: &store,
        service,
        last: vec![None; 64],
    }
    .run()
}

/// The public half of the service key kept in the data directory
/// `data_dir`, which signed its receipts and checkpoints.
pub fn service_public_key(data_dir: &Path) -> Result<PublicKey> {
    let pem_path = data_dir.join(crate::receipt::PUBLIC_FILE);
    let pem_text = std::fs::read_to_string(&pem_path)
        .map_err(|e| Error::storage_from(pem_path.display().to_string(), e))?;
    pem::parse(pem_text)
        .map_err(|e| Error::storage_from(pem_path.display().to_string(), e))
        .and_then(|b| {
            PublicKey::from_spki_der(b.contents())
                .map_err(|e| Error::storage(format!("{}: {e}", pem_path.display())))
        })
}

/// The document receipt `receipt` (an encoded `Receipt`), if `signature`
/// is the service's over it; else why not.
pub fn verified_receipt(
    service: &PublicKey,
    receipt: &[u8],
    signature: &[u8],
) -> std::result::Result<pb::Receipt, String> {
    let decoded =
        pb::Receipt::decode(receipt).map_err(|e| format!("the receipt does not decode: {e}"))?;
    if !service.verify(
        &crypto::receipt_message(&decoded.service_key_id, receipt),
        signature,
    ) {
        return Err("the receipt's signature does not verify".into());
    }
    Ok(decoded)
}

/// The root of the tree of `size` leaves from the last perfect subtree
/// completed at each level (`last`, as the audit keeps them).
fn composed_root(last: &[Option<Hash>], size: u64) -> std::result::Result<Option<Hash>, u32> {
    let mut root: Option<Hash> = None;
    for level in 0..64u32 {
        if size >> level & 1 == 1 {
            let node = last.get(level as usize).copied().flatten().ok_or(level)?;
            root = Some(match root {
                None => node,
                Some(right) => node_hash(&node, &right),
            });
        }
    }
    Ok(root)
}

struct Auditor<'a> {
    store: &'a Store,
    service: PublicKey,
    /// The last completed perfect subtree at each level.
    last: Vec<Option<Hash>>,
}

impl Auditor<'_> {
    fn run(mut self) -> Result<AuditReport> {
        let size = self.store.archive_size()?;
        let mut report = AuditReport::default();
        for i in 0..size {
            if let Some(problem) = self.leaf(i)? {
                report.problem = Some(problem);
                return Ok(report);
            }
            report.leaves = i + 1;
            match self.checkpoint(i + 1)? {
                Ok(false) => {}
                Ok(true) => report.checkpoints += 1,
                Err(problem) => {
                    report.problem = Some(problem);
                    return Ok(report);
                }
            }
        }
        report.root = composed_root(&self.last, size)
            .map_err(|level| Error::storage(format!("no subtree at level {level} for the root")))?;
        Ok(report)
    }

    /// Checks leaf `i`: its nodes, its receipt, its index and its document.
    /// Returns the problem found, if any.
    fn leaf(&mut self, i: u64) -> Result<Option<String>> {
        let Some(leaf) = self.store.archive_leaf(i)? else {
            return Ok(Some(format!("leaf {i} is missing")));
        };
        let last = &self.last;
        let completed = appended_nodes(i, leaf_hash(&leaf), |level, _| {
            last[level as usize]
                .ok_or_else(|| Error::storage(format!("no left sibling at level {level}")))
        })?;
        for (level, idx, hash) in completed {
            if self.store.archive_node(level, idx)?.as_deref() != Some(&hash[..]) {
                return Ok(Some(format!(
                    "leaf {i}: the stored hash of node {level}/{idx} differs from the one recomputed from the leaves (a leaf or a node was changed)"
                )));
            }
            self.last[level as usize] = Some(hash);
        }

        // The leaf's content: a receipt signed by the service, agreeing with
        // the document it names.
        let entry = match pb::ArchiveEntry::decode(leaf.as_slice()) {
            Ok(entry) => entry,
            Err(e) => return Ok(Some(format!("leaf {i} is not an ArchiveEntry: {e}"))),
        };
        let Some(sealed) = entry.receipt else {
            return Ok(Some(format!("leaf {i} holds no receipt")));
        };
        let Some(id) = DocId::parse(&entry.document_id) else {
            return Ok(Some(format!(
                "leaf {i}: {:?} is not a document id",
                entry.document_id
            )));
        };
        match pb::ArchiveEntryKind::try_from(entry.kind) {
            // A paper record is sealed like a document, over its record.
            Ok(pb::ArchiveEntryKind::DocumentAccepted | pb::ArchiveEntryKind::PaperRecorded) => {
                self.document_leaf(i, id, &sealed)
            }
            Ok(pb::ArchiveEntryKind::StatusChanged | pb::ArchiveEntryKind::DocumentRevoked) => {
                self.status_leaf(i, id, &sealed)
            }
            _ => Ok(Some(format!("leaf {i}: unknown kind {}", entry.kind))),
        }
    }

    /// A document's leaf: a receipt signed by the service, agreeing with the
    /// document it names, whose index points back to the leaf.
    fn document_leaf(
        &self,
        i: u64,
        id: DocId,
        sealed: &pb::SealedReceipt,
    ) -> Result<Option<String>> {
        let receipt = match verified_receipt(&self.service, &sealed.receipt, &sealed.signature) {
            Ok(receipt) => receipt,
            Err(why) => return Ok(Some(format!("leaf {i}: {why}"))),
        };
        // Read once: the record holds the leaf index too. A record that
        // does not decode is a finding, not a failure to run: report it as
        // what it is.
        let document = match self.store.document(&id) {
            Ok(document) => document,
            Err(e) => {
                return Ok(Some(format!(
                    "leaf {i}: the record of document {id} is unreadable: {e}"
                )))
            }
        };
        let index = match &document {
            Some(d) => self.store.archive_leaf_of(&id, d)?,
            None => None,
        };
        if index != Some(i) {
            return Ok(Some(format!(
                "leaf {i}: the index does not point back to it"
            )));
        }
        let agrees = document.is_some_and(|d| {
            d.receipt == sealed.receipt
                && crypto::sha256(&d.document_bytes).as_slice() == receipt.document_sha256
        });
        if !agrees {
            return Ok(Some(format!(
                "leaf {i}: document {id} is missing or differs from what its receipt attests"
            )));
        }
        Ok(None)
    }

    /// A status change's or revocation's leaf: a status receipt signed by
    /// the service, agreeing with the stored change it names.
    fn status_leaf(&self, i: u64, id: DocId, sealed: &pb::SealedReceipt) -> Result<Option<String>> {
        let receipt = match pb::StatusReceipt::decode(sealed.receipt.as_slice()) {
            Ok(receipt) => receipt,
            Err(e) => {
                return Ok(Some(format!(
                    "leaf {i}: its status receipt does not decode: {e}"
                )))
            }
        };
        if !self.service.verify(
            &crypto::receipt_message(&receipt.service_key_id, &sealed.receipt),
            &sealed.signature,
        ) {
            return Ok(Some(format!(
                "leaf {i}: the status receipt's signature does not verify"
            )));
        }
        let Some(org) = crate::directory::OrgCode::parse(&receipt.from) else {
            return Ok(Some(format!(
                "leaf {i}: the status receipt names no organisation code"
            )));
        };
        let agrees = match self.store.status(&id, &org, receipt.change) {
            Ok(Some(s)) => {
                s.receipt == sealed.receipt
                    && s.leaf_index == i
                    && crypto::sha256(&s.status_bytes).as_slice() == receipt.status_sha256
            }
            Ok(None) => false,
            Err(e) => {
                return Ok(Some(format!(
                    "leaf {i}: the status record of document {id} is unreadable: {e}"
                )))
            }
        };
        if !agrees {
            return Ok(Some(format!(
                "leaf {i}: change {} by {} of document {id} is missing or differs from what its receipt attests",
                receipt.change, receipt.from
            )));
        }
        Ok(None)
    }

    /// Checks the checkpoint of `size` leaves, if one was made: `Ok(true)`
    /// if it holds, `Ok(false)` if there is none, the problem otherwise.
    fn checkpoint(&self, size: u64) -> Result<std::result::Result<bool, String>> {
        let Some(bytes) = self.store.checkpoint(size)? else {
            return Ok(Ok(false));
        };
        let problem = |what: String| Ok(Err(format!("checkpoint of size {size}: {what}")));
        let signed = match pb::SignedCheckpoint::decode(bytes.as_slice()) {
            Ok(signed) => signed,
            Err(e) => return problem(format!("does not decode: {e}")),
        };
        let c = match pb::Checkpoint::decode(signed.checkpoint.as_slice()) {
            Ok(c) => c,
            Err(e) => return problem(format!("its signed bytes do not decode: {e}")),
        };
        let root = match composed_root(&self.last, size) {
            Ok(root) => root,
            Err(level) => {
                return problem(format!("no subtree at level {level} to compose its root"))
            }
        };
        let signature_holds = self.service.verify(
            &crypto::checkpoint_message(&c.service_key_id, &signed.checkpoint),
            &signed.signature,
        );
        if !signature_holds || c.tree_size != size || root.map(|r| r.to_vec()) != Some(c.root_hash)
        {
            return problem("its signature or root does not match the leaves".into());
        }
        Ok(Ok(true))
    }
}

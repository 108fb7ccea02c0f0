//! The copy checked, read back from both sides: every keyspace entry for
//! entry, every document's receipt, and the archive audited on each side.

use std::path::Path;
use std::sync::Arc;

use prost::Message;

use super::{show_key, Archive, MigrateError, Result, Step, PAGE};
use crate::archive::audit;
use crate::crypto::PublicKey;
use crate::store::engine::{Engine, Entry, Space, Walk};
use crate::store::StoredDocument;

/// What the comparison counted.
pub(super) struct Compared {
    /// Entries per keyspace, in [`Space::ALL`] order.
    pub entries: Vec<(Space, u64)>,
    pub documents: u64,
}

/// Walks every keyspace of both sides in key order and stops at the first
/// entry that is not on both with the same value; checks each document's
/// receipt on the way.
pub(super) fn compare(
    source: &dyn Engine,
    target: &dyn Engine,
    service: &PublicKey,
    progress: &dyn Fn(Step),
) -> Result<Compared> {
    let mut entries = Vec::new();
    let mut documents = 0;
    for space in Space::ALL {
        progress(Step::Verifying(space));
        let mut ours = Walk::new(source, space, PAGE);
        let mut theirs = Walk::new(target, space, PAGE);
        let mut count = 0u64;
        loop {
            let mine = ours.next().transpose().map_err(MigrateError::Source)?;
            let copy = theirs.next().transpose().map_err(MigrateError::Target)?;
            match (mine, copy) {
                (None, None) => break,
                (Some((key, value)), Some((copy_key, copy_value))) if key == copy_key => {
                    if value != copy_value {
                        return Err(mismatch(space, &key, "has another value in the target"));
                    }
                    if space == Space::Documents {
                        receipt(&key, &value, &copy_value, service)?;
                        documents += 1;
                    }
                    count += 1;
                }
                (mine, copy) => return Err(unpaired(space, mine, copy)),
            }
        }
        entries.push((space, count));
    }
    Ok(Compared { entries, documents })
}

/// The first key that only one side has (both walks are in key order, so
/// it is the smaller of the two).
fn unpaired(space: Space, mine: Option<Entry>, copy: Option<Entry>) -> MigrateError {
    match (mine, copy) {
        (Some((key, _)), Some((copy_key, _))) if copy_key < key => {
            mismatch(space, &copy_key, "is in the target only")
        }
        (Some((key, _)), _) => mismatch(space, &key, "is missing from the target"),
        (None, Some((copy_key, _))) => mismatch(space, &copy_key, "is in the target only"),
        (None, None) => mismatch(space, &[], "ended early"),
    }
}

fn mismatch(space: Space, key: &[u8], what: &str) -> MigrateError {
    MigrateError::Mismatch(format!(
        "keyspace {}: {} {what}",
        space.name(),
        show_key(space, key)
    ))
}

/// A document's receipt: the same bytes (and signature) on both sides, and
/// the target's signed by the service key.
fn receipt(id: &[u8], source: &[u8], target: &[u8], service: &PublicKey) -> Result<()> {
    let document = |bytes: &[u8]| {
        StoredDocument::decode(bytes).map_err(|e| {
            mismatch(
                Space::Documents,
                id,
                &format!("does not decode as a document: {e}"),
            )
        })
    };
    let (source, target) = (document(source)?, document(target)?);
    if source.receipt != target.receipt || source.receipt_signature != target.receipt_signature {
        return Err(mismatch(
            Space::Documents,
            id,
            "has another receipt in the target",
        ));
    }
    audit::verified_receipt(service, &target.receipt, &target.receipt_signature)
        .map(drop)
        .map_err(|why| mismatch(Space::Documents, id, &format!("in the target: {why}")))
}

/// The archive of one side, audited: every leaf, node, checkpoint and
/// receipt recomputed and checked, and its root.
pub(super) fn audit_side(
    engine: Arc<dyn Engine>,
    service: PublicKey,
    attachments: &Path,
    is_target: bool,
) -> Result<Archive> {
    let side = if is_target { "target" } else { "source" };
    let failed = |e| match is_target {
        true => MigrateError::Target(e),
        false => MigrateError::Source(e),
    };
    let report = audit::audit_engine(service, engine, attachments).map_err(failed)?;
    if let Some(problem) = report.problem {
        return Err(MigrateError::Mismatch(format!(
            "the audit of the {side}'s archive failed after {} good leaves: {problem}",
            report.leaves
        )));
    }
    Ok(Archive {
        leaves: report.leaves,
        checkpoints: report.checkpoints,
        root: report.root,
    })
}

/// The archive, if both sides audited to the same leaves, checkpoints and
/// root.
pub(super) fn same_archive(source: &Archive, target: &Archive) -> Result<Archive> {
    if source != target {
        let root = |a: &Archive| a.root.map(hex::encode).unwrap_or_else(|| "none".into());
        return Err(MigrateError::Mismatch(format!(
            "the archives differ: the source has {} leaves, {} checkpoints and root {}, \
             the target {} leaves, {} checkpoints and root {}",
            source.leaves,
            source.checkpoints,
            root(source),
            target.leaves,
            target.checkpoints,
            root(target)
        )));
    }
    Ok(source.clone())
}

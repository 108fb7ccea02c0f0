//! Whether the target holds the source's deployment (or nothing yet), read
//! before anything is written: its schema, each archive leaf and each
//! checkpoint must be the source's (see the parent module for why these).

use super::{show_key, MigrateError, Result, PAGE};
use crate::store::engine::{self, Engine, Space};

/// Checks the target against the source; returns how many archive leaves
/// it already holds.
pub(super) fn check(source: &dyn Engine, target: &dyn Engine) -> Result<u64> {
    let target_schema = target
        .get(Space::Meta, b"schema")
        .map_err(MigrateError::Target)?;
    let source_schema = source
        .get(Space::Meta, b"schema")
        .map_err(MigrateError::Source)?;
    if let Some(schema) = target_schema.filter(|t| Some(t) != source_schema.as_ref()) {
        return Err(MigrateError::Different(format!(
            "its store schema (meta key \"schema\") is {:?}, the source's {:?}",
            String::from_utf8_lossy(&schema),
            String::from_utf8_lossy(source_schema.as_deref().unwrap_or_default())
        )));
    }
    let source_leaves =
        match engine::last(source, Space::ArchiveLeaves).map_err(MigrateError::Source)? {
            Some((key, _)) => super::show_key(Space::ArchiveLeaves, &key),
            None => "none".into(),
        };
    let leaves = same_entries(source, target, Space::ArchiveLeaves, |key| {
        format!(
            "its archive holds {}, which the source's does not (the source's last is {source_leaves}): \
             documents were accepted on it after an earlier migrate, or it is another deployment",
            show_key(Space::ArchiveLeaves, key)
        )
    })?;
    same_entries(source, target, Space::Checkpoints, |key| {
        format!(
            "it holds the checkpoint of {}, which the source does not: a server ran on it \
             after an earlier migrate, or it is another deployment",
            show_key(Space::Checkpoints, key)
        )
    })?;
    Ok(leaves)
}

/// Checks that every entry of `space` in the target is the source's, byte
/// for byte; `missing` says why a key the source lacks is refused. Returns
/// how many entries the target holds.
fn same_entries(
    source: &dyn Engine,
    target: &dyn Engine,
    space: Space,
    missing: impl Fn(&[u8]) -> String,
) -> Result<u64> {
    let mut count = 0;
    for entry in engine::Walk::new(target, space, PAGE) {
        let (key, value) = entry.map_err(MigrateError::Target)?;
        match source.get(space, &key).map_err(MigrateError::Source)? {
            None => return Err(MigrateError::Different(missing(&key))),
            Some(theirs) if theirs != value => {
                return Err(MigrateError::Different(format!(
                    "its {} {} differs from the source's",
                    space.name(),
                    show_key(space, &key)
                )))
            }
            Some(_) => count += 1,
        }
    }
    Ok(count)
}

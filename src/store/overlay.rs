//! One job's writes held apart inside a batch's one transaction.
//!
//! The leader applies a whole batch of sends in one engine transaction (one
//! commit, and on PostgreSQL one advisory lock and one WAL flush, for all of
//! them). Each job still stands alone: it runs against an [`Overlay`] that
//! keeps its puts and deletes to itself (its own reads see them; reads of
//! anything else go to the batch's transaction, which holds the jobs before
//! it) and hands them to the transaction only if the job succeeds. A job
//! refused by the rules (a taken number, a bad status) leaves nothing.

use std::collections::BTreeMap;

use super::engine::{Space, Txn};
use crate::error::Result;

/// A key's fate: `Some` put, `None` deleted.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Puts and deletes held in memory, per keyspace, until they are handed
/// on (here, to the batch's transaction; in the PostgreSQL engine, to the
/// statements written at commit).
pub(crate) struct WriteSet(Vec<Writes>);

impl WriteSet {
    pub(crate) fn new() -> WriteSet {
        WriteSet(vec![Writes::new(); Space::ALL.len()])
    }

    /// `Some` if the set holds a write of `key`: its value, or `None` if
    /// deleted.
    pub(crate) fn get(&self, space: Space, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.0[space.index()].get(key).cloned()
    }

    pub(crate) fn put(&mut self, space: Space, key: &[u8], value: &[u8]) {
        self.0[space.index()].insert(key.to_vec(), Some(value.to_vec()));
    }

    pub(crate) fn delete(&mut self, space: Space, key: &[u8]) {
        self.0[space.index()].insert(key.to_vec(), None);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(Writes::is_empty)
    }

    /// Each keyspace with its writes, in key order.
    pub(crate) fn into_spaces(self) -> impl Iterator<Item = (Space, Writes)> {
        Space::ALL.into_iter().zip(self.0)
    }
}

pub(super) struct Overlay<'a> {
    base: &'a mut dyn Txn,
    writes: WriteSet,
}

impl<'a> Overlay<'a> {
    pub(super) fn new(base: &'a mut dyn Txn) -> Overlay<'a> {
        Overlay {
            base,
            writes: WriteSet::new(),
        }
    }

    /// Hands the job's writes to the batch's transaction.
    pub(super) fn apply(self) -> Result<()> {
        for (space, writes) in self.writes.into_spaces() {
            for (key, value) in writes {
                match value {
                    Some(value) => self.base.put(space, &key, &value)?,
                    None => self.base.delete(space, &key)?,
                }
            }
        }
        Ok(())
    }
}

impl Txn for Overlay<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(space, key) {
            Some(value) => Ok(value),
            None => self.base.get(space, key),
        }
    }

    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()> {
        self.writes.put(space, key, value);
        Ok(())
    }

    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()> {
        self.writes.delete(space, key);
        Ok(())
    }
}

//! A point-in-time read of every tree while the committer goes on writing,
//! for an online backup.
//!
//! sled 0.34.7 has no snapshots: an iterator sees writes made after it
//! started. So a snapshot keeps *before-images*: the value a key had at the
//! snapshot's instant (or that it had none), recorded by a transaction the
//! first time it writes the key after that instant. The reader walks the
//! trees in [`Space::ALL`] order, each in key order, and keeps its position
//! in the shared [`Log`]; it skips a key that has a before-image and gives
//! the before-images of a tree at the end of that tree. (sled also makes
//! every read wait while a transaction runs, so the reader never sees one
//! half committed.)
//!
//! A transaction records a before-image only for a key the reader has not
//! passed yet (what it passed, it already gave as it was), so memory holds
//! only what is written ahead of the reader while the backup runs. The
//! engine registers a snapshot between transactions (see `SledEngine`), so
//! none is in it by halves.
//!
//! Why this is exact, for a key K: if a write to K became visible before
//! the reader read K, its before-image was recorded earlier still (before
//! the commit), so the reader finds it and skips the newer value; if not,
//! the reader read the value of the instant. A key created after the
//! instant has a before-image of "none" and is skipped; one deleted after it
//! is given from its before-image.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use ::sled::Tree;

use super::sled_error;
use crate::error::Result;
use crate::store::engine::{Entry, Space};

/// Entries read from sled at a time, between two looks at the log.
const CHUNK: usize = 512;

/// What a snapshot's reader and the writers share.
#[derive(Default)]
pub(super) struct Log(Mutex<LogState>);

#[derive(Default)]
struct LogState {
    /// The tree the reader is in, by position in [`Space::ALL`].
    space: usize,
    /// The last key of that tree the reader has given or skipped.
    passed: Option<Vec<u8>>,
    /// Before-images of keys not yet passed: (tree, key) → value at the
    /// snapshot's instant (`None`: it had none).
    before: BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>,
}

impl Log {
    /// Each use is a few map operations that a panic cannot leave half
    /// done, so a poisoned lock still guards a consistent state.
    fn state(&self) -> MutexGuard<'_, LogState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called by a transaction before it writes `key` of tree `space`:
    /// keeps the key's committed value, which `committed` reads, if the
    /// reader has yet to read the key and no earlier write kept one.
    ///
    /// `committed` must read through the transaction: sled holds a lock
    /// that every plain read waits for while a transaction runs (and the
    /// reader therefore cannot read while this one runs). The transaction
    /// has not written the key yet when it is asked: had it, the key would
    /// have a before-image already, or the reader would have passed it then
    /// and so now.
    pub(super) fn before_write<E>(
        &self,
        space: usize,
        key: &[u8],
        committed: impl FnOnce() -> std::result::Result<Option<Vec<u8>>, E>,
    ) -> std::result::Result<(), E> {
        let mut state = self.state();
        let ahead = space > state.space
            || (space == state.space && state.passed.as_deref().is_none_or(|p| key > p));
        if !ahead {
            return Ok(());
        }
        if let std::collections::btree_map::Entry::Vacant(slot) =
            state.before.entry((space, key.to_vec()))
        {
            slot.insert(committed()?);
        }
        Ok(())
    }
}

/// The reading side: an iterator over every tree as at the instant.
pub(super) struct SledSnapshot {
    trees: Vec<Tree>,
    log: Arc<Log>,
    /// The tree being read, and the last key read from it.
    space: usize,
    after: Option<Vec<u8>>,
    ready: VecDeque<(Space, Entry)>,
}

impl SledSnapshot {
    pub(super) fn new(trees: Vec<Tree>, log: Arc<Log>) -> SledSnapshot {
        SledSnapshot {
            trees,
            log,
            space: 0,
            after: None,
            ready: VecDeque::new(),
        }
    }

    /// Reads the next chunk of the current tree into `ready`, or finishes
    /// the tree with its before-images and moves to the next.
    fn read_chunk(&mut self) -> Result<()> {
        let (Some(tree), Some(space)) = (self.trees.get(self.space), Space::ALL.get(self.space))
        else {
            return Ok(());
        };
        let space = *space;
        let start = match &self.after {
            Some(key) => Bound::Excluded(key.clone()),
            None => Bound::Unbounded,
        };
        let chunk = tree
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(CHUNK)
            .map(|entry| {
                entry
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| sled_error(space.name(), e))
            })
            .collect::<Result<Vec<Entry>>>()?;
        let exhausted = chunk.len() < CHUNK;
        let mut state = self.log.state();
        if let Some((last, _)) = chunk.last() {
            state.passed = Some(last.clone());
            self.after = Some(last.clone());
        }
        for (key, value) in chunk {
            if !state.before.contains_key(&(self.space, key.clone())) {
                self.ready.push_back((space, (key, value)));
            }
        }
        if exhausted {
            // The rest of this tree as it was: what was changed or removed
            // since the instant (and not yet read), from its before-image.
            let rest = state.before.split_off(&(self.space + 1, Vec::new()));
            let mine = std::mem::replace(&mut state.before, rest);
            for ((_, key), value) in mine {
                if let Some(value) = value {
                    self.ready.push_back((space, (key, value)));
                }
            }
            self.space += 1;
            self.after = None;
            state.space = self.space;
            state.passed = None;
        }
        Ok(())
    }
}

impl Iterator for SledSnapshot {
    type Item = Result<(Space, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.ready.is_empty() && self.space < self.trees.len() {
            if let Err(e) = self.read_chunk() {
                // Stop here: a snapshot with a hole is no snapshot.
                self.space = self.trees.len();
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

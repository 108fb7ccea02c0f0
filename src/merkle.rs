//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0), over nodes
//! kept in storage.
//!
//! Leaf hash `SHA-256(0x00 ‖ leaf)`, node hash `SHA-256(0x01 ‖ left ‖
//! right)`, for trees of any size. Storage keeps the hash of every *perfect*
//! subtree (2^level leaves starting at a multiple of 2^level), written as
//! leaves are appended; any other range's hash is composed from at most
//! log2(n) of them. A proof memoises the range hashes it computes, so it
//! reads O(log n) stored nodes; nothing is ever rebuilt from all leaves.

use std::cell::RefCell;
use std::collections::HashMap;

use ring::digest::{Context, SHA256};

use crate::error::{Error, Result};

pub type Hash = [u8; 32];

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(leaf);
    finish(ctx)
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    finish(ctx)
}

fn finish(ctx: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Where the perfect subtree hashes are read from.
pub trait Nodes {
    /// The hash of the perfect subtree of 2^level leaves starting at leaf
    /// `index << level`.
    fn node(&self, level: u32, index: u64) -> Result<Hash>;
}

/// The perfect subtree nodes completed by appending leaf `n` (0-based) with
/// hash `leaf`, given a way to read the left siblings. Returns (level,
/// index, hash), the leaf itself first.
pub fn appended_nodes(
    n: u64,
    leaf: Hash,
    mut left_sibling: impl FnMut(u32, u64) -> Result<Hash>,
) -> Result<Vec<(u32, u64, Hash)>> {
    let mut out = vec![(0, n, leaf)];
    let (mut level, mut index, mut hash) = (0u32, n, leaf);
    while index & 1 == 1 {
        let left = left_sibling(level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        out.push((level, index, hash));
    }
    Ok(out)
}

/// Range hashes over stored nodes, memoised for one computation.
pub struct Tree<'a, N: Nodes> {
    nodes: &'a N,
    memo: RefCell<HashMap<(u64, u64), Hash>>,
}

impl<'a, N: Nodes> Tree<'a, N> {
    pub fn new(nodes: &'a N) -> Self {
        Tree {
            nodes,
            memo: RefCell::new(HashMap::new()),
        }
    }

    /// MTH(D[start:end]), end > start.
    pub fn range(&self, start: u64, end: u64) -> Result<Hash> {
        if let Some(h) = self.memo.borrow().get(&(start, end)) {
            return Ok(*h);
        }
        let len = end - start;
        let hash = if len.is_power_of_two() && start.is_multiple_of(len) {
            self.nodes.node(len.trailing_zeros(), start / len)?
        } else {
            let k = split(len);
            node_hash(&self.range(start, start + k)?, &self.range(start + k, end)?)
        };
        self.memo.borrow_mut().insert((start, end), hash);
        Ok(hash)
    }

    /// The root of the tree of the first `size` leaves (size ≥ 1).
    pub fn root(&self, size: u64) -> Result<Hash> {
        if size == 0 {
            return Err(Error::OutOfRange {
                field: "tree_size".into(),
                reason: "an empty tree has no root".into(),
            });
        }
        self.range(0, size)
    }

    /// PATH(m, D[0:size]) of RFC 9162 §2.1.3.1: sibling hashes, bottom up.
    pub fn inclusion(&self, m: u64, size: u64) -> Result<Vec<Hash>> {
        if m >= size {
            return Err(Error::OutOfRange {
                field: "leaf_index".into(),
                reason: format!("leaf {m} is not in a tree of size {size}"),
            });
        }
        let mut path = Vec::new();
        self.path(m, 0, size, &mut path)?;
        Ok(path)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<()> {
        let n = end - start;
        if n == 1 {
            return Ok(());
        }
        let k = split(n);
        if m < start + k {
            self.path(m, start, start + k, out)?;
            out.push(self.range(start + k, end)?);
        } else {
            self.path(m, start + k, end, out)?;
            out.push(self.range(start, start + k)?);
        }
        Ok(())
    }

    /// PROOF(m, D[0:size]) of RFC 9162 §2.1.4.1, for 0 < m ≤ size.
    pub fn consistency(&self, m: u64, size: u64) -> Result<Vec<Hash>> {
        if m == 0 || m > size {
            return Err(Error::OutOfRange {
                field: "first_size".into(),
                reason: format!("no consistency proof from size {m} to {size}"),
            });
        }
        let mut proof = Vec::new();
        self.subproof(m, 0, size, true, &mut proof)?;
        Ok(proof)
    }

    fn subproof(
        &self,
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Result<()> {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.range(start, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out)?;
            out.push(self.range(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, out)?;
            out.push(self.range(start, start + k)?);
        }
        Ok(())
    }
}

/// Verifies an inclusion proof as RFC 9162 §2.1.3.2 prescribes.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Verifies a consistency proof as RFC 9162 §2.1.4.2 prescribes.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let Some((head, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *first_root && sr == *second_root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes in memory, appended through `appended_nodes`.
    #[derive(Default)]
    struct Memory(HashMap<(u32, u64), Hash>, u64);

    impl Nodes for Memory {
        fn node(&self, level: u32, index: u64) -> Result<Hash> {
            self.0
                .get(&(level, index))
                .copied()
                .ok_or_else(|| Error::storage(format!("no node {level}/{index}")))
        }
    }

    impl Memory {
        fn append(&mut self, leaf: &[u8]) {
            let n = self.1;
            let nodes =
                appended_nodes(n, leaf_hash(leaf), |l, i| self.node(l, i)).unwrap_or_default();
            for (l, i, h) in nodes {
                self.0.insert((l, i), h);
            }
            self.1 += 1;
        }
    }

    /// MTH straight from the definition, from all leaves.
    fn reference(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference(&leaves[..k]), &reference(&leaves[k..]))
            }
        }
    }

    #[test]
    fn stored_nodes_give_the_definition_roots_and_proofs_verify() {
        let leaves: Vec<Vec<u8>> = (0..70u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut memory = Memory::default();
        for leaf in &leaves {
            memory.append(leaf);
        }
        let tree = Tree::new(&memory);
        for n in 1..=70u64 {
            let root = tree.root(n).unwrap_or_default();
            assert_eq!(root, reference(&leaves[..n as usize]), "size {n}");
            for m in 0..n {
                let path = tree.inclusion(m, n).unwrap_or_default();
                assert!(verify_inclusion(
                    &leaf_hash(&leaves[m as usize]),
                    m,
                    n,
                    &path,
                    &root
                ));
            }
            for m in 1..=n {
                let proof = tree.consistency(m, n).unwrap_or_default();
                let old = tree.root(m).unwrap_or_default();
                assert!(verify_consistency(m, n, &old, &root, &proof), "{m} -> {n}");
            }
        }
    }
}

//! What an archive append and its proofs cost at a given size, measured on
//! a scratch store with the service's own commit code and key layout
//! (`lienthong bench archive-costs`).

use std::cell::Cell;
use std::time::Instant;

use super::engine::{self, Engine};
use super::{commit, EngineNodes};
use crate::error::Result;
use crate::merkle::{Hash, Nodes, Tree};

/// What an archive operation costs at a size.
#[derive(Debug, Clone)]
pub struct ArchiveCost {
    pub leaves: u64,
    pub append_us: f64,
    pub inclusion_proof_us: f64,
    pub inclusion_proof_node_reads: f64,
    pub consistency_proof_us: f64,
}

/// Counts the node reads of a proof.
struct Counting<'a>(EngineNodes<'a>, Cell<u64>);

impl Nodes for Counting<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        self.1.set(self.1.get() + 1);
        self.0.node(level, index)
    }
}

/// Appends leaves to the (empty, scratch) `engine`, each in a transaction of
/// its own as a send would, and times 1000 appends and 1000 proofs of each
/// kind whenever the log reaches one of `marks`. Nothing is synced: this
/// measures the archive's work, not the disk.
pub fn archive_costs(engine: &dyn Engine, marks: &[u64]) -> Result<Vec<ArchiveCost>> {
    let append = |n: u64| -> Result<()> {
        engine::transact(engine, |txn| {
            commit::append_leaf(txn, format!("leaf {n}").as_bytes()).map(|_| ())
        })
    };
    let mut out = Vec::new();
    let mut n = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64; // xorshift: leaf indexes to prove
    for &mark in marks {
        while n < mark {
            append(n)?;
            n += 1;
        }
        // 1000 appends from this size on, timed; then proofs at this size.
        let started = Instant::now();
        for i in 0..1000 {
            append(n + i)?;
        }
        let append_us = started.elapsed().as_secs_f64() * 1e6 / 1000.0;
        n += 1000;
        let counting = Counting(EngineNodes(engine), Cell::new(0));
        let started = Instant::now();
        for _ in 0..1000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            Tree::new(&counting).inclusion(rng % mark, mark)?;
        }
        let proof_us = started.elapsed().as_secs_f64() * 1e6 / 1000.0;
        let reads = counting.1.get() as f64 / 1000.0;
        let started = Instant::now();
        for i in 0..1000 {
            Tree::new(&counting).consistency(mark / 2 + i % (mark / 2), mark)?;
        }
        let consistency_us = started.elapsed().as_secs_f64() * 1e6 / 1000.0;
        out.push(ArchiveCost {
            leaves: mark,
            append_us,
            inclusion_proof_us: proof_us,
            inclusion_proof_node_reads: reads,
            consistency_proof_us: consistency_us,
        });
    }
    Ok(out)
}

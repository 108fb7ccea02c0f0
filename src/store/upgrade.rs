//! Upgrades a store written by an earlier build to this build's layout, in
//! one transaction, when it is opened.
//!
//! `lienthong-store-1` → `lienthong-store-2`: the numbering key gained the
//! series (`org ‖ year ‖ number ‖ notation` became `org ‖ year ‖ series ‖
//! number ‖ notation`), and the `"issued"` counters appeared. Store-1 had
//! one series per issuer, so every number it holds goes to the ordinary
//! series, where it was numbered; each counter starts at the highest number
//! held.
//!
//! `lienthong-store-2` → `lienthong-store-3`: a document's archive leaf
//! moved from the `archive_index` keyspace into its record. Nothing is
//! rewritten: the documents already stored keep their `archive_index` key,
//! which is read when a record has no leaf. The schema changes so that an
//! earlier build, which would not find the leaves of newer documents,
//! refuses the store instead.

use std::collections::BTreeMap;

use super::engine::{Engine, Order, Space};
use super::keys;
use crate::directory::OrgCode;
use crate::document::Series;
use crate::error::{Error, Result};

pub(super) const STORE_1: &[u8] = b"lienthong-store-1";
pub(super) const STORE_2: &[u8] = b"lienthong-store-2";

/// Writes `schema` over a store-2's; synced on return.
pub(super) fn from_store_2(engine: &dyn Engine, schema: &[u8]) -> Result<()> {
    engine.transact(&mut |txn| txn.put(Space::Meta, b"schema", schema))?;
    engine.sync()
}

/// Rewrites a store-1's numbering and writes `schema`; synced on return.
pub(super) fn from_store_1(engine: &dyn Engine, schema: &[u8]) -> Result<()> {
    let old = engine.scan(Space::Numbering, &[], None, Order::Ascending, usize::MAX)?;
    let mut moved = Vec::with_capacity(old.len());
    let mut highest: BTreeMap<(OrgCode, u16), u64> = BTreeMap::new();
    for (key, id) in old {
        let (org, year, number, notation) = store_1_numbering(&key).ok_or_else(|| {
            Error::storage(format!(
                "the store-1 numbering key {} is malformed",
                hex::encode(&key)
            ))
        })?;
        let top = highest.entry((org, year)).or_default();
        *top = (*top).max(number);
        let new_key = keys::numbering(&org, year, Series::Ordinary, number, &notation);
        moved.push((key, new_key, id));
    }
    engine.transact(&mut |txn| {
        for (old_key, new_key, id) in &moved {
            txn.delete(Space::Numbering, old_key)?;
            txn.put(Space::Numbering, new_key, id)?;
        }
        for ((org, year), number) in &highest {
            let counter = keys::issued_counter(org, *year, Series::Ordinary);
            txn.put(Space::Counters, &counter, &number.to_be_bytes())?;
        }
        txn.put(Space::Meta, b"schema", schema)
    })?;
    engine.sync()
}

/// `org ‖ year u16 ‖ number u64 ‖ notation`
fn store_1_numbering(key: &[u8]) -> Option<(OrgCode, u16, u64, String)> {
    let org = OrgCode::from_key(key)?;
    let rest = key.get(OrgCode::LEN..)?;
    let year = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
    let number = keys::be_u64(rest.get(2..10)?)?;
    let notation = String::from_utf8(rest.get(10..)?.to_vec()).ok()?;
    Some((org, year, number, notation))
}

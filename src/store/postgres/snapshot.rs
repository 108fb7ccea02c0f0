//! A point-in-time read of every table while writes go on, for an online
//! backup: one `REPEATABLE READ READ ONLY` transaction on a connection of
//! its own, so PostgreSQL's MVCC keeps the instant (no before-images of
//! our own, unlike sled). Tables are read in [`Space::ALL`] order, each in
//! pages by key (keyset pagination: `key >= last ‖ 0`, never `OFFSET`).

use std::collections::VecDeque;

use super::pool::{block_on, Conn};
use crate::error::Result;
use crate::store::engine::{after_key, Entry, Space};

/// Rows read at a time.
const PAGE: i64 = 512;

pub(super) struct PgSnapshot {
    /// Dropping it ends the transaction (the server rolls back a session
    /// that closes).
    conn: Conn,
    /// The table being read, by position in [`Space::ALL`], and where its
    /// next page starts.
    space: usize,
    from: Vec<u8>,
    ready: VecDeque<(Space, Entry)>,
}

impl PgSnapshot {
    /// Begins the snapshot on `conn`: its instant is now (the first
    /// statement of a `REPEATABLE READ` transaction fixes it, so one is run
    /// here rather than at the first read).
    pub(super) fn begin(conn: Conn, at: &str) -> Result<PgSnapshot> {
        let mut conn = conn;
        block_on(
            conn.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"),
        )
        .map_err(|e| conn.failed(&format!("beginning a snapshot at {at}"), e))?;
        Ok(PgSnapshot {
            conn,
            space: 0,
            from: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    fn read_page(&mut self) -> Result<()> {
        let Some(space) = Space::ALL.get(self.space).copied() else {
            return Ok(());
        };
        let page = block_on(super::scan_from(
            &mut self.conn,
            space,
            &self.from,
            false,
            PAGE,
        ))?;
        if (page.len() as i64) < PAGE {
            self.space += 1;
            self.from = Vec::new();
        } else if let Some((last, _)) = page.last() {
            self.from = after_key(last);
        }
        self.ready
            .extend(page.into_iter().map(|entry| (space, entry)));
        Ok(())
    }
}

impl Iterator for PgSnapshot {
    type Item = Result<(Space, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.ready.is_empty() && self.space < Space::ALL.len() {
            if let Err(e) = self.read_page() {
                // Stop here: a snapshot with a hole is no snapshot.
                self.space = Space::ALL.len();
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

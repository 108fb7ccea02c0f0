//! One [`Txn`] as one SQL transaction, its writes buffered until the end.
//!
//! Puts and deletes are kept in memory (a read looks there first, so it
//! sees the transaction's own writes) and written at commit with at most
//! two statements per keyspace touched: one `INSERT … SELECT FROM unnest(…)
//! ON CONFLICT DO UPDATE` for the puts, one `DELETE … WHERE key = ANY(…)`
//! for the deletes. A send touches about a dozen keyspaces and writes some
//! thirty keys: this saves the round trips of one statement per key.

use super::pool::{block_on, Conn, Kind};
use crate::error::{Error, Result};
use crate::store::engine::{Space, Txn};
use crate::store::overlay::WriteSet;

pub(super) struct PgTxn<'a> {
    conn: &'a mut Conn,
    writes: WriteSet,
    /// The first statement that failed: the SQL transaction is aborted
    /// then, whatever `work` makes of the error, so it must not commit.
    failure: Option<Error>,
}

impl<'a> PgTxn<'a> {
    pub(super) fn new(conn: &'a mut Conn) -> PgTxn<'a> {
        PgTxn {
            conn,
            writes: WriteSet::new(),
            failure: None,
        }
    }

    /// The failure that aborted the SQL transaction, if any.
    pub(super) fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    fn failed(&mut self, e: Error) -> Error {
        self.failure.get_or_insert_with(|| e.clone());
        e
    }

    /// Whether the transaction put or deleted anything.
    pub(super) fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// Writes the buffered puts and deletes (the caller then commits).
    pub(super) fn flush(&mut self) -> Result<()> {
        let writes = std::mem::replace(&mut self.writes, WriteSet::new());
        for (space, writes) in writes.into_spaces() {
            if writes.is_empty() {
                continue;
            }
            let mut keys = Vec::new();
            let mut values = Vec::new();
            let mut deleted = Vec::new();
            for (key, value) in writes {
                match value {
                    Some(value) => {
                        keys.push(key);
                        values.push(value);
                    }
                    None => deleted.push(key),
                }
            }
            if !keys.is_empty() {
                self.write(space, Kind::Upsert, &[&keys, &values])?;
            }
            if !deleted.is_empty() {
                self.write(space, Kind::Delete, &[&deleted])?;
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        space: Space,
        kind: Kind,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<()> {
        let conn = &mut *self.conn;
        let outcome = block_on(async {
            let statement = conn.statement(kind, space).await?;
            conn.client
                .execute(&statement, params)
                .await
                .map_err(|e| conn.failed(&format!("writing table {}", space.name()), e))
        });
        outcome.map(drop).map_err(|e| self.failed(e))
    }
}

impl Txn for PgTxn<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.writes.get(space, key) {
            return Ok(value);
        }
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        let outcome = block_on(super::get(self.conn, space, key));
        outcome.map_err(|e| self.failed(e))
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

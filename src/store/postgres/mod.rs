//! The PostgreSQL engine (`serve --store postgres://…`): each keyspace is a
//! table, a transaction is one SQL transaction, and `sync` has nothing left
//! to do once `COMMIT` has returned.
//!
//! # Schema
//!
//! One table per keyspace ([`Space`]), named [`Space::name`]:
//!
//! ```sql
//! CREATE TABLE "documents" (key bytea PRIMARY KEY, value bytea NOT NULL);
//! -- likewise "meta", "small_attachments", "inbox", "outbox", "events",
//! -- "archive_leaves", "archive_nodes", "archive_index", "checkpoints",
//! -- "counters", "idempotency", "numbering", "statuses", "deadlines",
//! -- "unread", "report", "attachment_files"
//! ```
//!
//! The table *is* the keyspace: its rows are exactly the keys and values
//! that the parent module's key layout documents for sled, byte for byte.
//! `bytea` compares as unsigned bytes, so `ORDER BY key` is the keyspace's
//! order and a range scan is `key >= start AND key < end`. The tables are
//! created by numbered migrations (`migrations`) recorded in
//! `schema_migrations (version integer primary key, applied_at timestamptz)`,
//! applied at open under an advisory lock so that front ends starting
//! together do not race. The store's own schema (`meta` key `"schema"`, its
//! upgrades and one-time indexes) sits above, in the tables, as with sled.
//!
//! Attachment contents larger than the inline limit, and uploads, are not
//! in the database: they stay files under `DATA/attachments/` (see
//! `store::files`), content-addressed and synced before the commit that
//! names them. With several front ends on one database, `DATA/attachments`
//! must therefore be one directory that all of them share (a network file
//! system with working fsync and rename).
//!
//! # Transactions across front ends
//!
//! Several front ends (processes) may write one database. Every write
//! transaction first takes one transaction-scoped advisory lock
//! ([`COMMIT_LOCK`], see [`PostgresEngine::transact`]), so writers are
//! serialised across front ends as the committer serialises them within
//! one; the lock is released by `COMMIT` or `ROLLBACK`, also when a
//! session dies. Readers take no lock.
//!
//! # Durability
//!
//! A `COMMIT` that returned is on disk unless the server runs with
//! `synchronous_commit = off` or `fsync = off`; every connection checks both
//! when it opens and the engine refuses to work with either
//! (`check_durability`).

mod listen;
mod migrations;
mod pool;
mod snapshot;
mod txn;

use std::fmt;

use tokio_postgres::{Client, Config};

use super::engine::{Engine, Entry, Order, Snapshot, Space, Txn, Wake};
use crate::error::{Error, Result};
use pool::{block_on, Conn, Connector, Kind, Pool};
use snapshot::PgSnapshot;
use txn::PgTxn;

/// The advisory lock every write transaction takes first (its key is the
/// bytes "lienthng"). Advisory locks are per database, so deployments in
/// other databases of one cluster do not wait for each other.
const COMMIT_LOCK: i64 = 0x6c69_656e_7468_6e67;

/// The advisory lock held while a front end does the store's one-time work
/// at open ([`Engine::exclusive`]); "lienthop".
const OPEN_LOCK: i64 = 0x6c69_656e_7468_6f70;

/// A PostgreSQL connection URL (`postgres://` or `postgresql://`), checked
/// to parse. Shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// Checks `url`; the error says what is wrong without repeating the
    /// URL (it may hold a password).
    pub fn parse(url: &str) -> std::result::Result<PostgresUrl, String> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(format!(
                "a store URL starts with postgres:// or postgresql://, not {}",
                match scheme {
                    Some(scheme) => format!("{scheme}://"),
                    None =>
                        "a path or a name (the embedded store needs no --store: it is DATA/store)"
                            .into(),
                }
            ));
        }
        url.parse::<Config>()
            .map_err(|e| format!("the PostgreSQL URL does not parse: {e}"))?;
        Ok(PostgresUrl(url.to_string()))
    }

    /// `url` with any password it holds replaced by `***`, for showing
    /// (`config print`).
    pub fn redacted(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => match user_info.split_once(':') {
                Some((user, _)) => format!("{user}:***@{hosts}"),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some(("password", _)) => "password=***".to_string(),
                        _ => pair.to_string(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        format!("{scheme}://{authority}{tail}")
    }

    fn config(&self) -> Result<Config> {
        self.0
            .parse::<Config>()
            .map_err(|e| Error::storage_from("the PostgreSQL URL does not parse", e))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.config() {
            Ok(config) => write!(f, "PostgresUrl({})", pool::describe(&config)),
            Err(_) => f.write_str("PostgresUrl(unparsable)"),
        }
    }
}

pub struct PostgresEngine {
    pool: Pool,
    /// Where the database is, for messages (no password).
    at: String,
    /// Names this engine's commits in their notifications (`listen`), so
    /// that it can tell them from other front ends'.
    id: String,
}

impl PostgresEngine {
    /// Connects to the database at `url`, checks that its commits are
    /// durable, and creates or upgrades its tables.
    pub fn open(url: &PostgresUrl) -> Result<PostgresEngine> {
        let connector = Connector::new(url.config()?)?;
        let at = connector.describe();
        // A connection of its own: a failed migration leaves its session
        // in an aborted transaction, and it is dropped with it.
        let conn = connector.connect()?;
        block_on(migrations::migrate(&conn.client, &at))?;
        drop(conn);
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(PostgresEngine {
            pool: Pool::new(connector),
            at,
            // Unique enough: a process id and the nanosecond it opened.
            id: format!("{}-{}", std::process::id(), since_epoch.as_nanos()),
        })
    }

    /// The newest schema migration this build applies.
    pub fn schema_version() -> i32 {
        migrations::latest()
    }
}

/// Refuses a server whose commits are not durable when they return.
///
/// Every value of `synchronous_commit` but `off` makes a commit wait until
/// its WAL is flushed to the primary's disk; `local`, `remote_write`, `on`
/// and `remote_apply` differ only in how far a synchronous standby got, if
/// one is configured. So `local` is accepted: it is the guarantee the
/// embedded store gives (this machine's disk), and waiting for a standby
/// is the operator's choice of availability, not a condition of
/// durability. `fsync = off` makes every setting a lie, so it is refused too.
async fn check_durability(client: &Client, at: &str) -> Result<()> {
    let setting = |name: &'static str| async move {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(|e| Error::storage_from(format!("PostgreSQL at {at}: SHOW {name}"), e))?;
        row.try_get::<_, String>(0)
            .map_err(|e| Error::storage_from(format!("PostgreSQL at {at}: SHOW {name}"), e))
    };
    if setting("synchronous_commit").await? == "off" {
        return Err(Error::storage(format!(
            "PostgreSQL at {at} runs with synchronous_commit = off: it would report commits \
             before they are on disk, and lienthong acknowledges a document only once it is \
             durable. Set it to on (e.g. ALTER DATABASE … SET synchronous_commit = on, and \
             check the role's settings and the URL's options) and start again"
        )));
    }
    if setting("fsync").await? == "off" {
        return Err(Error::storage(format!(
            "PostgreSQL at {at} runs with fsync = off: nothing it commits is sure to survive a \
             crash. Set fsync = on in postgresql.conf and start again"
        )));
    }
    Ok(())
}

fn row_bytes(row: &tokio_postgres::Row, column: usize, space: Space) -> Result<Vec<u8>> {
    row.try_get::<_, Vec<u8>>(column).map_err(|e| {
        Error::storage_from(
            format!("PostgreSQL: reading a row of table {}", space.name()),
            e,
        )
    })
}

async fn get(conn: &mut Conn, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let statement = conn.statement(Kind::Get, space).await?;
    let row = conn
        .client
        .query_opt(&statement, &[&key])
        .await
        .map_err(|e| conn.failed(&format!("reading table {}", space.name()), e))?;
    row.map(|row| row_bytes(&row, 0, space)).transpose()
}

/// Up to `limit` rows with `key >= from`.
async fn scan_from(
    conn: &mut Conn,
    space: Space,
    from: &[u8],
    descending: bool,
    limit: i64,
) -> Result<Vec<Entry>> {
    let statement = conn.statement(Kind::ScanFrom(descending), space).await?;
    let rows = conn
        .client
        .query(&statement, &[&from, &limit])
        .await
        .map_err(|e| conn.failed(&format!("scanning table {}", space.name()), e))?;
    entries(rows, space)
}

fn entries(rows: Vec<tokio_postgres::Row>, space: Space) -> Result<Vec<Entry>> {
    rows.iter()
        .map(|row| Ok((row_bytes(row, 0, space)?, row_bytes(row, 1, space)?)))
        .collect()
}

impl Engine for PostgresEngine {
    fn transact(&self, work: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        let mut conn = self.pool.get()?;
        // Why one advisory lock, first: the rules of a commit read and then
        // write counters (arrival numbers gapless per recipient and year,
        // the archive log appended in order, idempotency and numbering
        // looked up before they are claimed). Within one process the
        // committer serialises writers; across front ends this lock does.
        // Taken before any read, under READ COMMITTED, every statement of
        // the transaction then sees everything committed before it got the
        // lock, so each writer works on the state its predecessor left, as
        // with one committer. (SERIALIZABLE would also be correct, but would
        // make front ends abort and retry each other's sends under load;
        // row locks would need every read to be `FOR UPDATE`, and a counter
        // that does not exist yet has no row to lock.) The isolation level
        // is named so that a database default cannot change it.
        block_on(conn.client.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE; SELECT pg_advisory_xact_lock({COMMIT_LOCK})"
        )))
        .map_err(|e| {
            // Whatever part of the batch ran, the session may be left in a
            // transaction: never lend it again.
            conn.broken = true;
            conn.failed(&format!("beginning a transaction at {}", self.at), e)
        })?;
        let mut txn = PgTxn::new(&mut conn);
        let mut wrote = false;
        let outcome = work(&mut txn).and_then(|()| match txn.take_failure() {
            // `work` went on past a failed statement: the SQL transaction
            // is aborted, and its COMMIT would quietly roll back.
            Some(e) => Err(e),
            None => {
                wrote = txn.has_writes();
                txn.flush()
            }
        });
        drop(txn);
        // Other front ends hear of the commit (see `listen`); the id is our
        // own digits and a dash, safe to quote.
        let commit = if wrote {
            format!(
                "SELECT pg_notify('{}', '{}'); COMMIT",
                listen::CHANNEL,
                self.id
            )
        } else {
            "COMMIT".to_string()
        };
        match outcome {
            Ok(()) => block_on(conn.client.batch_execute(&commit)).map_err(|e| {
                if e.as_db_error().is_some() {
                    Error::storage_from("PostgreSQL refused the commit", e)
                } else {
                    conn.broken = true;
                    Error::storage_from(
                        format!(
                            "PostgreSQL at {}: the connection failed during COMMIT, so whether the transaction took effect is unknown",
                            self.at
                        ),
                        e,
                    )
                }
            }),
            Err(e) => {
                if block_on(conn.client.batch_execute("ROLLBACK")).is_err() {
                    // The session is in doubt: never lend it again.
                    conn.broken = true;
                }
                Err(e)
            }
        }
    }

    /// Nothing to do: each `COMMIT` returned only once durable (see
    /// `check_durability`).
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut conn = self.pool.get()?;
        block_on(get(&mut conn, space, key))
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let descending = order == Order::Descending;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.pool.get()?;
        block_on(async {
            let Some(end) = end else {
                return scan_from(&mut conn, space, start, descending, limit).await;
            };
            let statement = conn.statement(Kind::ScanRange(descending), space).await?;
            let rows = conn
                .client
                .query(&statement, &[&start, &end, &limit])
                .await
                .map_err(|e| conn.failed(&format!("scanning table {}", space.name()), e))?;
            entries(rows, space)
        })
    }

    fn shared(&self) -> bool {
        true
    }

    /// A session-level advisory lock, on a session of its own held for
    /// the whole of `work` (which uses the pool); closing the session
    /// releases it, also if this front end dies meanwhile.
    fn exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let mut conn = self.pool.connector().connect()?;
        block_on(
            conn.client
                .batch_execute(&format!("SELECT pg_advisory_lock({OPEN_LOCK})")),
        )
        .map_err(|e| conn.failed("waiting for other front ends to finish opening", e))?;
        let outcome = work();
        drop(conn);
        outcome
    }

    /// Other front ends may write the same database: listen for their
    /// commits on a session of our own.
    fn watch_others(&self, wake: Wake) -> Result<bool> {
        let connector = self.pool.connector();
        listen::spawn(
            connector.runtime(),
            connector.config().clone(),
            self.id.clone(),
            wake,
        );
        Ok(true)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        // A connection of its own, outside the pool: a backup may read for
        // minutes and must not hold one that readers wait for.
        let conn = self.pool.connector().connect()?;
        Ok(Box::new(PgSnapshot::begin(conn, &self.at)?))
    }
}

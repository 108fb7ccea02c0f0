//! The database's schema, created and upgraded by numbered migrations when
//! the engine opens.
//!
//! `schema_migrations` lists the migrations applied. Every front end runs
//! this at start, possibly at the same moment as others: the whole of it
//! is one transaction under a transaction-scoped advisory lock
//! ([`MIGRATION_LOCK`]), so one front end applies what is missing while the
//! others wait, then find it applied. A database that has a migration this
//! build does not know was upgraded by a newer build: it is refused rather
//! than written with an older idea of the schema.
//!
//! A new keyspace is a new migration that creates its table (never an edit
//! of an applied one).

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::store::engine::Space;

/// The advisory lock that serialises migrations (distinct from the commit
/// lock, so that a migration never waits for traffic or the reverse).
const MIGRATION_LOCK: i64 = 0x6c69_656e_7468_6d67; // "lienthmg"

/// One migration: its number and what it does.
struct Migration {
    version: i32,
    sql: fn() -> String,
}

/// Every migration, in order; numbers are consecutive from 1.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: keyspace_tables,
}];

/// Version 1: one table per keyspace of this build.
fn keyspace_tables() -> String {
    Space::ALL
        .iter()
        .map(|space| {
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{}" (key bytea PRIMARY KEY, value bytea NOT NULL);"#,
                space.name()
            )
        })
        .collect()
}

/// The newest migration this build knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies what is missing; returns how many were applied.
pub(super) async fn migrate(client: &Client, at: &str) -> Result<usize> {
    let fail = |what: &str| {
        let what = format!("PostgreSQL at {at}: {what}");
        move |e: tokio_postgres::Error| Error::storage_from(what, e)
    };
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now());"
        ))
        .await
        .map_err(fail("cannot create the schema_migrations table (does the user own the database or its schema?)"))?;
    let outcome = apply_missing(client, at).await;
    let end = match outcome {
        Ok(_) => "COMMIT",
        Err(_) => "ROLLBACK",
    };
    client
        .batch_execute(end)
        .await
        .map_err(fail("cannot commit the schema migrations"))?;
    outcome
}

async fn apply_missing(client: &Client, at: &str) -> Result<usize> {
    let fail = |what: String| move |e: tokio_postgres::Error| Error::storage_from(what, e);
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(fail(format!(
            "PostgreSQL at {at}: reading schema_migrations"
        )))?;
    let current: i32 = row.try_get(0).map_err(fail(format!(
        "PostgreSQL at {at}: reading schema_migrations"
    )))?;
    if current > latest() {
        return Err(Error::storage(format!(
            "the database at {at} has schema migration {current}, this build knows up to {}: it was upgraded by a newer lienthong; run that one",
            latest()
        )));
    }
    let mut applied = 0;
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        client
            .batch_execute(&(migration.sql)())
            .await
            .map_err(fail(format!(
                "PostgreSQL at {at}: applying schema migration {}",
                migration.version
            )))?;
        client
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&migration.version],
            )
            .await
            .map_err(fail(format!(
                "PostgreSQL at {at}: recording schema migration {}",
                migration.version
            )))?;
        tracing::info!(version = migration.version, "applied a schema migration");
        applied += 1;
    }
    Ok(applied)
}

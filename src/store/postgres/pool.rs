//! Connections to PostgreSQL for synchronous callers: the engine's own
//! small tokio runtime drives each connection's I/O on a thread of its own,
//! and the engine's (blocking) methods wait for the client's answers with
//! [`block_on`].
//!
//! Why not the caller's runtime: the engine's methods are synchronous and
//! are called from the committer's OS thread as well as from tokio worker
//! threads, and tokio's `Handle::block_on` panics inside a runtime. The
//! client side of tokio-postgres (a `Client`'s futures) only exchanges
//! messages with its `Connection` over channels, so any thread may wait
//! for it; only the `Connection` (the socket) needs tokio, and it lives on
//! the engine's runtime.
//!
//! Why a fixed pool of our own rather than a pool crate (deadpool-postgres,
//! bb8): those are async (`pool.get().await`) and create connections on the
//! caller's runtime, which is exactly what a synchronous caller outside any
//! runtime cannot offer; wrapping one would be more code than this
//! `Mutex<Vec<_>>` and `Condvar`, and bring their dependencies.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::error::{Error, Result};
use crate::store::engine::Space;

/// Connections open at most at once. Readers are async handlers (one per
/// tokio worker at a time, as they block) and the committer's one writer;
/// a backup's snapshot takes a connection of its own outside the pool.
const MAX_CONNECTIONS: usize = 8;

/// How long to wait for the server to answer a connection attempt when the
/// URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `future` to completion on the calling thread, parking it between
/// polls. The futures given here are tokio-postgres client calls, which
/// need no runtime of their own (their I/O is on the engine's runtime), so a
/// plain thread-parking waker is all the executor they need: a dozen lines
/// rather than a crate.
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        // A wake before this park makes it return at once; a spurious
        // return only costs one more poll.
        std::thread::park();
    }
}

/// Where the database is, for messages: hosts and ports, never the
/// password.
pub(super) fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    let database = config.get_dbname().unwrap_or("(the user's database)");
    format!("{} database {database}", hosts.join(","))
}

/// The engine's runtime: one thread that drives every connection's socket.
/// Dropping it stops the thread, which closes the connections.
pub(super) struct Runtime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Runtime {
    pub(super) fn start() -> Result<Runtime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::storage_from("cannot start the PostgreSQL engine's runtime", e))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lienthong-postgres".into())
            .spawn(move || {
                // Runs the connections' tasks until told to stop; dropping
                // the runtime then ends them.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| Error::storage_from("cannot start the PostgreSQL engine's thread", e))?;
        Ok(Runtime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    statements: HashMap<(Kind, Space), Statement>,
    /// Set when a statement failed in a way that leaves the session in
    /// doubt (an I/O error, a failed ROLLBACK): the pool drops it.
    pub broken: bool,
}

/// The statements the engine prepares, per keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Get,
    /// `key >= $1` (`$2`: limit).
    ScanFrom(Descending),
    /// `$1 <= key < $2` (`$3`: limit).
    ScanRange(Descending),
    Upsert,
    Delete,
}

/// Whether a scan walks down.
pub(super) type Descending = bool;

impl Kind {
    fn sql(self, space: Space) -> String {
        let table = space.name();
        let order = |descending: Descending| if descending { "DESC" } else { "ASC" };
        match self {
            Kind::Get => format!(r#"SELECT value FROM "{table}" WHERE key = $1"#),
            Kind::ScanFrom(down) => format!(
                r#"SELECT key, value FROM "{table}" WHERE key >= $1 ORDER BY key {} LIMIT $2"#,
                order(down)
            ),
            Kind::ScanRange(down) => format!(
                r#"SELECT key, value FROM "{table}" WHERE key >= $1 AND key < $2 ORDER BY key {} LIMIT $3"#,
                order(down)
            ),
            Kind::Upsert => format!(
                r#"INSERT INTO "{table}" (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"#
            ),
            Kind::Delete => format!(r#"DELETE FROM "{table}" WHERE key = ANY($1)"#),
        }
    }
}

impl Conn {
    /// The statement of `kind` on `space`, prepared on first use.
    pub(super) async fn statement(&mut self, kind: Kind, space: Space) -> Result<Statement> {
        if let Some(statement) = self.statements.get(&(kind, space)) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&kind.sql(space)).await.map_err(|e| {
            self.failed(
                &format!("preparing a statement on table {}", space.name()),
                e,
            )
        })?;
        self.statements.insert((kind, space), statement.clone());
        Ok(statement)
    }

    /// The error of a failed statement, marking the connection broken if
    /// the failure was not the server's answer to the statement.
    pub(super) fn failed(&mut self, what: &str, e: tokio_postgres::Error) -> Error {
        if e.as_db_error().is_none() || self.client.is_closed() {
            self.broken = true;
        }
        Error::storage_from(format!("PostgreSQL: {what}"), e)
    }
}

/// Opens connections to one database.
pub(super) struct Connector {
    config: Config,
    runtime: Runtime,
}

impl Connector {
    pub(super) fn new(mut config: Config) -> Result<Connector> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("lienthong");
        }
        Ok(Connector {
            config,
            runtime: Runtime::start()?,
        })
    }

    pub(super) fn describe(&self) -> String {
        describe(&self.config)
    }

    /// The runtime that drives the connections' sockets.
    pub(super) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime.handle
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// A new connection, checked to be fit for the engine (see
    /// `check_durability`).
    pub(super) fn connect(&self) -> Result<Conn> {
        let config = self.config.clone();
        // Connecting opens a socket: on the engine's runtime. Its
        // connection task stays there, driving the socket, until the
        // client is dropped.
        let connecting = self.runtime.handle.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "a PostgreSQL connection ended with an error");
                }
            });
            Ok::<Client, tokio_postgres::Error>(client)
        });
        let client = block_on(connecting)
            .map_err(|e| Error::storage_from("the PostgreSQL engine's runtime stopped", e))?
            .map_err(|e| {
                Error::storage_from(
                    format!("cannot connect to PostgreSQL at {}", self.describe()),
                    e,
                )
            })?;
        let conn = Conn {
            client,
            statements: HashMap::new(),
            broken: false,
        };
        block_on(super::check_durability(&conn.client, &self.describe()))?;
        Ok(conn)
    }
}

/// A fixed-size pool of connections, opened as needed.
pub(super) struct Pool {
    idle: Mutex<Idle>,
    returned: Condvar,
    // Declared last: the connections above close before the runtime stops.
    connector: Connector,
}

struct Idle {
    conns: Vec<Conn>,
    /// Connections open, idle or lent.
    open: usize,
}

impl Pool {
    pub(super) fn new(connector: Connector) -> Pool {
        Pool {
            idle: Mutex::new(Idle {
                conns: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            connector,
        }
    }

    pub(super) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The pool's state, which a panic cannot leave half changed (each use
    /// is a push, a pop or a count).
    fn idle(&self) -> MutexGuard<'_, Idle> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection, waiting for one to be returned if all are lent.
    pub(super) fn get(&self) -> Result<Pooled<'_>> {
        let mut idle = self.idle();
        loop {
            while let Some(conn) = idle.conns.pop() {
                if conn.client.is_closed() {
                    // The server or the network ended it while idle.
                    idle.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if idle.open < MAX_CONNECTIONS {
                idle.open += 1;
                drop(idle);
                return match self.connector.connect() {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.idle().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// A connection lent by the pool; given back when dropped, unless broken.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Taken only in `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let mut idle = self.pool.idle();
        if conn.broken || conn.client.is_closed() {
            idle.open -= 1;
        } else {
            idle.conns.push(conn);
        }
        drop(idle);
        self.pool.returned.notify_one();
    }
}

//! The PostgreSQL test cluster that `bash tests/run` starts, and a fresh
//! database on it for each test.
//!
//! The cluster's URL comes from `LIENTHONG_TEST_POSTGRES`. Without it the
//! PostgreSQL half of a test fails, saying how to get one: a test that
//! skipped it would pass without having run.

use lienthong::store::postgres::PostgresUrl;

/// The variable that `tests/run` sets to its throw-away cluster's URL (a
/// superuser on its `postgres` database): `postgres://USER@HOST:PORT/postgres`.
pub const VARIABLE: &str = "LIENTHONG_TEST_POSTGRES";

/// The test cluster's URL.
pub fn cluster_url() -> String {
    std::env::var(VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{VARIABLE} is not set: the store's tests also run against PostgreSQL. Run them with \
             `bash tests/run` (e.g. `bash tests/run --test it store::`), which starts a throw-away \
             cluster and sets it, or set it to the URL of a superuser on a cluster of your own"
        )
    })
}

/// Runs `sql` (simple protocol, several statements allowed) on the
/// cluster's database `database`, on a thread and runtime of its own so
/// that any test, async or not, may call it.
pub fn execute(database: &str, sql: &str) -> Result<(), String> {
    let mut config: tokio_postgres::Config = cluster_url().parse().expect("the test cluster's URL");
    config.dbname(database);
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to the test cluster: {e}"))?;
            let driver = tokio::spawn(connection);
            let outcome = client.batch_execute(&sql).await.map_err(|e| e.to_string());
            drop(client);
            let _ = driver.await;
            outcome
        })
    })
    .join()
    .expect("the SQL thread")
}

/// A database of its own on the test cluster, made empty for one test and
/// dropped (with any connection still open to it) when this is dropped.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .expect("random");
        let name = format!("lienthong_test_{}", hex::encode(random));
        execute("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        TestDatabase { name }
    }

    /// The URL of this database: the cluster's, with its database (the
    /// last part of the path) replaced.
    pub fn url(&self) -> PostgresUrl {
        PostgresUrl::parse(&self.url_text()).expect("the test database's URL")
    }

    /// [`TestDatabase::url`] as text, as a command line takes it.
    pub fn url_text(&self) -> String {
        let cluster = cluster_url();
        let (base, query) = match cluster.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (cluster.as_str(), String::new()),
        };
        let (server, _) = base
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("{VARIABLE} must be a URL postgres://…/DATABASE"));
        format!("{server}/{}{query}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: the cluster is thrown away at the end of the run
        // anyway.
        if let Err(e) = execute(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("cannot drop test database {}: {e}", self.name);
        }
    }
}

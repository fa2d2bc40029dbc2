//! Fixtures for tests that need the PostgreSQL test server (feature `testing`; not for
//! production builds): every crate's PostgreSQL tests use these, so they all honour
//! `TRESOR_TEST_PG_URL`, fail at once with the command that starts the server when it is down,
//! and leave no schema behind.
//!
//! The server is `TRESOR_TEST_PG_URL`, by default `postgres://postgres@127.0.0.1:5432/test`
//! (trust authentication on the test machine).

use std::hash::{BuildHasher, Hasher};
use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

use crate::{PgStore, PgStoreOptions};

/// The server the PostgreSQL tests use unless `TRESOR_TEST_PG_URL` says otherwise.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How to start the test machine's server, for failure messages.
pub const PG_START_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect \
     $(ls /etc/postgresql) main start` (scripts/setup.sh does), or point TRESOR_TEST_PG_URL \
     at another server";

/// `TRESOR_TEST_PG_URL`, or the local test server.
pub fn pg_url() -> String {
    std::env::var("TRESOR_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

/// A schema name no other test uses: `tresor_t_` and 16 random hex digits.
pub fn random_schema() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded randomly per process; the counter and the clock keep names of one
    // process apart.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("tresor_t_{:016x}", h.finish())
}

/// Panics at once, with the command that starts the server, if nothing listens at the test
/// server's address (checked once per test binary; without it every test would wait out the
/// connect timeout).
#[allow(clippy::panic)]
pub fn require_pg() {
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = REACHABLE.get_or_init(|| {
        let url = pg_url();
        let opts = PgConnectOptions::from_str(&url)
            .map_err(|e| format!("TRESOR_TEST_PG_URL {url:?} is not a PostgreSQL URL: {e}"))?;
        if opts.get_host().starts_with('/') || opts.get_socket().is_some() {
            return Ok(()); // a Unix socket: let the connection itself report
        }
        let addrs = (opts.get_host(), opts.get_port())
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", opts.get_host()))?;
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    });
    if let Err(e) = probe {
        panic!("PostgreSQL is not reachable for the tests ({e}): {PG_START_HINT}");
    }
}

/// Connection settings of the test server, with `search_path` on `schema`.
#[allow(clippy::panic)]
pub fn pg_options(schema: &str) -> PgConnectOptions {
    let url = pg_url();
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("TRESOR_TEST_PG_URL {url:?} is not a PostgreSQL URL: {e}"))
        .options([("search_path", schema)])
}

/// A store on the test server in `schema` (created if missing) with `max_connections`; panics,
/// naming how to start the server, if it cannot connect.
#[allow(clippy::panic)]
pub async fn pg_store(schema: &str, max_connections: u32) -> PgStore {
    require_pg();
    let opts = PgStoreOptions {
        max_connections,
        schema: Some(schema.to_string()),
        connect_timeout: Duration::from_secs(10),
    };
    match PgStore::connect_with(&pg_url(), opts).await {
        Ok(store) => store,
        Err(e) => panic!("PostgreSQL is not usable for the tests ({e}): {PG_START_HINT}"),
    }
}

/// A schema of the test server that is dropped, with everything in it, when this goes.
#[derive(Debug)]
pub struct PgSchema {
    /// The schema's name (also in the change listener's `application_name`).
    pub name: String,
}

impl Default for PgSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl PgSchema {
    /// A fresh schema name (created by the first store opened on it).
    pub fn new() -> Self {
        require_pg();
        Self {
            name: random_schema(),
        }
    }

    /// A store on this schema with `max_connections`, as one more node of the cluster would
    /// open it (see [`pg_store`]).
    pub async fn store_with(&self, max_connections: u32) -> PgStore {
        pg_store(&self.name, max_connections).await
    }

    /// [`PgSchema::store_with`] the default number of connections.
    pub async fn store(&self) -> PgStore {
        self.store_with(PgStoreOptions::default().max_connections)
            .await
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let done = on_own_runtime(async move {
            let mut conn = PgConnection::connect_with(&pg_options("public")).await?;
            // A test that failed mid-transaction may still hold locks in the schema: do not
            // wait for them forever.
            sqlx::query("SET lock_timeout = '10s'")
                .execute(&mut conn)
                .await?;
            sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await
        });
        if let Err(e) = done {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// Runs `f` on a runtime of its own in a thread of its own: usable from synchronous tests and
/// from `Drop`, where blocking a runtime's worker on its own future would hang.
fn on_own_runtime<T, F>(f: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(f)
            .map_err(std::io::Error::other)
    })
    .join()
    .map_err(|_| std::io::Error::other("the database thread panicked"))?
}

/// A database of its own on the test server, for processes given a plain URL (`tresor hsm
/// --store postgres://…`); dropped, with its connections ended, when this goes.
#[derive(Debug)]
pub struct PgDatabase {
    /// The database's name.
    pub name: String,
    /// Its URL: the test server's with the database replaced.
    pub url: String,
}

impl PgDatabase {
    /// Creates a fresh database; panics, naming how to start the server, if it cannot.
    #[allow(clippy::panic)]
    pub fn create() -> PgDatabase {
        require_pg();
        let name = random_schema().replacen("tresor_t_", "tresor_db_", 1);
        let server = pg_url();
        let Some((base, _)) = server.rsplit_once('/') else {
            panic!("TRESOR_TEST_PG_URL {server:?} names no database");
        };
        let url = format!("{base}/{name}");
        let sql = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = on_own_runtime(async move {
            let mut conn = PgConnection::connect_with(&pg_options("public")).await?;
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
            conn.close().await
        }) {
            panic!("cannot create a test database on {server} ({e}): {PG_START_HINT}");
        }
        PgDatabase { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let done = on_own_runtime(async move {
            let mut conn = PgConnection::connect_with(&pg_options("public")).await?;
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
            conn.close().await
        });
        if let Err(e) = done {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

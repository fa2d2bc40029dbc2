//! What the store tests share: the two backends as fixtures, and row builders.
//!
//! PostgreSQL tests need the server of the test machine (`TRESOR_TEST_PG_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`). Each fixture works in a schema of its own with a
//! random name, dropped when the fixture goes, so tests run in parallel and leave nothing
//! behind. A server that cannot be reached fails the test, with the command that starts it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hash::{BuildHasher, Hasher};
use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};
use tempfile::TempDir;
use tresor_store::{
    AuditRow, CheckpointRow, Mutation, ObjectRow, PartitionRow, PgStore, PgStoreOptions,
    RequestRow, ServiceRow, SqliteOptions, SqliteStore, Store, StoreError, WriteBatch,
};

/// The server the PostgreSQL tests use.
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

/// Fail the test at once, with the command that starts the server, if nothing listens at the
/// test server's address (checked once per test binary; without it every test would wait out
/// the connect timeout).
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
pub fn pg_options(schema: &str) -> PgConnectOptions {
    let url = pg_url();
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("TRESOR_TEST_PG_URL {url:?} is not a PostgreSQL URL: {e}"))
        .options([("search_path", schema)])
}

/// A direct connection to the test server inside `schema` (for what the store does not offer).
pub async fn pg_connection(schema: &str) -> PgConnection {
    require_pg();
    PgConnection::connect_with(&pg_options(schema))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is not reachable ({e}): {PG_START_HINT}",
                pg_url()
            )
        })
}

/// A store on the test server in `schema`, or a failed test that says how to start the server.
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
    pub name: String,
}

impl PgSchema {
    pub fn new() -> Self {
        require_pg();
        Self {
            name: random_schema(),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop cannot await, and blocking a runtime's worker on its own future would hang: the
        // schema is dropped from a thread with a runtime of its own.
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
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
            })
            .map_err(std::io::Error::other)
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test schema {}: {e}", self.name),
            Err(_) => eprintln!("dropping test schema {} panicked", self.name),
        }
    }
}

/// Where a test's stores live: one database, several stores (nodes) on it.
pub enum Backend {
    Sqlite(TempDir),
    Postgres(PgSchema),
}

impl Backend {
    /// A fresh SQLite database file.
    pub async fn sqlite() -> Self {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh schema of the PostgreSQL test server.
    pub async fn postgres() -> Self {
        Backend::Postgres(PgSchema::new())
    }

    /// A new store on this backend's database: call it twice for two nodes (for SQLite, two
    /// pools on one file, as two processes would have).
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(dir) => Arc::new(
                SqliteStore::open_with(
                    &dir.path().join("tresor.db"),
                    SqliteOptions {
                        max_connections: 4,
                        ..Default::default()
                    },
                )
                .await
                .unwrap(),
            ),
            Backend::Postgres(schema) => Arc::new(pg_store(&schema.name, 4).await),
        }
    }
}

pub fn batch(ms: impl IntoIterator<Item = Mutation>) -> WriteBatch {
    WriteBatch {
        mutations: ms.into_iter().collect(),
    }
}

/// Anything a test holds a store by: a concrete store, `dyn Store`, `Arc<dyn Store>`.
pub trait AsStore {
    fn as_store(&self) -> &dyn Store;
}

impl<'a> AsStore for dyn Store + 'a {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

impl AsStore for Arc<dyn Store> {
    fn as_store(&self) -> &dyn Store {
        &**self
    }
}

impl AsStore for SqliteStore {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

impl AsStore for PgStore {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

pub async fn commit<S: AsStore + ?Sized>(
    store: &S,
    ms: impl IntoIterator<Item = Mutation>,
) -> Result<(), StoreError> {
    store.as_store().commit(batch(ms)).await
}

pub fn partition(id: i64, name: &str) -> PartitionRow {
    PartitionRow {
        id,
        name: name.into(),
        created: 1_700_000_000,
        version: 1,
        sealed: vec![id as u8; 48],
        so_failures: 0,
        user_failures: 0,
    }
}

pub fn object(partition_id: i64, object_id: i64) -> ObjectRow {
    ObjectRow {
        partition_id,
        object_id,
        version: 1,
        class: 3,
        key_type: Some(0x40),
        label: format!("label-{object_id}"),
        ckaid: object_id.to_be_bytes().to_vec(),
        uuid: format!("00000000-0000-4000-8000-{object_id:012x}"),
        usage_count: 0,
        sealed: vec![0xa5; 32],
    }
}

pub fn audit(partition_id: i64, seq: i64) -> AuditRow {
    AuditRow {
        partition_id,
        seq,
        time_ns: 1_700_000_000_000_000_000 + seq,
        actor: "so".into(),
        action: "object.create".into(),
        object_id: Some(seq),
        detail: format!("{{\"seq\":{seq}}}"),
        prev_hash: vec![(seq - 1) as u8; 32],
        hash: vec![seq as u8; 32],
    }
}

pub fn checkpoint(partition_id: i64, seq: i64) -> CheckpointRow {
    CheckpointRow {
        partition_id,
        seq,
        hash: vec![seq as u8; 32],
        time_ns: 42,
        signer_cert: vec![0x30, 0x82, 1, 2],
        signature: vec![9; 64],
    }
}

pub fn service(name: &str, user: &str, version: i64) -> ServiceRow {
    ServiceRow {
        name: name.into(),
        service_user: user.into(),
        record_json: format!("{{\"v\":{version}}}").into_bytes(),
        failures: 0,
        locked_until: 0,
        version,
    }
}

pub fn request(id: &str, tenant: &str, status: &str, created: i64) -> RequestRow {
    RequestRow {
        id: id.into(),
        tenant: tenant.into(),
        kind: "Sign".into(),
        status: status.into(),
        key_name: Some("k".into()),
        request_json: b"{}".to_vec(),
        approvals_json: b"[]".to_vec(),
        result: None,
        error: None,
        created,
        updated: created,
        executed: None,
        expires: Some(created + 600),
        version: 1,
    }
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, needle: &str) {
    match r {
        Err(StoreError::Conflict(msg)) => assert!(
            msg.contains(needle),
            "conflict message {msg:?} lacks {needle:?}"
        ),
        other => panic!("expected Conflict containing {needle:?}, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, needle: &str) {
    match r {
        Err(StoreError::NotFound(msg)) => assert!(
            msg.contains(needle),
            "not-found message {msg:?} lacks {needle:?}"
        ),
        other => panic!("expected NotFound containing {needle:?}, got {other:?}"),
    }
}

/// A store with partition 1 ("alpha") holding objects 1..=n.
pub async fn with_objects(store: &dyn Store, n: i64) {
    let mut ms = vec![Mutation::InsertPartition(partition(1, "alpha"))];
    ms.extend((1..=n).map(|i| Mutation::InsertObject(object(1, i))));
    commit(store, ms).await.unwrap();
}

//! What the store tests share: the two backends as fixtures, and row builders.
//!
//! PostgreSQL tests need the server of the test machine (`TRESOR_TEST_PG_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`). Each fixture works in a schema of its own with a
//! random name, dropped when the fixture goes, so tests run in parallel and leave nothing
//! behind. A server that cannot be reached fails the test, with the command that starts it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use sqlx::postgres::PgConnection;
use sqlx::Connection;
use tempfile::TempDir;
use tresor_store::{
    AuditRow, CheckpointRow, Mutation, ObjectRow, PartitionRow, PgStore, RequestRow, ServiceRow,
    SqliteOptions, SqliteStore, Store, StoreError, WriteBatch,
};

pub use tresor_store::testing::{
    pg_options, pg_store, pg_url, require_pg, PgSchema, PG_START_HINT,
};

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

/// Whether a change counter (`Store::partition_changes`, `Store::service_changes`) moves within
/// 5 s; the move is marked seen.
pub async fn moves(rx: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed()).await;
    rx.borrow_and_update();
    matches!(r, Ok(Ok(())))
}

/// Whether a change counter stays still for 300 ms.
pub async fn stays_still(rx: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(300), rx.changed())
        .await
        .is_err()
}

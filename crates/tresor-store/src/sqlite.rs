//! The embedded SQLite implementation of [`Store`].
//!
//! One database file in WAL mode. Reads use any connection of the pool and run concurrently;
//! every [`Store::commit`] runs in one `BEGIN IMMEDIATE` transaction, so the write lock is
//! taken up front and a batch never fails half-way on a lock upgrade. Inside one process,
//! writers are additionally queued on an async mutex so that they wait in order instead of
//! spinning in SQLite's busy handler; the 5 s busy timeout only matters when another process
//! writes the same file.
//!
//! The schema lives in `migrations/` and is embedded with [`sqlx::migrate!`]; it is applied
//! (idempotently) every time a store is opened.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::AssertSqlSafe;

use crate::sql::{check_new_requests, db_error, unique_violation, write_error, Unique};
use crate::{
    AuditRow, CheckpointRow, Mutation, ObjectFilter, ObjectRow, PartitionRow, RequestRow,
    ServiceRow, StoreError, StoreResult, WriteBatch,
};

/// The schema migrations, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a watched store reads the change counters (`migrations/0005`, `0006`), which is
/// how it learns of another process's service and partition changes (see
/// [`Store::service_changes`], [`Store::partition_changes`]).
pub const CHANGE_POLL: Duration = Duration::from_millis(200);

/// Both change counters, services first.
const COUNTERS_SQL: &str = "SELECT \
    (SELECT n FROM change_counters WHERE name = 'services'), \
    (SELECT n FROM change_counters WHERE name = 'partitions')";

/// One change counter: what this store has reported of it, and where.
#[derive(Debug)]
struct Counter {
    /// Moves when the counter is seen to grow past `seen`.
    changed: tokio::sync::watch::Sender<u64>,
    /// The highest value already accounted for.
    seen: AtomicI64,
}

impl Counter {
    fn new(at: i64) -> Self {
        Counter {
            changed: tokio::sync::watch::Sender::new(0),
            seen: AtomicI64::new(at),
        }
    }

    /// Accounts for `n`; true if it was new.
    fn advance(&self, n: i64) -> bool {
        self.seen.fetch_max(n, Ordering::AcqRel) < n
    }

    fn report(&self) {
        self.changed.send_modify(|c| *c = c.wrapping_add(1));
    }
}

/// The change counters of a store and its clones.
#[derive(Debug)]
struct Changes {
    services: Counter,
    partitions: Counter,
    /// The poll runs.
    polled: AtomicBool,
    /// A private in-memory database: no other process can change it, nothing to poll.
    private: bool,
}

/// Tuning of a [`SqliteStore`] opened with [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Use `synchronous = NORMAL` instead of `FULL`. Faster commits, but in WAL mode the last
    /// acknowledged transactions may be lost on power failure (never corrupted). Off by default:
    /// an acknowledged commit must survive power loss.
    pub synchronous_normal: bool,
    /// Size of the connection pool (at least 1). Reads run concurrently on up to this many
    /// connections; writes are serialized anyway.
    pub max_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_normal: false,
            max_connections: 8,
        }
    }
}

/// [`Store`] backed by an SQLite database.
///
/// Cloning is cheap and shares the pool.
///
/// One behaviour is worth knowing: [`Mutation::UpdateObject`] replaces every column except that
/// `usage_count` never goes down (the stored count is kept when it is larger than the row's).
/// [`Mutation::AddUsage`] does not change the object's version, so without this a concurrent
/// use between the engine's read and its compare-and-swap update would be lost, and a
/// usage limit could be bypassed.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Serializes this process's writers (see the module doc).
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// The change counters (see [`Store::service_changes`], [`Store::partition_changes`]).
    changes: Arc<Changes>,
}

/// True if `batch` adds, replaces or deletes a service.
fn touches_services(batch: &WriteBatch) -> bool {
    batch
        .mutations
        .iter()
        .any(|m| matches!(m, Mutation::PutService(_) | Mutation::DeleteService { .. }))
}

/// True if `batch` may move the partitions' change counter (a new version or a deletion).
fn touches_partitions(batch: &WriteBatch) -> bool {
    batch.mutations.iter().any(|m| {
        matches!(
            m,
            Mutation::UpdatePartition { .. } | Mutation::DeletePartition { .. }
        )
    })
}

impl SqliteStore {
    /// Open (and create if missing) the database at `path` with the default [`SqliteOptions`]
    /// (`synchronous = FULL`), and bring its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Open (and create if missing) the database at `path` with `opts`, and bring its schema up
    /// to date.
    pub async fn open_with(path: &Path, opts: SqliteOptions) -> StoreResult<Self> {
        let synchronous = if opts.synchronous_normal {
            SqliteSynchronous::Normal
        } else {
            SqliteSynchronous::Full
        };
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| db_error(format_args!("opening {}", path.display()), e))?;
        Self::init(pool, &path.display().to_string(), false).await
    }

    /// A private in-memory database (for tests): one connection that lives as long as the store.
    pub async fn memory() -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| db_error("in-memory database options", e))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // A single connection that is never recycled: closing it would drop the database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(|e| db_error("opening in-memory database", e))?;
        Self::init(pool, ":memory:", true).await
    }

    async fn init(pool: SqlitePool, name: &str, private: bool) -> StoreResult<Self> {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("migrating the schema of {name}: {e}")))?;
        let (services, partitions): (i64, i64) = sqlx::query_as(COUNTERS_SQL)
            .fetch_one(&pool)
            .await
            .map_err(|e| db_error("reading the change counters", e))?;
        Ok(Self {
            pool,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            changes: Arc::new(Changes {
                services: Counter::new(services),
                partitions: Counter::new(partitions),
                polled: AtomicBool::new(false),
                private,
            }),
        })
    }

    /// Reads the change counters inside a write transaction that may have moved them, so that
    /// the poll does not report this handle's own changes as another process's.
    async fn counters_in(
        conn: &mut SqliteConnection,
        batch: &WriteBatch,
    ) -> StoreResult<Option<(i64, i64)>> {
        if !touches_services(batch) && !touches_partitions(batch) {
            return Ok(None);
        }
        sqlx::query_as(COUNTERS_SQL)
            .fetch_one(&mut *conn)
            .await
            .map(Some)
            .map_err(|e| db_error("reading the change counters", e))
    }

    /// After a commit: account for the counters it left. A service change is reported at once
    /// (a gateway in this process acts on it); a partition change is this process's own, which
    /// its engine already knows.
    fn committed(&self, batch: &WriteBatch, counters: Option<(i64, i64)>) {
        let Some((services, partitions)) = counters else {
            return;
        };
        self.changes.services.advance(services);
        self.changes.partitions.advance(partitions);
        if touches_services(batch) {
            self.changes.services.report();
        }
    }

    /// Starts the poll of the change counters (once per store and its clones) on the current
    /// Tokio runtime, unless the database is private or there is no runtime.
    fn watch_counters(&self) {
        if self.changes.private || self.changes.polled.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(poll_changes(
                    self.pool.clone(),
                    Arc::downgrade(&self.changes),
                ));
            }
            Err(_) => self.changes.polled.store(false, Ordering::Release),
        }
    }

    /// Close every connection, waiting for running queries to finish (checkpoints the WAL).
    /// Calls made afterwards on this store or its clones fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

other_writes!(
    db = sqlx::Sqlite,
    error = StoreError,
    write = write_error,
    read = db_error,
    skip_locked = "",
);

apply_mutation!(
    ,
    conn = SqliteConnection,
    error = StoreError,
    write = write_error,
    read = db_error,
    unique = unique_rule,
    lock = "",
);

/// The uniqueness rule `e` broke, known by SQLite's message ("UNIQUE constraint failed:
/// table.column"). (A write transaction holds the whole database, so the partition row needs
/// no lock of its own before a partition is deleted.)
fn unique_rule(e: &sqlx::Error) -> Option<Unique> {
    let message = unique_violation(e)?.message();
    [
        ("partitions.name", Unique::PartitionName),
        ("services.name", Unique::ServiceName),
        ("services.service_user", Unique::ServiceUser),
    ]
    .into_iter()
    .find_map(|(column, rule)| message.contains(column).then_some(rule))
}

store_impl!(SqliteStore, {
    async fn set_service_failures(
        &self,
        service_user: &str,
        failures: i64,
        locked_until: i64,
    ) -> StoreResult<()> {
        // It goes through the writer queue like every other write so that it does not spin
        // against a running commit.
        let _writer = self.write_lock.lock().await;
        set_failure_counters(&self.pool, service_user, failures, locked_until).await
    }

    async fn insert_requests(&self, rows: &[RequestRow]) -> StoreResult<()> {
        check_new_requests(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        let _writer = self.write_lock.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error("starting a transaction", e))?;
        insert_request_rows(&mut tx, rows).await?;
        tx.commit()
            .await
            .map_err(|e| db_error("committing requests", e))
    }

    async fn update_request(&self, row: &RequestRow) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        update_request_row(&self.pool, row).await
    }

    async fn delete_finished_requests(
        &self,
        tenant: &str,
        created_before: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        // The limit bounds how long the write lock is held.
        let _writer = self.write_lock.lock().await;
        delete_finished_rows(&self.pool, tenant, created_before, limit).await
    }

    async fn commit(&self, batch: WriteBatch) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let _writer = self.write_lock.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error("starting a write transaction", e))?;
        for (i, m) in batch.mutations.iter().enumerate() {
            if let Err(err) = apply(&mut tx, m).await {
                tracing::debug!(mutation = i, error = %err, "store commit rolled back");
                if let Err(e) = tx.rollback().await {
                    // The connection is discarded by the pool; nothing was committed.
                    tracing::warn!(error = %e, "rolling back a failed store commit");
                }
                return Err(err);
            }
        }
        let counters = match Self::counters_in(&mut tx, &batch).await {
            Ok(c) => c,
            Err(err) => {
                if let Err(e) = tx.rollback().await {
                    tracing::warn!(error = %e, "rolling back a failed store commit");
                }
                return Err(err);
            }
        };
        tx.commit()
            .await
            .map_err(|e| db_error("committing a write transaction", e))?;
        self.committed(&batch, counters);
        Ok(())
    }

    async fn commit_chained(
        &self,
        batch: WriteBatch,
        partition_id: i64,
        chain: crate::ChainBuilder,
    ) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        // BEGIN IMMEDIATE takes SQLite's write lock now: no other process can append to the
        // chain between the head read below and the commit.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error("starting a write transaction", e))?;
        let result: StoreResult<Option<(i64, i64)>> = async {
            for m in &batch.mutations {
                apply(&mut tx, m).await?;
            }
            let head = sqlx::query(AUDIT_HEAD_SQL)
                .bind(partition_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| db_error("reading the audit head in a chained commit", e))?;
            let head = head.as_ref().map(audit_from_row).transpose()?;
            let cp: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM checkpoints WHERE partition_id = ?")
                    .bind(partition_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| db_error("reading the last checkpoint in a chained commit", e))?;
            let at = crate::ChainHead {
                seq: head.as_ref().map_or(0, |h| h.seq),
                hash: head.map(|h| h.hash),
                last_checkpoint: cp.unwrap_or(0),
            };
            let extra = chain(at).map_err(StoreError::Conflict)?;
            for m in &extra {
                apply(&mut tx, m).await?;
            }
            Self::counters_in(&mut tx, &batch).await
        }
        .await;
        let counters = match result {
            Ok(c) => c,
            Err(err) => {
                tracing::debug!(error = %err, "chained store commit rolled back");
                if let Err(e) = tx.rollback().await {
                    tracing::warn!(error = %e, "rolling back a failed store commit");
                }
                return Err(err);
            }
        };
        tx.commit()
            .await
            .map_err(|e| db_error("committing a write transaction", e))?;
        self.committed(&batch, counters);
        Ok(())
    }

    fn service_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        // Without the poll (private database, no runtime) this process's own changes are
        // still reported.
        self.watch_counters();
        Some(self.changes.services.changed.subscribe())
    }

    fn partition_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        if self.changes.private {
            return None;
        }
        self.watch_counters();
        Some(self.changes.partitions.changed.subscribe())
    }
});

/// Reads the change counters every [`CHANGE_POLL`] and reports each move that this store has
/// not accounted for: another process changed a service or a partition. Ends when the store
/// and all its clones are gone, or the pool is closed.
async fn poll_changes(pool: SqlitePool, changes: Weak<Changes>) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        // Checked before the query too, so that a database that keeps failing cannot keep
        // this task (and the pool it holds) alive after the store is gone.
        if pool.is_closed() || changes.strong_count() == 0 {
            return;
        }
        let (services, partitions): (i64, i64) = match sqlx::query_as(COUNTERS_SQL)
            .fetch_one(&pool)
            .await
        {
            Ok(n) => {
                if failing {
                    tracing::info!("reading the change counters works again");
                    failing = false;
                }
                n
            }
            Err(e) => {
                if !failing && !pool.is_closed() {
                    tracing::warn!(error = %e, "cannot read the change counters; other processes' changes arrive by the periodic comparisons only");
                    failing = true;
                }
                continue;
            }
        };
        let Some(changes) = changes.upgrade() else {
            return;
        };
        if changes.services.advance(services) {
            changes.services.report();
        }
        if changes.partitions.advance(partitions) {
            changes.partitions.report();
        }
    }
}

row_readers!(SqliteRow, sqlx::Sqlite);

/// The last audit entry of a partition (`?` = partition id).
const AUDIT_HEAD_SQL: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE partition_id = ? ORDER BY seq DESC LIMIT 1"
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sql::find_objects_sql;
    use sqlx::Row;

    /// The plan SQLite picks for a search: it must use the matching index, never walk the
    /// whole partition in primary-key order (see the comment on the indexes in the migration).
    async fn plan(store: &SqliteStore, filter: &ObjectFilter) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {}", find_objects_sql(filter));
        let placeholders = sql.matches('?').count();
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for _ in 0..placeholders {
            q = q.bind(1_i64);
        }
        let rows = q.fetch_all(&store.pool).await.unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn version_scan_reads_only_the_covering_index() {
        let store = SqliteStore::memory().await.unwrap();
        let rows = sqlx::query(
            "EXPLAIN QUERY PLAN SELECT object_id, version FROM objects WHERE partition_id = ? ORDER BY object_id",
        )
        .bind(1_i64)
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        let plan = plan.join("; ");
        assert!(plan.contains("COVERING INDEX objects_versions"), "{plan}");
    }

    #[tokio::test]
    async fn searches_use_their_index() {
        let store = SqliteStore::memory().await.unwrap();
        let cases = [
            (
                ObjectFilter {
                    label: Some("l".into()),
                    ..Default::default()
                },
                "objects_label",
            ),
            (
                ObjectFilter {
                    label: Some("l".into()),
                    after: Some(5),
                    limit: Some(10),
                    ..Default::default()
                },
                "objects_label",
            ),
            (
                ObjectFilter {
                    ckaid: Some(vec![1]),
                    ..Default::default()
                },
                "objects_ckaid",
            ),
            (
                ObjectFilter {
                    uuid: Some("u".into()),
                    ..Default::default()
                },
                "objects_uuid",
            ),
            (
                ObjectFilter {
                    class: Some(3),
                    key_type: Some(0),
                    ..Default::default()
                },
                "objects_class",
            ),
        ];
        for (filter, index) in cases {
            let plan = plan(&store, &filter).await;
            assert!(
                plan.contains(index),
                "{filter:?} does not use {index}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?} sorts: {plan}");
        }
    }
}

//! The PostgreSQL implementation of [`Store`]: the store of a cluster, where several HSM nodes,
//! REST nodes and gateways share one database.
//!
//! # Why the SQLite code could not be copied as is
//!
//! SQLite serialises writers, so a read followed by a write inside one of its transactions sees
//! no one in between. PostgreSQL (at READ COMMITTED, its default) runs writers side by side, so
//! every guarantee of the [`Store`] trait is rebuilt from what PostgreSQL itself makes atomic:
//!
//! - **Compare-and-swap** (partitions, objects, services, REST requests) is one conditional
//!   statement, `UPDATE … WHERE key AND version = $expected` (or `DELETE`), whose row count
//!   decides. When two nodes race on one row, the second waits for the first's row lock and then
//!   re-evaluates its `WHERE` on the row the first committed: the version no longer matches, it
//!   touches nothing, and only then is the row read again to tell `Conflict` from `NotFound`.
//!   Two writers therefore never both win a version, and a loser never overwrites a winner.
//! - **No lost updates of counters**: `AddUsage` is `usage_count = usage_count + n`, and the
//!   compare-and-swap of an object keeps `GREATEST(stored, given)`; both are computed on the
//!   latest committed row, after the row lock.
//! - **Uniqueness** (partition id and name, object id, audit `(partition, seq)`, checkpoint,
//!   cluster key, service name and user, request id) is a primary key or a named unique
//!   constraint. A second writer inserting the same key waits for the first and then fails
//!   with a unique violation, which becomes `Conflict`: an audit chain cannot fork.
//! - **Deleting a partition** first locks its row (`SELECT … FOR UPDATE`): an object insert,
//!   whose foreign-key check needs a share lock on that row, either finished before (and its
//!   object is deleted with the others) or fails afterwards with `NotFound`.
//! - **Chained commits** ([`Store::commit_chained`]) take a transaction-scoped advisory lock
//!   named after the schema and the partition before anything else, then read the chain's head.
//!   Chained writers of one partition thus run one after the other and each continues the head
//!   the previous one committed; writers of other partitions are not held up.
//! - **Deadlocks and serialization failures** (SQLSTATE 40P01, 40001) abort the whole
//!   transaction on the server, which leaves nothing applied; the attempt is run again, up to
//!   [`MAX_ATTEMPTS`] times with a short random pause, and then reported as `Conflict`. A batch
//!   is a list of mutations, not a closure, so running it again is exactly what a serialised
//!   store would have done. For a chained commit the chain builder is called at most once: a
//!   later attempt reuses its mutations if the head it finds is the one they were built on and
//!   gives `Conflict` otherwise.
//!
//! Every write transaction starts with `BEGIN ISOLATION LEVEL READ COMMITTED`, whatever the
//! server's `default_transaction_isolation`: the advisory lock above only helps if the head is
//! read with a snapshot taken after the lock was granted, which REPEATABLE READ would not give.
//!
//! # Schema and connections
//!
//! The schema lives in `migrations-pg/` (the version numbers of SQLite's `migrations/`, plus
//! 0005 and 0006 for change notifications) and is embedded with [`sqlx::migrate!`]; it is applied when
//! a store connects, under sqlx's database-wide advisory lock, so nodes starting together do
//! not run it twice. With
//! [`PgStoreOptions::schema`] everything, the migration bookkeeping included, lives in that
//! schema: each connection starts with `search_path` set to it, so several clusters (or tests)
//! can share one database.
//!
//! The URL's password never appears in an error or in `Debug` output: errors name the server
//! with the password replaced by `***`.
//!
//! # Change notifications
//!
//! A trigger (migration 0005) sends `NOTIFY tresor_partitions, '<schema> <id>'` when a
//! partition's sealed record changes or the partition is deleted, another (0006)
//! `NOTIFY tresor_services, '<schema> <service user>'` when a service is added, changed or
//! deleted; both are delivered when the writing transaction commits.
//! [`Store::partition_changes`] and [`Store::service_changes`] share one listening connection
//! per store (and its clones), opened on first use, which turns each notification for its own
//! schema into a move of the channel's watch counter: nodes then compare their loaded
//! partitions, gateways drop their cached directory entries. A lost listening connection is
//! opened again, with one move of both counters (notifications may have been missed); whether
//! it is up is [`Store::listening`], and losing it or getting it back is logged once each.
//!
//! Needs PostgreSQL 11 or later (`hashtextextended`, `EXECUTE FUNCTION`).
//!
//! # TLS
//!
//! sqlx is built with rustls (aws-lc-rs) and the Mozilla root certificates, and the URL's
//! libpq parameters choose: `sslmode=disable | prefer` (the default: TLS if the server offers
//! it, certificate not checked) `| require` (TLS or nothing, certificate not checked) `|
//! verify-ca` (the chain must end at a trusted root) `| verify-full` (and the certificate must
//! name the host), with `sslrootcert=PATH` for a private CA, `sslcert=`/`sslkey=` for a client
//! certificate. A database reached over a network should use `verify-full`. The store logs, on
//! connecting, what protects its connections (`TLSv1.3 TLS_AES_256_GCM_SHA384`, or a warning
//! when a connection to another host is not encrypted); [`PgStore::transport_security`] asks the
//! server again.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

use crate::{
    AuditRow, ChainBuilder, ChainHead, CheckpointRow, Mutation, ObjectFilter, ObjectRow,
    PartitionRow, RequestRow, ServiceRow, StoreError, StoreResult, WriteBatch,
};

mod rows;
mod url;
pub use url::redact_url;
mod write;

use crate::sql::{check_new_requests, db_error, write_error};
use rows::{
    audit_from_row, checkpoint_from_row, get, object_from_row, partition_from_row,
    request_from_row, service_from_row, AUDIT_HEAD_SQL,
};
use url::{redact, url_secrets};
use write::apply;

/// The schema migrations, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations-pg");

/// How often a transaction the server aborted as a deadlock victim (or for a serialization
/// failure) is run before the caller gets `Conflict`.
const MAX_ATTEMPTS: u32 = 8;

/// How a write transaction starts (see the module doc for why the level is explicit).
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// SQLSTATEs after which the server has rolled the transaction back and running it again is
/// safe: serialization_failure and deadlock_detected.
const RETRYABLE_STATES: [&str; 2] = ["40001", "40P01"];

/// Tuning of a [`PgStore`] connected with [`PgStore::connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStoreOptions {
    /// Size of the connection pool (at least 1). Each node of a cluster has its own pool, and
    /// one more connection while it listens for partition changes, so the server's
    /// `max_connections` must cover the sum.
    pub max_connections: u32,
    /// Keep every table in this schema (created if missing) instead of the server's default
    /// `search_path`. Lower-case ASCII letters, digits and `_`, not starting with a digit, at
    /// most 63 bytes (what PostgreSQL keeps of a name).
    pub schema: Option<String>,
    /// How long connecting may take, the server being down included (connecting is retried
    /// while the server refuses connections). Also how long a call waits for a free connection
    /// of the pool before it fails.
    pub connect_timeout: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            schema: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// [`Store`] backed by a PostgreSQL database shared by the nodes of a cluster.
///
/// Cloning is cheap and shares the pool. As with [`SqliteStore`](crate::SqliteStore),
/// [`Mutation::UpdateObject`] never lowers the stored `usage_count`.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL with its password replaced, for messages.
    shown: String,
    schema: Option<String>,
    /// The `LISTEN` task behind [`Store::partition_changes`] and [`Store::service_changes`],
    /// started on first use and stopped with the last clone.
    changes: Arc<OnceLock<Changes>>,
    /// How the listening connection connects: one of its own, outside `pool`.
    listen: PgConnectOptions,
}

/// What [`Store::partition_changes`] and [`Store::service_changes`] hand out, and the task
/// that feeds them.
struct Changes {
    partitions: tokio::sync::watch::Receiver<u64>,
    services: tokio::sync::watch::Receiver<u64>,
    /// The listening connection is up and listening on both channels.
    up: Arc<std::sync::atomic::AtomicBool>,
    _task: AbortOnDrop,
}

/// The senders of [`Changes`], held by the listening task.
struct ChangeFeed {
    partitions: tokio::sync::watch::Sender<u64>,
    services: tokio::sync::watch::Sender<u64>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

fn bump(tx: &tokio::sync::watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The channel the `partitions_changed` trigger notifies (migration 0005).
const PARTITIONS_CHANNEL: &str = "tresor_partitions";
/// The channel the `services_changed` trigger notifies (migration 0006).
const SERVICES_CHANNEL: &str = "tresor_services";

/// Listen for partition and service changes in this store's schema and move the matching
/// counter of `feed` for each (and both each time listening starts again: what happened
/// meanwhile was missed). Runs until aborted. Losing the connection is a warning once, and
/// getting it back an info line once: meanwhile nodes and gateways fall back to polling.
async fn listen_changes(pool: PgPool, feed: ChangeFeed) {
    use std::sync::atomic::Ordering;
    let pause = Duration::from_secs(1);
    let schema: String = loop {
        match sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
        {
            Ok(s) => break s,
            Err(e) => {
                tracing::debug!(error = %e, "change listener: no schema yet");
                tokio::time::sleep(pause).await;
            }
        }
    };
    // Whether a failure was already reported since listening last worked.
    let mut reported = false;
    let failed = |what: &str, e: &sqlx::Error, reported: &mut bool| {
        feed.up.store(false, Ordering::Release);
        if *reported {
            tracing::debug!(error = %e, "change listener: {what}");
        } else {
            *reported = true;
            tracing::warn!(error = %e,
                "change listener: {what}; other nodes' changes are seen at the next poll until it is back");
        }
    };
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                failed("cannot connect", &e, &mut reported);
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if let Err(e) = listener
            .listen_all([PARTITIONS_CHANNEL, SERVICES_CHANNEL])
            .await
        {
            failed("LISTEN failed", &e, &mut reported);
            tokio::time::sleep(pause).await;
            continue;
        }
        bump(&feed.partitions);
        bump(&feed.services);
        feed.up.store(true, Ordering::Release);
        if reported {
            reported = false;
            tracing::info!("change listener: listening again");
        }
        loop {
            // `try_recv`, not `recv`: `recv` reconnects on its own and would hide the loss (and
            // with it the notifications missed meanwhile, which need a move).
            match listener.try_recv().await {
                Ok(None) => {
                    let e = sqlx::Error::Protocol("the listening connection was closed".into());
                    failed("connection lost", &e, &mut reported);
                    break;
                }
                Ok(Some(n)) => {
                    if n.payload().split(' ').next() != Some(schema.as_str()) {
                        continue;
                    }
                    match n.channel() {
                        PARTITIONS_CHANNEL => bump(&feed.partitions),
                        SERVICES_CHANNEL => bump(&feed.services),
                        _ => {}
                    }
                }
                Err(e) => {
                    failed("connection lost", &e, &mut reported);
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

impl std::fmt::Debug for PgStore {
    // The pool's options hold the password: only the redacted URL is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .field("schema", &self.schema)
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// Why one attempt at a transaction failed.
#[derive(Debug)]
enum Failure {
    /// The answer: report it.
    Final(StoreError),
    /// The server aborted the transaction (deadlock victim, serialization failure); nothing was
    /// applied and the attempt may run again.
    Retry(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Final(e)
    }
}

type Attempt<T> = Result<T, Failure>;

other_writes!(
    db = sqlx::Postgres,
    error = Failure,
    write = write_failure,
    read = db_failure,
    skip_locked = " FOR UPDATE SKIP LOCKED",
);

impl PgStore {
    /// The change listener, started on first use (see the module doc). Spawning needs a
    /// runtime: without one (not the case in Tresor's processes) there is no listener, and
    /// polling alone tells.
    fn changes(&self) -> Option<&Changes> {
        if let Some(c) = self.changes.get() {
            return Some(c);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.changes.get_or_init(|| {
            let (partitions_tx, partitions) = tokio::sync::watch::channel(0u64);
            let (services_tx, services) = tokio::sync::watch::channel(0u64);
            let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
            // A pool of one, apart from the store's: listening never takes a connection
            // that queries need.
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(self.listen.clone());
            let feed = ChangeFeed {
                partitions: partitions_tx,
                services: services_tx,
                up: up.clone(),
            };
            let task = runtime.spawn(listen_changes(pool, feed));
            Changes {
                partitions,
                services,
                up,
                _task: AbortOnDrop(task.abort_handle()),
            }
        }))
    }

    /// Connect to the database at `url` (`postgres://user:password@host:port/database`, the
    /// options of [`PgConnectOptions`]) with the default [`PgStoreOptions`], and bring its
    /// schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, PgStoreOptions::default()).await
    }

    /// Connect to the database at `url` with `opts`, create the schema if one is named and
    /// missing, and bring the tables up to date.
    pub async fn connect_with(url: &str, opts: PgStoreOptions) -> StoreResult<Self> {
        let secrets = url_secrets(url);
        let shown = redact_url(url);
        let fail = |what: &str, e: &dyn Display| {
            StoreError::Database(redact(
                &format!("{what} PostgreSQL at {shown}: {e}"),
                &secrets,
            ))
        };
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| fail("bad URL for", &e))?;
        if connect.get_application_name().is_none() {
            connect = connect.application_name("tresor");
        }
        if let Some(schema) = &opts.schema {
            check_schema_name(schema)?;
            connect = connect.options([("search_path", quoted(schema))]);
        }

        // One connection first: it tells "server down" from "bad settings" (the pool would only
        // report a timeout) and creates the schema the pool's connections will search.
        let mut conn = first_connection(&connect, opts.connect_timeout)
            .await
            .map_err(|e| fail("connecting to", &e))?;
        if let Some(schema) = &opts.schema {
            create_schema(&mut conn, schema)
                .await
                .map_err(|e| fail(&format!("creating schema {schema:?} on"), &e))?;
        }
        match transport_security(&mut conn).await {
            Ok(Some(tls)) => tracing::info!(store = %shown, tls = %tls, "connected to PostgreSQL"),
            Ok(None) if is_local_host(connect.get_host()) => {
                tracing::info!(store = %shown, "connected to PostgreSQL on this machine without TLS");
            }
            Ok(None) => tracing::warn!(
                store = %shown,
                "the connection to PostgreSQL is not encrypted: add sslmode=verify-full (and \
                 sslrootcert=PATH for a private CA) to the URL"
            ),
            Err(e) => tracing::debug!(error = %e, "pg_stat_ssl could not be read"),
        }
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing the first connection");
        }

        // Named apart in `pg_stat_activity` (and per schema: clusters sharing a database).
        let app = connect
            .get_application_name()
            .unwrap_or("tresor")
            .to_owned();
        let listen = connect.clone().application_name(&match &opts.schema {
            Some(schema) => format!("{app} listener {schema}"),
            None => format!("{app} listener"),
        });
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.connect_timeout)
            .connect_lazy_with(connect);
        // Through the pool, not the connection above: `Migrator::run` on a bare connection
        // makes this future non-`Send`, and callers spawn it.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| fail("migrating the schema of", &e))?;
        Ok(Self {
            pool,
            shown,
            schema: opts.schema,
            changes: Arc::new(OnceLock::new()),
            listen,
        })
    }

    /// What protects this store's connections, as the server reports one of them
    /// (`pg_stat_ssl`): the TLS version and cipher, e.g. `TLSv1.3 TLS_AES_256_GCM_SHA384`, or
    /// `None` for an unencrypted connection.
    pub async fn transport_security(&self) -> StoreResult<Option<String>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_error("taking a connection", e))?;
        transport_security(&mut conn)
            .await
            .map_err(|e| db_error("reading pg_stat_ssl", e))
    }

    /// The schema the tables live in, if one was named.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Close every connection, waiting for running queries to finish. Calls made afterwards on
    /// this store or its clones fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Run `attempt` until it succeeds, fails for good, or was aborted [`MAX_ATTEMPTS`] times.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut n = 1;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(failure) => again(what, n, failure).await?,
            }
            n += 1;
        }
    }

    /// Start a write transaction.
    async fn begin(&self) -> Attempt<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool
            .begin_with(BEGIN)
            .await
            .map_err(|e| db_failure("starting a write transaction", e))
    }

    /// One attempt at [`Store::commit`].
    async fn commit_once(&self, batch: &WriteBatch) -> Attempt<()> {
        let mut tx = self.begin().await?;
        for (i, m) in batch.mutations.iter().enumerate() {
            if let Err(err) = apply(&mut tx, m).await {
                tracing::debug!(mutation = i, error = ?err, "store commit rolled back");
                rollback(tx).await;
                return Err(err);
            }
        }
        tx.commit()
            .await
            .map_err(|e| db_failure("committing a write transaction", e))
    }

    /// One attempt at [`Store::commit_chained`]. `chain` is taken on the first attempt that gets
    /// that far; `built` keeps what it returned, and on which head, for later attempts.
    async fn chained_once(
        &self,
        batch: &WriteBatch,
        partition_id: i64,
        chain: &mut Option<ChainBuilder>,
        built: &mut Option<(ChainHead, Vec<Mutation>)>,
    ) -> Attempt<()> {
        let mut tx = self.begin().await?;
        let result: Attempt<()> = async {
            // First, so that no row lock of the batch is held while waiting for the chain.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtextextended(\
                 'tresor audit chain ' || current_schema() || ' ' || $1::text, 0))",
            )
            .bind(partition_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_failure("locking the audit chain", e))?;
            for m in &batch.mutations {
                apply(&mut tx, m).await?;
            }
            let head = sqlx::query(AUDIT_HEAD_SQL)
                .bind(partition_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| db_failure("reading the audit head in a chained commit", e))?;
            let head = head.as_ref().map(audit_from_row).transpose()?;
            let cp: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM checkpoints WHERE partition_id = $1")
                    .bind(partition_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| {
                        db_failure("reading the last checkpoint in a chained commit", e)
                    })?;
            let at = ChainHead {
                seq: head.as_ref().map_or(0, |h| h.seq),
                hash: head.map(|h| h.hash),
                last_checkpoint: cp.unwrap_or(0),
            };
            let extra = match (built.as_ref(), chain.take()) {
                (Some((was, extra)), _) if *was == at => extra.clone(),
                (Some((was, _)), _) => {
                    return Err(StoreError::Conflict(format!(
                        "the audit chain of partition {partition_id} moved from seq {} to {} \
                         while a chained commit was run again",
                        was.seq, at.seq
                    ))
                    .into());
                }
                (None, Some(chain)) => {
                    let extra = chain(at.clone()).map_err(StoreError::Conflict)?;
                    *built = Some((at, extra.clone()));
                    extra
                }
                (None, None) => {
                    return Err(StoreError::Database(
                        "chained commit: the chain builder was already used".into(),
                    )
                    .into());
                }
            };
            for m in &extra {
                apply(&mut tx, m).await?;
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::debug!(error = ?err, "chained store commit rolled back");
            rollback(tx).await;
            return Err(err);
        }
        tx.commit()
            .await
            .map_err(|e| db_failure("committing a write transaction", e))
    }

    /// One attempt at [`Store::insert_requests`].
    async fn insert_requests_once(&self, rows: &[RequestRow]) -> Attempt<()> {
        let mut tx = self.begin().await?;
        if let Err(e) = insert_request_rows(&mut tx, rows).await {
            rollback(tx).await;
            return Err(e);
        }
        tx.commit()
            .await
            .map_err(|e| db_failure("committing requests", e))
    }
}

/// After attempt `n` at `what` failed: `Ok` (having paused) if it may run again, else the error
/// to report. Aborted attempts become `Conflict` once [`MAX_ATTEMPTS`] is reached: the caller
/// (the engine) treats that like a lost race and re-reads.
async fn again(what: &str, n: u32, failure: Failure) -> StoreResult<()> {
    match failure {
        Failure::Final(e) => Err(e),
        Failure::Retry(msg) if n >= MAX_ATTEMPTS => Err(StoreError::Conflict(format!(
            "{what}: aborted by the server {n} times, last: {msg}"
        ))),
        Failure::Retry(msg) => {
            tracing::debug!(attempt = n, error = %msg, "{what}: running it again");
            pause(n).await;
            Ok(())
        }
    }
}

/// Open one connection, retrying while the server refuses connections or is starting up,
/// until `timeout` has passed. The last error is kept so that a timeout says what went wrong.
async fn first_connection(
    connect: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection, String> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match tokio::time::timeout(left, PgConnection::connect_with(connect)).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) if server_not_ready(&e) => e.to_string(),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => format!("no answer within {} ms", timeout.as_millis()),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "gave up after {} ms; last error: {last}",
                timeout.as_millis()
            ));
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// True for the errors of a server that is down or still starting.
/// The TLS version and cipher of `conn`, or `None` if it is not encrypted.
async fn transport_security(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(bool, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some((true, version, cipher)) => {
            let version = version.unwrap_or_else(|| "TLS".into());
            Some(match cipher {
                Some(c) => format!("{version} {c}"),
                None => version,
            })
        }
        _ => None,
    })
}

/// A Unix socket directory, `localhost` or a loopback address: no network in between.
fn is_local_host(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn server_not_ready(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        // cannot_connect_now (starting up), too_many_connections.
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("57P03" | "53300")),
        _ => false,
    }
}

/// `CREATE SCHEMA IF NOT EXISTS`, tolerating a node that created it at the same moment (the
/// statement is not race-free: both may pass the check and one then hits the catalog's
/// unique index).
async fn create_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quoted(schema));
    match sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if matches!(d.code().as_deref(), Some("23505" | "42P06")) => {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Refuse schema names that would need more than double quotes to be safe in SQL and in the
/// connection's startup options.
fn check_schema_name(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "schema name {schema:?}: use 1 to 63 lower-case ASCII letters, digits and '_', \
             not starting with a digit"
        )))
    }
}

/// A checked schema name as an SQL identifier.
fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// Sleep before attempt `n + 1`: a few milliseconds, doubling, with jitter so that two deadlock
/// victims do not collide again in lockstep.
async fn pause(n: u32) {
    use std::hash::{BuildHasher, Hasher};
    let base_ms = 2u64 << n.min(5); // 4 ms … 64 ms
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % base_ms.max(1);
    tokio::time::sleep(Duration::from_millis(base_ms / 2 + jitter)).await;
}

async fn rollback(tx: sqlx::Transaction<'static, sqlx::Postgres>) {
    if let Err(e) = tx.rollback().await {
        // The connection is discarded by the pool; nothing was committed.
        tracing::warn!(error = %e, "rolling back a failed store commit");
    }
}

store_impl!(PgStore, {
    fn partition_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.changes().map(|c| c.partitions.clone())
    }

    fn service_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.changes().map(|c| c.services.clone())
    }

    fn listening(&self) -> Option<bool> {
        let c = self.changes.get()?;
        Some(c.up.load(std::sync::atomic::Ordering::Acquire))
    }

    async fn set_service_failures(
        &self,
        service_user: &str,
        failures: i64,
        locked_until: i64,
    ) -> StoreResult<()> {
        self.retrying("setting lockout counters", || {
            set_failure_counters(&self.pool, service_user, failures, locked_until)
        })
        .await
    }

    async fn commit(&self, batch: WriteBatch) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.retrying("store commit", || self.commit_once(&batch))
            .await
    }

    async fn insert_requests(&self, rows: &[RequestRow]) -> StoreResult<()> {
        check_new_requests(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        self.retrying("inserting requests", || self.insert_requests_once(rows))
            .await
    }

    async fn update_request(&self, row: &RequestRow) -> StoreResult<()> {
        self.retrying("updating a request", || update_request_row(&self.pool, row))
            .await
    }

    async fn delete_finished_requests(
        &self,
        tenant: &str,
        created_before: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        // SKIP LOCKED lets two nodes clean up at once without waiting for each other.
        self.retrying("deleting finished requests", || {
            delete_finished_rows(&self.pool, tenant, created_before, limit)
        })
        .await
    }

    async fn commit_chained(
        &self,
        batch: WriteBatch,
        partition_id: i64,
        chain: ChainBuilder,
    ) -> StoreResult<()> {
        let mut chain = Some(chain);
        let mut built = None;
        let mut n = 1;
        loop {
            match self
                .chained_once(&batch, partition_id, &mut chain, &mut built)
                .await
            {
                Ok(()) => return Ok(()),
                Err(failure) => again("chained store commit", n, failure).await?,
            }
            n += 1;
        }
    }
});

/// True if the server aborted the transaction in a way that makes running it again safe.
fn retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.code().is_some_and(|c| RETRYABLE_STATES.contains(&c.as_ref())))
}

/// Map an error of a write: uniqueness violations become `Conflict`, a missing referenced row
/// (an object of an unknown partition) `NotFound`, an aborted transaction a retry, anything else
/// `Database`.
fn write_failure(what: impl Display, e: sqlx::Error) -> Failure {
    if retryable(&e) {
        return Failure::Retry(format!("{what}: {e}"));
    }
    Failure::Final(write_error(what, e))
}

/// A database failure while doing `what` inside a transaction.
fn db_failure(what: impl Display, e: sqlx::Error) -> Failure {
    if retryable(&e) {
        return Failure::Retry(format!("{what}: {e}"));
    }
    Failure::Final(db_error(what, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sql::find_objects_sql;

    /// Binaries open the store inside spawned tasks: the futures must be `Send` (they are
    /// only built here, never run).
    #[test]
    fn connecting_can_be_spawned() {
        fn send<T: Send>(_: T) {}
        send(PgStore::connect("postgres://u@h/d"));
        send(PgStore::connect_with(
            "postgres://u@h/d",
            PgStoreOptions::default(),
        ));
        send(crate::open_store("postgres://u@h/d"));
    }

    #[test]
    fn schema_names_are_checked() {
        for ok in ["tresor", "_t", "tresor_t_0a1b", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "Tresor", "a-b", "a\"b", "a b", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_sql_numbers_its_parameters_in_bind_order() {
        let all = ObjectFilter {
            class: Some(1),
            key_type: Some(2),
            label: Some("l".into()),
            ckaid: Some(vec![1]),
            uuid: Some("u".into()),
            limit: Some(3),
            after: Some(4),
        };
        let sql = find_objects_sql(&all);
        assert!(
            sql.ends_with(
                "WHERE partition_id = $1 AND class = $2 AND key_type = $3 AND label = $4 \
                 AND ckaid = $5 AND uuid = $6 AND object_id > $7 ORDER BY object_id LIMIT $8"
            ),
            "{sql}"
        );
        let some = ObjectFilter {
            label: Some("l".into()),
            limit: Some(3),
            ..Default::default()
        };
        assert!(
            find_objects_sql(&some)
                .ends_with("partition_id = $1 AND label = $2 ORDER BY object_id LIMIT $3"),
            "{}",
            find_objects_sql(&some)
        );
    }
}

//! Tresor's persistence layer.
//!
//! The store is **untrusted**: it only ever sees sealed blobs (AES-256-GCM under keys it never
//! has) and the clear metadata needed to find them (label, CKA_ID, class, key type, version,
//! usage counter) plus the audit chain, which is public by design and protected by hashes and
//! signed checkpoints. The engine (`tresor-core`) verifies everything it reads.
//!
//! Writes go through one call, [`Store::commit`], that applies a [`WriteBatch`] atomically: an
//! operation's state change and its audit entries commit together or not at all. Updates and
//! deletes of objects are compare-and-swap on the object's version, and audit entries are keyed
//! by `(partition, seq)`, so two writers can never fork a chain or lose an update.
//!
//! Two implementations: [`SqliteStore`], one embedded database file (the default), and
//! [`PgStore`], a PostgreSQL database that the nodes of a cluster share. They are held to the
//! same behaviour by one set of tests (`tests/behaviour.rs`); [`open_store`] picks one from a
//! spec string.

#![forbid(unsafe_code)]

#[macro_use]
mod sql;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use postgres::{redact_url, PgStore, PgStoreOptions};
pub use sqlite::{SqliteOptions, SqliteStore, CHANGE_POLL as SQLITE_CHANGE_POLL};

use async_trait::async_trait;

/// Open the store named by `spec`: a `postgres://` or `postgresql://` URL connects a
/// [`PgStore`] (default [`PgStoreOptions`]), anything else is the path of an SQLite database
/// file, opened (and created if missing) with [`SqliteStore::open`]. Either way the schema is
/// brought up to date.
pub async fn open_store(spec: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if is_postgres_url(spec) {
        Ok(std::sync::Arc::new(PgStore::connect(spec).await?))
    } else {
        Ok(std::sync::Arc::new(
            SqliteStore::open(std::path::Path::new(spec)).await?,
        ))
    }
}

/// True if `spec` is a PostgreSQL URL (the scheme is case-insensitive, as in any URL).
pub fn is_postgres_url(spec: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        spec.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// Partition id 0 is the cluster itself: its audit chain records partition creation and deletion.
pub const CLUSTER_PARTITION: i64 = 0;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A compare-and-swap or uniqueness condition failed: someone else changed the row, or
    /// the key (label of a partition, object id, audit seq) already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row to update or delete does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed (I/O, corruption, connection).
    #[error("database: {0}")]
    Database(String),
}

/// The store's result type.
pub type StoreResult<T> = Result<T, StoreError>;

/// One partition (a subscriber's HSM user / token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    /// Random non-zero id, unique in the cluster.
    pub id: i64,
    /// Unique name (token label).
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    /// Increases on each update of `sealed`; updates are compare-and-swap on it.
    pub version: i64,
    /// The sealed partition record (partition key wrapped by the master key, PIN hashes,
    /// attestation key, settings, the object-version digest).
    pub sealed: Vec<u8>,
    /// Consecutive wrong SO PINs (clear: must change without re-sealing).
    pub so_failures: i64,
    /// Consecutive wrong user PINs.
    pub user_failures: i64,
}

/// One object (key, certificate or data object) of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub partition_id: i64,
    /// Random non-zero id, unique within the partition.
    pub object_id: i64,
    /// Increases on every change; the sealed blob's associated data binds it.
    pub version: i64,
    /// `CKO_*` value.
    pub class: i64,
    /// `CKK_*` value, `None` for certificates and data objects.
    pub key_type: Option<i64>,
    /// `CKA_LABEL` (may be empty).
    pub label: String,
    /// `CKA_ID` (may be empty).
    pub ckaid: Vec<u8>,
    /// Hyphenated UUID.
    pub uuid: String,
    /// Number of uses (sign, decrypt, …); clear so that a use does not re-seal.
    pub usage_count: i64,
    /// The sealed object record.
    pub sealed: Vec<u8>,
}

/// Search criteria for [`Store::find_objects`]; every `Some` field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFilter {
    pub class: Option<i64>,
    pub key_type: Option<i64>,
    pub label: Option<String>,
    pub ckaid: Option<Vec<u8>>,
    pub uuid: Option<String>,
    /// At most this many rows (ordered by object id); `None` = all.
    pub limit: Option<u32>,
    /// Only rows with `object_id > after` (for paging).
    pub after: Option<i64>,
}

/// One entry of a partition's audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub partition_id: i64,
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    /// Unix nanoseconds.
    pub time_ns: i64,
    /// Who: e.g. `user`, `so`, `admin`, `engine`, plus the caller's context id.
    pub actor: String,
    /// What: e.g. `object.create`, `key.sign`, `login.fail`.
    pub action: String,
    /// The object concerned, if any.
    pub object_id: Option<i64>,
    /// JSON text with the details (never secret values).
    pub detail: String,
    /// Hash of the previous entry (32 zero bytes for seq 1).
    pub prev_hash: Vec<u8>,
    /// SHA-256 over the canonical encoding of this entry including `prev_hash`.
    pub hash: Vec<u8>,
}

/// A signed checkpoint of a partition's audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub partition_id: i64,
    /// The entry the checkpoint covers (its hash is `hash`).
    pub seq: i64,
    pub hash: Vec<u8>,
    pub time_ns: i64,
    /// DER certificate of the signing node key.
    pub signer_cert: Vec<u8>,
    /// Signature over the checkpoint's canonical bytes.
    pub signature: Vec<u8>,
}

/// One service of the directory (the gateway's phase-one credential: service user name,
/// password hash, source-address allowlist, partitions). The engine writes `record_json`;
/// gateways read it and update only the lockout counters.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceRow {
    /// Unique display name of the service (subscriber).
    pub name: String,
    /// Unique service user name (what clients present to the gateway).
    pub service_user: String,
    /// The JSON service record (`tresor_core::directory::ServiceRecord`).
    pub record_json: Vec<u8>,
    /// Consecutive wrong passwords.
    pub failures: i64,
    /// Unix seconds until which the service user is locked (0 = not locked).
    pub locked_until: i64,
    /// 1 on insert, +1 on each update of `record_json`; updates are compare-and-swap on it.
    pub version: i64,
}

impl std::fmt::Debug for ServiceRow {
    // The record holds the password hash: it is left out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRow")
            .field("name", &self.name)
            .field("service_user", &self.service_user)
            .field("failures", &self.failures)
            .field("locked_until", &self.locked_until)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// One change inside a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Insert a cluster setting; `Conflict` if the key exists.
    InsertCluster { key: String, value: Vec<u8> },
    /// Insert or replace a cluster setting.
    PutCluster { key: String, value: Vec<u8> },
    /// `Conflict` if the id or name exists.
    InsertPartition(PartitionRow),
    /// Replace `sealed` and set `version = row.version`, only if the stored version is
    /// `expected_version` (else `Conflict`; `NotFound` if absent).
    UpdatePartition {
        row: PartitionRow,
        expected_version: i64,
    },
    /// Set the failure counters (no version check).
    SetPinFailures {
        partition_id: i64,
        so_failures: i64,
        user_failures: i64,
    },
    /// Delete the partition and all its objects (not its audit chain). `NotFound` if absent.
    DeletePartition { partition_id: i64 },
    /// `Conflict` if (partition, object id) exists.
    InsertObject(ObjectRow),
    /// Replace the row only if the stored version is `expected_version`. The stored
    /// `usage_count` never decreases: the larger of the stored and the given count is kept, so
    /// an `AddUsage` that lands between the engine's read and this update is not lost.
    UpdateObject {
        row: ObjectRow,
        expected_version: i64,
    },
    /// Delete only if the stored version is `expected_version`.
    DeleteObject {
        partition_id: i64,
        object_id: i64,
        expected_version: i64,
    },
    /// `usage_count += n`; a missing object is ignored (it may have been deleted meanwhile).
    AddUsage {
        partition_id: i64,
        object_id: i64,
        n: i64,
    },
    /// `Conflict` if (partition, seq) exists.
    AppendAudit(AuditRow),
    /// Insert a checkpoint; `Conflict` if (partition, seq) exists.
    PutCheckpoint(CheckpointRow),
    /// Insert a service when `version == 1` (`Conflict` if its name or service user exists);
    /// otherwise replace the row of the same service user only if its stored version is
    /// `version - 1` (`Conflict` if not, `NotFound` if absent). The lockout counters are written
    /// as given.
    PutService(ServiceRow),
    /// Delete a service. `NotFound` if absent.
    DeleteService { service_user: String },
}

/// Mutations applied atomically, in order, by [`Store::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub mutations: Vec<Mutation>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a mutation.
    pub fn push(&mut self, m: Mutation) -> &mut Self {
        self.mutations.push(m);
        self
    }

    /// True if nothing is in the batch.
    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }
}

/// One request of the REST API (see `migrations/0004_requests.sql`): synchronous requests are
/// recorded when they answer; the asynchronous approval workflow moves a row through its
/// statuses by compare-and-swap on `version`.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// UUID handed to the client.
    pub id: String,
    /// The caller's partition; every read filters on it.
    pub tenant: String,
    /// `Sign`, `Decrypt`, `UnWrap`, `Block`, `UnBlock`, `Modify`, …
    pub kind: String,
    /// `PENDING`, `APPROVED`, `EXECUTED`, `FAILED`, `EXPIRED`, `REJECTED` or `CANCELLED`.
    pub status: String,
    /// The key the request names.
    pub key_name: Option<String>,
    /// The request (for the asynchronous workflow: the exact bytes that will run).
    pub request_json: Vec<u8>,
    /// Approvals collected so far (JSON array).
    pub approvals_json: Vec<u8>,
    /// What the client may fetch as `result`, if anything.
    pub result: Option<Vec<u8>>,
    /// The error body of a failed request (JSON).
    pub error: Option<String>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds.
    pub updated: i64,
    /// Unix seconds the HSM ran it.
    pub executed: Option<i64>,
    /// Unix seconds after which a pending request expires.
    pub expires: Option<i64>,
    /// 1 on insert, +1 per update.
    pub version: i64,
}

impl std::fmt::Debug for RequestRow {
    // The request and its result may hold payloads: only the bookkeeping is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRow")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Untrusted persistence. Every method is safe to call concurrently.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// A cluster setting.
    async fn cluster_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// All partitions, ordered by name.
    async fn partitions(&self) -> StoreResult<Vec<PartitionRow>>;
    /// `(id, version)` of every partition: what a node compares with the partitions it has
    /// loaded, to see which another node (or process) changed or deleted.
    async fn partition_versions(&self) -> StoreResult<Vec<(i64, i64)>>;
    /// A counter that moves soon after another writer changed or deleted a partition, if this
    /// store can tell: PostgreSQL through `LISTEN`, a SQLite file within
    /// [`SQLITE_CHANGE_POLL`] (a change counter kept by triggers, read by a poll that the first
    /// call starts on the current Tokio runtime; this store's own commits do not move it);
    /// `None` otherwise (a private in-memory database), and then only
    /// [`Store::partition_versions`] polled tells. A move is a hint to compare now, never proof
    /// of a change: it also moves when the notification connection was re-established.
    fn partition_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// A counter that moves soon after a service of the directory was added, changed (a new
    /// version) or deleted: by any writer on PostgreSQL (`LISTEN`); on SQLite at once for
    /// writers sharing this store handle, and within [`SQLITE_CHANGE_POLL`] for other
    /// processes (a change counter kept by triggers, read by a poll that the first call
    /// starts; needs a Tokio runtime). `None` if this store cannot tell. A hint to look again,
    /// never proof of a change; lockout counters do not move it.
    fn service_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Whether the notifications behind [`Store::partition_changes`] arrive: `None` if this
    /// store has none or has not started listening, `Some(false)` while the listening
    /// connection is down (changes are then seen by polling only).
    fn listening(&self) -> Option<bool> {
        None
    }
    /// One partition by id.
    async fn partition(&self, id: i64) -> StoreResult<Option<PartitionRow>>;
    /// One partition by name.
    async fn partition_by_name(&self, name: &str) -> StoreResult<Option<PartitionRow>>;
    /// One object.
    async fn object(&self, partition_id: i64, object_id: i64) -> StoreResult<Option<ObjectRow>>;
    /// Objects of a partition matching `filter`, ordered by object id.
    async fn find_objects(
        &self,
        partition_id: i64,
        filter: &ObjectFilter,
    ) -> StoreResult<Vec<ObjectRow>>;
    /// `(object_id, version)` of every object of a partition (for the version digest check).
    async fn object_versions(&self, partition_id: i64) -> StoreResult<Vec<(i64, i64)>>;
    /// Number of objects in a partition.
    async fn count_objects(&self, partition_id: i64) -> StoreResult<i64>;
    /// The last audit entry of a partition's chain, if any.
    async fn audit_head(&self, partition_id: i64) -> StoreResult<Option<AuditRow>>;
    /// Audit entries with `seq >= from_seq`, ascending, at most `limit`.
    async fn audit_range(
        &self,
        partition_id: i64,
        from_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditRow>>;
    /// Ids of every partition that has an audit chain (including deleted ones and 0).
    async fn audit_partitions(&self) -> StoreResult<Vec<i64>>;
    /// Checkpoints of a partition, ascending by seq.
    async fn checkpoints(&self, partition_id: i64) -> StoreResult<Vec<CheckpointRow>>;
    /// The checkpoint with the highest seq of a partition, if any.
    async fn last_checkpoint(&self, partition_id: i64) -> StoreResult<Option<CheckpointRow>>;
    /// Every service of the directory, ordered by name.
    async fn services(&self) -> StoreResult<Vec<ServiceRow>>;
    /// One service by its service user name.
    async fn service_by_user(&self, service_user: &str) -> StoreResult<Option<ServiceRow>>;
    /// Set a service user's lockout counters (no version change; used by gateways directly).
    /// `NotFound` if the service does not exist.
    async fn set_service_failures(
        &self,
        service_user: &str,
        failures: i64,
        locked_until: i64,
    ) -> StoreResult<()>;
    /// Apply all mutations atomically (one transaction), in order. On any error nothing is applied.
    async fn commit(&self, batch: WriteBatch) -> StoreResult<()>;
    /// Insert REST request rows (each `version` 1) in one transaction. `Conflict` if an id
    /// exists (then none is inserted).
    async fn insert_requests(&self, rows: &[RequestRow]) -> StoreResult<()>;
    /// Replace a REST request row if its stored version is `row.version - 1` (`Conflict`
    /// otherwise, `NotFound` if absent).
    async fn update_request(&self, row: &RequestRow) -> StoreResult<()>;
    /// One REST request of a tenant (`None` if absent or another tenant's).
    async fn request(&self, tenant: &str, id: &str) -> StoreResult<Option<RequestRow>>;
    /// Delete up to `limit` of a tenant's finished REST requests (status `EXECUTED`, `FAILED`,
    /// `EXPIRED`, `REJECTED` or `CANCELLED`) created before `created_before` (Unix seconds);
    /// how many went. Pending and approved requests are never deleted.
    async fn delete_finished_requests(
        &self,
        tenant: &str,
        created_before: i64,
        limit: u32,
    ) -> StoreResult<u64>;
    /// A tenant's REST requests, newest first, optionally of one status, at most `limit`.
    async fn requests(
        &self,
        tenant: &str,
        status: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<RequestRow>>;

    /// As [`commit`](Store::commit), then, in the same transaction and while holding the
    /// store's write lock, read the audit head and last checkpoint of `partition_id` and apply
    /// the mutations `chain` builds on them (the audit rows continuing that head, a checkpoint).
    /// Several writers (nodes) appending to one partition's chain therefore never conflict on
    /// it: each continues the head it finds. `chain`'s error aborts everything.
    async fn commit_chained(
        &self,
        batch: WriteBatch,
        partition_id: i64,
        chain: ChainBuilder,
    ) -> StoreResult<()> {
        // Portable fallback: read, then commit; the (partition, seq) key still refuses a
        // second writer that raced in between (Conflict), so chains never fork.
        let head = self.audit_head(partition_id).await?;
        let cp = self.last_checkpoint(partition_id).await?;
        let extra =
            chain(ChainHead::of(head.as_ref(), cp.as_ref())).map_err(StoreError::Conflict)?;
        let mut batch = batch;
        batch.mutations.extend(extra);
        self.commit(batch).await
    }
}

/// Where a partition's audit chain stands inside a chained commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the last entry (0: none yet).
    pub seq: i64,
    /// Hash of the last entry (`None`: none yet; the chain starts from its genesis value).
    pub hash: Option<Vec<u8>>,
    /// Sequence number covered by the last checkpoint (0: none).
    pub last_checkpoint: i64,
}

impl ChainHead {
    /// From the head row and the last checkpoint, if any.
    pub fn of(head: Option<&AuditRow>, cp: Option<&CheckpointRow>) -> ChainHead {
        ChainHead {
            seq: head.map_or(0, |h| h.seq),
            hash: head.map(|h| h.hash.clone()),
            last_checkpoint: cp.map_or(0, |c| c.seq),
        }
    }
}

/// Builds the audit mutations of a chained commit from the chain's head (see
/// [`Store::commit_chained`]). Errors are reported as the commit's error.
pub type ChainBuilder =
    Box<dyn FnOnce(ChainHead) -> Result<Vec<Mutation>, String> + Send + 'static>;

#[cfg(test)]
mod tests {
    use super::is_postgres_url;

    #[test]
    fn specs_are_told_apart_by_their_scheme() {
        for url in [
            "postgres://u@h/d",
            "postgresql://u:p@h:5432/d?sslmode=disable",
            "POSTGRES://h/d",
        ] {
            assert!(is_postgres_url(url), "{url}");
        }
        for path in [
            "tresor.db",
            "/var/lib/tresor/tresor.db",
            "postgres.db",
            "./postgres://x",
            "postgres:/x",
            "",
        ] {
            assert!(!is_postgres_url(path), "{path}");
        }
    }
}

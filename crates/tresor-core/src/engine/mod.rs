//! The engine: cluster state (sealed / unsealed), partitions, caller contexts and operations.
//!
//! * [`Engine`] owns the store handle, the seal state and the loaded partitions. It is
//!   `Send + Sync`; operations take no global lock: a hot key use reads the partition's object
//!   cache (a read lock), runs the crypto, and queues its audit entry (a short per-partition
//!   mutex). State changes serialize per partition on its writer lock and commit their object
//!   rows, the partition's sealed record and their audit entries in one store transaction.
//! * [`Context`] is one caller's view of one partition (a connection or an application): it
//!   holds the login state and the session objects, and every operation is a method on it.
//!
//! Key-use audit entries are queued and committed by [`Engine::flush_audit`] (called by the
//! background task of [`Engine::spawn_background`] every `audit_flush_interval`, and by every
//! state change). If the queue cannot be written, or grows past `max_pending_audit`, key use
//! fails closed until a flush succeeds.

mod context;
pub mod credentials;
mod import;
mod key_password;
pub mod mechanisms;
mod objects;
mod ops;
mod partition;
pub mod sealed;
pub mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use parking_lot::RwLock;
use tresor_store::{Mutation, Store, WriteBatch, CLUSTER_PARTITION};

pub use context::{Context, UserType};
pub use credentials::{ClientCredential, SetupPolicy, TlsIdentity};
pub use ops::mechanism_name;
pub use partition::PartitionSummary;
pub use sealed::{Application, SealedObject};
pub use token::TokenStatus;

use crate::audit::{self, EntryContent};
use crate::error::{Error, Result, Rv};
use crate::seal::{self, MasterKey, SealConfig, Share};
use partition::Partition;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Consecutive wrong PINs after which a user (or SO) is locked (default 10).
    pub max_pin_failures: i64,
    /// How often queued key-use audit entries are committed (default 5 ms).
    pub audit_flush_interval: Duration,
    /// Key use fails closed while more entries than this wait to be written (default 100 000).
    pub max_pending_audit: usize,
    /// How often the loaded partitions are compared with the store, so that what another node
    /// (or process) changed reaches this one's caches: a destroyed or changed object, a
    /// revoked client key, a re-initialised token, a deleted partition (default 1 s). It bounds
    /// how long this node can serve a state that another node has already replaced.
    pub sync_interval: Duration,
    /// Parsed keys kept per partition (default 200 000).
    pub cache_capacity: usize,
    /// Argon2id memory cost in KiB (default 19 456), iterations (2), lanes (1).
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    pub argon2_p: u32,
    /// Name of this node in its certificate (default "tresor-node").
    pub node_name: String,
    /// Consecutive wrong passwords after which a key's password is locked (default 10).
    pub max_key_password_failures: u32,
    /// How long a locked key password refuses every password (default 15 minutes); each
    /// further wrong password after that locks it again.
    pub key_password_lockout: Duration,
    /// How long a verified key password is accepted again without Argon2id, by a keyed
    /// digest held in memory (default 5 minutes; zero: Argon2id on every request).
    pub key_password_cache_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_pin_failures: 10,
            audit_flush_interval: Duration::from_millis(5),
            max_pending_audit: 100_000,
            sync_interval: Duration::from_secs(1),
            cache_capacity: 200_000,
            argon2_m_kib: 19_456,
            argon2_t: 2,
            argon2_p: 1,
            node_name: "tresor-node".into(),
            max_key_password_failures: 10,
            key_password_lockout: Duration::from_secs(15 * 60),
            key_password_cache_ttl: Duration::from_secs(5 * 60),
        }
    }
}

/// After a store's hint that a partition changed, how long to wait before comparing, so that
/// a burst of changes (another node generating keys) costs one comparison.
const SYNC_HINT_PAUSE: Duration = Duration::from_millis(20);

/// Cluster table keys.
pub(crate) mod keys {
    pub const SEAL_CONFIG: &str = "seal_config";
    pub const ROOT_CERT: &str = "root_cert";
    pub const ROOT_KEY: &str = "root_key";
    pub const NODE_CERT: &str = "node_cert";
    pub const NODE_KEY: &str = "node_key";
}

/// Whether the engine can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealStatus {
    /// `tresor init` has not run on this store.
    Uninitialized,
    /// Initialised; waiting for shares.
    Sealed,
    /// Serving.
    Unsealed,
}

pub(crate) struct Unsealed {
    pub master: MasterKey,
    pub node_key: PKey<Private>,
    pub node_cert: X509,
    pub root_cert: X509,
}

/// The cluster chain's head (partition 0), guarded by its own writer lock.
struct ClusterChain {
    head_seq: i64,
    head_hash: Vec<u8>,
}

/// The HSM engine. See the module docs.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: EngineConfig,
    seal_config: RwLock<Option<SealConfig>>,
    pub(crate) unsealed: RwLock<Option<Arc<Unsealed>>>,
    active: AtomicBool,
    pub(crate) partitions: RwLock<HashMap<i64, Arc<Partition>>>,
    cluster_chain: tokio::sync::Mutex<ClusterChain>,
    /// The final session objects of the application contexts this engine dropped.
    pub(crate) session_states: sealed::SessionStates,
    /// Recently verified key passwords and the Argon2id permits for key passwords.
    pub(crate) key_passwords: key_password::Verifier,
    /// What the comparisons with the store found (see [`Engine::sync_stats`]).
    pub(crate) sync_counters: SyncCounters,
}

/// Counts of [`Engine::sync_partitions`] outcomes since the engine started.
#[derive(Debug, Default)]
pub(crate) struct SyncCounters {
    pub runs: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
    pub refreshed: std::sync::atomic::AtomicU64,
    pub unloaded: std::sync::atomic::AtomicU64,
}

/// How this engine's view of the store has been kept current (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Comparisons of the loaded partitions with the store.
    pub runs: u64,
    /// Comparisons that failed (store unreachable, a partition unreadable).
    pub failures: u64,
    /// Partitions re-read because another node or process had changed them.
    pub refreshed: u64,
    /// Partitions unloaded because another node or process had deleted them.
    pub unloaded: u64,
    /// Whether the store's change notifications arrive ([`tresor_store::Store::listening`]):
    /// `None` for a store without them (SQLite), `Some(false)` while they are down and only
    /// the poll every `sync_interval` sees other nodes' changes.
    pub notifications: Option<bool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Map a store error to an engine error.
pub(crate) fn store_err(e: tresor_store::StoreError) -> Error {
    match e {
        tresor_store::StoreError::Conflict(m) => {
            Error::new(Rv::FunctionFailed, format!("store conflict: {m}"))
        }
        tresor_store::StoreError::NotFound(m) => {
            Error::new(Rv::ObjectHandleInvalid, format!("store: {m}"))
        }
        e => Error::new(Rv::DeviceError, format!("store: {e}")),
    }
}

impl Engine {
    /// Open the engine over a store. It starts sealed (or uninitialised).
    pub async fn open(store: Arc<dyn Store>, config: EngineConfig) -> Result<Arc<Engine>> {
        let config_ttl = config.key_password_cache_ttl;
        let seal_config = match store
            .cluster_get(keys::SEAL_CONFIG)
            .await
            .map_err(store_err)?
        {
            Some(bytes) => Some(serde_json::from_slice::<SealConfig>(&bytes).map_err(|e| {
                Error::integrity(format!("stored seal configuration is unreadable: {e}"))
            })?),
            None => None,
        };
        let head = store
            .audit_head(CLUSTER_PARTITION)
            .await
            .map_err(store_err)?;
        let (head_seq, head_hash) = head
            .map(|r| (r.seq, r.hash))
            .unwrap_or((0, audit::GENESIS.to_vec()));
        Ok(Arc::new(Engine {
            store,
            config,
            seal_config: RwLock::new(seal_config),
            unsealed: RwLock::new(None),
            active: AtomicBool::new(false),
            partitions: RwLock::new(HashMap::new()),
            cluster_chain: tokio::sync::Mutex::new(ClusterChain {
                head_seq,
                head_hash,
            }),
            session_states: sealed::SessionStates::default(),
            key_passwords: key_password::Verifier::new(config_ttl)?,
            sync_counters: SyncCounters::default(),
        }))
    }

    /// The seal status.
    pub fn status(&self) -> SealStatus {
        if self.active.load(Ordering::Acquire) {
            SealStatus::Unsealed
        } else if self.seal_config.read().is_some() {
            SealStatus::Sealed
        } else {
            SealStatus::Uninitialized
        }
    }

    /// The stored seal configuration (threshold, share count, cluster id), if initialised.
    pub fn seal_config(&self) -> Option<SealConfig> {
        self.seal_config.read().clone()
    }

    pub(crate) fn check_active(&self) -> Result<()> {
        if self.active.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::sealed())
        }
    }

    pub(crate) fn unsealed(&self) -> Result<Arc<Unsealed>> {
        self.unsealed.read().clone().ok_or_else(Error::sealed)
    }

    /// Initialise a new cluster on an empty store: master key split into `share_count` shares
    /// with `threshold`, cluster root and node certificates. Returns the shares (hand them
    /// out; they are not stored) and leaves the engine unsealed.
    pub async fn init(&self, threshold: usize, share_count: usize) -> Result<Vec<Share>> {
        if self.seal_config.read().is_some() {
            return Err(Error::new(
                Rv::Vendor(crate::error::vendor::ALREADY_EXISTS),
                "this store is already initialised",
            ));
        }
        let (master, config, shares) = seal::init(threshold, share_count)?;
        let cluster_id = config.cluster_id().to_string();
        let root_key = crate::attest::new_p256_key()?;
        let root_cert = crate::attest::issue_cert(
            &format!("Tresor cluster root {cluster_id}"),
            &root_key,
            None,
            Some(&root_key),
            Some(1),
            365 * 20,
        )?;
        let node_key = crate::attest::new_p256_key()?;
        let node_cert = crate::attest::issue_cert(
            &format!("{} {cluster_id}", self.config.node_name),
            &node_key,
            Some((&root_cert, &root_key)),
            None,
            Some(0),
            365 * 10,
        )?;
        let mk = master.seal_key();
        let root_pk8 = zeroize::Zeroizing::new(root_key.private_key_to_pkcs8()?);
        let node_pk8 = zeroize::Zeroizing::new(node_key.private_key_to_pkcs8()?);
        let config_json =
            serde_json::to_vec(&config).map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?;
        let mut batch = WriteBatch::new();
        batch
            .push(Mutation::InsertCluster {
                key: keys::SEAL_CONFIG.into(),
                value: config_json,
            })
            .push(Mutation::InsertCluster {
                key: keys::ROOT_CERT.into(),
                value: root_cert.to_der()?,
            })
            .push(Mutation::InsertCluster {
                key: keys::ROOT_KEY.into(),
                value: seal::seal(mk, &seal::aad_cluster(keys::ROOT_KEY), &root_pk8)?,
            })
            .push(Mutation::InsertCluster {
                key: keys::NODE_CERT.into(),
                value: node_cert.to_der()?,
            })
            .push(Mutation::InsertCluster {
                key: keys::NODE_KEY.into(),
                value: seal::seal(mk, &seal::aad_cluster(keys::NODE_KEY), &node_pk8)?,
            });
        let mut chain = self.cluster_chain.lock().await;
        let entry = EntryContent::now(
            "admin",
            "cluster.init",
            None,
            serde_json::json!({"cluster_id": cluster_id, "threshold": threshold, "shares": share_count}).to_string(),
        );
        let (rows, seq, hash) = audit::chain_rows(
            CLUSTER_PARTITION,
            chain.head_seq,
            &chain.head_hash,
            &[entry],
        )?;
        for r in rows {
            batch.push(Mutation::AppendAudit(r));
        }
        batch.push(Mutation::PutCheckpoint(audit::sign_checkpoint(
            &node_key,
            &node_cert.to_der()?,
            CLUSTER_PARTITION,
            seq,
            &hash,
        )?));
        self.store.commit(batch).await.map_err(|e| match e {
            tresor_store::StoreError::Conflict(_) => Error::new(
                Rv::Vendor(crate::error::vendor::ALREADY_EXISTS),
                "this store is already initialised",
            ),
            e => store_err(e),
        })?;
        chain.head_seq = seq;
        chain.head_hash = hash;
        drop(chain);
        *self.seal_config.write() = Some(config);
        *self.unsealed.write() = Some(Arc::new(Unsealed {
            master,
            node_key,
            node_cert,
            root_cert,
        }));
        self.active.store(true, Ordering::Release);
        Ok(shares)
    }

    /// Check one share against the stored configuration (as an operator enters it).
    pub fn check_share(&self, share: &Share) -> Result<()> {
        let config = self
            .seal_config()
            .ok_or_else(|| Error::new(Rv::GeneralError, "this store is not initialised"))?;
        seal::check_share(&config, share)
    }

    /// Unseal with at least `threshold` shares. A wrong, corrupted or foreign share is named.
    pub async fn unseal(&self, shares: &[Share]) -> Result<()> {
        if self.active.load(Ordering::Acquire) {
            return Ok(());
        }
        let config = self.seal_config().ok_or_else(|| {
            Error::new(
                Rv::GeneralError,
                "this store is not initialised; run `tresor init`",
            )
        })?;
        let master = seal::combine(&config, shares)?;
        let get = |k: &'static str| async move {
            self.store
                .cluster_get(k)
                .await
                .map_err(store_err)?
                .ok_or_else(|| Error::integrity(format!("cluster setting '{k}' is missing")))
        };
        let root_cert = X509::from_der(&get(keys::ROOT_CERT).await?)
            .map_err(|_| Error::integrity("root certificate is corrupt"))?;
        let node_cert = X509::from_der(&get(keys::NODE_CERT).await?)
            .map_err(|_| Error::integrity("node certificate is corrupt"))?;
        let node_pk8 = seal::open(
            master.seal_key(),
            &seal::aad_cluster(keys::NODE_KEY),
            &get(keys::NODE_KEY).await?,
        )?;
        let node_key = PKey::private_key_from_pkcs8(&node_pk8)
            .map_err(|_| Error::integrity("node key is corrupt"))?;
        crate::attest::verify_issued_by(&node_cert, &root_cert)?;
        if !node_cert.public_key()?.public_eq(&node_key) {
            return Err(Error::integrity(
                "node certificate does not match the node key",
            ));
        }
        *self.unsealed.write() = Some(Arc::new(Unsealed {
            master,
            node_key,
            node_cert,
            root_cert,
        }));
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// Seal: flush the audit queue, forget the master key and every partition key and cached
    /// key. Contexts stay open but every operation fails with `TRESOR_SEALED`.
    pub async fn seal(&self) -> Result<()> {
        let flushed = self.flush_audit().await;
        self.active.store(false, Ordering::Release);
        // Contexts keep their partition alive; its parsed keys and records go now, not when
        // the last context closes.
        for p in self.partitions.write().drain().map(|(_, p)| p) {
            p.cache.write().clear();
        }
        *self.unsealed.write() = None;
        flushed
    }

    /// Drop every parsed key and object record from memory; they are re-read and re-verified
    /// from the store on next use (e.g. after memory pressure, or to re-check the store).
    pub fn evict_caches(&self) {
        for p in self.partitions.read().values() {
            p.cache.write().clear();
        }
    }

    /// DER of the cluster root certificate (the trust anchor for attestation and audit).
    pub fn root_cert_der(&self) -> Result<Vec<u8>> {
        Ok(self.unsealed()?.root_cert.to_der()?)
    }

    /// DER of this node's certificate.
    pub fn node_cert_der(&self) -> Result<Vec<u8>> {
        Ok(self.unsealed()?.node_cert.to_der()?)
    }

    /// The store handle (for offline tools).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cluster root key, unsealed from the cluster table (only for issuing certificates).
    pub(crate) async fn root_key(&self) -> Result<PKey<Private>> {
        let un = self.unsealed()?;
        let sealed = self
            .store
            .cluster_get(keys::ROOT_KEY)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::integrity(format!("cluster setting '{}' is missing", keys::ROOT_KEY))
            })?;
        let pk8 = seal::open(
            un.master.seal_key(),
            &seal::aad_cluster(keys::ROOT_KEY),
            &sealed,
        )?;
        let key = PKey::private_key_from_pkcs8(&pk8)
            .map_err(|_| Error::integrity("cluster root key is corrupt"))?;
        if !un.root_cert.public_key()?.public_eq(&key) {
            return Err(Error::integrity(
                "cluster root certificate does not match the cluster root key",
            ));
        }
        Ok(key)
    }

    /// Append entries to the cluster chain together with `mutations`, atomically.
    pub(crate) async fn commit_cluster(
        &self,
        mut batch: WriteBatch,
        entries: Vec<EntryContent>,
    ) -> Result<()> {
        let un = self.unsealed()?;
        let mut chain = self.cluster_chain.lock().await;
        let (rows, seq, hash) = audit::chain_rows(
            CLUSTER_PARTITION,
            chain.head_seq,
            &chain.head_hash,
            &entries,
        )?;
        for r in rows {
            batch.push(Mutation::AppendAudit(r));
        }
        batch.push(Mutation::PutCheckpoint(audit::sign_checkpoint(
            &un.node_key,
            &un.node_cert.to_der()?,
            CLUSTER_PARTITION,
            seq,
            &hash,
        )?));
        self.store.commit(batch).await.map_err(store_err)?;
        chain.head_seq = seq;
        chain.head_hash = hash;
        Ok(())
    }

    /// Commit every partition's queued key-use audit entries and usage counters, and sign a
    /// checkpoint at each head.
    pub async fn flush_audit(&self) -> Result<()> {
        self.flush_partitions(true).await
    }

    async fn flush_partitions(&self, force_checkpoint: bool) -> Result<()> {
        let parts: Vec<Arc<Partition>> = self.partitions.read().values().cloned().collect();
        let mut first_err = None;
        for p in parts {
            if p.has_pending() || force_checkpoint {
                if let Err(e) = p.flush(self, force_checkpoint).await {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// What the comparisons with the store ([`Engine::sync_partitions`]) found so far.
    pub fn sync_stats(&self) -> SyncStats {
        let c = &self.sync_counters;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        SyncStats {
            runs: g(&c.runs),
            failures: g(&c.failures),
            refreshed: g(&c.refreshed),
            unloaded: g(&c.unloaded),
            notifications: self.store.listening(),
        }
    }

    /// Start the background tasks: one commits the audit queue every `audit_flush_interval`,
    /// the other compares the loaded partitions with the store every `sync_interval` (see
    /// [`Engine::sync_partitions`]). They stop when the last `Arc<Engine>` other than theirs is
    /// dropped; the handle is the flusher's.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let every = self.config.sync_interval;
        // A store that can tell (PostgreSQL's LISTEN) hints at changes as they commit: compare
        // then too, after a short pause that lets a burst of changes make one comparison.
        let mut hints = self.store.partition_changes();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: nothing is loaded yet.
            tick.tick().await;
            // Warn when comparing starts failing and when it works again, not every tick.
            let mut failing = false;
            loop {
                let hinted = async {
                    match hints.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    ok = hinted => {
                        if ok {
                            tokio::time::sleep(SYNC_HINT_PAUSE).await;
                        } else {
                            // The listener is gone: polling alone from now on.
                            hints = None;
                        }
                    }
                }
                let Some(engine) = weak.upgrade() else { break };
                if engine.status() == SealStatus::Unsealed {
                    match engine.sync_partitions().await {
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "could not compare the loaded partitions with the store; changes made through other nodes may go unseen until it works again");
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "comparing the loaded partitions still fails")
                        }
                        Ok(_) if failing => {
                            failing = false;
                            tracing::warn!(
                                "comparing the loaded partitions with the store works again"
                            );
                        }
                        Ok(_) => {}
                    }
                }
                if Arc::strong_count(&engine) == 1 {
                    break;
                }
            }
        });
        let weak = Arc::downgrade(self);
        let every = self.config.audit_flush_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { break };
                if let Err(e) = engine.flush_partitions(false).await {
                    tracing::error!(error = %e, "audit flush failed; key use is refused until it succeeds");
                }
                if Arc::strong_count(&engine) == 1 {
                    break;
                }
            }
        })
    }
}

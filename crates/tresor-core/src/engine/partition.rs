//! Partitions: their sealed record, object cache, version map and audit queue, and the one
//! commit path for every state change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tresor_store::{Mutation, ObjectRow, PartitionRow, WriteBatch};
use zeroize::Zeroizing;

use super::{store_err, Engine};
use crate::audit::{self, EntryContent, CHECKPOINT_EVERY};
use crate::crypto::{KeyMaterial, LoadedKey};
use crate::error::{vendor, Error, Result, Rv};
use crate::object::{ObjectClass, ObjectId, ObjectRecord};
use crate::seal::{self, Digest, SealKey, VersionDigest};

/// What `list_partitions` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSummary {
    pub id: i64,
    pub name: String,
    pub created: i64,
    pub objects: i64,
}

/// The sealed part of a partition row (JSON, followed by the attestation key's PKCS#8).
#[derive(Serialize, Deserialize)]
pub(crate) struct PartitionRecord {
    pub name: String,
    pub created: i64,
    /// Argon2id PHC string of the SO PIN.
    pub so_pin: String,
    /// Argon2id PHC string of the user PIN; `None` until the SO sets it.
    pub user_pin: Option<String>,
    /// DER of the attestation certificate (issued by the node key).
    pub attest_cert: Vec<u8>,
    /// Hex of the object-version digest.
    pub digest: String,
    /// The current setup password (absent in records written before it existed).
    #[serde(default)]
    pub setup: Option<super::credentials::SetupState>,
    /// The registered client keys (permanent secrets' public halves).
    #[serde(default)]
    pub clients: Vec<super::credentials::ClientRecord>,
    /// The token generation: bumped by `C_InitToken`, which ends every context's login and
    /// session objects (absent, i.e. 0, in records written before it existed).
    #[serde(default)]
    pub generation: u64,
}

/// A creation's condition that no token object of `classes` (bit `1 << CKO_*`) is labelled
/// `label` (`CKA_TRESOR_UNIQUE_LABEL`).
#[derive(Debug, Clone)]
pub(crate) struct LabelClaim {
    pub label: String,
    pub classes: u64,
}

/// What a chained commit appended: the new head's sequence number and hash, and whether a
/// checkpoint was signed at it.
type ChainOutcome = (i64, Vec<u8>, bool);

/// How often [`Partition::commit`] rebuilds a commit that conflicted with another writer.
const COMMIT_RETRIES: u32 = 30;

/// The detail of the error a conflicting commit returns (after refreshing).
const CONFLICT_DETAIL: &str = "was changed concurrently by another writer; retry the operation";

/// True for the error of a commit that conflicted with another writer (nothing was written).
pub(crate) fn is_conflict(e: &Error) -> bool {
    e.rv() == Rv::FunctionFailed && e.detail().contains(CONFLICT_DETAIL)
}

/// Serialize `json ‖ secret` as `u32 len ‖ json ‖ secret`.
pub(crate) fn join_payload(json: &[u8], secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(4 + json.len() + secret.len()));
    v.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    v.extend_from_slice(json);
    v.extend_from_slice(secret);
    v
}

/// Split a payload made by [`join_payload`].
pub(crate) fn split_payload(p: &[u8]) -> Result<(&[u8], &[u8])> {
    if p.len() < 4 {
        return Err(Error::integrity("sealed payload too short"));
    }
    let n = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
    if p.len() < 4 + n {
        return Err(Error::integrity("sealed payload length field is wrong"));
    }
    Ok((&p[4..4 + n], &p[4 + n..]))
}

/// A loaded object: its record, material and (on first use) parsed key.
pub(crate) struct Cached {
    pub oid: ObjectId,
    pub version: i64,
    pub rec: ObjectRecord,
    pub secret: Option<KeyMaterial>,
    /// The parsed key, built on first use and kept: an operation never re-parses DER.
    key: std::sync::OnceLock<Result<LoadedKey>>,
    /// Usage count stored when loaded.
    pub usage_base: i64,
    /// Uses since loaded.
    pub usage_delta: AtomicI64,
}

impl Cached {
    pub fn new(
        oid: ObjectId,
        version: i64,
        rec: ObjectRecord,
        secret: Option<KeyMaterial>,
        usage_base: i64,
    ) -> Result<Cached> {
        if rec.class.is_key() && rec.alg.is_none() {
            return Err(Error::integrity(format!(
                "object {oid}: a key without an algorithm"
            )));
        }
        Ok(Cached {
            oid,
            version,
            rec,
            secret,
            key: std::sync::OnceLock::new(),
            usage_base,
            usage_delta: AtomicI64::new(0),
        })
    }

    pub fn usage(&self) -> i64 {
        self.usage_base + self.usage_delta.load(Ordering::Relaxed)
    }

    fn parse(&self) -> Result<LoadedKey> {
        match (self.rec.class, self.rec.alg, &self.secret) {
            (ObjectClass::PrivateKey, Some(alg), Some(s)) => LoadedKey::private(alg, s.expose()),
            (ObjectClass::SecretKey, Some(alg), Some(s)) => LoadedKey::secret(alg, s.expose()),
            (ObjectClass::PublicKey, Some(alg), _) => {
                let spki = self
                    .rec
                    .public
                    .as_ref()
                    .map(|p| p.spki.as_slice())
                    .ok_or_else(|| Error::integrity("public key without SPKI"))?;
                LoadedKey::public(alg, spki)
            }
            _ => Err(Error::new(Rv::KeyHandleInvalid, "the object is not a key")),
        }
    }

    /// The parsed key (parsed once, on first use).
    pub fn loaded(&self) -> Result<&LoadedKey> {
        self.key
            .get_or_init(|| self.parse())
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// What identifies an aggregated key-use audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct UseKey {
    pub object_id: ObjectId,
    pub context: u64,
    pub action: &'static str,
    pub mechanism: &'static str,
}

/// Uses of one [`UseKey`] since the last flush. The time of the first use is taken when the
/// aggregate starts; the entry's `last_ns` is the flush time (the clock is not read per use).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UseAgg {
    pub count: u64,
    pub bytes: u64,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// Audit events waiting to be written. Key uses are aggregated per key, caller, operation and
/// mechanism between two flushes (one entry carries the count, the bytes processed and the
/// first and last time), so that writing the log never limits the crypto rate; session-object
/// events (not durable state) are queued as they are.
#[derive(Default)]
pub(crate) struct Pending {
    /// FxHash: the key is small and not attacker-chosen; SipHash showed in the AES-GCM 1 KiB
    /// profile.
    pub uses: rustc_hash::FxHashMap<UseKey, UseAgg>,
    pub usage: rustc_hash::FxHashMap<ObjectId, i64>,
    /// Session-object events per (actor, action): count, time span and object id span.
    pub session: HashMap<(String, &'static str), SessionAgg>,
}

/// Aggregated session-object events (these change no durable state).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionAgg {
    pub count: u64,
    pub first_ns: i64,
    pub last_ns: i64,
    pub first_object: ObjectId,
    pub last_object: ObjectId,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.uses.is_empty() && self.session.is_empty()
    }

    pub fn len(&self) -> usize {
        self.uses.len() + self.session.len()
    }

    /// Add `newer` (queued after `self` was taken) back on top of `self`.
    pub fn merge(&mut self, newer: Pending) {
        for (k, n) in newer.uses {
            match self.uses.get_mut(&k) {
                Some(a) => {
                    a.count += n.count;
                    a.bytes += n.bytes;
                    a.last_ns = a.last_ns.max(n.last_ns);
                    a.first_ns = a.first_ns.min(n.first_ns);
                }
                None => {
                    self.uses.insert(k, n);
                }
            }
        }
        for (k, n) in newer.usage {
            *self.usage.entry(k).or_insert(0) += n;
        }
        for (k, n) in newer.session {
            match self.session.get_mut(&k) {
                Some(a) => {
                    a.count += n.count;
                    a.last_ns = a.last_ns.max(n.last_ns);
                    a.first_ns = a.first_ns.min(n.first_ns);
                    a.last_object = n.last_object;
                }
                None => {
                    self.session.insert(k, n);
                }
            }
        }
    }

    /// The audit entries, in time order (a key-use aggregate's `last_ns` is now).
    pub fn entries(&self) -> Vec<EntryContent> {
        let now = audit::now_ns();
        let mut out: Vec<EntryContent> = self
            .uses
            .iter()
            .map(|(k, a)| EntryContent {
                time_ns: a.first_ns,
                actor: format!("user/{}", k.context),
                action: k.action.to_owned(),
                object_id: Some(k.object_id),
                detail: format!(
                    "{{\"mechanism\":\"{}\",\"count\":{},\"bytes\":{},\"last_ns\":{}}}",
                    k.mechanism,
                    a.count,
                    a.bytes,
                    now.max(a.last_ns)
                ),
            })
            .chain(self.session.iter().map(|((actor, action), a)| EntryContent {
                time_ns: a.first_ns,
                actor: actor.clone(),
                action: (*action).to_owned(),
                object_id: None,
                detail: format!(
                    "{{\"session_objects\":true,\"count\":{},\"first_object\":{},\"last_object\":{},\"last_ns\":{}}}",
                    a.count, a.first_object, a.last_object, a.last_ns
                ),
            }))
            .collect();
        out.sort_by_key(|e| e.time_ns);
        out
    }
}

/// A caller context's queue of audit events.
#[derive(Default)]
pub(crate) struct UseBuffer {
    pub pending: Mutex<Pending>,
    /// Set when the context is dropped; the buffer goes once it has been drained.
    pub closed: AtomicBool,
}

/// State guarded by the partition's writer lock.
pub(crate) struct WriterState {
    pub row_version: i64,
    pub record: PartitionRecord,
    pub digest: Digest,
    pub head_seq: i64,
    pub head_hash: Vec<u8>,
    pub last_checkpoint: i64,
    pub last_checkpoint_ns: i64,
}

/// A loaded (unsealed) partition.
pub(crate) struct Partition {
    pub id: i64,
    pub name: String,
    pub key: SealKey,
    pub digest_key: VersionDigest,
    pub attest_key: PKey<Private>,
    pub attest_cert: X509,
    pub writer: tokio::sync::Mutex<WriterState>,
    pub versions: RwLock<HashMap<ObjectId, i64>>,
    pub cache: RwLock<HashMap<ObjectId, Arc<Cached>>>,
    /// One buffer of queued audit events per caller context (plus the partition's own, for
    /// events put back after a failed write): the hot path locks only its caller's buffer.
    pub buffers: Mutex<Vec<Arc<UseBuffer>>>,
    pub own: Arc<UseBuffer>,
    pub audit_failed: AtomicBool,
    pub deleted: AtomicBool,
    pub force_checkpoint: AtomicBool,
    /// The token generation of the sealed record (see [`PartitionRecord::generation`]); a
    /// context of an older generation drops its login and session objects at its next call.
    pub generation: AtomicU64,
    /// Fingerprints of the registered client keys (a copy of the record's, readable without
    /// the writer lock) and a counter that moves whenever that set is replaced: a context
    /// opened for a client checks that its key is still registered when the counter moved.
    pub clients: RwLock<std::collections::HashSet<String>>,
    pub clients_epoch: AtomicU64,
}

impl Partition {
    /// Seal a partition record into the row's `sealed` column.
    pub fn seal_row(
        master: &seal::MasterKey,
        id: i64,
        version: i64,
        key: &SealKey,
        rec: &PartitionRecord,
        attest_pk8: &[u8],
    ) -> Result<Vec<u8>> {
        let wrapped = master.wrap_partition_key(id, key)?;
        let json =
            serde_json::to_vec(rec).map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?;
        let sealed = seal::seal(
            key,
            &seal::aad_partition_record(id, version),
            &join_payload(&json, attest_pk8),
        )?;
        let mut out = Vec::with_capacity(4 + wrapped.len() + sealed.len());
        out.extend_from_slice(
            &u32::try_from(wrapped.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open a partition row: unwrap its key, open its record, and check the object set against
    /// the sealed version digest.
    pub async fn load(engine: &Engine, row: &PartitionRow) -> Result<Partition> {
        let un = engine.unsealed()?;
        let (wrapped, _) = split_payload(&row.sealed)?;
        let key = un.master.unwrap_partition_key(row.id, wrapped)?;
        let digest_key = VersionDigest::new(&key)?;
        let st = read_state(engine, row, &key, &digest_key).await?;
        let attest_key = PKey::private_key_from_pkcs8(&st.attest_pk8)
            .map_err(|_| Error::integrity("attestation key is corrupt"))?;
        let attest_cert = X509::from_der(&st.writer.record.attest_cert)
            .map_err(|_| Error::integrity("attestation certificate is corrupt"))?;
        let pairs = st.versions;
        let generation = st.writer.record.generation;
        let clients = client_set(&st.writer.record);
        let own = Arc::new(UseBuffer::default());
        Ok(Partition {
            id: row.id,
            name: row.name.clone(),
            key,
            digest_key,
            attest_key,
            attest_cert,
            writer: tokio::sync::Mutex::new(st.writer),
            versions: RwLock::new(pairs.into_iter().collect()),
            cache: RwLock::new(HashMap::new()),
            buffers: Mutex::new(vec![own.clone()]),
            own,
            audit_failed: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            force_checkpoint: AtomicBool::new(false),
            generation: AtomicU64::new(generation),
            clients: RwLock::new(clients),
            clients_epoch: AtomicU64::new(0),
        })
    }

    /// Take the registered client keys from `record` after it replaced the loaded one.
    fn clients_from(&self, record: &PartitionRecord) {
        let set = client_set(record);
        let mut clients = self.clients.write();
        if *clients != set {
            *clients = set;
            self.clients_epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A new buffer for a caller context.
    pub fn new_buffer(&self) -> Arc<UseBuffer> {
        let b = Arc::new(UseBuffer::default());
        self.buffers.lock().push(b.clone());
        b
    }

    pub fn has_pending(&self) -> bool {
        self.buffers
            .lock()
            .iter()
            .any(|b| !b.pending.lock().is_empty())
    }

    /// Everything queued in every buffer; buffers of closed contexts are dropped once empty.
    fn take_pending(&self) -> Pending {
        let mut bufs = self.buffers.lock();
        let mut all = Pending::default();
        for b in bufs.iter() {
            let taken = std::mem::take(&mut *b.pending.lock());
            all.merge(taken);
        }
        // A context may close after its buffer was drained above: keep it until it is empty.
        bufs.retain(|b| !(b.closed.load(Ordering::Acquire) && b.pending.lock().is_empty()));
        all
    }

    /// Fail closed if key-use entries cannot be recorded.
    pub fn audit_ready(&self, engine: &Engine, buf: &UseBuffer) -> Result<()> {
        if self.audit_failed.load(Ordering::Acquire) {
            return Err(Error::new(
                Rv::DeviceError,
                "the audit log cannot be written; key use is refused",
            ));
        }
        if buf.pending.lock().len() >= engine.config.max_pending_audit {
            return Err(Error::new(
                Rv::DeviceError,
                "the audit queue is full; key use is refused until it is written",
            ));
        }
        Ok(())
    }

    /// Count a key use (written by the next flush or state change).
    pub fn record_use(&self, buf: &UseBuffer, obj: &Cached, key: UseKey, len: usize) {
        obj.usage_delta.fetch_add(1, Ordering::Relaxed);
        let mut p = buf.pending.lock();
        if obj.rec.flags.token {
            *p.usage.entry(key.object_id).or_insert(0) += 1;
        }
        let a = p.uses.entry(key).or_insert_with(|| {
            let now = audit::now_ns();
            UseAgg {
                count: 0,
                bytes: 0,
                first_ns: now,
                last_ns: now,
            }
        });
        a.count += 1;
        a.bytes += len as u64;
    }

    /// Count an event that changes no durable state (a session object's creation, change or
    /// destruction); aggregated per actor and action until the next flush.
    pub fn record_session_event(
        &self,
        buf: &UseBuffer,
        actor: String,
        action: &'static str,
        oid: ObjectId,
    ) {
        let now = audit::now_ns();
        let mut p = buf.pending.lock();
        let a = p.session.entry((actor, action)).or_insert(SessionAgg {
            count: 0,
            first_ns: now,
            last_ns: now,
            first_object: oid,
            last_object: oid,
        });
        a.count += 1;
        a.last_ns = now;
        a.last_object = oid;
    }

    /// Seal an object blob.
    pub fn seal_object(
        &self,
        oid: ObjectId,
        version: i64,
        rec: &ObjectRecord,
        secret: Option<&KeyMaterial>,
    ) -> Result<Vec<u8>> {
        let json =
            serde_json::to_vec(rec).map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?;
        let payload = join_payload(&json, secret.map(|s| s.expose()).unwrap_or_default());
        seal::seal(
            &self.key,
            &seal::aad_object(self.id, oid, version),
            &payload,
        )
    }

    /// The store row for an object.
    pub fn object_row(
        &self,
        oid: ObjectId,
        version: i64,
        rec: &ObjectRecord,
        secret: Option<&KeyMaterial>,
        usage: i64,
    ) -> Result<ObjectRow> {
        Ok(ObjectRow {
            partition_id: self.id,
            object_id: oid,
            version,
            class: i64::try_from(rec.class.ck()).unwrap_or(-1),
            key_type: rec.ckk().and_then(|k| i64::try_from(k).ok()),
            label: rec.label.clone(),
            ckaid: rec.ckaid.clone(),
            uuid: rec.uuid.clone(),
            usage_count: usage,
            sealed: self.seal_object(oid, version, rec, secret)?,
        })
    }

    /// Open and check a stored row.
    pub fn open_row(&self, row: &ObjectRow) -> Result<Cached> {
        let expected = self.versions.read().get(&row.object_id).copied();
        match expected {
            Some(v) if v == row.version => {}
            Some(v) => {
                return Err(Error::integrity(format!(
                "object {}: stored version {} but the engine expects {v} (rolled back or replayed)",
                row.object_id, row.version
            )))
            }
            None => {
                return Err(Error::integrity(format!(
                    "object {}: not in the partition's sealed object set",
                    row.object_id
                )))
            }
        }
        let payload = seal::open(
            &self.key,
            &seal::aad_object(self.id, row.object_id, row.version),
            &row.sealed,
        )
        .map_err(|e| Error::integrity(format!("object {}: {}", row.object_id, e.detail())))?;
        let (json, secret) = split_payload(&payload)?;
        let rec: ObjectRecord = serde_json::from_slice(json).map_err(|e| {
            Error::integrity(format!("object {}: record unreadable: {e}", row.object_id))
        })?;
        let index_ok = i64::try_from(rec.class.ck()).ok() == Some(row.class)
            && rec.ckk().and_then(|k| i64::try_from(k).ok()) == row.key_type
            && rec.label == row.label
            && rec.ckaid == row.ckaid
            && rec.uuid == row.uuid;
        if !index_ok {
            return Err(Error::integrity(format!(
                "object {}: lookup columns do not match the sealed record",
                row.object_id
            )));
        }
        let secret = if secret.is_empty() {
            None
        } else {
            Some(KeyMaterial(Zeroizing::new(secret.to_vec())))
        };
        Cached::new(row.object_id, row.version, rec, secret, row.usage_count)
    }

    /// A token object, from the cache or the store.
    pub async fn object(&self, engine: &Engine, oid: ObjectId) -> Result<Arc<Cached>> {
        if let Some(c) = self.cache.read().get(&oid) {
            return Ok(c.clone());
        }
        if !self.versions.read().contains_key(&oid) {
            // Another node (or process) on the same store may have created it since this
            // partition was read: one row read tells, and a refresh follows only if so.
            if oid > 0 {
                self.sync(engine).await?;
            }
            if !self.versions.read().contains_key(&oid) {
                return Err(Error::new(
                    Rv::ObjectHandleInvalid,
                    format!("object {oid} does not exist"),
                ));
            }
        }
        let row = engine
            .store
            .object(self.id, oid)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::integrity(format!(
                    "object {oid} is in the sealed object set but missing from the store"
                ))
            })?;
        let c = Arc::new(self.open_row(&row)?);
        Ok(self.cache_insert(engine, c))
    }

    /// Insert a loaded object unless the same version is already cached, and return the cached
    /// instance: concurrent first uses share one instance (its live usage count), whichever
    /// loaded first.
    pub fn cache_insert(&self, engine: &Engine, c: Arc<Cached>) -> Arc<Cached> {
        let mut cache = self.cache.write();
        if let Some(existing) = cache.get(&c.oid) {
            if existing.version >= c.version {
                return existing.clone();
            }
        }
        if cache.len() >= engine.config.cache_capacity {
            // Evict an arbitrary entry: a re-load costs one store read and one AES-GCM open.
            if let Some(k) = cache.keys().next().copied() {
                cache.remove(&k);
            }
        }
        cache.insert(c.oid, c.clone());
        c
    }

    /// Commit a state change: `mutations` (object rows), the queued key uses and `entries` in
    /// the audit chain, the partition record (re-sealed when the object set changed, i.e.
    /// `digest_change` is given, or when `record_change` updated it), all in one transaction.
    /// `digest_change` lists `(object_id, old_version, new_version)`; 0 = absent.
    pub async fn commit(
        &self,
        engine: &Engine,
        mutations: Vec<Mutation>,
        entries: Vec<EntryContent>,
        digest_change: Option<Vec<(ObjectId, i64, i64)>>,
    ) -> Result<()> {
        self.commit_claimed(engine, mutations, entries, digest_change, &[])
            .await
    }

    /// As [`commit`](Self::commit), refused with `TRESOR_ALREADY_EXISTS` (nothing written) if
    /// a token object named by `claims` exists. The check runs under the writer lock on the
    /// state the commit's compare-and-swap expects: if another writer (node) added such an
    /// object meanwhile, the swap fails, the state is refreshed and the check sees it.
    pub async fn commit_claimed(
        &self,
        engine: &Engine,
        mutations: Vec<Mutation>,
        entries: Vec<EntryContent>,
        digest_change: Option<Vec<(ObjectId, i64, i64)>>,
        claims: &[LabelClaim],
    ) -> Result<()> {
        // A conflict with another writer on the same store (another node appending to this
        // partition's audit chain, say) leaves nothing written and the cached state refreshed:
        // the same commit is rebuilt on the new state. A change that really collides (the
        // same object changed elsewhere) keeps failing its version check and is reported.
        let mut attempt = 0;
        loop {
            let r = self
                .commit_inner(
                    engine,
                    mutations.clone(),
                    entries.clone(),
                    digest_change.clone(),
                    claims,
                    |_| Ok(false),
                )
                .await;
            match r {
                Err(e) if is_conflict(&e) && attempt < COMMIT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(partition = %self.name, attempt, error = %e, "commit conflicted with another writer; rebuilding it");
                    // Jittered backoff, so two nodes flushing the same partition do not keep
                    // colliding in step.
                    let mut b = [0u8; 1];
                    let _ = openssl::rand::rand_bytes(&mut b);
                    let cap_us = 100u64 << attempt.min(6);
                    let wait = cap_us * u64::from(b[0]) / 255;
                    tokio::time::sleep(std::time::Duration::from_micros(wait.max(50))).await;
                }
                r => return r,
            }
        }
    }

    /// Commit queued key uses; `force_checkpoint` signs a checkpoint at the new head even if
    /// the time and count thresholds are not reached (on seal and shutdown).
    pub async fn flush(&self, engine: &Engine, force_checkpoint: bool) -> Result<()> {
        if force_checkpoint {
            self.force_checkpoint.store(true, Ordering::Release);
        }
        self.commit(engine, Vec::new(), Vec::new(), None).await
    }

    /// As [`commit`](Self::commit), with a function that may change the partition record
    /// (returns true if it did).
    pub async fn commit_with(
        &self,
        engine: &Engine,
        mutations: Vec<Mutation>,
        entries: Vec<EntryContent>,
        digest_change: Option<Vec<(ObjectId, i64, i64)>>,
        change_record: impl FnOnce(&mut PartitionRecord) -> Result<bool>,
    ) -> Result<()> {
        self.commit_inner(
            engine,
            mutations,
            entries,
            digest_change,
            &[],
            change_record,
        )
        .await
    }

    /// Fail if a token object named by a claim exists (under the writer lock).
    async fn check_claims(&self, engine: &Engine, claims: &[LabelClaim]) -> Result<()> {
        for claim in claims {
            let rows = engine
                .store
                .find_objects(
                    self.id,
                    &tresor_store::ObjectFilter {
                        label: Some(claim.label.clone()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(store_err)?;
            let versions = self.versions.read();
            // Rows outside the sealed object set are not objects (and if another writer added
            // them, this commit's compare-and-swap fails and the check runs again).
            let taken = rows.iter().any(|r| {
                (0..64).contains(&r.class)
                    && claim.classes & (1u64 << r.class) != 0
                    && versions.get(&r.object_id) == Some(&r.version)
            });
            if taken {
                return Err(Error::new(
                    Rv::Vendor(vendor::ALREADY_EXISTS),
                    format!("an object labelled {:?} exists", claim.label),
                ));
            }
        }
        Ok(())
    }

    async fn commit_inner(
        &self,
        engine: &Engine,
        mutations: Vec<Mutation>,
        entries: Vec<EntryContent>,
        digest_change: Option<Vec<(ObjectId, i64, i64)>>,
        claims: &[LabelClaim],
        change_record: impl FnOnce(&mut PartitionRecord) -> Result<bool>,
    ) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(Error::new(
                Rv::Vendor(vendor::USER_NOT_FOUND),
                format!("partition '{}' was deleted", self.name),
            ));
        }
        let un = engine.unsealed()?;
        let mut w = self.writer.lock().await;
        self.check_claims(engine, claims).await?;
        let taken = self.take_pending();
        let mut batch = WriteBatch::new();
        batch.mutations = mutations;
        for (oid, n) in &taken.usage {
            batch.push(Mutation::AddUsage {
                partition_id: self.id,
                object_id: *oid,
                n: *n,
            });
        }
        // The partition record: new digest and/or changed settings.
        let mut new_digest = w.digest;
        if let Some(changes) = &digest_change {
            for (oid, old, new) in changes {
                if *old != 0 {
                    self.digest_key.remove(&mut new_digest, *oid, *old)?;
                }
                if *new != 0 {
                    self.digest_key.add(&mut new_digest, *oid, *new)?;
                }
            }
        }
        let record_json_before = serde_json::to_string(&w.record)
            .map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?;
        let mut record: PartitionRecord = serde_json::from_str(&record_json_before)
            .map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?;
        let changed = match change_record(&mut record) {
            Ok(c) => c,
            Err(e) => {
                // Nothing is written: put the queued uses back for the next commit.
                self.own.pending.lock().merge(taken);
                return Err(e);
            }
        };
        let mut new_row_version = w.row_version;
        if changed || digest_change.is_some() {
            record.digest = hex::encode(new_digest);
            new_row_version += 1;
            let pk8 = Zeroizing::new(self.attest_key.private_key_to_pkcs8()?);
            let sealed = Partition::seal_row(
                &un.master,
                self.id,
                new_row_version,
                &self.key,
                &record,
                &pk8,
            )?;
            batch.push(Mutation::UpdatePartition {
                row: PartitionRow {
                    id: self.id,
                    name: self.name.clone(),
                    created: record.created,
                    version: new_row_version,
                    sealed,
                    so_failures: 0,
                    user_failures: 0,
                },
                expected_version: w.row_version,
            });
        }
        // The audit chain: queued key uses first, then this change's entries. The rows are
        // built by the store inside the write transaction, on the head it holds then, so
        // several nodes appending to this partition never conflict on the chain.
        let mut all = taken.entries();
        all.extend(entries);
        // Checkpoints: every CHECKPOINT_EVERY entries, at least once a second while entries are
        // written, and when forced (seal, shutdown). Not per state change: a partition of a
        // million keys would carry a million signed checkpoints.
        let now = audit::now_ns();
        let forced = self.force_checkpoint.swap(false, Ordering::AcqRel);
        let since_last_ns = now - w.last_checkpoint_ns;
        let outcome: Arc<parking_lot::Mutex<Option<ChainOutcome>>> =
            Arc::new(parking_lot::Mutex::new(None));
        let chain: tresor_store::ChainBuilder = {
            let outcome = outcome.clone();
            let un = un.clone();
            let pid = self.id;
            let entries = all.clone();
            Box::new(move |head: tresor_store::ChainHead| {
                let head_hash = head.hash.unwrap_or_else(|| audit::GENESIS.to_vec());
                let (rows, seq, hash) = audit::chain_rows(pid, head.seq, &head_hash, &entries)
                    .map_err(|e| e.to_string())?;
                let mut out: Vec<Mutation> = rows.into_iter().map(Mutation::AppendAudit).collect();
                let checkpoint = seq > head.last_checkpoint
                    && (seq - head.last_checkpoint >= CHECKPOINT_EVERY
                        || since_last_ns >= 1_000_000_000
                        || forced);
                if checkpoint {
                    let cert = un.node_cert.to_der().map_err(|e| e.to_string())?;
                    out.push(Mutation::PutCheckpoint(
                        audit::sign_checkpoint(&un.node_key, &cert, pid, seq, &hash)
                            .map_err(|e| e.to_string())?,
                    ));
                }
                *outcome.lock() = Some((seq, hash, checkpoint));
                Ok(out)
            })
        };
        let committed = if all.is_empty() {
            engine.store.commit(batch).await
        } else {
            engine.store.commit_chained(batch, self.id, chain).await
        };
        if let Err(e) = committed {
            if forced {
                self.force_checkpoint.store(true, Ordering::Release);
            }
            let conflict = match &e {
                tresor_store::StoreError::Conflict(m) => Some(m.clone()),
                _ => None,
            };
            // Nothing was written: put the queued uses back, in front of newer ones.
            {
                let mut p = self.own.pending.lock();
                p.merge(taken);
                if !all.is_empty() && p.len() >= engine.config.max_pending_audit {
                    self.audit_failed.store(true, Ordering::Release);
                }
            }
            if let Some(what) = conflict {
                // Another writer (a second process or node on the same store) changed this
                // partition: re-read its state so that the caller's retry builds on it.
                // Only the audit chain moved (the usual case: another node flushed its key
                // uses): re-reading its head is enough. Anything else: the whole state.
                let row_moved = engine
                    .store
                    .partition(self.id)
                    .await
                    .map_err(store_err)?
                    .is_none_or(|r| r.version != w.row_version);
                if row_moved {
                    self.refresh(engine, &mut w).await?;
                } else {
                    let (seq, hash) = engine
                        .store
                        .audit_head(self.id)
                        .await
                        .map_err(store_err)?
                        .map(|r| (r.seq, r.hash))
                        .unwrap_or((0, audit::GENESIS.to_vec()));
                    w.head_seq = seq;
                    w.head_hash = hash;
                    w.last_checkpoint = engine
                        .store
                        .last_checkpoint(self.id)
                        .await
                        .map_err(store_err)?
                        .map_or(0, |c| c.seq);
                }
                return Err(Error::new(
                    Rv::FunctionFailed,
                    format!("partition '{}' {CONFLICT_DETAIL} ({what})", self.name),
                ));
            }
            return Err(store_err(e));
        }
        self.audit_failed.store(false, Ordering::Release);
        if let Some((seq, hash, checkpoint)) = outcome.lock().take() {
            w.head_seq = seq;
            w.head_hash = hash;
            if checkpoint {
                w.last_checkpoint = seq;
                w.last_checkpoint_ns = now;
            }
        }
        if changed || digest_change.is_some() {
            w.row_version = new_row_version;
            w.digest = new_digest;
            self.clients_from(&record);
            w.record = record;
        }
        if let Some(changes) = digest_change {
            let mut v = self.versions.write();
            let mut cache = self.cache.write();
            for (oid, _, new) in changes {
                cache.remove(&oid);
                if new == 0 {
                    v.remove(&oid);
                } else {
                    v.insert(oid, new);
                }
            }
        }
        Ok(())
    }
}

impl Partition {
    /// Bring the cached state up to date if another writer (a second process or node on the
    /// same store) changed the partition since it was read: one row read, and a full
    /// [`refresh`](Self::refresh) only when the stored row version differs.
    pub(crate) async fn sync(&self, engine: &Engine) -> Result<()> {
        let row = engine
            .store
            .partition(self.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| self.deleted_elsewhere(engine))?;
        let mut w = self.writer.lock().await;
        if row.version != w.row_version {
            self.refresh(engine, &mut w).await?;
        }
        Ok(())
    }

    /// The partition's row is gone (deleted through another node or process): unload it, so that
    /// its name no longer finds it here, and fail its contexts from their next call. Key uses
    /// still queued for it cannot be written any more (their number is logged). Returns the
    /// error to report.
    pub(crate) fn deleted_elsewhere(&self, engine: &Engine) -> Error {
        {
            let mut map = engine.partitions.write();
            if map
                .get(&self.id)
                .is_some_and(|q| std::ptr::eq(Arc::as_ptr(q), self))
            {
                map.remove(&self.id);
            }
        }
        if !self.deleted.swap(true, Ordering::AcqRel) {
            let lost = self.take_pending().len();
            tracing::warn!(partition = %self.name, queued_key_uses_lost = lost, "partition deleted elsewhere: unloaded");
        }
        Error::new(
            Rv::Vendor(vendor::USER_NOT_FOUND),
            format!("partition '{}' was deleted", self.name),
        )
    }

    /// Refresh if `stored_version`, the row version just read from the store, is newer than the
    /// loaded state (another writer changed the partition); true if it did.
    pub(crate) async fn sync_to(&self, engine: &Engine, stored_version: i64) -> Result<bool> {
        let mut w = self.writer.lock().await;
        // Versions only grow; this node's own commit since the read leaves nothing to do.
        if stored_version <= w.row_version {
            return Ok(false);
        }
        self.refresh(engine, &mut w).await?;
        Ok(true)
    }

    /// Re-read the partition's sealed record, object versions and audit head from the store
    /// (after another writer changed them), checking the version digest again.
    pub(crate) async fn refresh(&self, engine: &Engine, w: &mut WriterState) -> Result<()> {
        let row = engine
            .store
            .partition(self.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| self.deleted_elsewhere(engine))?;
        let st = read_state(engine, &row, &self.key, &self.digest_key).await?;
        let reinitialised = st.writer.record.generation != w.record.generation;
        self.clients_from(&st.writer.record);
        *w = st.writer;
        let versions: HashMap<ObjectId, i64> = st.versions.into_iter().collect();
        {
            // Objects whose version did not move stay loaded (their sealed content is bound to
            // that version); the rest are read again at their next use.
            let mut cache = self.cache.write();
            if reinitialised {
                cache.clear();
            } else {
                cache.retain(|oid, c| versions.get(oid) == Some(&c.version));
            }
        }
        *self.versions.write() = versions;
        // C_InitToken through another node: this node's contexts notice at their next call.
        self.generation
            .fetch_max(w.record.generation, Ordering::AcqRel);
        Ok(())
    }
}

fn client_set(record: &PartitionRecord) -> std::collections::HashSet<String> {
    record
        .clients
        .iter()
        .map(|c| c.fingerprint.clone())
        .collect()
}

/// What a partition row and the store say about a partition, checked: the sealed record (its
/// name matching the row), the object versions (matching the sealed digest) and the audit head.
struct StoredState {
    attest_pk8: Zeroizing<Vec<u8>>,
    versions: Vec<(ObjectId, i64)>,
    writer: WriterState,
}

async fn read_state(
    engine: &Engine,
    row: &PartitionRow,
    key: &SealKey,
    digest_key: &VersionDigest,
) -> Result<StoredState> {
    let (_, sealed) = split_payload(&row.sealed)?;
    let payload = seal::open(
        key,
        &seal::aad_partition_record(row.id, row.version),
        sealed,
    )?;
    let (json, pk8) = split_payload(&payload)?;
    let record: PartitionRecord = serde_json::from_slice(json)
        .map_err(|e| Error::integrity(format!("partition {}: record unreadable: {e}", row.id)))?;
    if record.name != row.name {
        return Err(Error::integrity(format!(
            "partition {}: name column does not match the sealed record",
            row.id
        )));
    }
    let versions = engine
        .store
        .object_versions(row.id)
        .await
        .map_err(store_err)?;
    let stored = parse_digest(&record.digest)?;
    if !VersionDigest::matches(&digest_key.of_all(versions.iter().copied())?, &stored) {
        return Err(Error::integrity(format!(
            "partition '{}': the stored objects or their versions differ from the sealed digest (an object was added, removed or rolled back outside the engine)",
            row.name
        )));
    }
    let (head_seq, head_hash) = engine
        .store
        .audit_head(row.id)
        .await
        .map_err(store_err)?
        .map(|r| (r.seq, r.hash))
        .unwrap_or((0, audit::GENESIS.to_vec()));
    let last_checkpoint = engine
        .store
        .last_checkpoint(row.id)
        .await
        .map_err(store_err)?
        .map_or(0, |c| c.seq);
    Ok(StoredState {
        attest_pk8: Zeroizing::new(pk8.to_vec()),
        versions,
        writer: WriterState {
            row_version: row.version,
            record,
            digest: stored,
            head_seq,
            head_hash,
            last_checkpoint,
            last_checkpoint_ns: 0,
        },
    })
}

fn parse_digest(s: &str) -> Result<Digest> {
    let v = hex::decode(s).map_err(|_| Error::integrity("partition digest is not hex"))?;
    v.try_into()
        .map_err(|_| Error::integrity("partition digest has the wrong length"))
}

/// A random non-zero positive i64.
pub(crate) fn random_id() -> Result<i64> {
    loop {
        let mut b = [0u8; 8];
        openssl::rand::rand_bytes(&mut b)?;
        let v = i64::from_be_bytes(b) & i64::MAX;
        if v != 0 {
            return Ok(v);
        }
    }
}

/// Engine methods for partitions (administration; no login).
impl Engine {
    /// Create a partition with its SO PIN and, optionally, the user PIN.
    pub async fn create_partition(
        &self,
        name: &str,
        so_pin: &[u8],
        user_pin: Option<&[u8]>,
    ) -> Result<i64> {
        self.check_active()?;
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "partition names are 1-32 characters of A-Z a-z 0-9 - _ .",
            ));
        }
        if self
            .store
            .partition_by_name(name)
            .await
            .map_err(store_err)?
            .is_some()
        {
            return Err(Error::new(
                Rv::Vendor(vendor::ALREADY_EXISTS),
                format!("partition '{name}' already exists"),
            ));
        }
        let so_hash = self.hash_pin(so_pin).await?;
        let user_hash = match user_pin {
            Some(p) => Some(self.hash_pin(p).await?),
            None => None,
        };
        let un = self.unsealed()?;
        let id = random_id()?;
        let key = SealKey::random()?;
        let attest_key = crate::attest::new_p256_key()?;
        let attest_cert = crate::attest::issue_cert(
            &format!("Tresor attestation key of partition {name}"),
            &attest_key,
            Some((&un.node_cert, &un.node_key)),
            None,
            None,
            365 * 10,
        )?;
        let created = audit::now_ns() / 1_000_000_000;
        let record = PartitionRecord {
            name: name.to_owned(),
            created,
            so_pin: so_hash,
            user_pin: user_hash,
            attest_cert: attest_cert.to_der()?,
            digest: hex::encode(VersionDigest::empty()),
            setup: None,
            clients: Vec::new(),
            generation: 0,
        };
        let pk8 = Zeroizing::new(attest_key.private_key_to_pkcs8()?);
        let sealed = Partition::seal_row(&un.master, id, 1, &key, &record, &pk8)?;
        let mut batch = WriteBatch::new();
        batch.push(Mutation::InsertPartition(PartitionRow {
            id,
            name: name.to_owned(),
            created,
            version: 1,
            sealed,
            so_failures: 0,
            user_failures: 0,
        }));
        let entry = EntryContent::now(
            "admin",
            "partition.create",
            None,
            serde_json::json!({"partition": name, "id": id}).to_string(),
        );
        self.commit_cluster(batch, vec![entry]).await?;
        Ok(id)
    }

    /// All partitions with their object counts.
    pub async fn list_partitions(&self) -> Result<Vec<PartitionSummary>> {
        let rows = self.store.partitions().await.map_err(store_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let objects = self.store.count_objects(r.id).await.map_err(store_err)?;
            out.push(PartitionSummary {
                id: r.id,
                name: r.name,
                created: r.created,
                objects,
            });
        }
        Ok(out)
    }

    /// Delete a partition and all its objects (crypto-shredded with its key); its audit chain
    /// stays.
    pub async fn delete_partition(&self, name: &str) -> Result<()> {
        self.check_active()?;
        let row = self
            .store
            .partition_by_name(name)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::new(
                    Rv::Vendor(vendor::USER_NOT_FOUND),
                    format!("partition '{name}' does not exist"),
                )
            })?;
        let loaded = self.partitions.read().get(&row.id).cloned();
        if let Some(p) = loaded {
            // Write its queued key uses first; a failure here must not keep the partition alive.
            if let Err(e) = p.flush(self, true).await {
                tracing::warn!(partition = name, error = %e, "could not flush audit entries before deletion");
            }
        }
        let mut batch = WriteBatch::new();
        batch.push(Mutation::DeletePartition {
            partition_id: row.id,
        });
        let entry = EntryContent::now(
            "admin",
            "partition.delete",
            None,
            serde_json::json!({"partition": name, "id": row.id}).to_string(),
        );
        self.commit_cluster(batch, vec![entry]).await?;
        if let Some(p) = self.partitions.write().remove(&row.id) {
            p.deleted.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Compare every loaded partition with the store (one query) and bring those that another
    /// node or process changed up to date: their record (PINs, registered client keys, token
    /// generation), object versions and audit head are read again, and cached objects whose
    /// version moved are dropped. A partition deleted elsewhere is unloaded and its contexts
    /// fail with `USER_NOT_FOUND` from their next call; key uses still queued for it are lost
    /// with it (counted in the log). Run every `sync_interval` by [`Engine::spawn_background`].
    /// Returns how many partitions were refreshed or unloaded.
    pub async fn sync_partitions(&self) -> Result<usize> {
        let loaded: Vec<Arc<Partition>> = self.partitions.read().values().cloned().collect();
        if loaded.is_empty() {
            return Ok(0);
        }
        let counters = &self.sync_counters;
        counters.runs.fetch_add(1, Ordering::Relaxed);
        let r = self.sync_loaded(loaded).await;
        if r.is_err() {
            counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn sync_loaded(&self, loaded: Vec<Arc<Partition>>) -> Result<usize> {
        let counters = &self.sync_counters;
        // Listed before the query: a partition loaded after it may not be in the answer.
        let stored: HashMap<i64, i64> = self
            .store
            .partition_versions()
            .await
            .map_err(store_err)?
            .into_iter()
            .collect();
        let mut changed = 0;
        let mut first_err = None;
        for p in loaded {
            match stored.get(&p.id) {
                Some(&version) => match p.sync_to(self, version).await {
                    Ok(true) => {
                        changed += 1;
                        counters.refreshed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(partition = %p.name, version, "partition changed elsewhere: state re-read");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(partition = %p.name, error = %e, "partition changed elsewhere but could not be re-read");
                        first_err.get_or_insert(e);
                    }
                },
                None => {
                    p.deleted_elsewhere(self);
                    changed += 1;
                    counters.unloaded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        first_err.map_or(Ok(changed), Err)
    }

    /// Reset a partition's SO PIN (administration, e.g. after an SO lockout); clears the SO
    /// failure count.
    pub async fn reset_so_pin(&self, name: &str, new_pin: &[u8]) -> Result<()> {
        let p = self.partition(name).await?;
        let hash = self.hash_pin(new_pin).await?;
        let row = self.store.partition(p.id).await.map_err(store_err)?;
        let user_failures = row.map_or(0, |r| r.user_failures);
        let m = vec![Mutation::SetPinFailures {
            partition_id: p.id,
            so_failures: 0,
            user_failures,
        }];
        let entry = EntryContent::now("admin", "pin.reset_so", None, "{}".into());
        p.commit_with(self, m, vec![entry], None, |r| {
            r.so_pin = hash;
            Ok(true)
        })
        .await
    }

    /// The loaded partition, loading it on first use.
    pub(crate) async fn partition(&self, name: &str) -> Result<Arc<Partition>> {
        self.check_active()?;
        if let Some(p) = self.partitions.read().values().find(|p| p.name == name) {
            return Ok(p.clone());
        }
        let row = self
            .store
            .partition_by_name(name)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::new(
                    Rv::Vendor(vendor::USER_NOT_FOUND),
                    format!("partition '{name}' does not exist"),
                )
            })?;
        let loaded = Arc::new(Partition::load(self, &row).await?);
        let mut map = self.partitions.write();
        Ok(map.entry(row.id).or_insert(loaded).clone())
    }

    /// Argon2id hash of a PIN (on a blocking thread: it takes tens of milliseconds).
    pub(crate) async fn hash_pin(&self, pin: &[u8]) -> Result<String> {
        check_pin_len(pin)?;
        let params = argon2::Params::new(
            self.config.argon2_m_kib,
            self.config.argon2_t,
            self.config.argon2_p,
            None,
        )
        .map_err(|e| Error::new(Rv::GeneralError, format!("argon2 parameters: {e}")))?;
        let pin = Zeroizing::new(pin.to_vec());
        tokio::task::spawn_blocking(move || {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let mut salt = [0u8; 16];
            openssl::rand::rand_bytes(&mut salt)?;
            let salt = SaltString::encode_b64(&salt)
                .map_err(|e| Error::new(Rv::GeneralError, format!("salt: {e}")))?;
            let a =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            a.hash_password(&pin, &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::new(Rv::GeneralError, format!("argon2: {e}")))
        })
        .await
        .map_err(|e| Error::new(Rv::GeneralError, format!("PIN hashing task: {e}")))?
    }

    /// Verify a PIN against its PHC string, in constant time, on a blocking thread.
    pub(crate) async fn verify_pin(&self, phc: &str, pin: &[u8]) -> Result<bool> {
        let phc = phc.to_owned();
        let pin = Zeroizing::new(pin.to_vec());
        tokio::task::spawn_blocking(move || {
            use argon2::password_hash::{PasswordHash, PasswordVerifier};
            let h = PasswordHash::new(&phc)
                .map_err(|_| Error::integrity("stored PIN hash is malformed"))?;
            Ok(argon2::Argon2::default().verify_password(&pin, &h).is_ok())
        })
        .await
        .map_err(|e| Error::new(Rv::GeneralError, format!("PIN check task: {e}")))?
    }
}

/// PINs are 4 to 64 bytes.
pub(crate) fn check_pin_len(pin: &[u8]) -> Result<()> {
    if (4..=64).contains(&pin.len()) {
        Ok(())
    } else {
        Err(Error::new(
            Rv::PinLenRange,
            "a PIN must be 4 to 64 bytes long",
        ))
    }
}

//! Where the gateway finds service users: the [`Directory`] trait, its store-backed
//! implementation, an in-memory one, and the short-lived cache in front of them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use parking_lot::Mutex;

use crate::dir::ServiceEntry;
use crate::error::{GatewayError, Result};

/// The boxed future every [`Directory`] method returns.
pub type DirFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The service directory as the gateway sees it.
pub trait Directory: Send + Sync + 'static {
    /// Every service's allowlist (to close, before TLS, connections from addresses that no
    /// service allows).
    fn allowlists(&self) -> DirFuture<'_, Vec<Vec<IpNet>>>;
    /// One service by its service user name.
    fn lookup<'a>(&'a self, service_user: &'a str) -> DirFuture<'a, Option<ServiceEntry>>;
    /// Persist a service user's lockout counters (`failures = 0, locked_until = 0` resets).
    fn record_failure<'a>(
        &'a self,
        service_user: &'a str,
        failures: u32,
        locked_until: i64,
    ) -> DirFuture<'a, ()>;
    /// A counter that moves soon after a service was added, changed or deleted, if this
    /// directory can tell; the gateway then drops its cached entries and re-checks its open
    /// connections at once instead of when the cache expires. `None`: the cache lifetime alone
    /// bounds how long a change takes to reach the gateway.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// The directory kept in a [`tresor_store::Store`] (`services` table).
#[derive(Debug, Clone)]
pub struct StoreDirectory(pub Arc<dyn tresor_store::Store>);

impl StoreDirectory {
    /// Wrap a store.
    pub fn new(store: Arc<dyn tresor_store::Store>) -> Self {
        StoreDirectory(store)
    }
}

impl Directory for StoreDirectory {
    fn allowlists(&self) -> DirFuture<'_, Vec<Vec<IpNet>>> {
        Box::pin(async move {
            let rows = self.0.services().await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                match ServiceEntry::from_row(row) {
                    Ok(e) if !e.record.disabled => out.push(e.record.allowlist),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(service_user = %row.service_user, error = %e,
                            "unreadable service record skipped");
                    }
                }
            }
            Ok(out)
        })
    }

    fn lookup<'a>(&'a self, service_user: &'a str) -> DirFuture<'a, Option<ServiceEntry>> {
        Box::pin(async move {
            match self.0.service_by_user(service_user).await? {
                Some(row) => Ok(Some(ServiceEntry::from_row(&row)?)),
                None => Ok(None),
            }
        })
    }

    fn record_failure<'a>(
        &'a self,
        service_user: &'a str,
        failures: u32,
        locked_until: i64,
    ) -> DirFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .set_service_failures(service_user, i64::from(failures), locked_until)
                .await?;
            Ok(())
        })
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.0.service_changes()
    }
}

/// A directory held in memory (tests, embedding).
#[derive(Debug)]
pub struct MemoryDirectory {
    entries: Mutex<HashMap<String, ServiceEntry>>,
    /// Moves on every `put` and `remove` (see [`Directory::changes`]).
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for MemoryDirectory {
    fn default() -> Self {
        MemoryDirectory {
            entries: Mutex::new(HashMap::new()),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert or replace a service (keyed by its service user).
    pub fn put(&self, entry: ServiceEntry) {
        self.entries
            .lock()
            .insert(entry.record.service_user.clone(), entry);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Remove a service.
    pub fn remove(&self, service_user: &str) -> Option<ServiceEntry> {
        let gone = self.entries.lock().remove(service_user);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        gone
    }

    /// The current entry of a service user.
    pub fn get(&self, service_user: &str) -> Option<ServiceEntry> {
        self.entries.lock().get(service_user).cloned()
    }
}

impl Directory for MemoryDirectory {
    fn allowlists(&self) -> DirFuture<'_, Vec<Vec<IpNet>>> {
        let lists = self
            .entries
            .lock()
            .values()
            .filter(|e| !e.record.disabled)
            .map(|e| e.record.allowlist.clone())
            .collect();
        Box::pin(async move { Ok(lists) })
    }

    fn lookup<'a>(&'a self, service_user: &'a str) -> DirFuture<'a, Option<ServiceEntry>> {
        let e = self.get(service_user);
        Box::pin(async move { Ok(e) })
    }

    fn record_failure<'a>(
        &'a self,
        service_user: &'a str,
        failures: u32,
        locked_until: i64,
    ) -> DirFuture<'a, ()> {
        let r = match self.entries.lock().get_mut(service_user) {
            Some(e) => {
                e.failures = failures;
                e.locked_until = locked_until;
                Ok(())
            }
            None => Err(GatewayError::Directory(format!(
                "no service user {service_user:?}"
            ))),
        };
        Box::pin(async move { r })
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.changed.subscribe())
    }
}

/// Entries kept in the lookup cache at most (unknown names are cached too).
const MAX_CACHED_LOOKUPS: usize = 10_000;

/// Bound on one directory call.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(5);

/// A cached directory answer: when it was fetched, in which [`CachedDirectory::epoch`], what.
type Cached = (Instant, u64, Option<ServiceEntry>);

/// The directory behind a short-lived cache.
pub(crate) struct CachedDirectory {
    inner: Arc<dyn Directory>,
    ttl: Duration,
    union: Mutex<Option<(Instant, Arc<Vec<IpNet>>)>>,
    union_refresh: tokio::sync::Mutex<()>,
    /// Answers by service user.
    lookups: Mutex<HashMap<String, Cached>>,
    /// Moves with each reported change: answers of an older epoch are stale, but kept as the
    /// previous version a fresh answer is compared with.
    epoch: std::sync::atomic::AtomicU64,
    /// One fetch at a time per service user: callers that miss while a fetch of the same name
    /// is in flight wait for it and take its answer (after a change, every open connection of
    /// a service looks it up within a few milliseconds).
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Moves each time the directory said that something changed and the cache was dropped
    /// (see [`CachedDirectory::changed`]); open connections re-check their admission then.
    generation: tokio::sync::watch::Sender<u64>,
}

impl CachedDirectory {
    pub(crate) fn new(inner: Arc<dyn Directory>, ttl: Duration) -> Self {
        CachedDirectory {
            inner,
            ttl,
            union: Mutex::new(None),
            union_refresh: tokio::sync::Mutex::new(()),
            lookups: Mutex::new(HashMap::new()),
            epoch: std::sync::atomic::AtomicU64::new(0),
            fetching: Mutex::new(HashMap::new()),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The wrapped directory's change counter (see [`Directory::changes`]).
    pub(crate) fn source_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.changes()
    }

    /// The directory changed: every cached answer is stale (kept only as the previous version
    /// a fresh one is compared with), the allowlist union is dropped, and the connections
    /// waiting in [`CachedDirectory::subscribe`] are told.
    pub(crate) fn changed(&self) {
        *self.union.lock() = None;
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.generation.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Moves after each [`CachedDirectory::changed`].
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn fresh_union(&self) -> Option<Arc<Vec<IpNet>>> {
        match &*self.union.lock() {
            Some((at, u)) if at.elapsed() < self.ttl => Some(u.clone()),
            _ => None,
        }
    }

    /// The union of every service's allowlist. On a directory error the last known union is
    /// used (if there is one).
    pub(crate) async fn allowlist_union(&self) -> Result<Arc<Vec<IpNet>>> {
        if let Some(u) = self.fresh_union() {
            return Ok(u);
        }
        let _one_refresh = self.union_refresh.lock().await;
        if let Some(u) = self.fresh_union() {
            return Ok(u);
        }
        let fetched = tokio::time::timeout(DIRECTORY_TIMEOUT, self.inner.allowlists())
            .await
            .map_err(|_| GatewayError::Timeout("directory allowlists"))
            .and_then(|r| r);
        match fetched {
            Ok(lists) => {
                let mut nets: Vec<IpNet> = lists.into_iter().flatten().collect();
                nets.sort();
                nets.dedup();
                let nets = Arc::new(IpNet::aggregate(&nets));
                *self.union.lock() = Some((Instant::now(), nets.clone()));
                Ok(nets)
            }
            Err(e) => {
                let stale = self.union.lock().as_ref().map(|(_, u)| u.clone());
                match stale {
                    Some(u) => {
                        tracing::warn!(error = %e, "directory unavailable: using the last allowlists");
                        Ok(u)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// The cached answer for `service_user` if it is recent and no change was reported since.
    fn fresh(&self, service_user: &str) -> Option<Option<ServiceEntry>> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        match self.lookups.lock().get(service_user) {
            Some((at, e_epoch, e)) if *e_epoch == epoch && at.elapsed() < self.ttl => {
                Some(e.clone())
            }
            _ => None,
        }
    }

    /// A service entry, from the cache if recent. Returns the entry and whether the record
    /// changed since the previous lookup of the same name (for the caller that fetched it).
    pub(crate) async fn lookup(&self, service_user: &str) -> Result<(Option<ServiceEntry>, bool)> {
        if let Some(e) = self.fresh(service_user) {
            return Ok((e, false));
        }
        let gate = self
            .fetching
            .lock()
            .entry(service_user.to_owned())
            .or_default()
            .clone();
        let result = async {
            let _one = gate.lock().await;
            // The fetch this caller waited for may have answered.
            if let Some(e) = self.fresh(service_user) {
                return Ok((e, false));
            }
            let previous = self
                .lookups
                .lock()
                .get(service_user)
                .and_then(|(_, _, e)| e.clone());
            // Read before fetching: a change reported during the fetch leaves its answer stale.
            let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
            let fresh = self.lookup_uncached(service_user).await?;
            let changed = match (&previous, &fresh) {
                (Some(a), Some(b)) => record_changed(&a.record, &b.record),
                (Some(_), None) => true,
                _ => false,
            };
            let mut map = self.lookups.lock();
            if map.len() >= MAX_CACHED_LOOKUPS {
                map.clear();
            }
            map.insert(
                service_user.to_owned(),
                (Instant::now(), epoch, fresh.clone()),
            );
            Ok((fresh, changed))
        }
        .await;
        // The last caller through the gate removes it (the map holds one reference, each
        // caller one, all taken under this lock).
        let mut fetching = self.fetching.lock();
        if Arc::strong_count(&gate) <= 2
            && fetching
                .get(service_user)
                .is_some_and(|g| Arc::ptr_eq(g, &gate))
        {
            fetching.remove(service_user);
        }
        result
    }

    /// A service entry straight from the directory.
    pub(crate) async fn lookup_uncached(&self, service_user: &str) -> Result<Option<ServiceEntry>> {
        tokio::time::timeout(DIRECTORY_TIMEOUT, self.inner.lookup(service_user))
            .await
            .map_err(|_| GatewayError::Timeout("directory lookup"))?
    }

    /// Persist lockout counters and forget the cached entry.
    pub(crate) async fn record_failure(
        &self,
        service_user: &str,
        failures: u32,
        locked_until: i64,
    ) -> Result<()> {
        self.forget(service_user);
        let r = tokio::time::timeout(
            DIRECTORY_TIMEOUT,
            self.inner
                .record_failure(service_user, failures, locked_until),
        )
        .await
        .map_err(|_| GatewayError::Timeout("directory update"))?;
        self.forget(service_user);
        r
    }

    pub(crate) fn forget(&self, service_user: &str) {
        self.lookups.lock().remove(service_user);
    }

    pub(crate) fn purge(&self) {
        let ttl = self.ttl;
        self.lookups
            .lock()
            .retain(|_, (at, _, _)| at.elapsed() < ttl);
    }
}

/// True if anything a login depends on differs between two versions of a record.
fn record_changed(a: &crate::dir::ServiceRecord, b: &crate::dir::ServiceRecord) -> bool {
    a.password_hash != b.password_hash
        || a.disabled != b.disabled
        || a.allowlist != b.allowlist
        || a.partitions != b.partitions
        || a.nodes != b.nodes
        || a.max_failures != b.max_failures
        || a.lockout_secs != b.lockout_secs
        || a.name != b.name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::ServiceRecord;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(user: &str, hash: &str) -> ServiceEntry {
        ServiceEntry {
            record: ServiceRecord {
                name: format!("svc-{user}"),
                service_user: user.to_owned(),
                password_hash: hash.to_owned(),
                allowlist: vec![],
                partitions: vec!["P1".into()],
                nodes: vec![],
                max_failures: 5,
                lockout_secs: 900,
                created: 0,
                updated: 0,
                disabled: false,
            },
            failures: 0,
            locked_until: 0,
        }
    }

    /// A memory directory whose lookups take a while and are counted.
    struct Slow {
        inner: MemoryDirectory,
        lookups: AtomicUsize,
    }

    impl Directory for Slow {
        fn allowlists(&self) -> DirFuture<'_, Vec<Vec<IpNet>>> {
            self.inner.allowlists()
        }
        fn lookup<'a>(&'a self, service_user: &'a str) -> DirFuture<'a, Option<ServiceEntry>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                self.inner.lookup(service_user).await
            })
        }
        fn record_failure<'a>(
            &'a self,
            service_user: &'a str,
            failures: u32,
            locked_until: i64,
        ) -> DirFuture<'a, ()> {
            self.inner
                .record_failure(service_user, failures, locked_until)
        }
    }

    async fn many_lookups(cache: &Arc<CachedDirectory>, n: usize) -> Vec<(bool, bool)> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let c = cache.clone();
            set.spawn(async move {
                let (e, changed) = c.lookup("a").await.unwrap();
                (e.is_some(), changed)
            });
        }
        set.join_all().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_fetch_once_and_a_change_makes_answers_stale() {
        let slow = Arc::new(Slow {
            inner: MemoryDirectory::new(),
            lookups: AtomicUsize::new(0),
        });
        slow.inner.put(entry("a", "hash-1"));
        let cache = Arc::new(CachedDirectory::new(slow.clone(), Duration::from_secs(60)));
        let got = many_lookups(&cache, 50).await;
        assert!(got.iter().all(|&(found, changed)| found && !changed));
        assert_eq!(
            slow.lookups.load(Ordering::SeqCst),
            1,
            "one fetch for 50 misses"
        );
        // Within the lifetime: from the cache.
        let _ = many_lookups(&cache, 10).await;
        assert_eq!(slow.lookups.load(Ordering::SeqCst), 1);

        // A reported change: the next misses fetch once more, and the caller that fetched
        // learns that the record changed (the stale answer is kept to compare with).
        slow.inner.put(entry("a", "hash-2"));
        cache.changed();
        let got = many_lookups(&cache, 50).await;
        assert_eq!(slow.lookups.load(Ordering::SeqCst), 2);
        assert_eq!(got.iter().filter(|&&(_, changed)| changed).count(), 1);
        assert!(cache.fetching.lock().is_empty(), "gates left behind");

        // A change reported while a fetch is in flight leaves that fetch's answer stale.
        cache.changed();
        let c = cache.clone();
        let during = tokio::spawn(async move { c.lookup("a").await.unwrap() });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cache.changed();
        during.await.unwrap();
        assert!(cache.fresh("a").is_none());
    }
}

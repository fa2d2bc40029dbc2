//! The gateway: accept loop, phase one, node selection, relay.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tresor_proto::gateway::{codes, GatewayMsg};
use tresor_proto::Secret;

use crate::auth::{AuthCache, Limits, Verifier};
use crate::config::GatewayConfig;
use crate::dir::{address_allowed, ServiceEntry};
use crate::directory::{CachedDirectory, Directory};
use crate::error::{GatewayError, Result};
use crate::health::{probe_all, Node};
use crate::relay::{relay, RelayEnd};
use crate::stats::{Counters, GatewayStats, Refusal};
use crate::wire::{read_msg, write_msg};

/// Longest service user, partition or client id accepted in a `Hello`.
const MAX_NAME_LEN: usize = 256;
/// Over-limit connections being refused (TLS, then `Refused`) at once; past it they are
/// closed without a word.
const MAX_REFUSING: usize = 64;
/// Bound on writing a `Refused` and closing.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`Gateway::shutdown`] waits for open connections to end.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A running gateway. Dropping it stops it too (without waiting).
pub struct Gateway {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("nodes", &self.shared.config.nodes)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: GatewayConfig,
    acceptor: TlsAcceptor,
    dir: CachedDirectory,
    auth: AuthCache,
    verifier: Verifier,
    limits: Arc<Limits>,
    nodes: Vec<Arc<Node>>,
    counters: Counters,
    admitted: AtomicUsize,
    per_source: Mutex<HashMap<IpAddr, usize>>,
    refusing: tokio::sync::Semaphore,
    stop: watch::Receiver<bool>,
}

/// A refusal: the code sent to the client, its message, the counter.
struct Refuse {
    code: u32,
    message: &'static str,
    kind: Refusal,
}

const fn refuse(code: u32, message: &'static str, kind: Refusal) -> Refuse {
    Refuse {
        code,
        message,
        kind,
    }
}

/// What a `Hello` carried.
struct Hello {
    request_id: u64,
    service_user: String,
    password: Secret,
    partition: String,
    client_id: String,
}

impl Gateway {
    /// Bind the listener, probe the nodes once, and start serving.
    pub async fn start(config: GatewayConfig, directory: Arc<dyn Directory>) -> Result<Gateway> {
        if config.max_connections == 0 || config.max_connections_per_source == 0 {
            return Err(GatewayError::Config(
                "connection limits must be at least 1".into(),
            ));
        }
        if config.handshake_timeout.is_zero()
            || config.idle_timeout.is_zero()
            || config.health_interval.is_zero()
        {
            return Err(GatewayError::Config("timeouts must not be zero".into()));
        }
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            acceptor: TlsAcceptor::from(config.tls.clone()),
            dir: CachedDirectory::new(directory, config.directory_cache_ttl),
            auth: AuthCache::new(config.auth_cache_ttl)?,
            verifier: Verifier::new(),
            limits: Limits::new(
                config.attempts_per_minute_per_source,
                config.attempts_per_minute_per_user,
            ),
            nodes: config
                .nodes
                .iter()
                .cloned()
                .map(|n| Arc::new(Node::new(n)))
                .collect(),
            counters: Counters::default(),
            admitted: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
            refusing: tokio::sync::Semaphore::new(MAX_REFUSING),
            stop: stop_rx,
            config,
        });
        probe_all(&shared.nodes).await;
        tracing::info!(listen = %local_addr, nodes = shared.nodes.len(),
            healthy = shared.healthy_count(), "gateway started");
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        let health = tokio::spawn(health_loop(shared.clone()));
        let mut tasks = vec![accept, health];
        if let Some(changes) = shared.dir.source_changes() {
            tasks.push(tokio::spawn(directory_loop(shared.clone(), changes)));
        }
        Ok(Gateway {
            local_addr,
            shared,
            stop: stop_tx,
            tasks,
        })
    }

    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters.
    pub fn stats(&self) -> GatewayStats {
        self.shared
            .counters
            .snapshot(self.shared.healthy_count() as u64)
    }

    /// A function that snapshots the counters, for a task that outlives a borrow of the
    /// gateway (an HTTP metrics endpoint).
    pub fn stats_reader(&self) -> impl Fn() -> GatewayStats + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.counters.snapshot(shared.healthy_count() as u64)
    }

    /// Stop accepting, close every connection, and wait (a few seconds at most) until they
    /// are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        while self.shared.counters.open.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(listen = %self.local_addr, "gateway stopped");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Resolves when the gateway is told to stop (or dropped).
async fn stopped(mut rx: watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let stop = stopped(shared.stop.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    let shared = shared.clone();
                    let stop = stopped(shared.stop.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            () = handle(shared, tcp, peer) => {}
                            () = stop => {}
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn health_loop(shared: Arc<Shared>) {
    let stop = stopped(shared.stop.clone());
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(shared.config.health_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: start() has just probed
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                probe_all(&shared.nodes).await;
                shared.dir.purge();
                shared.auth.purge();
                shared.limits.purge();
            }
        }
    }
}

/// Counts a connection as open while alive.
struct OpenGuard<'a>(&'a Counters);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection admitted under the limits; released on drop.
struct Slot<'a> {
    shared: &'a Shared,
    ip: IpAddr,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self.shared.per_source.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        self.shared.admitted.fetch_sub(1, Ordering::Relaxed);
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        // Not secret: only an id. Fall back to the clock.
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_be_bytes(b)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Shared {
    fn healthy_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_healthy()).count()
    }

    fn try_admit(&self, ip: IpAddr) -> Option<Slot<'_>> {
        let mut map = self.per_source.lock();
        let n = map.get(&ip).copied().unwrap_or(0);
        if n >= self.config.max_connections_per_source
            || self.admitted.load(Ordering::Relaxed) >= self.config.max_connections
        {
            return None;
        }
        map.insert(ip, n + 1);
        self.admitted.fetch_add(1, Ordering::Relaxed);
        Some(Slot { shared: self, ip })
    }

    /// Write `Refused` and close, within a bound.
    async fn send_refusal<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        request_id: u64,
        r: &Refuse,
    ) {
        self.counters.refused(r.kind);
        let msg = GatewayMsg::Refused {
            code: r.code,
            message: r.message.to_owned(),
        };
        let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
            let _ = write_msg(stream, request_id, msg).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}

async fn handle(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(&shared.counters);
    let ip = peer.ip().to_canonical();
    let source = SocketAddr::new(ip, peer.port());
    match shared.dir.allowlist_union().await {
        Ok(union) if address_allowed(&union, ip) => {}
        Ok(_) => {
            shared.counters.refused(Refusal::AddressNotAllowedBeforeTls);
            tracing::info!(%source, "address not allowed: closed before TLS");
            return;
        }
        Err(e) => {
            shared.counters.refused(Refusal::AddressNotAllowedBeforeTls);
            tracing::warn!(%source, error = %e, "directory unavailable: closed before TLS");
            return;
        }
    }
    let _ = tcp.set_nodelay(true);
    let Some(_slot) = shared.try_admit(ip) else {
        refuse_busy(&shared, tcp, source).await;
        return;
    };
    let session_id = random_u64();

    // TLS and Hello, under the handshake timeout.
    let phase = tokio::time::timeout(shared.config.handshake_timeout, async {
        let mut tls = match shared.acceptor.accept(tcp).await {
            Ok(t) => t,
            Err(e) => return Err((None, e.into())),
        };
        match read_msg(&mut tls).await {
            Ok(m) => Ok((tls, m)),
            Err(e) => Err((Some(tls), e)),
        }
    })
    .await;
    let (mut tls, envelope) = match phase {
        Err(_) => {
            shared.counters.refused(Refusal::HandshakeTimeout);
            tracing::info!(session_id, %source, "handshake timeout: closed");
            return;
        }
        Ok(Err((None, e))) => {
            shared.counters.refused(Refusal::TlsFailed);
            tracing::info!(session_id, %source, error = %e, "TLS handshake failed");
            return;
        }
        Ok(Err((Some(mut tls), e))) => {
            let _ = shared.limits.source(ip);
            match e {
                GatewayError::Proto(ref pe) => {
                    tracing::info!(session_id, %source, error = %pe, "bad hello: refused");
                    let r = refuse(
                        codes::BAD_HELLO,
                        "expected a Hello frame",
                        Refusal::BadHello,
                    );
                    shared.send_refusal(&mut tls, 0, &r).await;
                }
                _ => {
                    shared.counters.refused(Refusal::BadHello);
                    tracing::info!(session_id, %source, error = %e, "no hello: closed");
                }
            }
            return;
        }
        Ok(Ok(x)) => x,
    };
    let hello = match envelope.body {
        GatewayMsg::Hello {
            service_user,
            password,
            partition,
            client_id,
        } => Hello {
            request_id: envelope.request_id,
            service_user,
            password,
            partition,
            client_id,
        },
        other => {
            let _ = shared.limits.source(ip);
            tracing::info!(session_id, %source, kind = other.name(), "bad hello: refused");
            let r = refuse(
                codes::BAD_HELLO,
                "expected a Hello frame",
                Refusal::BadHello,
            );
            shared.send_refusal(&mut tls, envelope.request_id, &r).await;
            return;
        }
    };

    let (entry, node, mut node_stream) = match login(&shared, &hello, source).await {
        Ok(x) => x,
        Err(r) => {
            tracing::info!(session_id, %source, client_id = ?hello.client_id,
                service_user = ?hello.service_user, partition = ?hello.partition,
                code = format_args!("{:#010x}", r.code), reason = r.message, "login refused");
            shared.send_refusal(&mut tls, hello.request_id, &r).await;
            return;
        }
    };

    let preamble = GatewayMsg::Preamble {
        service: entry.record.name.clone(),
        service_user: hello.service_user.clone(),
        partition: hello.partition.clone(),
        client_id: hello.client_id.clone(),
        source: source.to_string(),
        session_id,
    };
    let sent = tokio::time::timeout(
        shared.config.node_connect_timeout,
        write_msg(&mut node_stream, session_id, preamble),
    )
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        node.set_healthy(false);
        tracing::warn!(session_id, %source, node = %node.addr.name, "preamble to node failed");
        let r = refuse(codes::NO_NODE, "no HSM node available", Refusal::NoNode);
        shared.send_refusal(&mut tls, hello.request_id, &r).await;
        return;
    }
    let accepted = GatewayMsg::Accepted {
        node: node.addr.name.clone(),
        session_id,
    };
    // Counted before the client can see it (a client that reads Accepted sees the count).
    shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = write_msg(&mut tls, hello.request_id, accepted).await {
        tracing::info!(session_id, %source, error = %e, "client left before Accepted");
        return;
    }
    tracing::info!(session_id, %source, client_id = ?hello.client_id,
        service = ?entry.record.name, service_user = ?hello.service_user,
        partition = ?hello.partition, node = %node.addr.name, "connection accepted");
    drop(hello.password);

    let c = &shared.counters;
    let relayed = relay(
        tls,
        node_stream,
        shared.config.idle_timeout,
        &c.bytes_from_clients,
        &c.bytes_to_clients,
    );
    let end = tokio::select! {
        end = relayed => end,
        why = withdrawn(&shared, &hello.service_user, &hello.partition, ip) => {
            // Dropping the relay closes both sides.
            c.withdrawn.fetch_add(1, Ordering::Relaxed);
            tracing::info!(session_id, %source, client_id = ?hello.client_id,
                service_user = ?hello.service_user, partition = ?hello.partition,
                reason = why, "access withdrawn: connection closed");
            RelayEnd::Withdrawn
        }
    };
    if end == RelayEnd::Idle {
        c.idle_timeouts.fetch_add(1, Ordering::Relaxed);
    }
    tracing::info!(session_id, %source, client_id = ?hello.client_id,
        service_user = ?hello.service_user, node = %node.addr.name,
        end = ?end, "connection closed");
}

/// Drops the directory cache whenever the directory says that a service changed, and wakes
/// the open connections' checks ([`withdrawn`]), until the gateway stops.
async fn directory_loop(shared: Arc<Shared>, mut changes: watch::Receiver<u64>) {
    let mut stop = shared.stop.clone();
    loop {
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                changes.borrow_and_update();
                shared.counters.directory_changes.fetch_add(1, Ordering::Relaxed);
                shared.dir.changed();
            }
            _ = stop.changed() => return,
        }
    }
}

/// Longest pause between a directory change and an open connection's re-check, at random, so
/// that thousands of connections do not all ask the directory in the same millisecond.
const RECHECK_SPREAD_MS: u64 = 20;

/// Resolves, with the reason, once the directory no longer admits this connection: its
/// service was deleted or disabled, or no longer allows the source address or the partition.
/// Checked at once (within [`RECHECK_SPREAD_MS`]) when the directory reports a change (the
/// store-backed directory does: on PostgreSQL for any writer, on SQLite for writes in this
/// process), and in any case every `directory_cache_ttl` (plus up to half of it at random, so
/// that connections opened together do not all ask at once), so an operator's change reaches
/// open connections within about twice that even when no notification arrives. A rotated
/// password or a lockout (which wrong passwords from anybody can cause) does not end an
/// authenticated connection; an unavailable directory neither: the connection keeps its
/// admission until the directory says otherwise.
async fn withdrawn(shared: &Shared, user: &str, partition: &str, ip: IpAddr) -> &'static str {
    let ttl = shared
        .config
        .directory_cache_ttl
        .max(Duration::from_millis(10));
    let mut changes = shared.dir.subscribe();
    loop {
        let spread = u32::try_from(random_u64() % 512).unwrap_or(0);
        tokio::select! {
            () = tokio::time::sleep(ttl + ttl / 2 * spread / 512) => {}
            Ok(()) = changes.changed() => {
                changes.borrow_and_update();
                let ms = random_u64() % (RECHECK_SPREAD_MS + 1);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        match shared.dir.lookup(user).await {
            Ok((None, _)) => return "service deleted",
            Ok((Some(entry), _)) => {
                let rec = &entry.record;
                if rec.disabled {
                    return "service disabled";
                }
                if !address_allowed(&rec.allowlist, ip) {
                    return "source address no longer allowed";
                }
                if !rec.partitions.iter().any(|p| p == partition) {
                    return "partition no longer allowed";
                }
            }
            Err(e) => {
                tracing::debug!(service_user = ?user, error = %e, "directory unavailable: admission kept");
            }
        }
    }
}

/// Over the connection limits: TLS, `Refused { MAX_CONNECTIONS }`, close (bounded).
async fn refuse_busy(shared: &Shared, tcp: TcpStream, source: SocketAddr) {
    tracing::info!(%source, "connection limit reached: refused");
    let Ok(_permit) = shared.refusing.try_acquire() else {
        shared.counters.refused(Refusal::MaxConnections);
        return;
    };
    let r = refuse(
        codes::MAX_CONNECTIONS,
        "the gateway is at its connection limit",
        Refusal::MaxConnections,
    );
    let run = async {
        if let Ok(mut tls) = shared.acceptor.accept(tcp).await {
            shared.send_refusal(&mut tls, 0, &r).await;
            true
        } else {
            false
        }
    };
    if !matches!(
        tokio::time::timeout(shared.config.handshake_timeout, run).await,
        Ok(true)
    ) {
        shared.counters.refused(Refusal::MaxConnections);
    }
}

fn names_ok(h: &Hello) -> bool {
    let ok = |s: &str| s.len() <= MAX_NAME_LEN && !s.chars().any(char::is_control);
    !h.service_user.is_empty() && ok(&h.service_user) && ok(&h.partition) && ok(&h.client_id)
}

/// The checks of phase one, in order; on success the service entry and a connected node.
async fn login(
    shared: &Shared,
    hello: &Hello,
    source: SocketAddr,
) -> std::result::Result<(ServiceEntry, Arc<Node>, TcpStream), Refuse> {
    let ip = source.ip();
    let user = hello.service_user.as_str();
    let password = hello.password.expose();
    if !names_ok(hello) {
        let _ = shared.limits.source(ip);
        return Err(refuse(
            codes::BAD_HELLO,
            "service user, partition or client id malformed",
            Refusal::BadHello,
        ));
    }
    let unavailable = || {
        refuse(
            codes::NO_NODE,
            "service temporarily unavailable",
            Refusal::NoNode,
        )
    };
    let auth_failed = || {
        refuse(
            codes::SERVICE_AUTH_FAILED,
            "service user or password wrong",
            Refusal::AuthFailed,
        )
    };
    let rate_limited = || {
        refuse(
            codes::RATE_LIMITED,
            "too many attempts: try again later",
            Refusal::RateLimited,
        )
    };
    let (entry, changed) = shared.dir.lookup(user).await.map_err(|e| {
        tracing::warn!(error = %e, "directory lookup failed");
        unavailable()
    })?;
    if changed {
        shared.auth.forget(user);
    }
    let Some(entry) = entry else {
        if !shared.limits.source(ip) || !shared.limits.user(user) {
            return Err(rate_limited());
        }
        shared.verifier.dummy(password).await;
        return Err(auth_failed());
    };
    let rec = &entry.record;
    if !address_allowed(&rec.allowlist, ip) {
        return Err(refuse(
            codes::ADDRESS_NOT_ALLOWED,
            "source address not allowed for this service",
            Refusal::AddressNotAllowed,
        ));
    }
    let cached = shared.auth.matches(user, password, rec);
    if !cached && (!shared.limits.source(ip) || !shared.limits.user(user)) {
        return Err(rate_limited());
    }
    let now = unix_now();
    if rec.disabled || entry.locked_until > now {
        shared.auth.forget(user);
        return Err(refuse(
            codes::SERVICE_LOCKED,
            "service user locked or disabled",
            Refusal::ServiceLocked,
        ));
    }
    if cached {
        shared
            .counters
            .auth_cache_hits
            .fetch_add(1, Ordering::Relaxed);
    } else if shared.verifier.verify(rec, password).await {
        shared.auth.remember(user, password, rec);
    } else {
        shared.auth.forget(user);
        count_failure(shared, &entry, now).await;
        return Err(auth_failed());
    }
    if entry.failures > 0 || entry.locked_until != 0 {
        if let Err(e) = shared.dir.record_failure(user, 0, 0).await {
            tracing::warn!(service_user = ?user, error = %e, "could not reset the failure counter");
        }
    }
    if !rec.partitions.contains(&hello.partition) {
        return Err(refuse(
            codes::PARTITION_NOT_ALLOWED,
            "partition not allowed for this service",
            Refusal::PartitionNotAllowed,
        ));
    }
    let affinity = affinity_key(user, &hello.partition, &hello.client_id, source.ip());
    let (node, stream) = connect_node(shared, &rec.nodes, affinity)
        .await
        .ok_or_else(|| refuse(codes::NO_NODE, "no HSM node available", Refusal::NoNode))?;
    Ok((entry, node, stream))
}

/// One more wrong password: persist the counter, and lock at `max_failures`.
async fn count_failure(shared: &Shared, cached: &ServiceEntry, now: i64) {
    let user = cached.record.service_user.as_str();
    let current = match shared.dir.lookup_uncached(user).await {
        Ok(Some(e)) => e,
        _ => cached.clone(),
    };
    // A lock that has expired starts a new count.
    let base = if current.locked_until != 0 && current.locked_until <= now {
        0
    } else {
        current.failures
    };
    let failures = base.saturating_add(1);
    let max = current.record.max_failures;
    let locked_until = if max > 0 && failures >= max {
        tracing::warn!(service_user = ?user, failures,
            lockout_secs = current.record.lockout_secs, "service user locked out");
        now.saturating_add(current.record.lockout_secs.max(0))
    } else if current.locked_until > now {
        current.locked_until
    } else {
        0
    };
    if let Err(e) = shared
        .dir
        .record_failure(user, failures, locked_until)
        .await
    {
        tracing::warn!(service_user = ?user, error = %e, "could not record a failed login");
    }
}

/// The node-affinity key of a login: one client process (same service user, partition,
/// client id and address) lands on the same node while it is healthy, so its pooled
/// connections share one node-side context and nodes do not contend for its partition; other
/// clients spread over the nodes.
fn affinity_key(user: &str, partition: &str, client_id: &str, ip: std::net::IpAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (user, partition, client_id, ip).hash(&mut h);
    h.finish()
}

fn node_score(key: u64, node: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, node).hash(&mut h);
    h.finish()
}

/// Connect to a healthy node allowed for the service (`allowed` empty = any), chosen by
/// rendezvous hashing on `affinity` (see [`affinity_key`]), trying the others in their
/// score order on failure.
async fn connect_node(
    shared: &Shared,
    allowed: &[String],
    affinity: u64,
) -> Option<(Arc<Node>, TcpStream)> {
    let mut candidates: Vec<Arc<Node>> = shared
        .nodes
        .iter()
        .filter(|n| n.is_healthy())
        .filter(|n| allowed.is_empty() || allowed.contains(&n.addr.name))
        .cloned()
        .collect();
    candidates.sort_by_key(|n| std::cmp::Reverse(node_score(affinity, &n.addr.name)));
    for node in candidates {
        let connect = TcpStream::connect(node.addr.addr);
        match tokio::time::timeout(shared.config.node_connect_timeout, connect).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Some((node, s));
            }
            Ok(Err(e)) => {
                tracing::warn!(node = %node.addr.name, error = %e, "node connect failed");
                node.set_healthy(false);
            }
            Err(_) => {
                tracing::warn!(node = %node.addr.name, "node connect timed out");
                node.set_healthy(false);
            }
        }
    }
    None
}

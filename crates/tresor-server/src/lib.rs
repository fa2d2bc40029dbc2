//! # tresor-server — the HSM node
//!
//! Accepts connections from gateways (each starts with a [`GatewayMsg::Preamble`] naming the
//! service, partition and client, or is a [`GatewayMsg::Probe`] health check), runs the
//! end-to-end TLS 1.3 handshake with the client behind the gateway (the node proves the
//! cluster chain; the client proves its registered permanent key), then serves
//! `tresor-proto` requests on an engine context. Login (the PKCS#11 password), object access
//! and every rule are the engine's.
//!
//! First request on a channel:
//! * `RegisterClient` — the setup-password exchange (`ppin -a`); no client certificate needed;
//!   the connection ends after the answer.
//! * `AttachSession { partition, token }` — join the process-wide shared context (see
//!   [`contexts`]); `OpenSession { partition }` — a private context for this connection.
//!   Both need a client certificate whose key is registered for the partition.
//!
//! Also serves `GET /health` and `GET /metrics` (Prometheus) on a separate address.
//!
//! [`GatewayMsg::Preamble`]: tresor_proto::gateway::GatewayMsg::Preamble
//! [`GatewayMsg::Probe`]: tresor_proto::gateway::GatewayMsg::Probe

#![forbid(unsafe_code)]

mod conn;
pub mod contexts;
mod cost;
pub mod dispatch;
pub mod local;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tresor_core::{Engine, SealStatus};

pub use metrics::Metrics;

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node name (in probes, logs and metrics).
    pub name: String,
    /// Where gateways connect.
    pub listen: SocketAddr,
    /// Where `/health` and `/metrics` are served (`None`: not served).
    pub http_listen: Option<SocketAddr>,
    /// Largest request frame accepted.
    pub max_frame_len: usize,
    /// Connections served at once; past it new ones are closed (and probes say busy).
    pub max_connections: usize,
    /// Preamble, handshake and first request must complete within this.
    pub handshake_timeout: Duration,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// How long a shared context outlives its last connection.
    pub context_linger: Duration,
    /// Accept clients that connect without a gateway (TLS straight away). Off by default:
    /// the gateway's service login and address allowlist are then skipped.
    pub allow_direct: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "node0".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 2311)),
            http_listen: None,
            max_frame_len: tresor_proto::DEFAULT_MAX_FRAME_LEN,
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(900),
            context_linger: Duration::from_secs(120),
            allow_direct: false,
        }
    }
}

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Shared state of a running node.
pub(crate) struct Inner {
    pub engine: Arc<Engine>,
    pub config: NodeConfig,
    pub metrics: Arc<Metrics>,
    pub contexts: Arc<contexts::Contexts>,
    tls: RwLock<Option<(Instant, Arc<rustls::ServerConfig>)>>,
    permits: Arc<Semaphore>,
    private_tokens: AtomicU64,
    /// Connections with requests read and not yet answered (see `conn::Busy`).
    pub busy: AtomicUsize,
    /// Worker threads of the runtime the node was started on.
    pub workers: usize,
}

/// The ephemeral TLS leaf is renewed after this long (it is valid for 30 days).
const TLS_RENEW: Duration = Duration::from_secs(24 * 3600);

impl Inner {
    /// The end-to-end TLS configuration, made (or renewed) from the node key when unsealed.
    pub fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        if !matches!(self.engine.status(), SealStatus::Unsealed) {
            *self.tls.write() = None;
            return None;
        }
        if let Some((t, c)) = &*self.tls.read() {
            if t.elapsed() < TLS_RENEW {
                return Some(c.clone());
            }
        }
        let (chain, key) = match self.engine.node_tls_identity() {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "cannot make the node's TLS identity");
                return None;
            }
        };
        let id = tresor_proto::tls::Identity {
            chain,
            key_pkcs8: key,
        };
        match tresor_proto::tls::e2e_server_config(&id) {
            Ok(c) => {
                *self.tls.write() = Some((Instant::now(), c.clone()));
                Some(c)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot build the node's TLS configuration");
                None
            }
        }
    }

    pub fn at_limit(&self) -> bool {
        self.permits.available_permits() == 0
    }

    pub fn next_private_token(&self) -> [u8; 17] {
        let n = self.private_tokens.fetch_add(1, Ordering::Relaxed);
        let mut t = [0u8; 17];
        t[0] = 0xff; // client tokens are 16 bytes: a 17-byte token can never collide with one
        t[1..9].copy_from_slice(&n.to_be_bytes());
        t
    }
}

/// A running node.
pub struct Node {
    inner: Arc<Inner>,
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.config.name)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Node {
    /// Bind and start serving. The engine may still be sealed: the node then answers probes
    /// with "sealed" and refuses sessions until it is unsealed.
    pub async fn start(engine: Arc<Engine>, config: NodeConfig) -> Result<Node, NodeError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| NodeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
        let http = match config.http_listen {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|source| NodeError::Bind { addr: a, source })?,
            ),
            None => None,
        };
        let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(config.max_connections)),
            engine,
            config,
            metrics: Arc::new(Metrics::default()),
            contexts: Arc::new(contexts::Contexts::default()),
            tls: RwLock::new(None),
            private_tokens: AtomicU64::new(1),
            busy: AtomicUsize::new(0),
            workers: tokio::runtime::Handle::current().metrics().num_workers(),
        });
        // Make the TLS identity now if we can, so the first client does not pay for it.
        let _ = inner.tls_config();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(accept_loop(inner.clone(), listener)));
        if let Some(l) = http {
            tasks.push(tokio::spawn(metrics::serve_http(
                l,
                inner.engine.clone(),
                inner.metrics.clone(),
                inner.contexts.clone(),
            )));
        }
        let sweeper = inner.clone();
        tasks.push(tokio::spawn(async move {
            let every = (sweeper.config.context_linger / 4).max(Duration::from_millis(250));
            loop {
                tokio::time::sleep(every).await;
                let n = sweeper.contexts.sweep(sweeper.config.context_linger);
                if n > 0 {
                    tracing::debug!(dropped = n, "idle shared contexts dropped");
                }
                if !matches!(sweeper.engine.status(), SealStatus::Unsealed) {
                    sweeper.contexts.clear();
                }
            }
        }));
        tracing::info!(node = %inner.config.name, %addr, http = ?http_addr, "HSM node listening");
        Ok(Node {
            inner,
            addr,
            http_addr,
            tasks,
        })
    }

    /// The address gateways connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The health/metrics address, if served.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The node's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Prometheus text of the node's counters.
    pub fn render_metrics(&self) -> String {
        self.inner
            .metrics
            .render(&self.inner.engine, self.inner.contexts.len())
    }

    /// Stop accepting and drop all shared contexts (open connections end with their tasks).
    pub fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.inner.contexts.clear();
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        inner
            .metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            inner
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, "connection limit reached");
            drop(sock);
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            inner
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            conn::handle(inner.clone(), sock, peer).await;
            inner
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

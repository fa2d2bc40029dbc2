//! Gateway configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One HSM node the gateway may send clients to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    /// The node's name (matched against a service's `nodes` list, sent in `Accepted`).
    pub name: String,
    /// Where the node listens for gateway connections.
    pub addr: SocketAddr,
}

/// Everything [`crate::Gateway::start`] needs. Build it with [`GatewayConfig::new`] (which
/// sets the defaults below) and change fields as needed.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address to listen on (port 0 picks a free port: see [`crate::Gateway::local_addr`]).
    pub listen: SocketAddr,
    /// Server side of the client ⇄ gateway TLS (`tresor_proto::tls::gateway_server_config`).
    pub tls: Arc<rustls::ServerConfig>,
    /// The HSM nodes.
    pub nodes: Vec<NodeAddr>,
    /// A relayed connection with no byte in either direction for this long is closed.
    /// Default 5 min.
    pub idle_timeout: Duration,
    /// TLS handshake and the client's `Hello` must complete within this. Default 10 s.
    pub handshake_timeout: Duration,
    /// Connections open at once; past it, clients get `Refused { MAX_CONNECTIONS }`.
    /// Default 10 000.
    pub max_connections: usize,
    /// Connections open at once from one source address. Default 256.
    pub max_connections_per_source: usize,
    /// How often every node is probed. Default 2 s.
    pub health_interval: Duration,
    /// How long a verified password is remembered (as a keyed hash). Default 5 min.
    pub auth_cache_ttl: Duration,
    /// Password attempts (every login not served from the auth cache, and every bad `Hello`)
    /// per minute from one source address. Default 60.
    pub attempts_per_minute_per_source: u32,
    /// Password attempts per minute for one service user name. Default 30.
    pub attempts_per_minute_per_user: u32,
    /// How long directory answers (allowlists, service entries) are reused. A directory that
    /// reports its changes ([`crate::Directory::changes`]: the store-backed one on PostgreSQL,
    /// or on SQLite for writes of the same process) makes a change take effect at once; else
    /// a revoked or disabled service takes effect after at most this long. Default 2 s.
    pub directory_cache_ttl: Duration,
    /// Timeout of a TCP connect to a node during a login. Default 3 s.
    pub node_connect_timeout: Duration,
}

impl GatewayConfig {
    /// A configuration with the default limits and timeouts.
    pub fn new(listen: SocketAddr, tls: Arc<rustls::ServerConfig>, nodes: Vec<NodeAddr>) -> Self {
        GatewayConfig {
            listen,
            tls,
            nodes,
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_source: 256,
            health_interval: Duration::from_secs(2),
            auth_cache_ttl: Duration::from_secs(300),
            attempts_per_minute_per_source: 60,
            attempts_per_minute_per_user: 30,
            directory_cache_ttl: Duration::from_secs(2),
            node_connect_timeout: Duration::from_secs(3),
        }
    }
}

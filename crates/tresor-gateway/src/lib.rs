//! # tresor-gateway — the reverse proxy in front of the HSM nodes
//!
//! Phase one of a client connection (see `docs/network.md`): TCP accept, the union of every
//! service's allowlist (else closed before TLS), connection limits, TLS 1.3, one
//! [`GatewayMsg::Hello`](tresor_proto::gateway::GatewayMsg) frame, then, in order: the
//! service's allowlist, the rate limits, the lockout, the password (Argon2id, or a recent
//! keyed-hash match), the partition; a random healthy node gets a `Preamble`, the client gets
//! `Accepted`, and the gateway copies bytes both ways until a side closes or the idle timeout
//! passes. Every refusal is one `Refused { code, message }` frame, then close.
//!
//! ```no_run
//! # async fn run(tls: std::sync::Arc<rustls::ServerConfig>, store: std::sync::Arc<dyn tresor_store::Store>) -> tresor_gateway::Result<()> {
//! use std::sync::Arc;
//! use tresor_gateway::{Gateway, GatewayConfig, NodeAddr, StoreDirectory};
//! let nodes = vec![NodeAddr { name: "node1".into(), addr: "10.0.0.5:4433".parse().map_err(|_| tresor_gateway::GatewayError::Config("addr".into()))? }];
//! let config = GatewayConfig::new("0.0.0.0:2300".parse().map_err(|_| tresor_gateway::GatewayError::Config("addr".into()))?, tls, nodes);
//! let gw = Gateway::start(config, Arc::new(StoreDirectory::new(store))).await?;
//! println!("{:?}", gw.stats());
//! gw.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod config;
mod directory;
mod error;
mod gateway;
mod health;
mod relay;
mod stats;
mod wire;

/// The directory types this crate works with.
pub(crate) use tresor_core::directory as dir;

pub use tresor_core::directory::{ServiceEntry, ServiceRecord};

pub use config::{GatewayConfig, NodeAddr};
pub use directory::{DirFuture, Directory, MemoryDirectory, StoreDirectory};
pub use error::{GatewayError, Result};
pub use gateway::Gateway;
pub use stats::{GatewayStats, RefusedStats};

//! Node health: periodic probes, and the healthy set logins pick from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tresor_proto::gateway::{GatewayMsg, NODE_READY};

use crate::config::NodeAddr;
use crate::wire::{read_msg, write_msg};

/// A probe must be answered within this.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) struct Node {
    pub(crate) addr: NodeAddr,
    healthy: AtomicBool,
}

impl Node {
    pub(crate) fn new(addr: NodeAddr) -> Self {
        Node {
            addr,
            healthy: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            if healthy {
                tracing::info!(node = %self.addr.name, addr = %self.addr.addr, "node healthy");
            } else {
                tracing::warn!(node = %self.addr.name, addr = %self.addr.addr, "node unhealthy");
            }
        }
    }
}

/// One probe: connect, send `Probe`, expect `ProbeReply { status: NODE_READY }`.
pub(crate) async fn probe(node: &NodeAddr) -> bool {
    let run = async {
        let mut s = TcpStream::connect(node.addr).await.ok()?;
        let _ = s.set_nodelay(true);
        write_msg(&mut s, 0, GatewayMsg::Probe {}).await.ok()?;
        match read_msg(&mut s).await.ok()?.body {
            GatewayMsg::ProbeReply { status, .. } => Some(status == NODE_READY),
            _ => Some(false),
        }
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, run).await,
        Ok(Some(true))
    )
}

/// Probe every node at once and record the results.
pub(crate) async fn probe_all(nodes: &[std::sync::Arc<Node>]) {
    let mut set = tokio::task::JoinSet::new();
    for n in nodes {
        let n = n.clone();
        set.spawn(async move {
            let ok = probe(&n.addr).await;
            n.set_healthy(ok);
        });
    }
    while set.join_next().await.is_some() {}
}

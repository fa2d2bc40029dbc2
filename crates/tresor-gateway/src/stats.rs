//! Counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why connections were refused or dropped (counts since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusedStats {
    /// Closed before TLS: the source address is in no service's allowlist.
    pub address_not_allowed_before_tls: u64,
    /// `MAX_CONNECTIONS` (global or per-source limit), or closed at once when even the
    /// refusals were too many.
    pub max_connections: u64,
    /// TLS handshake failed (garbage, wrong protocol, client gave up).
    pub tls_failed: u64,
    /// TLS and `Hello` did not complete within the handshake timeout.
    pub handshake_timeout: u64,
    /// `BAD_HELLO`: not a `Hello`, oversized or malformed frame.
    pub bad_hello: u64,
    /// `ADDRESS_NOT_ALLOWED`: not in the service's own allowlist.
    pub address_not_allowed: u64,
    /// `RATE_LIMITED`.
    pub rate_limited: u64,
    /// `SERVICE_LOCKED` (locked out or disabled).
    pub service_locked: u64,
    /// `SERVICE_AUTH_FAILED` (unknown user or wrong password).
    pub auth_failed: u64,
    /// `PARTITION_NOT_ALLOWED`.
    pub partition_not_allowed: u64,
    /// `NO_NODE` (also when the directory cannot be read).
    pub no_node: u64,
}

/// A snapshot of the gateway's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Connections open now (accepted TCP connections not yet closed, refused ones included
    /// while they are being refused).
    pub open: u64,
    /// TCP connections accepted since start.
    pub connections: u64,
    /// Logins accepted (relayed to a node) since start.
    pub accepted: u64,
    /// Logins served from the auth cache (no Argon2) since start.
    pub auth_cache_hits: u64,
    /// Refusals by reason.
    pub refused: RefusedStats,
    /// Relayed bytes from clients to nodes.
    pub bytes_from_clients: u64,
    /// Relayed bytes from nodes to clients.
    pub bytes_to_clients: u64,
    /// Relayed connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Relayed connections closed because their service was disabled or deleted, or no longer
    /// allows their source address or partition.
    pub withdrawn: u64,
    /// Times the directory reported a change of its services (and the cache was dropped).
    pub directory_changes: u64,
    /// Healthy nodes at the last probe.
    pub healthy_nodes: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    AddressNotAllowedBeforeTls,
    MaxConnections,
    TlsFailed,
    HandshakeTimeout,
    BadHello,
    AddressNotAllowed,
    RateLimited,
    ServiceLocked,
    AuthFailed,
    PartitionNotAllowed,
    NoNode,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) open: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) auth_cache_hits: AtomicU64,
    pub(crate) bytes_from_clients: AtomicU64,
    pub(crate) bytes_to_clients: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) withdrawn: AtomicU64,
    pub(crate) directory_changes: AtomicU64,
    refused: [AtomicU64; 11],
}

impl Counters {
    pub(crate) fn refused(&self, r: Refusal) {
        if let Some(c) = self.refused.get(r as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, healthy_nodes: u64) -> GatewayStats {
        let r = |x: Refusal| {
            self.refused
                .get(x as usize)
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        GatewayStats {
            open: self.open.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            auth_cache_hits: self.auth_cache_hits.load(Ordering::Relaxed),
            refused: RefusedStats {
                address_not_allowed_before_tls: r(Refusal::AddressNotAllowedBeforeTls),
                max_connections: r(Refusal::MaxConnections),
                tls_failed: r(Refusal::TlsFailed),
                handshake_timeout: r(Refusal::HandshakeTimeout),
                bad_hello: r(Refusal::BadHello),
                address_not_allowed: r(Refusal::AddressNotAllowed),
                rate_limited: r(Refusal::RateLimited),
                service_locked: r(Refusal::ServiceLocked),
                auth_failed: r(Refusal::AuthFailed),
                partition_not_allowed: r(Refusal::PartitionNotAllowed),
                no_node: r(Refusal::NoNode),
            },
            bytes_from_clients: self.bytes_from_clients.load(Ordering::Relaxed),
            bytes_to_clients: self.bytes_to_clients.load(Ordering::Relaxed),
            idle_timeouts: self.idle_timeouts.load(Ordering::Relaxed),
            withdrawn: self.withdrawn.load(Ordering::Relaxed),
            directory_changes: self.directory_changes.load(Ordering::Relaxed),
            healthy_nodes,
        }
    }
}

impl GatewayStats {
    /// The counters in the Prometheus text format (what `tresor gateway --http` serves at
    /// `/metrics`).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for (name, help, typ, v) in [
            (
                "tresor_gateway_connections_open",
                "Client connections open now.",
                "gauge",
                self.open,
            ),
            (
                "tresor_gateway_connections_total",
                "TCP connections accepted.",
                "counter",
                self.connections,
            ),
            (
                "tresor_gateway_logins_accepted_total",
                "Logins relayed to a node.",
                "counter",
                self.accepted,
            ),
            (
                "tresor_gateway_auth_cache_hits_total",
                "Logins verified from the auth cache (no Argon2).",
                "counter",
                self.auth_cache_hits,
            ),
            (
                "tresor_gateway_bytes_from_clients_total",
                "Bytes relayed from clients to nodes.",
                "counter",
                self.bytes_from_clients,
            ),
            (
                "tresor_gateway_bytes_to_clients_total",
                "Bytes relayed from nodes to clients.",
                "counter",
                self.bytes_to_clients,
            ),
            (
                "tresor_gateway_idle_timeouts_total",
                "Relayed connections closed by the idle timeout.",
                "counter",
                self.idle_timeouts,
            ),
            (
                "tresor_gateway_withdrawn_total",
                "Relayed connections closed because the directory withdrew their admission.",
                "counter",
                self.withdrawn,
            ),
            (
                "tresor_gateway_directory_changes_total",
                "Service changes the directory reported (each drops the directory cache).",
                "counter",
                self.directory_changes,
            ),
            (
                "tresor_gateway_healthy_nodes",
                "HSM nodes healthy at the last probe.",
                "gauge",
                self.healthy_nodes,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {typ}\n{name} {v}");
        }
        let r = &self.refused;
        let _ = writeln!(
            s,
            "# HELP tresor_gateway_refused_total Connections refused or dropped, by reason.\n# TYPE tresor_gateway_refused_total counter"
        );
        for (reason, v) in [
            (
                "address_not_allowed_before_tls",
                r.address_not_allowed_before_tls,
            ),
            ("max_connections", r.max_connections),
            ("tls_failed", r.tls_failed),
            ("handshake_timeout", r.handshake_timeout),
            ("bad_hello", r.bad_hello),
            ("address_not_allowed", r.address_not_allowed),
            ("rate_limited", r.rate_limited),
            ("service_locked", r.service_locked),
            ("auth_failed", r.auth_failed),
            ("partition_not_allowed", r.partition_not_allowed),
            ("no_node", r.no_node),
        ] {
            let _ = writeln!(s, "tresor_gateway_refused_total{{reason=\"{reason}\"}} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_every_counter_once() {
        let st = GatewayStats {
            open: 3,
            accepted: 7,
            refused: RefusedStats {
                auth_failed: 2,
                ..RefusedStats::default()
            },
            healthy_nodes: 1,
            ..GatewayStats::default()
        };
        let text = st.to_prometheus();
        assert!(
            text.contains("\ntresor_gateway_connections_open 3\n"),
            "{text}"
        );
        assert!(
            text.contains("\ntresor_gateway_logins_accepted_total 7\n"),
            "{text}"
        );
        assert!(text.contains("tresor_gateway_refused_total{reason=\"auth_failed\"} 2\n"));
        assert!(text.contains("tresor_gateway_refused_total{reason=\"no_node\"} 0\n"));
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(types, 11, "{text}");
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, v) = l.rsplit_once(' ').unwrap();
            assert!(name.starts_with("tresor_gateway_"), "{l}");
            v.parse::<u64>().unwrap();
        }
    }
}

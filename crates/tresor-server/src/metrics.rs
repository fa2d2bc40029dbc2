//! Counters, the Prometheus text exposition and the health/metrics HTTP endpoint.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tresor_core::{Engine, SealStatus};

/// Latency histogram bucket bounds, microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000, 10_000_000,
];

/// The node's counters (all monotonic but `connections_open` and `contexts`).
#[derive(Debug)]
pub struct Metrics {
    /// Connections accepted.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused (limit, sealed, direct access not allowed, bad preamble).
    pub connections_refused: AtomicU64,
    /// End-to-end handshakes that failed or timed out.
    pub handshake_failures: AtomicU64,
    /// Sessions refused because the client key is not registered.
    pub auth_failures: AtomicU64,
    /// Health probes answered.
    pub probes: AtomicU64,
    /// Successful setup-password exchanges.
    pub registrations: AtomicU64,
    /// Requests by kind byte.
    requests: Vec<AtomicU64>,
    /// Error responses by kind byte.
    errors: Vec<AtomicU64>,
    /// Request latency histogram (cumulative counts per bucket, then +Inf).
    latency: Vec<AtomicU64>,
    latency_sum_us: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let v = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Metrics {
            connections_total: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
            requests: v(256),
            errors: v(256),
            latency: v(BUCKETS_US.len() + 1),
            latency_sum_us: AtomicU64::new(0),
        }
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Count one request of `kind` that took `elapsed` and did or did not fail.
    pub fn request(&self, kind: u8, failed: bool, elapsed: Duration) {
        inc(&self.requests[usize::from(kind)]);
        if failed {
            inc(&self.errors[usize::from(kind)]);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        inc(&self.latency[i]);
    }

    /// Prometheus text format.
    pub fn render(&self, engine: &Engine, contexts: usize) -> String {
        let mut s = String::new();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let sealed = u8::from(!matches!(engine.status(), SealStatus::Unsealed));
        let _ = writeln!(s, "# HELP tresor_node_sealed 1 if the node is sealed or uninitialised.\n# TYPE tresor_node_sealed gauge\ntresor_node_sealed {sealed}");
        for (name, help, typ, v) in [
            (
                "tresor_node_connections_total",
                "Connections accepted.",
                "counter",
                g(&self.connections_total),
            ),
            (
                "tresor_node_connections_open",
                "Connections open.",
                "gauge",
                g(&self.connections_open),
            ),
            (
                "tresor_node_connections_refused_total",
                "Connections refused before the handshake.",
                "counter",
                g(&self.connections_refused),
            ),
            (
                "tresor_node_handshake_failures_total",
                "End-to-end handshakes that failed.",
                "counter",
                g(&self.handshake_failures),
            ),
            (
                "tresor_node_auth_failures_total",
                "Sessions refused: client key not registered.",
                "counter",
                g(&self.auth_failures),
            ),
            (
                "tresor_node_probes_total",
                "Gateway health probes answered.",
                "counter",
                g(&self.probes),
            ),
            (
                "tresor_node_registrations_total",
                "Setup-password exchanges that succeeded.",
                "counter",
                g(&self.registrations),
            ),
            (
                "tresor_node_contexts",
                "Shared contexts alive.",
                "gauge",
                contexts as u64,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {typ}\n{name} {v}");
        }
        let sync = engine.sync_stats();
        for (name, help, v) in [
            (
                "tresor_node_store_syncs_total",
                "Comparisons of the loaded partitions with the store.",
                sync.runs,
            ),
            (
                "tresor_node_store_sync_failures_total",
                "Comparisons with the store that failed.",
                sync.failures,
            ),
            (
                "tresor_node_partitions_refreshed_total",
                "Partitions re-read after another node or process changed them.",
                sync.refreshed,
            ),
            (
                "tresor_node_partitions_unloaded_total",
                "Partitions unloaded after another node or process deleted them.",
                sync.unloaded,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        if let Some(up) = sync.notifications {
            let _ = writeln!(
                s,
                "# HELP tresor_node_store_notifications_up 1 while the store's change notifications arrive (PostgreSQL LISTEN), 0 while only polling sees other nodes' changes.\n# TYPE tresor_node_store_notifications_up gauge\ntresor_node_store_notifications_up {}",
                u8::from(up)
            );
        }
        let _ = writeln!(s, "# HELP tresor_node_requests_total Requests by kind.\n# TYPE tresor_node_requests_total counter");
        for (k, c) in self.requests.iter().enumerate() {
            let n = g(c);
            if n > 0 {
                let _ = writeln!(s, "tresor_node_requests_total{{kind=\"0x{k:02x}\"}} {n}");
            }
        }
        let _ = writeln!(s, "# HELP tresor_node_request_errors_total Error answers by request kind.\n# TYPE tresor_node_request_errors_total counter");
        for (k, c) in self.errors.iter().enumerate() {
            let n = g(c);
            if n > 0 {
                let _ = writeln!(
                    s,
                    "tresor_node_request_errors_total{{kind=\"0x{k:02x}\"}} {n}"
                );
            }
        }
        let _ = writeln!(s, "# HELP tresor_node_request_seconds Request latency on the node.\n# TYPE tresor_node_request_seconds histogram");
        let mut cum = 0u64;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cum += g(&self.latency[i]);
            let _ = writeln!(
                s,
                "tresor_node_request_seconds_bucket{{le=\"{}\"}} {cum}",
                *b as f64 / 1e6
            );
        }
        cum += g(&self.latency[BUCKETS_US.len()]);
        let _ = writeln!(s, "tresor_node_request_seconds_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(
            s,
            "tresor_node_request_seconds_sum {}",
            g(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(s, "tresor_node_request_seconds_count {cum}");
        s
    }
}

/// Serve `GET /health` (200 `ok` when unsealed, 503 `sealed` otherwise) and `GET /metrics`.
pub async fn serve_http(
    listener: TcpListener,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    contexts: Arc<crate::contexts::Contexts>,
) {
    let health = {
        let engine = engine.clone();
        move || {
            matches!(engine.status(), SealStatus::Unsealed)
                .then_some(())
                .ok_or("sealed")
        }
    };
    let render = move || metrics.render(&engine, contexts.len());
    serve_status_http(listener, health, render).await;
}

/// The answer of a status endpoint: HTTP status line, content type, body.
type StatusAnswer = (&'static str, &'static str, String);

/// Requests a status endpoint serves at once; a connection beyond them is closed unanswered,
/// so that idle or slow connections cannot pile up tasks and buffers.
pub const MAX_STATUS_REQUESTS: usize = 64;

/// Serve `GET /health` (`/healthz`): 200 `ok` when `health` says so, 503 with its reason
/// otherwise; and `GET /metrics`: what `metrics` renders (Prometheus text). Anything else is
/// 404 or 405. One request per connection, the request head read within 5 s and at most 8 KiB,
/// at most [`MAX_STATUS_REQUESTS`] at once. The node's and the gateway's HTTP endpoints.
pub async fn serve_status_http<H, M>(listener: TcpListener, health: H, metrics: M)
where
    H: Fn() -> Result<(), &'static str> + Send + Sync + 'static,
    M: Fn() -> String + Send + Sync + 'static,
{
    let answer = Arc::new(move |method: &str, path: &str| -> StatusAnswer {
        match (method, path) {
            ("GET", "/health") | ("GET", "/healthz") => match health() {
                Ok(()) => ("200 OK", "text/plain", "ok\n".to_string()),
                Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
            },
            ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics()),
            ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
            _ => (
                "405 Method Not Allowed",
                "text/plain",
                "method not allowed\n".to_string(),
            ),
        }
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_STATUS_REQUESTS));
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(sock);
            continue;
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut buf = vec![0u8; 8192];
            let mut n = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() {
                    let m = sock.read(&mut buf[n..]).await?;
                    if m == 0 {
                        break;
                    }
                    n += m;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let line = head.lines().next().unwrap_or("");
            let mut parts = line.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, ctype, body) = answer(method, path);
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn status_endpoint_answers_and_bounds_idle_connections() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let h = healthy.clone();
        tokio::spawn(serve_status_http(
            l,
            move || h.load(Ordering::Relaxed).then_some(()).ok_or("no node"),
            || "x_total 1\n".to_string(),
        ));
        assert!(get(addr, "/health").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/metrics").await.ends_with("\r\n\r\nx_total 1\n"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        healthy.store(false, Ordering::Relaxed);
        let down = get(addr, "/health").await;
        assert!(down.starts_with("HTTP/1.1 503"), "{down}");
        assert!(down.ends_with("no node\n"), "{down}");
        // Idle connections hold every slot: one more is closed unanswered, and once they
        // leave the endpoint answers again.
        let mut idle = Vec::new();
        for _ in 0..MAX_STATUS_REQUESTS {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(addr, "/metrics").await, "");
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(get(addr, "/metrics").await.contains("x_total 1"));
    }
}

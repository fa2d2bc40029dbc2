//! Request metrics of the REST service, in the Prometheus text format.
//!
//! Every request is counted by method, route and status, and timed into a latency histogram
//! per method and route. The route is the router's path template (`/v1/key/{keyName}`, never
//! the key name a caller sent), or `unmatched` for requests that reached no route, so the label
//! set stays bounded whatever callers send. Nothing that identifies a tenant, a key or a caller
//! is recorded.
//!
//! Two middleware functions cooperate: [`mark_route`], a route layer, runs only for requests
//! that matched a route and copies the matched template into the response; [`track`], the
//! outermost layer, sees every request (body buffering, refusals and 404s included) and records
//! it. The service exposes [`RestMetrics::to_prometheus`] on a status listener of its own (see
//! `tresor rest --metrics`), not on the API port.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The matched route, handed from [`mark_route`] to [`track`] in the response's extensions.
#[derive(Clone, Debug)]
struct Route(Arc<str>);

#[derive(Debug, Default)]
struct RouteStats {
    /// Answers by status code.
    by_status: BTreeMap<u16, u64>,
    /// Answers per histogram bucket (not cumulative; `BUCKETS.len()` is `+Inf`).
    buckets: [u64; BUCKETS.len() + 1],
    count: u64,
    sum: Duration,
}

/// Counters of the REST service.
#[derive(Debug)]
pub struct RestMetrics {
    started: Instant,
    in_flight: AtomicI64,
    /// By (method, route).
    routes: Mutex<BTreeMap<(&'static str, Arc<str>), RouteStats>>,
}

impl Default for RestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The method label: the standard methods by name, anything else as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A label value with `\`, `"` and line feeds escaped as the text format requires.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl RestMetrics {
    pub fn new() -> Self {
        RestMetrics {
            started: Instant::now(),
            in_flight: AtomicI64::new(0),
            routes: Mutex::new(BTreeMap::new()),
        }
    }

    /// Count one answered request.
    pub fn record(&self, method: &Method, route: Arc<str>, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        let mut routes = self.routes.lock();
        let s = routes.entry((method_label(method), route)).or_default();
        *s.by_status.entry(status).or_insert(0) += 1;
        if let Some(b) = s.buckets.get_mut(bucket) {
            *b += 1;
        }
        s.count += 1;
        s.sum += took;
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Answers so far with this method, route and status (for tests and the closing figures).
    pub fn answered(&self, method: &Method, route: &str, status: u16) -> u64 {
        self.routes
            .lock()
            .get(&(method_label(method), Arc::from(route)))
            .and_then(|s| s.by_status.get(&status).copied())
            .unwrap_or(0)
    }

    /// The Prometheus text exposition (format 0.0.4). `tenants` is the number of configured
    /// tenants.
    pub fn to_prometheus(&self, tenants: usize) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP tresor_rest_uptime_seconds Seconds since the REST service started.\n\
             # TYPE tresor_rest_uptime_seconds gauge\n\
             tresor_rest_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        let _ = writeln!(
            o,
            "# HELP tresor_rest_tenants Tenants the service is configured with.\n\
             # TYPE tresor_rest_tenants gauge\n\
             tresor_rest_tenants {tenants}"
        );
        let _ = writeln!(
            o,
            "# HELP tresor_rest_requests_in_flight Requests being served.\n\
             # TYPE tresor_rest_requests_in_flight gauge\n\
             tresor_rest_requests_in_flight {}",
            self.in_flight()
        );
        let routes = self.routes.lock();
        o.push_str(
            "# HELP tresor_rest_requests_total Answered requests by method, route template and HTTP status.\n\
             # TYPE tresor_rest_requests_total counter\n",
        );
        for ((method, route), s) in routes.iter() {
            let route = escape(route);
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    o,
                    "tresor_rest_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        o.push_str(
            "# HELP tresor_rest_request_duration_seconds Time from a request's arrival to its answer, by method and route template.\n\
             # TYPE tresor_rest_request_duration_seconds histogram\n",
        );
        for ((method, route), s) in routes.iter() {
            let route = escape(route);
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            let mut cumulative = 0;
            for (i, n) in s.buckets.iter().enumerate() {
                cumulative += n;
                match BUCKETS.get(i) {
                    Some(le) => {
                        let _ = writeln!(
                            o,
                            "tresor_rest_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                        );
                    }
                    None => {
                        let _ = writeln!(
                            o,
                            "tresor_rest_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
                        );
                    }
                }
            }
            let _ = writeln!(
                o,
                "tresor_rest_request_duration_seconds_sum{{{labels}}} {:.6}\n\
                 tresor_rest_request_duration_seconds_count{{{labels}}} {}",
                s.sum.as_secs_f64(),
                s.count
            );
        }
        o
    }
}

/// Decrements the in-flight gauge when a request ends, answered or dropped.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Route layer: puts the matched route's template into the response for [`track`].
pub async fn mark_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| Route(Arc::from(p.as_str())));
    let mut resp = next.run(req).await;
    if let Some(r) = route {
        resp.extensions_mut().insert(r);
    }
    resp
}

/// Outermost layer: counts and times every request.
pub async fn track(State(m): State<Arc<RestMetrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let t0 = Instant::now();
    m.in_flight.fetch_add(1, Ordering::Relaxed);
    let _guard = InFlight(&m.in_flight);
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<Route>()
        .map_or_else(|| Arc::from(UNMATCHED), |r| r.0.clone());
    m.record(&method, route, resp.status().as_u16(), t0.elapsed());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix} in\n{text}"))
    }

    #[test]
    fn counts_by_status_and_buckets_cumulatively() {
        let m = RestMetrics::new();
        let r: Arc<str> = Arc::from("/v1/key/{keyName}");
        m.record(&Method::GET, r.clone(), 200, Duration::from_micros(300));
        m.record(&Method::GET, r.clone(), 200, Duration::from_millis(3));
        m.record(&Method::GET, r.clone(), 404, Duration::from_secs(20));
        m.record(
            &Method::from_bytes(b"BREW").unwrap_or(Method::GET),
            Arc::from(UNMATCHED),
            405,
            Duration::from_millis(1),
        );
        assert_eq!(m.answered(&Method::GET, "/v1/key/{keyName}", 200), 2);
        assert_eq!(m.answered(&Method::GET, "/v1/key/{keyName}", 404), 1);
        let t = m.to_prometheus(3);
        assert!(t.contains("tresor_rest_tenants 3\n"), "{t}");
        assert!(t.contains("tresor_rest_requests_in_flight 0\n"), "{t}");
        assert!(t.contains(
            "tresor_rest_requests_total{method=\"GET\",route=\"/v1/key/{keyName}\",status=\"200\"} 2\n"
        ));
        assert!(t.contains(
            "tresor_rest_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 1\n"
        ));
        let b = "tresor_rest_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/key/{keyName}\"";
        assert!(line(&t, &format!("{b},le=\"0.0005\"}}")).ends_with(" 1"));
        assert!(line(&t, &format!("{b},le=\"0.001\"}}")).ends_with(" 1"));
        assert!(line(&t, &format!("{b},le=\"0.005\"}}")).ends_with(" 2"));
        assert!(line(&t, &format!("{b},le=\"10\"}}")).ends_with(" 2"));
        assert!(line(&t, &format!("{b},le=\"+Inf\"}}")).ends_with(" 3"));
        assert!(line(
            &t,
            "tresor_rest_request_duration_seconds_count{method=\"GET\",route=\"/v1/key/{keyName}\"}"
        )
        .ends_with(" 3"));
        let sum = line(
            &t,
            "tresor_rest_request_duration_seconds_sum{method=\"GET\",route=\"/v1/key/{keyName}\"}",
        );
        let v: f64 = sum.rsplit(' ').next().unwrap_or("").parse().unwrap_or(0.0);
        assert!((v - 20.0033).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

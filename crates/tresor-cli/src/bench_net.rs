//! `tresor bench network`: round trips through gateway + end-to-end channel next to the
//! in-process engine, in the same process and run, and connection setup time.
//!
//! Everything runs on this machine: the node and the gateway each on a runtime of its own (as
//! the two processes of a deployment), the clients as OS threads using the blocking client
//! library (as the PKCS#11 module does). All clients of one concurrency level share one
//! `SlotClient` (one application, one pooled set of connections, one node-side context), like
//! a multi-threaded PKCS#11 application. Throughput is counted over one window common to all
//! threads of a measurement, on both sides of the ratio; CPU time per operation is counted over
//! the same timed operations (see [`Cpu`]).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tresor_client::connect::{ConnectOptions, Connection, Endpoint, SlotClient, SlotSettings};
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::engine::credentials::SetupPolicy;
use tresor_core::template::Template;
use tresor_core::{Context, Engine, UserType};
use tresor_proto::{Request, Response, Secret};

use crate::bench::{measure_window_probed, round2, with_backpressure, Measured, Tally, Worker};
use crate::bench_floor::{
    Floor, FloorKeys, FLOOR_RELAY_THREAD, FLOOR_SIGNER_THREAD, OP_NOOP, OP_P256, OP_RSA,
};

/// Options of `tresor bench network`.
#[derive(Args, Debug)]
pub struct NetworkArgs {
    /// Timed seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Concurrent clients, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub clients: Vec<usize>,
    /// Connections to open (both phases) for the setup-time measurement.
    #[arg(long, default_value_t = 200)]
    pub setups: usize,
    /// Cases, comma separated: noop, ecdsa-p256, rsa2048-pkcs1-sha256.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "noop,ecdsa-p256,rsa2048-pkcs1-sha256"
    )]
    pub cases: Vec<String>,
    /// What to measure, comma separated: `tresor` (through gateway and end-to-end channel),
    /// `in-process` (the engine called directly) and `bare` (the bare two hops of
    /// [`crate::bench_floor`]). Ratios need `in-process`. `--sides bare` gives the floor that
    /// any client → gateway → node path has on this machine, e.g. next to a PKCS#11 benchmark.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tresor,in-process,bare"
    )]
    pub sides: Vec<Side>,
}

/// One side of a `tresor bench network` measurement.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Through the gateway and the end-to-end channel to the node.
    Tresor,
    /// The engine in this process, one context per client thread.
    InProcess,
    /// Two plain hops over loopback to a signer thread (no TLS, no framing).
    Bare,
}

/// Alternating windows per side and measurement (see the loop in [`run`]).
const ROUNDS: u32 = 3;

const PARTITION: &str = "netbench";
const USER_PIN: &str = "netbench-user-pin-1";

const CKM_RSA_PKCS_KEY_PAIR_GEN: u64 = 0x0;
const CKM_EC_KEY_PAIR_GEN: u64 = 0x1040;
const CKA_TOKEN: u64 = 0x1;
const CKA_SIGN: u64 = 0x108;
const CKA_MODULUS_BITS: u64 = 0x121;
const CKA_EC_PARAMS: u64 = 0x180;
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Noop,
    EcdsaP256,
    Rsa2048,
}

impl Case {
    fn floor_op(self) -> u8 {
        match self {
            Case::Noop => OP_NOOP,
            Case::EcdsaP256 => OP_P256,
            Case::Rsa2048 => OP_RSA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Case::Noop => "noop",
            Case::EcdsaP256 => "ecdsa-p256",
            Case::Rsa2048 => "rsa2048-pkcs1-sha256",
        }
    }
}

struct Keys {
    p256: i64,
    rsa: i64,
}

async fn make_keys(ctx: &Context) -> Result<Keys> {
    let token = || Template::new().with_bool(CKA_TOKEN, true);
    let (_, p256) = ctx
        .generate_key_pair(
            CKM_EC_KEY_PAIR_GEN,
            &token()?.with_bytes(CKA_EC_PARAMS, P256_OID)?,
            &token()?.with_bool(CKA_SIGN, true)?,
        )
        .await?;
    let (_, rsa) = ctx
        .generate_key_pair(
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            &token()?.with_ulong(CKA_MODULUS_BITS, 2048)?,
            &token()?.with_bool(CKA_SIGN, true)?,
        )
        .await?;
    Ok(Keys { p256, rsa })
}

fn digest32() -> Vec<u8> {
    (0u8..32).collect()
}

fn local_worker<'a>(
    c: Case,
    ctx: Arc<Context>,
    keys: &Keys,
    h: tokio::runtime::Handle,
) -> Worker<'a> {
    let data = digest32();
    match c {
        Case::Noop => Box::new(move || {
            black_box(ctx.logged_in());
            Ok(Duration::ZERO)
        }),
        Case::EcdsaP256 => {
            let key = keys.p256;
            Box::new(move || {
                black_box(with_backpressure(&h, || {
                    ctx.sign(key, &Mechanism::Ecdsa, &data)
                })?);
                Ok(Duration::ZERO)
            })
        }
        Case::Rsa2048 => {
            let key = keys.rsa;
            Box::new(move || {
                black_box(with_backpressure(&h, || {
                    ctx.sign(key, &Mechanism::RsaPkcsHash(HashAlg::Sha256), &data)
                })?);
                Ok(Duration::ZERO)
            })
        }
    }
}

fn net_worker<'a>(c: Case, client: &'a SlotClient, keys: &Keys) -> Worker<'a> {
    let req = match c {
        Case::Noop => Request::Ping {},
        Case::EcdsaP256 => Request::Sign {
            key: keys.p256,
            mechanism: tresor_proto::Mechanism::Ecdsa {},
            data: Secret::new(digest32()),
        },
        Case::Rsa2048 => Request::Sign {
            key: keys.rsa,
            mechanism: tresor_proto::Mechanism::RsaPkcsHash {
                hash: tresor_proto::HashAlg::Sha256,
            },
            data: Secret::new(digest32()),
        },
    };
    Box::new(move || {
        let r = client.call(&req)?;
        if matches!(r, Response::Error { .. }) {
            bail!("{} failed through the network: {r:?}", c.name());
        }
        black_box(r);
        Ok(Duration::ZERO)
    })
}

/// A node and a gateway on 127.0.0.1 over a temporary store, a service, a registered client.
pub(crate) struct Stack {
    pub engine: Arc<Engine>,
    pub node: tresor_server::Node,
    pub gateway: tresor_gateway::Gateway,
    pub settings: SlotSettings,
    pub key: zeroize::Zeroizing<Vec<u8>>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn stack(max_idle: usize, gw: tokio::runtime::Handle) -> Result<Stack> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(tresor_store::SqliteStore::open(&dir.path().join("bench.db")).await?);
    let engine = Engine::open(
        store.clone(),
        tresor_core::EngineConfig {
            argon2_m_kib: 64,
            argon2_t: 1,
            argon2_p: 1,
            ..tresor_core::EngineConfig::default()
        },
    )
    .await?;
    engine.init(1, 1).await?;
    engine
        .create_partition(PARTITION, b"netbench-so-pin-1", Some(USER_PIN.as_bytes()))
        .await?;
    let allow = tresor_core::directory::parse_allowlist("127.0.0.0/8")?;
    let (_, svc_pw) = engine
        .create_service("bench", "bench-svc", allow, vec![PARTITION.into()], vec![])
        .await?;
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let node = tresor_server::Node::start(
        engine.clone(),
        tresor_server::NodeConfig {
            listen: any,
            max_connections: 4096,
            ..tresor_server::NodeConfig::default()
        },
    )
    .await?;
    let (chain, key) = engine
        .issue_server_identity("bench-gateway", &["127.0.0.1".into()], 30)
        .await?;
    let tls = tresor_proto::tls::gateway_server_config(&tresor_proto::tls::Identity {
        chain,
        key_pkcs8: key,
    })?;
    let mut gcfg = tresor_gateway::GatewayConfig::new(
        any,
        tls,
        vec![tresor_gateway::NodeAddr {
            name: "node0".into(),
            addr: node.local_addr(),
        }],
    );
    gcfg.health_interval = Duration::from_millis(200);
    gcfg.attempts_per_minute_per_source = 100_000;
    gcfg.attempts_per_minute_per_user = 100_000;
    gcfg.max_connections_per_source = 100_000;
    let directory = Arc::new(tresor_gateway::StoreDirectory::new(store));
    let gateway = gw
        .spawn(tresor_gateway::Gateway::start(gcfg, directory))
        .await??;
    let settings = SlotSettings {
        slot_id: 0,
        partition: PARTITION.into(),
        endpoints: vec![Endpoint {
            hsm: "hsm0".into(),
            host: "127.0.0.1".into(),
            port: gateway.local_addr().port(),
            priority: 0,
            service_user: "bench-svc".into(),
            service_password: SecretString::from(svc_pw.expose_secret().to_owned()),
            client_id: "bench".into(),
            root_der: Arc::new(engine.root_cert_der()?),
        }],
        options: ConnectOptions {
            max_idle,
            ..ConnectOptions::default()
        },
    };
    // Let the gateway see the node healthy before the first login.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let setup = engine
        .issue_setup_password(PARTITION, SetupPolicy::default())
        .await?;
    let s2 = settings.clone();
    let (key, _) = tokio::task::spawn_blocking(move || {
        tresor_client::connect::register(&s2, &setup, &SecretString::from(USER_PIN), "bench")
    })
    .await??;
    Ok(Stack {
        engine,
        node,
        gateway,
        settings,
        key,
        _dir: dir,
    })
}

/// The node's and the gateway's runtime thread names in this benchmark.
const NODE_THREAD: &str = "tresor-srv-node";
const GATEWAY_THREAD: &str = "tresor-srv-gw";

/// One side's figures in a row: throughput and latency, and CPU per operation by part.
struct SideResult {
    m: Measured,
    cpu: CpuPerOp,
}

impl SideResult {
    /// Cores' worth of CPU the side used while measured (operations per second × CPU time per
    /// operation): below the machine's core count, the side left CPU time unused, so its
    /// throughput was bounded by waiting (hand-offs, round trips) rather than by work.
    fn cores_busy(&self) -> f64 {
        self.m.ops_per_s * self.cpu.total() / 1e6
    }
}

/// One result row of a case at a concurrency; a side not measured (see `--sides`) is `None`.
struct Row {
    case: Case,
    clients: usize,
    network: Option<SideResult>,
    local: Option<SideResult>,
    /// The bare two hops of [`crate::bench_floor`].
    floor: Option<SideResult>,
}

/// `a` as a share of `b`, if both were measured.
fn ratio(a: Option<&SideResult>, b: Option<&SideResult>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.m.ops_per_s > 0.0 => Some(a.m.ops_per_s / b.m.ops_per_s),
        _ => None,
    }
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Tresor => "tresor",
            Side::InProcess => "in-process",
            Side::Bare => "bare",
        }
    }
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        ratio(self.network.as_ref(), self.local.as_ref())
    }

    fn bare_ratio(&self) -> Option<f64> {
        ratio(self.floor.as_ref(), self.local.as_ref())
    }

    /// The printed lines: the sides measured and the ratios they allow, then the CPU time per
    /// operation of each side by part, and what the two network sides spend beyond the
    /// in-process engine (their overhead per operation).
    fn lines(&self) -> String {
        use std::fmt::Write as _;
        let mut l = format!("{:<22} clients {:>3}", self.case.name(), self.clients);
        if let Some(r) = &self.network {
            let _ = write!(
                l,
                "  network {:>9.0} ops/s p50 {:>8.1} µs p99 {:>8.1} µs",
                r.m.ops_per_s, r.m.p50_us, r.m.p99_us
            );
        }
        if let Some(r) = &self.local {
            let _ = write!(
                l,
                " | in-process {:>9.0} ops/s p50 {:>7.1} µs p99 {:>7.1} µs",
                r.m.ops_per_s, r.m.p50_us, r.m.p99_us
            );
        }
        if let Some(r) = self.ratio() {
            let _ = write!(l, " | ratio {r:.2}");
        }
        if let Some(r) = &self.floor {
            let _ = write!(
                l,
                " | bare hops {:>9.0} ops/s p50 {:>8.1} µs",
                r.m.ops_per_s, r.m.p50_us
            );
            if let Some(r) = self.bare_ratio() {
                let _ = write!(l, ", ratio {r:.2}");
            }
        }
        let _ = write!(l, "\n{:<22} CPU µs/op", "");
        let base = self.local.as_ref().map(|r| r.cpu.total());
        let over = |c: &CpuPerOp| match base {
            Some(b) => format!(", {:+.0} over in-process", c.total() - b),
            None => String::new(),
        };
        let parts = |side: &str, server: &str, relay: &str, r: &SideResult| {
            let c = &r.cpu;
            format!(
                "{side} {:.0} ({server} {:.0}, {relay} {:.0}, clients {:.0}{}; {:.2} cores busy)",
                c.total(),
                c.server,
                c.relay,
                c.clients,
                over(c),
                r.cores_busy()
            )
        };
        if let Some(r) = &self.network {
            let _ = write!(l, "  {}", parts("network", "node", "gateway", r));
        }
        if let (Some(b), Some(r)) = (base, &self.local) {
            let _ = write!(l, " | in-process {b:.0} ({:.2} cores busy)", r.cores_busy());
        }
        if let Some(r) = &self.floor {
            let _ = write!(l, " | {}", parts("bare hops", "signer", "relay", r));
        }
        l
    }

    fn json(&self) -> serde_json::Value {
        let side = |r: &Option<SideResult>| r.as_ref().map(|r| r.m.json());
        let cpu = |r: &Option<SideResult>| r.as_ref().map(|r| r.cpu.json());
        let busy = |r: &Option<SideResult>| r.as_ref().map(|r| round2(r.cores_busy()));
        serde_json::json!({
            "case": self.case.name(), "clients": self.clients,
            "network": side(&self.network), "in_process": side(&self.local),
            "ratio": self.ratio().map(round2),
            "bare_hops": side(&self.floor), "bare_hops_ratio": self.bare_ratio().map(round2),
            // By part: server = node (network) or signer (bare hops), relay = gateway or relay.
            "cpu_us_per_op": {
                "network": cpu(&self.network), "in_process": cpu(&self.local),
                "bare_hops": cpu(&self.floor),
            },
            "cores_busy": {
                "network": busy(&self.network), "in_process": busy(&self.local),
                "bare_hops": busy(&self.floor),
            },
        })
    }
}

/// CPU time of the process's server-side threads by part: the node (its runtime threads and the
/// store's worker thread), the gateway (its runtime threads), the bare hops' signer and relay
/// threads (see [`crate::bench_floor`], which adds those that ended). Thread times come from
/// `/proc/self/task/*/schedstat`, in nanoseconds; everything is zero where `/proc` is absent.
/// The calling threads measure their own time (see [`crate::bench::measure_window_probed`]).
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    node_ns: u64,
    gateway_ns: u64,
    signer_ns: u64,
    relay_ns: u64,
}

/// CPU µs per operation of one side of a measurement, by part.
#[derive(Debug, Default, Clone, Copy)]
struct CpuPerOp {
    /// The node, or on the bare hops the signer.
    server: f64,
    /// The gateway, or on the bare hops the relay.
    relay: f64,
    clients: f64,
}

impl CpuPerOp {
    fn total(&self) -> f64 {
        self.server + self.relay + self.clients
    }

    fn add(&mut self, o: CpuPerOp) {
        self.server += o.server;
        self.relay += o.relay;
        self.clients += o.clients;
    }

    fn per(&self, ops: u64) -> CpuPerOp {
        let n = ops.max(1) as f64;
        CpuPerOp {
            server: self.server / n,
            relay: self.relay / n,
            clients: self.clients / n,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "server": round2(self.server), "relay": round2(self.relay),
            "clients": round2(self.clients), "total": round2(self.total()),
        })
    }
}

/// `USER_HZ`: the unit of `/proc/<pid>/stat` times on Linux.
const CLOCK_TICKS_PER_S: u64 = 100;

/// CPU time of the whole process (ns, in clock ticks), including threads that have ended; 0
/// where `/proc` is absent.
fn process_cpu_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the parenthesised command: state is field 3; utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) * (1_000_000_000 / CLOCK_TICKS_PER_S)
}

impl Cpu {
    fn read() -> Cpu {
        let mut c = Cpu::default();
        // Held while listing: a floor thread that ended is either counted there and skipped
        // here, or still running and listed.
        let exited = crate::bench_floor::exited();
        if let Some(e) = exited.as_ref() {
            c.signer_ns = e.signer_ns;
            c.relay_ns = e.relay_ns;
        }
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return c;
        };
        for t in dir.flatten() {
            let p = t.path();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let comm = comm.trim();
            let floor =
                comm.starts_with(FLOOR_SIGNER_THREAD) || comm.starts_with(FLOOR_RELAY_THREAD);
            let ended = || {
                let tid = t.file_name();
                let tid = tid.to_string_lossy();
                exited
                    .as_ref()
                    .is_some_and(|e| e.tids.contains(tid.as_ref()))
            };
            if floor && ended() {
                continue;
            }
            let part = if comm.starts_with(NODE_THREAD) || comm.starts_with("sqlx-sqlite") {
                &mut c.node_ns
            } else if comm.starts_with(GATEWAY_THREAD) {
                &mut c.gateway_ns
            } else if comm.starts_with(FLOOR_SIGNER_THREAD) {
                &mut c.signer_ns
            } else if comm.starts_with(FLOOR_RELAY_THREAD) {
                &mut c.relay_ns
            } else {
                continue;
            };
            *part += crate::bench::schedstat_ns(&p.join("schedstat"));
        }
        c
    }

    /// CPU µs one side spent in a window that began at `before`, by part, given what its
    /// calling threads spent (`calling`, which they measure themselves): the node and the
    /// gateway for `tresor`, the signer and the relay for `bare`; in-process, the engine's work
    /// runs on the calling threads, with anything it hands to the node's runtime (the audit
    /// writer, the store) added to them.
    fn since(&self, before: &Cpu, side: Side, calling: f64) -> CpuPerOp {
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / 1000.0;
        let node = d(self.node_ns, before.node_ns);
        match side {
            Side::Tresor => CpuPerOp {
                server: node,
                relay: d(self.gateway_ns, before.gateway_ns),
                clients: calling,
            },
            Side::Bare => CpuPerOp {
                server: d(self.signer_ns, before.signer_ns),
                relay: d(self.relay_ns, before.relay_ns),
                clients: calling,
            },
            Side::InProcess => CpuPerOp {
                clients: calling + node,
                ..CpuPerOp::default()
            },
        }
    }
}

/// What one thread hand-off costs on this machine: two threads pass a token back and forth
/// (`thread::park` / `unpark`, i.e. a futex wait and wake each way), `rounds` times.
/// Returns (round-trip latency µs, process CPU µs per round trip). Every request through the
/// network path needs several such hand-offs (client → gateway → node → gateway → client)
/// unless the thread that should pick the work up is already running, so this figure is the
/// floor under the network path's latency and CPU per operation on this machine.
fn handoff_cost(rounds: u32) -> Result<(f64, f64)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let turn = Arc::new(AtomicU32::new(0));
    let t2 = turn.clone();
    let main = std::thread::current();
    let cpu0 = process_cpu_ns();
    let t0 = Instant::now();
    let peer = std::thread::Builder::new()
        .name("handoff".into())
        .spawn(move || {
            for i in 0..rounds {
                while t2.load(Ordering::Acquire) != 2 * i + 1 {
                    std::thread::park();
                }
                t2.store(2 * i + 2, Ordering::Release);
                main.unpark();
            }
        })?;
    let peer_thread = peer.thread().clone();
    for i in 0..rounds {
        turn.store(2 * i + 1, Ordering::Release);
        peer_thread.unpark();
        while turn.load(Ordering::Acquire) != 2 * i + 2 {
            std::thread::park();
        }
    }
    let elapsed = t0.elapsed();
    peer.join()
        .map_err(|_| anyhow!("hand-off thread panicked"))?;
    let cpu = process_cpu_ns().saturating_sub(cpu0);
    let n = f64::from(rounds.max(1));
    Ok((elapsed.as_secs_f64() * 1e6 / n, cpu as f64 / 1000.0 / n))
}

/// Connection set-up times (ns): the whole, and its two phases.
#[derive(Default)]
struct Setup {
    total: Vec<u64>,
    gateway: Vec<u64>,
    node: Vec<u64>,
}

impl Setup {
    fn add(&mut self, total: Duration, gateway: Duration) {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.total.push(ns(total));
        self.gateway.push(ns(gateway));
        self.node.push(ns(total.saturating_sub(gateway)));
    }

    /// (p50, p99) in µs of each series: whole, phase one, phase two.
    fn percentiles(&self) -> [(f64, f64); 3] {
        [&self.total, &self.gateway, &self.node].map(|v| {
            let mut v = v.clone();
            v.sort_unstable();
            (pct(&v, 0.5), pct(&v, 0.99))
        })
    }

    fn line(&self) -> Option<String> {
        if self.total.is_empty() {
            return None;
        }
        let [t, g, n] = self.percentiles();
        Some(format!(
            "connection setup, {} connections: p50 {:.0} µs p99 {:.0} µs | phase one (TCP, TLS to \
             the gateway, service login) p50 {:.0} µs p99 {:.0} µs | phase two (end-to-end TLS, \
             session attach, first Ping) p50 {:.0} µs p99 {:.0} µs",
            self.total.len(),
            t.0,
            t.1,
            g.0,
            g.1,
            n.0,
            n.1
        ))
    }

    fn json(&self) -> serde_json::Value {
        let [t, g, n] = self.percentiles();
        let pair =
            |(p50, p99): (f64, f64)| serde_json::json!({"p50": round2(p50), "p99": round2(p99)});
        serde_json::json!({
            "n": self.total.len(), "p50": round2(t.0), "p99": round2(t.1),
            "phase_one": pair(g), "phase_two": pair(n),
        })
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

pub async fn run(a: NetworkArgs) -> Result<std::process::ExitCode> {
    if !a.seconds.is_finite() || a.seconds <= 0.0 || a.seconds > 3600.0 {
        bail!("--seconds must be in (0, 3600], not {}", a.seconds);
    }
    if a.clients.is_empty() || a.clients.iter().any(|c| !(1..=512).contains(c)) {
        bail!("--clients must be a comma-separated list of counts in 1..=512");
    }
    let mut cases = Vec::new();
    for c in &a.cases {
        cases.push(match c.as_str() {
            "noop" => Case::Noop,
            "ecdsa-p256" => Case::EcdsaP256,
            "rsa2048-pkcs1-sha256" => Case::Rsa2048,
            other => bail!("unknown case {other:?} (noop, ecdsa-p256, rsa2048-pkcs1-sha256)"),
        });
    }
    let max_clients = a.clients.iter().copied().max().unwrap_or(1);
    // The node and the gateway each get a runtime of their own with named threads, as the two
    // processes of a deployment have: sharing one runtime would make them trade tasks between
    // worker threads, and the names tell the CPU time they use from the clients' (see
    // `Cpu`). TRESOR_BENCH_NODE_THREADS / TRESOR_BENCH_GATEWAY_THREADS size them (default:
    // one worker per core, as Tokio does).
    let runtime = |name: &'static str, var: &str| {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = std::env::var(var).ok().and_then(|v| v.parse().ok()) {
            b.worker_threads(n);
        }
        b.thread_name(name).enable_all().build()
    };
    let srv = runtime(NODE_THREAD, "TRESOR_BENCH_NODE_THREADS")?;
    let gw = runtime(GATEWAY_THREAD, "TRESOR_BENCH_GATEWAY_THREADS")?;
    let st = srv
        .spawn(stack(max_clients + 4, gw.handle().clone()))
        .await??;
    let h = srv.handle().clone();
    // In-process side: one logged-in context per client thread.
    let mut ctxs = Vec::new();
    for _ in 0..max_clients {
        let c = st.engine.open_context(PARTITION).await?;
        c.login(UserType::User, USER_PIN.as_bytes()).await?;
        ctxs.push(Arc::new(c));
    }
    let keys = make_keys(&ctxs[0]).await?;
    let floor = Floor::start(
        ctxs.clone(),
        FloorKeys {
            p256: keys.p256,
            rsa: keys.rsa,
        },
        h.clone(),
    )?;
    println!(
        "tresor bench network: seconds {} clients {:?} (node {} behind gateway {}, {} cores)",
        a.seconds,
        a.clients,
        st.node.local_addr(),
        st.gateway.local_addr(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let settings = st.settings.clone();
    let key = st.key.clone();
    let seconds = a.seconds;
    let clients = a.clients.clone();
    let setups = a.setups;
    let sides = a.sides.clone();
    let want = move |s: Side| sides.contains(&s);
    let h2 = h.clone();
    let (rows, setup) = tokio::task::block_in_place(move || -> Result<_> {
        let mut rows = Vec::new();
        for &case in &cases {
            for &n in &clients {
                let client = if want(Side::Tresor) {
                    let client = SlotClient::new(&settings, &key)?;
                    client.call(&Request::Login {
                        user: tresor_proto::UserType::User,
                        pin: Secret::from_slice(USER_PIN.as_bytes()),
                    })?;
                    Some(client)
                } else {
                    None
                };
                // The sides alternate in ROUNDS windows each, so that a change of the
                // machine's speed during the run (other guests of the host, frequency) falls on
                // every side alike.
                let window = seconds / f64::from(ROUNDS);
                let mut tallies: [(Tally, CpuPerOp); 3] = Default::default();
                for _ in 0..ROUNDS {
                    for (i, side) in [Side::Tresor, Side::InProcess, Side::Bare]
                        .into_iter()
                        .enumerate()
                    {
                        if !want(side) {
                            continue;
                        }
                        let (w, before, after) = match side {
                            Side::Tresor => {
                                let client = client.as_ref().context("client")?;
                                measure_window_probed(
                                    n,
                                    window,
                                    &|_| Ok(net_worker(case, client, &keys)),
                                    &Cpu::read,
                                )?
                            }
                            Side::InProcess => measure_window_probed(
                                n,
                                window,
                                &|i| {
                                    let ctx = ctxs.get(i).context("context")?.clone();
                                    Ok(local_worker(case, ctx, &keys, h2.clone()))
                                },
                                &Cpu::read,
                            )?,
                            Side::Bare => measure_window_probed(
                                n,
                                window,
                                &|_| floor.worker(case.floor_op()),
                                &Cpu::read,
                            )?,
                        };
                        let (tally, cpu) = &mut tallies[i];
                        cpu.add(after.since(&before, side, w.calling_cpu_us()));
                        tally.add(w);
                    }
                }
                let [net, local, bare] = tallies.map(|(t, cpu)| {
                    let cpu = cpu.per(t.ops());
                    SideResult { m: t.finish(), cpu }
                });
                let row = Row {
                    case,
                    clients: n,
                    network: want(Side::Tresor).then_some(net),
                    local: want(Side::InProcess).then_some(local),
                    floor: want(Side::Bare).then_some(bare),
                };
                println!("{}", row.lines());
                rows.push(row);
            }
        }
        // Connection setup, as a new connection of the client library does it: phase one
        // (TCP, TLS to the gateway, service login, until the gateway accepts), then phase two
        // (end-to-end TLS with the node, attaching a fresh session context, one Ping). The
        // client certificate and TLS settings are made once per process by the library, so
        // they are not timed.
        let mut setup = Setup::default();
        if want(Side::Tresor) {
            let endpoint = settings.endpoints.first().context("no endpoint")?;
            let identity = tresor_proto::tls::client_identity(&key, &endpoint.client_id)?;
            for i in 0..setups {
                let mut conn = Connection::open(
                    endpoint,
                    Some(&identity),
                    &settings.partition,
                    &settings.options,
                )?;
                let attach = Request::AttachSession {
                    partition: settings.partition.clone(),
                    token: format!("setup-{}-{i}", std::process::id()).into_bytes(),
                };
                match conn.exchange(1, &attach)? {
                    Response::SessionAttached { .. } => {}
                    other => bail!("attaching a session during set-up: {other:?}"),
                }
                match conn.exchange(2, &Request::Ping {})? {
                    Response::Pong { .. } => {}
                    other => bail!("the first Ping after set-up: {other:?}"),
                }
                setup.add(conn.opened_at().elapsed(), conn.gateway_phase());
                // Not timed: the context is not needed again.
                let _ = conn.exchange(3, &Request::CloseSession {});
            }
        }
        Ok((rows, setup))
    })?;
    // Measured after the rest, with the node and gateway idle, as the machine is between
    // requests of a lightly loaded run.
    let (handoff_rtt, handoff_cpu) = tokio::task::block_in_place(|| handoff_cost(20_000))?;
    println!(
        "thread hand-off on this machine (park/unpark ping-pong, 20000 round trips): round trip {handoff_rtt:.1} µs, CPU {handoff_cpu:.1} µs per round trip"
    );
    if let Some(l) = setup.line() {
        println!("{l}");
    }
    let json = serde_json::json!({
        "seconds": a.seconds,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "sides": a.sides.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "setup_us": setup.json(),
        "handoff_us": {"round_trip": round2(handoff_rtt), "cpu_per_round_trip": round2(handoff_cpu)},
    });
    println!("TRESOR_BENCH_JSON {json}");
    let Stack {
        engine,
        node,
        gateway,
        ..
    } = st;
    srv.spawn(async move {
        gateway.shutdown().await;
        node.shutdown();
        engine.seal().await
    })
    .await?
    .map_err(|e| anyhow!("{e}"))?;
    srv.shutdown_background();
    gw.shutdown_background();
    Ok(std::process::ExitCode::SUCCESS)
}

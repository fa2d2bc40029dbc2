//! `tresor bench engine`: the engine in-process next to the raw crypto libraries.
//!
//! Every case is measured three ways in the same run, at the same thread count and with the
//! same message and key: through the engine (`Context` calls, logged in, with the usual checks,
//! key cache and queued audit), with OpenSSL directly, and with aws-lc-rs directly (where it has
//! the operation). The faster raw library is reported as "raw" and the ratio engine/raw shows
//! what the engine costs on top of the crypto.
//!
//! Each benchmark thread is an OS thread with its own `Context` on the same partition; engine
//! calls are driven with `Handle::block_on`, so the runtime's workers stay free for the audit
//! flush task and the store. Warm-up is untimed; threads start the timed phase together.
//!
//! The label-lookup part builds (once) a store with N token AES keys and reports the time to
//! open, unseal and load the partition, and the latency of a label search.

use std::ffi::OsString;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use tokio::runtime::Handle;
use tresor_core::ck::*;
use tresor_core::crypto::{
    self, AnyCurve, Curve, GcmParams, HashAlg, KeyAlg, KeyPairParams, Mechanism, MlDsaParam,
};
use tresor_core::seal::Share;
use tresor_core::template::Template;
use tresor_core::{Context, Engine, EngineConfig, UserType};
use tresor_store::{SqliteStore, Store};

use crate::shares_io::write_private;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The engine in-process next to the raw crypto libraries (OpenSSL and aws-lc-rs), then a
    /// label lookup in a large partition.
    Engine(EngineArgs),
    /// Round trips through gateway + end-to-end channel at several client counts, next to
    /// the in-process engine in the same run, and connection setup time.
    Network(crate::bench_net::NetworkArgs),
}

/// Options of `tresor bench engine`.
#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Timed seconds per measurement (each case is measured through the engine, with OpenSSL
    /// and with aws-lc-rs at every thread count). Warm-up is extra and untimed.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Thread counts to measure, comma separated (each thread has its own logged-in context).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Cases to run: `all`, `none`, or a comma-separated list of rsa2048-pkcs1, ecdsa-p256,
    /// ecdsa-p256-sha256, ed25519, ml-dsa-65, aes256gcm-1k, aes256gcm-1m, keygen-rsa2048,
    /// keygen-p256.
    #[arg(long, default_value = "all")]
    pub cases: String,
    /// Number of token AES keys in the label-lookup partition (0 skips the lookup benchmark).
    #[arg(long, default_value_t = 1_000_000)]
    pub lookup_keys: u64,
    /// The label-lookup store: built once and reused (and extended) by later runs. Its unseal
    /// share is kept next to it as `<db>.share` (mode 0600).
    #[arg(long, default_value = "target/bench/lookup-1m.db")]
    pub lookup_db: PathBuf,
    /// Stop creating lookup keys after this many minutes and run the lookup with the keys
    /// created so far (a later run resumes the build).
    #[arg(long, default_value_t = 20.0)]
    pub lookup_build_minutes: f64,
    /// Directory for the scratch store of the engine cases (default: a new temporary
    /// directory, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Cases

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Rsa2048Pkcs1,
    EcdsaP256,
    EcdsaP256Sha256,
    Ed25519,
    MlDsa65,
    Aes1k,
    Aes1m,
    KeygenRsa2048,
    KeygenP256,
}

const ALL_CASES: [Case; 9] = [
    Case::Rsa2048Pkcs1,
    Case::EcdsaP256,
    Case::EcdsaP256Sha256,
    Case::Ed25519,
    Case::MlDsa65,
    Case::Aes1k,
    Case::Aes1m,
    Case::KeygenRsa2048,
    Case::KeygenP256,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Rsa2048Pkcs1 => "rsa2048-pkcs1",
            Case::EcdsaP256 => "ecdsa-p256",
            Case::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Case::Ed25519 => "ed25519",
            Case::MlDsa65 => "ml-dsa-65",
            Case::Aes1k => "aes256gcm-1k",
            Case::Aes1m => "aes256gcm-1m",
            Case::KeygenRsa2048 => "keygen-rsa2048",
            Case::KeygenP256 => "keygen-p256",
        }
    }

    /// Bytes processed per operation (for MB/s), if it is a bulk case.
    fn bulk_len(self) -> Option<usize> {
        match self {
            Case::Aes1k => Some(1024),
            Case::Aes1m => Some(1 << 20),
            _ => None,
        }
    }
}

fn parse_cases(s: &str) -> Result<Vec<Case>> {
    match s.trim() {
        "all" => return Ok(ALL_CASES.to_vec()),
        "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let c = ALL_CASES
            .iter()
            .copied()
            .find(|c| c.name() == part)
            .ok_or_else(|| {
                let names: Vec<&str> = ALL_CASES.iter().map(|c| c.name()).collect();
                anyhow!(
                    "unknown case '{part}'; the cases are: all, none, {}",
                    names.join(", ")
                )
            })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    OpenSsl,
    AwsLc,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::OpenSsl => "openssl",
            Lib::AwsLc => "aws-lc-rs",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The measuring loop

/// One benchmark operation. Returns the part of its own duration that must not be timed
/// (clean-up done at the end of the call, e.g. destroying a generated key).
pub(crate) type Worker<'a> = Box<dyn FnMut() -> Result<Duration> + 'a>;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Measured {
    pub(crate) ops: u64,
    pub(crate) ops_per_s: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
}

impl Measured {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.ops,
            "ops_per_s": round2(self.ops_per_s),
            "p50_us": round2(self.p50_us),
            "p99_us": round2(self.p99_us),
            "max_us": round2(self.max_us),
        })
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_ns.len() as f64 - 1.0) * p).round() as usize;
    sorted_ns[idx.min(sorted_ns.len() - 1)] as f64 / 1000.0
}

struct ThreadResult {
    ops: u64,
    timed: Duration,
    lat_ns: Vec<u64>,
    cpu_ns: u64,
}

/// CPU time (ns) a thread has used, from its `schedstat` file under `/proc`; 0 where that is
/// absent or unreadable.
pub(crate) fn schedstat_ns(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time the calling thread has used (ns).
pub(crate) fn thread_cpu_ns() -> u64 {
    schedstat_ns(std::path::Path::new("/proc/thread-self/schedstat"))
}

/// Runs `threads` OS threads, each with the worker `factory(i)`: an untimed warm-up, then the
/// timed phase (started together) until `seconds` have passed.
pub(crate) fn measure<'f, F>(threads: usize, seconds: f64, factory: &F) -> Result<Measured>
where
    F: Fn(usize) -> Result<Worker<'f>> + Sync,
{
    let mut t = Tally::default();
    t.add(measure_window(threads, seconds, factory)?);
    Ok(t.finish())
}

/// What several timed windows of one measurement add up to (see [`measure_window`]).
#[derive(Default)]
pub(crate) struct Tally {
    ops: u64,
    window: Duration,
    lat_ns: Vec<u64>,
    /// CPU time of the calling threads during their timed operations.
    cpu_ns: u64,
}

impl Tally {
    /// Adds one window's operations, duration and latencies.
    pub(crate) fn add(&mut self, w: Tally) {
        self.ops += w.ops;
        self.window += w.window;
        self.lat_ns.extend(w.lat_ns);
        self.cpu_ns += w.cpu_ns;
    }

    /// Operations counted so far.
    pub(crate) fn ops(&self) -> u64 {
        self.ops
    }

    /// CPU µs the calling threads spent in their timed operations so far.
    pub(crate) fn calling_cpu_us(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0
    }

    /// Throughput over the sum of the windows, and latency percentiles over all of them.
    pub(crate) fn finish(mut self) -> Measured {
        let secs = self.window.as_secs_f64();
        let rate = if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        };
        self.lat_ns.sort_unstable();
        let all = &self.lat_ns;
        Measured {
            ops: self.ops,
            ops_per_s: rate,
            p50_us: percentile_us(all, 0.50),
            p99_us: percentile_us(all, 0.99),
            max_us: percentile_us(all, 1.0),
        }
    }
}

/// One timed window of [`measure`]: `threads` threads, warm-up, then `seconds` together.
pub(crate) fn measure_window<'f, F>(threads: usize, seconds: f64, factory: &F) -> Result<Tally>
where
    F: Fn(usize) -> Result<Worker<'f>> + Sync,
{
    measure_window_probed(threads, seconds, factory, &|| ()).map(|(t, (), ())| t)
}

/// [`measure_window`], and what `probe` returns just before the timed phase starts (after every
/// thread's warm-up) and just after the last thread stopped: for readings, such as CPU time,
/// that must cover the timed operations only.
pub(crate) fn measure_window_probed<'f, F, P, S>(
    threads: usize,
    seconds: f64,
    factory: &F,
    probe: &P,
) -> Result<(Tally, S, S)>
where
    F: Fn(usize) -> Result<Worker<'f>> + Sync,
    P: Fn() -> S + Sync,
    S: Send + Sync,
{
    let barrier = Barrier::new(threads);
    let common_start = std::sync::OnceLock::new();
    let run_for = Duration::from_secs_f64(seconds);
    let warm_for = Duration::from_secs_f64((seconds * 0.1).clamp(0.05, 0.5));
    let results: Vec<Result<ThreadResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let barrier = &barrier;
                let common_start = &common_start;
                s.spawn(move || -> Result<ThreadResult> {
                    // Prepare and warm up; reach the barrier even on failure so no thread waits
                    // forever.
                    let prepared = (|| -> Result<Worker<'f>> {
                        let mut w = factory(i)?;
                        let start = Instant::now();
                        w()?;
                        while start.elapsed() < warm_for {
                            w()?;
                        }
                        Ok(w)
                    })();
                    barrier.wait();
                    let mut w = prepared?;
                    let mut lat_ns = Vec::with_capacity(4096);
                    let mut untimed = Duration::ZERO;
                    // One timed window for every thread: a thread that started late or
                    // stopped early must not count a stretch of less contention as its own rate.
                    let start = common_start.get_or_init(|| (probe(), Instant::now())).1;
                    let cpu0 = thread_cpu_ns();
                    loop {
                        let t0 = Instant::now();
                        let skip = w()?;
                        let took = t0.elapsed().saturating_sub(skip);
                        untimed += skip;
                        lat_ns.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                        if start.elapsed() >= run_for + untimed {
                            break;
                        }
                    }
                    let timed = start.elapsed().saturating_sub(untimed);
                    Ok(ThreadResult {
                        ops: lat_ns.len() as u64,
                        timed,
                        lat_ns,
                        cpu_ns: thread_cpu_ns().saturating_sub(cpu0),
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a benchmark thread panicked")))
            })
            .collect()
    });
    // Throughput over the common window, which lasts until the last thread stopped (each
    // thread's own waits for back-pressure excluded).
    let end = probe();
    let mut ops = 0u64;
    let mut window = Duration::ZERO;
    let mut all = Vec::new();
    let mut cpu_ns = 0;
    for r in results {
        let r = r?;
        ops += r.ops;
        window = window.max(r.timed);
        all.extend(r.lat_ns);
        cpu_ns += r.cpu_ns;
    }
    let (start, _) = common_start
        .into_inner()
        .ok_or_else(|| anyhow!("no benchmark thread reached the timed phase"))?;
    let tally = Tally {
        ops,
        window,
        lat_ns: all,
        cpu_ns,
    };
    Ok((tally, start, end))
}

// ---------------------------------------------------------------------------------------------
// Keys and messages shared by the engine and the raw libraries

/// Each GCM worker takes a fresh 32-bit stream number; IV = stream ‖ 64-bit counter, so IVs are
/// unique across every operation of the process under the one benchmark key.
static IV_STREAM: AtomicU32 = AtomicU32::new(1);

fn gcm_iv(stream: u32, ctr: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..4].copy_from_slice(&stream.to_be_bytes());
    iv[4..].copy_from_slice(&ctr.to_be_bytes());
    iv
}

struct Material {
    rsa_pk8: Vec<u8>,
    p256_pk8: Vec<u8>,
    ed_pk8: Vec<u8>,
    mldsa_pk8: Vec<u8>,
    aes: Vec<u8>,
    msg32: Vec<u8>,
    hash32: Vec<u8>,
    msg1k: Vec<u8>,
    msg1m: Vec<u8>,
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    openssl::rand::rand_bytes(&mut v)?;
    Ok(v)
}

fn gen_pk8(alg: KeyAlg, bits: Option<u32>) -> Result<Vec<u8>> {
    let (m, _) = crypto::generate_key_pair(
        alg,
        &KeyPairParams {
            modulus_bits: bits,
            public_exponent: None,
        },
    )
    .map_err(|e| anyhow!("generating a {alg:?} benchmark key: {e}"))?;
    Ok(m.expose().to_vec())
}

impl Material {
    fn new() -> Result<Material> {
        let msg32 = random_bytes(32)?;
        let hash32 = openssl::sha::sha256(&msg32).to_vec();
        Ok(Material {
            rsa_pk8: gen_pk8(KeyAlg::Rsa, Some(2048))?,
            p256_pk8: gen_pk8(KeyAlg::Ec(Curve::P256), None)?,
            ed_pk8: gen_pk8(KeyAlg::Ed(crypto::EdCurve::Ed25519), None)?,
            mldsa_pk8: gen_pk8(KeyAlg::MlDsa(MlDsaParam::MlDsa65), None)?,
            aes: random_bytes(32)?,
            msg32,
            hash32,
            msg1k: random_bytes(1024)?,
            msg1m: random_bytes(1 << 20)?,
        })
    }

    /// The input of a case's operation.
    fn input(&self, c: Case) -> &[u8] {
        match c {
            Case::EcdsaP256 => &self.hash32,
            Case::Aes1k => &self.msg1k,
            Case::Aes1m => &self.msg1m,
            _ => &self.msg32,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Engine side

const BENCH_PARTITION: &str = "bench";
const SO_PIN: &[u8] = b"bench-so-pin-0001";
const USER_PIN: &[u8] = b"bench-user-pin-0001";

/// PIN hashing is not what is measured: a cheap Argon2 setting for bench partitions.
fn bench_config() -> EngineConfig {
    EngineConfig {
        argon2_m_kib: 64,
        argon2_t: 1,
        argon2_p: 1,
        ..EngineConfig::default()
    }
}

struct EngineKeys {
    rsa: i64,
    p256: i64,
    ed: i64,
    mldsa: i64,
    aes: i64,
}

async fn import_private(ctx: &Context, ckk: u64, label: &str, pk8: &[u8]) -> Result<i64> {
    let t = Template::new()
        .with_ulong(CKA_CLASS, CKO_PRIVATE_KEY)?
        .with_ulong(CKA_KEY_TYPE, ckk)?
        .with_bool(CKA_TOKEN, true)?
        .with_bytes(CKA_LABEL, label.as_bytes())?
        .with_bytes(CKA_TRESOR_PKCS8, pk8)?;
    ctx.create_object(&t)
        .await
        .with_context(|| format!("importing the {label} key into the engine"))
}

async fn import_keys(ctx: &Context, m: &Material) -> Result<EngineKeys> {
    let aes_t = Template::new()
        .with_ulong(CKA_CLASS, CKO_SECRET_KEY)?
        .with_ulong(CKA_KEY_TYPE, CKK_AES)?
        .with_bool(CKA_TOKEN, true)?
        .with_bytes(CKA_LABEL, b"bench-aes")?
        .with_bytes(CKA_VALUE, &m.aes)?;
    Ok(EngineKeys {
        rsa: import_private(ctx, CKK_RSA, "bench-rsa", &m.rsa_pk8).await?,
        p256: import_private(ctx, CKK_EC, "bench-p256", &m.p256_pk8).await?,
        ed: import_private(ctx, CKK_EC_EDWARDS, "bench-ed25519", &m.ed_pk8).await?,
        mldsa: import_private(ctx, CKK_ML_DSA, "bench-mldsa65", &m.mldsa_pk8).await?,
        aes: ctx
            .create_object(&aes_t)
            .await
            .context("importing the AES key into the engine")?,
    })
}

fn keygen_templates(c: Case) -> Result<(u64, Template, Template)> {
    let priv_t = Template::new().with_bool(CKA_TOKEN, false)?;
    let pub_t = Template::new().with_bool(CKA_TOKEN, false)?;
    Ok(match c {
        Case::KeygenRsa2048 => (
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            pub_t.with_ulong(CKA_MODULUS_BITS, 2048)?,
            priv_t,
        ),
        _ => (
            CKM_EC_KEY_PAIR_GEN,
            pub_t.with_bytes(
                CKA_EC_PARAMS,
                crypto::curve_oid_der(AnyCurve::Weierstrass(Curve::P256)),
            )?,
            priv_t,
        ),
    })
}

/// Times the engine refused key use because its audit queue was full (backpressure) during the
/// current engine measurement; the worker waits 200 µs and retries, inside the timed call.
static AUDIT_WAITS: AtomicU64 = AtomicU64::new(0);

/// Runs an engine call, waiting and retrying while the audit queue is full.
pub(crate) fn with_backpressure<T, Fut>(h: &Handle, mut call: impl FnMut() -> Fut) -> Result<T>
where
    Fut: std::future::Future<Output = tresor_core::Result<T>>,
{
    // The engine's hot operations complete without waiting on the runtime; a plain executor
    // drives them with less overhead than `Handle::block_on`, while the entered runtime context
    // still serves any store access a cache miss needs.
    let _runtime = h.enter();
    loop {
        match futures_executor::block_on(call()) {
            Ok(v) => return Ok(v),
            Err(e)
                if matches!(e.rv(), tresor_core::Rv::DeviceError)
                    && e.detail().contains("audit queue is full") =>
            {
                AUDIT_WAITS.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn engine_worker<'a>(
    c: Case,
    ctx: Arc<Context>,
    keys: &'a EngineKeys,
    m: &'a Material,
    h: Handle,
) -> Result<Worker<'a>> {
    let sign = |oid: i64, mech: Mechanism| -> Worker<'a> {
        let (ctx, h, data) = (ctx.clone(), h.clone(), m.input(c));
        Box::new(move || {
            black_box(with_backpressure(&h, || ctx.sign(oid, &mech, data))?);
            Ok(Duration::ZERO)
        })
    };
    Ok(match c {
        Case::Rsa2048Pkcs1 => sign(keys.rsa, Mechanism::RsaPkcsHash(HashAlg::Sha256)),
        Case::EcdsaP256 => sign(keys.p256, Mechanism::Ecdsa),
        Case::EcdsaP256Sha256 => sign(keys.p256, Mechanism::EcdsaHash(HashAlg::Sha256)),
        Case::Ed25519 => sign(keys.ed, Mechanism::Eddsa),
        Case::MlDsa65 => sign(
            keys.mldsa,
            Mechanism::MlDsa {
                context: Vec::new(),
            },
        ),
        Case::Aes1k | Case::Aes1m => {
            let stream = IV_STREAM.fetch_add(1, Ordering::Relaxed);
            let mut ctr = 0u64;
            let data = m.input(c);
            let oid = keys.aes;
            Box::new(move || {
                ctr += 1;
                let mech = Mechanism::AesGcm(GcmParams {
                    iv: gcm_iv(stream, ctr).to_vec(),
                    aad: Vec::new(),
                    tag_bits: 128,
                });
                black_box(with_backpressure(&h, || ctx.encrypt(oid, &mech, data))?);
                Ok(Duration::ZERO)
            })
        }
        Case::KeygenRsa2048 | Case::KeygenP256 => {
            let (mech, pub_t, priv_t) = keygen_templates(c)?;
            Box::new(move || {
                let (p, s) = h.block_on(ctx.generate_key_pair(mech, &pub_t, &priv_t))?;
                let t0 = Instant::now();
                h.block_on(ctx.destroy_object(s))?;
                h.block_on(ctx.destroy_object(p))?;
                Ok(t0.elapsed())
            })
        }
    })
}

fn engine_factory<'a>(
    case: Case,
    keys: &'a EngineKeys,
    m: &'a Material,
    h: &'a Handle,
    ctxs: &'a [Arc<Context>],
) -> impl Fn(usize) -> Result<Worker<'a>> + Sync + 'a {
    move |i| {
        let ctx = ctxs.get(i).context("context index")?.clone();
        engine_worker(case, ctx, keys, m, h.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Raw side

fn raw_factory<'a>(
    case: Case,
    lib: Lib,
    m: &'a Material,
) -> impl Fn(usize) -> Result<Worker<'a>> + Sync + 'a {
    move |_| {
        raw_worker(case, lib, m)?
            .ok_or_else(|| anyhow!("{} has no {} path", lib.name(), case.name()))
    }
}

fn ossl_key(pk8: &[u8]) -> Result<openssl::pkey::PKey<openssl::pkey::Private>> {
    Ok(openssl::pkey::PKey::private_key_from_pkcs8(pk8)?)
}

fn raw_worker<'a>(c: Case, lib: Lib, m: &'a Material) -> Result<Option<Worker<'a>>> {
    use aws_lc_rs::signature as sig;
    use openssl::hash::MessageDigest;
    use openssl::sign::Signer;
    let data = m.input(c);
    let w: Worker<'a> = match (c, lib) {
        (Case::Rsa2048Pkcs1, Lib::OpenSsl) => {
            let k = ossl_key(&m.rsa_pk8)?;
            Box::new(move || {
                let mut s = Signer::new(MessageDigest::sha256(), &k)?;
                black_box(s.sign_oneshot_to_vec(data)?);
                Ok(Duration::ZERO)
            })
        }
        (Case::Rsa2048Pkcs1, Lib::AwsLc) => {
            let k = sig::RsaKeyPair::from_pkcs8(&m.rsa_pk8)
                .map_err(|e| anyhow!("aws-lc-rs RSA key: {e}"))?;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let mut out = vec![0u8; k.public_modulus_len()];
            Box::new(move || {
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, data, &mut out)
                    .map_err(|_| anyhow!("aws-lc-rs RSA sign failed"))?;
                black_box(&out);
                Ok(Duration::ZERO)
            })
        }
        (Case::EcdsaP256, Lib::OpenSsl) => {
            let k = ossl_key(&m.p256_pk8)?;
            let mut der = [0u8; 80];
            Box::new(move || {
                let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&k)?;
                ctx.sign_init()?;
                black_box(ctx.sign(data, Some(&mut der))?);
                Ok(Duration::ZERO)
            })
        }
        (Case::EcdsaP256, Lib::AwsLc) => {
            let k =
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &m.p256_pk8)
                    .map_err(|e| anyhow!("aws-lc-rs P-256 key: {e}"))?;
            Box::new(move || {
                let d =
                    aws_lc_rs::digest::Digest::import_less_safe(data, &aws_lc_rs::digest::SHA256)
                        .map_err(|_| anyhow!("aws-lc-rs digest import failed"))?;
                black_box(
                    k.sign_digest(&d)
                        .map_err(|_| anyhow!("aws-lc-rs ECDSA sign failed"))?,
                );
                Ok(Duration::ZERO)
            })
        }
        (Case::EcdsaP256Sha256, Lib::OpenSsl) => {
            let k = ossl_key(&m.p256_pk8)?;
            Box::new(move || {
                let mut s = Signer::new(MessageDigest::sha256(), &k)?;
                black_box(s.sign_oneshot_to_vec(data)?);
                Ok(Duration::ZERO)
            })
        }
        (Case::EcdsaP256Sha256, Lib::AwsLc) => {
            let k =
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &m.p256_pk8)
                    .map_err(|e| anyhow!("aws-lc-rs P-256 key: {e}"))?;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            Box::new(move || {
                black_box(
                    k.sign(&rng, data)
                        .map_err(|_| anyhow!("aws-lc-rs ECDSA sign failed"))?,
                );
                Ok(Duration::ZERO)
            })
        }
        (Case::Ed25519, Lib::OpenSsl) => {
            let k = ossl_key(&m.ed_pk8)?;
            Box::new(move || {
                let mut s = Signer::new_without_digest(&k)?;
                black_box(s.sign_oneshot_to_vec(data)?);
                Ok(Duration::ZERO)
            })
        }
        (Case::Ed25519, Lib::AwsLc) => {
            let k = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&m.ed_pk8)
                .map_err(|e| anyhow!("aws-lc-rs Ed25519 key: {e}"))?;
            Box::new(move || {
                black_box(k.sign(data));
                Ok(Duration::ZERO)
            })
        }
        (Case::MlDsa65, Lib::OpenSsl) => {
            let k = ossl_key(&m.mldsa_pk8)?;
            let mut out = Vec::with_capacity(3309);
            Box::new(move || {
                let mut md = openssl::md_ctx::MdCtx::new()?;
                md.digest_sign_init(None, &k)?;
                out.clear();
                md.digest_sign_to_vec(data, &mut out)?;
                black_box(&out);
                Ok(Duration::ZERO)
            })
        }
        (Case::MlDsa65, Lib::AwsLc) => {
            let k = match sig::PqdsaKeyPair::from_pkcs8(&sig::ML_DSA_65_SIGNING, &m.mldsa_pk8) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!(
                        "note: aws-lc-rs does not accept the ML-DSA-65 PKCS#8 ({e}); OpenSSL only"
                    );
                    return Ok(None);
                }
            };
            let mut out = vec![0u8; sig::ML_DSA_65_SIGNING.signature_len()];
            Box::new(move || {
                k.sign(data, &mut out)
                    .map_err(|_| anyhow!("aws-lc-rs ML-DSA sign failed"))?;
                black_box(&out);
                Ok(Duration::ZERO)
            })
        }
        (Case::Aes1k | Case::Aes1m, Lib::OpenSsl) => {
            let cipher = openssl::cipher::Cipher::aes_256_gcm();
            let mut ctx = openssl::cipher_ctx::CipherCtx::new()?;
            ctx.encrypt_init(Some(cipher), Some(&m.aes), None)?;
            let stream = IV_STREAM.fetch_add(1, Ordering::Relaxed);
            let mut ctr = 0u64;
            let mut out = vec![0u8; data.len() + 16 + 16];
            let mut tag = [0u8; 16];
            Box::new(move || {
                ctr += 1;
                ctx.encrypt_init(None, None, Some(&gcm_iv(stream, ctr)))?;
                let n = ctx.cipher_update(data, Some(&mut out))?;
                let f = ctx.cipher_final(&mut out[n..])?;
                ctx.tag(&mut tag)?;
                black_box((&out[..n + f], &tag));
                Ok(Duration::ZERO)
            })
        }
        (Case::Aes1k | Case::Aes1m, Lib::AwsLc) => {
            use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let key = LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &m.aes).map_err(|_| anyhow!("aws-lc-rs AES key"))?,
            );
            let stream = IV_STREAM.fetch_add(1, Ordering::Relaxed);
            let mut ctr = 0u64;
            let mut buf: Vec<u8> = Vec::with_capacity(data.len() + 16);
            Box::new(move || {
                ctr += 1;
                buf.clear();
                buf.extend_from_slice(data);
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(gcm_iv(stream, ctr)),
                    Aad::empty(),
                    &mut buf,
                )
                .map_err(|_| anyhow!("aws-lc-rs AES-GCM seal failed"))?;
                black_box(&buf);
                Ok(Duration::ZERO)
            })
        }
        (Case::KeygenRsa2048, Lib::OpenSsl) => Box::new(|| {
            black_box(openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(
                2048,
            )?)?);
            Ok(Duration::ZERO)
        }),
        (Case::KeygenRsa2048, Lib::AwsLc) => Box::new(|| {
            black_box(
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| anyhow!("aws-lc-rs RSA keygen failed"))?,
            );
            Ok(Duration::ZERO)
        }),
        (Case::KeygenP256, Lib::OpenSsl) => {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
            Box::new(move || {
                black_box(openssl::pkey::PKey::from_ec_key(
                    openssl::ec::EcKey::generate(&group)?,
                )?);
                Ok(Duration::ZERO)
            })
        }
        (Case::KeygenP256, Lib::AwsLc) => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            Box::new(move || {
                black_box(
                    sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .map_err(|_| anyhow!("aws-lc-rs P-256 keygen failed"))?,
                );
                Ok(Duration::ZERO)
            })
        }
    };
    Ok(Some(w))
}

// ---------------------------------------------------------------------------------------------
// Report rows

struct Row {
    case: Case,
    threads: usize,
    engine: Measured,
    openssl: Option<Measured>,
    awslc: Option<Measured>,
    audit_waits: u64,
}

impl Row {
    fn raw(&self) -> Option<(Lib, Measured)> {
        let o = self.openssl.map(|m| (Lib::OpenSsl, m));
        let a = self.awslc.map(|m| (Lib::AwsLc, m));
        match (o, a) {
            (Some(o), Some(a)) => Some(if a.1.ops_per_s > o.1.ops_per_s { a } else { o }),
            (o, a) => o.or(a),
        }
    }

    fn ratio(&self) -> Option<f64> {
        self.raw()
            .filter(|(_, r)| r.ops_per_s > 0.0)
            .map(|(_, r)| self.engine.ops_per_s / r.ops_per_s)
    }

    fn mb_s(&self, m: &Measured) -> Option<f64> {
        self.case.bulk_len().map(|n| m.ops_per_s * n as f64 / 1e6)
    }

    fn json(&self) -> serde_json::Value {
        let raw = self.raw();
        serde_json::json!({
            "case": self.case.name(),
            "threads": self.threads,
            "engine": self.engine.json(),
            "openssl": self.openssl.map(|m| m.json()),
            "aws_lc_rs": self.awslc.map(|m| m.json()),
            "raw_lib": raw.map(|(l, _)| l.name()),
            "raw_ops_per_s": raw.map(|(_, m)| round2(m.ops_per_s)),
            "ratio": self.ratio().map(round2),
            "engine_audit_queue_full_waits": self.audit_waits,
            "engine_mb_s": self.mb_s(&self.engine).map(round2),
            "raw_mb_s": raw.and_then(|(_, m)| self.mb_s(&m)).map(round2),
        })
    }
}

fn fmt_opt(m: Option<Measured>) -> String {
    m.map_or_else(|| "-".into(), |m| format!("{:.0}", m.ops_per_s))
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<18} {:>3} {:>11} {:>9} {:>9} {:>8} {:>11} {:<9} {:>6} {:>11} {:>11} {:>9} {:>9} {:>8}",
        "case",
        "thr",
        "engine op/s",
        "p50 µs",
        "p99 µs",
        "max ms",
        "raw op/s",
        "raw lib",
        "ratio",
        "openssl",
        "aws-lc-rs",
        "eng MB/s",
        "raw MB/s",
        "aud.wait"
    );
    for r in rows {
        let raw = r.raw();
        println!(
            "{:<18} {:>3} {:>11.0} {:>9.1} {:>9.1} {:>8.1} {:>11} {:<9} {:>6} {:>11} {:>11} {:>9} {:>9} {:>8}",
            r.case.name(),
            r.threads,
            r.engine.ops_per_s,
            r.engine.p50_us,
            r.engine.p99_us,
            r.engine.max_us / 1000.0,
            raw.map_or_else(|| "-".into(), |(_, m)| format!("{:.0}", m.ops_per_s)),
            raw.map_or("-", |(l, _)| l.name()),
            r.ratio().map_or_else(|| "-".into(), |x| format!("{x:.2}")),
            fmt_opt(r.openssl),
            fmt_opt(r.awslc),
            r.mb_s(&r.engine).map_or_else(|| "".into(), |x| format!("{x:.1}")),
            raw.and_then(|(_, m)| r.mb_s(&m)).map_or_else(|| "".into(), |x| format!("{x:.1}")),
            r.audit_waits,
        );
    }
    println!("aud.wait: times the engine refused key use because its audit queue was full (max_pending_audit);");
    println!("the benchmark waits 200 µs and retries inside the timed call, so engine op/s is the sustainable rate.");
    println!();
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unavailable ({e})"))
}

// ---------------------------------------------------------------------------------------------
// Entry point

pub async fn run(c: BenchCommand) -> Result<ExitCode> {
    match c {
        BenchCommand::Engine(a) => engine_bench(a).await,
        BenchCommand::Network(a) => crate::bench_net::run(a).await,
    }
}

async fn engine_bench(a: EngineArgs) -> Result<ExitCode> {
    if !a.seconds.is_finite() || a.seconds <= 0.0 || a.seconds > 3600.0 {
        bail!(
            "--seconds must be a number of seconds in (0, 3600], not {}",
            a.seconds
        );
    }
    if a.threads.is_empty() || a.threads.iter().any(|t| !(1..=256).contains(t)) {
        bail!("--threads must be a comma-separated list of thread counts in 1..=256");
    }
    if !a.lookup_build_minutes.is_finite() || a.lookup_build_minutes < 0.0 {
        bail!("--lookup-build-minutes must be a non-negative number");
    }
    let cases = parse_cases(&a.cases)?;
    let load_start = loadavg();
    println!(
        "tresor bench engine: seconds {} threads {:?} cases {}",
        a.seconds, a.threads, a.cases
    );
    println!("loadavg at start: {load_start}");

    let mut rows = Vec::new();
    if !cases.is_empty() {
        rows = engine_cases(&a, &cases).await?;
        print_table(&rows);
    }

    let lookup = if a.lookup_keys > 0 {
        Some(lookup_bench(&a).await?)
    } else {
        None
    };

    let load_end = loadavg();
    println!("loadavg at end: {load_end}");
    let json = serde_json::json!({
        "seconds": a.seconds,
        "threads": a.threads,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "lookup": lookup,
    });
    println!("TRESOR_BENCH_JSON {json}");
    Ok(ExitCode::SUCCESS)
}

async fn engine_cases(a: &EngineArgs, cases: &[Case]) -> Result<Vec<Row>> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let db = dir.join(format!("bench-{}.db", std::process::id()));
    if db.exists() {
        bail!("{} already exists", db.display());
    }
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&db)
            .await
            .with_context(|| format!("cannot open the scratch store {}", db.display()))?,
    );
    let engine = Engine::open(store, bench_config()).await?;
    engine
        .init(1, 1)
        .await
        .context("initialising the scratch store")?;
    engine
        .create_partition(BENCH_PARTITION, SO_PIN, Some(USER_PIN))
        .await?;
    let bg = engine.spawn_background();

    let max_threads = a.threads.iter().copied().max().unwrap_or(1);
    let mut ctxs = Vec::with_capacity(max_threads);
    for _ in 0..max_threads {
        let ctx = engine.open_context(BENCH_PARTITION).await?;
        ctx.login(UserType::User, USER_PIN).await?;
        ctxs.push(Arc::new(ctx));
    }
    let first = ctxs.first().context("no context")?.clone();
    eprintln!("generating the benchmark keys (RSA-2048, P-256, Ed25519, ML-DSA-65, AES-256)...");
    let material = Material::new()?;
    let keys = import_keys(&first, &material).await?;
    let handle = Handle::current();

    let mut rows = Vec::new();
    for &case in cases {
        for &threads in &a.threads {
            eprintln!("measuring {} with {threads} thread(s)...", case.name());
            engine
                .flush_audit()
                .await
                .context("flushing the audit queue between measurements")?;
            AUDIT_WAITS.store(0, Ordering::Relaxed);
            let engine_f = engine_factory(case, &keys, &material, &handle, &ctxs);
            let eng = tokio::task::block_in_place(|| measure(threads, a.seconds, &engine_f))
                .with_context(|| format!("{} through the engine", case.name()))?;
            let audit_waits = AUDIT_WAITS.swap(0, Ordering::Relaxed);
            let mut raw = [None, None];
            for (slot, lib) in raw.iter_mut().zip([Lib::OpenSsl, Lib::AwsLc]) {
                if raw_worker(case, lib, &material)?.is_none() {
                    continue;
                }
                let f = raw_factory(case, lib, &material);
                let r = tokio::task::block_in_place(|| measure(threads, a.seconds, &f))
                    .with_context(|| format!("{} with {}", case.name(), lib.name()))?;
                *slot = Some(r);
            }
            let row = Row {
                case,
                threads,
                engine: eng,
                openssl: raw[0],
                awslc: raw[1],
                audit_waits,
            };
            let rawm = row.raw();
            eprintln!(
                "  engine {:.0} op/s (p50 {:.1} µs, p99 {:.1} µs); raw {} {:.0} op/s; ratio {}",
                eng.ops_per_s,
                eng.p50_us,
                eng.p99_us,
                rawm.map_or("-", |(l, _)| l.name()),
                rawm.map_or(0.0, |(_, r)| r.ops_per_s),
                row.ratio()
                    .map_or_else(|| "-".into(), |x| format!("{x:.2}")),
            );
            rows.push(row);
        }
    }
    drop(ctxs);
    drop(first);
    engine.seal().await?;
    drop(engine);
    bg.abort();
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Label lookup

const LOOKUP_PARTITION: &str = "lookup";
const LOOKUP_SO_PIN: &[u8] = b"lookup-so-pin-0001";
const LOOKUP_USER_PIN: &[u8] = b"lookup-user-pin-0001";
const LOOKUP_TASKS: usize = 16;
const LOOKUP_QUERIES: usize = 10_000;

fn share_path(db: &Path) -> PathBuf {
    let mut s: OsString = db.as_os_str().to_owned();
    s.push(".share");
    PathBuf::from(s)
}

fn label_of(i: u64) -> String {
    format!("k-{i}")
}

fn aes_template(label: &str) -> Result<Template> {
    Ok(Template::new()
        .with_bool(CKA_TOKEN, true)?
        .with_ulong(CKA_CLASS, CKO_SECRET_KEY)?
        .with_ulong(CKA_KEY_TYPE, CKK_AES)?
        .with_ulong(CKA_VALUE_LEN, 32)?
        .with_bytes(CKA_LABEL, label.as_bytes())?)
}

fn label_template(label: &str) -> Result<Template> {
    Ok(Template::new().with_bytes(CKA_LABEL, label.as_bytes())?)
}

async fn label_exists(ctx: &Context, i: u64) -> Result<bool> {
    Ok(!ctx
        .find_objects(&label_template(&label_of(i))?, 1)
        .await?
        .is_empty())
}

/// Opens (creating if needed) the lookup store, unsealed, with its partition.
async fn open_lookup_store(db: &Path) -> Result<Arc<Engine>> {
    let share_file = share_path(db);
    let fresh = !db.exists();
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(db)
            .await
            .with_context(|| format!("cannot open {}", db.display()))?,
    );
    let engine = Engine::open(store, bench_config()).await?;
    if fresh || engine.status() == tresor_core::SealStatus::Uninitialized {
        let shares = engine
            .init(1, 1)
            .await
            .context("initialising the lookup store")?;
        let share = shares.first().context("no share")?;
        write_private(&share_file, &share.expose_text())?;
    } else {
        unseal_from_file(&engine, &share_file).await?;
    }
    if !engine
        .list_partitions()
        .await?
        .iter()
        .any(|p| p.name == LOOKUP_PARTITION)
    {
        engine
            .create_partition(LOOKUP_PARTITION, LOOKUP_SO_PIN, Some(LOOKUP_USER_PIN))
            .await?;
    }
    Ok(engine)
}

async fn unseal_from_file(engine: &Engine, share_file: &Path) -> Result<()> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(share_file).with_context(|| {
        format!(
            "cannot read the lookup store's share {} (delete the store to rebuild it)",
            share_file.display()
        )
    })?);
    engine
        .unseal(&[Share::parse(text.trim())?])
        .await
        .context("unsealing the lookup store")?;
    Ok(())
}

async fn object_count(engine: &Engine) -> Result<u64> {
    let n = engine
        .list_partitions()
        .await?
        .iter()
        .find(|p| p.name == LOOKUP_PARTITION)
        .map_or(0, |p| p.objects);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Per task `t`, how many keys of its stride (labels t, t+16, t+32, …) exist: each task creates
/// its stride in order, so what exists is a prefix, found by binary search.
async fn stride_progress(ctx: &Context, count: u64) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(LOOKUP_TASKS);
    for t in 0..LOOKUP_TASKS as u64 {
        let (mut lo, mut hi) = (0u64, count + 1); // exists(j) for j < lo; not for j >= hi
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if label_exists(ctx, t + mid * LOOKUP_TASKS as u64).await? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        out.push(lo);
    }
    Ok(out)
}

async fn build_lookup(
    engine: &Arc<Engine>,
    want: u64,
    budget: Duration,
    progress: Vec<u64>,
) -> Result<(Vec<u64>, f64, u64)> {
    let have: u64 = progress.iter().sum();
    let per_task = want.div_ceil(LOOKUP_TASKS as u64);
    let bar = indicatif::ProgressBar::new(want);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} keys  {per_sec}  elapsed {elapsed_precise}  ETA {eta_precise}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(have);
    bar.reset_eta();
    let created = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + budget;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (t, done) in progress.iter().copied().enumerate() {
        let ctx = engine.open_context(LOOKUP_PARTITION).await?;
        ctx.login(UserType::User, LOOKUP_USER_PIN).await?;
        let (created, stop, bar) = (created.clone(), stop.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let mut j = done;
            while j < per_task && !stop.load(Ordering::Relaxed) {
                let i = t as u64 + j * LOOKUP_TASKS as u64;
                if i >= want {
                    break;
                }
                if Instant::now() >= deadline {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                let r = ctx
                    .generate_key(CKM_AES_KEY_GEN, &aes_template(&label_of(i))?)
                    .await;
                if let Err(e) = r {
                    stop.store(true, Ordering::Relaxed);
                    return Err(
                        anyhow::Error::from(e).context(format!("creating key {}", label_of(i)))
                    );
                }
                j += 1;
                created.fetch_add(1, Ordering::Relaxed);
                bar.inc(1);
            }
            Ok::<u64, anyhow::Error>(j)
        }));
    }
    // A plain progress line every 30 s when the bar is not drawn (output to a file).
    let ticker = {
        let (created, bar) = (created.clone(), bar.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                if bar.is_hidden() {
                    let n = created.load(Ordering::Relaxed);
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!(
                        "lookup build: {} / {want} keys, {:.0} keys/s, elapsed {:.0} s ({})",
                        have + n,
                        n as f64 / secs.max(1e-9),
                        secs,
                        loadavg()
                    );
                }
            }
        })
    };
    let mut out = Vec::with_capacity(LOOKUP_TASKS);
    let mut first_err = None;
    for (t, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(j)) => out.push(j),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
                out.push(progress.get(t).copied().unwrap_or(0));
            }
            Err(e) => {
                first_err.get_or_insert(anyhow!("lookup build task: {e}"));
                out.push(progress.get(t).copied().unwrap_or(0));
            }
        }
    }
    ticker.abort();
    bar.finish();
    if let Some(e) = first_err {
        return Err(e);
    }
    let secs = start.elapsed().as_secs_f64();
    let n = created.load(Ordering::Relaxed);
    Ok((out, secs, n))
}

async fn lookup_bench(a: &EngineArgs) -> Result<serde_json::Value> {
    let want = a.lookup_keys;
    let db = &a.lookup_db;
    println!("label lookup: want {want} keys in {}", db.display());
    let engine = open_lookup_store(db).await?;
    let bg = engine.spawn_background();
    let count = object_count(&engine).await?;
    let mut build_json = serde_json::Value::Null;
    let mut budget_hit = false;
    let progress = if count >= want {
        println!("reusing {} ({count} objects >= {want})", db.display());
        None
    } else {
        let ctx = engine.open_context(LOOKUP_PARTITION).await?;
        ctx.login(UserType::User, LOOKUP_USER_PIN).await?;
        let progress = stride_progress(&ctx, count).await?;
        drop(ctx);
        let have: u64 = progress.iter().sum();
        println!(
            "building: {have} keys exist, creating up to {} more with {LOOKUP_TASKS} tasks",
            want.saturating_sub(have)
        );
        let budget = Duration::from_secs_f64(a.lookup_build_minutes * 60.0);
        let (done, secs, created) = build_lookup(&engine, want, budget, progress).await?;
        let total: u64 = done.iter().sum();
        let rate = created as f64 / secs.max(1e-9);
        budget_hit = total < want;
        println!(
            "created {created} keys in {secs:.1} s: {rate:.0} keys/s ({total} in the partition{})",
            if budget_hit {
                format!(
                    "; stopped by the {} min budget before {want}",
                    a.lookup_build_minutes
                )
            } else {
                String::new()
            }
        );
        build_json = serde_json::json!({"created": created, "seconds": round2(secs), "keys_per_s": round2(rate), "budget_hit": budget_hit});
        Some(done)
    };
    engine.seal().await?;
    drop(engine);
    bg.abort();

    // Timed: open the store, open the engine, unseal, load the partition.
    let t0 = Instant::now();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(db)
            .await
            .with_context(|| format!("cannot open {}", db.display()))?,
    );
    let t_store = t0.elapsed();
    let engine = Engine::open(store, bench_config()).await?;
    let t_engine = t0.elapsed();
    unseal_from_file(&engine, &share_path(db)).await?;
    let t_unseal = t0.elapsed();
    let ctx = engine.open_context(LOOKUP_PARTITION).await?;
    let t_part = t0.elapsed();
    let bg = engine.spawn_background();
    ctx.login(UserType::User, LOOKUP_USER_PIN).await?;
    let objects = object_count(&engine).await?;
    let ms = |d: Duration| round2(d.as_secs_f64() * 1000.0);
    println!(
        "open with {objects} objects: store {:.1} ms, engine {:.1} ms, unseal {:.1} ms, partition load {:.1} ms; total {:.1} ms",
        ms(t_store),
        ms(t_engine - t_store),
        ms(t_unseal - t_engine),
        ms(t_part - t_unseal),
        ms(t_part)
    );

    // Which labels exist: the stride prefixes (from the build, or recomputed on reuse).
    let progress = match progress {
        Some(p) => p,
        None => stride_progress(&ctx, objects).await?,
    };
    let n_keys: u64 = progress.iter().sum();
    if n_keys == 0 {
        bail!("the lookup partition has no k-<i> keys");
    }
    let mut rnd = vec![0u8; 8 * LOOKUP_QUERIES];
    openssl::rand::rand_bytes(&mut rnd)?;
    let mut lat = Vec::with_capacity(LOOKUP_QUERIES);
    let mut wrong = 0usize;
    for chunk in rnd.chunks_exact(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let mut r = u64::from_le_bytes(b) % n_keys;
        let mut i = 0u64;
        for (t, p) in progress.iter().enumerate() {
            if r < *p {
                i = t as u64 + r * LOOKUP_TASKS as u64;
                break;
            }
            r -= p;
        }
        let t = label_template(&label_of(i))?;
        let q0 = Instant::now();
        let found = ctx.find_objects(&t, 1).await?;
        lat.push(u64::try_from(q0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        if found.len() != 1 {
            wrong += 1;
        }
    }
    lat.sort_unstable();
    let (p50, p99) = (percentile_us(&lat, 0.5), percentile_us(&lat, 0.99));
    println!(
        "find_objects(CKA_LABEL = k-<random>, 1) over {LOOKUP_QUERIES} labels in {n_keys} keys: p50 {p50:.1} µs, p99 {p99:.1} µs; {} found exactly one",
        LOOKUP_QUERIES - wrong
    );
    if budget_hit {
        println!("note: the build stopped at {n_keys} keys (budget), not {want}; the lookup used {n_keys} keys");
    }
    drop(ctx);
    engine.seal().await?;
    drop(engine);
    bg.abort();
    if wrong > 0 {
        bail!("{wrong} of {LOOKUP_QUERIES} label searches did not find exactly one key");
    }
    Ok(serde_json::json!({
        "db": db.display().to_string(),
        "keys_wanted": want,
        "keys": n_keys,
        "objects": objects,
        "build": build_json,
        "open_ms": {
            "store": ms(t_store),
            "engine": ms(t_engine - t_store),
            "unseal": ms(t_unseal - t_engine),
            "partition_load": ms(t_part - t_unseal),
            "total": ms(t_part),
        },
        "find_by_label": {"queries": LOOKUP_QUERIES, "p50_us": round2(p50), "p99_us": round2(p99), "exactly_one": LOOKUP_QUERIES - wrong},
    }))
}

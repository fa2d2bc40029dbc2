//! The commands other than `bench`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use clap::{Args, Subcommand};
use tresor_core::seal::Share;
use tresor_core::{Engine, EngineConfig, SealStatus};
use tresor_store::{SqliteStore, Store};

use crate::shares_io::{read_shares, write_private};

/// Where the store is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: a SQLite file (the embedded default), or the URL of a PostgreSQL database
    /// (`postgres://user:password@host:port/db`, the store a cluster of nodes, gateways and
    /// REST services shares).
    #[arg(long, env = "TRESOR_STORE", default_value = "tresor.db")]
    pub store: StoreLocation,
}

/// A store's location as given on the command line or in a configuration file.
#[derive(Clone)]
pub enum StoreLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (may hold a password: shown only through [`StoreLocation::display`]).
    Postgres(secrecy::SecretString),
}

impl std::str::FromStr for StoreLocation {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(if tresor_store::is_postgres_url(s) {
            Self::Postgres(secrecy::SecretString::from(s.to_owned()))
        } else {
            Self::Sqlite(PathBuf::from(s))
        })
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl StoreLocation {
    /// For messages: the path, or the URL with any password replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres(url) => {
                tresor_store::redact_url(secrecy::ExposeSecret::expose_secret(url))
            }
        }
    }

    /// Relative SQLite paths are taken from `base` (a configuration file's directory).
    pub fn relative_to(self, base: &Path) -> Self {
        match self {
            Self::Sqlite(p) => Self::Sqlite(base.join(p)),
            pg @ Self::Postgres(_) => pg,
        }
    }

    /// Whether a SQLite file is missing (a PostgreSQL database is assumed present: opening it
    /// tells).
    fn missing(&self) -> bool {
        matches!(self, Self::Sqlite(p) if !p.exists())
    }
}

/// Unseal inputs.
#[derive(Args, Debug, Clone)]
pub struct ShareArgs {
    /// Share files (each holds one share). Without them, shares are read from standard input
    /// (prompted without echo on a terminal).
    #[arg(long = "share-file")]
    pub share_files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Number of shares to make (1..=255).
    #[arg(long, default_value_t = 5)]
    pub shares: usize,
    /// Shares needed to unseal (1..=shares).
    #[arg(long, default_value_t = 3)]
    pub threshold: usize,
    /// Write each share to DIR/share-N.txt (mode 0600) instead of printing them.
    #[arg(long)]
    pub share_dir: Option<PathBuf>,
    /// Where to write the cluster root certificate (PEM), the trust anchor for
    /// `attest verify` and `audit verify`.
    #[arg(long, default_value = "tresor-root.pem")]
    pub root_cert: PathBuf,
}

#[derive(Args, Debug)]
pub struct UnsealArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub shares: ShareArgs,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Directory for the dev store, its single share, the root certificate and credentials.
    #[arg(long, env = "TRESOR_DEV_DIR", default_value = "tresor-dev")]
    pub dir: PathBuf,
    /// Name of the first partition.
    #[arg(long, default_value = "dev")]
    pub partition: String,
    /// Print the connection facts and exit instead of serving (for scripts and tests).
    #[arg(long)]
    pub no_serve: bool,
    /// Gateway port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 2310)]
    pub gateway_port: u16,
    /// HSM node port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 2311)]
    pub node_port: u16,
    /// Health and metrics port of the node on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 9311)]
    pub metrics_port: u16,
    /// Health and metrics port of the gateway on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 9310)]
    pub gateway_metrics_port: u16,
    /// REST API (HTTPS) port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8443)]
    pub rest_port: u16,
    /// Health and metrics port of the REST API on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 9312)]
    pub rest_metrics_port: u16,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Partition management (needs the shares to unseal).
    #[command(subcommand)]
    Partition(PartitionCommand),
    /// The service directory the gateways check (service users, allowlists, partitions).
    #[command(subcommand)]
    Service(crate::admin::ServiceCommand),
    /// Partition credentials: setup password, PKCS#11 password, client keys, credentials file.
    #[command(subcommand)]
    Credentials(crate::admin::CredentialsCommand),
    /// JWTs for the REST API: signing keys and tokens naming a tenant and its partition.
    #[command(subcommand)]
    Token(crate::rest::TokenCommand),
    /// An X-API-KEY for a tenant of the REST API (its digest is added to the configuration).
    ApiKey(crate::rest::ApiKeyArgs),
    /// Generate keys in a loop, printing each acknowledged key's label (for crash tests).
    #[command(hide = true)]
    KeygenLoop {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        partition: String,
        #[arg(long)]
        pin: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum PartitionCommand {
    /// Create a partition with its SO PIN and user PIN.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        /// Partition name (the PKCS#11 token label).
        name: String,
        /// Security officer PIN.
        #[arg(long, env = "TRESOR_SO_PIN")]
        so_pin: String,
        /// User PIN (optional: the SO can set it later with C_InitPIN).
        #[arg(long, env = "TRESOR_USER_PIN")]
        user_pin: Option<String>,
    },
    /// List partitions (no shares needed).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reset a partition's SO PIN (e.g. after the SO locked itself out).
    ResetSoPin {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        name: String,
        /// The new SO PIN.
        #[arg(long, env = "TRESOR_SO_PIN")]
        so_pin: String,
    },
    /// Delete a partition and all its keys (its audit chain is kept).
    Delete {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify every audit chain of a store offline (no shares needed): links, hashes, signed
    /// checkpoints. Names the first bad entry and exits 1 if there is one.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// The cluster root certificate (PEM) written by `tresor init`.
        #[arg(long, default_value = "tresor-root.pem")]
        root_cert: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AttestCommand {
    /// Verify a key attestation: the chain up to the cluster root, and the signature over the
    /// exact document bytes. Exits 1 if either fails.
    Verify {
        /// The attestation XML document.
        #[arg(long)]
        xml: PathBuf,
        /// The signature: raw DER, or base64 (as REST returns `xmlSignature`).
        #[arg(long)]
        signature: PathBuf,
        /// PEM chain: attestation certificate first, then the node certificate.
        #[arg(long)]
        chain: PathBuf,
        /// The cluster root certificate (PEM).
        #[arg(long, default_value = "tresor-root.pem")]
        root_cert: PathBuf,
    },
}

pub(crate) async fn open_store(at: &StoreLocation) -> Result<Arc<dyn Store>> {
    let s: Arc<dyn Store> = match at {
        StoreLocation::Sqlite(path) => Arc::new(
            SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the store {}", path.display()))?,
        ),
        StoreLocation::Postgres(url) => Arc::new(
            tresor_store::PgStore::connect(secrecy::ExposeSecret::expose_secret(url))
                .await
                .with_context(|| format!("cannot open the store {}", at.display()))?,
        ),
    };
    Ok(s)
}

/// Engine settings an operator tunes on a long-running node.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Milliseconds between commits of queued key-use audit entries. Longer batches cost the
    /// store less (fewer transactions, which matters on a remote PostgreSQL); a node that
    /// crashes loses at most this much of the key-use record, never an acknowledged change of
    /// an object.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub audit_flush_ms: u64,
    /// Key use fails closed (CKR_DEVICE_ERROR) while more audit entries than this wait to be
    /// written, e.g. while the store is unreachable.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_audit: u64,
    /// Milliseconds between comparisons of this node's loaded partitions with the store. It
    /// bounds how long a change made through another node (a destroyed or changed key, a
    /// revoked client, a re-initialised token, a deleted partition) can go unseen here; each
    /// comparison is one small query. The store also hints at such changes as they happen
    /// (PostgreSQL: a notification; a SQLite file: a 200 ms poll of a change counter), which
    /// makes the node compare at once; this interval bounds a lost hint.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub sync_ms: u64,
    /// Parsed keys kept in memory per partition.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_cache: u64,
    /// Consecutive wrong PINs after which a partition's user (or SO) is locked.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub max_pin_failures: i64,
}

impl EngineArgs {
    /// The engine configuration these settings give.
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            audit_flush_interval: std::time::Duration::from_millis(self.audit_flush_ms),
            max_pending_audit: usize::try_from(self.max_pending_audit).unwrap_or(usize::MAX),
            sync_interval: std::time::Duration::from_millis(self.sync_ms),
            cache_capacity: usize::try_from(self.key_cache).unwrap_or(usize::MAX),
            max_pin_failures: self.max_pin_failures,
            ..EngineConfig::default()
        }
    }
}

pub(crate) async fn open_engine(store: &StoreArgs) -> Result<Arc<Engine>> {
    open_engine_with(store, EngineConfig::default()).await
}

/// [`open_engine`] with settings of the caller's.
pub(crate) async fn open_engine_with(
    store: &StoreArgs,
    config: EngineConfig,
) -> Result<Arc<Engine>> {
    if store.store.missing() {
        bail!(
            "no store at {} (run `tresor init` first, or pass --store)",
            store.store.display()
        );
    }
    let s = open_store(&store.store).await?;
    Ok(Engine::open(s, config).await?)
}

pub(crate) async fn open_unsealed(store: &StoreArgs, shares: &ShareArgs) -> Result<Arc<Engine>> {
    open_unsealed_with(store, shares, EngineConfig::default()).await
}

/// [`open_unsealed`] with settings of the caller's.
pub(crate) async fn open_unsealed_with(
    store: &StoreArgs,
    shares: &ShareArgs,
    config: EngineConfig,
) -> Result<Arc<Engine>> {
    let engine = open_engine_with(store, config).await?;
    let config = match engine.status() {
        SealStatus::Uninitialized => bail!(
            "the store {} is not initialised; run `tresor init`",
            store.store.display()
        ),
        _ => engine.seal_config().context("seal configuration")?,
    };
    let needed = usize::from(config.threshold());
    let e2 = engine.clone();
    let shares = read_shares(&shares.share_files, needed, move |s| {
        e2.check_share(s).map_err(Into::into)
    })?;
    engine.unseal(&shares).await?;
    Ok(engine)
}

fn write_root(engine: &Engine, path: &Path) -> Result<()> {
    let root = openssl::x509::X509::from_der(&engine.root_cert_der()?)?;
    std::fs::write(path, root.to_pem()?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub async fn init(a: InitArgs) -> Result<ExitCode> {
    if matches!(&a.store.store, StoreLocation::Sqlite(p) if p.exists()) {
        bail!(
            "{} already exists; `tresor init` only initialises a new store",
            a.store.store.display()
        );
    }
    let engine = Engine::open(open_store(&a.store.store).await?, EngineConfig::default()).await?;
    if engine.status() != SealStatus::Uninitialized {
        bail!(
            "{} is already initialised; `tresor init` only initialises a new store",
            a.store.store.display()
        );
    }
    let shares = engine.init(a.threshold, a.shares).await?;
    write_root(&engine, &a.root_cert)?;
    println!(
        "Initialised {} (threshold {} of {} shares).",
        a.store.store.display(),
        a.threshold,
        a.shares
    );
    println!("Cluster root certificate: {}", a.root_cert.display());
    match &a.share_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            for s in &shares {
                let p = dir.join(format!("share-{}.txt", s.index()));
                write_private(&p, &s.expose_text())?;
                println!("Share {} written to {}", s.index(), p.display());
            }
        }
        None => {
            println!("Give each share to a different custodian; they are not stored anywhere:");
            for s in &shares {
                println!("  {}", s.expose_text().as_str());
            }
        }
    }
    engine.seal().await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn unseal(a: UnsealArgs) -> Result<ExitCode> {
    let engine = open_unsealed(&a.store, &a.shares).await?;
    println!("Unsealed {}.", a.store.store.display());
    for p in engine.list_partitions().await? {
        println!("  partition {:<32} objects {}", p.name, p.objects);
    }
    engine.seal().await?;
    Ok(ExitCode::SUCCESS)
}

/// A 12-character PIN of letters and digits (about 70 bits), so that it never starts with '-'
/// and can be pasted into any command line.
fn random_pin() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut pin = String::with_capacity(12);
    while pin.len() < 12 {
        let mut b = [0u8; 16];
        openssl::rand::rand_bytes(&mut b)?;
        // Rejection sampling keeps every symbol equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for x in b.iter().map(|x| usize::from(*x)).filter(|x| *x < limit) {
            if pin.len() == 12 {
                break;
            }
            if let Some(c) = ALPHABET.get(x % ALPHABET.len()) {
                pin.push(char::from(*c));
            }
        }
    }
    Ok(pin)
}

pub async fn dev(a: DevArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let db = a.dir.join("tresor.db");
    let share_path = a.dir.join("dev.share");
    let root_path = a.dir.join("root.pem");
    let creds_path = a.dir.join("credentials.json");
    let engine = Engine::open(
        open_store(&StoreLocation::Sqlite(db.clone())).await?,
        EngineConfig::default(),
    )
    .await?;
    if engine.status() == SealStatus::Uninitialized {
        let bar = spinner("initialising the dev store");
        let shares = engine.init(1, 1).await?;
        let share = shares.first().context("no share")?;
        write_private(&share_path, &share.expose_text())?;
        write_root(&engine, &root_path)?;
        bar.finish_and_clear();
    } else {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(&share_path)
                .with_context(|| format!("cannot read the dev share {}", share_path.display()))?,
        );
        engine.unseal(&[Share::parse(text.trim())?]).await?;
    }
    let mut creds: serde_json::Value = if creds_path.exists() {
        serde_json::from_slice(&std::fs::read(&creds_path)?)?
    } else {
        serde_json::json!({"partition": a.partition, "so_pin": random_pin()?, "user_pin": random_pin()?})
    };
    let part = creds["partition"].as_str().unwrap_or("dev").to_owned();
    let so_pin = creds["so_pin"]
        .as_str()
        .context("credentials: so_pin")?
        .to_owned();
    let user_pin = creds["user_pin"]
        .as_str()
        .context("credentials: user_pin")?
        .to_owned();
    if !engine
        .list_partitions()
        .await?
        .iter()
        .any(|p| p.name == part)
    {
        let bar = spinner("creating the first partition");
        engine
            .create_partition(&part, so_pin.as_bytes(), Some(user_pin.as_bytes()))
            .await?;
        write_private(&creds_path, &serde_json::to_string_pretty(&creds)?)?;
        bar.finish_and_clear();
    }
    let _bg = engine.spawn_background();
    if a.no_serve {
        println!("Tresor dev is ready (engine in-process, embedded store).");
    } else {
        println!("Tresor dev is running (engine in-process, embedded store).");
    }
    println!("  store              {}", db.display());
    println!(
        "  unseal share       {}   (dev only: a real cluster never stores a share)",
        share_path.display()
    );
    println!("  cluster root cert  {}", root_path.display());
    println!("  partition          {part}");
    println!("  SO PIN             {so_pin}");
    println!("  user PIN           {user_pin}");
    println!("  credentials        {}", creds_path.display());
    println!(
        "  audit check        tresor audit verify --store {} --root-cert {}",
        db.display(),
        root_path.display()
    );
    let net = crate::serve::dev_network(
        &engine,
        &mut creds,
        crate::serve::DevNetworkArgs {
            dir: &a.dir,
            partition: &part,
            user_pin: &user_pin,
            gateway_port: a.gateway_port,
            node_port: a.node_port,
            http_port: a.metrics_port,
            gateway_http_port: a.gateway_metrics_port,
        },
    )
    .await?;
    let rest = crate::rest::dev_rest(
        &engine,
        &mut creds,
        &a.dir,
        &part,
        &user_pin,
        a.rest_port,
        a.rest_metrics_port,
    )
    .await?;
    if a.no_serve {
        rest.shutdown().await;
        net.shutdown().await;
        engine.seal().await?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("Press Ctrl-C to stop.");
    crate::serve::wait_for_stop().await;
    rest.shutdown().await;
    net.shutdown().await;
    engine.seal().await?;
    println!("Sealed and stopped.");
    Ok(ExitCode::SUCCESS)
}

fn spinner(msg: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(msg);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

pub async fn admin(c: AdminCommand) -> Result<ExitCode> {
    match c {
        AdminCommand::Service(c) => return crate::admin::service(c).await,
        AdminCommand::Credentials(c) => return crate::admin::credentials(c).await,
        AdminCommand::Token(c) => return crate::rest::token(c),
        AdminCommand::ApiKey(a) => return crate::rest::api_key(a),
        AdminCommand::Partition(PartitionCommand::Create {
            store,
            shares,
            name,
            so_pin,
            user_pin,
        }) => {
            let engine = open_unsealed(&store, &shares).await?;
            let id = engine
                .create_partition(
                    &name,
                    so_pin.as_bytes(),
                    user_pin.as_deref().map(str::as_bytes),
                )
                .await?;
            println!("Created partition {name} (id {id}).");
            engine.seal().await?;
        }
        AdminCommand::Partition(PartitionCommand::List { store }) => {
            let engine = open_engine(&store).await?;
            for p in engine.list_partitions().await? {
                println!(
                    "{:<32} id {:<20} objects {:<8} created {}",
                    p.name,
                    p.id,
                    p.objects,
                    tresor_core::attest::iso8601(p.created)
                );
            }
        }
        AdminCommand::Partition(PartitionCommand::ResetSoPin {
            store,
            shares,
            name,
            so_pin,
        }) => {
            let engine = open_unsealed(&store, &shares).await?;
            engine.reset_so_pin(&name, so_pin.as_bytes()).await?;
            println!("Reset the SO PIN of partition {name}.");
            engine.seal().await?;
        }
        AdminCommand::Partition(PartitionCommand::Delete {
            store,
            shares,
            name,
        }) => {
            let engine = open_unsealed(&store, &shares).await?;
            engine.delete_partition(&name).await?;
            println!("Deleted partition {name}.");
            engine.seal().await?;
        }
        AdminCommand::KeygenLoop {
            store,
            shares,
            partition,
            pin,
            count,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            let ctx = engine.open_context(&partition).await?;
            ctx.login(tresor_core::UserType::User, pin.as_bytes())
                .await?;
            use tresor_core::ck::*;
            use tresor_core::template::Template;
            for i in 0..count {
                let label = format!("crash-{}-{i}", std::process::id());
                let t = Template::new()
                    .with_bool(CKA_TOKEN, true)?
                    .with_ulong(CKA_VALUE_LEN, 32)?
                    .with_bytes(CKA_LABEL, label.as_bytes())?;
                let oid = ctx.generate_key(CKM_AES_KEY_GEN, &t).await?;
                // Acknowledged: the creation has committed.
                println!("{label} {oid}");
            }
            engine.seal().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(c: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Verify { store, root_cert } = c;
    let root = openssl::x509::X509::from_pem(
        &std::fs::read(&root_cert)
            .with_context(|| format!("cannot read {}", root_cert.display()))?,
    )
    .context("the root certificate is not PEM")?;
    if store.store.missing() {
        bail!("no store at {}", store.store.display());
    }
    let s = open_store(&store.store).await?;
    let mut bad = false;
    for pid in s.audit_partitions().await? {
        let cps = s.checkpoints(pid).await?;
        let mut rows = Vec::new();
        let mut from = 1;
        loop {
            let chunk = s.audit_range(pid, from, 10_000).await?;
            let Some(last) = chunk.last() else { break };
            from = last.seq + 1;
            rows.extend(chunk);
        }
        match tresor_core::audit::verify_chain(pid, rows, &cps, &root) {
            Ok(r) => println!(
                "partition {:<20} OK: {} entries, {} signed checkpoints (last at {})",
                r.partition_id, r.entries, r.checkpoints, r.last_checkpoint
            ),
            Err(f) => {
                println!(
                    "partition {:<20} BAD: first bad entry {}: {}",
                    f.partition_id, f.seq, f.reason
                );
                bad = true;
            }
        }
    }
    Ok(if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn attest(c: AttestCommand) -> Result<ExitCode> {
    let AttestCommand::Verify {
        xml,
        signature,
        chain,
        root_cert,
    } = c;
    let doc = std::fs::read(&xml).with_context(|| format!("cannot read {}", xml.display()))?;
    let sig_raw = std::fs::read(&signature)
        .with_context(|| format!("cannot read {}", signature.display()))?;
    let sig = match base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&sig_raw).trim())
    {
        Ok(s) if sig_raw.first() != Some(&0x30) => s,
        _ => sig_raw,
    };
    let chain_pem =
        std::fs::read(&chain).with_context(|| format!("cannot read {}", chain.display()))?;
    let root = openssl::x509::X509::from_pem(
        &std::fs::read(&root_cert)
            .with_context(|| format!("cannot read {}", root_cert.display()))?,
    )
    .context("the root certificate is not PEM")?;
    match tresor_core::attest::verify_attestation(&doc, &sig, &chain_pem, &root) {
        Ok(()) => {
            println!("OK: the attestation is signed by a key certified by the cluster root.");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {}", e.detail());
            Ok(ExitCode::FAILURE)
        }
    }
}

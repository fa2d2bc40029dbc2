//! `tresor rest` (the REST API as its own process, reaching HSM nodes over the network path),
//! `tresor admin token` (JWTs for it), `tresor admin api-key` (role API keys), and the REST
//! service `tresor dev` starts in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tresor_client::transport::Transport;
use tresor_proto::{Request, Response, Secret, UserType};
use tresor_rest::auth::{self, Claims, TokenAlgorithm};
use tresor_rest::{ApiKeys, App, JwtVerifier, Tenant, TlsSettings};

use crate::shares_io::write_private;

/// `tresor rest`.
#[derive(Args, Debug)]
pub struct RestArgs {
    /// The service configuration (JSON; see docs/rest.md).
    #[arg(long, env = "TRESOR_REST_CONFIG", default_value = "rest.json")]
    pub config: PathBuf,
    /// Override the configured listen address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve `/health` and Prometheus `/metrics` (plain HTTP) on this address; overrides the
    /// configuration's `metricsListen`.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

/// The REST service configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestConfig {
    /// Where HTTPS is served.
    pub listen: SocketAddr,
    /// TLS files.
    pub tls: TlsFiles,
    /// JWT verification, if bearer tokens are accepted.
    #[serde(default)]
    pub jwt: Option<JwtFiles>,
    /// The client configuration (primus.cfg syntax) naming one slot per tenant partition.
    pub primus_config: PathBuf,
    /// The secrets file with each partition's permanent secret and the service passwords.
    pub secrets_config: PathBuf,
    /// The store holding the request table: a SQLite file (relative to this file), or a
    /// PostgreSQL URL (the password is better given in `PGPASSWORD` than written here).
    pub store: String,
    /// The tenants.
    pub tenants: Vec<TenantConfig>,
    /// Hours a finished request stays in the request table (from its creation); 0 keeps
    /// them all. Default 24.
    #[serde(default)]
    pub request_retention_hours: Option<u64>,
    /// Tenant for verified client certificates whose name no tenant lists (dedicated mode).
    #[serde(default)]
    pub mtls_default_tenant: Option<String>,
    /// Where `/health` and Prometheus `/metrics` are served (plain HTTP, meant for a
    /// management network or 127.0.0.1); none: not served.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

/// TLS files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// CA certificates for client certificates (mTLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// `need` (refuse connections without a client certificate) or `want`.
    #[serde(default)]
    pub client_auth: Option<String>,
}

/// JWT settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtFiles {
    /// Public key of the token signer (SubjectPublicKeyInfo PEM).
    pub public_key: PathBuf,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    /// Expected audience.
    pub audience: String,
    /// Expected issuer, if checked.
    #[serde(default)]
    pub issuer: Option<String>,
}

/// One tenant.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant name (the JWT `tenant` claim).
    pub name: String,
    /// Its partition (`user_name` of a slot in the client configuration).
    pub partition: String,
    /// The partition's PKCS#11 password (user PIN), zeroized when dropped; never printed.
    #[serde(deserialize_with = "de_pin", serialize_with = "ser_pin")]
    pub pin: SecretString,
    /// API keys by role (`sha256:<hex>` digests or keys in clear).
    #[serde(default)]
    pub api_keys: HashMap<String, Vec<String>>,
    /// Client-certificate common names that authenticate as this tenant.
    #[serde(default)]
    pub mtls_names: Vec<String>,
}

impl std::fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("name", &self.name)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

fn de_pin<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SecretString, D::Error> {
    // The String read from the file moves into the secret box (no copy left behind).
    String::deserialize(d).map(SecretString::from)
}

fn ser_pin<S: serde::Serializer>(pin: &SecretString, s: S) -> std::result::Result<S::Ok, S::Error> {
    // Only when the configuration file itself is rewritten (`tresor admin api-key`).
    s.serialize_str(pin.expose_secret())
}

/// Log a transport in as the partition user.
fn login(t: &dyn Transport, pin: &SecretString) -> Result<()> {
    match t.call(&Request::Login {
        user: UserType::User,
        pin: Secret::from_slice(pin.expose_secret().as_bytes()),
    }) {
        Ok(Response::LoggedIn {}) => Ok(()),
        Ok(_) => bail!("unexpected answer to the login"),
        Err(tresor_client::Error::Node { rv: 0x100, .. }) => Ok(()), // already logged in
        Err(e) => Err(anyhow!("login failed: {e}")),
    }
}

fn jwt_verifier(j: &JwtFiles, base: &Path) -> Result<JwtVerifier> {
    let alg = TokenAlgorithm::parse(&j.algorithm)
        .ok_or_else(|| anyhow!("jwt.algorithm must be EdDSA or ES256"))?;
    let p = base.join(&j.public_key);
    let pem = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    JwtVerifier::new(alg, &pem, &j.audience, j.issuer.as_deref()).map_err(|e| anyhow!(e))
}

/// Run the REST service until Ctrl-C / SIGTERM.
pub async fn rest(a: RestArgs) -> Result<ExitCode> {
    let text =
        std::fs::read(&a.config).with_context(|| format!("cannot read {}", a.config.display()))?;
    let cfg: RestConfig = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a valid REST configuration", a.config.display()))?;
    let base = a.config.parent().map(Path::to_path_buf).unwrap_or_default();
    let primus_path = base.join(&cfg.primus_config);
    let primus = tresor_client::config::primus::PrimusConfig::load(&primus_path)
        .with_context(|| format!("cannot load {}", primus_path.display()))?;
    let secrets_path = base.join(&cfg.secrets_config);
    let secrets = tresor_client::config::secrets::SecretsFile::load(&secrets_path)
        .with_context(|| format!("cannot load {}", secrets_path.display()))?
        .secrets;
    let at = cfg
        .store
        .parse::<crate::cmd::StoreLocation>()
        .unwrap_or_else(|never| match never {})
        .relative_to(&base);
    let store = crate::cmd::open_store(&at).await?;
    let mut tenants = Vec::new();
    for t in &cfg.tenants {
        let slot = primus
            .slots()
            .iter()
            .find(|s| s.user_name == t.partition)
            .ok_or_else(|| {
                anyhow!(
                    "tenant {}: no slot for partition {} in {}",
                    t.name,
                    t.partition,
                    primus_path.display()
                )
            })?;
        let client = tresor_client::connect::SlotClient::from_config(&primus, slot, &secrets)
            .with_context(|| format!("tenant {}", t.name))?;
        let transport: Arc<dyn Transport> = Arc::new(client);
        let pin = t.pin.clone();
        let tr = transport.clone();
        tokio::task::spawn_blocking(move || login(tr.as_ref(), &pin))
            .await?
            .with_context(|| format!("tenant {}", t.name))?;
        tenants.push(Arc::new(Tenant::new(
            t.name.clone(),
            t.partition.clone(),
            transport,
            ApiKeys::from_config(&t.api_keys).map_err(|e| anyhow!("tenant {}: {e}", t.name))?,
            t.mtls_names.clone(),
        )));
    }
    let jwt = cfg
        .jwt
        .as_ref()
        .map(|j| jwt_verifier(j, &base))
        .transpose()?;
    let mtls_default = match &cfg.mtls_default_tenant {
        Some(n) => Some(
            tenants
                .iter()
                .find(|t| &t.name == n)
                .cloned()
                .ok_or_else(|| anyhow!("mtlsDefaultTenant {n} is not a tenant"))?,
        ),
        None => None,
    };
    let read = |p: &PathBuf| -> Result<Vec<u8>> {
        let p = base.join(p);
        std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
    };
    let tls = TlsSettings {
        chain_pem: read(&cfg.tls.cert)?,
        key_pem: zeroize::Zeroizing::new(read(&cfg.tls.key)?),
        client_ca_pem: cfg.tls.client_ca.as_ref().map(read).transpose()?,
        require_client_cert: cfg.tls.client_auth.as_deref() == Some("need"),
    };
    let server_cfg = tresor_rest::server::server_config(&tls).map_err(|e| anyhow!(e))?;
    let mut retention = tresor_rest::requests::Retention::default_for(
        tenants.iter().map(|t| t.name.clone()).collect(),
    );
    if let Some(h) = cfg.request_retention_hours {
        retention.keep = (h > 0).then(|| std::time::Duration::from_secs(h.saturating_mul(3600)));
    }
    let app = Arc::new(App {
        tenants,
        jwt,
        mtls_default,
        requests: tresor_rest::requests::Requests::start(store, retention),
        metrics: Arc::new(tresor_rest::metrics::RestMetrics::new()),
    });
    let listen = a.listen.unwrap_or(cfg.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let status = match a.metrics.or(cfg.metrics_listen) {
        Some(addr) => Some(rest_status(&app, addr).await?),
        None => None,
    };
    println!(
        "tresor rest listening on https://{}",
        listener.local_addr()?
    );
    if let Some((addr, _)) = &status {
        println!("health and metrics on http://{addr}/metrics");
    }
    tresor_rest::serve(app, listener, server_cfg, crate::serve::wait_for_stop()).await;
    if let Some((_, task)) = status {
        task.abort();
    }
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Serve the REST service's `/health` (200 while it serves) and `/metrics` on `addr`: the
/// bound address and the serving task (abort it to stop).
async fn rest_status(
    app: &Arc<App>,
    addr: SocketAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the REST service's /health and /metrics")
    })?;
    let bound = l.local_addr()?;
    let (metrics, tenants) = (app.metrics.clone(), app.tenants.len());
    let task = tokio::spawn(tresor_server::metrics::serve_status_http(
        l,
        || Ok(()),
        move || metrics.to_prometheus(tenants),
    ));
    Ok((bound, task))
}

/// `tresor admin token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token-signing key pair (the REST service is configured with the public half).
    Keygen {
        /// `EdDSA` or `ES256`.
        #[arg(long, default_value = "EdDSA")]
        alg: String,
        /// Private key output (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        private_key: PathBuf,
        /// Public key output (SubjectPublicKeyInfo PEM).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Issue a token naming a tenant and its partition; prints it.
    Issue(IssueArgs),
}

/// `tresor admin token issue`.
#[derive(Args, Debug)]
pub struct IssueArgs {
    /// The signing key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// `EdDSA` or `ES256`.
    #[arg(long, default_value = "EdDSA")]
    pub alg: String,
    /// Tenant name.
    #[arg(long)]
    pub tenant: String,
    /// The tenant's partition.
    #[arg(long)]
    pub partition: String,
    /// Audience (as configured in the REST service).
    #[arg(long, default_value = "tresor-rest")]
    pub audience: String,
    /// Issuer.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Subject (who the token is for).
    #[arg(long, default_value = "tresor-client")]
    pub subject: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    /// Seconds from now before the token becomes valid.
    #[arg(long, default_value_t = 0)]
    pub not_before: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_alg(s: &str) -> Result<TokenAlgorithm> {
    TokenAlgorithm::parse(s).ok_or_else(|| anyhow!("--alg must be EdDSA or ES256"))
}

/// Issue a token (also used by `tresor dev`).
pub fn issue(a: &IssueArgs) -> Result<String> {
    let key = zeroize::Zeroizing::new(
        std::fs::read(&a.key).with_context(|| format!("cannot read {}", a.key.display()))?,
    );
    let now = unix_now();
    let claims = Claims {
        sub: a.subject.clone(),
        tenant: a.tenant.clone(),
        partition: a.partition.clone(),
        aud: a.audience.clone(),
        iss: a.issuer.clone(),
        exp: now + a.not_before + a.ttl,
        nbf: now + a.not_before,
        iat: now,
    };
    auth::issue_token(parse_alg(&a.alg)?, &key, &claims).map_err(|e| anyhow!(e))
}

/// `tresor admin token`.
pub fn token(c: TokenCommand) -> Result<ExitCode> {
    match c {
        TokenCommand::Keygen {
            alg,
            private_key,
            public_key,
        } => {
            let (sk, pk) = auth::generate_token_key(parse_alg(&alg)?).map_err(|e| anyhow!(e))?;
            write_private(&private_key, &sk)?;
            std::fs::write(&public_key, pk)
                .with_context(|| format!("cannot write {}", public_key.display()))?;
            println!(
                "Wrote {} (keep it secret) and {} (configure the REST service with it).",
                private_key.display(),
                public_key.display()
            );
        }
        TokenCommand::Issue(a) => println!("{}", issue(&a)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tresor admin api-key`.
#[derive(Args, Debug)]
pub struct ApiKeyArgs {
    /// The REST configuration file to add the key's digest to.
    #[arg(long, default_value = "rest.json")]
    pub config: PathBuf,
    /// Tenant name.
    #[arg(long)]
    pub tenant: String,
    /// Role: keyManagementToken, keyOperationToken, approverToken, serviceToken or
    /// approverKeyManagementToken (repeatable: one key for several roles).
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
}

/// Make an API key, store its digest in the configuration, print the key once.
pub fn api_key(a: ApiKeyArgs) -> Result<ExitCode> {
    let text =
        std::fs::read(&a.config).with_context(|| format!("cannot read {}", a.config.display()))?;
    let mut cfg: RestConfig = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a valid REST configuration", a.config.display()))?;
    for r in &a.roles {
        if tresor_rest::Role::parse(r).is_none() {
            bail!("unknown role {r:?}");
        }
    }
    let key = auth::generate_api_key().map_err(|e| anyhow!(e))?;
    let t = cfg
        .tenants
        .iter_mut()
        .find(|t| t.name == a.tenant)
        .ok_or_else(|| anyhow!("no tenant {} in {}", a.tenant, a.config.display()))?;
    for r in &a.roles {
        t.api_keys
            .entry(r.clone())
            .or_default()
            .push(auth::api_key_digest(&key));
    }
    write_private(&a.config, &serde_json::to_string_pretty(&cfg)?)?;
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}

fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The REST service `tresor dev` runs.
pub struct DevRest {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    status: tokio::task::JoinHandle<()>,
}

impl DevRest {
    /// Stop serving.
    pub async fn shutdown(self) {
        self.status.abort();
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Start the REST service on the in-process engine for the dev partition: JWT signing key and
/// API key kept in the dev directory, HTTPS certificate from the dev cluster root. Prints the
/// URL, a token, the API key and a curl line.
pub async fn dev_rest(
    engine: &Arc<tresor_core::Engine>,
    creds: &mut serde_json::Value,
    dir: &Path,
    partition: &str,
    user_pin: &str,
    port: u16,
    metrics_port: u16,
) -> Result<DevRest> {
    let local = Arc::new(tresor_server::local::LocalTransport::open(engine, partition).await?);
    let transport: Arc<dyn Transport> = local.clone();
    let (tr, pin) = (transport.clone(), SecretString::from(user_pin));
    tokio::task::spawn_blocking(move || login(tr.as_ref(), &pin)).await??;
    let sk_path = dir.join("rest-jwt.key");
    let pk_path = dir.join("rest-jwt.pub");
    if !sk_path.exists() || !pk_path.exists() {
        let (sk, pk) = auth::generate_token_key(TokenAlgorithm::EdDSA).map_err(|e| anyhow!(e))?;
        write_private(&sk_path, &sk)?;
        std::fs::write(&pk_path, pk)?;
    }
    // One dev API key for every role (dev only: kept in the dev credentials).
    let api_key = match creds.get("rest_api_key").and_then(|v| v.as_str()) {
        Some(k) => k.to_owned(),
        None => {
            let k = auth::generate_api_key().map_err(|e| anyhow!(e))?;
            creds["rest_api_key"] = serde_json::json!(k);
            write_private(
                &dir.join("credentials.json"),
                &serde_json::to_string_pretty(creds)?,
            )?;
            k
        }
    };
    let mut keys = HashMap::new();
    for r in tresor_rest::Role::ALL {
        keys.insert(r.name().to_owned(), vec![auth::api_key_digest(&api_key)]);
    }
    let tenant = Arc::new(
        Tenant::new(
            partition.to_owned(),
            partition.to_owned(),
            transport,
            ApiKeys::from_config(&keys).map_err(|e| anyhow!(e))?,
            Vec::new(),
        )
        .with_async(local),
    );
    let jwt = JwtVerifier::new(
        TokenAlgorithm::EdDSA,
        &std::fs::read(&pk_path)?,
        "tresor-rest",
        None,
    )
    .map_err(|e| anyhow!(e))?;
    let (chain, key) = engine
        .issue_server_identity(
            "tresor-dev-rest",
            &["127.0.0.1".to_owned(), "localhost".to_owned()],
            825,
        )
        .await?;
    let chain_pem: String = chain.iter().map(|c| pem_of("CERTIFICATE", c)).collect();
    let tls = TlsSettings {
        chain_pem: chain_pem.into_bytes(),
        key_pem: zeroize::Zeroizing::new(pem_of("PRIVATE KEY", &key).into_bytes()),
        client_ca_pem: None,
        require_client_cert: false,
    };
    let server_cfg = tresor_rest::server::server_config(&tls).map_err(|e| anyhow!(e))?;
    let app = Arc::new(App {
        tenants: vec![tenant.clone()],
        jwt: Some(jwt),
        mtls_default: None,
        requests: tresor_rest::requests::Requests::start(
            engine.store().clone(),
            tresor_rest::requests::Retention::default_for(vec![tenant.name.clone()]),
        ),
        metrics: Arc::new(tresor_rest::metrics::RestMetrics::new()),
    });
    let (status_addr, status) = rest_status(
        &app,
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, metrics_port)),
    )
    .await?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tresor_rest::serve(app, listener, server_cfg, async move {
        let _ = stopped.await;
    }));
    let token = issue(&IssueArgs {
        key: sk_path.clone(),
        alg: "EdDSA".into(),
        tenant: partition.to_owned(),
        partition: partition.to_owned(),
        audience: "tresor-rest".into(),
        issuer: None,
        subject: "tresor-dev".into(),
        ttl: 30 * 24 * 3600,
        not_before: 0,
    })?;
    let root = std::fs::canonicalize(dir.join("root.pem")).unwrap_or_else(|_| dir.join("root.pem"));
    let secret = SecretString::from(api_key);
    println!();
    println!("REST API (Securosys TSB v1):");
    println!("  URL                https://{addr}/v1   (Swagger UI https://{addr}/swagger-ui/index.html)");
    println!("  CA for curl        {}", root.display());
    println!("  metrics            http://{status_addr}/metrics");
    println!("  JWT                {token}");
    println!("  API key            {}", secret.expose_secret());
    println!(
        "  try                curl --cacert {} -H 'Authorization: Bearer {token}' -H 'X-API-KEY: {}' https://{addr}/v1/versionInfo",
        root.display(),
        secret.expose_secret()
    );
    println!("  new tokens         tresor admin token issue --key {} --tenant {partition} --partition {partition}", sk_path.display());
    Ok(DevRest { stop, task, status })
}

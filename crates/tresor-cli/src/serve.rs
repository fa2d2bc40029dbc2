//! `tresor hsm` (an HSM node), `tresor gateway` and `tresor cert gateway`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::cmd::{open_unsealed, open_unsealed_with, EngineArgs, ShareArgs, StoreArgs};
use crate::shares_io::write_private;

/// `tresor hsm`.
#[derive(Args, Debug)]
pub struct HsmArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub shares: ShareArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Node name (probes, logs, metrics, audit).
    #[arg(long, default_value = "node0")]
    pub name: String,
    /// Where gateways connect.
    #[arg(long, default_value = "127.0.0.1:2311")]
    pub listen: SocketAddr,
    /// Where `/health` and `/metrics` are served.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Accept clients that connect without a gateway (skips service login and allowlist).
    #[arg(long)]
    pub allow_direct: bool,
    /// Connections served at once.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Largest request frame in bytes.
    #[arg(long, default_value_t = tresor_proto::DEFAULT_MAX_FRAME_LEN)]
    pub max_frame: usize,
    /// Seconds a connection may stay without a request.
    #[arg(long, default_value_t = 900)]
    pub idle_timeout: u64,
}

/// Run an HSM node until Ctrl-C / SIGTERM.
pub async fn hsm(a: HsmArgs) -> Result<ExitCode> {
    let engine = open_unsealed_with(&a.store, &a.shares, a.engine.config()).await?;
    let _bg = engine.spawn_background();
    let node = tresor_server::Node::start(
        engine.clone(),
        tresor_server::NodeConfig {
            name: a.name.clone(),
            listen: a.listen,
            http_listen: a.http,
            max_frame_len: a.max_frame,
            max_connections: a.max_connections,
            idle_timeout: Duration::from_secs(a.idle_timeout),
            allow_direct: a.allow_direct,
            ..tresor_server::NodeConfig::default()
        },
    )
    .await?;
    println!("tresor hsm {} listening on {}", a.name, node.local_addr());
    if let Some(h) = node.http_addr() {
        println!("  health  http://{h}/health   metrics  http://{h}/metrics");
    }
    wait_for_stop().await;
    node.shutdown();
    engine.seal().await?;
    println!("Sealed and stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
pub async fn wait_for_stop() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `tresor cert …`.
#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Issue a gateway's TLS certificate, signed by the cluster root (needs the shares).
    Gateway(GatewayCertArgs),
}

/// `tresor cert gateway`.
#[derive(Args, Debug)]
pub struct GatewayCertArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub shares: ShareArgs,
    /// Common name.
    #[arg(long, default_value = "tresor-gateway")]
    pub name: String,
    /// Host names and IP addresses clients dial (repeatable).
    #[arg(long = "san", required = true)]
    pub sans: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 825)]
    pub days: u32,
    /// Certificate chain output (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// Private key output (PEM, PKCS#8, mode 0600).
    #[arg(long)]
    pub key: PathBuf,
}

/// `tresor cert …`.
pub async fn cert(c: CertCommand) -> Result<ExitCode> {
    match c {
        CertCommand::Gateway(a) => {
            let engine = open_unsealed(&a.store, &a.shares).await?;
            write_gateway_identity(&engine, &a.name, &a.sans, a.days, &a.cert, &a.key).await?;
            engine.seal().await?;
            println!(
                "Wrote {} and {} (SANs: {}).",
                a.cert.display(),
                a.key.display(),
                a.sans.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Issue a gateway identity and write it as PEM files.
pub async fn write_gateway_identity(
    engine: &tresor_core::Engine,
    name: &str,
    sans: &[String],
    days: u32,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<()> {
    if sans.is_empty() {
        bail!("a gateway certificate needs at least one --san");
    }
    let (chain, pk8) = engine.issue_server_identity(name, sans, days).await?;
    let mut pem = String::new();
    for c in &chain {
        pem.push_str(
            &openssl::x509::X509::from_der(c)?
                .to_pem()
                .map(String::from_utf8)??,
        );
    }
    std::fs::write(cert, pem).with_context(|| format!("cannot write {}", cert.display()))?;
    let key_pem = zeroize::Zeroizing::new(
        openssl::pkey::PKey::private_key_from_pkcs8(&pk8)?.private_key_to_pem_pkcs8()?,
    );
    write_private(key, std::str::from_utf8(&key_pem)?)?;
    Ok(())
}

/// `tresor gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where clients connect.
    #[arg(long, default_value = "127.0.0.1:2310")]
    pub listen: SocketAddr,
    /// Certificate chain (PEM) from `tresor cert gateway`.
    #[arg(long)]
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    #[arg(long)]
    pub key: PathBuf,
    /// An HSM node, `NAME=HOST:PORT` (repeatable).
    #[arg(long = "node", required = true, value_parser = parse_node)]
    pub nodes: Vec<tresor_gateway::NodeAddr>,
    /// Seconds without traffic before a relayed connection is closed.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
    /// Connections open at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Connections open at once from one source address.
    #[arg(long, default_value_t = 256)]
    pub max_per_source: usize,
    /// Seconds between node health probes.
    #[arg(long, default_value_t = 2)]
    pub health_interval: u64,
    /// Milliseconds a directory answer (a service, the allowlists) is reused. On PostgreSQL
    /// the store notifies the gateway of every service change, which then takes effect at
    /// once (a SQLite store shared with other processes: within its 200 ms poll of a change
    /// counter); this bounds how late a change arrives when a notification is lost.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub directory_cache_ms: u64,
    /// Where `/health` (200 while at least one HSM node is healthy, 503 otherwise) and
    /// `/metrics` (Prometheus text: connections, logins, refusals by reason, bytes, withdrawn
    /// connections, directory changes, healthy nodes) are served.
    #[arg(long)]
    pub http: Option<SocketAddr>,
}

fn parse_node(s: &str) -> std::result::Result<tresor_gateway::NodeAddr, String> {
    let (name, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=HOST:PORT"))?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| format!("{addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr:?}: no address"))?;
    if name.is_empty() {
        return Err(format!("{s:?}: the node name is empty"));
    }
    Ok(tresor_gateway::NodeAddr {
        name: name.to_owned(),
        addr,
    })
}

/// Run a gateway until Ctrl-C / SIGTERM. It needs no shares: it holds no key material.
pub async fn gateway(a: GatewayArgs) -> Result<ExitCode> {
    let cert =
        std::fs::read(&a.cert).with_context(|| format!("cannot read {}", a.cert.display()))?;
    let key = zeroize::Zeroizing::new(
        std::fs::read(&a.key).with_context(|| format!("cannot read {}", a.key.display()))?,
    );
    let id = tresor_proto::tls::Identity::from_pem(&cert, &key)?;
    let store = crate::cmd::open_store(&a.store.store).await?;
    let mut cfg = tresor_gateway::GatewayConfig::new(
        a.listen,
        tresor_proto::tls::gateway_server_config(&id)?,
        a.nodes.clone(),
    );
    cfg.idle_timeout = Duration::from_secs(a.idle_timeout);
    cfg.max_connections = a.max_connections;
    cfg.max_connections_per_source = a.max_per_source;
    cfg.health_interval = Duration::from_secs(a.health_interval.max(1));
    cfg.directory_cache_ttl = Duration::from_millis(a.directory_cache_ms);
    let gw =
        tresor_gateway::Gateway::start(cfg, Arc::new(tresor_gateway::StoreDirectory::new(store)))
            .await?;
    println!("tresor gateway listening on {}", gw.local_addr());
    for n in &a.nodes {
        println!("  node {} at {}", n.name, n.addr);
    }
    let http = match a.http {
        Some(addr) => {
            let (h, task) = gateway_status(&gw, addr).await?;
            println!("  health  http://{h}/health   metrics  http://{h}/metrics");
            Some(task)
        }
        None => None,
    };
    wait_for_stop().await;
    if let Some(t) = http {
        t.abort();
    }
    gw.shutdown().await;
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Serve a gateway's `/health` (200 while at least one HSM node is healthy, 503 otherwise)
/// and `/metrics` on `addr`: the bound address and the serving task (abort it to stop).
async fn gateway_status(
    gw: &tresor_gateway::Gateway,
    addr: SocketAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the gateway's /health and /metrics")
    })?;
    let bound = l.local_addr()?;
    let (health, metrics) = (gw.stats_reader(), gw.stats_reader());
    let task = tokio::spawn(tresor_server::metrics::serve_status_http(
        l,
        move || {
            if health().healthy_nodes > 0 {
                Ok(())
            } else {
                Err("no healthy HSM node")
            }
        },
        move || metrics().to_prometheus(),
    ));
    Ok((bound, task))
}

/// What `tresor dev` runs besides the engine.
pub struct DevNetwork {
    pub node: tresor_server::Node,
    pub gateway: tresor_gateway::Gateway,
    /// The gateway's `/health` and `/metrics` (on a port of its own).
    pub gateway_http: tokio::task::JoinHandle<()>,
}

impl DevNetwork {
    /// Stop the gateway (and its status endpoint) and the node.
    pub async fn shutdown(self) {
        self.gateway_http.abort();
        self.gateway.shutdown().await;
        self.node.shutdown();
    }
}

/// Ports and names for [`dev_network`].
pub struct DevNetworkArgs<'a> {
    pub dir: &'a std::path::Path,
    pub partition: &'a str,
    pub user_pin: &'a str,
    pub gateway_port: u16,
    pub node_port: u16,
    pub http_port: u16,
    pub gateway_http_port: u16,
}

/// Start a node and a gateway on 127.0.0.1, provision the dev service and a setup password,
/// write `primus.cfg` and the credentials file, and print what a client needs.
pub async fn dev_network(
    engine: &Arc<tresor_core::Engine>,
    creds: &mut serde_json::Value,
    a: DevNetworkArgs<'_>,
) -> Result<DevNetwork> {
    use secrecy::ExposeSecret;
    let local = std::net::Ipv4Addr::LOCALHOST;
    let node = tresor_server::Node::start(
        engine.clone(),
        tresor_server::NodeConfig {
            name: "node0".into(),
            listen: SocketAddr::from((local, a.node_port)),
            http_listen: Some(SocketAddr::from((local, a.http_port))),
            ..tresor_server::NodeConfig::default()
        },
    )
    .await?;
    let (chain, key) = engine
        .issue_server_identity(
            "tresor-dev-gateway",
            &["127.0.0.1".to_owned(), "localhost".to_owned()],
            825,
        )
        .await?;
    let tls = tresor_proto::tls::gateway_server_config(&tresor_proto::tls::Identity {
        chain,
        key_pkcs8: key,
    })?;
    // The dev service: created once; its password is kept in the dev credentials (dev only).
    let service_user = "dev-svc";
    let have_service = engine
        .list_services()
        .await?
        .iter()
        .any(|s| s.record.service_user == service_user);
    let service_password = match (
        creds.get("service_password").and_then(|v| v.as_str()),
        have_service,
    ) {
        (Some(p), true) => p.to_owned(),
        (_, true) => engine
            .rotate_service_password(service_user)
            .await?
            .expose_secret()
            .to_owned(),
        (_, false) => {
            let allow = tresor_core::directory::parse_allowlist("127.0.0.0/8,::1/128")?;
            let (_, pw) = engine
                .create_service(
                    "dev",
                    service_user,
                    allow,
                    vec![a.partition.to_owned()],
                    vec![],
                )
                .await?;
            pw.expose_secret().to_owned()
        }
    };
    creds["service_user"] = serde_json::json!(service_user);
    creds["service_password"] = serde_json::json!(service_password);
    crate::shares_io::write_private(
        &a.dir.join("credentials.json"),
        &serde_json::to_string_pretty(creds)?,
    )?;
    let mut gcfg = tresor_gateway::GatewayConfig::new(
        SocketAddr::from((local, a.gateway_port)),
        tls,
        vec![tresor_gateway::NodeAddr {
            name: "node0".into(),
            addr: node.local_addr(),
        }],
    );
    gcfg.health_interval = Duration::from_secs(1);
    let gateway = tresor_gateway::Gateway::start(
        gcfg,
        Arc::new(tresor_gateway::StoreDirectory::new(engine.store().clone())),
    )
    .await?;
    let gw = gateway.local_addr();
    let dir = std::fs::canonicalize(a.dir).unwrap_or_else(|_| a.dir.to_path_buf());
    let cfg_path = dir.join("primus.cfg");
    let secrets_path = dir.join(".secrets.cfg");
    let root_path = dir.join("root.pem");
    let cfg = format!(
        "# Written by `tresor dev`: a primus.cfg-compatible client configuration.\n\
         version = \"1.0\";\n\
         primus: {{\n  ca_file = \"{root}\";\n  wait_delay = 250;\n  wait_max_tries = 5;\n  connect_on_init = true;\n\
         \x20 hsms: {{\n    hsm0: {{\n      host = \"127.0.0.1\";\n      port = \"{port}\";\n      priority = 0;\n\
         \x20     slots: {{\n        slot0: {{ client_id = \"dev-client\"; user_name = \"{part}\"; proxy_user = \"{svc}\"; id = 0; }};\n      }};\n    }};\n  }};\n}};\n",
        root = root_path.display(),
        port = gw.port(),
        part = a.partition,
        svc = service_user,
    );
    std::fs::write(&cfg_path, cfg)
        .with_context(|| format!("cannot write {}", cfg_path.display()))?;
    let registered = !engine.list_clients(a.partition).await?.is_empty();
    let setup = if registered {
        None
    } else {
        Some(
            engine
                .issue_setup_password(
                    a.partition,
                    tresor_core::engine::credentials::SetupPolicy::default(),
                )
                .await?,
        )
    };
    let creds_txt = dir.join("credentials.txt");
    if let Some(s) = &setup {
        crate::admin::write_credentials_file(
            &creds_txt,
            &crate::admin::CredentialsFile {
                service_user: service_user.to_owned(),
                service_password: secrecy::SecretString::from(service_password.clone()),
                hsm_user: a.partition.to_owned(),
                setup_password: s.clone(),
                pkcs11_password: Some(secrecy::SecretString::from(a.user_pin.to_owned())),
                gateways: vec![gw.to_string()],
            },
        )?;
    }
    println!(
        "  HSM node           {}   (health http://{}/health, metrics /metrics)",
        node.local_addr(),
        node.http_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    let (gw_http, gateway_http) =
        gateway_status(&gateway, SocketAddr::from((local, a.gateway_http_port))).await?;
    println!("  gateway            {gw}   (health http://{gw_http}/health, metrics /metrics)");
    println!("  service user       {service_user}   password {service_password}");
    println!("  client config      {}", cfg_path.display());
    println!("  credentials file   {}", creds_txt.display());
    println!();
    println!("Connect a client:");
    println!("  export TRESOR_PKCS11_CONF={}", cfg_path.display());
    println!("  export TRESOR_SECRETS_CONF={}", secrets_path.display());
    println!("  ppin -p -e {service_user} '{service_password}'");
    match &setup {
        Some(s) => println!(
            "  ppin -a -e {} '{}' '{}'",
            a.partition,
            s.expose_secret(),
            a.user_pin
        ),
        None => println!(
            "  # a permanent secret is already registered for {}; new setup password: tresor admin credentials setup-password --partition {}",
            a.partition, a.partition
        ),
    }
    println!("  ppin -t");
    Ok(DevNetwork {
        node,
        gateway,
        gateway_http,
    })
}

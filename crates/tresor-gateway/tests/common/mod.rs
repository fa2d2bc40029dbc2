//! Test helpers: TLS identity, service entries, a fake HSM node, a phase-one client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tresor_gateway::{
    Gateway, GatewayConfig, MemoryDirectory, NodeAddr, ServiceEntry, ServiceRecord,
};
use tresor_proto::gateway::{GatewayMsg, MAX_GATEWAY_FRAME, NODE_READY};
use tresor_proto::tls::{gateway_client_config, gateway_server_config, Identity};
use tresor_proto::{Envelope, Secret};

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tresor_gateway=debug".into()),
        )
        .try_init();
}

/// A self-signed certificate for 127.0.0.1: (server config, client config).
pub fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&kp).unwrap();
    let id = Identity {
        chain: vec![cert.der().to_vec()],
        key_pkcs8: zeroize::Zeroizing::new(kp.serialize_der()),
    };
    (
        gateway_server_config(&id).unwrap(),
        gateway_client_config(cert.der()).unwrap(),
    )
}

/// A cheap Argon2id PHC string (tests only).
pub fn phc(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

pub fn service(user: &str, password: &str, allow: &[&str], partitions: &[&str]) -> ServiceEntry {
    ServiceEntry {
        record: ServiceRecord {
            name: format!("svc-{user}"),
            service_user: user.to_string(),
            password_hash: phc(password),
            allowlist: allow.iter().map(|a| a.parse::<IpNet>().unwrap()).collect(),
            partitions: partitions.iter().map(|p| p.to_string()).collect(),
            nodes: vec![],
            max_failures: 5,
            lockout_secs: 900,
            created: 0,
            updated: 0,
            disabled: false,
        },
        failures: 0,
        locked_until: 0,
    }
}

pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut p = [0u8; 4];
    r.read_exact(&mut p).await?;
    let len = u32::from_be_bytes(p) as usize;
    assert!(len <= MAX_GATEWAY_FRAME);
    let mut b = vec![0u8; len];
    r.read_exact(&mut b).await?;
    Ok(b)
}

pub async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<GatewayMsg> {
    let b = read_frame(r).await?;
    Ok(Envelope::<GatewayMsg>::decode(&b).unwrap().body)
}

pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, m: GatewayMsg) {
    let p = Envelope::new(1, m).encode().unwrap();
    w.write_all(&(p.len() as u32).to_be_bytes()).await.unwrap();
    w.write_all(&p).await.unwrap();
    w.flush().await.unwrap();
}

/// What a fake node saw in a Preamble.
#[derive(Debug, Clone)]
pub struct Seen {
    pub service: String,
    pub service_user: String,
    pub partition: String,
    pub client_id: String,
    pub source: String,
    pub session_id: u64,
}

/// A fake HSM node: answers probes with `status`, reads a Preamble, then echoes.
pub struct FakeNode {
    pub name: String,
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl FakeNode {
    pub async fn start(name: &str, status: u8) -> FakeNode {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (seen2, name2) = (seen.clone(), name.to_string());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let (seen, name) = (seen2.clone(), name2.clone());
                tokio::spawn(async move {
                    match read_msg(&mut s).await {
                        Ok(GatewayMsg::Probe {}) => {
                            write_msg(&mut s, GatewayMsg::ProbeReply { status, node: name }).await
                        }
                        Ok(GatewayMsg::Preamble {
                            service,
                            service_user,
                            partition,
                            client_id,
                            source,
                            session_id,
                        }) => {
                            seen.lock().push(Seen {
                                service,
                                service_user,
                                partition,
                                client_id,
                                source,
                                session_id,
                            });
                            let (mut r, mut w) = s.split();
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                        _ => {}
                    }
                });
            }
        });
        FakeNode {
            name: name.to_string(),
            addr,
            seen,
            task,
        }
    }

    pub fn node_addr(&self) -> NodeAddr {
        NodeAddr {
            name: self.name.clone(),
            addr: self.addr,
        }
    }

    /// Stop listening (established connections are left alone).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub struct Env {
    pub gw: Gateway,
    pub dir: Arc<MemoryDirectory>,
    pub client_tls: Arc<rustls::ClientConfig>,
}

/// A gateway config for tests: short intervals.
pub fn test_config(server: Arc<rustls::ServerConfig>, nodes: Vec<NodeAddr>) -> GatewayConfig {
    let mut c = GatewayConfig::new("127.0.0.1:0".parse().unwrap(), server, nodes);
    c.health_interval = Duration::from_millis(200);
    c.handshake_timeout = Duration::from_secs(2);
    c.directory_cache_ttl = Duration::from_millis(200);
    c
}

pub async fn start_env(
    nodes: Vec<NodeAddr>,
    services: Vec<ServiceEntry>,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> Env {
    init_logs();
    let (server, client_tls) = tls_pair();
    let dir = Arc::new(MemoryDirectory::new());
    for s in services {
        dir.put(s);
    }
    let mut config = test_config(server, nodes);
    tweak(&mut config);
    let gw = Gateway::start(config, dir.clone()).await.unwrap();
    Env {
        gw,
        dir,
        client_tls,
    }
}

impl Env {
    pub async fn tls(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.gw.local_addr()).await?;
        let c = tokio_rustls::TlsConnector::from(self.client_tls.clone());
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        c.connect(name, tcp).await
    }

    /// Connect and send a Hello; the gateway's reply and the stream.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        partition: &str,
    ) -> (GatewayMsg, TlsStream<TcpStream>) {
        let mut s = self.tls().await.unwrap();
        write_msg(
            &mut s,
            GatewayMsg::Hello {
                service_user: user.into(),
                password: Secret::from_slice(password.as_bytes()),
                partition: partition.into(),
                client_id: "test-app".into(),
            },
        )
        .await;
        let reply = tokio::time::timeout(Duration::from_secs(10), read_msg(&mut s))
            .await
            .expect("reply in time")
            .expect("a reply frame");
        (reply, s)
    }
}

pub fn refused_code(m: &GatewayMsg) -> Option<u32> {
    match m {
        GatewayMsg::Refused { code, .. } => Some(*code),
        _ => None,
    }
}

/// Write `data`, read it back.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, data: &[u8]) -> Vec<u8> {
    s.write_all(data).await.unwrap();
    s.flush().await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    back
}

/// True if the stream ends (EOF or error) within `within`.
pub async fn closes_within<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> bool {
    let mut b = [0u8; 64];
    matches!(
        tokio::time::timeout(within, async {
            loop {
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await,
        Ok(())
    )
}

pub const READY: u8 = NODE_READY;

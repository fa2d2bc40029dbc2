//! Connections to HSM nodes through a gateway: blocking I/O (`std::net` + rustls
//! `StreamOwned`), no async runtime, fork-safe.
//!
//! One connection: TCP to the gateway (connect timeout) → TLS 1.3 (gateway certificate,
//! verified against the cluster root of `ca_file`, server name = the configured host) →
//! `GatewayMsg::Hello` → `Accepted` / `Refused` → end-to-end TLS 1.3 to the node, nested in the
//! gateway TLS (client certificate = the permanent key; server name `tresor-node`) →
//! `Request` / `Response` frames with request ids.
//!
//! [`SlotClient`] serves one configured slot: target selection (random start within the best
//! priority, round-robin there, next priority on failure), a retry budget (`wait_delay`,
//! `wait_max_tries`), a pool of idle connections that all attach to one node-side context
//! (a 16-byte token per process), login replay on new connections, sealed copies of the
//! process's session objects restored into a new context (after a failover), and fork safety
//! (a child process never touches its parent's connections or their locks).

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use secrecy::{ExposeSecret, SecretString};
use tresor_proto::gateway::{codes, GatewayMsg, MAX_GATEWAY_FRAME};
use tresor_proto::tls::{self, Identity};
use tresor_proto::{
    read_message, write_frame, Envelope, Mechanism, ProtoError, Request, Response, SealedObject,
    Secret, UserType, DEFAULT_MAX_FRAME_LEN,
};
use zeroize::Zeroizing;

use crate::config::primus::{PrimusConfig, Slot};
use crate::config::secrets::SecretsFile;
use crate::error::rv;
use crate::mux::Link;
use crate::Error;

/// Requests in flight on every link before the pool opens another one (up to `max_idle`).
///
/// The node runs a connection's short requests (ECDSA, EdDSA, AES) on that connection's task,
/// so one link keeps at most one node core busy with them: a second link lets a node use a
/// second core. Deeper links batch more per system call but leave the node's other cores idle;
/// shallower ones add a polling reader per link on the client. Measured with p11bench and
/// `tresor dev` on the 2-vCPU VM, alternating runs, 2 s each: ECDSA P-256 at 8 threads 36,000
/// (depth 16) → 44,000–45,000 signatures/s (depth 4), RSA-2048 at 8 threads +5–10 %, 1, 2 and 32
/// threads unchanged; depth 2 or 3 lost 10–25 % on ECDSA to the extra polling readers.
const PIPELINE_DEPTH: usize = 4;

/// Slow requests (see [`is_slow`]) take a link that carries nothing else if one of the first
/// [`SLOW_LINKS`] links is free, and open one while there are fewer. With two application
/// threads signing with RSA-2048 on one shared link, the second request's round trip took about
/// a whole signature longer, so two threads got one core's worth of signatures; on links of
/// their own they get both. Measured with p11bench against `tresor dev` on the 2-vCPU VM,
/// alternating runs: 2 threads 3,300 → 4,300–5,100 signatures/s, 4 threads +6–14 %, 8 and 32
/// threads −2 to +4 %; four such links instead of two lost 3–5 % at 8 clients in
/// `tresor bench network`, where 8 requests on 4 links batch less than on 2.
const SLOW_LINKS: usize = 2;

/// A link unused for this long is checked for a peer close before it carries a request.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(200);

/// The client id sent when a slot entry has no `client_id`.
pub const DEFAULT_CLIENT_ID: &str = "tresor-client";

/// `CKR_USER_ALREADY_LOGGED_IN`.
const CKR_USER_ALREADY_LOGGED_IN: u64 = 0x100;

/// `CKR_OBJECT_HANDLE_INVALID`.
const CKR_OBJECT_HANDLE_INVALID: u64 = 0x82;

/// Timeouts, retry budget and pool size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// TCP connect timeout per address.
    pub connect_timeout: Duration,
    /// Read/write timeout while a connection is set up (TLS, gateway, attach, login replay).
    pub handshake_timeout: Duration,
    /// Read/write timeout of requests on an established connection.
    pub io_timeout: Duration,
    /// Pause between two rounds over all targets (`primus.wait_delay`).
    pub wait_delay: Duration,
    /// Rounds over all targets before giving up (`primus.wait_max_tries`; at least one).
    pub wait_max_tries: u32,
    /// Connections kept per slot. Another is opened when each carries [`PIPELINE_DEPTH`]
    /// requests at once; with all open, they carry as many as the callers send.
    pub max_idle: usize,
    /// How long a caller waiting for an answer polls the socket before it sleeps in the
    /// kernel (yielding the CPU between polls). Polling saves the wake-up, which on a virtual
    /// machine often costs more than a short operation; it is used only while answers
    /// recently came within this time, so slow operations never spin. Zero turns it off;
    /// `TRESOR_CLIENT_SPIN_US` overrides the default.
    pub spin: Duration,
}

/// The default of [`ConnectOptions::spin`], unless `TRESOR_CLIENT_SPIN_US` says otherwise.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(100);

fn default_spin() -> Duration {
    std::env::var("TRESOR_CLIENT_SPIN_US")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_SPIN, |us| Duration::from_micros(us.min(10_000)))
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            wait_delay: Duration::from_millis(u64::from(
                crate::config::primus::DEFAULT_WAIT_DELAY_MS,
            )),
            wait_max_tries: crate::config::primus::DEFAULT_WAIT_MAX_TRIES,
            max_idle: 8,
            spin: default_spin(),
        }
    }
}

impl ConnectOptions {
    /// The defaults, with `wait_delay` and `wait_max_tries` from the configuration.
    pub fn from_config(config: &PrimusConfig) -> Self {
        Self {
            wait_delay: config.wait_delay(),
            wait_max_tries: config.wait_max_tries,
            ..Self::default()
        }
    }
}

/// One place a slot can be reached: a gateway and the credentials to pass it.
#[derive(Clone)]
pub struct Endpoint {
    /// The HSM entry's name (`hsm0`).
    pub hsm: String,
    /// Gateway host (DNS name or IP address; also the TLS server name).
    pub host: String,
    /// Gateway port.
    pub port: u16,
    /// Priority (lower preferred).
    pub priority: u8,
    /// Service user (`proxy_user`).
    pub service_user: String,
    /// Service user's password. Never printed.
    pub service_password: SecretString,
    /// Client id sent to the gateway.
    pub client_id: String,
    /// The cluster root certificate (DER).
    pub root_der: Arc<Vec<u8>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("hsm", &self.hsm)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("priority", &self.priority)
            .field("service_user", &self.service_user)
            .field("service_password", &"[REDACTED]")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Endpoint {
    /// `host:port (hsm)` for messages.
    pub fn describe(&self) -> String {
        format!("{}:{} ({})", self.host, self.port, self.hsm)
    }
}

/// Everything needed to reach one slot.
#[derive(Clone, Debug)]
pub struct SlotSettings {
    /// The PKCS#11 slot id.
    pub slot_id: u32,
    /// The partition (`user_name`).
    pub partition: String,
    /// The targets, sorted by priority.
    pub endpoints: Vec<Endpoint>,
    /// Timeouts and retry budget.
    pub options: ConnectOptions,
}

impl SlotSettings {
    /// Resolves a configured slot: root certificates from `ca_file`, service passwords from
    /// the slot entry or else from the secrets file's entry of the service user.
    pub fn from_config(
        config: &PrimusConfig,
        slot: &Slot,
        secrets: Option<&SecretsFile>,
    ) -> Result<Self, Error> {
        let mut roots: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
        let mut endpoints = Vec::with_capacity(slot.targets.len());
        for t in &slot.targets {
            let Some(ca_file) = &t.ca_file else {
                return Err(Error::CaFile(format!(
                    "no root certificate configured for {}: set 'primus.ca_file' or \
                     'primus.hsms.{}.ca_file'",
                    t.hsm, t.hsm
                )));
            };
            let root_der = match roots.iter().find(|(p, _)| p == ca_file) {
                Some((_, der)) => der.clone(),
                None => {
                    let der = Arc::new(load_root(std::path::Path::new(ca_file))?);
                    roots.push((ca_file.clone(), der.clone()));
                    der
                }
            };
            let Some(service_user) = t.proxy_user.clone() else {
                return Err(Error::MissingCredential {
                    user: slot.user_name.clone(),
                    what: format!("'proxy_user' (service user) in {}.{}", t.hsm, t.slot),
                });
            };
            let service_password = match &t.proxy_password {
                Some(p) => p.clone(),
                None => secrets
                    .and_then(|s| s.user(&service_user))
                    .and_then(|u| u.proxy_password.clone())
                    .ok_or_else(|| Error::MissingCredential {
                        user: service_user.clone(),
                        what: "the service user's password".into(),
                    })?,
            };
            endpoints.push(Endpoint {
                hsm: t.hsm.clone(),
                host: t.host.clone(),
                port: t.port,
                priority: t.priority,
                service_user,
                service_password,
                client_id: t
                    .client_id
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned()),
                root_der,
            });
        }
        endpoints.sort_by_key(|e| e.priority);
        Ok(Self {
            slot_id: slot.id,
            partition: slot.user_name.clone(),
            endpoints,
            options: ConnectOptions::from_config(config),
        })
    }
}

/// Reads the first certificate of a PEM file (the cluster root) as DER.
pub fn load_root(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bytes = std::fs::read(path)
        .map_err(|e| Error::CaFile(format!("{}: cannot read: {e}", path.display())))?;
    match CertificateDer::pem_slice_iter(&bytes).next() {
        Some(Ok(c)) => Ok(c.to_vec()),
        Some(Err(e)) => Err(Error::CaFile(format!(
            "{}: invalid PEM: {e}",
            path.display()
        ))),
        None => Err(Error::CaFile(format!(
            "{}: no certificate in the file",
            path.display()
        ))),
    }
}

type GatewayStream = StreamOwned<ClientConnection, TcpStream>;
type E2eStream = StreamOwned<ClientConnection, GatewayStream>;

/// One established end-to-end channel to a node (through a gateway).
pub struct Connection {
    stream: E2eStream,
    target: String,
    node: String,
    session_id: u64,
    /// The socket's current read/write timeout (for messages).
    timeout: Duration,
    /// When opening began (the TLS settings already prepared).
    started: Instant,
    /// How long phase one took: TCP connection, TLS to the gateway, service login, node chosen.
    gateway_phase: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("node", &self.node)
            .field("session_id", &self.session_id)
            .finish()
    }
}

fn io_error(target: &str, what: &str, e: &std::io::Error, timeout: Duration) -> Error {
    let message = match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("{what}: timed out after {} ms", timeout.as_millis())
        }
        _ => format!("{what}: {e}"),
    };
    Error::Network {
        target: target.to_owned(),
        message,
    }
}

fn proto_error(target: &str, what: &str, e: ProtoError, timeout: Duration) -> Error {
    match e {
        ProtoError::Io(io) => io_error(target, what, &io, timeout),
        ProtoError::UnexpectedEof { .. } => Error::Network {
            target: target.to_owned(),
            message: format!("{what}: connection closed by the peer"),
        },
        other => Error::Protocol {
            target: target.to_owned(),
            message: format!("{what}: {other}"),
        },
    }
}

fn tls_error(target: &str, e: impl std::fmt::Display) -> Error {
    Error::Network {
        target: target.to_owned(),
        message: format!("TLS: {e}"),
    }
}

/// The TLS configurations of one endpoint.
#[derive(Clone, Debug)]
struct Prepared {
    endpoint: Endpoint,
    gateway: Arc<ClientConfig>,
    e2e: Arc<ClientConfig>,
}

impl Prepared {
    fn new(endpoint: &Endpoint, identity: Option<&Identity>) -> Result<Self, Error> {
        let target = endpoint.describe();
        let gateway =
            tls::gateway_client_config(&endpoint.root_der).map_err(|e| tls_error(&target, e))?;
        let e2e = tls::e2e_client_config(&endpoint.root_der, identity)
            .map_err(|e| tls_error(&target, e))?;
        Ok(Self {
            endpoint: endpoint.clone(),
            gateway,
            e2e,
        })
    }
}

impl Connection {
    /// Opens a channel to a node through `endpoint` (no request sent yet). `identity` is the
    /// permanent-key certificate, or `None` to register a key.
    pub fn open(
        endpoint: &Endpoint,
        identity: Option<&Identity>,
        partition: &str,
        options: &ConnectOptions,
    ) -> Result<Connection, Error> {
        Self::open_prepared(&Prepared::new(endpoint, identity)?, partition, options)
    }

    fn open_prepared(
        p: &Prepared,
        partition: &str,
        options: &ConnectOptions,
    ) -> Result<Connection, Error> {
        let started = Instant::now();
        let ep = &p.endpoint;
        let target = ep.describe();
        let hs = options.handshake_timeout;
        let addrs = (ep.host.as_str(), ep.port)
            .to_socket_addrs()
            .map_err(|e| Error::Network {
                target: target.clone(),
                message: format!("cannot resolve '{}': {e}", ep.host),
            })?;
        let mut tcp = None;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, options.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(io_error(&target, "connect", &e, options.connect_timeout)),
            }
        }
        let Some(tcp) = tcp else {
            return Err(last.unwrap_or_else(|| Error::Network {
                target: target.clone(),
                message: format!("'{}' has no address", ep.host),
            }));
        };
        let set = |s: &TcpStream, t: Duration| -> Result<(), Error> {
            s.set_read_timeout(Some(t))
                .and_then(|()| s.set_write_timeout(Some(t)))
                .map_err(|e| io_error(&target, "socket", &e, t))
        };
        set(&tcp, hs)?;
        let _ = tcp.set_nodelay(true);

        let name = tls::gateway_server_name(&ep.host).map_err(|e| tls_error(&target, e))?;
        let conn =
            ClientConnection::new(p.gateway.clone(), name).map_err(|e| tls_error(&target, e))?;
        let mut gw = StreamOwned::new(conn, tcp);
        while gw.conn.is_handshaking() {
            gw.conn
                .complete_io(&mut gw.sock)
                .map_err(|e| io_error(&target, "gateway TLS handshake", &e, hs))?;
        }
        let hello = GatewayMsg::Hello {
            service_user: ep.service_user.clone(),
            password: Secret::from_slice(ep.service_password.expose_secret().as_bytes()),
            partition: partition.to_owned(),
            client_id: ep.client_id.clone(),
        };
        let bytes = Envelope::new(0, hello)
            .encode()
            .map_err(|e| proto_error(&target, "gateway hello", e, hs))?;
        let bytes = Zeroizing::new(bytes);
        write_frame(&mut gw, &bytes, MAX_GATEWAY_FRAME)
            .map_err(|e| proto_error(&target, "gateway hello", e, hs))?;
        let reply = read_message::<GatewayMsg, _>(&mut gw, MAX_GATEWAY_FRAME)
            .map_err(|e| proto_error(&target, "gateway reply", e, hs))?;
        let (node, session_id) = match reply.map(|r| r.body) {
            Some(GatewayMsg::Accepted { node, session_id }) => (node, session_id),
            Some(GatewayMsg::Refused { code, message }) => {
                return Err(Error::GatewayRefused {
                    target,
                    code,
                    message,
                })
            }
            Some(other) => {
                return Err(Error::Protocol {
                    target,
                    message: format!("unexpected gateway message {other:?}"),
                })
            }
            None => {
                return Err(Error::Network {
                    target,
                    message: "the gateway closed the connection before answering".into(),
                })
            }
        };
        let gateway_phase = started.elapsed();
        let name = tls::node_server_name().map_err(|e| tls_error(&target, e))?;
        let conn = ClientConnection::new(p.e2e.clone(), name).map_err(|e| tls_error(&target, e))?;
        let mut e2e = StreamOwned::new(conn, gw);
        while e2e.conn.is_handshaking() {
            e2e.conn
                .complete_io(&mut e2e.sock)
                .map_err(|e| io_error(&target, "end-to-end TLS handshake", &e, hs))?;
        }
        Ok(Connection {
            stream: e2e,
            target,
            node,
            session_id,
            timeout: hs,
            started,
            gateway_phase,
        })
    }

    /// When opening this connection began, after the TLS settings were prepared (which a
    /// process does once per target): the start of phase one.
    pub fn opened_at(&self) -> Instant {
        self.started
    }

    /// How long phase one of opening this connection took: the TCP connection, the TLS
    /// handshake with the gateway and the service login, until the gateway accepted. The rest
    /// of the set-up (phase two) is the end-to-end handshake with the node and the first
    /// request.
    pub fn gateway_phase(&self) -> Duration {
        self.gateway_phase
    }

    /// The node's name, as the gateway reported it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `host:port (hsm)` of the gateway.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The gateway's id of this connection.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    fn tcp(&self) -> &TcpStream {
        &self.stream.sock.sock
    }

    fn set_timeout(&mut self, t: Duration) -> Result<(), Error> {
        self.tcp()
            .set_read_timeout(Some(t))
            .and_then(|()| self.tcp().set_write_timeout(Some(t)))
            .map_err(|e| io_error(&self.target, "socket", &e, t))?;
        self.timeout = t;
        Ok(())
    }

    /// Hands the established channel to a multiplexed link.
    fn into_link(self, io_timeout: Duration, spin: Duration) -> Link {
        let Connection {
            stream,
            target,
            node,
            ..
        } = self;
        let StreamOwned {
            conn: inner,
            sock: gateway,
        } = stream;
        let StreamOwned {
            conn: outer,
            sock: tcp,
        } = gateway;
        Link::new(
            target,
            node,
            tcp,
            (outer, inner),
            DEFAULT_MAX_FRAME_LEN,
            io_timeout,
            spin,
        )
    }

    /// Sends one request and reads its answer (a node error is `Ok(Response::Error)`).
    pub fn exchange(&mut self, request_id: u64, request: &Request) -> Result<Response, Error> {
        let target = self.target.clone();
        let timeout = self.timeout;
        let bytes = request
            .encode(request_id)
            .map(Zeroizing::new)
            .map_err(|e| proto_error(&target, "request", e, timeout))?;
        write_frame(&mut self.stream, &bytes, DEFAULT_MAX_FRAME_LEN)
            .map_err(|e| proto_error(&target, "sending the request", e, timeout))?;
        let reply = read_message::<Response, _>(&mut self.stream, DEFAULT_MAX_FRAME_LEN)
            .map_err(|e| proto_error(&target, "reading the answer", e, timeout))?;
        let Some(reply) = reply else {
            return Err(Error::Network {
                target,
                message: "the node closed the connection before answering".into(),
            });
        };
        if reply.request_id != request_id || !reply.body.answers(request) {
            return Err(Error::Protocol {
                target,
                message: format!(
                    "answer {} to request {request_id} does not match",
                    reply.request_id
                ),
            });
        }
        Ok(reply.body)
    }
}

/// A node error as this crate's error.
fn node_result(response: Response) -> Result<Response, Error> {
    match response {
        Response::Error { rv, message } => Err(Error::Node { rv, message }),
        other => Ok(other),
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Protocol {
        target: "local".into(),
        message: "the system random generator failed".into(),
    })?;
    Ok(b)
}

fn random_usize() -> usize {
    random_bytes::<8>().map_or(0, |b| u64::from_le_bytes(b) as usize)
}

/// Gateway refusals that another gateway or a later attempt may not repeat.
fn is_transient(e: &Error) -> bool {
    match e {
        Error::Network { .. } | Error::Protocol { .. } => true,
        Error::GatewayRefused { code, .. } => matches!(
            *code,
            codes::NO_NODE | codes::MAX_CONNECTIONS | codes::RATE_LIMITED
        ),
        _ => false,
    }
}

/// Targets grouped by priority, with a round-robin cursor per group.
#[derive(Debug)]
struct Targets {
    slot_id: u32,
    groups: Vec<(Vec<Prepared>, AtomicUsize)>,
    options: ConnectOptions,
}

impl Targets {
    /// No targets (the placeholder left by `SlotClient::drop`).
    fn empty(settings: &SlotSettings) -> Self {
        Self {
            slot_id: settings.slot_id,
            groups: Vec::new(),
            options: settings.options.clone(),
        }
    }

    fn new(settings: &SlotSettings, identity: Option<&Identity>) -> Result<Self, Error> {
        let mut sorted = settings.endpoints.clone();
        sorted.sort_by_key(|e| e.priority);
        let mut groups: Vec<(Vec<Prepared>, AtomicUsize)> = Vec::new();
        let mut last_priority = None;
        for e in &sorted {
            let p = Prepared::new(e, identity)?;
            match groups.last_mut() {
                Some((g, _)) if last_priority == Some(e.priority) => g.push(p),
                _ => groups.push((vec![p], AtomicUsize::new(random_usize()))),
            }
            last_priority = Some(e.priority);
        }
        if groups.is_empty() {
            return Err(Error::UserNotInConfig {
                user: settings.partition.clone(),
            });
        }
        Ok(Self {
            slot_id: settings.slot_id,
            groups,
            options: settings.options.clone(),
        })
    }

    /// Runs `attempt` on targets in selection order until one succeeds, within the budget.
    fn with_failover<T>(
        &self,
        mut attempt: impl FnMut(&Prepared) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let rounds = self.options.wait_max_tries.max(1);
        let mut attempts = 0u32;
        let mut last = None;
        for round in 0..rounds {
            if round > 0 {
                std::thread::sleep(self.options.wait_delay);
            }
            for (group, cursor) in &self.groups {
                let start = cursor.fetch_add(1, Ordering::Relaxed);
                for i in 0..group.len() {
                    let Some(p) = group.get(start.wrapping_add(i) % group.len()) else {
                        continue;
                    };
                    attempts += 1;
                    match attempt(p) {
                        Ok(v) => return Ok(v),
                        Err(e) if is_transient(&e) => last = Some(e),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(Error::NoHsmReachable {
            slot_id: self.slot_id,
            attempts,
            last: Box::new(last.unwrap_or_else(|| Error::Network {
                target: "-".into(),
                message: "no target tried".into(),
            })),
        })
    }
}

/// Exchanges the setup password for the registration of a new permanent key (`ppin -a`).
/// Returns the key (PKCS#8 DER) and its fingerprint as the node registered it. The request is
/// never retried once sent (a setup password works once).
pub fn register(
    settings: &SlotSettings,
    setup_password: &SecretString,
    pin: &SecretString,
    label: &str,
) -> Result<(Zeroizing<Vec<u8>>, String), Error> {
    let key = tls::generate_client_key().map_err(|e| tls_error("local", e))?;
    let spki = tls::spki_of_key(&key).map_err(|e| tls_error("local", e))?;
    let expected = tls::fingerprint(&spki);
    let targets = Targets::new(settings, None)?;
    let options = &settings.options;
    let mut conn =
        targets.with_failover(|p| Connection::open_prepared(p, &settings.partition, options))?;
    conn.set_timeout(options.io_timeout)?;
    let request = Request::RegisterClient {
        partition: settings.partition.clone(),
        setup_password: Secret::from_slice(setup_password.expose_secret().as_bytes()),
        pin: Secret::from_slice(pin.expose_secret().as_bytes()),
        public_key: spki,
        label: label.to_owned(),
    };
    let answer = conn.exchange(1, &request)?;
    match answer {
        Response::ClientRegistered { fingerprint } if fingerprint == expected => {
            Ok((key, fingerprint))
        }
        Response::ClientRegistered { fingerprint } => Err(Error::Protocol {
            target: conn.target().to_owned(),
            message: format!(
                "the node registered key {fingerprint}, but this client's key is {expected}"
            ),
        }),
        Response::Error { rv, message } => Err(setup_error(rv, message)),
        other => Err(Error::Protocol {
            target: conn.target().to_owned(),
            message: format!("unexpected answer {other:?} to RegisterClient"),
        }),
    }
}

fn setup_error(code: u64, message: String) -> Error {
    match code {
        rv::SETUP_PASSWORD_EXPIRED => Error::SetupPasswordExpired { rv: code, message },
        rv::SETUP_PASSWORD_USED
        | rv::SETUP_PASSWORD_INVALID
        | rv::PIN_INCORRECT
        | rv::PIN_LOCKED => Error::SetupLoginFailed { rv: code, message },
        _ => Error::Node { rv: code, message },
    }
}

/// What [`test_connection`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestReport {
    /// The node's name.
    pub node: String,
    /// The node's context id.
    pub context_id: u64,
    /// The partition's id (token serial).
    pub partition_id: i64,
    /// Whether a `Login` with the stored PKCS#11 password was made (and succeeded).
    pub logged_in: bool,
}

/// `ppin -t` for one endpoint: connect, attach (proves the permanent secret), `Ping`, and
/// `Login` (then `Logout`) when a PKCS#11 password is given.
pub fn test_connection(
    endpoint: &Endpoint,
    partition: &str,
    permanent_key: &[u8],
    pkcs11_password: Option<&SecretString>,
    options: &ConnectOptions,
) -> Result<TestReport, Error> {
    let identity = tls::client_identity(permanent_key, &endpoint.client_id)
        .map_err(|e| tls_error("local", e))?;
    let mut conn = Connection::open(endpoint, Some(&identity), partition, options)?;
    let token = random_bytes::<16>()?;
    let attach = Request::AttachSession {
        partition: partition.to_owned(),
        token: token.to_vec(),
    };
    let (context_id, partition_id) = match node_result(conn.exchange(1, &attach)?)? {
        Response::SessionAttached {
            context_id,
            partition_id,
            ..
        } => (context_id, partition_id),
        other => return Err(unexpected(&conn, &other)),
    };
    conn.set_timeout(options.io_timeout)?;
    match node_result(conn.exchange(2, &Request::Ping {})?)? {
        Response::Pong { .. } => {}
        other => return Err(unexpected(&conn, &other)),
    }
    let mut logged_in = false;
    if let Some(pin) = pkcs11_password {
        let login = Request::Login {
            user: UserType::User,
            pin: Secret::from_slice(pin.expose_secret().as_bytes()),
        };
        match node_result(conn.exchange(3, &login)?)? {
            Response::LoggedIn {} => logged_in = true,
            other => return Err(unexpected(&conn, &other)),
        }
        let _ = conn.exchange(4, &Request::Logout {});
    }
    Ok(TestReport {
        node: conn.node().to_owned(),
        context_id,
        partition_id,
        logged_in,
    })
}

fn unexpected(conn: &Connection, r: &Response) -> Error {
    Error::Protocol {
        target: conn.target().to_owned(),
        message: format!("unexpected answer {r:?}"),
    }
}

/// Where the current process id comes from (injectable for tests).
pub type PidSource = Arc<dyn Fn() -> u32 + Send + Sync>;

/// The pool and context of one process. The TLS configurations are per process too: their
/// session caches hold locks that a child must not share with its parent.
#[derive(Debug)]
struct Generation {
    pid: u32,
    token: [u8; 16],
    targets: Targets,
    next_id: AtomicU64,
    state: Mutex<PoolState>,
    /// Held while a link is opened.
    opening: Mutex<()>,
    next: OnceLock<Box<Generation>>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Live multiplexed links (all attached to this process's context).
    links: Vec<Arc<Link>>,
    /// The last successful login, replayed on connections whose context has none.
    login: Option<(UserType, Secret)>,
    /// Sealed copies of this process's session objects (ciphertext the node made for this
    /// process only), by handle: restored into a new context after a failover.
    copies: std::collections::HashMap<i64, SealedObject>,
    /// Connections opened so far (for statistics and tests).
    opened: u64,
}

/// Requests that keep a node core busy for hundreds of microseconds or more: RSA private-key
/// operations and key-pair generation.
fn is_slow(request: &Request) -> bool {
    match request {
        Request::Sign { mechanism, .. } | Request::Decrypt { mechanism, .. } => matches!(
            mechanism,
            Mechanism::RsaPkcs {}
                | Mechanism::RsaX509 {}
                | Mechanism::RsaPkcsHash { .. }
                | Mechanism::RsaPss { .. }
                | Mechanism::RsaPssHash { .. }
                | Mechanism::RsaOaep { .. }
        ),
        Request::GenerateKeyPair { .. } => true,
        _ => false,
    }
}

/// Requests that create or change session objects: sent wrapped in `Sealing`, so that their
/// answer carries sealed copies of those objects. Everything else (the signing path among it)
/// goes as it is.
fn keeps_copies(request: &Request) -> bool {
    match request {
        Request::CreateObject { .. }
        | Request::GenerateKey { .. }
        | Request::GenerateKeyPair { .. }
        | Request::CopyObject { .. }
        | Request::UnwrapKey { .. }
        | Request::DeriveKey { .. }
        | Request::Encapsulate { .. }
        | Request::Decapsulate { .. } => true,
        Request::SetAttributes { object, .. } => *object < 0,
        Request::BlockKey { key } | Request::UnblockKey { key } => *key < 0,
        _ => false,
    }
}

impl Generation {
    fn new(pid: u32, token: [u8; 16], targets: Targets) -> Self {
        Self {
            pid,
            token,
            targets,
            next_id: AtomicU64::new(1),
            state: Mutex::new(PoolState::default()),
            opening: Mutex::new(()),
            next: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connection pool and failover logic of one PKCS#11 slot.
pub struct SlotClient {
    settings: SlotSettings,
    identity: Identity,
    pid_source: PidSource,
    head: Box<Generation>,
}

impl std::fmt::Debug for SlotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotClient")
            .field("slot_id", &self.settings.slot_id)
            .field("partition", &self.settings.partition)
            .finish()
    }
}

impl SlotClient {
    /// A client for `settings`, authenticating with the permanent key (PKCS#8 DER).
    pub fn new(settings: &SlotSettings, permanent_key: &[u8]) -> Result<Self, Error> {
        Self::with_pid_source(settings, permanent_key, Arc::new(std::process::id))
    }

    /// As [`SlotClient::new`], with the process id read from `pid_source` (tests).
    pub fn with_pid_source(
        settings: &SlotSettings,
        permanent_key: &[u8],
        pid_source: PidSource,
    ) -> Result<Self, Error> {
        let label = settings
            .endpoints
            .first()
            .map_or(DEFAULT_CLIENT_ID, |e| e.client_id.as_str());
        let identity =
            tls::client_identity(permanent_key, label).map_err(|e| tls_error("local", e))?;
        let targets = Targets::new(settings, Some(&identity))?;
        let pid = pid_source();
        let head = Box::new(Generation::new(pid, random_bytes()?, targets));
        Ok(Self {
            settings: settings.clone(),
            identity,
            pid_source,
            head,
        })
    }

    /// The client for a configured slot: settings from the configuration, permanent secret
    /// (and service passwords) from the secrets file.
    pub fn from_config(
        config: &PrimusConfig,
        slot: &Slot,
        secrets: &SecretsFile,
    ) -> Result<Self, Error> {
        let settings = SlotSettings::from_config(config, slot, Some(secrets))?;
        let key = secrets
            .user(&slot.user_name)
            .and_then(|u| u.permanent_secret.as_ref())
            .ok_or_else(|| Error::MissingCredential {
                user: slot.user_name.clone(),
                what: "the permanent secret (run 'ppin -a')".into(),
            })?;
        Self::new(&settings, key.expose_secret())
    }

    /// The PKCS#11 slot id.
    pub fn slot_id(&self) -> u32 {
        self.settings.slot_id
    }

    /// Connections this process has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.generation().map_or(0, |g| g.lock().opened)
    }

    /// Live connections in this process's pool (each carries many requests at once).
    pub fn idle_connections(&self) -> usize {
        self.generation().map_or(0, |g| {
            let mut st = g.lock();
            st.links.retain(|l| !l.is_dead());
            st.links.len()
        })
    }

    /// This process's generation; after a fork, a new one (new token, empty pool) without
    /// touching the parent's.
    fn generation(&self) -> Result<&Generation, Error> {
        let pid = (self.pid_source)();
        let mut g: &Generation = &self.head;
        while let Some(n) = g.next.get() {
            g = n;
        }
        if g.pid == pid {
            return Ok(g);
        }
        let token = random_bytes()?;
        let targets = Targets::new(&self.settings, Some(&self.identity))?;
        Ok(g.next
            .get_or_init(|| Box::new(Generation::new(pid, token, targets))))
    }

    /// Sends `request` and returns the node's answer; a node error is [`Error::Node`].
    ///
    /// A broken connection is discarded; an idempotent request is then retried on another
    /// connection (another target if need be) with the same request id; any other request is
    /// retried only if it was certainly not sent.
    pub fn call(&self, request: &Request) -> Result<Response, Error> {
        let generation = self.generation()?;
        let id = generation.next_id.fetch_add(1, Ordering::Relaxed);
        let replay = !matches!(
            request,
            Request::Login { .. } | Request::Logout { .. } | Request::CloseSession { .. }
        );
        let wrapped;
        let sent = if keeps_copies(request) {
            wrapped = Request::Sealing {
                request: Box::new(request.clone()),
            };
            &wrapped
        } else {
            request
        };
        let bytes = sent
            .encode(id)
            .map(Zeroizing::new)
            .map_err(|e| Error::Protocol {
                target: "local".into(),
                message: format!("encoding {}: {e}", request.name()),
            })?;
        let tries = self.settings.options.wait_max_tries.max(1) + 1;
        let mut last = None;
        for _ in 0..tries {
            let link = self.link(generation, replay, is_slow(request))?;
            match link.call(id, sent.code(), &bytes) {
                Ok(response) => {
                    let response = self.keep_copies(generation, response);
                    self.after(generation, request, &response);
                    return node_result(response);
                }
                Err(f) => {
                    if f.written && !request.is_idempotent() {
                        return Err(f.error);
                    }
                    last = Some(f.error);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Network {
            target: "-".into(),
            message: "no attempt made".into(),
        }))
    }

    /// The node this process's requests currently go to (the least busy link's).
    pub fn current_node(&self) -> Option<String> {
        let g = self.generation().ok()?;
        let st = g.lock();
        st.links
            .iter()
            .filter(|l| !l.is_dead())
            .min_by_key(|l| l.in_flight())
            .map(|l| l.node().to_owned())
    }

    /// Keeps the sealed copies a `Sealed` answer carries and returns the answer it wraps.
    fn keep_copies(&self, g: &Generation, response: Response) -> Response {
        match response {
            Response::Sealed { objects, answer } => {
                let mut state = g.lock();
                for o in objects {
                    let newer = state
                        .copies
                        .get(&o.object)
                        .is_none_or(|known| known.version <= o.version);
                    if newer {
                        state.copies.insert(o.object, o);
                    }
                }
                *answer
            }
            other => other,
        }
    }

    /// Records login state, and drops the copies of session objects that are gone.
    fn after(&self, g: &Generation, request: &Request, response: &Response) {
        let mut state = g.lock();
        match (request, response) {
            (Request::Login { user, pin }, Response::LoggedIn {}) => {
                state.login = Some((*user, pin.clone()));
            }
            (Request::Logout {}, Response::LoggedOut {}) => state.login = None,
            (Request::CloseSession {}, Response::SessionClosed {})
            | (Request::InitToken { .. }, Response::TokenInitialized { .. }) => {
                state.login = None;
                state.copies.clear();
            }
            (Request::DestroyObject { object }, Response::ObjectDestroyed {}) => {
                state.copies.remove(object);
            }
            (Request::DestroyObject { object }, Response::Error { rv, .. })
                if *rv == CKR_OBJECT_HANDLE_INVALID =>
            {
                state.copies.remove(object);
            }
            _ => {}
        }
    }

    /// Sealed copies of session objects kept for a failover (for tests and diagnostics).
    pub fn session_object_copies(&self) -> usize {
        self.generation().map_or(0, |g| g.lock().copies.len())
    }

    /// Drops the sealed copy of a session object whose session the application closed, even
    /// if the node could not be told: it must not come back with a later restore.
    pub fn drop_copy(&self, object: i64) {
        if let Ok(g) = self.generation() {
            g.lock().copies.remove(&object);
        }
    }

    /// A link for one request: the least busy live one; a new one when every link already
    /// carries [`PIPELINE_DEPTH`] requests (a slow request: any request, up to [`SLOW_LINKS`]
    /// links) and the pool is below its size.
    fn link(&self, g: &Generation, replay: bool, slow: bool) -> Result<Arc<Link>, Error> {
        let pool = self.settings.options.max_idle.max(1);
        let (depth, max) = if slow {
            (1, pool.min(SLOW_LINKS))
        } else {
            (PIPELINE_DEPTH, pool)
        };
        loop {
            let mut st = g.lock();
            st.links.retain(|l| !l.is_dead());
            let best = st.links.iter().min_by_key(|l| l.in_flight()).cloned();
            let full = st.links.len() >= max;
            drop(st);
            match best {
                Some(l) if l.in_flight() < depth || full => {
                    if l.check_idle(IDLE_CHECK_AFTER) {
                        return Ok(l);
                    }
                    continue;
                }
                _ => {}
            }
            // One opener at a time: the others use what it opens (or, once the pool is full,
            // go round again and take the least busy link).
            let _opening = g.opening.lock().unwrap_or_else(PoisonError::into_inner);
            {
                let st = g.lock();
                let live = || st.links.iter().filter(|l| !l.is_dead());
                if let Some(l) = live().find(|l| l.in_flight() < depth) {
                    return Ok(l.clone());
                }
                if live().count() >= max {
                    continue;
                }
            }
            let conn = g
                .targets
                .with_failover(|p| self.open_attached(p, g, replay))?;
            let o = &self.settings.options;
            let link = Arc::new(conn.into_link(o.io_timeout, o.spin));
            let mut st = g.lock();
            st.opened += 1;
            st.links.push(link.clone());
            return Ok(link);
        }
    }

    fn open_attached(
        &self,
        p: &Prepared,
        g: &Generation,
        replay: bool,
    ) -> Result<Connection, Error> {
        let options = &self.settings.options;
        let mut conn = Connection::open_prepared(p, &self.settings.partition, options)?;
        let attach = Request::AttachSession {
            partition: self.settings.partition.clone(),
            token: g.token.to_vec(),
        };
        let id = g.next_id.fetch_add(1, Ordering::Relaxed);
        let (login, joined) = match node_result(conn.exchange(id, &attach)?)? {
            Response::SessionAttached { login, joined, .. } => (login, joined),
            other => return Err(unexpected(&conn, &other)),
        };
        if !joined {
            self.restore_copies(&mut conn, g)?;
        }
        let remembered = g.lock().login.clone();
        if let (true, None, Some((user, pin))) = (replay, login, remembered) {
            let id = g.next_id.fetch_add(1, Ordering::Relaxed);
            // Another connection of this process may attach to the same fresh context and
            // replay the login first: "already logged in" (as this user) is success here.
            match conn.exchange(id, &Request::Login { user, pin })? {
                Response::LoggedIn {} => {}
                Response::Error { rv, .. } if rv == CKR_USER_ALREADY_LOGGED_IN => {}
                other => {
                    let other = node_result(other)?;
                    return Err(unexpected(&conn, &other));
                }
            }
        }
        conn.set_timeout(options.io_timeout)?;
        Ok(conn)
    }

    /// A new context for this process (the node lost the old one: failover, or it lingered
    /// out): restore the session objects this process holds, under their handles, before the
    /// connection carries anything else. Copies the node refuses (the token was
    /// re-initialised, say) are dropped: those objects are gone, as they would have been
    /// without copies.
    fn restore_copies(&self, conn: &mut Connection, g: &Generation) -> Result<(), Error> {
        let mut objects: Vec<SealedObject> = g.lock().copies.values().cloned().collect();
        if objects.is_empty() {
            return Ok(());
        }
        objects.sort_by_key(|o| o.object);
        let restore = Request::RestoreSessionObjects { objects };
        let id = g.next_id.fetch_add(1, Ordering::Relaxed);
        match conn.exchange(id, &restore)? {
            Response::SessionObjectsRestored { .. } => {}
            Response::Error { .. } => g.lock().copies.clear(),
            other => return Err(unexpected(conn, &other)),
        }
        Ok(())
    }
}

impl Drop for SlotClient {
    fn drop(&mut self) {
        let pid = (self.pid_source)();
        let head = std::mem::replace(
            &mut self.head,
            Box::new(Generation::new(
                pid,
                [0; 16],
                Targets::empty(&self.settings),
            )),
        );
        release(head, pid);
    }
}

/// Drops this process's generations; leaks the others (a parent's connections must not be
/// closed, shut down or even locked by a child).
fn release(mut g: Box<Generation>, pid: u32) {
    let mut next = g.next.take();
    if g.pid == pid {
        drop(g);
    } else {
        std::mem::forget(g);
    }
    while let Some(mut n) = next {
        next = n.next.take();
        if n.pid == pid {
            drop(n);
        } else {
            std::mem::forget(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_proto::{Mechanism, Template};

    #[test]
    fn only_creations_and_session_object_changes_are_sealed() {
        let sign = Request::Sign {
            key: -1,
            mechanism: Mechanism::Ecdsa {},
            data: Secret::from_slice(b"x"),
        };
        assert!(!keeps_copies(&sign), "the signing path is never wrapped");
        assert!(!keeps_copies(&Request::DestroyObject { object: -1 }));
        assert!(keeps_copies(&Request::CreateObject {
            template: Template::new()
        }));
        assert!(keeps_copies(&Request::GenerateKey {
            mechanism: 0x1080,
            template: Template::new()
        }));
        let set = |object| Request::SetAttributes {
            object,
            template: Template::new(),
        };
        assert!(keeps_copies(&set(-4)) && !keeps_copies(&set(4)));
        assert!(keeps_copies(&Request::BlockKey { key: -2 }));
        assert!(!keeps_copies(&Request::UnblockKey { key: 2 }));
    }
}

//! The connection layer against an in-test gateway + node on 127.0.0.1 (real sockets, real TLS).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use secrecy::SecretString;
use tresor_client::config::primus::PrimusConfig;
use tresor_client::connect::{
    register, test_connection, ConnectOptions, Endpoint, SlotClient, SlotSettings,
};
use tresor_client::{Error, VendorCode};
use tresor_proto::gateway::{codes, GatewayMsg, MAX_GATEWAY_FRAME};
use tresor_proto::tls::{self, Identity};
use tresor_proto::{
    read_message, write_message, Envelope, Mechanism, Request, Response, UserType,
    DEFAULT_MAX_FRAME_LEN,
};

struct Pki {
    root_der: Vec<u8>,
    root_pem: String,
    gateway: Arc<ServerConfig>,
    node: Arc<ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test root");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |san: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![san.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Identity {
            chain: vec![cert.der().to_vec(), ca_cert.der().to_vec()],
            key_pkcs8: zeroize::Zeroizing::new(key.serialize_der()),
        }
    };
    Pki {
        root_der: ca_cert.der().to_vec(),
        root_pem: ca_cert.pem(),
        gateway: tls::gateway_server_config(&leaf("127.0.0.1")).unwrap(),
        node: tls::e2e_server_config(&leaf("tresor-node")).unwrap(),
    }
}

#[derive(Clone, Default)]
struct Behavior {
    refuse: Option<u32>,
    stall: bool,
    /// Each connection gets its own context (as after a failover to another node).
    fresh_contexts: bool,
    /// On the first connection, close without answering a request of this kind.
    drop_on: Option<u8>,
    /// Close the first connection after this many requests.
    close_after: Option<usize>,
    /// Answer `Sign` with a signature after this long (one request at a time per connection).
    sign_delay: Option<Duration>,
}

#[derive(Clone, Default)]
struct Seen {
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    hellos: Arc<Mutex<Vec<(String, Vec<u8>, String, String)>>>,
    tokens: Arc<Mutex<Vec<Vec<u8>>>>,
    logins: Arc<AtomicUsize>,
    registered: Arc<Mutex<Vec<Vec<u8>>>>,
    request_ids: Arc<Mutex<Vec<(u8, u64)>>>,
}

struct Fake {
    port: u16,
    seen: Seen,
}

fn spawn(pki: &Pki, behavior: Behavior) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let (gw, node) = (pki.gateway.clone(), pki.node.clone());
    let s = seen.clone();
    let contexts: Arc<Mutex<HashMap<Vec<u8>, Option<UserType>>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let index = s.accepted.fetch_add(1, Ordering::SeqCst);
            let (gw, node, s, b, c) = (
                gw.clone(),
                node.clone(),
                s.clone(),
                behavior.clone(),
                contexts.clone(),
            );
            std::thread::spawn(move || {
                serve(stream, &gw, &node, &s, &b, &c, index);
                s.closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Fake { port, seen }
}

fn serve(
    tcp: TcpStream,
    gw: &Arc<ServerConfig>,
    node: &Arc<ServerConfig>,
    seen: &Seen,
    b: &Behavior,
    shared: &Mutex<HashMap<Vec<u8>, Option<UserType>>>,
    index: usize,
) {
    if b.stall {
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    let mut gws = StreamOwned::new(ServerConnection::new(gw.clone()).unwrap(), tcp);
    let Ok(Some(hello)) = read_message::<GatewayMsg, _>(&mut gws, MAX_GATEWAY_FRAME) else {
        return;
    };
    if let GatewayMsg::Hello {
        service_user,
        password,
        partition,
        client_id,
    } = hello.body
    {
        seen.hellos.lock().unwrap().push((
            service_user,
            password.expose().to_vec(),
            partition,
            client_id,
        ));
    }
    if let Some(code) = b.refuse {
        let refused = GatewayMsg::Refused {
            code,
            message: "no entry".into(),
        };
        let _ = write_message(&mut gws, &Envelope::new(0, refused), MAX_GATEWAY_FRAME);
        return;
    }
    let accepted = GatewayMsg::Accepted {
        node: "node-a".into(),
        session_id: 42,
    };
    write_message(&mut gws, &Envelope::new(0, accepted), MAX_GATEWAY_FRAME).unwrap();
    let mut e2e = StreamOwned::new(ServerConnection::new(node.clone()).unwrap(), gws);
    let mut local: HashMap<Vec<u8>, Option<UserType>> = HashMap::new();
    let mut token = Vec::new();
    let mut served = 0;
    while let Ok(Some(req)) = read_message::<Request, _>(&mut e2e, DEFAULT_MAX_FRAME_LEN) {
        seen.request_ids
            .lock()
            .unwrap()
            .push((req.body.code(), req.request_id));
        if index == 0 && b.drop_on == Some(req.body.code()) {
            return;
        }
        let mut contexts = if b.fresh_contexts {
            None
        } else {
            Some(shared.lock().unwrap())
        };
        let ctx = match contexts.as_mut() {
            Some(c) => &mut **c,
            None => &mut local,
        };
        let answer = match req.body {
            Request::Ping {} => Response::Pong {
                max_frame_len: 1 << 20,
            },
            Request::AttachSession { token: t, .. } => {
                seen.tokens.lock().unwrap().push(t.clone());
                let joined = ctx.contains_key(&t);
                let login = *ctx.entry(t.clone()).or_insert(None);
                token = t;
                Response::SessionAttached {
                    context_id: 1,
                    partition_id: 7,
                    joined,
                    login,
                }
            }
            Request::Login { user, pin } => {
                seen.logins.fetch_add(1, Ordering::SeqCst);
                if pin.expose() == b"1234" {
                    ctx.insert(token.clone(), Some(user));
                    Response::LoggedIn {}
                } else {
                    Response::error(0xA0, "wrong PIN")
                }
            }
            Request::Logout {} => {
                ctx.insert(token.clone(), None);
                Response::LoggedOut {}
            }
            Request::RegisterClient {
                setup_password,
                public_key,
                ..
            } => {
                if setup_password.expose() == b"EXPIRED" {
                    Response::error(0x8000_0037, "setup password expired")
                } else if setup_password.expose() == b"WRONG" {
                    Response::error(0x8000_0106, "setup password invalid")
                } else {
                    seen.registered.lock().unwrap().push(public_key.clone());
                    Response::ClientRegistered {
                        fingerprint: tls::fingerprint(&public_key),
                    }
                }
            }
            Request::Sign { .. } if b.sign_delay.is_some() => {
                drop(contexts.take());
                std::thread::sleep(b.sign_delay.unwrap_or_default());
                Response::Signature {
                    signature: vec![0x5a; 64],
                }
            }
            _ => Response::error(0x54, "not supported"),
        };
        drop(contexts);
        if write_message(&mut e2e, &Envelope::new(req.request_id, answer), 1 << 24).is_err() {
            return;
        }
        served += 1;
        if index == 0 && b.close_after == Some(served) {
            return;
        }
    }
}

fn endpoint(pki: &Pki, hsm: &str, port: u16, priority: u8) -> Endpoint {
    Endpoint {
        hsm: hsm.into(),
        host: "127.0.0.1".into(),
        port,
        priority,
        service_user: "svc".into(),
        service_password: SecretString::from("svc-pw"),
        client_id: "app1".into(),
        root_der: Arc::new(pki.root_der.clone()),
    }
}

fn options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(500),
        io_timeout: Duration::from_secs(5),
        wait_delay: Duration::from_millis(20),
        wait_max_tries: 2,
        max_idle: 4,
        spin: tresor_client::connect::DEFAULT_SPIN,
    }
}

fn settings(endpoints: Vec<Endpoint>) -> SlotSettings {
    SlotSettings {
        slot_id: 2,
        partition: "P1".into(),
        endpoints,
        options: options(),
    }
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn key() -> zeroize::Zeroizing<Vec<u8>> {
    tls::generate_client_key().unwrap()
}

#[test]
fn ping_through_gateway_and_node() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    let r = client.call(&Request::Ping {}).unwrap();
    assert!(matches!(r, Response::Pong { .. }));
    let hellos = fake.seen.hellos.lock().unwrap().clone();
    assert_eq!(
        hellos,
        vec![("svc".into(), b"svc-pw".to_vec(), "P1".into(), "app1".into())]
    );
    assert_eq!(fake.seen.tokens.lock().unwrap()[0].len(), 16);
    assert!(!format!("{client:?}").contains("svc-pw"));
}

#[test]
fn node_errors_carry_the_rv() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    let login = Request::Login {
        user: UserType::User,
        pin: tresor_proto::Secret::from_slice(b"bad"),
    };
    let e = client.call(&login).unwrap_err();
    assert_eq!(e.node_rv(), Some(0xA0));
    assert_eq!(e.vendor_code(), VendorCode(0xA0));
}

#[test]
fn refused_codes_surface_precisely_and_are_not_retried() {
    let pki = pki();
    let fake = spawn(
        &pki,
        Behavior {
            refuse: Some(codes::SERVICE_AUTH_FAILED),
            ..Behavior::default()
        },
    );
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    let e = client.call(&Request::Ping {}).unwrap_err();
    match &e {
        Error::GatewayRefused { code, message, .. } => {
            assert_eq!(*code, codes::SERVICE_AUTH_FAILED);
            assert_eq!(message, "no entry");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.vendor_code(), VendorCode(codes::SERVICE_AUTH_FAILED));
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn transient_refusal_tries_the_next_target() {
    let pki = pki();
    let busy = spawn(
        &pki,
        Behavior {
            refuse: Some(codes::NO_NODE),
            ..Behavior::default()
        },
    );
    let good = spawn(&pki, Behavior::default());
    let s = settings(vec![
        endpoint(&pki, "hsm0", busy.port, 0),
        endpoint(&pki, "hsm1", good.port, 1),
    ]);
    let client = SlotClient::new(&s, &key()).unwrap();
    client.call(&Request::Ping {}).unwrap();
    assert_eq!(busy.seen.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(good.seen.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn failover_to_the_next_priority() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let s = settings(vec![
        endpoint(&pki, "hsm1", fake.port, 5),
        endpoint(&pki, "hsm0", closed_port(), 0),
    ]);
    let client = SlotClient::new(&s, &key()).unwrap();
    assert!(matches!(
        client.call(&Request::Ping {}).unwrap(),
        Response::Pong { .. }
    ));
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn random_start_within_the_best_priority() {
    let pki = pki();
    let a = spawn(&pki, Behavior::default());
    let b = spawn(&pki, Behavior::default());
    let s = settings(vec![
        endpoint(&pki, "hsm0", a.port, 0),
        endpoint(&pki, "hsm1", b.port, 0),
    ]);
    // Every client starts at a random target of the best priority: sixteen clients (one
    // connection each) use both targets (all on one side: probability 2 * 2^-16).
    for _ in 0..16 {
        let client = SlotClient::new(&s, &key()).unwrap();
        client.call(&Request::Ping {}).unwrap();
    }
    let (na, nb) = (
        a.seen.accepted.load(Ordering::SeqCst),
        b.seen.accepted.load(Ordering::SeqCst),
    );
    assert_eq!(na + nb, 16);
    assert!(na >= 1 && nb >= 1, "targets used: {na} and {nb}");
    // Within one client, after a fork-like generation change, connections go on working.
    let pid = Arc::new(AtomicU32::new(10));
    let p = pid.clone();
    let client =
        SlotClient::with_pid_source(&s, &key(), Arc::new(move || p.load(Ordering::SeqCst)))
            .unwrap();
    client.call(&Request::Ping {}).unwrap();
    pid.store(11, Ordering::SeqCst);
    client.call(&Request::Ping {}).unwrap();
    assert_eq!(
        a.seen.accepted.load(Ordering::SeqCst) + b.seen.accepted.load(Ordering::SeqCst),
        18
    );
}

#[test]
fn retry_budget_is_bounded_in_time() {
    let pki = pki();
    let stalled = spawn(
        &pki,
        Behavior {
            stall: true,
            ..Behavior::default()
        },
    );
    let mut s = settings(vec![
        endpoint(&pki, "hsm0", stalled.port, 0),
        endpoint(&pki, "hsm1", closed_port(), 1),
    ]);
    s.options.handshake_timeout = Duration::from_millis(200);
    s.options.wait_max_tries = 3;
    s.options.wait_delay = Duration::from_millis(50);
    let client = SlotClient::new(&s, &key()).unwrap();
    let start = Instant::now();
    let e = client.call(&Request::Ping {}).unwrap_err();
    let elapsed = start.elapsed();
    match &e {
        Error::NoHsmReachable {
            slot_id, attempts, ..
        } => {
            assert_eq!(*slot_id, 2);
            assert_eq!(*attempts, 6);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.vendor_code(), VendorCode::TOKEN_NOT_PRESENT);
    assert!(e.to_string().contains("last error: network failure"), "{e}");
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(stalled.seen.accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn pooled_connection_is_reused() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    for _ in 0..5 {
        client.call(&Request::Ping {}).unwrap();
    }
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(client.connections_opened(), 1);
    assert_eq!(client.idle_connections(), 1);
    // Request ids are unique per process context.
    let ids: Vec<u64> = fake
        .seen
        .request_ids
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.1)
        .collect();
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(ids, dedup);
}

/// Slow requests (RSA private-key operations) from concurrent threads get links of their own,
/// up to two; short ones share a link.
#[test]
fn slow_requests_get_links_of_their_own() {
    let pki = pki();
    let fake = spawn(
        &pki,
        Behavior {
            sign_delay: Some(Duration::from_millis(150)),
            ..Behavior::default()
        },
    );
    let run = |mechanism: Mechanism, threads: usize| {
        let client = Arc::new(
            SlotClient::new(
                &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
                &key(),
            )
            .unwrap(),
        );
        client.call(&Request::Ping {}).unwrap();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (client, mechanism) = (client.clone(), mechanism.clone());
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        let r = client.call(&Request::Sign {
                            key: 5,
                            mechanism: mechanism.clone(),
                            data: tresor_proto::Secret::from_slice(&[1; 32]),
                        });
                        assert!(matches!(r, Ok(Response::Signature { .. })), "{r:?}");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        client.connections_opened()
    };
    let rsa = Mechanism::RsaPkcsHash {
        hash: tresor_proto::HashAlg::Sha256,
    };
    assert_eq!(run(rsa.clone(), 2), 2, "two RSA signers, two links");
    assert_eq!(run(rsa, 6), 2, "no more than two links for slow requests");
    assert_eq!(
        run(Mechanism::Ecdsa {}, 3),
        1,
        "short requests share a link up to its pipeline depth"
    );
}

#[test]
fn broken_connection_is_replaced_and_login_replayed() {
    let pki = pki();
    let fake = spawn(
        &pki,
        Behavior {
            fresh_contexts: true,
            close_after: Some(2),
            ..Behavior::default()
        },
    );
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    let login = Request::Login {
        user: UserType::User,
        pin: tresor_proto::Secret::from_slice(b"1234"),
    };
    client.call(&login).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    client.call(&Request::Ping {}).unwrap();
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(fake.seen.logins.load(Ordering::SeqCst), 2);
    // Both connections named the same context.
    let tokens = fake.seen.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1]);
}

#[test]
fn child_after_fork_leaks_the_parent_pool() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let pid = Arc::new(AtomicU32::new(100));
    let p = pid.clone();
    let client = SlotClient::with_pid_source(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
        Arc::new(move || p.load(Ordering::SeqCst)),
    )
    .unwrap();
    client.call(&Request::Ping {}).unwrap();
    assert_eq!(client.idle_connections(), 1);
    pid.store(200, Ordering::SeqCst); // "fork"
    assert_eq!(client.idle_connections(), 0);
    client.call(&Request::Ping {}).unwrap();
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 2);
    let tokens = fake.seen.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1], "a child uses a new context token");
    drop(client);
    // The child's own connection is closed; the parent's is left alone (leaked).
    let deadline = Instant::now() + Duration::from_secs(3);
    while fake.seen.closed.load(Ordering::SeqCst) < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.seen.closed.load(Ordering::SeqCst), 1);
}

#[test]
fn register_returns_the_registered_key() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let s = settings(vec![
        endpoint(&pki, "hsm0", closed_port(), 0),
        endpoint(&pki, "hsm1", fake.port, 1),
    ]);
    let (key, fingerprint) = register(
        &s,
        &SecretString::from("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"),
        &SecretString::from("1234"),
        "app1",
    )
    .unwrap();
    let spki = tls::spki_of_key(&key).unwrap();
    assert_eq!(fingerprint, tls::fingerprint(&spki));
    assert_eq!(fake.seen.registered.lock().unwrap().clone(), vec![spki]);
    // The new key then opens sessions.
    let client = SlotClient::new(&s, &key).unwrap();
    client.call(&Request::Ping {}).unwrap();
    // And test_connection logs in with the stored password.
    let report = test_connection(
        &s.endpoints[1],
        "P1",
        &key,
        Some(&SecretString::from("1234")),
        &s.options,
    )
    .unwrap();
    assert!(report.logged_in);
    assert_eq!(report.node, "node-a");
}

#[test]
fn register_errors_map_to_setup_codes() {
    let pki = pki();
    let fake = spawn(&pki, Behavior::default());
    let s = settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]);
    let pin = SecretString::from("1234");
    let e = register(&s, &SecretString::from("EXPIRED"), &pin, "x").unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::SETUP_PASSWORD_EXPIRED);
    assert_eq!(e.node_rv(), Some(0x8000_0037));
    let e = register(&s, &SecretString::from("WRONG"), &pin, "x").unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::SETUP_LOGIN_FAILED);
    assert_eq!(e.node_rv(), Some(0x8000_0106));
}

#[test]
fn wrong_root_fails_the_gateway_handshake() {
    let pki = pki();
    let other = self::pki();
    let fake = spawn(&pki, Behavior::default());
    let mut s = settings(vec![endpoint(&other, "hsm0", fake.port, 0)]);
    s.options.wait_max_tries = 1;
    let client = SlotClient::new(&s, &key()).unwrap();
    let e = client.call(&Request::Ping {}).unwrap_err();
    assert!(e.to_string().contains("gateway TLS handshake"), "{e}");
}

#[test]
fn settings_from_config_with_ca_file_override() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, &pki.root_pem).unwrap();
    let text = format!(
        r#"version = "1.0";
primus: {{
  ca_file = "/nonexistent/root.pem";
  wait_delay = 100; wait_max_tries = 3;
  hsms: {{
    hsm0: {{ host = "127.0.0.1"; port = "2310"; ca_file = "{}";
      slots: {{ slot0: {{ user_name = "P1"; proxy_user = "svc"; proxy_password = "pw"; id = 0; }}; }}; }};
    hsm1: {{ host = "127.0.0.2"; port = "2310";
      slots: {{ slot0: {{ user_name = "P1"; proxy_user = "svc"; id = 0; }}; }}; }};
  }};
}};"#,
        root.display()
    );
    let config = PrimusConfig::parse_str(&text, "primus.cfg").unwrap();
    assert_eq!(config.ca_file.as_deref(), Some("/nonexistent/root.pem"));
    let slot = config.slot(0).unwrap();
    assert_eq!(slot.targets[0].ca_file.as_deref(), root.to_str());
    assert_eq!(
        slot.targets[1].ca_file.as_deref(),
        Some("/nonexistent/root.pem")
    );
    // hsm1 inherits the missing primus-level file: a precise CA error.
    let e = SlotSettings::from_config(&config, slot, None).unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::INVALID_CFG);
    assert!(e.to_string().contains("/nonexistent/root.pem"), "{e}");
    // Only hsm0: works, service password from the slot.
    let text = text.replace("/nonexistent/root.pem", root.to_str().unwrap());
    let config = PrimusConfig::parse_str(&text, "primus.cfg").unwrap();
    let slot = config.slot(0).unwrap();
    // hsm1 has no proxy_password and no secrets file: precise error.
    let e = SlotSettings::from_config(&config, slot, None).unwrap_err();
    assert!(matches!(e, Error::MissingCredential { ref user, .. } if user == "svc"));
    let mut secrets = tresor_client::config::secrets::SecretsFile::new();
    secrets.user_mut("svc").proxy_password = Some(SecretString::from("pw2"));
    let s = SlotSettings::from_config(&config, slot, Some(&secrets)).unwrap();
    assert_eq!(s.endpoints.len(), 2);
    assert_eq!(s.options.wait_max_tries, 3);
    assert_eq!(s.options.wait_delay, Duration::from_millis(100));
    assert_eq!(s.endpoints[0].root_der.as_slice(), pki.root_der.as_slice());
}

#[test]
fn sent_requests_are_retried_only_when_idempotent() {
    let pki = pki();
    // Ping (idempotent): the first connection dies with the request; retried with the same id.
    let fake = spawn(
        &pki,
        Behavior {
            drop_on: Some(Request::Ping {}.code()),
            ..Behavior::default()
        },
    );
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    client.call(&Request::Ping {}).unwrap();
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 2);
    let pings: Vec<u64> = fake
        .seen
        .request_ids
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == Request::Ping {}.code())
        .map(|r| r.1)
        .collect();
    assert_eq!(pings.len(), 2);
    assert_eq!(pings[0], pings[1], "a retry keeps the request id");

    // Logout (not idempotent): not retried once sent.
    let fake = spawn(
        &pki,
        Behavior {
            drop_on: Some(Request::Logout {}.code()),
            ..Behavior::default()
        },
    );
    let client = SlotClient::new(
        &settings(vec![endpoint(&pki, "hsm0", fake.port, 0)]),
        &key(),
    )
    .unwrap();
    let e = client.call(&Request::Logout {}).unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::NETWORK_FAILURE);
    assert_eq!(fake.seen.accepted.load(Ordering::SeqCst), 1);
}

//! The HSM node on a real socket: setup-password exchange, sessions with the registered key,
//! shared contexts, request-id deduplication, probes, malformed input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tresor_core::engine::credentials::SetupPolicy;
use tresor_core::{Engine, EngineConfig};
use tresor_proto::gateway::{GatewayMsg, NODE_READY};
use tresor_proto::tls::{
    client_identity, e2e_client_config, generate_client_key, node_server_name, spki_of_key,
    Identity,
};
use tresor_proto::{Envelope, Mechanism, Request, Response, Secret, Template, UserType};
use tresor_server::{Node, NodeConfig};

const CKM_EC_KEY_PAIR_GEN: u64 = 0x1040;
const CKA_TOKEN: u64 = 0x1;
const CKA_SIGN: u64 = 0x108;
const CKA_VERIFY: u64 = 0x10a;
const CKA_EC_PARAMS: u64 = 0x180;
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const CKR_PIN_INCORRECT: u64 = 0xa0;
const CLIENT_NOT_REGISTERED: u64 = 0x8000_0107;
const SETUP_PASSWORD_USED: u64 = 0x8000_0105;

struct Setup {
    engine: Arc<Engine>,
    node: Node,
    root: Vec<u8>,
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        argon2_m_kib: 256,
        argon2_t: 1,
        argon2_p: 1,
        ..EngineConfig::default()
    }
}

async fn setup(allow_direct: bool) -> Setup {
    setup_with(allow_direct, Duration::from_secs(120)).await
}

async fn setup_with(allow_direct: bool, context_linger: Duration) -> Setup {
    let store = Arc::new(tresor_store::SqliteStore::memory().await.unwrap());
    let engine = Engine::open(store, fast_config()).await.unwrap();
    engine.init(1, 1).await.unwrap();
    engine
        .create_partition("P1", b"so-pin-1", Some(b"user-pin-1"))
        .await
        .unwrap();
    let node = Node::start(
        engine.clone(),
        NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            allow_direct,
            handshake_timeout: Duration::from_secs(2),
            context_linger,
            ..NodeConfig::default()
        },
    )
    .await
    .unwrap();
    let root = engine.root_cert_der().unwrap();
    Setup { engine, node, root }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, root: &[u8], id: Option<&Identity>) -> std::io::Result<Tls> {
    let cfg = e2e_client_config(root, id).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(node_server_name().unwrap(), tcp)
        .await
}

async fn call(s: &mut Tls, id: u64, r: Request) -> Response {
    let bytes = Envelope::new(id, r).encode().unwrap();
    s.write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&bytes).await.unwrap();
    s.flush().await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    let env = Envelope::<Response>::decode(&buf).unwrap();
    assert_eq!(env.request_id, id);
    env.body
}

fn rv(r: &Response) -> u64 {
    match r {
        Response::Error { rv, .. } => *rv,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn register(s: &Setup, pin: &[u8]) -> (Response, zeroize::Zeroizing<Vec<u8>>) {
    let key = generate_client_key().unwrap();
    let mut c = connect(s.node.local_addr(), &s.root, None).await.unwrap();
    let pw = s
        .engine
        .issue_setup_password("P1", SetupPolicy::default())
        .await
        .unwrap();
    let r = call(
        &mut c,
        1,
        Request::RegisterClient {
            partition: "P1".into(),
            setup_password: Secret::from_slice(
                secrecy::ExposeSecret::expose_secret(&pw).as_bytes(),
            ),
            pin: Secret::from_slice(pin),
            public_key: spki_of_key(&key).unwrap(),
            label: "test".into(),
        },
    )
    .await;
    (r, key)
}

#[tokio::test]
async fn register_attach_login_sign_and_share_context() {
    let s = setup(true).await;
    let (r, key) = register(&s, b"user-pin-1").await;
    assert!(
        matches!(r, Response::ClientRegistered { ref fingerprint } if fingerprint.len() == 64),
        "{r:?}"
    );
    let id = client_identity(&key, "test").unwrap();
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let token = vec![7u8; 16];
    let r = call(
        &mut c,
        1,
        Request::AttachSession {
            partition: "P1".into(),
            token: token.clone(),
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Response::SessionAttached {
                joined: false,
                login: None,
                ..
            }
        ),
        "{r:?}"
    );
    let r = call(
        &mut c,
        2,
        Request::Login {
            user: UserType::User,
            pin: Secret::from_slice(b"user-pin-1"),
        },
    )
    .await;
    assert_eq!(r, Response::LoggedIn {});
    let r = call(
        &mut c,
        3,
        Request::GenerateKeyPair {
            mechanism: CKM_EC_KEY_PAIR_GEN,
            public_template: Template::new()
                .with_bool(CKA_TOKEN, false)
                .with_bool(CKA_VERIFY, true)
                .with_bytes(CKA_EC_PARAMS, P256),
            private_template: Template::new()
                .with_bool(CKA_TOKEN, false)
                .with_bool(CKA_SIGN, true),
        },
    )
    .await;
    let Response::KeyPairGenerated {
        public_key,
        private_key,
    } = r
    else {
        panic!("{r:?}")
    };
    // A second connection of the same process joins the context: logged in, same session objects.
    let mut c2 = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let r = call(
        &mut c2,
        1,
        Request::AttachSession {
            partition: "P1".into(),
            token,
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Response::SessionAttached {
                joined: true,
                login: Some(UserType::User),
                ..
            }
        ),
        "{r:?}"
    );
    let data = Secret::from_slice(b"hello through the node");
    let r = call(
        &mut c2,
        2,
        Request::Sign {
            key: private_key,
            mechanism: Mechanism::EcdsaHash {
                hash: tresor_proto::HashAlg::Sha256,
            },
            data: data.clone(),
        },
    )
    .await;
    let Response::Signature { signature } = r else {
        panic!("{r:?}")
    };
    let r = call(
        &mut c,
        4,
        Request::Verify {
            key: public_key,
            mechanism: Mechanism::EcdsaHash {
                hash: tresor_proto::HashAlg::Sha256,
            },
            data,
            signature,
        },
    )
    .await;
    assert_eq!(r, Response::Verified {});
    // A retried non-idempotent request (same id) is answered from the first run.
    let gen = session_p256_pair();
    let a = call(&mut c, 99, gen.clone()).await;
    let b = call(&mut c2, 99, gen).await;
    assert_eq!(a, b);
    // Another token is another context: not logged in.
    let mut c3 = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let r = call(
        &mut c3,
        1,
        Request::AttachSession {
            partition: "P1".into(),
            token: vec![8u8; 16],
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Response::SessionAttached {
                joined: false,
                login: None,
                ..
            }
        ),
        "{r:?}"
    );
    let r = call(
        &mut c3,
        2,
        Request::Sign {
            key: private_key,
            mechanism: Mechanism::Ecdsa {},
            data: Secret::from_slice(&[0u8; 32]),
        },
    )
    .await;
    assert!(matches!(r, Response::Error { .. }), "{r:?}");
}

#[tokio::test]
async fn unregistered_key_wrong_pin_and_reuse_are_refused() {
    let s = setup(true).await;
    // Wrong PKCS#11 password at the exchange.
    let (r, _) = register(&s, b"wrong-pin").await;
    assert_eq!(rv(&r), CKR_PIN_INCORRECT);
    // A key nobody registered.
    let stranger = client_identity(&generate_client_key().unwrap(), "x").unwrap();
    let mut c = connect(s.node.local_addr(), &s.root, Some(&stranger))
        .await
        .unwrap();
    let r = call(
        &mut c,
        1,
        Request::OpenSession {
            partition: "P1".into(),
        },
    )
    .await;
    assert_eq!(rv(&r), CLIENT_NOT_REGISTERED);
    // No certificate at all.
    let mut c = connect(s.node.local_addr(), &s.root, None).await.unwrap();
    let r = call(
        &mut c,
        1,
        Request::AttachSession {
            partition: "P1".into(),
            token: vec![1; 16],
        },
    )
    .await;
    assert_eq!(rv(&r), CLIENT_NOT_REGISTERED);
    // A used setup password is dead.
    let key = generate_client_key().unwrap();
    let pw = s
        .engine
        .issue_setup_password("P1", SetupPolicy::default())
        .await
        .unwrap();
    let pw = secrecy::ExposeSecret::expose_secret(&pw)
        .as_bytes()
        .to_vec();
    for (i, want) in [(1u64, None), (2, Some(SETUP_PASSWORD_USED))] {
        let mut c = connect(s.node.local_addr(), &s.root, None).await.unwrap();
        let r = call(
            &mut c,
            i,
            Request::RegisterClient {
                partition: "P1".into(),
                setup_password: Secret::from_slice(&pw),
                pin: Secret::from_slice(b"user-pin-1"),
                public_key: spki_of_key(&key).unwrap(),
                label: "t".into(),
            },
        )
        .await;
        match want {
            None => assert!(matches!(r, Response::ClientRegistered { .. }), "{r:?}"),
            Some(code) => assert_eq!(rv(&r), code),
        }
    }
}

#[tokio::test]
async fn probes_preambles_and_malformed_input() {
    let s = setup(false).await;
    let addr = s.node.local_addr();
    // Probe.
    let mut t = TcpStream::connect(addr).await.unwrap();
    let b = Envelope::new(5, GatewayMsg::Probe {}).encode().unwrap();
    t.write_all(&(b.len() as u32).to_be_bytes()).await.unwrap();
    t.write_all(&b).await.unwrap();
    let mut len = [0u8; 4];
    t.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    t.read_exact(&mut buf).await.unwrap();
    let r = Envelope::<GatewayMsg>::decode(&buf).unwrap().body;
    assert!(
        matches!(
            r,
            GatewayMsg::ProbeReply {
                status: NODE_READY,
                ..
            }
        ),
        "{r:?}"
    );
    // Direct TLS is refused when not allowed.
    assert!(connect(addr, &s.root, None).await.is_err());
    // Oversized preamble, garbage, a stalled half frame: each is dropped.
    let mut big = TcpStream::connect(addr).await.unwrap();
    big.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe])
        .await
        .unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0, 0, 0, 50, 1, 0x43]).await.unwrap();
    let mut one = [0u8; 1];
    assert_eq!(big.read(&mut one).await.unwrap_or(0), 0);
    assert_eq!(junk.read(&mut one).await.unwrap_or(0), 0);
    // The half frame is cut at the handshake timeout (2 s here).
    let r = tokio::time::timeout(Duration::from_secs(5), half.read(&mut one)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    // A preamble followed by a proper session still works.
    let (r, key) = {
        // register through a preamble'd connection
        let key = generate_client_key().unwrap();
        let pw = s
            .engine
            .issue_setup_password("P1", SetupPolicy::default())
            .await
            .unwrap();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let pre = Envelope::new(
            0,
            GatewayMsg::Preamble {
                service: "svc".into(),
                service_user: "svc-user".into(),
                partition: "P1".into(),
                client_id: "app".into(),
                source: "127.0.0.1:1".into(),
                session_id: 1,
            },
        )
        .encode()
        .unwrap();
        tcp.write_all(&(pre.len() as u32).to_be_bytes())
            .await
            .unwrap();
        tcp.write_all(&pre).await.unwrap();
        let cfg = e2e_client_config(&s.root, None).unwrap();
        let mut c = tokio_rustls::TlsConnector::from(cfg)
            .connect(node_server_name().unwrap(), tcp)
            .await
            .unwrap();
        let r = call(
            &mut c,
            1,
            Request::RegisterClient {
                partition: "P1".into(),
                setup_password: Secret::from_slice(
                    secrecy::ExposeSecret::expose_secret(&pw).as_bytes(),
                ),
                pin: Secret::from_slice(b"user-pin-1"),
                public_key: spki_of_key(&key).unwrap(),
                label: "t".into(),
            },
        )
        .await;
        (r, key)
    };
    assert!(matches!(r, Response::ClientRegistered { .. }), "{r:?}");
    let _ = key;
    // Inside a session: a malformed request gets an error answer and the session goes on.
    let metrics = s.node.render_metrics();
    assert!(metrics.contains("tresor_node_probes_total 1"), "{metrics}");
    assert!(
        metrics.contains("tresor_node_connections_refused_total"),
        "{metrics}"
    );
    for name in [
        "tresor_node_store_syncs_total",
        "tresor_node_store_sync_failures_total 0",
        "tresor_node_partitions_refreshed_total",
        "tresor_node_partitions_unloaded_total 0",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }
}

#[tokio::test]
async fn malformed_request_inside_a_session_is_answered() {
    let s = setup(true).await;
    let (_, key) = register(&s, b"user-pin-1").await;
    let id = client_identity(&key, "t").unwrap();
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let r = call(
        &mut c,
        1,
        Request::OpenSession {
            partition: "P1".into(),
        },
    )
    .await;
    assert!(matches!(r, Response::SessionOpened { .. }), "{r:?}");
    // A whole frame with a bad kind byte.
    c.write_all(&[0, 0, 0, 10, 1, 0x7e, 0, 0, 0, 0, 0, 0, 0, 9])
        .await
        .unwrap();
    let mut len = [0u8; 4];
    c.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    c.read_exact(&mut buf).await.unwrap();
    assert!(matches!(
        Envelope::<Response>::decode(&buf).unwrap().body,
        Response::Error { .. }
    ));
    // Still serving.
    let r = call(&mut c, 2, Request::Random { len: 16 }).await;
    assert!(
        matches!(r, Response::Random { ref bytes } if bytes.len() == 16),
        "{r:?}"
    );
}

/// Generate a P-256 key pair of session objects (the private key can sign).
fn session_p256_pair() -> Request {
    Request::GenerateKeyPair {
        mechanism: CKM_EC_KEY_PAIR_GEN,
        public_template: Template::new()
            .with_bool(CKA_TOKEN, false)
            .with_bytes(CKA_EC_PARAMS, P256),
        private_template: Template::new()
            .with_bool(CKA_TOKEN, false)
            .with_bool(CKA_SIGN, true),
    }
}

async fn send_only(s: &mut Tls, id: u64, r: Request) {
    let bytes = Envelope::new(id, r).encode().unwrap();
    s.write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&bytes).await.unwrap();
}

async fn read_answer(s: &mut Tls) -> Envelope<Response> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    Envelope::<Response>::decode(&buf).unwrap()
}

/// Requests pipelined on one connection are all answered, by id; short requests (measured as
/// such, so run on the connection's task) are not held up by a slow one running in its own task.
#[tokio::test]
async fn pipelined_short_requests_overtake_a_slow_one() {
    const CKM_RSA_PKCS_KEY_PAIR_GEN: u64 = 0x0;
    const CKA_MODULUS_BITS: u64 = 0x121;
    let s = setup(true).await;
    let (_, key) = register(&s, b"user-pin-1").await;
    let id = client_identity(&key, "test").unwrap();
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let attach = Request::AttachSession {
        partition: "P1".into(),
        token: vec![9u8; 16],
    };
    assert!(matches!(
        call(&mut c, 1, attach).await,
        Response::SessionAttached { .. }
    ));
    let login = Request::Login {
        user: UserType::User,
        pin: Secret::from_slice(b"user-pin-1"),
    };
    assert_eq!(call(&mut c, 2, login).await, Response::LoggedIn {});
    let pair = session_p256_pair();
    let Response::KeyPairGenerated { private_key, .. } = call(&mut c, 3, pair).await else {
        panic!("no key pair")
    };
    let sign = || Request::Sign {
        key: private_key,
        mechanism: Mechanism::Ecdsa {},
        data: Secret::from_slice(&[5u8; 32]),
    };
    // Measured short from here on.
    for i in 0..8 {
        assert!(matches!(
            call(&mut c, 10 + i, sign()).await,
            Response::Signature { .. }
        ));
    }
    let rsa = Request::GenerateKeyPair {
        mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
        public_template: Template::new()
            .with_bool(CKA_TOKEN, false)
            .with_ulong(CKA_MODULUS_BITS, 2048),
        private_template: Template::new()
            .with_bool(CKA_TOKEN, false)
            .with_bool(CKA_SIGN, true),
    };
    send_only(&mut c, 100, rsa).await;
    for i in 0..32 {
        send_only(&mut c, 101 + i, sign()).await;
    }
    c.flush().await.unwrap();
    let mut order = Vec::new();
    for _ in 0..33 {
        let env = read_answer(&mut c).await;
        match env.request_id {
            100 => assert!(
                matches!(env.body, Response::KeyPairGenerated { .. }),
                "{:?}",
                env.body
            ),
            101..=132 => assert!(
                matches!(env.body, Response::Signature { ref signature } if signature.len() == 64),
                "{:?}",
                env.body
            ),
            other => panic!("answer to unknown request {other}"),
        }
        order.push(env.request_id);
    }
    let mut ids = order.clone();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (100..=132).collect::<Vec<_>>(),
        "each request answered once"
    );
    let slow_at = order.iter().position(|i| *i == 100).unwrap();
    assert!(
        slow_at > 0,
        "the signatures waited for the RSA key generation: {order:?}"
    );
}

#[tokio::test]
async fn init_token_needs_a_session_and_the_so_pin() {
    let s = setup(true).await;
    let (_, key) = register(&s, b"user-pin-1").await;
    let id = client_identity(&key, "test").unwrap();
    let mut label = vec![b' '; 32];
    label[..2].copy_from_slice(b"P1");
    let init = |pin: &[u8]| Request::InitToken {
        so_pin: Secret::from_slice(pin),
        label: label.clone(),
    };
    // Not before a session is open on the channel.
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let r = call(&mut c, 1, init(b"so-pin-1")).await;
    assert_eq!(rv(&r), 0x91, "CKR_OPERATION_NOT_INITIALIZED");
    // On an attached context: the user's PIN is not the SO's, a wrong label changes nothing.
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    let attach = Request::AttachSession {
        partition: "P1".into(),
        token: vec![9u8; 16],
    };
    assert!(matches!(
        call(&mut c, 1, attach).await,
        Response::SessionAttached { .. }
    ));
    assert_eq!(
        rv(&call(&mut c, 2, init(b"user-pin-1")).await),
        CKR_PIN_INCORRECT
    );
    let wrong_label = Request::InitToken {
        so_pin: Secret::from_slice(b"so-pin-1"),
        label: b"P2".to_vec(),
    };
    assert_eq!(
        rv(&call(&mut c, 3, wrong_label).await),
        0x07,
        "CKR_ARGUMENTS_BAD"
    );
    let r = call(&mut c, 4, Request::TokenStatus {}).await;
    assert_eq!(
        r,
        Response::TokenStatus {
            user_pin_initialized: true,
            so_failures: 1,
            user_failures: 0,
            max_failures: 10,
        }
    );
    // A token key made by the user, then the SO re-initialises the token.
    let ctx = s.engine.open_context("P1").await.unwrap();
    ctx.login(tresor_core::UserType::User, b"user-pin-1")
        .await
        .unwrap();
    let t = tresor_core::template::Template::new()
        .with_bool(0x1, true)
        .unwrap()
        .with_ulong(0x161, 32)
        .unwrap();
    ctx.generate_key(0x1080, &t).await.unwrap();
    drop(ctx);
    let r = call(&mut c, 5, init(b"so-pin-1")).await;
    assert_eq!(
        r,
        Response::TokenInitialized {
            objects_destroyed: 1
        }
    );
    // The same request id again (a retry after a broken connection) is not run twice.
    assert_eq!(call(&mut c, 5, init(b"so-pin-1")).await, r);
    let r = call(&mut c, 6, Request::TokenStatus {}).await;
    assert!(matches!(
        r,
        Response::TokenStatus {
            user_pin_initialized: false,
            so_failures: 0,
            ..
        }
    ));
    let login = Request::Login {
        user: UserType::User,
        pin: Secret::from_slice(b"user-pin-1"),
    };
    assert_eq!(
        rv(&call(&mut c, 7, login).await),
        0x102,
        "CKR_USER_PIN_NOT_INITIALIZED"
    );
}

/// Answers a `Sealing` request must give: the sealed copies and the wrapped answer.
fn unseal(r: Response) -> (Vec<tresor_proto::SealedObject>, Response) {
    match r {
        Response::Sealed { objects, answer } => (objects, *answer),
        other => panic!("expected a Sealed answer, got {other:?}"),
    }
}

#[tokio::test]
async fn sealed_session_objects_come_back_into_a_new_context() {
    let s = setup_with(true, Duration::from_millis(200)).await;
    let (_, key) = register(&s, b"user-pin-1").await;
    let id = client_identity(&key, "test").unwrap();
    let attach = |token: u8| Request::AttachSession {
        partition: "P1".into(),
        token: vec![token; 16],
    };
    let login = Request::Login {
        user: UserType::User,
        pin: Secret::from_slice(b"user-pin-1"),
    };
    let sign = |key| Request::Sign {
        key,
        mechanism: Mechanism::EcdsaHash {
            hash: tresor_proto::HashAlg::Sha256,
        },
        data: Secret::from_slice(b"data"),
    };
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    assert!(matches!(
        call(&mut c, 1, attach(1)).await,
        Response::SessionAttached { joined: false, .. }
    ));
    assert_eq!(call(&mut c, 2, login.clone()).await, Response::LoggedIn {});
    let (copies, answer) = unseal(
        call(
            &mut c,
            3,
            Request::Sealing {
                request: Box::new(session_p256_pair()),
            },
        )
        .await,
    );
    let Response::KeyPairGenerated {
        public_key,
        private_key,
    } = answer
    else {
        panic!("{answer:?}")
    };
    let ids: Vec<i64> = copies.iter().map(|c| c.object).collect();
    assert_eq!(ids, vec![public_key, private_key]);
    // A change makes a new copy (version 2); a failed wrapped request answers its error.
    let relabel = Request::SetAttributes {
        object: private_key,
        template: Template::new().with_bytes(0x3, b"renamed"),
    };
    let (v2, answer) = unseal(
        call(
            &mut c,
            4,
            Request::Sealing {
                request: Box::new(relabel),
            },
        )
        .await,
    );
    assert_eq!(answer, Response::AttributesSet {});
    assert_eq!((v2.len(), v2[0].object, v2[0].version), (1, private_key, 2));
    let r = call(
        &mut c,
        5,
        Request::Sealing {
            request: Box::new(Request::DestroyObject { object: -999_999 }),
        },
    )
    .await;
    assert_eq!(rv(&r), 0x82, "CKR_OBJECT_HANDLE_INVALID, unwrapped");
    assert!(matches!(
        call(&mut c, 6, Request::DestroyObject { object: public_key }).await,
        Response::ObjectDestroyed {}
    ));
    // Never into a live context.
    let restore =
        |objects: Vec<tresor_proto::SealedObject>| Request::RestoreSessionObjects { objects };
    assert_eq!(rv(&call(&mut c, 7, restore(v2.clone())).await), 0x1b);
    // The application's connections end; the node drops the context after its linger time.
    drop(c);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut c = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    assert!(matches!(
        call(&mut c, 1, attach(1)).await,
        Response::SessionAttached {
            joined: false,
            login: None,
            ..
        }
    ));
    // The destroyed public key, or the private key before its change: refused.
    let mut with_destroyed = copies.clone();
    with_destroyed[1] = v2[0].clone();
    assert_eq!(rv(&call(&mut c, 2, restore(with_destroyed)).await), 0x1b);
    assert_eq!(
        rv(&call(&mut c, 3, restore(copies[1..].to_vec())).await),
        0x1b
    );
    // Another application token: the copy does not open.
    let mut other = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    call(&mut other, 1, attach(2)).await;
    assert_eq!(
        rv(&call(&mut other, 2, restore(v2.clone())).await),
        0x8000_0102,
        "TRESOR_INTEGRITY"
    );
    // The current state comes back under the same handle.
    assert_eq!(
        call(&mut c, 4, restore(v2.clone())).await,
        Response::SessionObjectsRestored { restored: 1 }
    );
    assert_eq!(call(&mut c, 5, login).await, Response::LoggedIn {});
    assert!(matches!(
        call(&mut c, 6, sign(private_key)).await,
        Response::Signature { signature } if signature.len() == 64
    ));
    // A private context (OpenSession) keeps no copies, and the wrapped request does not run.
    let mut p = connect(s.node.local_addr(), &s.root, Some(&id))
        .await
        .unwrap();
    call(
        &mut p,
        1,
        Request::OpenSession {
            partition: "P1".into(),
        },
    )
    .await;
    call(
        &mut p,
        2,
        Request::Login {
            user: UserType::User,
            pin: Secret::from_slice(b"user-pin-1"),
        },
    )
    .await;
    let r = call(
        &mut p,
        3,
        Request::Sealing {
            request: Box::new(session_p256_pair()),
        },
    )
    .await;
    assert_eq!(rv(&r), 0x54, "CKR_FUNCTION_NOT_SUPPORTED");
    let r = call(
        &mut p,
        4,
        Request::FindObjects {
            template: Template::new(),
            max: 100,
        },
    )
    .await;
    assert_eq!(r, Response::Objects { objects: vec![] });
}

//! Key names made unique by the engine: two nodes (two engines on one store), each reached
//! through its own in-process transport, create keys of one name at the same time with
//! `CKA_TRESOR_UNIQUE_LABEL`; exactly one creation succeeds, the others get
//! `TRESOR_ALREADY_EXISTS`. Without the option (as PKCS#11 sends) duplicates stay allowed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tresor_client::transport::AsyncTransport;
use tresor_core::{Engine, EngineConfig};
use tresor_proto::{Request, Response, Secret, Template, UserType};
use tresor_server::local::LocalTransport;
use tresor_store::{SqliteStore, Store};

const CKM_EC_KEY_PAIR_GEN: u64 = 0x1040;
const CKA_CLASS: u64 = 0x0;
const CKA_TOKEN: u64 = 0x1;
const CKA_LABEL: u64 = 0x3;
const CKA_EC_PARAMS: u64 = 0x180;
const CKO_PRIVATE_KEY: u64 = 3;
const CKA_TRESOR_UNIQUE_LABEL: u64 = 0x8000_0000 | 0x5452_0000 | 0x21;
const ALREADY_EXISTS: u64 = 0x8000_0103;
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const PIN: &[u8] = b"user-pin-1234";

fn config() -> EngineConfig {
    EngineConfig {
        argon2_m_kib: 256,
        argon2_t: 1,
        argon2_p: 1,
        ..EngineConfig::default()
    }
}

fn pair(label: &str, unique: bool) -> Request {
    let mut private = Template::new()
        .with_bool(CKA_TOKEN, true)
        .with_bytes(CKA_LABEL, label.as_bytes());
    if unique {
        // Every key class and certificates.
        private = private.with_ulong(CKA_TRESOR_UNIQUE_LABEL, 0b11110);
    }
    Request::GenerateKeyPair {
        mechanism: CKM_EC_KEY_PAIR_GEN,
        public_template: Template::new()
            .with_bool(CKA_TOKEN, true)
            .with_bytes(CKA_LABEL, label.as_bytes())
            .with_bytes(CKA_EC_PARAMS, P256),
        private_template: private,
    }
}

async fn count_private(t: &LocalTransport, label: &str) -> usize {
    match t
        .call_async(&Request::FindObjects {
            template: Template::new()
                .with_ulong(CKA_CLASS, CKO_PRIVATE_KEY)
                .with_bytes(CKA_LABEL, label.as_bytes()),
            max: 100,
        })
        .await
        .unwrap()
    {
        Response::Objects { objects } => objects.len(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_make_one_key_of_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store_a: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    let a = Engine::open(store_a, config()).await.unwrap();
    let shares = a.init(1, 1).await.unwrap();
    a.create_partition("p1", b"so-pin-1234", Some(PIN))
        .await
        .unwrap();
    let store_b: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    let b = Engine::open(store_b, config()).await.unwrap();
    b.unseal(&shares).await.unwrap();
    let mut transports = Vec::new();
    for e in [&a, &b, &a, &b] {
        let t = LocalTransport::open(e, "p1").await.unwrap();
        t.call_async(&Request::Login {
            user: UserType::User,
            pin: Secret::from_slice(PIN),
        })
        .await
        .unwrap();
        transports.push(Arc::new(t));
    }
    for round in 0..3 {
        let label = format!("race-{round}");
        let mut tasks = Vec::new();
        for t in &transports {
            for _ in 0..3 {
                let t = t.clone();
                let req = pair(&label, true);
                tasks.push(tokio::spawn(async move { t.call_async(&req).await }));
            }
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(Response::KeyPairGenerated { .. }) => ok += 1,
                Err(tresor_client::Error::Node { rv, .. }) => {
                    assert_eq!(rv, ALREADY_EXISTS, "round {round}")
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: one key of the name");
        assert_eq!(count_private(&transports[1], &label).await, 1);
        assert_eq!(count_private(&transports[0], &label).await, 1);
    }
    // Without the option, a second key of a name is allowed (PKCS#11 labels).
    for t in &transports[..2] {
        match t.call_async(&pair("dup", false)).await.unwrap() {
            Response::KeyPairGenerated { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(count_private(&transports[0], "dup").await, 2);
    // ... and then a unique one of that name is refused.
    assert!(matches!(
        transports[1].call_async(&pair("dup", true)).await,
        Err(tresor_client::Error::Node {
            rv: ALREADY_EXISTS,
            ..
        })
    ));
}

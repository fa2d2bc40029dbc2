//! Sealed copies of session objects: made on one engine, restored on another (a failover)
//! under the same handles, and every way a copy must not be used: another application or
//! partition, a changed blob or version, a live context, an object destroyed or changed since
//! (on the node that remembers), a re-initialised token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::engine::token::token_label;
use tresor_core::template::Template;
use tresor_core::{Application, Context, Engine, Rv, SealedObject, UserType};
use tresor_store::{SqliteStore, Store};

const ECDSA: Mechanism = Mechanism::EcdsaHash(HashAlg::Sha256);

/// Two client keys (SubjectPublicKeyInfo DER), made once per test process.
fn client_key(which: usize) -> &'static [u8] {
    static KEYS: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    &KEYS.get_or_init(|| {
        std::array::from_fn(|_| {
            tresor_core::attest::new_p256_key()
                .unwrap()
                .public_key_to_der()
                .unwrap()
        })
    })[which]
}

fn fingerprint(which: usize) -> String {
    hex::encode(openssl::sha::sha256(client_key(which)))
}

/// Register both client keys for `partition`: an application context belongs to a registered
/// client key.
async fn register_clients(engine: &Arc<Engine>, partition: &str) {
    for which in 0..2 {
        let pw = engine
            .issue_setup_password(partition, tresor_core::SetupPolicy::default())
            .await
            .unwrap();
        engine
            .register_client(
                partition,
                secrecy::ExposeSecret::expose_secret(&pw).as_bytes(),
                USER_PIN,
                client_key(which),
                "app",
            )
            .await
            .unwrap();
    }
}

/// The first client key's application with `token`.
fn app(token: u8) -> Application {
    Application {
        fingerprint: fingerprint(0),
        token: vec![token; 16],
    }
}

async fn second_engine(f: &Fixture) -> Arc<Engine> {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&f.dir.path().join("t.db")).await.unwrap());
    let b = Engine::open(store, test_config()).await.unwrap();
    b.unseal(&f.shares[..2]).await.unwrap();
    b
}

async fn user_ctx(engine: &Arc<Engine>, a: Application) -> Context {
    let ctx = engine.open_application_context("p1", a).await.unwrap();
    ctx.login(UserType::User, USER_PIN).await.unwrap();
    ctx
}

/// A session P-256 pair for signing.
async fn session_pair(ctx: &Context) -> (i64, i64) {
    let public = Template::new()
        .with_bool(CKA_TOKEN, false)
        .and_then(|t| t.with_bytes(CKA_EC_PARAMS, &p256_params()))
        .unwrap();
    let private = Template::new()
        .with_bool(CKA_TOKEN, false)
        .and_then(|t| t.with_bool(CKA_SIGN, true))
        .unwrap();
    ctx.generate_key_pair(CKM_EC_KEY_PAIR_GEN, &public, &private)
        .await
        .unwrap()
}

async fn session_aes(ctx: &Context) -> i64 {
    ctx.generate_key(CKM_AES_KEY_GEN, &aes_template("s", false))
        .await
        .unwrap()
}

fn seal_all(ctx: &Context, ids: &[i64]) -> Vec<SealedObject> {
    ids.iter()
        .map(|i| ctx.seal_session_object(*i).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_restore_on_another_engine_under_the_same_handles() {
    let f = fixture().await;
    register_clients(&f.engine, "p1").await;
    let a = user_ctx(&f.engine, app(1)).await;
    let (public, private) = session_pair(&a).await;
    let aes = session_aes(&a).await;
    let copies = seal_all(&a, &[public, private, aes]);
    assert!(copies.iter().all(|c| c.version == 1 && c.object < 0));
    // No key material in the clear in a copy.
    let ct = a
        .encrypt(aes, &Mechanism::AesEcb, &[7u8; 16])
        .await
        .unwrap();

    // Node A is lost; the application comes back on node B.
    let b = second_engine(&f).await;
    let fresh = b.open_application_context("p1", app(1)).await.unwrap();
    // Restored before the login (private objects wait hidden, as PKCS#11 keeps them).
    assert_eq!(fresh.restore_session_objects(&copies).await.unwrap(), 3);
    fresh.login(UserType::User, USER_PIN).await.unwrap();
    let sig = fresh
        .sign(private, &ECDSA, b"after failover")
        .await
        .unwrap();
    fresh
        .verify(public, &ECDSA, b"after failover", &sig)
        .await
        .unwrap();
    assert_eq!(
        fresh
            .encrypt(aes, &Mechanism::AesEcb, &[7u8; 16])
            .await
            .unwrap(),
        ct,
        "the same AES key"
    );
    // New session objects here never take a restored handle.
    let next = session_aes(&fresh).await;
    assert!(next < public.min(private).min(aes), "{next}");
    // A second restore into the same (now used) context is refused.
    assert_eq!(
        fresh
            .restore_session_objects(&copies)
            .await
            .unwrap_err()
            .rv(),
        Rv::ActionProhibited
    );
    // Audited as session-object events.
    b.flush_audit().await.unwrap();
    let rows = f
        .store
        .audit_range(a.partition_id(), 1, 10_000)
        .await
        .unwrap();
    assert!(rows.iter().any(|r| r.action == "object.restore"));
}

#[tokio::test]
async fn copies_open_only_for_their_application_partition_and_version() {
    let f = fixture().await;
    register_clients(&f.engine, "p1").await;
    f.engine
        .create_partition("p2", SO_PIN, Some(USER_PIN))
        .await
        .unwrap();
    register_clients(&f.engine, "p2").await;
    let a = user_ctx(&f.engine, app(1)).await;
    let aes = session_aes(&a).await;
    let copy = a.seal_session_object(aes).unwrap();
    let b = second_engine(&f).await;
    let integrity = |r: tresor_core::Result<usize>| r.unwrap_err().rv();
    let fresh = |a: Application| {
        let b = b.clone();
        async move { b.open_application_context("p1", a).await.unwrap() }
    };
    // Another application token, another client key.
    assert_eq!(
        integrity(
            fresh(app(2))
                .await
                .restore_session_objects(std::slice::from_ref(&copy))
                .await
        ),
        Rv::Vendor(tresor_core::error::vendor::INTEGRITY)
    );
    let other_key = Application {
        fingerprint: fingerprint(1),
        token: vec![1; 16],
    };
    assert_eq!(
        integrity(
            fresh(other_key)
                .await
                .restore_session_objects(std::slice::from_ref(&copy))
                .await
        ),
        Rv::Vendor(tresor_core::error::vendor::INTEGRITY)
    );
    // Another partition.
    let p2 = b.open_application_context("p2", app(1)).await.unwrap();
    assert_eq!(
        integrity(
            p2.restore_session_objects(std::slice::from_ref(&copy))
                .await
        ),
        Rv::Vendor(tresor_core::error::vendor::INTEGRITY)
    );
    // A changed byte, another version, another handle, a token-object handle.
    let mut flipped = copy.clone();
    let n = flipped.sealed.len();
    flipped.sealed[n / 2] ^= 1;
    let mut older = copy.clone();
    older.version = 2;
    let mut moved = copy.clone();
    moved.object -= 1;
    for bad in [flipped, older, moved] {
        assert_eq!(
            integrity(fresh(app(1)).await.restore_session_objects(&[bad]).await),
            Rv::Vendor(tresor_core::error::vendor::INTEGRITY)
        );
    }
    let mut positive = copy.clone();
    positive.object = 5;
    assert_eq!(
        fresh(app(1))
            .await
            .restore_session_objects(&[positive])
            .await
            .unwrap_err()
            .rv(),
        Rv::ArgumentsBad
    );
    // All or nothing: one bad copy among good ones restores nothing.
    let good_ctx = fresh(app(1)).await;
    let mut bad = copy.clone();
    bad.sealed[20] ^= 1;
    let aes2 = session_aes(&a).await;
    let copy2 = a.seal_session_object(aes2).unwrap();
    assert!(good_ctx
        .restore_session_objects(&[copy2.clone(), bad])
        .await
        .is_err());
    good_ctx.login(UserType::User, USER_PIN).await.unwrap();
    assert_eq!(
        good_ctx
            .get_attributes(aes2, &[CKA_CLASS])
            .await
            .unwrap_err()
            .rv(),
        Rv::ObjectHandleInvalid
    );
    // ... and the same context can still take the good set.
    assert_eq!(
        good_ctx
            .restore_session_objects(&[copy.clone(), copy2])
            .await
            .unwrap(),
        2
    );
    // A context without an application (OpenSession) neither seals nor restores.
    let plain = f.engine.open_context("p1").await.unwrap();
    plain.login(UserType::User, USER_PIN).await.unwrap();
    let k = session_aes(&plain).await;
    assert_eq!(
        plain.seal_session_object(k).unwrap_err().rv(),
        Rv::FunctionNotSupported
    );
    assert_eq!(
        plain.check_sealable().unwrap_err().rv(),
        Rv::FunctionNotSupported
    );
}

#[tokio::test]
async fn no_restore_into_a_live_context_nor_of_destroyed_or_changed_objects() {
    let f = fixture().await;
    register_clients(&f.engine, "p1").await;
    let a = user_ctx(&f.engine, app(1)).await;
    let x = session_aes(&a).await;
    let y = session_aes(&a).await;
    let old = seal_all(&a, &[x, y]);
    // Not into the live context the objects came from (nothing resurrected or replaced there).
    a.destroy_object(x).await.unwrap();
    assert_eq!(
        a.restore_session_objects(&old[..1]).await.unwrap_err().rv(),
        Rv::ActionProhibited
    );
    // Y changes (version 2): its new copy.
    let label = Template::new().with_bytes(CKA_LABEL, b"renamed").unwrap();
    a.set_attributes(y, &label).await.unwrap();
    let y2 = a.seal_session_object(y).unwrap();
    assert_eq!(y2.version, 2);
    // The context ends on this engine (it lingered out); the engine remembers {Y@2}.
    drop(a);
    let again = |t: u8| f.engine.open_application_context("p1", app(t));
    // X was destroyed: refused. Y at version 1: refused (its attributes changed since).
    let c = again(1).await.unwrap();
    assert_eq!(
        c.restore_session_objects(&[old[0].clone(), y2.clone()])
            .await
            .unwrap_err()
            .rv(),
        Rv::ActionProhibited
    );
    assert_eq!(
        c.restore_session_objects(&old[1..]).await.unwrap_err().rv(),
        Rv::ActionProhibited
    );
    // The current state restores (once).
    assert_eq!(
        c.restore_session_objects(std::slice::from_ref(&y2))
            .await
            .unwrap(),
        1
    );
    c.login(UserType::User, USER_PIN).await.unwrap();
    let read = c.get_attributes(y, &[CKA_LABEL]).await.unwrap();
    assert_eq!(
        read,
        vec![tresor_core::object::AttrRead::Value(b"renamed".to_vec())]
    );
    assert_eq!(
        c.restore_session_objects(&[y2]).await.unwrap_err().rv(),
        Rv::ActionProhibited
    );
}

#[tokio::test]
async fn init_token_voids_every_copy() {
    let f = fixture().await;
    register_clients(&f.engine, "p1").await;
    let a = user_ctx(&f.engine, app(1)).await;
    let k = session_aes(&a).await;
    let copy = a.seal_session_object(k).unwrap();
    drop(a);
    let so = f.engine.open_context("p1").await.unwrap();
    so.init_token(SO_PIN, &token_label("p1")).await.unwrap();
    let b = second_engine(&f).await;
    let fresh = b.open_application_context("p1", app(1)).await.unwrap();
    assert_eq!(
        fresh
            .restore_session_objects(&[copy])
            .await
            .unwrap_err()
            .rv(),
        Rv::Vendor(tresor_core::error::vendor::INTEGRITY)
    );
}

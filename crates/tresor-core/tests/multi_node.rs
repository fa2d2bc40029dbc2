//! Two engines (two HSM nodes) on one store, serving the same partition at once: logins, key
//! use with audit flushes, and objects created on one node used on the other. Once on a shared
//! SQLite file, once as a cluster on the PostgreSQL server at `TRESOR_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own. And what one node
//! changes (objects, client keys, the token, the partition itself) reaching the other node's
//! caches: at its next comparison with the store, and on its own within `sync_interval`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::error::vendor;
use tresor_core::template::Template;
use tresor_core::{Engine, EngineConfig, Rv, SetupPolicy, UserType};
use tresor_store::testing::PgSchema;
use tresor_store::{SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_a_partition() {
    let f = fixture().await;
    let store_b: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&f.dir.path().join("t.db")).await.unwrap());
    two_nodes(f.engine.clone(), store_b, &f.shares).await;
}

/// A store on `schema`, as one more node of the cluster would open it.
async fn pg(schema: &PgSchema) -> Arc<dyn Store> {
    Arc::new(schema.store().await)
}

/// An engine on `schema`, initialised (shares 2 of 3) with partition `p1`.
async fn initialised(schema: &PgSchema) -> (Arc<Engine>, Vec<tresor_core::seal::Share>) {
    let e = Engine::open(pg(schema).await, test_config()).await.unwrap();
    let shares = e.init(2, 3).await.unwrap();
    e.create_partition("p1", SO_PIN, Some(USER_PIN))
        .await
        .unwrap();
    (e, shares)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_a_partition_on_postgres() {
    let schema = PgSchema::new();
    let (a, shares) = initialised(&schema).await;
    two_nodes(a, pg(&schema).await, &shares).await;
}

/// Node A (initialised, partition `p1`) and a node B started on `store_b`, the same database.
async fn two_nodes(a: Arc<Engine>, store_b: Arc<dyn Store>, shares: &[tresor_core::seal::Share]) {
    let b = Engine::open(store_b, test_config()).await.unwrap();
    b.unseal(&shares[..2]).await.unwrap();
    let _bg_a = a.spawn_background();
    let _bg_b = b.spawn_background();

    let a_ctx = Arc::new(a.open_context("p1").await.unwrap());
    a_ctx.login(UserType::User, USER_PIN).await.unwrap();
    // A token key made on node A...
    let (_, key) = a_ctx
        .generate_key_pair(
            CKM_EC_KEY_PAIR_GEN,
            &Template::new()
                .with_bool(CKA_TOKEN, true)
                .unwrap()
                .with_bytes(
                    CKA_EC_PARAMS,
                    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                )
                .unwrap(),
            &Template::new()
                .with_bool(CKA_TOKEN, true)
                .unwrap()
                .with_bool(CKA_SIGN, true)
                .unwrap(),
        )
        .await
        .unwrap();
    // ...is usable on node B, whose partition state was loaded before it existed? Load B's
    // partition first by logging in there, then create another key on A and use it on B.
    let b_ctx = Arc::new(b.open_context("p1").await.unwrap());
    b_ctx.login(UserType::User, USER_PIN).await.unwrap();
    let (_, key2) = a_ctx
        .generate_key_pair(
            CKM_EC_KEY_PAIR_GEN,
            &Template::new()
                .with_bool(CKA_TOKEN, true)
                .unwrap()
                .with_bytes(
                    CKA_EC_PARAMS,
                    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                )
                .unwrap(),
            &Template::new()
                .with_bool(CKA_TOKEN, true)
                .unwrap()
                .with_bool(CKA_SIGN, true)
                .unwrap(),
        )
        .await
        .unwrap();
    b_ctx
        .sign(
            key2,
            &Mechanism::EcdsaHash(HashAlg::Sha256),
            b"made on A, used on B",
        )
        .await
        .unwrap();

    // Both nodes sign, flush and log in concurrently: nothing fails.
    let mut tasks = Vec::new();
    for (i, (engine, ctx)) in [(a.clone(), a_ctx.clone()), (b.clone(), b_ctx.clone())]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for n in 0..200 {
                ctx.sign(
                    key,
                    &Mechanism::EcdsaHash(HashAlg::Sha256),
                    format!("{i}-{n}").as_bytes(),
                )
                .await
                .unwrap();
                if n % 20 == 0 {
                    engine.flush_audit().await.unwrap();
                    let c = engine.open_context("p1").await.unwrap();
                    c.login(UserType::User, USER_PIN).await.unwrap();
                }
            }
            engine.flush_audit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_another_node_reach_the_cache() {
    let f = fixture().await;
    let path = f.dir.path().join("t.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    changes_elsewhere(a, b, &f.shares).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_another_node_reach_the_cache_on_postgres() {
    let schema = PgSchema::new();
    let (_, shares) = initialised(&schema).await;
    changes_elsewhere(pg(&schema).await, pg(&schema).await, &shares).await;
}

fn ec_key_templates() -> (Template, Template) {
    (
        Template::new()
            .with_bool(CKA_TOKEN, true)
            .unwrap()
            .with_bytes(CKA_EC_PARAMS, &p256_params())
            .unwrap(),
        Template::new()
            .with_bool(CKA_TOKEN, true)
            .unwrap()
            .with_bool(CKA_SIGN, true)
            .unwrap(),
    )
}

/// A new P-256 client key registered for `p1` through `engine` (setup password exchange).
async fn register_client(engine: &Arc<Engine>) -> (Vec<u8>, tresor_core::ClientCredential) {
    let pw = engine
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    let spki = tresor_core::attest::new_p256_key()
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let client = engine
        .register_client(
            "p1",
            secrecy::ExposeSecret::expose_secret(&pw).as_bytes(),
            USER_PIN,
            &spki,
            "app",
        )
        .await
        .unwrap();
    (spki, client)
}

fn rv<T: std::fmt::Debug>(r: tresor_core::Result<T>) -> Rv {
    r.expect_err("expected an error").rv()
}

/// Node A caches keys, a client registration and a login; node B destroys one key, withdraws
/// CKA_SIGN from another, revokes the client, then re-initialises the token and deletes the
/// partition. A sees each change at its next comparison with the store, not before (its cache
/// is what made it fast), and on its own when its background task runs.
async fn changes_elsewhere(
    store_a: Arc<dyn Store>,
    store_b: Arc<dyn Store>,
    shares: &[tresor_core::seal::Share],
) {
    let a = Engine::open(store_a, test_config()).await.unwrap();
    a.unseal(&shares[..2]).await.unwrap();
    let b = Engine::open(store_b, test_config()).await.unwrap();
    b.unseal(&shares[..2]).await.unwrap();

    let a_ctx = a.open_context("p1").await.unwrap();
    a_ctx.login(UserType::User, USER_PIN).await.unwrap();
    let (pub_t, priv_t) = ec_key_templates();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let (_, k) = a_ctx
            .generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &priv_t)
            .await
            .unwrap();
        keys.push(k);
    }
    let (gone, blunted, kept) = (keys[0], keys[1], keys[2]);
    let sha = Mechanism::EcdsaHash(HashAlg::Sha256);
    for k in &keys {
        a_ctx.sign(*k, &sha, b"cached on A").await.unwrap();
    }
    let (spki, client) = register_client(&a).await;
    a.authenticate_client("p1", &spki).await.unwrap();
    a.flush_audit().await.unwrap();
    // A context of that client (how the node serves a connection).
    let client_ctx = a
        .open_client_context("p1", &client.fingerprint)
        .await
        .unwrap();
    client_ctx.login(UserType::User, USER_PIN).await.unwrap();

    // Node B changes them.
    let b_ctx = b.open_context("p1").await.unwrap();
    b_ctx.login(UserType::User, USER_PIN).await.unwrap();
    b_ctx.destroy_object(gone).await.unwrap();
    b_ctx
        .set_attributes(
            blunted,
            &Template::new().with_bool(CKA_SIGN, false).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        b.revoke_client("p1", Some(&client.fingerprint))
            .await
            .unwrap(),
        1
    );

    // A has not compared yet: its cache still serves the old state (the window that
    // `sync_interval` bounds).
    a_ctx.sign(gone, &sha, b"stale").await.unwrap();
    a.authenticate_client("p1", &spki).await.unwrap();
    // That use of a key destroyed meanwhile is still recorded (its usage counter is gone).
    a.flush_audit().await.unwrap();

    assert_eq!(a.sync_partitions().await.unwrap(), 1);
    assert_eq!(
        rv(a_ctx.sign(gone, &sha, b"destroyed").await),
        Rv::ObjectHandleInvalid
    );
    assert_eq!(
        rv(a_ctx.sign(blunted, &sha, b"no CKA_SIGN").await),
        Rv::KeyFunctionNotPermitted
    );
    a_ctx.sign(kept, &sha, b"unchanged").await.unwrap();
    assert_eq!(
        rv(a.authenticate_client("p1", &spki).await),
        Rv::Vendor(vendor::CLIENT_NOT_REGISTERED)
    );
    // The revoked client's open context refuses everything; a new one cannot be opened.
    assert_eq!(
        rv(client_ctx.sign(kept, &sha, b"revoked").await),
        Rv::Vendor(vendor::CLIENT_NOT_REGISTERED)
    );
    assert_eq!(
        rv(a.open_client_context("p1", &client.fingerprint).await),
        Rv::Vendor(vendor::CLIENT_NOT_REGISTERED)
    );
    // Nothing more changed: nothing to refresh.
    assert_eq!(a.sync_partitions().await.unwrap(), 0);
    let stats = a.sync_stats();
    assert_eq!(
        (stats.runs, stats.failures, stats.refreshed, stats.unloaded),
        (2, 0, 1, 0)
    );

    // Now on its own: A's background task with a short interval.
    let a_fast = {
        let store = a.store().clone();
        let e = Engine::open(
            store,
            EngineConfig {
                sync_interval: std::time::Duration::from_millis(50),
                ..test_config()
            },
        )
        .await
        .unwrap();
        e.unseal(&shares[..2]).await.unwrap();
        e
    };
    let _bg = a_fast.spawn_background();
    let fast_ctx = a_fast.open_context("p1").await.unwrap();
    fast_ctx.login(UserType::User, USER_PIN).await.unwrap();
    fast_ctx.sign(kept, &sha, b"before").await.unwrap();

    b_ctx.logout().unwrap();
    let so = b.open_context("p1").await.unwrap();
    so.init_token(SO_PIN, &tresor_core::engine::token::token_label("p1"))
        .await
        .unwrap();
    wait_until("the re-initialised token logs A's context out", || {
        fast_ctx.logged_in().is_none()
    })
    .await;
    assert_eq!(
        rv(fast_ctx.sign(kept, &sha, b"after").await),
        Rv::UserNotLoggedIn
    );

    b.delete_partition("p1").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match fast_ctx.login(UserType::User, USER_PIN).await {
            Err(e) if e.rv() == Rv::Vendor(vendor::USER_NOT_FOUND) => break,
            // Until A compares, its loaded partition still knows the token's user (whose
            // PIN B's C_InitToken cleared).
            r => assert!(
                std::time::Instant::now() < deadline,
                "the deleted partition is still served on A: {r:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        rv(a_fast.open_context("p1").await),
        Rv::Vendor(vendor::USER_NOT_FOUND)
    );
    let stats = a_fast.sync_stats();
    assert!(stats.refreshed >= 1 && stats.failures == 0, "{stats:?}");
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Settings of a node that compares its partitions with the store only every minute.
fn slow_poll() -> EngineConfig {
    EngineConfig {
        sync_interval: std::time::Duration::from_secs(60),
        ..test_config()
    }
}

/// On PostgreSQL a node does not wait for its next poll: the store's notification of a changed
/// partition makes it compare at once. Node A polls only every minute here, yet sees node B's
/// destruction of a key, revocation of a client key and deletion of the partition within a
/// second or two each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_notifies_other_nodes_at_once() {
    let schema = PgSchema::new();
    let (_, shares) = initialised(&schema).await;
    let a = Engine::open(pg(&schema).await, slow_poll()).await.unwrap();
    a.unseal(&shares[..2]).await.unwrap();
    let b = Engine::open(pg(&schema).await, test_config())
        .await
        .unwrap();
    b.unseal(&shares[..2]).await.unwrap();
    let _bg = a.spawn_background();
    // The node says whether its notifications arrive (its metrics' gauge).
    for _ in 0..500 {
        if a.sync_stats().notifications == Some(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(a.sync_stats().notifications, Some(true));
    other_nodes_changes_arrive_at_once(&a, &b).await;
}

/// The same for two processes on one SQLite file: node A's store polls the partitions' change
/// counter every `SQLITE_CHANGE_POLL`, which hints it to compare.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_nodes_see_other_processes_within_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db");
    let open = || async { Arc::new(SqliteStore::open(&file).await.unwrap()) as Arc<dyn Store> };
    let first = Engine::open(open().await, test_config()).await.unwrap();
    let shares = first.init(2, 3).await.unwrap();
    first
        .create_partition("p1", SO_PIN, Some(USER_PIN))
        .await
        .unwrap();
    first.seal().await.unwrap();
    drop(first);
    let a = Engine::open(open().await, slow_poll()).await.unwrap();
    a.unseal(&shares[..2]).await.unwrap();
    let b = Engine::open(open().await, test_config()).await.unwrap();
    b.unseal(&shares[..2]).await.unwrap();
    let _bg = a.spawn_background();
    other_nodes_changes_arrive_at_once(&a, &b).await;
}

/// Node A (comparing with the store only every minute, its background task running) sees
/// node B destroy a key, revoke A's client and delete the partition, each within 5 s.
async fn other_nodes_changes_arrive_at_once(a: &Arc<Engine>, b: &Arc<Engine>) {
    let (_, client) = register_client(a).await;
    let ctx = a
        .open_client_context("p1", &client.fingerprint)
        .await
        .unwrap();
    ctx.login(UserType::User, USER_PIN).await.unwrap();
    let (pub_t, priv_t) = ec_key_templates();
    let (_, key) = ctx
        .generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &priv_t)
        .await
        .unwrap();
    let (_, other) = ctx
        .generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &priv_t)
        .await
        .unwrap();
    let sha = Mechanism::EcdsaHash(HashAlg::Sha256);
    ctx.sign(key, &sha, b"cached").await.unwrap();
    ctx.sign(other, &sha, b"cached").await.unwrap();

    let within = |what: &'static str| async move {
        let started = std::time::Instant::now();
        move |done: bool| {
            assert!(
                done || started.elapsed() < std::time::Duration::from_secs(5),
                "{what}: not seen after 5 s (the poll is 60 s away)"
            );
            done
        }
    };

    let b_ctx = b.open_context("p1").await.unwrap();
    b_ctx.login(UserType::User, USER_PIN).await.unwrap();
    b_ctx.destroy_object(key).await.unwrap();
    let check = within("destroyed key").await;
    loop {
        let r = ctx.sign(key, &sha, b"destroyed?").await;
        if check(matches!(&r, Err(e) if e.rv() == Rv::ObjectHandleInvalid)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    ctx.sign(other, &sha, b"unchanged").await.unwrap();

    b.revoke_client("p1", Some(&client.fingerprint))
        .await
        .unwrap();
    let check = within("revoked client").await;
    loop {
        let r = ctx.sign(other, &sha, b"revoked?").await;
        if check(matches!(&r, Err(e) if e.rv() == Rv::Vendor(vendor::CLIENT_NOT_REGISTERED))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let plain = a.open_context("p1").await.unwrap();
    b.delete_partition("p1").await.unwrap();
    let check = within("deleted partition").await;
    loop {
        let r = plain.find_objects(&Template::new(), 1).await;
        if check(matches!(&r, Err(e) if e.rv() == Rv::Vendor(vendor::USER_NOT_FOUND))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(a.sync_stats().runs >= 3, "{:?}", a.sync_stats());
}

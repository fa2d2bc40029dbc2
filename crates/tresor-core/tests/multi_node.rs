//! Two engines (two HSM nodes) on one store, serving the same partition at once: logins, key
//! use with audit flushes, and objects created on one node used on the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::template::Template;
use tresor_core::{Engine, UserType};
use tresor_store::{SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_a_partition() {
    let f = fixture().await;
    let store_b: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&f.dir.path().join("t.db")).await.unwrap());
    let b = Engine::open(store_b, test_config()).await.unwrap();
    b.unseal(&f.shares[..2]).await.unwrap();
    let _bg_a = f.engine.spawn_background();
    let _bg_b = b.spawn_background();

    let a_ctx = Arc::new(f.user().await);
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
    for (i, (engine, ctx)) in [
        (f.engine.clone(), a_ctx.clone()),
        (b.clone(), b_ctx.clone()),
    ]
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

//! Two engines (two HSM nodes) on one store, serving the same partition at once: logins, key
//! use with audit flushes, and objects created on one node used on the other. Once on a shared
//! SQLite file, once as a cluster on the PostgreSQL server at `TRESOR_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::template::Template;
use tresor_core::{Engine, UserType};
use tresor_store::{PgStore, PgStoreOptions, SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_a_partition() {
    let f = fixture().await;
    let store_b: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&f.dir.path().join("t.db")).await.unwrap());
    two_nodes(f.engine.clone(), store_b, &f.shares).await;
}

/// A schema of its own on the test PostgreSQL server, dropped on drop.
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    fn new() -> PgSchema {
        let url = std::env::var("TRESOR_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut rnd = [0u8; 8];
        openssl::rand::rand_bytes(&mut rnd).unwrap();
        let name = format!(
            "tresor_mn_{}",
            rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        PgSchema { url, name }
    }

    async fn store(&self) -> Arc<dyn Store> {
        let opts = PgStoreOptions {
            schema: Some(self.name.clone()),
            ..PgStoreOptions::default()
        };
        match PgStore::connect_with(&self.url, opts).await {
            Ok(s) => Arc::new(s),
            Err(e) => panic!(
                "PostgreSQL at {} is needed (pg_ctlcluster --skip-systemctl-redirect \
                 $(ls /etc/postgresql) main start): {e}",
                self.url
            ),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                self.url.as_str(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_a_partition_on_postgres() {
    let schema = PgSchema::new();
    let a = Engine::open(schema.store().await, test_config())
        .await
        .unwrap();
    let shares = a.init(2, 3).await.unwrap();
    a.create_partition("p1", SO_PIN, Some(USER_PIN))
        .await
        .unwrap();
    two_nodes(a, schema.store().await, &shares).await;
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

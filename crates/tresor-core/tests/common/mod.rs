//! Shared helpers for the engine tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tresor_core::ck::*;
use tresor_core::template::Template;
use tresor_core::{Context, Engine, EngineConfig, UserType};
use tresor_store::{SqliteStore, Store};

pub const SO_PIN: &[u8] = b"so-pin-1234";
pub const USER_PIN: &[u8] = b"user-pin-1234";

/// Cheap Argon2 for tests (the real cost is the default config).
pub fn test_config() -> EngineConfig {
    EngineConfig {
        argon2_m_kib: 1024,
        argon2_t: 1,
        max_pin_failures: 3,
        max_key_password_failures: 3,
        key_password_lockout: std::time::Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

#[derive(Debug)]
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub shares: Vec<tresor_core::seal::Share>,
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store"),
    );
    let engine = Engine::open(store.clone(), test_config())
        .await
        .expect("engine");
    let shares = engine.init(2, 3).await.expect("init");
    engine
        .create_partition("p1", SO_PIN, Some(USER_PIN))
        .await
        .expect("partition");
    Fixture {
        dir,
        store,
        engine,
        shares,
    }
}

impl Fixture {
    pub async fn user(&self) -> Context {
        let ctx = self.engine.open_context("p1").await.expect("context");
        ctx.login(UserType::User, USER_PIN).await.expect("login");
        ctx
    }

    /// Reopen the engine on the same store (a restart).
    pub async fn restart(&self) -> Arc<Engine> {
        self.engine.flush_audit().await.expect("flush");
        let engine = Engine::open(self.store.clone(), test_config())
            .await
            .expect("engine");
        engine.unseal(&self.shares[..2]).await.expect("unseal");
        engine
    }
}

pub fn aes_template(label: &str, token: bool) -> Template {
    Template::new()
        .with_bool(CKA_TOKEN, token)
        .and_then(|t| t.with_ulong(CKA_VALUE_LEN, 32))
        .and_then(|t| t.with_bytes(CKA_LABEL, label.as_bytes()))
        .expect("template")
}

pub fn p256_params() -> Vec<u8> {
    // DER OID 1.2.840.10045.3.1.7
    vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
}

pub async fn p256_pair(ctx: &Context, label: &str, priv_extra: Template) -> (i64, i64) {
    let pub_t = Template::new()
        .with_bool(CKA_TOKEN, true)
        .and_then(|t| t.with_bytes(CKA_EC_PARAMS, &p256_params()))
        .and_then(|t| t.with_bytes(CKA_LABEL, label.as_bytes()))
        .expect("pub");
    let mut priv_t = Template::new()
        .with_bool(CKA_TOKEN, true)
        .and_then(|t| t.with_bytes(CKA_LABEL, label.as_bytes()))
        .expect("priv");
    for (ty, v) in priv_extra.iter() {
        priv_t.insert(ty, v.clone()).expect("extra");
    }
    ctx.generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &priv_t)
        .await
        .expect("keygen")
}

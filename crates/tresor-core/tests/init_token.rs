//! `C_InitToken` in the engine: the label rule, the SO PIN with its lockout, the one audited
//! change (every object destroyed, the user PIN cleared), other contexts losing their login
//! and session objects (on the same engine at once, on a second engine once it re-reads the
//! partition), and the token status behind `C_GetTokenInfo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::engine::token::token_label;
use tresor_core::template::Template;
use tresor_core::{Engine, Rv, UserType};
use tresor_store::{SqliteStore, Store};

const ECDSA: Mechanism = Mechanism::EcdsaHash(HashAlg::Sha256);

async fn objects(ctx: &tresor_core::Context) -> Vec<i64> {
    ctx.find_objects(&Template::new(), 1000)
        .await
        .expect("find")
}

#[tokio::test]
async fn init_token_destroys_everything_and_clears_the_user_pin() {
    let f = fixture().await;
    let label = token_label("p1");
    // The application that owns keys: token objects and a session object.
    let user = f.user().await;
    let (_, token_key) = p256_pair(&user, "tok", Template::new()).await;
    let aes = user
        .generate_key(CKM_AES_KEY_GEN, &aes_template("aes", true))
        .await
        .expect("aes");
    let session_aes = user
        .generate_key(CKM_AES_KEY_GEN, &aes_template("s", false))
        .await
        .expect("session aes");
    assert!(session_aes < 0 && aes > 0);
    assert_eq!(objects(&user).await.len(), 4);
    let before = f.store.count_objects(user.partition_id()).await.unwrap();
    assert_eq!(before, 3);

    // The initialising application: a context of its own, not logged in.
    let init = f.engine.open_context("p1").await.expect("ctx");
    let st = init.token_status().await.expect("status");
    assert!(st.user_pin_initialized);
    assert_eq!(
        (st.so_failures, st.user_failures, st.max_failures),
        (0, 0, 3)
    );

    // A label that is not the partition name: refused, no PIN attempt counted.
    let mut other = [b' '; 32];
    other[..5].copy_from_slice(b"other");
    let e = init.init_token(SO_PIN, &other).await.unwrap_err();
    assert_eq!(e.rv(), Rv::ArgumentsBad);
    assert!(e.detail().contains("p1"), "{e}");
    assert_eq!(
        init.init_token(SO_PIN, b"p1").await.unwrap_err().rv(),
        Rv::ArgumentsBad,
        "the label is 32 bytes"
    );
    assert_eq!(init.token_status().await.unwrap().so_failures, 0);
    // A wrong SO PIN counts toward the lockout and changes nothing.
    assert_eq!(
        init.init_token(b"wrong-so-pin", &label)
            .await
            .unwrap_err()
            .rv(),
        Rv::PinIncorrect
    );
    assert_eq!(init.token_status().await.unwrap().so_failures, 1);
    assert_eq!(objects(&user).await.len(), 4);
    // The user's own context holds a login and a session object: CKR_SESSION_EXISTS.
    assert_eq!(
        user.init_token(SO_PIN, &label).await.unwrap_err().rv(),
        Rv::SessionExists
    );
    // So does the SO logged in on the initialising context.
    init.login(UserType::SecurityOfficer, SO_PIN).await.unwrap();
    assert_eq!(
        init.init_token(SO_PIN, &label).await.unwrap_err().rv(),
        Rv::SessionExists
    );
    init.logout().unwrap();

    // The real thing.
    let n = init.init_token(SO_PIN, &label).await.expect("init token");
    assert_eq!(n, 3, "three token objects destroyed");
    assert_eq!(f.store.count_objects(user.partition_id()).await.unwrap(), 0);
    let st = init.token_status().await.unwrap();
    assert!(!st.user_pin_initialized);
    assert_eq!((st.so_failures, st.user_failures), (0, 0), "success resets");

    // The other context lost its login and its session object; the token objects are gone.
    assert_eq!(user.logged_in(), None);
    assert_eq!(
        user.sign(token_key, &ECDSA, b"x").await.unwrap_err().rv(),
        Rv::UserNotLoggedIn
    );
    assert_eq!(
        user.login(UserType::User, USER_PIN).await.unwrap_err().rv(),
        Rv::UserPinNotInitialized
    );
    // The SO sets a user PIN again; the old handles stay invalid.
    init.login(UserType::SecurityOfficer, SO_PIN).await.unwrap();
    init.init_pin(b"fresh-user-pin").await.expect("init pin");
    assert!(init.token_status().await.unwrap().user_pin_initialized);
    init.logout().unwrap();
    user.login(UserType::User, b"fresh-user-pin").await.unwrap();
    for h in [token_key, aes, session_aes] {
        assert_eq!(
            user.get_attributes(h, &[CKA_CLASS]).await.unwrap_err().rv(),
            Rv::ObjectHandleInvalid,
            "object {h}"
        );
    }
    assert!(objects(&user).await.is_empty());

    // One audit entry says what happened, with the SO's PIN checks around it.
    f.engine.flush_audit().await.unwrap();
    let rows = f
        .store
        .audit_range(user.partition_id(), 1, 10_000)
        .await
        .unwrap();
    let init_rows: Vec<_> = rows.iter().filter(|r| r.action == "token.init").collect();
    assert_eq!(init_rows.len(), 1);
    assert!(init_rows[0].actor.starts_with("so/"));
    let detail: serde_json::Value = serde_json::from_str(&init_rows[0].detail).unwrap();
    assert_eq!(detail["objects_destroyed"], 3);
    assert!(rows.iter().any(|r| r.action == "token.init.auth.fail"));
    assert!(rows.iter().any(|r| r.action == "token.init.auth"));
    let root = openssl::x509::X509::from_der(&f.engine.root_cert_der().unwrap()).unwrap();
    let cps = f.store.checkpoints(user.partition_id()).await.unwrap();
    tresor_core::audit::verify_chain(user.partition_id(), rows, &cps, &root).expect("chain");

    // A restart reads the re-initialised partition (the sealed digest matches the empty set).
    let engine = f.restart().await;
    let ctx = engine.open_context("p1").await.unwrap();
    assert!(ctx.token_status().await.unwrap().user_pin_initialized);
    ctx.login(UserType::User, b"fresh-user-pin").await.unwrap();
    assert!(objects(&ctx).await.is_empty());
}

#[tokio::test]
async fn wrong_so_pins_lock_init_token() {
    let f = fixture().await;
    let label = token_label("p1");
    let user = f.user().await;
    let (_, key) = p256_pair(&user, "kept", Template::new()).await;
    let init = f.engine.open_context("p1").await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            init.init_token(b"bad-so-pin", &label)
                .await
                .unwrap_err()
                .rv(),
            Rv::PinIncorrect
        );
    }
    // The third wrong PIN (limit 3) locks the SO PIN: the same lockout as C_Login.
    assert_eq!(
        init.init_token(b"bad-so-pin", &label)
            .await
            .unwrap_err()
            .rv(),
        Rv::PinLocked
    );
    assert_eq!(
        init.init_token(SO_PIN, &label).await.unwrap_err().rv(),
        Rv::PinLocked
    );
    assert_eq!(
        init.login(UserType::SecurityOfficer, SO_PIN)
            .await
            .unwrap_err()
            .rv(),
        Rv::PinLocked
    );
    let st = init.token_status().await.unwrap();
    assert_eq!(st.so_failures, 3);
    // Nothing was destroyed.
    user.sign(key, &ECDSA, b"still here").await.expect("sign");
    assert_eq!(f.store.count_objects(user.partition_id()).await.unwrap(), 2);
    // The operator resets the SO PIN; then the SO can re-initialise.
    f.engine.reset_so_pin("p1", b"new-so-pin").await.unwrap();
    init.init_token(b"new-so-pin", &label).await.expect("init");
    assert_eq!(f.store.count_objects(user.partition_id()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_engine_catches_up_when_it_reads_the_partition() {
    let f = fixture().await;
    let store_b: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&f.dir.path().join("t.db")).await.unwrap());
    let b = Engine::open(store_b, test_config()).await.unwrap();
    b.unseal(&f.shares[..2]).await.unwrap();
    let a_user = f.user().await;
    let (_, key) = p256_pair(&a_user, "shared", Template::new()).await;
    // An application on node B with a session key and the token key.
    let b_ctx = b.open_context("p1").await.unwrap();
    b_ctx.login(UserType::User, USER_PIN).await.unwrap();
    let b_session = b_ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("s", false))
        .await
        .unwrap();
    b_ctx.sign(key, &ECDSA, b"before").await.unwrap();
    // Node A re-initialises the token; an object created meanwhile on B counts too.
    let on_b = b_ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("made-on-b", true))
        .await
        .unwrap();
    let init = f.engine.open_context("p1").await.unwrap();
    assert_eq!(
        init.init_token(SO_PIN, &token_label("p1")).await.unwrap(),
        3,
        "the key pair and the key made on node B"
    );
    let _ = on_b;
    // Node B learns of it when it next reads the partition (here: a token status request,
    // as C_GetTokenInfo sends); its contexts then lose login and session objects.
    let probe = b.open_context("p1").await.unwrap();
    assert!(!probe.token_status().await.unwrap().user_pin_initialized);
    assert_eq!(b_ctx.logged_in(), None);
    assert_eq!(
        b_ctx.sign(key, &ECDSA, b"after").await.unwrap_err().rv(),
        Rv::UserNotLoggedIn
    );
    assert_eq!(
        b_ctx
            .get_attributes(b_session, &[CKA_CLASS])
            .await
            .unwrap_err()
            .rv(),
        Rv::ObjectHandleInvalid
    );
}

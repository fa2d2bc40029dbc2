//! Per-key passwords: every use or change of a key with a password needs it, presented with
//! the request; wrong ones are refused, counted and lock the password; the unlock never
//! outlives its request; the hash is sealed and never answered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{GcmParams, HashAlg, Mechanism};
use tresor_core::error::vendor;
use tresor_core::object::AttrRead;
use tresor_core::template::Template;
use tresor_core::{Context, Rv};

const WRONG: Rv = Rv::Vendor(vendor::KEY_PASSWORD_INCORRECT);

fn gcm() -> Mechanism {
    Mechanism::AesGcm(GcmParams {
        iv: vec![7; 12],
        aad: vec![],
        tag_bits: 128,
    })
}

fn with_password(t: Template, pw: &[u8]) -> Template {
    t.with_bytes(CKA_TRESOR_KEY_PASSWORD, pw).expect("template")
}

async fn aes_key(ctx: &Context, label: &str, pw: &[u8], extra: &[(u64, bool)]) -> i64 {
    let mut t = with_password(aes_template(label, true), pw);
    for (ty, v) in extra {
        t = t.with_bool(*ty, *v).expect("template");
    }
    ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("keygen")
}

async fn encrypt_with(ctx: &Context, key: i64, pw: Option<&[u8]>) -> tresor_core::Result<Vec<u8>> {
    match pw {
        None => ctx.encrypt(key, &gcm(), b"data").await,
        Some(p) => {
            ctx.with_key_passwords(&[(key, p)], ctx.encrypt(key, &gcm(), b"data"))
                .await
        }
    }
}

#[tokio::test]
async fn a_key_with_a_password_needs_it_for_every_use() {
    let f = fixture().await;
    let ctx = f.user().await;
    let key = aes_key(&ctx, "k", b"secret pw", &[]).await;
    // Without, wrong, right.
    assert_eq!(encrypt_with(&ctx, key, None).await.unwrap_err().rv(), WRONG);
    assert_eq!(
        encrypt_with(&ctx, key, Some(b"nope"))
            .await
            .unwrap_err()
            .rv(),
        WRONG
    );
    let ct = encrypt_with(&ctx, key, Some(b"secret pw")).await.unwrap();
    // Decrypt, attest, copy, set attributes, destroy: all need it.
    assert_eq!(ctx.decrypt(key, &gcm(), &ct).await.unwrap_err().rv(), WRONG);
    let pt = ctx
        .with_key_passwords(&[(key, b"secret pw")], ctx.decrypt(key, &gcm(), &ct))
        .await
        .unwrap();
    assert_eq!(&pt[..], b"data");
    assert_eq!(ctx.attest(key).await.unwrap_err().rv(), WRONG);
    ctx.with_key_passwords(&[(key, b"secret pw")], ctx.attest(key))
        .await
        .unwrap();
    let label = Template::new().with_bytes(CKA_LABEL, b"k2").unwrap();
    assert_eq!(
        ctx.set_attributes(key, &label).await.unwrap_err().rv(),
        WRONG
    );
    assert_eq!(ctx.copy_object(key, &label).await.unwrap_err().rv(), WRONG);
    assert_eq!(ctx.destroy_object(key).await.unwrap_err().rv(), WRONG);
    // Reading public attributes and the record needs none; the hash is never answered.
    let reads = ctx
        .get_attributes(key, &[CKA_LABEL, CKA_TRESOR_KEY_PASSWORD])
        .await
        .unwrap();
    assert_eq!(reads[0], AttrRead::Value(b"k".to_vec()));
    assert_eq!(reads[1], AttrRead::Sensitive);
    let (rec, _) = ctx.record(key).await.unwrap();
    assert!(
        rec.password.is_none(),
        "the record answer leaves the hash out"
    );
    // A password given for a key without one is refused too.
    let plain = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("plain", true))
        .await
        .unwrap();
    assert_eq!(
        encrypt_with(&ctx, plain, Some(b"x"))
            .await
            .unwrap_err()
            .rv(),
        WRONG
    );
    encrypt_with(&ctx, plain, None).await.unwrap();
    ctx.with_key_passwords(&[(key, b"secret pw")], ctx.destroy_object(key))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_unlock_lasts_one_request_and_reaches_no_other() {
    let f = fixture().await;
    let ctx = Arc::new(f.user().await);
    let key = aes_key(&ctx, "k", b"pw-1", &[]).await;
    // A request holding the unlock is running (waiting inside it) while another request on
    // the same context runs without the password: that one is refused.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let held = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let c2 = ctx.clone();
            ctx.with_key_passwords(&[(key, b"pw-1")], async move {
                let _ = rx.await;
                c2.encrypt(key, &gcm(), b"inside").await
            })
            .await
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(encrypt_with(&ctx, key, None).await.unwrap_err().rv(), WRONG);
    tx.send(()).unwrap();
    held.await.unwrap().expect("the unlocked request runs");
    // And after it ended, nothing is unlocked.
    assert_eq!(encrypt_with(&ctx, key, None).await.unwrap_err().rv(), WRONG);
    // Another context of the same partition cannot use a grant it was not given.
    let other = f.user().await;
    assert_eq!(
        encrypt_with(&other, key, None).await.unwrap_err().rv(),
        WRONG
    );
    encrypt_with(&other, key, Some(b"pw-1")).await.unwrap();
}

#[tokio::test]
async fn wrong_passwords_are_counted_lock_and_change_nothing() {
    let f = fixture().await;
    let ctx = f.user().await;
    let key = aes_key(&ctx, "k", b"right", &[]).await;
    let (_, usage_before) = ctx.record(key).await.unwrap();
    // Two wrong, then a right one resets the count.
    for _ in 0..2 {
        assert_eq!(
            encrypt_with(&ctx, key, Some(b"wrong"))
                .await
                .unwrap_err()
                .rv(),
            WRONG
        );
    }
    encrypt_with(&ctx, key, Some(b"right")).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            encrypt_with(&ctx, key, Some(b"wrong"))
                .await
                .unwrap_err()
                .rv(),
            WRONG
        );
    }
    // The third in a row locks the password (test config: 3, for 2 s) ...
    assert_eq!(
        encrypt_with(&ctx, key, Some(b"wrong"))
            .await
            .unwrap_err()
            .rv(),
        Rv::PinLocked
    );
    // ... and while locked, even the right password (also from the cache) is refused.
    let locked = encrypt_with(&ctx, key, Some(b"right")).await.unwrap_err();
    assert_eq!(locked.rv(), Rv::PinLocked, "{locked}");
    // The refused requests did not run.
    let (_, usage) = ctx.record(key).await.unwrap();
    assert_eq!(
        usage,
        usage_before + 1,
        "only the one right request counted"
    );
    // The lock ends; a right password works and resets the count.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    encrypt_with(&ctx, key, Some(b"right")).await.unwrap();
    assert_eq!(
        encrypt_with(&ctx, key, Some(b"wrong"))
            .await
            .unwrap_err()
            .rv(),
        WRONG
    );
    // Each failure is in the audit chain.
    f.engine.flush_audit().await.unwrap();
    let pid = ctx.partition_id();
    let rows = f.store.audit_range(pid, 1, 10_000).await.unwrap();
    let fails = rows
        .iter()
        .filter(|r| r.action == "key.password.fail")
        .count();
    assert_eq!(fails, 6);
    assert!(rows.iter().any(|r| r.action == "key.password.reset"));
}

#[tokio::test]
async fn key_pairs_changes_and_restarts() {
    let f = fixture().await;
    let ctx = f.user().await;
    let priv_t = with_password(
        Template::new().with_bool(CKA_SIGN, true).unwrap(),
        b"pair-pw",
    );
    let (public, private) = p256_pair(&ctx, "pair", priv_t).await;
    let m = Mechanism::EcdsaHash(HashAlg::Sha256);
    assert_eq!(ctx.sign(private, &m, b"x").await.unwrap_err().rv(), WRONG);
    let sig = ctx
        .with_key_passwords(&[(private, b"pair-pw")], ctx.sign(private, &m, b"x"))
        .await
        .unwrap();
    // The public half has no password: verifying needs none.
    ctx.verify(public, &m, b"x", &sig).await.unwrap();
    // A public key cannot carry one.
    let bad = Template::new()
        .with_bool(CKA_TOKEN, true)
        .unwrap()
        .with_bytes(CKA_EC_PARAMS, &p256_params())
        .unwrap()
        .with_bytes(CKA_TRESOR_KEY_PASSWORD, b"x")
        .unwrap();
    assert_eq!(
        ctx.generate_key_pair(CKM_EC_KEY_PAIR_GEN, &bad, &Template::new())
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateInconsistent
    );
    // Changing needs the current password; the old one is dead afterwards.
    assert_eq!(
        ctx.change_key_password(private, Some(b"new-pw"))
            .await
            .unwrap_err()
            .rv(),
        WRONG
    );
    ctx.with_key_passwords(
        &[(private, b"pair-pw")],
        ctx.change_key_password(private, Some(b"new-pw")),
    )
    .await
    .unwrap();
    assert_eq!(
        ctx.with_key_passwords(&[(private, b"pair-pw")], ctx.sign(private, &m, b"x"))
            .await
            .unwrap_err()
            .rv(),
        WRONG
    );
    // The password is sealed with the key: it survives a restart.
    let engine = f.restart().await;
    let ctx2 = engine.open_context("p1").await.unwrap();
    ctx2.login(tresor_core::UserType::User, USER_PIN)
        .await
        .unwrap();
    assert_eq!(ctx2.sign(private, &m, b"x").await.unwrap_err().rv(), WRONG);
    ctx2.with_key_passwords(&[(private, b"new-pw")], ctx2.sign(private, &m, b"x"))
        .await
        .unwrap();
    // Removing it makes the key usable without.
    ctx2.with_key_passwords(
        &[(private, b"new-pw")],
        ctx2.change_key_password(private, None),
    )
    .await
    .unwrap();
    ctx2.sign(private, &m, b"x").await.unwrap();
    // Setting one on a key without needs no current password; on a public key it is refused.
    ctx2.change_key_password(private, Some(b"again"))
        .await
        .unwrap();
    assert_eq!(ctx2.sign(private, &m, b"x").await.unwrap_err().rv(), WRONG);
    assert_eq!(
        ctx2.change_key_password(public, Some(b"x"))
            .await
            .unwrap_err()
            .rv(),
        Rv::KeyTypeInconsistent
    );
}

#[tokio::test]
async fn exportable_values_wrapping_and_lengths() {
    let f = fixture().await;
    let ctx = f.user().await;
    let open = aes_key(
        &ctx,
        "open",
        b"pw-open",
        &[(CKA_SENSITIVE, false), (CKA_EXTRACTABLE, true)],
    )
    .await;
    // An exportable value is read only with the password.
    assert_eq!(
        ctx.get_attributes(open, &[CKA_VALUE])
            .await
            .unwrap_err()
            .rv(),
        WRONG
    );
    let v = ctx
        .with_key_passwords(
            &[(open, b"pw-open")],
            ctx.get_attributes(open, &[CKA_VALUE]),
        )
        .await
        .unwrap();
    assert!(matches!(&v[0], AttrRead::Value(b) if b.len() == 32));
    // Wrapping it needs the password of the wrapped key and of the wrapping key.
    let kek = aes_key(&ctx, "kek", b"pw-kek", &[]).await;
    let wrap = |pws: Vec<(i64, &'static [u8])>| {
        let ctx = &ctx;
        async move {
            ctx.with_key_passwords(&pws, ctx.wrap_key(kek, &Mechanism::AesKeyWrapPad, open))
                .await
        }
    };
    assert_eq!(wrap(vec![(kek, b"pw-kek")]).await.unwrap_err().rv(), WRONG);
    assert_eq!(
        wrap(vec![(open, b"pw-open")]).await.unwrap_err().rv(),
        WRONG
    );
    wrap(vec![(kek, b"pw-kek"), (open, b"pw-open")])
        .await
        .unwrap();
    // Empty and over-long passwords are refused at creation.
    for pw in [&b""[..], &[b'a'; 257][..]] {
        let t = with_password(aes_template("bad", true), pw);
        assert_eq!(
            ctx.generate_key(CKM_AES_KEY_GEN, &t)
                .await
                .unwrap_err()
                .rv(),
            Rv::PinLenRange
        );
    }
    // The password attribute cannot be changed as an attribute.
    let t = Template::new()
        .with_bytes(CKA_TRESOR_KEY_PASSWORD, b"x")
        .unwrap();
    assert_eq!(
        ctx.with_key_passwords(&[(open, b"pw-open")], ctx.set_attributes(open, &t))
            .await
            .unwrap_err()
            .rv(),
        Rv::AttributeReadOnly
    );
}

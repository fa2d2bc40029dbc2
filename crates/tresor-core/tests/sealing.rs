//! Sealing: shares, and stored blobs that were tampered with, swapped or rolled back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::error::vendor;
use tresor_core::template::Template;
use tresor_core::{Engine, Rv, SealStatus, UserType};
use tresor_store::{Mutation, ObjectFilter, WriteBatch};

#[tokio::test]
async fn shares_wrong_too_few_foreign_corrupted() {
    let f = fixture().await;
    f.engine.seal().await.expect("seal");
    let e = Engine::open(f.store.clone(), test_config())
        .await
        .expect("open");
    assert_eq!(e.status(), SealStatus::Sealed);
    let err = e.unseal(&f.shares[..1]).await.unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::BAD_SHARE));
    assert!(err.detail().contains("need 2"), "{}", err.detail());
    let err = e
        .unseal(&[f.shares[0].clone(), f.shares[0].clone()])
        .await
        .unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::BAD_SHARE));
    // A share of another cluster is named as such.
    let other = fixture().await;
    let err = e
        .unseal(&[f.shares[0].clone(), other.shares[1].clone()])
        .await
        .unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::BAD_SHARE));
    assert!(err.detail().contains("share"), "{}", err.detail());
    // A corrupted share text is refused when parsed, naming the problem.
    let mut text = f.shares[1].expose_text().to_string();
    let i = text.len() / 2;
    let c = if &text[i..i + 1] == "a" { "b" } else { "a" };
    text.replace_range(i..i + 1, c);
    assert!(tresor_core::seal::Share::parse(&text).is_err());
    // The right shares unseal, in any order.
    e.unseal(&[f.shares[2].clone(), f.shares[0].clone()])
        .await
        .expect("unseal");
    assert_eq!(e.status(), SealStatus::Unsealed);
}

async fn setup_key(f: &Fixture) -> (i64, i64, i64) {
    let ctx = f.user().await;
    let a = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("a", true))
        .await
        .expect("a");
    let b = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("b", true))
        .await
        .expect("b");
    (ctx.partition_id(), a, b)
}

async fn row(f: &Fixture, pid: i64, oid: i64) -> tresor_store::ObjectRow {
    f.store.object(pid, oid).await.expect("read").expect("row")
}

async fn put_row(f: &Fixture, r: tresor_store::ObjectRow, expected_version: i64) {
    let mut b = WriteBatch::new();
    b.push(Mutation::UpdateObject {
        row: r,
        expected_version,
    });
    f.store.commit(b).await.expect("raw write");
}

async fn use_key(e: &std::sync::Arc<Engine>, oid: i64) -> tresor_core::Result<Vec<u8>> {
    let ctx = e.open_context("p1").await?;
    ctx.login(UserType::User, USER_PIN).await?;
    let m = Mechanism::AesGcm(tresor_core::crypto::GcmParams {
        iv: vec![0; 12],
        aad: vec![],
        tag_bits: 128,
    });
    ctx.encrypt(oid, &m, b"x").await
}

#[tokio::test]
async fn tampered_blob_is_refused() {
    let f = fixture().await;
    let (pid, a, _) = setup_key(&f).await;
    let mut r = row(&f, pid, a).await;
    let n = r.sealed.len();
    r.sealed[n - 20] ^= 0x01;
    let v = r.version;
    put_row(&f, r, v).await;
    let e = f.restart().await;
    let err = use_key(&e, a).await.unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::INTEGRITY), "{err}");
    assert!(
        err.detail().contains(&format!("object {a}")),
        "{}",
        err.detail()
    );
}

#[tokio::test]
async fn swapped_blob_is_refused() {
    let f = fixture().await;
    let (pid, a, b) = setup_key(&f).await;
    let ra = row(&f, pid, a).await;
    let mut rb = row(&f, pid, b).await;
    rb.sealed = ra.sealed.clone();
    let v = rb.version;
    put_row(&f, rb, v).await;
    let e = f.restart().await;
    assert_eq!(
        use_key(&e, b).await.unwrap_err().rv(),
        Rv::Vendor(vendor::INTEGRITY)
    );
    // The untouched key still works.
    use_key(&e, a).await.expect("a is fine");
    // Index columns that do not match the sealed record are refused too.
    let mut ra2 = row(&f, pid, a).await;
    ra2.label = "renamed-outside".into();
    let v = ra2.version;
    put_row(&f, ra2, v).await;
    let e = f.restart().await;
    let ctx = e.open_context("p1").await.expect("ctx");
    ctx.login(UserType::User, USER_PIN).await.expect("login");
    let t = Template::new()
        .with_bytes(CKA_LABEL, b"renamed-outside")
        .expect("t");
    assert_eq!(
        ctx.find_objects(&t, 10).await.unwrap_err().rv(),
        Rv::Vendor(vendor::INTEGRITY)
    );
}

#[tokio::test]
async fn rolled_back_blob_is_refused() {
    let f = fixture().await;
    let (pid, a, _) = setup_key(&f).await;
    let old = row(&f, pid, a).await;
    {
        let ctx = f.user().await;
        let t = Template::new().with_bool(CKA_ENCRYPT, false).expect("t");
        ctx.set_attributes(a, &t).await.expect("harden");
    }
    // Put back the older, validly sealed version of the row.
    let current = row(&f, pid, a).await.version;
    assert_eq!(current, old.version + 1);
    put_row(&f, old, current).await;
    // While running, the engine knows the current version.
    f.engine.evict_caches();
    assert_eq!(
        use_key(&f.engine, a).await.unwrap_err().rv(),
        Rv::Vendor(vendor::INTEGRITY)
    );
    // After a restart, the partition's sealed digest no longer matches: it refuses to load.
    let e = f.restart().await;
    let err = e.open_context("p1").await.unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::INTEGRITY));
    assert!(err.detail().contains("rolled back"), "{}", err.detail());
}

#[tokio::test]
async fn deleted_or_injected_rows_are_detected() {
    let f = fixture().await;
    let (pid, a, _) = setup_key(&f).await;
    // Delete a row behind the engine's back.
    let r = row(&f, pid, a).await;
    let mut b = WriteBatch::new();
    b.push(Mutation::DeleteObject {
        partition_id: pid,
        object_id: a,
        expected_version: r.version,
    });
    f.store.commit(b).await.expect("raw delete");
    let e = f.restart().await;
    assert_eq!(
        e.open_context("p1").await.unwrap_err().rv(),
        Rv::Vendor(vendor::INTEGRITY)
    );
    assert!(
        f.store
            .find_objects(pid, &ObjectFilter::default())
            .await
            .expect("rows")
            .len()
            == 1
    );
    let _ = HashAlg::Sha256;
}

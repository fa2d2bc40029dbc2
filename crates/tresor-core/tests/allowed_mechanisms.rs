//! `CKA_ALLOWED_MECHANISMS`: set at creation (generation, key pairs, import, unwrap, derive),
//! read back as given, never changed afterwards, kept by copies and restarts, and checked by the
//! engine on every use of the key, whichever face asks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{EcdhParams, GcmParams, HashAlg, Mechanism};
use tresor_core::object::AttrRead;
use tresor_core::template::Template;
use tresor_core::{Rv, UserType};

#[allow(clippy::unnecessary_cast)]
fn ckm(m: cryptoki_sys::CK_MECHANISM_TYPE) -> u64 {
    m as u64
}

fn list(ms: &[u64]) -> Vec<u8> {
    ms.iter().flat_map(|m| m.to_ne_bytes()).collect()
}

fn gcm() -> Mechanism {
    Mechanism::AesGcm(GcmParams {
        iv: vec![7; 12],
        aad: Vec::new(),
        tag_bits: 128,
    })
}

#[tokio::test]
async fn a_key_is_used_only_with_the_mechanisms_it_lists() {
    let f = fixture().await;
    let ctx = f.user().await;
    let allowed = [
        ckm(cryptoki_sys::CKM_ECDSA_SHA256),
        ckm(cryptoki_sys::CKM_ECDSA_SHA384),
    ];
    let extra = Template::new()
        .with_bytes(CKA_ALLOWED_MECHANISMS, &list(&allowed))
        .expect("t");
    let (pubk, privk) = p256_pair(&ctx, "restricted", extra).await;

    let sha256 = Mechanism::EcdsaHash(HashAlg::Sha256);
    let sig = ctx.sign(privk, &sha256, b"m").await.expect("listed");
    ctx.sign(privk, &Mechanism::EcdsaHash(HashAlg::Sha384), b"m")
        .await
        .expect("listed too");
    // Deterministic ECDSA (REST) is named by the same CKM_ECDSA_SHA256.
    ctx.sign(privk, &Mechanism::EcdsaDeterministic(HashAlg::Sha256), b"m")
        .await
        .expect("deterministic");
    for m in [
        Mechanism::Ecdsa,
        Mechanism::EcdsaHash(HashAlg::Sha512),
        Mechanism::EcdsaHash(HashAlg::Keccak256),
    ] {
        let e = ctx.sign(privk, &m, &[0u8; 32]).await.unwrap_err();
        assert_eq!(e.rv(), Rv::MechanismInvalid, "{m:?}: {e}");
        assert!(e.detail().contains("CKA_ALLOWED_MECHANISMS"), "{e}");
    }
    // The length query is checked the same way.
    assert_eq!(
        ctx.signature_len(privk, &Mechanism::Ecdsa)
            .await
            .unwrap_err()
            .rv(),
        Rv::MechanismInvalid
    );
    // The public half was generated without a list: it verifies with anything.
    ctx.verify(pubk, &sha256, b"m", &sig).await.expect("verify");

    // Read back as given; the public key's list is empty.
    let r = ctx
        .get_attributes(privk, &[CKA_ALLOWED_MECHANISMS])
        .await
        .expect("get");
    assert_eq!(r, vec![AttrRead::Value(list(&allowed))]);
    let r = ctx
        .get_attributes(pubk, &[CKA_ALLOWED_MECHANISMS])
        .await
        .expect("get");
    assert_eq!(r, vec![AttrRead::Value(Vec::new())]);

    // Never changed after creation, not even by a copy's template; the copy keeps the list.
    let widen = Template::new()
        .with_bytes(
            CKA_ALLOWED_MECHANISMS,
            &list(&[ckm(cryptoki_sys::CKM_ECDSA)]),
        )
        .expect("t");
    assert_eq!(
        ctx.set_attributes(privk, &widen).await.unwrap_err().rv(),
        Rv::AttributeReadOnly
    );
    assert_eq!(
        ctx.copy_object(privk, &widen).await.unwrap_err().rv(),
        Rv::AttributeReadOnly
    );
    let copy = ctx
        .copy_object(privk, &Template::new())
        .await
        .expect("copy");
    assert_eq!(
        ctx.sign(copy, &Mechanism::Ecdsa, &[0u8; 32])
            .await
            .unwrap_err()
            .rv(),
        Rv::MechanismInvalid
    );
    ctx.sign(copy, &sha256, b"m").await.expect("copy signs");

    // Found by its list.
    let find = Template::new()
        .with_bytes(CKA_ALLOWED_MECHANISMS, &list(&allowed))
        .and_then(|t| t.with_ulong(CKA_CLASS, CKO_PRIVATE_KEY))
        .expect("t");
    let mut found = ctx.find_objects(&find, 10).await.expect("find");
    found.sort_unstable();
    let mut want = vec![privk, copy];
    want.sort_unstable();
    assert_eq!(found, want);

    // Kept across a restart of the engine (the record is sealed with it).
    let e2 = f.restart().await;
    let ctx2 = e2.open_context("p1").await.expect("ctx");
    ctx2.login(UserType::User, USER_PIN).await.expect("login");
    assert_eq!(
        ctx2.sign(privk, &Mechanism::Ecdsa, &[0u8; 32])
            .await
            .unwrap_err()
            .rv(),
        Rv::MechanismInvalid
    );
    ctx2.sign(privk, &sha256, b"m")
        .await
        .expect("after restart");
}

#[tokio::test]
async fn wrap_unwrap_derive_and_secret_keys() {
    let f = fixture().await;
    let ctx = f.user().await;
    // A key-encryption key that may only wrap with RFC 5649: both PKCS#11 names of it work,
    // AES-GCM (also a wrapping mechanism) does not.
    let kek_t = aes_template("kek", false)
        .with_bytes(
            CKA_ALLOWED_MECHANISMS,
            &list(&[ckm(cryptoki_sys::CKM_AES_KEY_WRAP_KWP)]),
        )
        .expect("t");
    let kek = ctx
        .generate_key(CKM_AES_KEY_GEN, &kek_t)
        .await
        .expect("kek");
    let target_t = aes_template("target", false)
        .with_bool(CKA_EXTRACTABLE, true)
        .expect("t");
    let target = ctx
        .generate_key(CKM_AES_KEY_GEN, &target_t)
        .await
        .expect("target");
    let wrapped = ctx
        .wrap_key(kek, &Mechanism::AesKeyWrapPad, target)
        .await
        .expect("KWP");
    assert_eq!(
        ctx.wrap_key(kek, &gcm(), target).await.unwrap_err().rv(),
        Rv::MechanismInvalid
    );
    assert_eq!(
        ctx.encrypt(kek, &gcm(), b"data").await.unwrap_err().rv(),
        Rv::MechanismInvalid
    );

    // The unwrapped key takes its own list from the unwrap template.
    let ut = Template::new()
        .with_ulong(CKA_CLASS, CKO_SECRET_KEY)
        .and_then(|t| t.with_ulong(CKA_KEY_TYPE, CKK_AES))
        .and_then(|t| {
            t.with_bytes(
                CKA_ALLOWED_MECHANISMS,
                &list(&[ckm(cryptoki_sys::CKM_AES_GCM)]),
            )
        })
        .and_then(|t| t.with_bytes(CKA_START_DATE, b"20261207"))
        .expect("t");
    let un = ctx
        .unwrap_key(kek, &Mechanism::AesKeyWrapPad, &wrapped, &ut)
        .await
        .expect("unwrap");
    let ct = ctx.encrypt(un, &gcm(), b"data").await.expect("gcm");
    assert_eq!(
        ct,
        ctx.encrypt(target, &gcm(), b"data")
            .await
            .expect("same key")
    );
    assert_eq!(
        ctx.encrypt(un, &Mechanism::AesEcb, &[0u8; 16])
            .await
            .unwrap_err()
            .rv(),
        Rv::MechanismInvalid
    );
    let r = ctx
        .get_attributes(un, &[CKA_ALLOWED_MECHANISMS, CKA_START_DATE])
        .await
        .expect("get");
    assert_eq!(
        r,
        vec![
            AttrRead::Value(list(&[ckm(cryptoki_sys::CKM_AES_GCM)])),
            AttrRead::Value(b"20261207".to_vec()),
        ]
    );

    // An EC key that may only derive: ECDSA is refused, ECDH works and the derived key takes
    // the derive template's list.
    let extra = Template::new()
        .with_bytes(
            CKA_ALLOWED_MECHANISMS,
            &list(&[ckm(cryptoki_sys::CKM_ECDH1_DERIVE)]),
        )
        .and_then(|t| t.with_bool(CKA_DERIVE, true))
        .expect("t");
    let (_, a) = p256_pair(&ctx, "ecdh-a", extra).await;
    let (b_pub, _) = p256_pair(&ctx, "ecdh-b", Template::new()).await;
    assert_eq!(
        ctx.sign(a, &Mechanism::EcdsaHash(HashAlg::Sha256), b"m")
            .await
            .unwrap_err()
            .rv(),
        Rv::KeyFunctionNotPermitted,
        "the usage flags come first"
    );
    let point = match &ctx
        .get_attributes(b_pub, &[CKA_EC_POINT])
        .await
        .expect("point")[0]
    {
        AttrRead::Value(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    let dt = Template::new()
        .with_ulong(CKA_CLASS, CKO_SECRET_KEY)
        .and_then(|t| t.with_ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET))
        .and_then(|t| t.with_ulong(CKA_VALUE_LEN, 32))
        .and_then(|t| {
            t.with_bytes(
                CKA_ALLOWED_MECHANISMS,
                &list(&[ckm(cryptoki_sys::CKM_SHA256_HMAC)]),
            )
        })
        .expect("t");
    let ecdh = Mechanism::Ecdh1Derive(EcdhParams {
        kdf: None,
        shared_data: Vec::new(),
        public_data: point,
    });
    let derived = ctx.derive_key(a, &ecdh, &dt).await.expect("derive");
    ctx.sign(derived, &Mechanism::Hmac(HashAlg::Sha256), b"m")
        .await
        .expect("HMAC-SHA256");
    assert_eq!(
        ctx.sign(derived, &Mechanism::Hmac(HashAlg::Sha512), b"m")
            .await
            .unwrap_err()
            .rv(),
        Rv::MechanismInvalid
    );
}

#[tokio::test]
async fn bad_lists_are_refused_and_create_nothing() {
    let f = fixture().await;
    let ctx = f.user().await;
    let before = ctx
        .find_objects(&Template::new(), 1000)
        .await
        .expect("find")
        .len();
    // Not a whole number of 8-byte values; too long.
    let long: Vec<u64> = (0..300).collect();
    for bad in [vec![1, 2, 3], list(&long)] {
        let t = aes_template("bad", true)
            .with_bytes(CKA_ALLOWED_MECHANISMS, &bad)
            .expect("t");
        assert_eq!(
            ctx.generate_key(CKM_AES_KEY_GEN, &t)
                .await
                .unwrap_err()
                .rv(),
            Rv::AttributeValueInvalid
        );
    }
    // Not a key attribute on a data object.
    let t = Template::new()
        .with_ulong(CKA_CLASS, CKO_DATA)
        .and_then(|t| t.with_bytes(CKA_VALUE, b"v"))
        .and_then(|t| {
            t.with_bytes(
                CKA_ALLOWED_MECHANISMS,
                &list(&[ckm(cryptoki_sys::CKM_AES_GCM)]),
            )
        })
        .expect("t");
    assert_eq!(
        ctx.create_object(&t).await.unwrap_err().rv(),
        Rv::TemplateInconsistent
    );
    assert_eq!(
        ctx.find_objects(&Template::new(), 1000)
            .await
            .expect("find")
            .len(),
        before
    );
    // An empty list is no restriction, and mechanisms the engine does not know are kept.
    let t = aes_template("open", false)
        .with_bytes(CKA_ALLOWED_MECHANISMS, &[])
        .expect("t");
    let k = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("gen");
    ctx.encrypt(k, &gcm(), b"x").await.expect("any mechanism");
    let t = aes_template("foreign", false)
        .with_bytes(
            CKA_ALLOWED_MECHANISMS,
            &list(&[0x8000_1234, ckm(cryptoki_sys::CKM_AES_CBC_PAD)]),
        )
        .expect("t");
    let k = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("gen");
    ctx.encrypt(k, &Mechanism::AesCbcPad { iv: vec![0; 16] }, b"x")
        .await
        .expect("CBC-PAD listed");
    assert_eq!(
        ctx.encrypt(k, &gcm(), b"x").await.unwrap_err().rv(),
        Rv::MechanismInvalid
    );
}

/// Every mechanism of the catalogue that uses a key is named by the engine mechanism that
/// performs it (`ck_types`), so that a key listing it can use it.
#[test]
fn every_catalogue_mechanism_is_named_by_an_engine_mechanism() {
    use tresor_core::crypto::{OaepParams, PssParams};
    let hashes = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha3_224,
        HashAlg::Sha3_256,
        HashAlg::Sha3_384,
        HashAlg::Sha3_512,
    ];
    let pss = |h| PssParams {
        hash: h,
        mgf: h,
        salt_len: 0,
    };
    let mut engine: Vec<Mechanism> = vec![
        Mechanism::RsaPkcs,
        Mechanism::RsaX509,
        Mechanism::RsaPss(pss(HashAlg::Sha256)),
        Mechanism::RsaOaep(OaepParams {
            hash: HashAlg::Sha256,
            mgf: HashAlg::Sha256,
            label: vec![],
        }),
        Mechanism::Ecdsa,
        Mechanism::Eddsa,
        Mechanism::MlDsa { context: vec![] },
        Mechanism::SlhDsa { context: vec![] },
        Mechanism::AesEcb,
        Mechanism::AesCbc { iv: vec![] },
        Mechanism::AesCbcPad { iv: vec![] },
        Mechanism::AesCtr {
            iv: vec![],
            counter_bits: 32,
        },
        gcm(),
        Mechanism::ChaCha20Poly1305 {
            nonce: vec![],
            aad: vec![],
        },
        Mechanism::AesKeyWrap,
        Mechanism::AesKeyWrapPad,
        Mechanism::MlKem,
        Mechanism::Ecdh1Derive(EcdhParams {
            kdf: None,
            shared_data: vec![],
            public_data: vec![],
        }),
    ];
    for h in hashes {
        engine.extend([
            Mechanism::RsaPkcsHash(h),
            Mechanism::RsaPssHash(h, pss(h)),
            Mechanism::EcdsaHash(h),
            Mechanism::Hmac(h),
            Mechanism::Digest(h),
        ]);
    }
    let named: Vec<u64> = engine.iter().flat_map(|m| m.ck_types()).collect();
    let generation = ckm(cryptoki_sys::CKF_GENERATE | cryptoki_sys::CKF_GENERATE_KEY_PAIR);
    let mut checked = 0;
    for info in tresor_core::engine::mechanisms::catalogue() {
        if info.flags & generation != 0 {
            continue;
        }
        assert!(
            named.contains(&info.mechanism),
            "{:#x} has no engine mechanism that names it",
            info.mechanism
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
    // Both names of RFC 5649 wrapping, and none for Keccak.
    let kwp = Mechanism::AesKeyWrapPad.ck_types();
    assert!(kwp.contains(&ckm(cryptoki_sys::CKM_AES_KEY_WRAP_PAD)));
    assert!(kwp.contains(&ckm(cryptoki_sys::CKM_AES_KEY_WRAP_KWP)));
    assert!(Mechanism::EcdsaHash(HashAlg::Keccak256)
        .ck_types()
        .is_empty());
}

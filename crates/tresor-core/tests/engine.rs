//! Engine behaviour: logins, objects and their rules, operations, policies, attestation, audit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{GcmParams, HashAlg, Mechanism};
use tresor_core::error::vendor;
use tresor_core::object::AttrRead;
use tresor_core::template::Template;
use tresor_core::{Rv, UserType};

#[tokio::test]
async fn login_lockout_and_pin_management() {
    let f = fixture().await;
    let ctx = f.engine.open_context("p1").await.expect("ctx");
    assert_eq!(
        ctx.login(UserType::User, b"wrong-pin")
            .await
            .unwrap_err()
            .rv(),
        Rv::PinIncorrect
    );
    assert_eq!(
        ctx.login(UserType::User, b"wrong-pin")
            .await
            .unwrap_err()
            .rv(),
        Rv::PinIncorrect
    );
    // Third wrong PIN reaches the limit of 3.
    assert_eq!(
        ctx.login(UserType::User, b"wrong-pin")
            .await
            .unwrap_err()
            .rv(),
        Rv::PinLocked
    );
    assert_eq!(
        ctx.login(UserType::User, USER_PIN).await.unwrap_err().rv(),
        Rv::PinLocked
    );
    // The SO resets the user PIN, which clears the lockout.
    let so = f.engine.open_context("p1").await.expect("ctx");
    so.login(UserType::SecurityOfficer, SO_PIN)
        .await
        .expect("so login");
    assert_eq!(
        so.generate_key(CKM_AES_KEY_GEN, &aes_template("x", false))
            .await
            .unwrap_err()
            .rv(),
        Rv::UserNotLoggedIn
    );
    so.init_pin(b"new-user-pin").await.expect("init pin");
    ctx.login(UserType::User, b"new-user-pin")
        .await
        .expect("login with new pin");
    assert_eq!(
        ctx.login(UserType::User, b"new-user-pin")
            .await
            .unwrap_err()
            .rv(),
        Rv::UserAlreadyLoggedIn
    );
    ctx.set_pin(b"new-user-pin", b"newer-pin")
        .await
        .expect("set pin");
    assert_eq!(
        ctx.set_pin(b"bad-old-pin", b"x-pin-123")
            .await
            .unwrap_err()
            .rv(),
        Rv::PinIncorrect
    );
    assert_eq!(
        ctx.set_pin(b"newer-pin", b"ab").await.unwrap_err().rv(),
        Rv::PinLenRange
    );
    // A wrong old PIN counts towards the lockout too; an admin resets a locked SO PIN.
    let so2 = f.engine.open_context("p1").await.expect("ctx");
    for _ in 0..3 {
        let _ = so2.login(UserType::SecurityOfficer, b"wrong-so-pin").await;
    }
    assert_eq!(
        so2.login(UserType::SecurityOfficer, SO_PIN)
            .await
            .unwrap_err()
            .rv(),
        Rv::PinLocked
    );
    f.engine
        .reset_so_pin("p1", b"new-so-pin")
        .await
        .expect("reset");
    so2.login(UserType::SecurityOfficer, b"new-so-pin")
        .await
        .expect("SO login after reset");
    ctx.logout().expect("logout");
    // Login state is per context: another context is not logged in.
    let other = f.engine.open_context("p1").await.expect("ctx");
    assert_eq!(other.logged_in(), None);
    other
        .login(UserType::User, b"newer-pin")
        .await
        .expect("login");
}

#[tokio::test]
async fn attribute_rules_are_enforced() {
    let f = fixture().await;
    let ctx = f.user().await;
    let k = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("aes", true))
        .await
        .expect("gen");
    let r = ctx
        .get_attributes(
            k,
            &[
                CKA_SENSITIVE,
                CKA_EXTRACTABLE,
                CKA_ALWAYS_SENSITIVE,
                CKA_NEVER_EXTRACTABLE,
                CKA_LOCAL,
                CKA_VALUE,
            ],
        )
        .await
        .expect("get");
    assert_eq!(r[0], AttrRead::Value(vec![1]));
    assert_eq!(r[1], AttrRead::Value(vec![0]));
    assert_eq!(r[2], AttrRead::Value(vec![1]));
    assert_eq!(r[3], AttrRead::Value(vec![1]));
    assert_eq!(r[4], AttrRead::Value(vec![1]));
    assert_eq!(r[5], AttrRead::Sensitive);
    // One-way rules.
    let t = Template::new().with_bool(CKA_SENSITIVE, false).expect("t");
    assert_eq!(
        ctx.set_attributes(k, &t).await.unwrap_err().rv(),
        Rv::AttributeReadOnly
    );
    let t = Template::new().with_bool(CKA_EXTRACTABLE, true).expect("t");
    assert_eq!(
        ctx.set_attributes(k, &t).await.unwrap_err().rv(),
        Rv::AttributeReadOnly
    );
    let t = Template::new()
        .with_bool(CKA_NEVER_EXTRACTABLE, false)
        .expect("t");
    assert_eq!(
        ctx.set_attributes(k, &t).await.unwrap_err().rv(),
        Rv::AttributeReadOnly
    );
    // Usage flags gate operations.
    let t = Template::new().with_bool(CKA_ENCRYPT, false).expect("t");
    ctx.set_attributes(k, &t).await.expect("harden usage");
    let gcm = Mechanism::AesGcm(GcmParams {
        iv: vec![7; 12],
        aad: vec![],
        tag_bits: 128,
    });
    assert_eq!(
        ctx.encrypt(k, &gcm, b"data").await.unwrap_err().rv(),
        Rv::KeyFunctionNotPermitted
    );
    // Template validation: a usage the class can never have is refused (a secret key never
    // encapsulates); one the class can have but the key type cannot perform is kept and grants
    // nothing.
    let odd = aes_template("s", true)
        .with_bool(CKA_SIGN, true)
        .expect("t");
    let s = ctx.generate_key(CKM_AES_KEY_GEN, &odd).await.expect("kept");
    assert_eq!(
        ctx.sign(s, &Mechanism::Ecdsa, &[0u8; 32])
            .await
            .unwrap_err()
            .rv(),
        Rv::KeyTypeInconsistent
    );
    let bad = aes_template("b", true)
        .with_bool(CKA_ENCAPSULATE, true)
        .expect("t");
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &bad)
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateInconsistent
    );
    let bad = Template::new().with_bool(CKA_TOKEN, true).expect("t");
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &bad)
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateIncomplete
    );
    let bad = aes_template("b", true)
        .with_ulong(CKA_KEY_TYPE, CKK_RSA)
        .expect("t");
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &bad)
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateInconsistent
    );
    let bad = aes_template("b", true)
        .with_bool(CKA_LOCAL, true)
        .expect("t");
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &bad)
            .await
            .unwrap_err()
            .rv(),
        Rv::AttributeReadOnly
    );
    let bad = Template::new().with_ulong(CKA_VALUE_LEN, 17).expect("t");
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &bad)
            .await
            .unwrap_err()
            .rv(),
        Rv::KeySizeRange
    );
    // Non-modifiable, non-destroyable, non-copyable objects.
    let t = aes_template("fixed", true)
        .with_bool(CKA_MODIFIABLE, false)
        .and_then(|t| t.with_bool(CKA_DESTROYABLE, false))
        .and_then(|t| t.with_bool(CKA_COPYABLE, false))
        .expect("t");
    let fixed = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("gen");
    let lbl = Template::new()
        .with_bytes(CKA_LABEL, b"renamed")
        .expect("t");
    assert_eq!(
        ctx.set_attributes(fixed, &lbl).await.unwrap_err().rv(),
        Rv::ActionProhibited
    );
    assert_eq!(
        ctx.destroy_object(fixed).await.unwrap_err().rv(),
        Rv::ActionProhibited
    );
    assert_eq!(
        ctx.copy_object(fixed, &Template::new())
            .await
            .unwrap_err()
            .rv(),
        Rv::ActionProhibited
    );
    // An extractable, non-sensitive key reveals its value; once sensitive it never does again.
    let t = aes_template("open", true)
        .with_bool(CKA_SENSITIVE, false)
        .and_then(|t| t.with_bool(CKA_EXTRACTABLE, true))
        .expect("t");
    let open = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("gen");
    assert!(
        matches!(&ctx.get_attributes(open, &[CKA_VALUE]).await.expect("get")[0], AttrRead::Value(v) if v.len() == 32)
    );
    ctx.set_attributes(
        open,
        &Template::new().with_bool(CKA_SENSITIVE, true).expect("t"),
    )
    .await
    .expect("harden");
    assert_eq!(
        ctx.get_attributes(open, &[CKA_VALUE]).await.expect("get")[0],
        AttrRead::Sensitive
    );
    let r = ctx
        .get_attributes(open, &[CKA_ALWAYS_SENSITIVE])
        .await
        .expect("get");
    assert_eq!(
        r[0],
        AttrRead::Value(vec![0]),
        "always_sensitive stays false after hardening"
    );
}

#[tokio::test]
async fn sign_verify_find_copy_destroy_and_session_objects() {
    let f = fixture().await;
    let ctx = f.user().await;
    let (pubk, privk) = p256_pair(&ctx, "signer", Template::new()).await;
    let m = Mechanism::EcdsaHash(HashAlg::Sha256);
    let sig = ctx.sign(privk, &m, b"hello").await.expect("sign");
    ctx.verify(pubk, &m, b"hello", &sig).await.expect("verify");
    assert_eq!(
        ctx.verify(pubk, &m, b"hellO", &sig).await.unwrap_err().rv(),
        Rv::SignatureInvalid
    );
    // Wrong key class for the operation.
    assert_eq!(
        ctx.sign(pubk, &m, b"x").await.unwrap_err().rv(),
        Rv::KeyTypeInconsistent
    );
    // Find by label and class.
    let t = Template::new()
        .with_bytes(CKA_LABEL, b"signer")
        .and_then(|t| t.with_ulong(CKA_CLASS, CKO_PRIVATE_KEY))
        .expect("t");
    assert_eq!(ctx.find_objects(&t, 10).await.expect("find"), vec![privk]);
    // Private objects are invisible without login.
    let anon = f.engine.open_context("p1").await.expect("ctx");
    assert!(anon.find_objects(&t, 10).await.expect("find").is_empty());
    assert_eq!(
        anon.sign(privk, &m, b"x").await.unwrap_err().rv(),
        Rv::UserNotLoggedIn
    );
    // Session objects live in their context only.
    let s = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("sess", false))
        .await
        .expect("gen");
    assert!(s < 0);
    let other = f.user().await;
    assert_eq!(
        other
            .get_attributes(s, &[CKA_LABEL])
            .await
            .unwrap_err()
            .rv(),
        Rv::ObjectHandleInvalid
    );
    // Copy and destroy.
    let copy = ctx
        .copy_object(
            privk,
            &Template::new().with_bytes(CKA_LABEL, b"copy").expect("t"),
        )
        .await
        .expect("copy");
    let sig2 = ctx.sign(copy, &m, b"hello").await.expect("sign with copy");
    ctx.verify(pubk, &m, b"hello", &sig2)
        .await
        .expect("verify copy sig");
    ctx.destroy_object(copy).await.expect("destroy");
    assert_eq!(
        ctx.sign(copy, &m, b"x").await.unwrap_err().rv(),
        Rv::ObjectHandleInvalid
    );
    // Usage counter counts uses.
    let r = ctx
        .get_attributes(privk, &[CKA_TRESOR_USAGE_COUNT])
        .await
        .expect("get");
    assert_eq!(r[0], AttrRead::Value(1u64.to_ne_bytes().to_vec()));
}

#[tokio::test]
async fn wrap_unwrap_and_extractability() {
    let f = fixture().await;
    let ctx = f.user().await;
    let kek = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("kek", true))
        .await
        .expect("kek");
    let t = aes_template("target", true)
        .with_bool(CKA_EXTRACTABLE, true)
        .expect("t");
    let target = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("target");
    let locked = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("locked", true))
        .await
        .expect("locked");
    assert_eq!(
        ctx.wrap_key(kek, &Mechanism::AesKeyWrapPad, locked)
            .await
            .unwrap_err()
            .rv(),
        Rv::KeyUnextractable
    );
    let wrapped = ctx
        .wrap_key(kek, &Mechanism::AesKeyWrapPad, target)
        .await
        .expect("wrap");
    let ut = Template::new()
        .with_ulong(CKA_CLASS, CKO_SECRET_KEY)
        .and_then(|t| t.with_ulong(CKA_KEY_TYPE, CKK_AES))
        .and_then(|t| t.with_bool(CKA_TOKEN, true))
        .and_then(|t| t.with_bytes(CKA_LABEL, b"unwrapped"))
        .expect("t");
    let un = ctx
        .unwrap_key(kek, &Mechanism::AesKeyWrapPad, &wrapped, &ut)
        .await
        .expect("unwrap");
    let gcm = Mechanism::AesGcm(GcmParams {
        iv: vec![1; 12],
        aad: b"aad".to_vec(),
        tag_bits: 128,
    });
    let ct = ctx
        .encrypt(target, &gcm, b"secret message")
        .await
        .expect("enc");
    assert_eq!(
        ctx.decrypt(un, &gcm, &ct).await.expect("dec").as_slice(),
        b"secret message"
    );
    let r = ctx
        .get_attributes(
            un,
            &[CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE],
        )
        .await
        .expect("get");
    assert_eq!(r, vec![AttrRead::Value(vec![0]); 3]);
    let mut bad = wrapped.clone();
    bad[3] ^= 1;
    assert!(matches!(
        ctx.unwrap_key(kek, &Mechanism::AesKeyWrapPad, &bad, &ut)
            .await
            .unwrap_err()
            .rv(),
        Rv::WrappedKeyInvalid | Rv::EncryptedDataInvalid
    ));
    // wrap_with_trusted needs a trusted wrapping key.
    let t = aes_template("wwt", true)
        .with_bool(CKA_EXTRACTABLE, true)
        .and_then(|t| t.with_bool(CKA_WRAP_WITH_TRUSTED, true))
        .expect("t");
    let wwt = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.expect("gen");
    assert_eq!(
        ctx.wrap_key(kek, &Mechanism::AesKeyWrapPad, wwt)
            .await
            .unwrap_err()
            .rv(),
        Rv::KeyNotWrappable
    );
}

fn approver_policy(blocked: bool, unblock_rule: &str) -> Vec<u8> {
    let k = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("g"),
    )
    .expect("k");
    let spki = openssl::pkey::PKey::from_ec_key(k)
        .expect("pk")
        .public_key_to_der()
        .expect("der");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    format!(
        r#"{{"ruleUse":{{"tokens":[{{"name":"t","timelock":0,"timeout":600,"groups":[{{"name":"g","quorum":1,"approvals":[{{"type":"public_key","name":"a","value":"{b64}"}}]}}]}}]}},"ruleBlock":null,"ruleUnblock":{unblock_rule},"ruleModify":null,"keyStatus":{{"blocked":{blocked}}}}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn policies_fail_closed_and_block() {
    let f = fixture().await;
    let ctx = f.user().await;
    let m = Mechanism::EcdsaHash(HashAlg::Sha256);
    // A use rule that needs approvals: the key refuses use until approvals exist.
    let t = Template::new()
        .with_bytes(CKA_TRESOR_POLICY, &approver_policy(false, "null"))
        .expect("t");
    let (_, ska) = p256_pair(&ctx, "ska", t).await;
    assert_eq!(
        ctx.sign(ska, &m, b"x").await.unwrap_err().rv(),
        Rv::Vendor(vendor::APPROVAL_REQUIRED)
    );
    // A policy makes the key unextractable forever.
    let t = Template::new()
        .with_bytes(CKA_TRESOR_POLICY, &approver_policy(false, "null"))
        .and_then(|t| t.with_bool(CKA_EXTRACTABLE, true))
        .expect("t");
    let pub_t = Template::new()
        .with_bytes(CKA_EC_PARAMS, &p256_params())
        .expect("t");
    assert_eq!(
        ctx.generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &t)
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateInconsistent
    );
    // Policy with a null use rule: usable; block and unblock without approvals.
    let policy = br#"{"ruleUse":null,"ruleBlock":null,"ruleUnblock":{"tokens":[]},"ruleModify":null,"keyStatus":{"blocked":false}}"#;
    let t = Template::new()
        .with_bytes(CKA_TRESOR_POLICY, policy)
        .expect("t");
    let (_, k) = p256_pair(&ctx, "blockable", t).await;
    ctx.sign(k, &m, b"x").await.expect("usable");
    ctx.block_key(k).await.expect("block");
    assert_eq!(
        ctx.sign(k, &m, b"x").await.unwrap_err().rv(),
        Rv::Vendor(vendor::KEY_BLOCKED)
    );
    ctx.unblock_key(k).await.expect("unblock");
    ctx.sign(k, &m, b"x").await.expect("usable again");
    // A key without a policy cannot be blocked.
    let (_, plain) = p256_pair(&ctx, "plain", Template::new()).await;
    assert_eq!(
        ctx.block_key(plain).await.unwrap_err().rv(),
        Rv::KeyFunctionNotPermitted
    );
    // Malformed policy JSON.
    let t = Template::new()
        .with_bytes(CKA_TRESOR_POLICY, b"{not json")
        .expect("t");
    let pub_t = Template::new()
        .with_bytes(CKA_EC_PARAMS, &p256_params())
        .expect("t");
    assert_eq!(
        ctx.generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &t)
            .await
            .unwrap_err()
            .rv(),
        Rv::AttributeValueInvalid
    );
}

#[tokio::test]
async fn attestation_verifies_against_the_cluster_root() {
    let f = fixture().await;
    let ctx = f.user().await;
    let t = Template::new()
        .with_bytes(CKA_TRESOR_POLICY, &approver_policy(false, "null"))
        .expect("t");
    let (_, k) = p256_pair(&ctx, "attested", t).await;
    let a = ctx.attest(k).await.expect("attest");
    assert!(a.xml.starts_with("<?xml"));
    assert!(a.xml.contains("<private_key creation=\"generated\">"));
    assert!(a
        .xml
        .contains("<never_extractable>true</never_extractable>"));
    assert!(a.xml.contains("<rule_use><token name=\"t\">"));
    assert_eq!(a.attestation_key_name, "attestation-key");
    let root =
        openssl::x509::X509::from_der(&f.engine.root_cert_der().expect("root")).expect("x509");
    tresor_core::attest::verify_attestation(
        a.xml.as_bytes(),
        &a.signature,
        a.chain_pem.as_bytes(),
        &root,
    )
    .expect("verifies");
    let tampered = a.xml.replace("<sign>true</sign>", "<sign>false</sign>");
    assert!(tresor_core::attest::verify_attestation(
        tampered.as_bytes(),
        &a.signature,
        a.chain_pem.as_bytes(),
        &root
    )
    .is_err());
    // Another cluster's root does not vouch for this chain.
    let other_key = tresor_core::attest::new_p256_key().expect("k");
    let other =
        tresor_core::attest::issue_cert("other", &other_key, None, Some(&other_key), Some(1), 1)
            .expect("cert");
    assert!(tresor_core::attest::verify_attestation(
        a.xml.as_bytes(),
        &a.signature,
        a.chain_pem.as_bytes(),
        &other
    )
    .is_err());
}

#[tokio::test]
async fn audit_chain_records_and_verifies() {
    let f = fixture().await;
    let ctx = f.user().await;
    let (_, k) = p256_pair(&ctx, "a", Template::new()).await;
    for _ in 0..5 {
        ctx.sign(k, &Mechanism::EcdsaHash(HashAlg::Sha256), b"x")
            .await
            .expect("sign");
    }
    f.engine.flush_audit().await.expect("flush");
    let root =
        openssl::x509::X509::from_der(&f.engine.root_cert_der().expect("root")).expect("x509");
    let pid = ctx.partition_id();
    let rows = f.store.audit_range(pid, 1, 1000).await.expect("rows");
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert!(actions.contains(&"login"));
    assert!(actions.contains(&"key.generate_pair"));
    let signs: u64 = rows
        .iter()
        .filter(|r| r.action == "key.sign")
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.detail).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(signs, 5, "every use is counted in the chain");
    let cps = f.store.checkpoints(pid).await.expect("cps");
    let report =
        tresor_core::audit::verify_chain(pid, rows.clone(), &cps, &root).expect("chain ok");
    assert_eq!(report.entries, rows.len() as i64);
    // Edit an entry: named as the first bad one.
    let mut edited = rows.clone();
    edited[2].detail = "{\"forged\":true}".into();
    let fault = tresor_core::audit::verify_chain(pid, edited, &cps, &root).unwrap_err();
    assert_eq!(fault.seq, 3);
    // Drop an entry.
    let mut gap = rows.clone();
    gap.remove(1);
    assert_eq!(
        tresor_core::audit::verify_chain(pid, gap, &cps, &root)
            .unwrap_err()
            .seq,
        2
    );
    // Truncate below the last checkpoint.
    let mut short = rows.clone();
    short.pop();
    assert!(tresor_core::audit::verify_chain(pid, short, &cps, &root).is_err());
    // The cluster chain (partition 0) verifies too.
    let crow = f.store.audit_range(0, 1, 100).await.expect("rows");
    let ccp = f.store.checkpoints(0).await.expect("cps");
    tresor_core::audit::verify_chain(0, crow, &ccp, &root).expect("cluster chain");
}

#[tokio::test]
async fn keys_survive_restart_and_sealing() {
    let f = fixture().await;
    let ctx = f.user().await;
    let (pubk, privk) = p256_pair(&ctx, "persist", Template::new()).await;
    let m = Mechanism::EcdsaHash(HashAlg::Sha256);
    f.engine.seal().await.expect("seal");
    // Sealed: nothing is usable, and nothing reloads behind the barrier.
    assert_eq!(
        ctx.get_attributes(privk, &[CKA_LABEL])
            .await
            .unwrap_err()
            .rv(),
        Rv::Vendor(vendor::SEALED)
    );
    assert_eq!(
        ctx.sign(privk, &m, b"x").await.unwrap_err().rv(),
        Rv::Vendor(vendor::SEALED)
    );
    let e2 = f.restart().await;
    let ctx2 = e2.open_context("p1").await.expect("ctx");
    ctx2.login(UserType::User, USER_PIN).await.expect("login");
    let sig = ctx2.sign(privk, &m, b"after restart").await.expect("sign");
    ctx2.verify(pubk, &m, b"after restart", &sig)
        .await
        .expect("verify");
    // Partition administration.
    assert_eq!(
        e2.create_partition("p1", SO_PIN, None)
            .await
            .unwrap_err()
            .rv(),
        Rv::Vendor(vendor::ALREADY_EXISTS)
    );
    assert_eq!(
        e2.create_partition("bad name!", SO_PIN, None)
            .await
            .unwrap_err()
            .rv(),
        Rv::ArgumentsBad
    );
    e2.create_partition("p2", SO_PIN, None).await.expect("p2");
    let c = e2.open_context("p2").await.expect("ctx");
    assert_eq!(
        c.login(UserType::User, USER_PIN).await.unwrap_err().rv(),
        Rv::UserPinNotInitialized
    );
    // Tenant boundary: p2 cannot reach p1's key handles.
    c.login(UserType::SecurityOfficer, SO_PIN)
        .await
        .expect("so");
    c.init_pin(USER_PIN).await.expect("init");
    c.logout().expect("logout");
    c.login(UserType::User, USER_PIN).await.expect("login");
    assert_eq!(
        c.sign(privk, &m, b"x").await.unwrap_err().rv(),
        Rv::ObjectHandleInvalid
    );
    e2.delete_partition("p2").await.expect("delete");
    assert!(c.sign(privk, &m, b"x").await.is_err());
    assert_eq!(e2.list_partitions().await.expect("list").len(), 1);
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let f = fixture().await;
    let ctx = f.user().await;
    let before = f
        .store
        .count_objects(ctx.partition_id())
        .await
        .expect("count");
    let bad = Template::new()
        .with_ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .and_then(|t| t.with_ulong(CKA_KEY_TYPE, CKK_EC))
        .expect("t");
    assert_eq!(
        ctx.create_object(&bad).await.unwrap_err().rv(),
        Rv::TemplateIncomplete
    );
    let bad = Template::new()
        .with_ulong(CKA_CLASS, CKO_SECRET_KEY)
        .and_then(|t| t.with_ulong(CKA_KEY_TYPE, CKK_AES))
        .and_then(|t| t.with_bytes(CKA_VALUE, &[1u8; 15]))
        .and_then(|t| t.with_bool(CKA_TOKEN, true))
        .expect("t");
    assert_eq!(
        ctx.create_object(&bad).await.unwrap_err().rv(),
        Rv::AttributeValueInvalid
    );
    let bad = Template::new()
        .with_ulong(CKA_CLASS, CKO_CERTIFICATE)
        .and_then(|t| t.with_bytes(CKA_VALUE, b"not a certificate"))
        .and_then(|t| t.with_bool(CKA_TOKEN, true))
        .expect("t");
    assert_eq!(
        ctx.create_object(&bad).await.unwrap_err().rv(),
        Rv::AttributeValueInvalid
    );
    let pub_t = Template::new()
        .with_bytes(CKA_EC_PARAMS, &[0x06, 0x03, 0x2b, 0x65, 0x7f])
        .expect("t");
    assert_eq!(
        ctx.generate_key_pair(CKM_EC_KEY_PAIR_GEN, &pub_t, &Template::new())
            .await
            .unwrap_err()
            .rv(),
        Rv::CurveNotSupported
    );
    let pub_t = Template::new()
        .with_ulong(CKA_MODULUS_BITS, 1024)
        .expect("t");
    assert_eq!(
        ctx.generate_key_pair(CKM_RSA_PKCS_KEY_PAIR_GEN, &pub_t, &Template::new())
            .await
            .unwrap_err()
            .rv(),
        Rv::KeySizeRange
    );
    assert_eq!(
        ctx.generate_key(0x7777, &aes_template("x", true))
            .await
            .unwrap_err()
            .rv(),
        Rv::MechanismInvalid
    );
    assert_eq!(
        f.store
            .count_objects(ctx.partition_id())
            .await
            .expect("count"),
        before
    );
    // Import an EC private key from its components, and a certificate.
    let k = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("g"),
    )
    .expect("k");
    let t = Template::new()
        .with_ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .and_then(|t| t.with_ulong(CKA_KEY_TYPE, CKK_EC))
        .and_then(|t| t.with_bytes(CKA_EC_PARAMS, &p256_params()))
        .and_then(|t| t.with_bytes(CKA_VALUE, &k.private_key().to_vec()))
        .and_then(|t| t.with_bool(CKA_TOKEN, true))
        .expect("t");
    let imported = ctx.create_object(&t).await.expect("import");
    let r = ctx
        .get_attributes(imported, &[CKA_LOCAL, CKA_NEVER_EXTRACTABLE])
        .await
        .expect("get");
    assert_eq!(r, vec![AttrRead::Value(vec![0]), AttrRead::Value(vec![0])]);
}

//! Changing a key's approval policy (Securosys modify): only SKA keys, fail closed when the
//! modify rule needs approvals, the blocked state stays with block / unblock, audited, attested.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tresor_core::ck::*;
use tresor_core::error::vendor;
use tresor_core::template::Template;
use tresor_core::Rv;

fn approver() -> String {
    let k = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let spki = openssl::pkey::PKey::from_ec_key(k)
        .unwrap()
        .public_key_to_der()
        .unwrap();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(spki)
}

fn rule(name: &str) -> String {
    format!(
        r#"{{"tokens":[{{"name":"{name}","timelock":0,"timeout":600,"groups":[{{"name":"g","quorum":1,"approvals":[{{"type":"public_key","name":"a","value":"{}"}}]}}]}}]}}"#,
        approver()
    )
}

fn policy(modify: &str, unblock: &str, status: &str) -> Vec<u8> {
    format!(
        r#"{{"ruleUse":null,"ruleBlock":null,"ruleUnblock":{unblock},"ruleModify":{modify}{status}}}"#
    )
    .into_bytes()
}

async fn ska_key(ctx: &tresor_core::Context, label: &str, p: &[u8]) -> i64 {
    let t = aes_template(label, true)
        .with_bytes(CKA_TRESOR_POLICY, p)
        .unwrap();
    ctx.generate_key(CKM_AES_KEY_GEN, &t).await.unwrap()
}

#[tokio::test]
async fn policies_change_under_the_rules() {
    let f = fixture().await;
    let ctx = f.user().await;
    let key = ska_key(&ctx, "ska", &policy("null", "null", "")).await;
    // A new policy with a use rule: attested and enforced at once.
    let new = policy("null", "null", r#","keyStatus":{"blocked":false}"#);
    let with_use = String::from_utf8(new.clone())
        .unwrap()
        .replace(r#""ruleUse":null"#, &format!(r#""ruleUse":{}"#, rule("u")));
    ctx.modify_policy(key, with_use.as_bytes()).await.unwrap();
    let att = ctx.attest(key).await.unwrap();
    assert!(att.xml.contains(r#"<token name="u">"#), "{}", att.xml);
    assert_eq!(
        ctx.encrypt(key, &tresor_core::crypto::Mechanism::AesEcb, &[0u8; 16])
            .await
            .map(|_| ()),
        Ok(()),
        "encrypt is not a governed use"
    );
    assert_eq!(
        ctx.decrypt(key, &tresor_core::crypto::Mechanism::AesEcb, &[0u8; 16])
            .await
            .unwrap_err()
            .rv(),
        Rv::Vendor(vendor::APPROVAL_REQUIRED)
    );
    // Back to no use rule.
    ctx.modify_policy(key, &policy("null", "null", ""))
        .await
        .unwrap();
    ctx.decrypt(key, &tresor_core::crypto::Mechanism::AesEcb, &[0u8; 16])
        .await
        .unwrap();
    // keyStatus must state the current blocked state: block / unblock change it.
    assert_eq!(
        ctx.modify_policy(
            key,
            &policy("null", &rule("ub"), r#","keyStatus":{"blocked":true}"#)
        )
        .await
        .unwrap_err()
        .rv(),
        Rv::TemplateInconsistent
    );
    // A modify rule that needs approvals: the change is refused (fail closed), nothing changes.
    ctx.modify_policy(key, &policy(&rule("m"), "null", ""))
        .await
        .unwrap();
    let before = ctx.attest(key).await.unwrap().xml;
    assert_eq!(
        ctx.modify_policy(key, &policy("null", "null", ""))
            .await
            .unwrap_err()
            .rv(),
        Rv::Vendor(vendor::APPROVAL_REQUIRED)
    );
    let after = ctx.attest(key).await.unwrap().xml;
    let strip = |x: &str| x.split("<attest_time>").next().unwrap().to_owned();
    assert_eq!(strip(&before), strip(&after));
    // Bad JSON or an invalid rule: refused.
    let other = ska_key(&ctx, "ska2", &policy("null", "null", "")).await;
    for bad in [
        &b"not json"[..],
        br#"{"ruleUse":{"tokens":[{"name":"","groups":[]}]}}"#,
    ] {
        assert_eq!(
            ctx.modify_policy(other, bad).await.unwrap_err().rv(),
            Rv::AttributeValueInvalid
        );
    }
    // Keys created without a policy never get one.
    let plain = ctx
        .generate_key(CKM_AES_KEY_GEN, &aes_template("plain", true))
        .await
        .unwrap();
    assert_eq!(
        ctx.modify_policy(plain, &policy("null", "null", ""))
            .await
            .unwrap_err()
            .rv(),
        Rv::KeyFunctionNotPermitted
    );
    // The changes are in the audit chain.
    f.engine.flush_audit().await.unwrap();
    let rows = f
        .store
        .audit_range(ctx.partition_id(), 1, 10_000)
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r.action == "key.modify_policy")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_blocked_key_keeps_its_state_and_needs_an_unblock_rule() {
    let f = fixture().await;
    let ctx = f.user().await;
    let key = ska_key(&ctx, "b", &policy("null", r#"{"tokens":[]}"#, "")).await;
    ctx.block_key(key).await.unwrap();
    // Without keyStatus the blocked state is kept; a policy without ruleUnblock is refused.
    assert_eq!(
        ctx.modify_policy(key, &policy("null", "null", ""))
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateInconsistent
    );
    assert_eq!(
        ctx.modify_policy(
            key,
            &policy(
                "null",
                r#"{"tokens":[]}"#,
                r#","keyStatus":{"blocked":false}"#
            )
        )
        .await
        .unwrap_err()
        .rv(),
        Rv::TemplateInconsistent,
        "unblocking by modify is refused"
    );
    ctx.modify_policy(
        key,
        &policy(
            "null",
            r#"{"tokens":[]}"#,
            r#","keyStatus":{"blocked":true}"#,
        ),
    )
    .await
    .unwrap();
    let (rec, _) = ctx.record(key).await.unwrap();
    assert!(rec.blocked());
    let _ = Template::new();
}

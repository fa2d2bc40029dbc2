//! Many callers at once: the engine is Send + Sync and serves concurrent key uses and state
//! changes without losing audit entries or usage counts.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tresor_core::ck::*;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::object::AttrRead;
use tresor_core::template::Template;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signing_and_key_creation() {
    let f = fixture().await;
    let ctx = f.user().await;
    let (pubk, privk) = p256_pair(&ctx, "shared", Template::new()).await;
    let tasks = 8;
    let per_task = 100;
    let mut handles = Vec::new();
    for i in 0..tasks {
        let engine = f.engine.clone();
        handles.push(tokio::spawn(async move {
            let c = engine.open_context("p1").await.unwrap();
            c.login(tresor_core::UserType::User, USER_PIN)
                .await
                .unwrap();
            let m = Mechanism::EcdsaHash(HashAlg::Sha256);
            for j in 0..per_task {
                let msg = format!("task {i} message {j}");
                let sig = c.sign(privk, &m, msg.as_bytes()).await.unwrap();
                c.verify(pubk, &m, msg.as_bytes(), &sig).await.unwrap();
                if j % 25 == 0 {
                    c.generate_key(CKM_AES_KEY_GEN, &aes_template(&format!("k-{i}-{j}"), true))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    f.engine.flush_audit().await.unwrap();
    // Every use counted, every entry chained.
    let r = ctx
        .get_attributes(privk, &[CKA_TRESOR_USAGE_COUNT])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        AttrRead::Value(((tasks * per_task) as u64).to_ne_bytes().to_vec())
    );
    let pid = ctx.partition_id();
    let mut rows = Vec::new();
    let mut from = 1;
    loop {
        let chunk = f.store.audit_range(pid, from, 1000).await.unwrap();
        let Some(last) = chunk.last() else { break };
        from = last.seq + 1;
        rows.extend(chunk);
    }
    let signs: u64 = rows
        .iter()
        .filter(|r| r.action == "key.sign")
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.detail).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(signs, (tasks * per_task) as u64);
    assert_eq!(
        rows.iter().filter(|r| r.action == "key.generate").count(),
        tasks * 4
    );
    let root = openssl::x509::X509::from_der(&f.engine.root_cert_der().unwrap()).unwrap();
    let cps = f.store.checkpoints(pid).await.unwrap();
    tresor_core::audit::verify_chain(pid, rows, &cps, &root).unwrap();
    // After a restart the stored usage counter is the same.
    let e2 = f.restart().await;
    let c2 = e2.open_context("p1").await.unwrap();
    c2.login(tresor_core::UserType::User, USER_PIN)
        .await
        .unwrap();
    let r = c2
        .get_attributes(privk, &[CKA_TRESOR_USAGE_COUNT])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        AttrRead::Value(((tasks * per_task) as u64).to_ne_bytes().to_vec())
    );
}

/// Two engines (two processes or nodes) on one store: a write based on stale state is
/// refused by the store without forking the audit chain, and the engine rebuilds it on the
/// refreshed state, so the caller sees success.
#[tokio::test]
async fn two_writers_on_one_store_never_fork() {
    let f = fixture().await;
    let a = f.user().await;
    let b_engine = f.restart().await;
    let b = b_engine.open_context("p1").await.unwrap();
    b.login(tresor_core::UserType::User, USER_PIN)
        .await
        .unwrap();
    // B's login moved the partition's audit head, so A's view is stale: A's write conflicts
    // in the store (nothing written) and is rebuilt. Then B is stale in turn.
    for (ctx, label) in [(&a, "from-a"), (&b, "from-b"), (&a, "from-a-2")] {
        ctx.generate_key(CKM_AES_KEY_GEN, &aes_template(label, true))
            .await
            .unwrap();
    }
    let t = Template::new().with_bytes(CKA_LABEL, b"from-b").unwrap();
    assert_eq!(a.find_objects(&t, 10).await.unwrap().len(), 1);
    f.engine.flush_audit().await.unwrap();
    b_engine.flush_audit().await.unwrap();
    let pid = a.partition_id();
    let rows = f.store.audit_range(pid, 1, 1000).await.unwrap();
    let root = openssl::x509::X509::from_der(&f.engine.root_cert_der().unwrap()).unwrap();
    let cps = f.store.checkpoints(pid).await.unwrap();
    tresor_core::audit::verify_chain(pid, rows, &cps, &root).unwrap();
}

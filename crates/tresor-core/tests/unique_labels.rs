//! `CKA_TRESOR_UNIQUE_LABEL`: a creation refused (nothing written) when a token object of the
//! named classes carries the label, checked in the creation's own commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tresor_core::ck::*;
use tresor_core::error::vendor;
use tresor_core::template::Template;
use tresor_core::Rv;

const KEYS_AND_CERTS: u64 =
    (1 << CKO_CERTIFICATE) | (1 << CKO_PUBLIC_KEY) | (1 << CKO_PRIVATE_KEY) | (1 << CKO_SECRET_KEY);

fn unique_aes(label: &str, mask: u64) -> Template {
    aes_template(label, true)
        .with_ulong(CKA_TRESOR_UNIQUE_LABEL, mask)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_many_concurrent_creates_wins() {
    let f = fixture().await;
    let ctx = Arc::new(f.user().await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                ctx.generate_key(CKM_AES_KEY_GEN, &unique_aes("k", KEYS_AND_CERTS))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.rv(), Rv::Vendor(vendor::ALREADY_EXISTS), "{e}"),
        }
    }
    assert_eq!(ok, 1);
    let found = ctx
        .find_objects(&Template::new().with_bytes(CKA_LABEL, b"k").unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the refused creations wrote nothing");
}

#[tokio::test]
async fn classes_and_bad_conditions() {
    let f = fixture().await;
    let ctx = f.user().await;
    // A data object of a name does not block a key of that name, unless data is named.
    let data = Template::new()
        .with_ulong(CKA_CLASS, CKO_DATA)
        .unwrap()
        .with_bool(CKA_TOKEN, true)
        .unwrap()
        .with_bytes(CKA_LABEL, b"n")
        .unwrap()
        .with_ulong(CKA_TRESOR_UNIQUE_LABEL, 1 << CKO_DATA)
        .unwrap();
    ctx.create_object(&data).await.unwrap();
    assert_eq!(
        ctx.create_object(&data).await.unwrap_err().rv(),
        Rv::Vendor(vendor::ALREADY_EXISTS)
    );
    ctx.generate_key(CKM_AES_KEY_GEN, &unique_aes("n", KEYS_AND_CERTS))
        .await
        .unwrap();
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &unique_aes("n", 1 << CKO_SECRET_KEY))
            .await
            .unwrap_err()
            .rv(),
        Rv::Vendor(vendor::ALREADY_EXISTS)
    );
    // Unknown class bits, no class, or a session object: refused.
    for mask in [0, 1 << 9] {
        assert_eq!(
            ctx.generate_key(CKM_AES_KEY_GEN, &unique_aes("z", mask))
                .await
                .unwrap_err()
                .rv(),
            Rv::AttributeValueInvalid
        );
    }
    let session = aes_template("s", false)
        .with_ulong(CKA_TRESOR_UNIQUE_LABEL, KEYS_AND_CERTS)
        .unwrap();
    assert_eq!(
        ctx.generate_key(CKM_AES_KEY_GEN, &session)
            .await
            .unwrap_err()
            .rv(),
        Rv::TemplateInconsistent
    );
    // Without the condition, duplicate labels stay allowed (PKCS#11).
    ctx.generate_key(CKM_AES_KEY_GEN, &aes_template("n", true))
        .await
        .unwrap();
}

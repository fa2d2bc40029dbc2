//! The library's vendor attribute numbers: the ones the engine also knows must be the engine's,
//! and no two may share a number (0xD4520010/11 once meant both the library's attestation and
//! the engine's key password).

use tresor_core::ck as engine;
use tresor_pkcs11::ck as lib;

#[test]
fn shared_vendor_attributes_match_the_engine() {
    let pairs = [
        ("BASE", lib::CKA_TRESOR_BASE, engine::CKA_TRESOR_BASE),
        ("POLICY", lib::CKA_TRESOR_POLICY, engine::CKA_TRESOR_POLICY),
        (
            "BLOCKED",
            lib::CKA_TRESOR_BLOCKED,
            engine::CKA_TRESOR_BLOCKED,
        ),
        (
            "USAGE_COUNT",
            lib::CKA_TRESOR_USAGE_COUNT,
            engine::CKA_TRESOR_USAGE_COUNT,
        ),
        (
            "CREATE_TIME",
            lib::CKA_TRESOR_CREATE_TIME,
            engine::CKA_TRESOR_CREATE_TIME,
        ),
        ("PKCS8", lib::CKA_TRESOR_PKCS8, engine::CKA_TRESOR_PKCS8),
        ("UUID", lib::CKA_TRESOR_UUID, engine::CKA_TRESOR_UUID),
        (
            "KEY_PASSWORD",
            lib::CKA_TRESOR_KEY_PASSWORD,
            engine::CKA_TRESOR_KEY_PASSWORD,
        ),
        (
            "UNIQUE_LABEL",
            lib::CKA_TRESOR_UNIQUE_LABEL,
            engine::CKA_TRESOR_UNIQUE_LABEL,
        ),
    ];
    for (name, l, e) in pairs {
        assert_eq!(l, e, "CKA_TRESOR_{name}: library {l:#x}, engine {e:#x}");
    }
}

#[test]
fn vendor_attributes_are_distinct_and_vendor_defined() {
    let all = [
        lib::CKA_TRESOR_POLICY,
        lib::CKA_TRESOR_BLOCKED,
        lib::CKA_TRESOR_USAGE_COUNT,
        lib::CKA_TRESOR_CREATE_TIME,
        lib::CKA_TRESOR_PKCS8,
        lib::CKA_TRESOR_UUID,
        lib::CKA_TRESOR_ATTESTATION,
        lib::CKA_TRESOR_ATTESTATION_SIGNATURE,
        lib::CKA_TRESOR_ATTESTATION_CHAIN,
        lib::CKA_TRESOR_KEY_PASSWORD,
        lib::CKA_TRESOR_UNIQUE_LABEL,
    ];
    // `CK_ULONG` is `u64` here, but not on every target the crate builds for.
    #[allow(clippy::unnecessary_cast)]
    let vendor = cryptoki_sys::CKA_VENDOR_DEFINED as u64;
    for (i, a) in all.iter().enumerate() {
        assert_eq!(a & vendor, vendor, "{a:#x} is not in the vendor range");
        for b in &all[i + 1..] {
            assert_ne!(a, b, "two vendor attributes share {a:#x}");
        }
    }
}

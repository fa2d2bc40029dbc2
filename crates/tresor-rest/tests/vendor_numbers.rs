//! The REST face writes out the Tresor vendor attributes it sends (its standard PKCS#11 numbers
//! come from `cryptoki-sys`, as the engine's do); they must be the engine's numbers.

use tresor_core::ck as engine;
use tresor_rest::tenant::ck as rest;

#[test]
fn vendor_attributes_match_the_engine() {
    let pairs = [
        ("POLICY", rest::CKA_TRESOR_POLICY, engine::CKA_TRESOR_POLICY),
        ("PKCS8", rest::CKA_TRESOR_PKCS8, engine::CKA_TRESOR_PKCS8),
        (
            "KEY_PASSWORD",
            rest::CKA_TRESOR_KEY_PASSWORD,
            engine::CKA_TRESOR_KEY_PASSWORD,
        ),
        (
            "UNIQUE_LABEL",
            rest::CKA_TRESOR_UNIQUE_LABEL,
            engine::CKA_TRESOR_UNIQUE_LABEL,
        ),
    ];
    for (name, r, e) in pairs {
        assert_eq!(r, e, "CKA_TRESOR_{name}: REST {r:#x}, engine {e:#x}");
    }
}

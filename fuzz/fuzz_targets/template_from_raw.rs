//! PKCS#11 attribute templates as the ABI layer hands them over: (type, bytes) pairs; then the
//! engine's readers of a parsed template (the allowed-mechanism list, the class rules).
#![no_main]
use tresor_core::ck::*;
use tresor_core::object::{allowed_mechanisms, check_creation_template, ObjectClass};

/// Attribute types outside the low 16 bits that a template may carry.
const HIGH: [u64; 6] = [
    CKA_ALLOWED_MECHANISMS,
    CKA_TRESOR_POLICY,
    CKA_TRESOR_BLOCKED,
    CKA_TRESOR_PKCS8,
    CKA_TRESOR_KEY_PASSWORD,
    CKA_TRESOR_UNIQUE_LABEL,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pairs = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let sel = u16::from_le_bytes([rest[0], rest[1]]);
        // The top bit picks one of the high types, so that they are reached at all.
        let ty = if sel & 0x8000 != 0 {
            HIGH[usize::from(sel) % HIGH.len()]
        } else {
            u64::from(sel)
        };
        let len = usize::from(rest[2]).min(rest.len() - 3);
        pairs.push((ty, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    if let Ok(t) = tresor_core::template::Template::from_raw(pairs) {
        if let Ok(list) = allowed_mechanisms(&t) {
            assert!(list.len() <= tresor_core::object::MAX_ALLOWED_MECHANISMS);
        }
        for class in [
            ObjectClass::Data,
            ObjectClass::Certificate,
            ObjectClass::PublicKey,
            ObjectClass::PrivateKey,
            ObjectClass::SecretKey,
        ] {
            let _ = check_creation_template(class, &t, true);
        }
    }
});

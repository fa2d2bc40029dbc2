//! Imported key material: PKCS#8, SPKI and curve parameters.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tresor_core::crypto::detect_private(data);
    let _ = tresor_core::crypto::detect_public(data);
    let _ = tresor_core::crypto::curve_from_oid_der(data);
});

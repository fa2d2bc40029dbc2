//! PKCS#11 attribute templates as the ABI layer hands them over: (type, bytes) pairs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pairs = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let ty = u64::from(u16::from_le_bytes([rest[0], rest[1]]));
        let len = usize::from(rest[2]).min(rest.len() - 3);
        pairs.push((ty, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    let _ = tresor_core::template::Template::from_raw(pairs);
});

//! Master-key share text, as an operator types it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = tresor_core::seal::Share::parse(s);
    }
});

//! Approval policy JSON (Securosys SKA format).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tresor_core::policy::Policy::from_json(data);
});

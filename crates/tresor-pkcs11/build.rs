//! Link the cdylib with `-z nodelete`: hosts `dlclose()` PKCS#11 modules, but the TLS and
//! crypto libraries inside register thread-specific destructors (pthread keys) that would run
//! after the code was unmapped, crashing the host at its next thread exit. With `nodelete`
//! the module stays mapped for the life of the process.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}

//! # tresor-pqc — the few OpenSSL 3.6 calls the `openssl` crate does not wrap
//!
//! * [`generate`]: key generation by algorithm name (`"ML-DSA-65"`, `"ML-KEM-768"`,
//!   `"SLH-DSA-SHA2-128s"`, …) via `EVP_PKEY_CTX_new_from_name` + `EVP_PKEY_generate`.
//! * [`encapsulate`] / [`decapsulate`]: KEM operations (`EVP_PKEY_encapsulate*`,
//!   `EVP_PKEY_decapsulate*`) for ML-KEM.
//! * [`is_a`]: name-based key type check (`EVP_PKEY_is_a`) for any algorithm name.
//!
//! This is the only crate of the engine allowed to contain `unsafe` code, and it is confined to
//! the [`ffi`] module. Every return code is checked and every allocated object is freed on
//! every path (owned wrappers with `Drop`).

#![deny(unsafe_code)]

pub mod ffi;

pub use ffi::{decapsulate, encapsulate, generate, is_a};

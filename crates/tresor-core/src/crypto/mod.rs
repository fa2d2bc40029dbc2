//! Mechanisms: key generation, sign/verify, encrypt/decrypt, wrap/unwrap, derive, KEM, digest
//! and random, over OpenSSL 3.6 (vendored) and, for hot operations where it is faster, aws-lc-rs.
//!
//! This module knows nothing of partitions, attributes or policies: it takes key material and a
//! [`Mechanism`] and returns bytes or a precise [`Error`](crate::Error). The engine decides
//! *whether* an operation is allowed (usage flags, policy, login); this module checks that the
//! mechanism fits the key (`CKR_KEY_TYPE_INCONSISTENT`), that parameters are valid
//! (`CKR_MECHANISM_PARAM_INVALID`) and that input lengths are right (`CKR_DATA_LEN_RANGE`, …).
//!
//! A [`LoadedKey`] is a parsed key, built once and cached by the engine (`Send + Sync`), so that
//! an operation never re-parses DER.

mod types;

pub use types::*;

mod aead;
mod der;
mod ec;
mod ed;
mod gcm;
mod gen;
mod hash;
mod keys;
mod pq;
mod rsa;
mod sym;

pub use der::{
    curve_from_oid_der, curve_nid, curve_oid_der, ecdsa_der_to_raw, ecdsa_raw_to_der, field_len,
    octet_string, parse_octet_string,
};
pub use gen::{
    detect_private, detect_public, generate_key_pair, generate_secret, normalize_private_der,
    public_info_from_private, random,
};
pub use hash::{digest, hash_len};
pub use keys::LoadedKey;

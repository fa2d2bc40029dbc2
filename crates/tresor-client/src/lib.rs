//! Tresor's client library.
//!
//! [`connect`] reaches HSM nodes through a gateway (blocking, fork-safe). The configuration
//! layer: a complete parser and serializer for the
//! libconfig syntax ([`config::libconfig`]), the typed `primus.cfg` configuration
//! ([`config::primus`]), the `.secrets.cfg` credentials file ([`config::secrets`]) and the lookup
//! order of both files ([`config::lookup`]). Files written for the Securosys Primus PKCS#11
//! provider are accepted unchanged.
#![forbid(unsafe_code)]

pub mod config;
pub mod connect;
mod error;
mod mux;
pub mod transport;

pub use error::{rv, Diagnostic, Error, Position, VendorCode};

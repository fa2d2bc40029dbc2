//! Tresor gateway.
#![forbid(unsafe_code)]

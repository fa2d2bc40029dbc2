//! Tresor server.
#![forbid(unsafe_code)]

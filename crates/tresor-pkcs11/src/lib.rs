//! # tresor-pkcs11 — the Tresor PKCS#11 library (`libtresor_pkcs11.so`)
//!
//! What OpenSSL, `pkcs11-tool`, Java SunPKCS11 and p11-kit load. It exports
//! `C_GetFunctionList`, `C_GetInterfaceList` and `C_GetInterface` (Cryptoki 2.40, 3.0 and 3.2
//! function tables) and nothing else, and serves every call over the client library
//! ([`tresor_client::connect::SlotClient`]): configuration `primus.cfg` (found through
//! `$TRESOR_PKCS11_CONF`, `$SECUROSYS_PKCS11_CONF`, then the standard paths), credentials
//! from the secrets file written by `ppin`.
//!
//! ## How a call flows
//!
//! ```text
//!  host ─ C ABI ─> abi::entry::C_Sign        pointers → safe values, catch_unwind, CK_RV
//!                    └─> Module::session(h)   sharded map, read lock
//!                          └─> Session::sign  per-session mutex; length queries answered
//!                                │             from cache or a kept result
//!                                └─> Slot::call(Request::Sign)  one round trip
//!                                      └─> SlotClient (pool, failover, login replay)
//! ```
//!
//! * [`abi`]: the only `unsafe` code; turns pointers into values and back.
//! * [`module`]: slots (one [`SlotClient`](tresor_client::connect::SlotClient) each, login
//!   state per application, attribute and length caches) and sessions.
//! * [`session`]: operations; an `…Init` does no network call, the first operation call
//!   carries the mechanism; multi-part operations buffer and send one request at the end.
//! * [`mechanism`], [`attrs`]: `CKM_*` / templates checked and turned into wire values.
//! * [`info`]: slot, token and mechanism information.
//! * [`error`]: the one error type (a `CK_RV` and a message).
//! * `log`: the `log` block of primus.cfg (log file, syslog, levels, call trace).
//!
//! Fork safety: the state is bound to the process id that built it; a child never touches
//! its parent's state and starts afresh with its own `C_Initialize`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod abi;
pub mod attrs;
pub mod ck;
pub mod error;
pub mod info;
mod log;
pub mod mechanism;
pub mod module;
pub mod session;

pub use error::{Error, Result};

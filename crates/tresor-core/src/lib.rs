//! # tresor-core — the Tresor HSM engine
//!
//! The engine holds partitions, their users and objects, performs every cryptographic
//! operation, and enforces every rule: PKCS#11 attribute semantics, usage flags, logins,
//! approval policies (Smart Key Attributes), sealing and audit. It has no network code: the
//! faces (PKCS#11 library, REST API, network node) all call [`Engine`], and the engine never
//! knows which face called it.
//!
//! ## How data flows
//!
//! ```text
//!  face ──> Engine::open_session(partition) ─> Session (login state of one caller)
//!            │  sign/decrypt/…: session check → object cache → attribute & policy rules
//!            │                  → crypto (OpenSSL / aws-lc-rs) → audit entry (queued)
//!            │  create/destroy/set: rules → seal record → Store::commit(object + audit)
//!            v
//!          Store (untrusted: sealed blobs + lookup metadata + audit chain)
//! ```
//!
//! * [`seal`]: master key shares (Feldman VSS), AES-256-GCM blobs bound to their place.
//! * [`crypto`]: mechanisms over key material; parsed keys are cached as [`crypto::LoadedKey`].
//! * [`object`]: the PKCS#11 attribute model and its one-way rules; [`template`] parses and
//!   validates templates.
//! * [`policy`]: the Smart Key Attribute policy carried by keys.
//! * [`audit`]: the hash-chained, checkpointed audit log.
//! * [`attest`]: the attestation document and the cluster certificate chain.
//! * [`engine`]: partitions, users, sessions and operations; client credentials (setup
//!   password, registered client keys) in [`engine::credentials`].
//! * [`directory`]: the service directory the gateways check (service users, allowlists).

#![forbid(unsafe_code)]

pub mod attest;
pub mod audit;
pub mod ck;
pub mod crypto;
pub mod directory;
pub mod engine;
pub mod error;
pub mod object;
pub mod policy;
pub mod seal;
pub mod template;

pub use engine::{
    Application, ClientCredential, Context, Engine, EngineConfig, SealStatus, SealedObject,
    SetupPolicy, SyncStats, TokenStatus, UserType,
};
pub use error::{Error, Result, Rv};

//! Sealing: the master key and its shares, AES-256-GCM blobs bound to their place, and the
//! object-version digest that detects rollback of single objects.
//!
//! ## Key hierarchy
//!
//! ```text
//!  M-of-N shares ──combine──> secret scalar ──HKDF──> MasterKey ──HKDF──> master seal key
//!                             (Feldman VSS, P-256)     (never stored)      │
//!                                                                         ├─ seals partition keys
//!                                                                         │  (aad_partition_key)
//!                                                                         └─ seals cluster secrets
//!                                                                            (aad_cluster)
//!  partition key (random SealKey) ─┬─ seals the partition record (aad_partition_record)
//!                                  ├─ seals each object blob     (aad_object)
//!                                  ├─ seals session-object copies for their application
//!                                  │  (aad_session_object; kept by the client, not stored)
//!                                  └─ HKDF ──> version digest key (VersionDigest)
//! ```
//!
//! * [`init`] makes a new random secret and its shares, and returns the [`MasterKey`], the
//!   public [`SealConfig`] (to store) and the [`Share`]s (to hand out, via
//!   [`Share::expose_text`]).
//! * [`check_share`] checks one share as it is entered; [`combine`] (or [`combine_texts`])
//!   rebuilds the master key from `M` shares and names any problem precisely.
//! * [`seal`] / [`open`] seal a blob under a [`SealKey`], bound to an AAD built by one of the
//!   `aad_*` functions, so that a blob moved to another place, swapped with another object's,
//!   or rolled back to an older version of the same object fails to open.
//! * [`VersionDigest`] keeps a keyed sum over the live `(object_id, version)` pairs of a
//!   partition, so that an object restored from an older backup of the store is detected.
//!
//! The byte-level formats are specified in `docs/sealing.md`.

mod digest;
mod keys;
mod shares;

pub use digest::{Digest, VersionDigest};
pub use keys::{
    aad_cluster, aad_object, aad_partition_key, aad_partition_record, aad_session_object, open,
    seal, MasterKey, SealKey, BLOB_OVERHEAD, BLOB_VERSION, KEY_LEN, NONCE_LEN, TAG_LEN,
};
pub use shares::{
    check_share, combine, combine_texts, init, SealConfig, Share, SEAL_CONFIG_VERSION, SHARE_PREFIX,
};

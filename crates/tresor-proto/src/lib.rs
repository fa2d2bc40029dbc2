//! # tresor-proto — the Tresor wire protocol
//!
//! Versioned binary request/response messages that carry every engine operation between
//! clients (PKCS#11 library, REST API, `ppin`) and HSM nodes, and the length-delimited framing
//! that carries them. The byte layout is specified in this crate's `README.md` and pinned by
//! the golden vectors in `tests/golden.rs`: a change to either is a protocol change.
//!
//! ```text
//! frame   = len:u32be ‖ payload[len]                 (len ≤ max_frame_len, default 16 MiB)
//! payload = version:u8 (=1) ‖ kind:u8 ‖ request_id:u64be ‖ body
//! kind    = 0x01..=0x29, 0x30..=0x32 requests, 0x80|request = its response, 0xff = Error
//! body    = the variant's fields in declaration order:
//!           u8/u32/u64/i64 fixed-width big-endian; bool 0x00|0x01;
//!           bytes/string = len:u32be ‖ bytes (strings UTF-8); option = 0x00 | 0x01 ‖ value;
//!           sequence = count:u32be ‖ elements; nested enum = tag:u8 ‖ fields
//! ```
//!
//! * [`Request`] / [`Response`]: one variant per engine operation (and its answer), plus
//!   `Ping`, sessions, partition administration, a mechanism capability query and
//!   [`Response::Error`] (a `CK_RV` and a message).
//! * [`Envelope`]: a body with its `request_id`; [`Envelope::encode`] / [`Envelope::decode`].
//! * [`frame`]: [`FrameCodec`] / [`MessageCodec`] for tokio, [`read_frame`] / [`write_frame`]
//!   for `std::io`.
//! * Secrets (PINs, key material, plaintexts) are [`Secret`]s: zeroized on drop, printed as
//!   their length only.
//! * With the default feature `core`, checked conversions to and from `tresor-core` types.
//!
//! Decoding arbitrary bytes never panics, trusts no length for preallocation beyond the
//! input, and rejects unknown versions, kinds and tags, truncation and trailing bytes with a
//! precise [`ProtoError`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
#[cfg(feature = "core")]
pub mod convert;
pub mod error;
pub mod frame;
pub mod gateway;
pub mod message;
pub mod request;
pub mod response;
pub mod secret;
pub mod tls;
pub mod types;

pub use error::{ProtoError, Result};
pub use frame::{
    read_frame, read_message, write_frame, write_message, FrameCodec, MessageCodec,
    DEFAULT_MAX_FRAME_LEN,
};
pub use message::{Envelope, Message, RequestMessage, ResponseMessage, HEADER_LEN};
pub use request::Request;
pub use response::Response;
pub use secret::Secret;
pub use types::{
    Attestation, AttrRead, AttrValue, Attribute, EcdhParams, GcmParams, HashAlg, KeyPassword,
    Mechanism, MechanismInfo, OaepParams, ObjectHandle, PartitionSummary, PssParams, SealedObject,
    Template, UserType,
};

/// Re-exported so users (and the fuzz target) name the same versions as this crate.
pub use bytes;
/// Re-exported so users can name `tokio_util::codec::{Decoder, Encoder}` at this crate's version.
pub use tokio_util;

/// The protocol version this build speaks (the first payload byte).
pub const PROTOCOL_VERSION: u8 = 1;

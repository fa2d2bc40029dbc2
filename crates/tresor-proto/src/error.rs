//! The crate's one error type.

/// Why bytes could not be decoded, a frame read or written, or a value converted.
///
/// Every decoding failure names what was wrong and, where it applies, the byte offset in the
/// message payload (after the frame's length prefix) at which it was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The message is empty or shorter than its fixed header.
    #[error("message too short: {len} bytes, the header needs {needed}")]
    ShortHeader {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The protocol version byte is not one this build speaks.
    #[error("unsupported protocol version {found} (this build speaks version {supported})")]
    UnsupportedVersion {
        /// The version byte received.
        found: u8,
        /// The version this build speaks.
        supported: u8,
    },
    /// The message kind byte names no request (or no response, when decoding responses).
    #[error("unknown {direction} kind {kind:#04x}")]
    UnknownKind {
        /// `"request"` or `"response"`.
        direction: &'static str,
        /// The kind byte received.
        kind: u8,
    },
    /// An enum tag inside the body is unknown.
    #[error("unknown {what} tag {tag:#04x} at offset {offset}")]
    UnknownTag {
        /// The type whose tag this is.
        what: &'static str,
        /// The tag received.
        tag: u8,
        /// Offset of the tag byte.
        offset: usize,
    },
    /// The body ends before a field does.
    #[error("truncated at offset {offset}: {needed} more bytes needed, {remaining} left")]
    Truncated {
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message.
        remaining: usize,
    },
    /// A sequence declares more elements than the rest of the message could hold.
    #[error(
        "count {count} at offset {offset} exceeds what the remaining {remaining} bytes can hold"
    )]
    CountTooLarge {
        /// The declared element count.
        count: u64,
        /// Offset of the count.
        offset: usize,
        /// Bytes left in the message.
        remaining: usize,
    },
    /// A boolean byte is neither 0 nor 1.
    #[error("invalid boolean byte {byte:#04x} at offset {offset}")]
    InvalidBool {
        /// The byte received.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// A string field is not UTF-8.
    #[error("invalid UTF-8 in the string at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the string's length prefix.
        offset: usize,
    },
    /// Bytes follow the end of the message body.
    #[error("{count} trailing bytes after the message body (at offset {offset})")]
    TrailingBytes {
        /// Number of extra bytes.
        count: usize,
        /// Where they start.
        offset: usize,
    },
    /// A field is too long to encode (its length does not fit the 32-bit length prefix).
    #[error("{what} is too long to encode: {len} bytes/elements")]
    FieldTooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A frame is larger than the configured maximum (checked before the body is read).
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The declared or actual frame length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("unexpected end of stream inside a frame: {got} of {expected} bytes received")]
    UnexpectedEof {
        /// Bytes the frame (or its length prefix) needed.
        expected: u64,
        /// Bytes received before the end.
        got: u64,
    },
    /// A value cannot be expressed in the target representation (wire ↔ engine types).
    #[error("cannot represent {0}")]
    Unrepresentable(String),
    /// An I/O error of the underlying stream.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for this crate's results.
pub type Result<T, E = ProtoError> = std::result::Result<T, E>;

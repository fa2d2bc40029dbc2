//! The body codec: primitive encodings and the [`Wire`] trait every message part implements.
//!
//! * integers: fixed width, big-endian (`u8`, `u32`, `u64`, `i64` two's complement);
//! * `bool`: one byte, `0x00` or `0x01` (anything else is an error);
//! * byte strings and UTF-8 strings: `u32` length ‖ bytes;
//! * `Option<T>`: `0x00` (none) or `0x01` ‖ `T`;
//! * `Vec<T>`: `u32` count ‖ elements;
//! * enums: a `u8` tag ‖ the variant's fields in declaration order.
//!
//! Decoding never trusts a length for preallocation beyond what the rest of the input can
//! hold, never panics, and reports the offset of every defect.

use crate::error::{ProtoError, Result};
use crate::secret::Secret;

/// Appends encoded values to a buffer (crate-internal; public only to seal [`crate::Message`]).
#[derive(Debug, Default)]
pub struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn len_prefix(&mut self, what: &'static str, len: usize) -> Result<()> {
        let n = u32::try_from(len).map_err(|_| ProtoError::FieldTooLong { what, len })?;
        self.buf.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> Result<()> {
        self.len_prefix("byte string", v.len())?;
        self.buf.extend_from_slice(v);
        Ok(())
    }
}

/// Reads encoded values from a slice, tracking the offset for error reports (crate-internal;
/// public only to seal [`crate::Message`]).
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], start: usize) -> Self {
        Reader { buf, pos: start }
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end.and_then(|e| self.buf.get(self.pos..e).map(|s| (s, e))) {
            Some((s, e)) => {
                self.pos = e;
                Ok(s)
            }
            None => Err(ProtoError::Truncated {
                offset: self.pos,
                needed: n,
                remaining: self.remaining(),
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u32` length prefix followed by that many bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        let n = usize::try_from(n).map_err(|_| ProtoError::Truncated {
            offset: self.pos,
            needed: usize::MAX,
            remaining: self.remaining(),
        })?;
        self.take(n)
    }

    /// A `u32` element count, checked against the remaining input (each element needs at
    /// least `min_len` bytes).
    pub(crate) fn count(&mut self, min_len: usize) -> Result<usize> {
        let offset = self.pos;
        let n = self.u32()?;
        let remaining = self.remaining();
        match usize::try_from(n) {
            Ok(c) if c.saturating_mul(min_len.max(1)) <= remaining => Ok(c),
            _ => Err(ProtoError::CountTooLarge {
                count: u64::from(n),
                offset,
                remaining,
            }),
        }
    }

    /// Fail unless the input is fully consumed.
    pub(crate) fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ProtoError::TrailingBytes {
                count,
                offset: self.pos,
            }),
        }
    }
}

/// A value with a wire encoding.
pub(crate) trait Wire: Sized {
    /// The fewest bytes any value of the type encodes to (bounds sequence counts).
    const MIN_LEN: usize;
    /// Append the encoding.
    fn put(&self, w: &mut Writer) -> Result<()>;
    /// Read one value.
    fn get(r: &mut Reader<'_>) -> Result<Self>;
}

impl Wire for u8 {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.u8(*self);
        Ok(())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        r.u8()
    }
}

impl Wire for bool {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.u8(u8::from(*self));
        Ok(())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(ProtoError::InvalidBool { byte, offset }),
        }
    }
}

impl Wire for u32 {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.buf.extend_from_slice(&self.to_be_bytes());
        Ok(())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        r.u32()
    }
}

impl Wire for u64 {
    const MIN_LEN: usize = 8;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.buf.extend_from_slice(&self.to_be_bytes());
        Ok(())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        r.u64()
    }
}

impl Wire for i64 {
    const MIN_LEN: usize = 8;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.buf.extend_from_slice(&self.to_be_bytes());
        Ok(())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        Ok(i64::from_be_bytes(r.u64()?.to_be_bytes()))
    }
}

impl Wire for Vec<u8> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.bytes(self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        Ok(r.bytes()?.to_vec())
    }
}

impl Wire for Secret {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.bytes(self.expose())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Secret::from_slice(r.bytes()?))
    }
}

impl Wire for String {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.bytes(self.as_bytes())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        let b = r.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| ProtoError::InvalidUtf8 { offset })
    }
}

impl<T: Wire> Wire for Option<T> {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        match self {
            None => {
                w.u8(0);
                Ok(())
            }
            Some(v) => {
                w.u8(1);
                v.put(w)
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::get(r)?)),
            tag => Err(ProtoError::UnknownTag {
                what: "option",
                tag,
                offset,
            }),
        }
    }
}

/// Encode a sequence.
pub(crate) fn put_seq<T: Wire>(w: &mut Writer, items: &[T]) -> Result<()> {
    w.len_prefix("sequence", items.len())?;
    items.iter().try_for_each(|i| i.put(w))
}

/// Decode a sequence: the count is checked against the remaining input, and the initial
/// capacity never exceeds what the remaining input could fill.
pub(crate) fn get_seq<T: Wire>(r: &mut Reader<'_>) -> Result<Vec<T>> {
    let n = r.count(T::MIN_LEN)?;
    let cap = n.min(r.remaining() / std::mem::size_of::<T>().max(1));
    let mut v = Vec::with_capacity(cap);
    for _ in 0..n {
        v.push(T::get(r)?);
    }
    Ok(v)
}

/// Implement [`Wire`] for `Vec<T>` (a `u32` count ‖ elements) for the given element types.
macro_rules! wire_seq {
    ($($t:ty),*) => {$(
        impl $crate::codec::Wire for Vec<$t> {
            const MIN_LEN: usize = 4;
            fn put(&self, w: &mut $crate::codec::Writer) -> $crate::error::Result<()> {
                $crate::codec::put_seq(w, self)
            }
            fn get(r: &mut $crate::codec::Reader<'_>) -> $crate::error::Result<Self> {
                $crate::codec::get_seq(r)
            }
        }
    )*};
}

wire_seq!(u64, i64);

/// Define a C-like enum with explicit `u8` wire tags.
macro_rules! wire_unit_enum {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $v:ident = $tag:literal ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vm])* $v ),* }

        impl $name {
            /// Every value, in tag order.
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// The wire tag.
            pub fn tag(self) -> u8 {
                match self { $( $name::$v => $tag ),* }
            }
        }

        impl $crate::codec::Wire for $name {
            const MIN_LEN: usize = 1;
            fn put(&self, w: &mut $crate::codec::Writer) -> $crate::error::Result<()> {
                w.u8(self.tag());
                Ok(())
            }
            fn get(r: &mut $crate::codec::Reader<'_>) -> $crate::error::Result<Self> {
                let offset = r.offset();
                match r.u8()? {
                    $( $tag => Ok($name::$v), )*
                    tag => Err($crate::error::ProtoError::UnknownTag { what: stringify!($name), tag, offset }),
                }
            }
        }
    };
}

/// Define a struct whose fields are encoded in declaration order.
macro_rules! wire_struct {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $( $(#[$fm])* pub $f: $t ),* }

        impl $crate::codec::Wire for $name {
            const MIN_LEN: usize = 0 $( + <$t as $crate::codec::Wire>::MIN_LEN )*;
            fn put(&self, w: &mut $crate::codec::Writer) -> $crate::error::Result<()> {
                $( $crate::codec::Wire::put(&self.$f, w)?; )*
                Ok(())
            }
            fn get(r: &mut $crate::codec::Reader<'_>) -> $crate::error::Result<Self> {
                Ok($name { $( $f: <$t as $crate::codec::Wire>::get(r)?, )* })
            }
        }
    };
}

/// Define an enum of struct-like variants, each with a `u8` code; generates `code()`,
/// `name()`, `put_fields()` and `get_fields(code, reader)` (the code itself is written by the
/// caller: in the message header for requests/responses, as a tag for nested enums).
macro_rules! wire_variants {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $v:ident = $code:literal { $( $(#[$fm:meta])* $f:ident : $t:ty ),* $(,)? } ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name { $( $(#[$vm])* $v { $( $(#[$fm])* $f: $t ),* } ),* }

        impl $name {
            /// Every code this type uses, in declaration order.
            pub const CODES: &'static [u8] = &[$($code),*];

            /// The wire code of this variant.
            pub fn code(&self) -> u8 {
                match self { $( $name::$v { .. } => $code ),* }
            }

            /// The variant's name (for logs and metrics).
            pub fn name(&self) -> &'static str {
                match self { $( $name::$v { .. } => stringify!($v) ),* }
            }

            #[allow(unused_variables)]
            pub(crate) fn put_fields(&self, w: &mut $crate::codec::Writer) -> $crate::error::Result<()> {
                match self {
                    $( $name::$v { $($f),* } => { $( $crate::codec::Wire::put($f, w)?; )* } )*
                }
                Ok(())
            }

            /// `Ok(None)` if `code` names no variant.
            #[allow(unused_variables)]
            pub(crate) fn get_fields(code: u8, r: &mut $crate::codec::Reader<'_>) -> $crate::error::Result<Option<Self>> {
                match code {
                    $( $code => Ok(Some($name::$v { $( $f: <$t as $crate::codec::Wire>::get(r)?, )* })), )*
                    _ => Ok(None),
                }
            }
        }
    };
}

pub(crate) use {wire_seq, wire_struct, wire_unit_enum, wire_variants};

//! Length-delimited framing: `u32 BE length ‖ payload`, with a configurable maximum payload
//! length. A declared length above the maximum is an error before any of the body is read or
//! buffered; a stream that ends inside a frame is [`ProtoError::UnexpectedEof`].
//!
//! [`FrameCodec`] and [`MessageCodec`] are `tokio_util::codec` codecs; [`read_frame`] /
//! [`write_frame`] (and the typed [`read_message`] / [`write_message`]) work on `std::io`.

use std::io::{Read, Write};
use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{ProtoError, Result};
use crate::message::{Envelope, Message};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// The default maximum payload length: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Buffer growth per read while a large frame arrives (so a peer that only announces a big
/// frame cannot make us reserve all of it).
const READ_CHUNK: usize = 64 * 1024;

fn check_len(len: usize, max: usize) -> Result<u32> {
    match u32::try_from(len) {
        Ok(n) if len <= max => Ok(n),
        _ => Err(ProtoError::FrameTooLarge {
            len: len as u64,
            max,
        }),
    }
}

/// A `tokio_util` codec for raw frames: decodes payloads, encodes byte slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameCodec {
    /// A codec accepting payloads of at most `max_frame_len` bytes (capped at `u32::MAX`).
    pub fn new(max_frame_len: usize) -> Self {
        FrameCodec {
            max_frame_len: max_frame_len.min(u32::MAX as usize),
        }
    }

    /// The maximum payload length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>> {
        let Some(prefix) = src.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; LEN_PREFIX];
        len_bytes.copy_from_slice(prefix);
        let len = u32::from_be_bytes(len_bytes) as usize;
        if len > self.max_frame_len {
            return Err(ProtoError::FrameTooLarge {
                len: len as u64,
                max: self.max_frame_len,
            });
        }
        let total = LEN_PREFIX + len;
        if src.len() < total {
            src.reserve((total - src.len()).min(READ_CHUNK));
            return Ok(None);
        }
        src.advance(LEN_PREFIX);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => {
                let expected = match buf.get(..LEN_PREFIX) {
                    Some(p) => {
                        let mut b = [0u8; LEN_PREFIX];
                        b.copy_from_slice(p);
                        LEN_PREFIX as u64 + u64::from(u32::from_be_bytes(b))
                    }
                    None => LEN_PREFIX as u64,
                };
                Err(ProtoError::UnexpectedEof {
                    expected,
                    got: buf.len() as u64,
                })
            }
        }
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = ProtoError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<()> {
        let n = check_len(item.len(), self.max_frame_len)?;
        dst.reserve(LEN_PREFIX + item.len());
        dst.put_u32(n);
        dst.put_slice(item);
        Ok(())
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = ProtoError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<()> {
        Encoder::<&[u8]>::encode(self, &item, dst)
    }
}

impl Encoder<Vec<u8>> for FrameCodec {
    type Error = ProtoError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<()> {
        Encoder::<&[u8]>::encode(self, &item, dst)
    }
}

/// A `tokio_util` codec for typed messages: decodes `Envelope<In>` frames and encodes
/// `Envelope<Out>` (a server uses `MessageCodec<Request, Response>`, a client the reverse).
#[derive(Debug)]
pub struct MessageCodec<In, Out> {
    frames: FrameCodec,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> Clone for MessageCodec<In, Out> {
    fn clone(&self) -> Self {
        MessageCodec::new(self.frames.max_frame_len)
    }
}

impl<In, Out> Default for MessageCodec<In, Out> {
    fn default() -> Self {
        MessageCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl<In, Out> MessageCodec<In, Out> {
    /// A codec with the given maximum payload length.
    pub fn new(max_frame_len: usize) -> Self {
        MessageCodec {
            frames: FrameCodec::new(max_frame_len),
            _types: PhantomData,
        }
    }
}

impl<In: Message, Out> Decoder for MessageCodec<In, Out> {
    type Item = Envelope<In>;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope<In>>> {
        match self.frames.decode(src)? {
            Some(f) => Envelope::decode(&f).map(Some),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Envelope<In>>> {
        match self.frames.decode_eof(src)? {
            Some(f) => Envelope::decode(&f).map(Some),
            None => Ok(None),
        }
    }
}

impl<In, Out: Message> Encoder<&Envelope<Out>> for MessageCodec<In, Out> {
    type Error = ProtoError;

    fn encode(&mut self, item: &Envelope<Out>, dst: &mut BytesMut) -> Result<()> {
        let bytes = item.encode()?;
        Encoder::<&[u8]>::encode(&mut self.frames, &bytes, dst)
    }
}

impl<In, Out: Message> Encoder<Envelope<Out>> for MessageCodec<In, Out> {
    type Error = ProtoError;

    fn encode(&mut self, item: Envelope<Out>, dst: &mut BytesMut) -> Result<()> {
        Encoder::<&Envelope<Out>>::encode(self, &item, dst)
    }
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Read one frame's payload. `Ok(None)` if the stream ends cleanly before a frame starts;
/// [`ProtoError::UnexpectedEof`] if it ends inside one; [`ProtoError::FrameTooLarge`] before
/// the body is read if the declared length exceeds `max_frame_len`. The buffer grows as data
/// arrives, never ahead of it by more than 64 KiB.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max_frame_len: usize) -> Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; LEN_PREFIX];
    match read_full(r, &mut prefix)? {
        0 => return Ok(None),
        LEN_PREFIX => {}
        got => {
            return Err(ProtoError::UnexpectedEof {
                expected: LEN_PREFIX as u64,
                got: got as u64,
            })
        }
    }
    let len = u32::from_be_bytes(prefix);
    if len as usize > max_frame_len {
        return Err(ProtoError::FrameTooLarge {
            len: u64::from(len),
            max: max_frame_len,
        });
    }
    let mut body = Vec::with_capacity((len as usize).min(READ_CHUNK));
    let got = r.take(u64::from(len)).read_to_end(&mut body)?;
    if got as u64 != u64::from(len) {
        return Err(ProtoError::UnexpectedEof {
            expected: LEN_PREFIX as u64 + u64::from(len),
            got: (LEN_PREFIX + got) as u64,
        });
    }
    Ok(Some(body))
}

/// Write one frame (length prefix and payload) and flush.
pub fn write_frame<W: Write + ?Sized>(
    w: &mut W,
    payload: &[u8],
    max_frame_len: usize,
) -> Result<()> {
    let n = check_len(payload.len(), max_frame_len)?;
    // One write: over TLS, each write becomes a record (and, nested, a record of the outer
    // layer and a system call): the prefix must not travel alone.
    let mut frame = zeroize::Zeroizing::new(Vec::with_capacity(LEN_PREFIX + payload.len()));
    frame.extend_from_slice(&n.to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Read and decode one message; `Ok(None)` on a clean end of stream.
pub fn read_message<M: Message, R: Read + ?Sized>(
    r: &mut R,
    max_frame_len: usize,
) -> Result<Option<Envelope<M>>> {
    match read_frame(r, max_frame_len)? {
        Some(f) => Envelope::decode(&f).map(Some),
        None => Ok(None),
    }
}

/// Encode and write one message as a frame.
pub fn write_message<M: Message, W: Write + ?Sized>(
    w: &mut W,
    message: &Envelope<M>,
    max_frame_len: usize,
) -> Result<()> {
    write_frame(w, &message.encode()?, max_frame_len)
}

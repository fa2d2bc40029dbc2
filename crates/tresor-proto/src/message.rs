//! Message envelopes: the header (version, kind, request id) around a request or response
//! body, and whole-message encoding and decoding.

use crate::codec::{Reader, Writer};
use crate::error::{ProtoError, Result};
use crate::request::Request;
use crate::response::Response;
use crate::PROTOCOL_VERSION;

/// Bytes of the message header: version (1) ‖ kind (1) ‖ request id (8).
pub const HEADER_LEN: usize = 10;

/// A message body type: [`Request`] or [`Response`].
pub trait Message: Sized + Clone + std::fmt::Debug + PartialEq {
    /// `"request"` or `"response"` (for errors).
    const DIRECTION: &'static str;
    /// The kind byte of this body.
    fn kind(&self) -> u8;
    #[doc(hidden)]
    fn put_body(&self, w: &mut Writer) -> Result<()>;
    #[doc(hidden)]
    fn get_body(kind: u8, r: &mut Reader<'_>) -> Result<Option<Self>>;
}

impl Message for Request {
    const DIRECTION: &'static str = "request";
    fn kind(&self) -> u8 {
        self.code()
    }
    fn put_body(&self, w: &mut Writer) -> Result<()> {
        self.put_fields(w)
    }
    fn get_body(kind: u8, r: &mut Reader<'_>) -> Result<Option<Self>> {
        Request::get_fields(kind, r)
    }
}

impl Message for Response {
    const DIRECTION: &'static str = "response";
    fn kind(&self) -> u8 {
        self.code()
    }
    fn put_body(&self, w: &mut Writer) -> Result<()> {
        self.put_fields(w)
    }
    fn get_body(kind: u8, r: &mut Reader<'_>) -> Result<Option<Self>> {
        Response::get_fields(kind, r)
    }
}

/// A request or response with its request id. A response echoes its request's id, so a
/// retried non-idempotent request can be recognised and answered from the first run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<M> {
    /// Chosen by the client, unique per logical call; kept across retries.
    pub request_id: u64,
    /// The request or response.
    pub body: M,
}

/// A request with its id.
pub type RequestMessage = Envelope<Request>;
/// A response with its request's id.
pub type ResponseMessage = Envelope<Response>;

impl<M: Message> Envelope<M> {
    /// Wrap a body.
    pub fn new(request_id: u64, body: M) -> Self {
        Envelope { request_id, body }
    }

    /// Encode: `version ‖ kind ‖ request_id ‖ body` (see the crate docs).
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_parts(self.request_id, &self.body)
    }

    /// Decode one whole message (a frame's payload). Rejects unknown versions and kinds,
    /// unknown tags, truncation and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (version, kind) = match bytes {
            [v, k, ..] if bytes.len() >= HEADER_LEN => (*v, *k),
            _ => {
                return Err(ProtoError::ShortHeader {
                    len: bytes.len(),
                    needed: HEADER_LEN,
                })
            }
        };
        if version != PROTOCOL_VERSION {
            return Err(ProtoError::UnsupportedVersion {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let mut r = Reader::new(bytes, 2);
        let request_id = r.u64()?;
        let body = M::get_body(kind, &mut r)?.ok_or(ProtoError::UnknownKind {
            direction: M::DIRECTION,
            kind,
        })?;
        r.finish()?;
        Ok(Envelope { request_id, body })
    }
}

fn encode_parts<M: Message>(request_id: u64, body: &M) -> Result<Vec<u8>> {
    let mut w = Writer::default();
    w.u8(PROTOCOL_VERSION);
    w.u8(body.kind());
    w.buf.extend_from_slice(&request_id.to_be_bytes());
    body.put_body(&mut w)?;
    Ok(w.buf)
}

impl Request {
    /// Encode with a request id (the same bytes as [`Envelope::encode`], without a clone).
    pub fn encode(&self, request_id: u64) -> Result<Vec<u8>> {
        encode_parts(request_id, self)
    }
}

impl Response {
    /// Encode with the id of the request it answers (as [`Envelope::encode`]).
    pub fn encode(&self, request_id: u64) -> Result<Vec<u8>> {
        encode_parts(request_id, self)
    }
}

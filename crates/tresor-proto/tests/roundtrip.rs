//! Property tests: every generated message round-trips; arbitrary bytes never panic the
//! decoder; every strict prefix and every extension of a valid message is refused.
#![allow(clippy::unwrap_used)]

mod strategies;

use proptest::prelude::*;
use strategies::{request, response};
use tokio_util::codec::Decoder;
use tresor_proto::{
    Envelope, FrameCodec, ProtoError, Request, Response, HEADER_LEN, PROTOCOL_VERSION,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn request_roundtrip(id in any::<u64>(), req in request()) {
        let bytes = Envelope::new(id, req.clone()).encode().unwrap();
        prop_assert_eq!(bytes.first().copied(), Some(PROTOCOL_VERSION));
        prop_assert_eq!(bytes.get(1).copied(), Some(req.code()));
        prop_assert_eq!(&req.encode(id).unwrap(), &bytes);
        let back = Envelope::<Request>::decode(&bytes).unwrap();
        prop_assert_eq!(back, Envelope::new(id, req));
    }

    #[test]
    fn response_roundtrip(id in any::<u64>(), resp in response()) {
        let bytes = Envelope::new(id, resp.clone()).encode().unwrap();
        let back = Envelope::<Response>::decode(&bytes).unwrap();
        prop_assert_eq!(back, Envelope::new(id, resp));
    }

    #[test]
    fn truncated_messages_are_errors(id in any::<u64>(), req in request(), resp in response()) {
        let bytes = req.encode(id).unwrap();
        for n in 0..bytes.len() {
            prop_assert!(Envelope::<Request>::decode(&bytes[..n]).is_err(), "prefix {n} decoded");
        }
        let bytes = resp.encode(id).unwrap();
        for n in 0..bytes.len() {
            prop_assert!(Envelope::<Response>::decode(&bytes[..n]).is_err(), "prefix {n} decoded");
        }
    }

    #[test]
    fn trailing_bytes_are_errors(id in any::<u64>(), req in request(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = req.encode(id).unwrap();
        let len = bytes.len();
        bytes.extend_from_slice(&extra);
        let err = Envelope::<Request>::decode(&bytes).unwrap_err();
        prop_assert!(
            matches!(err, ProtoError::TrailingBytes { count, offset } if count == extra.len() && offset == len),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_frames_are_errors(id in any::<u64>(), req in request()) {
        let payload = req.encode(id).unwrap();
        let mut framed = (payload.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&payload);
        for n in 0..framed.len() {
            let mut codec = FrameCodec::default();
            let mut buf = bytes::BytesMut::from(&framed[..n]);
            prop_assert!(codec.decode(&mut buf).unwrap().is_none());
            let eof = codec.decode_eof(&mut buf);
            if n == 0 {
                prop_assert!(eof.unwrap().is_none());
            } else {
                prop_assert!(matches!(eof, Err(ProtoError::UnexpectedEof { .. })), "{eof:?}");
            }
            let mut reader = &framed[..n];
            let r = tresor_proto::read_frame(&mut reader, 1 << 20);
            if n == 0 {
                prop_assert!(r.unwrap().is_none());
            } else {
                prop_assert!(matches!(r, Err(ProtoError::UnexpectedEof { .. })), "{r:?}");
            }
        }
        let mut reader = &framed[..];
        prop_assert_eq!(tresor_proto::read_frame(&mut reader, 1 << 20).unwrap(), Some(payload));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Envelope::<Request>::decode(&bytes);
        let _ = Envelope::<Response>::decode(&bytes);
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let mut codec = FrameCodec::new(1024);
        while let Ok(Some(f)) = codec.decode(&mut buf) {
            let _ = Envelope::<Request>::decode(&f);
        }
        let mut reader = &bytes[..];
        let _ = tresor_proto::read_frame(&mut reader, 1024);
    }

    #[test]
    fn valid_header_random_body_never_panics(kind in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = vec![PROTOCOL_VERSION, kind];
        bytes.extend_from_slice(&[0; HEADER_LEN - 2]);
        bytes.extend_from_slice(&body);
        let _ = Envelope::<Request>::decode(&bytes);
        let _ = Envelope::<Response>::decode(&bytes);
    }

    #[test]
    fn single_byte_corruption_never_panics(id in any::<u64>(), req in request(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = req.encode(id).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        // The encoding is canonical: whatever decodes re-encodes to the same bytes.
        if let Ok(m) = Envelope::<Request>::decode(&bytes) {
            prop_assert_eq!(m.encode().unwrap(), bytes);
        }
    }
}

//! Decode arbitrary bytes as a frame stream and as Request/Response and phase-one gateway
//! messages: never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tresor_proto::gateway::GatewayMsg;
use tresor_proto::tokio_util::codec::Decoder;
use tresor_proto::{read_frame, Envelope, FrameCodec, Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Envelope::<Request>::decode(data) {
        assert_eq!(m.encode().ok().as_deref(), Some(data));
    }
    if let Ok(m) = Envelope::<Response>::decode(data) {
        assert_eq!(m.encode().ok().as_deref(), Some(data));
    }
    if let Ok(m) = Envelope::<GatewayMsg>::decode(data) {
        assert_eq!(m.encode().ok().as_deref(), Some(data));
    }
    let mut reader = data;
    while let Ok(Some(frame)) = read_frame(&mut reader, 1 << 16) {
        let _ = Envelope::<Request>::decode(&frame);
        let _ = Envelope::<Response>::decode(&frame);
    }
    let mut codec = FrameCodec::new(1 << 16);
    let mut buf = tresor_proto::bytes::BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        let _ = Envelope::<Request>::decode(&frame);
        let _ = Envelope::<Response>::decode(&frame);
    }
    let _ = codec.decode_eof(&mut buf);
});

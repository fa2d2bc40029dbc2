//! Precise decoding errors, size limits, Debug redaction and message helpers.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};
use tresor_proto::{
    read_frame, write_frame, Envelope, FrameCodec, Mechanism, ProtoError, Request, Response,
    Secret, Template, UserType,
};

fn req(bytes: &[u8]) -> Result<Envelope<Request>, ProtoError> {
    Envelope::<Request>::decode(bytes)
}

fn header(kind: u8) -> Vec<u8> {
    let mut v = vec![1, kind];
    v.extend_from_slice(&7u64.to_be_bytes());
    v
}

#[test]
fn short_header() {
    for n in 0..10 {
        let bytes = vec![1u8; n];
        assert!(
            matches!(req(&bytes), Err(ProtoError::ShortHeader { len, needed: 10 }) if len == n)
        );
    }
}

#[test]
fn unknown_version() {
    let mut b = header(0x01);
    b[0] = 2;
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));
}

#[test]
fn unknown_kinds_and_directions() {
    for kind in [0x00, 0x60, 0x7f, 0x81, 0xff] {
        assert!(matches!(
            req(&header(kind)),
            Err(ProtoError::UnknownKind { direction: "request", kind: k }) if k == kind
        ));
    }
    // A request kind is not a response kind.
    assert!(matches!(
        Envelope::<Response>::decode(&header(0x01)),
        Err(ProtoError::UnknownKind {
            direction: "response",
            kind: 0x01
        })
    ));
    // Every code is distinct and each response code is its request's code | 0x80.
    let mut all: Vec<u8> = Request::CODES
        .iter()
        .chain(Response::CODES)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), Request::CODES.len() + Response::CODES.len());
    assert_eq!(Request::CODES.len() + 1, Response::CODES.len());
    // Tresor's own additions stay in their range.
    for code in [0x30u8, 0x31, 0x32] {
        assert!(Request::CODES.contains(&code) && Response::CODES.contains(&(code | 0x80)));
    }
    for (q, r) in Request::CODES.iter().zip(Response::CODES) {
        assert_eq!(q | 0x80, *r);
    }
}

#[test]
fn unknown_tags() {
    // Login with user type 0x05.
    let mut b = header(0x04);
    b.push(0x05);
    b.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "UserType",
            tag: 5,
            offset: 10
        })
    ));
    // Sign with mechanism tag 0x99.
    let mut b = header(0x11);
    b.extend_from_slice(&1i64.to_be_bytes());
    b.push(0x99);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "Mechanism",
            tag: 0x99,
            offset: 18
        })
    ));
    // Template attribute value tag 0x03.
    let mut b = header(0x08);
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&[0x03, 0, 0, 0, 0]);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "AttrValue",
            tag: 3,
            offset: 22
        })
    ));
    // CreatePartition with option tag 0x02.
    let mut b = header(0x20);
    b.extend_from_slice(&[0, 0, 0, 1, b'p', 0, 0, 0, 0, 2]);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "option",
            tag: 2,
            ..
        })
    ));
}

#[test]
fn invalid_bool_and_utf8() {
    let mut b = header(0x08);
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&[0x00, 0x02]);
    assert!(matches!(
        req(&b),
        Err(ProtoError::InvalidBool {
            byte: 2,
            offset: 23
        })
    ));
    let mut b = header(0x02);
    b.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0x28]);
    assert!(matches!(
        req(&b),
        Err(ProtoError::InvalidUtf8 { offset: 10 })
    ));
}

#[test]
fn counts_and_lengths_are_checked_against_the_input() {
    // GetAttributes declaring 2^32-1 types in a 24-byte message: refused before allocating.
    let mut b = header(0x0e);
    b.extend_from_slice(&1i64.to_be_bytes());
    b.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        req(&b),
        Err(ProtoError::CountTooLarge {
            count: 0xffff_ffff,
            offset: 18,
            remaining: 0
        })
    ));
    // A byte string declaring more than is left.
    let mut b = header(0x02);
    b.extend_from_slice(&[0, 0, 1, 0, b'a']);
    assert!(matches!(
        req(&b),
        Err(ProtoError::Truncated {
            offset: 14,
            needed: 256,
            remaining: 1
        })
    ));
}

#[test]
fn frame_limits() {
    let mut codec = FrameCodec::new(16);
    // Declared length above the maximum: refused from the prefix alone.
    let mut buf = BytesMut::from(&17u32.to_be_bytes()[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(ProtoError::FrameTooLarge { len: 17, max: 16 })
    ));
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&[0u8; 17][..], &mut out),
        Err(ProtoError::FrameTooLarge { len: 17, max: 16 })
    ));
    codec.encode(&[9u8; 16][..], &mut out).unwrap();
    assert_eq!(out.len(), 20);
    assert_eq!(
        codec.decode(&mut out).unwrap().unwrap().as_ref(),
        &[9u8; 16]
    );
    assert!(out.is_empty());

    // Blocking reader: the body is never read when the prefix is too large.
    let mut stream: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    assert!(matches!(
        read_frame(&mut stream, tresor_proto::DEFAULT_MAX_FRAME_LEN),
        Err(ProtoError::FrameTooLarge {
            len: 0xffff_ffff,
            ..
        })
    ));
    assert_eq!(stream, &[1, 2, 3]);
    let mut sink = Vec::new();
    assert!(write_frame(&mut sink, &[0; 17], 16).is_err());
    assert!(sink.is_empty());
    write_frame(&mut sink, b"abc", 16).unwrap();
    assert_eq!(sink, b"\0\0\0\x03abc");
    // A peer announcing 16 MiB and sending 3 bytes: a clean EOF error, no hang.
    let mut stream: &[u8] = &[0x01, 0x00, 0x00, 0x00, 1, 2, 3];
    assert!(matches!(
        read_frame(&mut stream, tresor_proto::DEFAULT_MAX_FRAME_LEN),
        Err(ProtoError::UnexpectedEof {
            expected: 0x0100_0004,
            got: 7
        })
    ));
}

#[test]
fn secrets_never_print() {
    let r = Request::CreatePartition {
        name: "p1".into(),
        so_pin: Secret::from_slice(b"so-pin-9876"),
        user_pin: Some(Secret::from_slice(b"user-pin-5432")),
    };
    let s = format!("{r:?}");
    assert!(
        !s.contains("9876") && !s.contains("5432") && !s.contains("57, 56"),
        "{s}"
    );
    assert!(s.contains("Secret(11 bytes)"), "{s}");
    let r = Request::Login {
        user: UserType::User,
        pin: Secret::from_slice(&[0x41; 6]),
    };
    assert!(!format!("{r:?}").contains("65"));
    let r = Request::CreateObject {
        template: Template::new().with_bytes(0x11, b"KEYMATERIAL"),
    };
    assert!(!format!("{r:?}").contains("75, 69"));
    assert!(!format!(
        "{:?}",
        Response::Decrypted {
            plaintext: b"plain"[..].into()
        }
    )
    .contains("112"));
}

#[test]
fn helpers() {
    let sign = Request::Sign {
        key: 1,
        mechanism: Mechanism::Eddsa {},
        data: Secret::default(),
    };
    assert!(Response::Signature { signature: vec![] }.answers(&sign));
    assert!(Response::error(0x5, "x").answers(&sign));
    assert!(!Response::Verified {}.answers(&sign));
    assert!(sign.is_idempotent());
    assert!(!Request::DestroyObject { object: 1 }.is_idempotent());
    assert_eq!(sign.name(), "Sign");
    assert_eq!(sign.code(), 0x11);
}

#[tokio::test]
async fn tokio_framed_roundtrip_and_eof_mid_frame() {
    use futures_util::SinkExt;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::{FramedRead, FramedWrite};
    use tresor_proto::MessageCodec;

    let (client, server) = tokio::io::duplex(64);
    let mut tx = FramedWrite::new(client, MessageCodec::<Response, Request>::default());
    let mut rx = FramedRead::new(server, MessageCodec::<Request, Response>::default());
    let big = Request::Encrypt {
        key: 3,
        mechanism: Mechanism::AesCbcPad { iv: vec![0; 16] },
        data: Secret::new(vec![7; 100_000]),
    };
    let send = async {
        tx.send(Envelope::new(1, Request::Ping {})).await.unwrap();
        tx.send(Envelope::new(2, big.clone())).await.unwrap();
        let mut inner = tx.into_inner();
        // Half a frame, then the stream ends.
        inner.write_all(&[0, 0, 0, 50, 1, 1]).await.unwrap();
        inner.shutdown().await.unwrap();
    };
    let recv = async {
        use futures_util::StreamExt as _;
        let mut got = Vec::new();
        while let Some(item) = rx.next().await {
            got.push(item);
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].as_ref().unwrap(),
        &Envelope::new(1, Request::Ping {})
    );
    assert_eq!(got[1].as_ref().unwrap(), &Envelope::new(2, big));
    assert!(matches!(
        got[2],
        Err(ProtoError::UnexpectedEof {
            expected: 54,
            got: 6
        })
    ));
}

#[test]
fn key_password_wrapper_never_nests() {
    // WithKeyPasswords (0x30): no passwords, then a wrapped request whose code is 0x30 again.
    let mut b = header(0x30);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.push(0x30);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.push(0x01);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "wrapped request",
            tag: 0x30,
            offset: 14
        })
    ));
    // An unknown wrapped code is refused the same way.
    let mut b = header(0x30);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.push(0x7e);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "wrapped request",
            tag: 0x7e,
            ..
        })
    ));
    // Encoding refuses to nest, too.
    let nested = Request::WithKeyPasswords {
        passwords: vec![],
        request: Box::new(Request::WithKeyPasswords {
            passwords: vec![],
            request: Box::new(Request::Ping {}),
        }),
    };
    assert!(matches!(
        nested.encode(1),
        Err(ProtoError::Unrepresentable(_))
    ));
    // An answer never wraps an error or another wrapped answer.
    let mut b = header(0xb0);
    b.push(0xff);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(
        Envelope::<Response>::decode(&b),
        Err(ProtoError::UnknownTag {
            what: "wrapped response",
            tag: 0xff,
            ..
        })
    ));
    let wrapped_error = Response::WithKeyPasswords {
        response: Box::new(Response::error(5, "x")),
    };
    assert!(wrapped_error.encode(1).is_err());
}

#[test]
fn key_password_wrapper_is_as_idempotent_as_its_request() {
    let wrap = |r: Request| Request::WithKeyPasswords {
        passwords: vec![],
        request: Box::new(r),
    };
    let sign = wrap(Request::Sign {
        key: 1,
        mechanism: Mechanism::Eddsa {},
        data: Secret::default(),
    });
    assert!(sign.is_idempotent());
    assert!(!wrap(Request::DestroyObject { object: 1 }).is_idempotent());
    assert!(!Request::ChangeKeyPassword {
        key: 1,
        new_password: None
    }
    .is_idempotent());
    assert!(Response::WithKeyPasswords {
        response: Box::new(Response::Signature { signature: vec![] })
    }
    .answers(&sign));
}

#[test]
fn the_two_request_wrappers_never_wrap_each_other() {
    // Sealing (0x28) around WithKeyPasswords (0x30), and the other way round: each would let
    // a decoder recurse once per layer, so both are refused at the inner code.
    let mut b = header(0x28);
    b.push(0x30);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.push(0x01);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "wrapped request",
            tag: 0x30,
            ..
        })
    ));
    let mut b = header(0x30);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.push(0x28);
    b.push(0x01);
    assert!(matches!(
        req(&b),
        Err(ProtoError::UnknownTag {
            what: "wrapped request",
            tag: 0x28,
            ..
        })
    ));
    let sealing_in_passwords = Request::WithKeyPasswords {
        passwords: vec![],
        request: Box::new(Request::Sealing {
            request: Box::new(Request::Ping {}),
        }),
    };
    assert!(Envelope::new(1, sealing_in_passwords).encode().is_err());
    let passwords_in_sealing = Request::Sealing {
        request: Box::new(Request::WithKeyPasswords {
            passwords: vec![],
            request: Box::new(Request::Ping {}),
        }),
    };
    assert!(Envelope::new(1, passwords_in_sealing).encode().is_err());
    // Answers: neither wrapper carries the other, nor an error.
    let sealed_in_answer = Response::WithKeyPasswords {
        response: Box::new(Response::Sealed {
            objects: vec![],
            answer: Box::new(Response::KeyBlocked {}),
        }),
    };
    assert!(Envelope::new(1, sealed_in_answer).encode().is_err());
    let error_in_sealed = Response::Sealed {
        objects: vec![],
        answer: Box::new(Response::Error {
            rv: 5,
            message: String::new(),
        }),
    };
    assert!(Envelope::new(1, error_in_sealed).encode().is_err());
}

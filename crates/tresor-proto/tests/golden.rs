//! Golden vectors: the exact encoding of representative messages. A failure here means the
//! wire format changed: if that is deliberate, bump `PROTOCOL_VERSION`, update the README's
//! layout and these constants together.
#![allow(clippy::unwrap_used)]

use tresor_proto::{
    Envelope, GcmParams, HashAlg, KeyPassword, Mechanism, Message, Request, Response, SealedObject,
    Secret, Template, UserType,
};

const CKA_TOKEN: u64 = 0x1;
const CKA_LABEL: u64 = 0x3;
const CKA_SENSITIVE: u64 = 0x103;
const CKA_SIGN: u64 = 0x108;
const CKA_VERIFY: u64 = 0x10a;
const CKA_EC_PARAMS: u64 = 0x180;
const CKM_EC_KEY_PAIR_GEN: u64 = 0x1040;
const CKR_PIN_INCORRECT: u64 = 0xa0;
/// DER of the P-256 OID.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn check<M: Message + Eq>(msg: Envelope<M>, golden: &str) {
    let bytes = msg.encode().unwrap();
    assert_eq!(hex::encode(&bytes), golden, "encoding of {msg:?} changed");
    let decoded = Envelope::<M>::decode(&hex::decode(golden).unwrap()).unwrap();
    assert_eq!(decoded, msg);
}

// version 01 | kind 01 | request id 1
const PING: &str = "0101\
0000000000000001";

#[test]
fn ping() {
    check(Envelope::new(1, Request::Ping {}), PING);
}

// version 01 | kind 81 | id 1 | max_frame_len 0x01000000
const PONG: &str = "0181\
0000000000000001\
01000000";

#[test]
fn pong() {
    check(
        Envelope::new(
            1,
            Response::Pong {
                max_frame_len: 16 << 20,
            },
        ),
        PONG,
    );
}

// version 01 | kind 04 | id 2 | user 01 | pin: len 6 "123456"
const LOGIN: &str = "0104\
0000000000000002\
01\
00000006313233343536";

#[test]
fn login() {
    check(
        Envelope::new(
            2,
            Request::Login {
                user: UserType::User,
                pin: Secret::from_slice(b"123456"),
            },
        ),
        LOGIN,
    );
}

// version 01 | kind 0a | id 3 | mechanism 0x1040
// public template: 3 attributes (type u64 | tag | value)
// private template: 4 attributes
const GENERATE_KEY_PAIR: &str = "010a\
0000000000000003\
0000000000001040\
00000003\
0000000000000001 00 01\
000000000000010a 00 01\
0000000000000180 02 0000000a 06082a8648ce3d030107\
00000004\
0000000000000001 00 01\
0000000000000108 00 01\
0000000000000103 00 01\
0000000000000003 02 00000002 6b31";

#[test]
fn generate_key_pair() {
    check(
        Envelope::new(
            3,
            Request::GenerateKeyPair {
                mechanism: CKM_EC_KEY_PAIR_GEN,
                public_template: Template::new()
                    .with_bool(CKA_TOKEN, true)
                    .with_bool(CKA_VERIFY, true)
                    .with_bytes(CKA_EC_PARAMS, P256_OID),
                private_template: Template::new()
                    .with_bool(CKA_TOKEN, true)
                    .with_bool(CKA_SIGN, true)
                    .with_bool(CKA_SENSITIVE, true)
                    .with_bytes(CKA_LABEL, b"k1"),
            },
        ),
        &GENERATE_KEY_PAIR.replace(' ', ""),
    );
}

// version 01 | kind 8a | id 3 | public 0x10 | private 0x11
const KEY_PAIR_GENERATED: &str = "018a\
0000000000000003\
0000000000000010\
0000000000000011";

#[test]
fn key_pair_generated() {
    check(
        Envelope::new(
            3,
            Response::KeyPairGenerated {
                public_key: 0x10,
                private_key: 0x11,
            },
        ),
        KEY_PAIR_GENERATED,
    );
}

// version 01 | kind 11 | id 4 | key 42 | mechanism EcdsaHash 07, Sha256 02 | data "hello"
const SIGN_ECDSA: &str = "0111\
0000000000000004\
000000000000002a\
07 02\
00000005 68656c6c6f";

#[test]
fn sign_ecdsa() {
    check(
        Envelope::new(
            4,
            Request::Sign {
                key: 42,
                mechanism: Mechanism::EcdsaHash {
                    hash: HashAlg::Sha256,
                },
                data: Secret::from_slice(b"hello"),
            },
        ),
        &SIGN_ECDSA.replace(' ', ""),
    );
}

// version 01 | kind 91 | id 4 | signature: len 4 deadbeef
const SIGNATURE: &str = "0191\
0000000000000004\
00000004deadbeef";

#[test]
fn signature() {
    check(
        Envelope::new(
            4,
            Response::Signature {
                signature: vec![0xde, 0xad, 0xbe, 0xef],
            },
        ),
        SIGNATURE,
    );
}

// version 01 | kind 14 | id 5 | key 7 | mechanism AesGcm 12: iv (12) | aad "hdr" | tag 128
// | data "secret"
const ENCRYPT_AES_GCM: &str = "0114\
0000000000000005\
0000000000000007\
12 0000000c 000102030405060708090a0b 00000003 686472 00000080\
00000006 736563726574";

#[test]
fn encrypt_aes_gcm() {
    check(
        Envelope::new(
            5,
            Request::Encrypt {
                key: 7,
                mechanism: Mechanism::AesGcm {
                    params: GcmParams {
                        iv: (0u8..12).collect(),
                        aad: b"hdr".to_vec(),
                        tag_bits: 128,
                    },
                },
                data: Secret::from_slice(b"secret"),
            },
        ),
        &ENCRYPT_AES_GCM.replace(' ', ""),
    );
}

// version 01 | kind ff | id 2 | rv 0xa0 | message "wrong PIN"
const ERROR_PIN_INCORRECT: &str = "01ff\
0000000000000002\
00000000000000a0\
00000009 77726f6e672050494e";

#[test]
fn error_response() {
    check(
        Envelope::new(2, Response::error(CKR_PIN_INCORRECT, "wrong PIN")),
        &ERROR_PIN_INCORRECT.replace(' ', ""),
    );
}

#[test]
fn request_vector_is_not_a_response() {
    // A request's bytes never decode as a response, and vice versa.
    for golden in [PING, LOGIN, GENERATE_KEY_PAIR, SIGN_ECDSA, ENCRYPT_AES_GCM] {
        let bytes = hex::decode(golden.replace(' ', "")).unwrap();
        assert!(Envelope::<Response>::decode(&bytes).is_err());
    }
    for golden in [PONG, KEY_PAIR_GENERATED, SIGNATURE, ERROR_PIN_INCORRECT] {
        let bytes = hex::decode(golden.replace(' ', "")).unwrap();
        assert!(Envelope::<Request>::decode(&bytes).is_err());
    }
}

// version 01 | kind 25 | id 3 | partition "P1" | token 01 02
const ATTACH: &str = "0125\
0000000000000003\
000000025031\
000000020102";

#[test]
fn attach_session() {
    check(
        Envelope::new(
            3,
            Request::AttachSession {
                partition: "P1".into(),
                token: vec![1, 2],
            },
        ),
        ATTACH,
    );
}

// version 01 | kind a5 | id 3 | context 9 | partition 2 | joined 01 | login Some(User)
const ATTACHED: &str = "01a5\
0000000000000003\
0000000000000009\
0000000000000002\
01\
0101";

#[test]
fn session_attached() {
    check(
        Envelope::new(
            3,
            Response::SessionAttached {
                context_id: 9,
                partition_id: 2,
                joined: true,
                login: Some(UserType::User),
            },
        ),
        ATTACHED,
    );
}

// version 01 | kind 24 | id 4 | partition "P1" | setup "AB" | pin "12" | spki 30 | label "x"
const REGISTER: &str = "0124\
0000000000000004\
000000025031\
000000024142\
000000023132\
0000000130\
0000000178";

#[test]
fn register_client() {
    check(
        Envelope::new(
            4,
            Request::RegisterClient {
                partition: "P1".into(),
                setup_password: Secret::from_slice(b"AB"),
                pin: Secret::from_slice(b"12"),
                public_key: vec![0x30],
                label: "x".into(),
            },
        ),
        REGISTER,
    );
}

// version 01 | kind 26 | id 5 | so_pin "so-1" | label "P1" + 30 blanks
const INIT_TOKEN: &str = "0126\
0000000000000005\
00000004 736f2d31\
00000020 5031202020202020202020202020202020202020202020202020202020202020";

#[test]
fn init_token() {
    let mut label = vec![b' '; 32];
    label[..2].copy_from_slice(b"P1");
    check(
        Envelope::new(
            5,
            Request::InitToken {
                so_pin: Secret::from_slice(b"so-1"),
                label,
            },
        ),
        &INIT_TOKEN.replace(' ', ""),
    );
}

// version 01 | kind a6 | id 5 | objects_destroyed 3
const TOKEN_INITIALIZED: &str = "01a6\
0000000000000005\
0000000000000003";

#[test]
fn token_initialized() {
    check(
        Envelope::new(
            5,
            Response::TokenInitialized {
                objects_destroyed: 3,
            },
        ),
        TOKEN_INITIALIZED,
    );
}

// version 01 | kind 27 | id 6
const TOKEN_STATUS: &str = "0127\
0000000000000006";

// version 01 | kind a7 | id 6 | user pin initialised 00 | so failures 1 | user failures 0 | max 10
const TOKEN_STATUS_ANSWER: &str = "01a7\
0000000000000006\
00\
00000001\
00000000\
0000000a";

#[test]
fn token_status() {
    check(Envelope::new(6, Request::TokenStatus {}), TOKEN_STATUS);
    check(
        Envelope::new(
            6,
            Response::TokenStatus {
                user_pin_initialized: false,
                so_failures: 1,
                user_failures: 0,
                max_failures: 10,
            },
        ),
        TOKEN_STATUS_ANSWER,
    );
}

// version 01 | kind 28 | id 7 | wrapped kind 0b (DestroyObject) | object -2
const SEALING: &str = "0128\
0000000000000007\
0b fffffffffffffffe";

#[test]
fn sealing() {
    check(
        Envelope::new(
            7,
            Request::Sealing {
                request: Box::new(Request::DestroyObject { object: -2 }),
            },
        ),
        &SEALING.replace(' ', ""),
    );
}

// version 01 | kind a8 | id 7 | 1 sealed object: object -2, version 1, blob 01 aa
// | wrapped kind 89 (KeyGenerated) | key -2
const SEALED: &str = "01a8\
0000000000000007\
00000001 fffffffffffffffe 0000000000000001 00000002 01aa\
89 fffffffffffffffe";

#[test]
fn sealed() {
    check(
        Envelope::new(
            7,
            Response::Sealed {
                objects: vec![SealedObject {
                    object: -2,
                    version: 1,
                    sealed: vec![0x01, 0xaa],
                }],
                answer: Box::new(Response::KeyGenerated { key: -2 }),
            },
        ),
        &SEALED.replace(' ', ""),
    );
}

// version 01 | kind 29 | id 8 | 1 object: -3, version 2, blob 01
const RESTORE: &str = "0129\
0000000000000008\
00000001 fffffffffffffffd 0000000000000002 00000001 01";

// version 01 | kind a9 | id 8 | restored 1
const RESTORED: &str = "01a9\
0000000000000008\
00000001";

#[test]
fn restore_session_objects() {
    check(
        Envelope::new(
            8,
            Request::RestoreSessionObjects {
                objects: vec![SealedObject {
                    object: -3,
                    version: 2,
                    sealed: vec![0x01],
                }],
            },
        ),
        &RESTORE.replace(' ', ""),
    );
    check(
        Envelope::new(8, Response::SessionObjectsRestored { restored: 1 }),
        RESTORED,
    );
}

#[test]
fn wrappers_do_not_nest() {
    // A Sealing inside a Sealing, a Sealed inside a Sealed: refused at the inner kind byte.
    let nested = hex::decode("012800000000000000072801").unwrap();
    assert!(matches!(
        Envelope::<Request>::decode(&nested),
        Err(tresor_proto::ProtoError::UnknownTag {
            tag: 0x28,
            offset: 10,
            ..
        })
    ));
    let nested = hex::decode("01a80000000000000007 00000000 a8".replace(' ', "")).unwrap();
    assert!(matches!(
        Envelope::<Response>::decode(&nested),
        Err(tresor_proto::ProtoError::UnknownTag {
            tag: 0xa8,
            offset: 14,
            ..
        })
    ));
    // A wrapped kind that is not a request at all.
    let unknown = hex::decode("0128000000000000000760").unwrap();
    assert!(matches!(
        Envelope::<Request>::decode(&unknown),
        Err(tresor_proto::ProtoError::UnknownTag { tag: 0x60, .. })
    ));
}
// version 01 | kind 30 | id 6 | passwords: 1 × (key 42 | password "pw") | wrapped request:
// code 11 (Sign) | key 42 | EcdsaHash 07, Sha256 02 | data "hi"
const WITH_KEY_PASSWORDS: &str = "0130\
0000000000000006\
00000001 000000000000002a 00000002 7077\
11 000000000000002a 07 02 00000002 6869";

#[test]
fn with_key_passwords() {
    check(
        Envelope::new(
            6,
            Request::WithKeyPasswords {
                passwords: vec![KeyPassword {
                    key: 42,
                    password: Secret::from_slice(b"pw"),
                }],
                request: Box::new(Request::Sign {
                    key: 42,
                    mechanism: Mechanism::EcdsaHash {
                        hash: HashAlg::Sha256,
                    },
                    data: Secret::from_slice(b"hi"),
                }),
            },
        ),
        &WITH_KEY_PASSWORDS.replace(' ', ""),
    );
}

// version 01 | kind b0 | id 6 | wrapped answer: code 91 (Signature) | len 2 abcd
const WITH_KEY_PASSWORDS_ANSWER: &str = "01b0\
0000000000000006\
91 00000002 abcd";

#[test]
fn with_key_passwords_answer() {
    check(
        Envelope::new(
            6,
            Response::WithKeyPasswords {
                response: Box::new(Response::Signature {
                    signature: vec![0xab, 0xcd],
                }),
            },
        ),
        &WITH_KEY_PASSWORDS_ANSWER.replace(' ', ""),
    );
}

// version 01 | kind 31 | id 7 | key 42 | new password Some("n") ; answer kind b1
const CHANGE_KEY_PASSWORD: &str = "0131\
0000000000000007\
000000000000002a 01 00000001 6e";
const KEY_PASSWORD_CHANGED: &str = "01b1\
0000000000000007";

#[test]
fn change_key_password() {
    check(
        Envelope::new(
            7,
            Request::ChangeKeyPassword {
                key: 42,
                new_password: Some(Secret::from_slice(b"n")),
            },
        ),
        &CHANGE_KEY_PASSWORD.replace(' ', ""),
    );
    check(
        Envelope::new(7, Response::KeyPasswordChanged {}),
        KEY_PASSWORD_CHANGED,
    );
}

// version 01 | kind 32 | id 8 | key 42 | policy "{}" ; answer kind b2
const MODIFY_POLICY: &str = "0132\
0000000000000008\
000000000000002a 00000002 7b7d";
const POLICY_MODIFIED: &str = "01b2\
0000000000000008";

#[test]
fn modify_policy() {
    check(
        Envelope::new(
            8,
            Request::ModifyPolicy {
                key: 42,
                policy: b"{}".to_vec(),
            },
        ),
        &MODIFY_POLICY.replace(' ', ""),
    );
    check(
        Envelope::new(8, Response::PolicyModified {}),
        POLICY_MODIFIED,
    );
}

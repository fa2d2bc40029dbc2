//! Black-box tests of the multi-part message functions (PKCS#11 3.0: `C_EncryptMessageBegin`
//! / `Next`, `C_DecryptMessageBegin` / `Next`, `C_SignMessageBegin` / `Next`,
//! `C_VerifyMessageBegin` / `Next`) of the built library against a real stack: with the
//! `cryptoki` crate's message API where it has one (AES-GCM encryption and decryption), else
//! through the raw function list. Also: `CKF_MULTI_MESSAGE` is advertised exactly for the
//! mechanisms whose `C_…MessageBegin` works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The raw checks call the C ABI directly.
#![allow(unsafe_code)]

mod common;

use std::net::SocketAddr;
use std::ptr;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::{GcmMessageParams, GeneratorFunction};
use cryptoki::mechanism::{Mechanism, MessageParam};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys as sys;

use common::{RawLib, Stack, USER_PIN};

macro_rules! call {
    ($raw:expr, $f:ident ( $($a:expr),* )) => {
        // SAFETY: test code calling the library with the pointers each case sets up.
        unsafe { ($raw.f.$f.unwrap())($($a),*) }
    };
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

struct T<'a> {
    raw: &'a RawLib,
    p: &'a Pkcs11,
    slot: Slot,
    s: Session,
    h: sys::CK_SESSION_HANDLE,
    http: SocketAddr,
}

/// A named check.
type Step = Box<dyn Fn(&T<'_>)>;

fn mech(ty: sys::CK_MECHANISM_TYPE) -> sys::CK_MECHANISM {
    sys::CK_MECHANISM {
        mechanism: ty,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    }
}

fn gcm_params(
    iv: &mut [u8; 12],
    generator: sys::CK_ULONG,
    tag: &mut [u8; 16],
) -> sys::CK_GCM_MESSAGE_PARAMS {
    sys::CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvFixedBits: 32,
        ivGenerator: generator,
        pTag: tag.as_mut_ptr(),
        ulTagBits: 128,
    }
}

const GCM_SIZE: sys::CK_ULONG = std::mem::size_of::<sys::CK_GCM_MESSAGE_PARAMS>() as _;

fn plain(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 + 1) as u8).collect()
}

impl T<'_> {
    fn requests(&self) -> u64 {
        Stack::requests(self.http)
    }

    /// `C_EncryptMessageNext` / `C_DecryptMessageNext` through the raw ABI.
    #[allow(clippy::too_many_arguments)]
    fn next(
        &self,
        encrypt: bool,
        params: *mut std::ffi::c_void,
        size: sys::CK_ULONG,
        part: &[u8],
        cap: Option<usize>,
        flags: sys::CK_FLAGS,
    ) -> (sys::CK_RV, sys::CK_ULONG, Vec<u8>) {
        let mut out = vec![0u8; cap.unwrap_or(0)];
        let mut len = cap.unwrap_or(0) as sys::CK_ULONG;
        let o = if cap.is_some() {
            out.as_mut_ptr()
        } else {
            ptr::null_mut()
        };
        let f = if encrypt {
            self.raw.f.C_EncryptMessageNext.unwrap()
        } else {
            self.raw.f.C_DecryptMessageNext.unwrap()
        };
        // SAFETY: the buffers are valid for their lengths.
        let rv = unsafe {
            f(
                self.h,
                params,
                size,
                part.as_ptr() as *mut u8,
                part.len() as _,
                o,
                &mut len,
                flags,
            )
        };
        out.truncate((len as usize).min(out.len()));
        (rv, len, out)
    }
}

#[test]
fn multi_part_messages() {
    let stack = Stack::start(1, 1);
    stack.export_env();
    let lib = common::library();
    let p = Pkcs11::new(&lib).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let raw = RawLib::load(&lib);
    let slot = p
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| s.id() == 0)
        .unwrap();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let mut h = 0;
    assert_eq!(
        call!(
            raw,
            C_OpenSession(0, sys::CKF_SERIAL_SESSION, ptr::null_mut(), None, &mut h)
        ),
        sys::CKR_OK
    );
    let t = T {
        raw: &raw,
        p: &p,
        slot,
        s,
        h,
        http: stack.nodes[0].3,
    };
    let steps: Vec<(&str, Step)> = vec![
        ("gcm with cryptoki", Box::new(gcm_with_cryptoki)),
        ("gcm rules", Box::new(gcm_rules)),
        ("chacha20-poly1305", Box::new(chacha_poly)),
        ("sign and verify", Box::new(sign_verify)),
        ("flags", Box::new(flags_match_behaviour)),
    ];
    for (name, f) in steps {
        eprintln!("--- {name}");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&t)));
        if let Err(e) = r {
            eprintln!("--- node log\n{}", stack.node_log("node1"));
            std::panic::resume_unwind(e);
        }
    }
    assert_eq!(call!(raw, C_CloseSession(h)), sys::CKR_OK);
    drop(t);
    p.finalize().unwrap();
}

fn aes_key(s: &Session) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )
    .unwrap()
}

/// The `cryptoki` crate's message API: a generated IV comes back at Begin, the tag with the
/// last part; the result equals the single-part message and decrypts in parts.
fn gcm_with_cryptoki(t: &T<'_>) {
    let key = aes_key(&t.s);
    let data = plain(100);
    let aad = b"header";
    let mut iv = [0xA5u8; 12];
    let mut tag = [0u8; 16];
    let mut unused_iv = [0u8; 12];
    let mut unused_tag = [0u8; 16];
    let init = GcmMessageParams::new(
        &mut unused_iv,
        0.into(),
        GeneratorFunction::NoGenerate,
        &mut unused_tag,
    )
    .unwrap();
    t.s.message_encrypt_init(&Mechanism::AesGcmMessage(init), key)
        .unwrap();
    let param = GcmMessageParams::new(
        &mut iv,
        32.into(),
        GeneratorFunction::GenerateRandom,
        &mut tag,
    )
    .unwrap();
    t.s.encrypt_message_begin(MessageParam::AesGcmMessage(param), aad)
        .unwrap();
    let mut seen = param;
    assert_eq!(seen.iv()[..4], [0xA5; 4], "the fixed part is kept");
    assert_ne!(seen.iv()[4..], [0xA5; 8], "the rest was generated at Begin");
    assert_eq!(seen.tag(), [0; 16], "no tag before the end");
    let mut ct = Vec::new();
    for (i, part) in data.chunks(40).enumerate() {
        let last = i == 2;
        let out =
            t.s.encrypt_message_next(MessageParam::AesGcmMessage(param), part, last)
                .unwrap();
        if !last {
            assert!(out.is_empty(), "parts are gathered until the end");
        }
        ct.extend_from_slice(&out);
    }
    assert_eq!(ct.len(), data.len());
    assert_ne!(tag, [0; 16], "the tag came with the last part");
    // The same message in one part, with the IV that was generated.
    let mut iv2 = iv;
    let mut tag2 = [0u8; 16];
    let single =
        GcmMessageParams::new(&mut iv2, 0.into(), GeneratorFunction::NoGenerate, &mut tag2)
            .unwrap();
    let one =
        t.s.encrypt_message(&MessageParam::AesGcmMessage(single), aad, &data)
            .unwrap();
    assert_eq!(one, ct);
    assert_eq!(tag2, tag);
    t.s.message_encrypt_final().unwrap();
    // Decrypt in parts with the IV and the tag.
    t.s.message_decrypt_init(&Mechanism::AesGcmMessage(init), key)
        .unwrap();
    let param =
        GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
    t.s.decrypt_message_begin(MessageParam::AesGcmMessage(param), aad)
        .unwrap();
    let mut back = Vec::new();
    for (i, part) in ct.chunks(33).enumerate() {
        let out =
            t.s.decrypt_message_next(MessageParam::AesGcmMessage(param), part, i == 3)
                .unwrap();
        back.extend_from_slice(&out);
    }
    assert_eq!(back, data);
    t.s.message_decrypt_final().unwrap();
    t.s.destroy_object(key).unwrap();
}

/// The rules through the raw ABI: state errors, flags, length queries and short buffers that
/// consume nothing, a bad tag, and the requests a message costs.
fn gcm_rules(t: &T<'_>) {
    let key = aes_key(&t.s);
    let data = plain(70);
    let mut m = mech(sys::CKM_AES_GCM);
    let mut iv = [1u8; 12];
    let mut tag = [0u8; 16];
    let mut params = gcm_params(&mut iv, sys::CKG_GENERATE_COUNTER, &mut tag);
    let pp = &mut params as *mut _ as *mut std::ffi::c_void;
    // No message-based encryption yet.
    assert_eq!(
        call!(
            t.raw,
            C_EncryptMessageBegin(t.h, pp, GCM_SIZE, ptr::null_mut(), 0)
        ),
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(t.raw, C_MessageEncryptInit(t.h, &mut m, key.handle())),
        sys::CKR_OK
    );
    // Next before Begin.
    assert_eq!(
        t.next(true, pp, GCM_SIZE, &data, Some(100), 0).0,
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    let mut ok = false;
    for _ in 0..3 {
        let before = t.requests();
        assert_eq!(
            call!(
                t.raw,
                C_EncryptMessageBegin(t.h, pp, GCM_SIZE, b"ad".as_ptr() as *mut u8, 2)
            ),
            sys::CKR_OK
        );
        // A second Begin, and a single-part message, while one is under way.
        assert_eq!(
            call!(
                t.raw,
                C_EncryptMessageBegin(t.h, pp, GCM_SIZE, ptr::null_mut(), 0)
            ),
            sys::CKR_OPERATION_ACTIVE
        );
        let mut n: sys::CK_ULONG = 0;
        assert_eq!(
            call!(
                t.raw,
                C_EncryptMessage(
                    t.h,
                    pp,
                    GCM_SIZE,
                    ptr::null_mut(),
                    0,
                    data.as_ptr() as *mut u8,
                    4,
                    ptr::null_mut(),
                    &mut n
                )
            ),
            sys::CKR_OPERATION_ACTIVE
        );
        // Flags other than 0 and CKF_END_OF_MESSAGE.
        assert_eq!(
            t.next(true, pp, GCM_SIZE, &data, Some(100), 0x8).0,
            sys::CKR_ARGUMENTS_BAD
        );
        // A part: its length query says 0 and consumes nothing; the part is gathered.
        let (rv, len, _) = t.next(true, pp, GCM_SIZE, &data[..30], None, 0);
        assert_eq!((rv, len), (sys::CKR_OK, 0));
        let (rv, len, _) = t.next(true, pp, GCM_SIZE, &data[..30], Some(0), 0);
        assert_eq!((rv, len), (sys::CKR_OK, 0));
        // The last part: query, short buffer (nothing consumed), then the whole ciphertext.
        let (rv, len, _) = t.next(
            true,
            pp,
            GCM_SIZE,
            &data[30..],
            None,
            sys::CKF_END_OF_MESSAGE,
        );
        assert_eq!((rv, len), (sys::CKR_OK, 70));
        let (rv, len, _) = t.next(
            true,
            pp,
            GCM_SIZE,
            &data[30..],
            Some(10),
            sys::CKF_END_OF_MESSAGE,
        );
        assert_eq!((rv, len), (sys::CKR_BUFFER_TOO_SMALL, 70));
        let before_last = t.requests();
        let (rv, len, ct) = t.next(
            true,
            pp,
            GCM_SIZE,
            &data[30..],
            Some(70),
            sys::CKF_END_OF_MESSAGE,
        );
        assert_eq!((rv, len), (sys::CKR_OK, 70));
        let after = t.requests();
        // The message ended: a further part needs a new Begin.
        assert_eq!(
            t.next(true, pp, GCM_SIZE, &data, Some(100), 0).0,
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        // The counter generator counted one message per Begin.
        assert_eq!(iv[..4], [1; 4]);
        // Decrypt in one part with the IV and tag written back.
        let mut back = [0u8; 70];
        let mut blen: sys::CK_ULONG = 70;
        let mut dm = mech(sys::CKM_AES_GCM);
        assert_eq!(
            call!(t.raw, C_MessageDecryptInit(t.h, &mut dm, key.handle())),
            sys::CKR_OK
        );
        let mut div = iv;
        let mut dtag = tag;
        let mut dp = gcm_params(&mut div, sys::CKG_NO_GENERATE, &mut dtag);
        assert_eq!(
            call!(
                t.raw,
                C_DecryptMessage(
                    t.h,
                    &mut dp as *mut _ as *mut _,
                    GCM_SIZE,
                    b"ad".as_ptr() as *mut u8,
                    2,
                    ct.as_ptr() as *mut u8,
                    70,
                    back.as_mut_ptr(),
                    &mut blen
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(
            back.as_slice(),
            data.as_slice(),
            "the gathered part was not lost"
        );
        // Multi-part decryption with a wrong tag: CKR_AEAD_DECRYPT_FAILED, and the
        // message-based decryption goes on.
        dtag[0] ^= 1;
        let mut dp = gcm_params(&mut div, sys::CKG_NO_GENERATE, &mut dtag);
        let dpp = &mut dp as *mut _ as *mut std::ffi::c_void;
        assert_eq!(
            call!(
                t.raw,
                C_DecryptMessageBegin(t.h, dpp, GCM_SIZE, b"ad".as_ptr() as *mut u8, 2)
            ),
            sys::CKR_OK
        );
        let (rv, _, out) = t.next(false, dpp, GCM_SIZE, &ct[..50], Some(70), 0);
        assert_eq!(
            (rv, out.len()),
            (sys::CKR_OK, 0),
            "no plaintext before the tag"
        );
        let (rv, _, _) = t.next(
            false,
            dpp,
            GCM_SIZE,
            &ct[50..],
            Some(70),
            sys::CKF_END_OF_MESSAGE,
        );
        assert_eq!(rv, sys::CKR_AEAD_DECRYPT_FAILED);
        dtag[0] ^= 1;
        let mut dp = gcm_params(&mut div, sys::CKG_NO_GENERATE, &mut dtag);
        let dpp = &mut dp as *mut _ as *mut std::ffi::c_void;
        assert_eq!(
            call!(
                t.raw,
                C_DecryptMessageBegin(t.h, dpp, GCM_SIZE, b"ad".as_ptr() as *mut u8, 2)
            ),
            sys::CKR_OK
        );
        let (rv, len, _) = t.next(false, dpp, GCM_SIZE, &ct, None, sys::CKF_END_OF_MESSAGE);
        assert_eq!((rv, len), (sys::CKR_OK, 70));
        // The last part without a parameter: the tag given at Begin is used.
        let (rv, _, out) = t.next(
            false,
            ptr::null_mut(),
            0,
            &ct,
            Some(70),
            sys::CKF_END_OF_MESSAGE,
        );
        assert_eq!((rv, out.as_slice()), (sys::CKR_OK, data.as_slice()));
        assert_eq!(call!(t.raw, C_MessageDecryptFinal(t.h)), sys::CKR_OK);
        eprintln!("requests: begin+parts {before} → {before_last}, last part → {after}");
        if before_last == before && after == before + 1 {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "Begin and the gathered parts send nothing, the last part one request"
    );
    // A last part whose parameter cannot take the tag ends the message.
    assert_eq!(
        call!(
            t.raw,
            C_EncryptMessageBegin(t.h, pp, GCM_SIZE, ptr::null_mut(), 0)
        ),
        sys::CKR_OK
    );
    let (rv, _, _) = t.next(
        true,
        ptr::null_mut(),
        0,
        &data,
        Some(70),
        sys::CKF_END_OF_MESSAGE,
    );
    assert_eq!(rv, sys::CKR_MECHANISM_PARAM_INVALID);
    assert_eq!(
        t.next(
            true,
            pp,
            GCM_SIZE,
            &data,
            Some(100),
            sys::CKF_END_OF_MESSAGE
        )
        .0,
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    // C_MessageEncryptFinal ends the process, with or without a message under way.
    assert_eq!(
        call!(
            t.raw,
            C_EncryptMessageBegin(t.h, pp, GCM_SIZE, ptr::null_mut(), 0)
        ),
        sys::CKR_OK
    );
    assert_eq!(call!(t.raw, C_MessageEncryptFinal(t.h)), sys::CKR_OK);
    assert_eq!(
        call!(
            t.raw,
            C_EncryptMessageBegin(t.h, pp, GCM_SIZE, ptr::null_mut(), 0)
        ),
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    t.s.destroy_object(key).unwrap();
}

fn chacha_poly(t: &T<'_>) {
    let mut gen = mech(sys::CKM_CHACHA20_KEY_GEN);
    let tru: sys::CK_BBOOL = 1;
    let fals: sys::CK_BBOOL = 0;
    let mut tmpl = [
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_TOKEN,
            pValue: &fals as *const _ as *mut _,
            ulValueLen: 1,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_ENCRYPT,
            pValue: &tru as *const _ as *mut _,
            ulValueLen: 1,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_DECRYPT,
            pValue: &tru as *const _ as *mut _,
            ulValueLen: 1,
        },
    ];
    let mut key = 0;
    assert_eq!(
        call!(
            t.raw,
            C_GenerateKey(t.h, &mut gen, tmpl.as_mut_ptr(), 3, &mut key)
        ),
        sys::CKR_OK
    );
    let data = plain(45);
    let mut nonce = [7u8; 12];
    let mut tag = [0u8; 16];
    let mut params = sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pTag: tag.as_mut_ptr(),
    };
    let size = std::mem::size_of::<sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>() as _;
    let pp = &mut params as *mut _ as *mut std::ffi::c_void;
    let mut m = mech(sys::CKM_CHACHA20_POLY1305);
    assert_eq!(
        call!(t.raw, C_MessageEncryptInit(t.h, &mut m, key)),
        sys::CKR_OK
    );
    assert_eq!(
        call!(
            t.raw,
            C_EncryptMessageBegin(t.h, pp, size, b"x".as_ptr() as *mut u8, 1)
        ),
        sys::CKR_OK
    );
    assert_eq!(
        t.next(true, pp, size, &data[..20], Some(0), 0).0,
        sys::CKR_OK
    );
    let (rv, _, ct) = t.next(
        true,
        pp,
        size,
        &data[20..],
        Some(45),
        sys::CKF_END_OF_MESSAGE,
    );
    assert_eq!(rv, sys::CKR_OK);
    assert_ne!(tag, [0; 16]);
    assert_eq!(call!(t.raw, C_MessageEncryptFinal(t.h)), sys::CKR_OK);
    assert_eq!(
        call!(t.raw, C_MessageDecryptInit(t.h, &mut m, key)),
        sys::CKR_OK
    );
    assert_eq!(
        call!(
            t.raw,
            C_DecryptMessageBegin(t.h, pp, size, b"x".as_ptr() as *mut u8, 1)
        ),
        sys::CKR_OK
    );
    assert_eq!(t.next(false, pp, size, &ct[..7], Some(0), 0).0, sys::CKR_OK);
    let (rv, _, back) = t.next(false, pp, size, &ct[7..], Some(45), sys::CKF_END_OF_MESSAGE);
    assert_eq!((rv, back), (sys::CKR_OK, data));
    assert_eq!(call!(t.raw, C_MessageDecryptFinal(t.h)), sys::CKR_OK);
    assert_eq!(call!(t.raw, C_DestroyObject(t.h, key)), sys::CKR_OK);
}

fn ec_pair(s: &Session) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256.to_vec()),
        ],
        &[
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::Private(true),
        ],
    )
    .unwrap()
}

/// Signing and verifying a message in parts (ECDSA with SHA-256, HMAC); the raw ECDSA
/// mechanism is single-part.
fn sign_verify(t: &T<'_>) {
    let (public, private) = ec_pair(&t.s);
    let data = plain(90);
    let mut m = mech(sys::CKM_ECDSA_SHA256);
    assert_eq!(
        call!(t.raw, C_SignMessageBegin(t.h, ptr::null_mut(), 0)),
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(t.raw, C_MessageSignInit(t.h, &mut m, private.handle())),
        sys::CKR_OK
    );
    let next = |part: &[u8], sig: *mut u8, len: *mut sys::CK_ULONG| {
        call!(
            t.raw,
            C_SignMessageNext(
                t.h,
                ptr::null_mut(),
                0,
                part.as_ptr() as *mut u8,
                part.len() as _,
                sig,
                len
            )
        )
    };
    assert_eq!(
        next(&data, ptr::null_mut(), ptr::null_mut()),
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    let mut junk = [0u8; 4];
    assert_eq!(
        call!(
            t.raw,
            C_SignMessageBegin(t.h, junk.as_mut_ptr() as *mut _, 4)
        ),
        sys::CKR_MECHANISM_PARAM_INVALID
    );
    for round in 0..2 {
        assert_eq!(
            call!(t.raw, C_SignMessageBegin(t.h, ptr::null_mut(), 0)),
            sys::CKR_OK
        );
        assert_eq!(
            call!(t.raw, C_SignMessageBegin(t.h, ptr::null_mut(), 0)),
            sys::CKR_OPERATION_ACTIVE
        );
        // More parts: a NULL length pointer.
        assert_eq!(
            next(&data[..30], ptr::null_mut(), ptr::null_mut()),
            sys::CKR_OK
        );
        assert_eq!(
            next(&data[30..60], ptr::null_mut(), ptr::null_mut()),
            sys::CKR_OK
        );
        // The last part: length query, short buffer, signature (one computation).
        let mut len: sys::CK_ULONG = 0;
        assert_eq!(next(&data[60..], ptr::null_mut(), &mut len), sys::CKR_OK);
        assert_eq!(len, 64);
        let mut sig = [0u8; 64];
        let mut short: sys::CK_ULONG = 8;
        assert_eq!(
            next(&data[60..], sig.as_mut_ptr(), &mut short),
            sys::CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(short, 64);
        assert_eq!(next(&data[60..], sig.as_mut_ptr(), &mut len), sys::CKR_OK);
        t.s.verify(&Mechanism::EcdsaSha256, public, &data, &sig)
            .unwrap();
        // The message ended; the signing process goes on (round two).
        assert_eq!(
            next(&data, sig.as_mut_ptr(), &mut len),
            sys::CKR_OPERATION_NOT_INITIALIZED,
            "round {round}"
        );
    }
    assert_eq!(call!(t.raw, C_MessageSignFinal(t.h)), sys::CKR_OK);
    // Verify in parts: a good and a bad signature.
    let sig = t.s.sign(&Mechanism::EcdsaSha256, private, &data).unwrap();
    assert_eq!(
        call!(t.raw, C_MessageVerifyInit(t.h, &mut m, public.handle())),
        sys::CKR_OK
    );
    for (flip, want) in [(false, sys::CKR_OK), (true, sys::CKR_SIGNATURE_INVALID)] {
        let mut s2 = sig.clone();
        if flip {
            s2[5] ^= 1;
        }
        assert_eq!(
            call!(t.raw, C_VerifyMessageBegin(t.h, ptr::null_mut(), 0)),
            sys::CKR_OK
        );
        for part in [&data[..45], &data[45..80]] {
            assert_eq!(
                call!(
                    t.raw,
                    C_VerifyMessageNext(
                        t.h,
                        ptr::null_mut(),
                        0,
                        part.as_ptr() as *mut u8,
                        part.len() as _,
                        ptr::null_mut(),
                        0
                    )
                ),
                sys::CKR_OK
            );
        }
        assert_eq!(
            call!(
                t.raw,
                C_VerifyMessageNext(
                    t.h,
                    ptr::null_mut(),
                    0,
                    data[80..].as_ptr() as *mut u8,
                    10,
                    s2.as_mut_ptr(),
                    64
                )
            ),
            want
        );
    }
    assert_eq!(call!(t.raw, C_MessageVerifyFinal(t.h)), sys::CKR_OK);
    // CKM_ECDSA signs a precomputed digest: single-part, no C_SignMessageBegin.
    let mut raw_ecdsa = mech(sys::CKM_ECDSA);
    assert_eq!(
        call!(
            t.raw,
            C_MessageSignInit(t.h, &mut raw_ecdsa, private.handle())
        ),
        sys::CKR_OK
    );
    assert_eq!(
        call!(t.raw, C_SignMessageBegin(t.h, ptr::null_mut(), 0)),
        sys::CKR_FUNCTION_NOT_SUPPORTED
    );
    let digest = [3u8; 32];
    let mut sig = [0u8; 64];
    let mut len: sys::CK_ULONG = 64;
    assert_eq!(
        call!(
            t.raw,
            C_SignMessage(
                t.h,
                ptr::null_mut(),
                0,
                digest.as_ptr() as *mut u8,
                32,
                sig.as_mut_ptr(),
                &mut len
            )
        ),
        sys::CKR_OK
    );
    assert_eq!(call!(t.raw, C_MessageSignFinal(t.h)), sys::CKR_OK);
    // HMAC in parts.
    let hk =
        t.s.generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
            ],
        )
        .unwrap();
    let mut hm = mech(sys::CKM_SHA256_HMAC);
    assert_eq!(
        call!(t.raw, C_MessageSignInit(t.h, &mut hm, hk.handle())),
        sys::CKR_OK
    );
    assert_eq!(
        call!(t.raw, C_SignMessageBegin(t.h, ptr::null_mut(), 0)),
        sys::CKR_OK
    );
    assert_eq!(
        next(&data[..10], ptr::null_mut(), ptr::null_mut()),
        sys::CKR_OK
    );
    let mut mac = [0u8; 32];
    let mut mlen: sys::CK_ULONG = 32;
    assert_eq!(next(&data[10..], mac.as_mut_ptr(), &mut mlen), sys::CKR_OK);
    assert_eq!(
        mac.to_vec(),
        t.s.sign(&Mechanism::Sha256Hmac, hk, &data).unwrap()
    );
    assert_eq!(call!(t.raw, C_MessageSignFinal(t.h)), sys::CKR_OK);
    for o in [public, private, hk] {
        t.s.destroy_object(o).unwrap();
    }
}

/// `(hashAlg, mgf)` of a PSS mechanism.
fn pss(ty: sys::CK_MECHANISM_TYPE) -> Option<(sys::CK_MECHANISM_TYPE, sys::CK_ULONG)> {
    Some(match ty {
        sys::CKM_RSA_PKCS_PSS | sys::CKM_SHA256_RSA_PKCS_PSS => {
            (sys::CKM_SHA256, sys::CKG_MGF1_SHA256)
        }
        sys::CKM_SHA1_RSA_PKCS_PSS => (sys::CKM_SHA_1, sys::CKG_MGF1_SHA1),
        sys::CKM_SHA224_RSA_PKCS_PSS => (sys::CKM_SHA224, sys::CKG_MGF1_SHA224),
        sys::CKM_SHA384_RSA_PKCS_PSS => (sys::CKM_SHA384, sys::CKG_MGF1_SHA384),
        sys::CKM_SHA512_RSA_PKCS_PSS => (sys::CKM_SHA512, sys::CKG_MGF1_SHA512),
        sys::CKM_SHA3_224_RSA_PKCS_PSS => (sys::CKM_SHA3_224, sys::CKG_MGF1_SHA3_224),
        sys::CKM_SHA3_256_RSA_PKCS_PSS => (sys::CKM_SHA3_256, sys::CKG_MGF1_SHA3_256),
        sys::CKM_SHA3_384_RSA_PKCS_PSS => (sys::CKM_SHA3_384, sys::CKG_MGF1_SHA3_384),
        sys::CKM_SHA3_512_RSA_PKCS_PSS => (sys::CKM_SHA3_512, sys::CKG_MGF1_SHA3_512),
        _ => return None,
    })
}

/// For every mechanism of the token: `CKF_MULTI_MESSAGE` only with a `CKF_MESSAGE_*` flag, and
/// exactly when `C_…MessageBegin` accepts the mechanism.
fn flags_match_behaviour(t: &T<'_>) {
    let message = sys::CKF_MESSAGE_ENCRYPT
        | sys::CKF_MESSAGE_DECRYPT
        | sys::CKF_MESSAGE_SIGN
        | sys::CKF_MESSAGE_VERIFY;
    let mut checked = 0;
    let any_key: sys::CK_OBJECT_HANDLE = 0x7fff_fff0;
    let mut n: sys::CK_ULONG = 0;
    assert_eq!(
        call!(t.raw, C_GetMechanismList(0, ptr::null_mut(), &mut n)),
        sys::CKR_OK
    );
    let mut list = vec![0 as sys::CK_MECHANISM_TYPE; n as usize];
    assert_eq!(
        call!(t.raw, C_GetMechanismList(0, list.as_mut_ptr(), &mut n)),
        sys::CKR_OK
    );
    assert!(t.p.get_mechanism_list(t.slot).unwrap().len() <= list.len());
    for code in list {
        let ty = format!("mechanism {code:#x}");
        let mut info = sys::CK_MECHANISM_INFO::default();
        assert_eq!(
            call!(t.raw, C_GetMechanismInfo(0, code, &mut info)),
            sys::CKR_OK
        );
        let multi = info.flags & sys::CKF_MULTI_MESSAGE != 0;
        if info.flags & message == 0 {
            assert!(!multi, "{ty}: CKF_MULTI_MESSAGE without a message flag");
            continue;
        }
        let mut m = mech(code);
        let mut pss_params;
        if let Some((hash, mgf)) = pss(code) {
            pss_params = sys::CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: hash,
                mgf,
                sLen: 32,
            };
            m.pParameter = &mut pss_params as *mut _ as *mut _;
            m.ulParameterLen = std::mem::size_of::<sys::CK_RSA_PKCS_PSS_PARAMS>() as _;
        }
        if info.flags & sys::CKF_MESSAGE_SIGN != 0 {
            // The key is not looked at before the last part (no request).
            assert_eq!(
                call!(t.raw, C_MessageSignInit(t.h, &mut m, any_key)),
                sys::CKR_OK,
                "{ty}"
            );
            let rv = call!(t.raw, C_SignMessageBegin(t.h, ptr::null_mut(), 0));
            let want = if multi {
                sys::CKR_OK
            } else {
                sys::CKR_FUNCTION_NOT_SUPPORTED
            };
            assert_eq!(rv, want, "{ty}: C_SignMessageBegin");
            assert_eq!(call!(t.raw, C_MessageSignFinal(t.h)), sys::CKR_OK);
            assert_eq!(
                call!(t.raw, C_MessageVerifyInit(t.h, &mut m, any_key)),
                sys::CKR_OK
            );
            let rv = call!(t.raw, C_VerifyMessageBegin(t.h, ptr::null_mut(), 0));
            assert_eq!(rv, want, "{ty}: C_VerifyMessageBegin");
            assert_eq!(call!(t.raw, C_MessageVerifyFinal(t.h)), sys::CKR_OK);
            checked += 1;
        }
        if info.flags & sys::CKF_MESSAGE_ENCRYPT != 0 {
            assert!(multi, "{ty}: message encryption works in parts");
            let mut iv = [0u8; 12];
            let mut tag = [0u8; 16];
            let mut gp = gcm_params(&mut iv, sys::CKG_NO_GENERATE, &mut tag);
            let mut cp = sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
                pNonce: iv.as_mut_ptr(),
                ulNonceLen: 12,
                pTag: tag.as_mut_ptr(),
            };
            let (pp, size): (*mut std::ffi::c_void, sys::CK_ULONG) = if code == sys::CKM_AES_GCM {
                (&mut gp as *mut _ as *mut _, GCM_SIZE)
            } else {
                (
                    &mut cp as *mut _ as *mut _,
                    std::mem::size_of::<sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>() as _,
                )
            };
            assert_eq!(
                call!(t.raw, C_MessageEncryptInit(t.h, &mut m, any_key)),
                sys::CKR_OK
            );
            assert_eq!(
                call!(
                    t.raw,
                    C_EncryptMessageBegin(t.h, pp, size, ptr::null_mut(), 0)
                ),
                sys::CKR_OK,
                "{ty}"
            );
            assert_eq!(call!(t.raw, C_MessageEncryptFinal(t.h)), sys::CKR_OK);
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} message mechanisms checked");
}

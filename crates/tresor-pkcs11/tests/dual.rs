//! Black-box tests of the dual-function updates (PKCS#11 §5.14) of the built library, through
//! its raw function list (the `cryptoki` crate does not wrap them), against a real stack:
//! `C_DigestEncryptUpdate`, `C_SignEncryptUpdate`, `C_DecryptDigestUpdate`,
//! `C_DecryptVerifyUpdate`, with good and bad input, length queries and short buffers, the
//! padding caveat, errors that end both operations, and the round trips they cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The checks call the C ABI directly.
#![allow(unsafe_code)]

mod common;

use std::net::SocketAddr;
use std::ptr;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys as sys;

use common::{pin, slot, RawLib, Stack, USER_PIN};

macro_rules! call {
    ($raw:expr, $f:ident ( $($a:expr),* )) => {
        // SAFETY: test code calling the library with the pointers each case sets up.
        unsafe { ($raw.f.$f.unwrap())($($a),*) }
    };
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// `(hSession, pIn, ulInLen, pOut, pulOutLen)`: the shape of every dual-function update.
type DualFn = unsafe extern "C" fn(
    sys::CK_SESSION_HANDLE,
    *mut sys::CK_BYTE,
    sys::CK_ULONG,
    *mut sys::CK_BYTE,
    *mut sys::CK_ULONG,
) -> sys::CK_RV;

/// `(hSession, pOut, pulOutLen)`: `C_EncryptFinal`, `C_DecryptFinal`, `C_DigestFinal`, …
type FinalFn = unsafe extern "C" fn(
    sys::CK_SESSION_HANDLE,
    *mut sys::CK_BYTE,
    *mut sys::CK_ULONG,
) -> sys::CK_RV;

struct T<'a> {
    raw: &'a RawLib,
    s: Session,
    h: sys::CK_SESSION_HANDLE,
    http: SocketAddr,
}

/// A named check.
type Step = Box<dyn Fn(&T<'_>)>;

/// A call's return value, the length it wrote and the bytes it delivered.
type Got = (sys::CK_RV, sys::CK_ULONG, Vec<u8>);

fn dual(f: DualFn, h: sys::CK_SESSION_HANDLE, part: &[u8], cap: Option<usize>) -> Got {
    let mut out = vec![0u8; cap.unwrap_or(0)];
    let mut len = cap.unwrap_or(0) as sys::CK_ULONG;
    let p = if cap.is_some() {
        out.as_mut_ptr()
    } else {
        ptr::null_mut()
    };
    // SAFETY: `part` and `out` are valid for their lengths; `len` is writable.
    let rv = unsafe { f(h, part.as_ptr() as *mut u8, part.len() as _, p, &mut len) };
    out.truncate((len as usize).min(out.len()));
    (rv, len, out)
}

/// A `…Final` with a length query first; the bytes.
fn finish(f: FinalFn, h: sys::CK_SESSION_HANDLE) -> (sys::CK_RV, Vec<u8>) {
    let mut len: sys::CK_ULONG = 0;
    // SAFETY: a length query with a writable length.
    let rv = unsafe { f(h, ptr::null_mut(), &mut len) };
    if rv != sys::CKR_OK {
        return (rv, Vec::new());
    }
    let mut out = vec![0u8; len as usize];
    // SAFETY: `out` holds `len` bytes.
    let rv = unsafe { f(h, out.as_mut_ptr(), &mut len) };
    out.truncate(len as usize);
    (rv, out)
}

impl T<'_> {
    fn de(&self) -> DualFn {
        self.raw.f.C_DigestEncryptUpdate.unwrap()
    }
    fn se(&self) -> DualFn {
        self.raw.f.C_SignEncryptUpdate.unwrap()
    }
    fn dd(&self) -> DualFn {
        self.raw.f.C_DecryptDigestUpdate.unwrap()
    }
    fn dv(&self) -> DualFn {
        self.raw.f.C_DecryptVerifyUpdate.unwrap()
    }

    fn encrypt_init(&self, mut m: sys::CK_MECHANISM, key: ObjectHandle) {
        assert_eq!(
            call!(self.raw, C_EncryptInit(self.h, &mut m, key.handle())),
            sys::CKR_OK
        );
    }
    fn decrypt_init(&self, mut m: sys::CK_MECHANISM, key: u64) {
        assert_eq!(
            call!(self.raw, C_DecryptInit(self.h, &mut m, key as _)),
            sys::CKR_OK
        );
    }
    fn digest_init(&self) {
        let mut m = mech(sys::CKM_SHA256, &mut []);
        assert_eq!(call!(self.raw, C_DigestInit(self.h, &mut m)), sys::CKR_OK);
    }
    fn sign_init(&self, key: ObjectHandle) {
        let mut m = mech(sys::CKM_ECDSA_SHA256, &mut []);
        assert_eq!(
            call!(self.raw, C_SignInit(self.h, &mut m, key.handle())),
            sys::CKR_OK
        );
    }
    fn verify_init(&self, key: ObjectHandle) {
        let mut m = mech(sys::CKM_ECDSA_SHA256, &mut []);
        assert_eq!(
            call!(self.raw, C_VerifyInit(self.h, &mut m, key.handle())),
            sys::CKR_OK
        );
    }
    fn digest_final(&self) -> Vec<u8> {
        let (rv, d) = finish(self.raw.f.C_DigestFinal.unwrap(), self.h);
        assert_eq!(rv, sys::CKR_OK);
        d
    }
    fn decrypt_final(&self) -> Vec<u8> {
        let (rv, d) = finish(self.raw.f.C_DecryptFinal.unwrap(), self.h);
        assert_eq!(rv, sys::CKR_OK);
        d
    }
    fn encrypt_final(&self) -> Vec<u8> {
        let (rv, d) = finish(self.raw.f.C_EncryptFinal.unwrap(), self.h);
        assert_eq!(rv, sys::CKR_OK);
        d
    }
    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        self.s.digest(&Mechanism::Sha256, data).unwrap()
    }
    /// Single-part encryption through the raw ABI (any mechanism, CTR included).
    fn encrypt(&self, m: sys::CK_MECHANISM, key: ObjectHandle, data: &[u8]) -> Vec<u8> {
        self.encrypt_init(m, key);
        let mut out = vec![0u8; data.len() + 64];
        let mut len = out.len() as sys::CK_ULONG;
        assert_eq!(
            call!(
                self.raw,
                C_Encrypt(
                    self.h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    out.as_mut_ptr(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        out.truncate(len as usize);
        out
    }
    fn requests(&self) -> u64 {
        Stack::requests(self.http)
    }
}

/// A mechanism whose parameter is `param` (an IV, or a parameter structure's bytes).
fn mech(ty: sys::CK_MECHANISM_TYPE, param: &mut [u8]) -> sys::CK_MECHANISM {
    sys::CK_MECHANISM {
        mechanism: ty,
        pParameter: if param.is_empty() {
            ptr::null_mut()
        } else {
            param.as_mut_ptr() as *mut _
        },
        ulParameterLen: param.len() as _,
    }
}

fn ctr_params(counter: u8) -> sys::CK_AES_CTR_PARAMS {
    let mut cb = [0x42u8; 16];
    cb[15] = counter;
    sys::CK_AES_CTR_PARAMS {
        ulCounterBits: 32,
        cb,
    }
}

fn ctr(p: &mut sys::CK_AES_CTR_PARAMS) -> sys::CK_MECHANISM {
    sys::CK_MECHANISM {
        mechanism: sys::CKM_AES_CTR,
        pParameter: p as *mut _ as *mut _,
        ulParameterLen: std::mem::size_of::<sys::CK_AES_CTR_PARAMS>() as _,
    }
}

#[test]
fn dual_function_updates() {
    let stack = Stack::start(1, 1);
    stack.export_env();
    let lib = common::library();
    let p = Pkcs11::new(&lib).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let raw = RawLib::load(&lib);
    let s = p.open_rw_session(slot(&p, 0)).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let h = raw.open_session(0);
    let t = T {
        raw: &raw,
        s,
        h,
        http: stack.nodes[0].3,
    };
    let steps: Vec<(&str, Step)> = vec![
        ("digest+encrypt", Box::new(digest_encrypt)),
        ("sign+encrypt", Box::new(sign_encrypt)),
        ("decrypt+digest", Box::new(decrypt_digest)),
        ("decrypt+verify", Box::new(decrypt_verify)),
        ("errors", Box::new(errors_end_both)),
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

fn plain(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// The same parts are digested and encrypted; the ciphertext comes at `C_EncryptFinal`, and
/// the updates cost no request.
fn digest_encrypt(t: &T<'_>) {
    let key = aes_key(&t.s);
    let data = plain(45);
    let mut iv = [7u8; 16];
    // Neither, or only one of the two operations active.
    let (rv, _, _) = dual(t.de(), t.h, &data, Some(0));
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    t.digest_init();
    let (rv, _, _) = dual(t.de(), t.h, &data, Some(0));
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    // The digest was not touched by the refused call.
    t.encrypt_init(mech(sys::CKM_AES_CBC_PAD, &mut iv), key);
    let mut ok = false;
    for _ in 0..3 {
        let before = t.requests();
        // A length query: no output, nothing consumed.
        let (rv, len, _) = dual(t.de(), t.h, &data[..20], None);
        assert_eq!((rv, len), (sys::CKR_OK, 0));
        let (rv, len, _) = dual(t.de(), t.h, &data[..20], Some(0));
        assert_eq!((rv, len), (sys::CKR_OK, 0));
        let (rv, len, _) = dual(t.de(), t.h, &data[20..], Some(64));
        assert_eq!((rv, len), (sys::CKR_OK, 0));
        ok |= t.requests() == before;
        if ok {
            break;
        }
    }
    assert!(ok, "the updates are buffered: no request");
    // Every retry above fed the same parts again: the last round is what counts, so start
    // over with a clean pair of operations for the values.
    let _ = t.encrypt_final();
    let _ = t.digest_final();
    t.digest_init();
    t.encrypt_init(mech(sys::CKM_AES_CBC_PAD, &mut iv), key);
    assert_eq!(dual(t.de(), t.h, &data[..20], Some(16)).0, sys::CKR_OK);
    assert_eq!(dual(t.de(), t.h, &data[20..], Some(16)).0, sys::CKR_OK);
    let ct = t.encrypt_final();
    assert_eq!(t.digest_final(), t.sha256(&data));
    assert_eq!(
        t.s.decrypt(&Mechanism::AesCbcPad(iv), key, &ct).unwrap(),
        data
    );
    // The ciphertext is the single-part one.
    assert_eq!(
        ct,
        t.s.encrypt(&Mechanism::AesCbcPad(iv), key, &data).unwrap()
    );
    t.s.destroy_object(key).unwrap();
}

/// The same parts are signed and encrypted (AES-CTR).
fn sign_encrypt(t: &T<'_>) {
    let key = aes_key(&t.s);
    let (public, private) = ec_pair(&t.s);
    let data = plain(70);
    let mut params = ctr_params(1);
    t.sign_init(private);
    let (rv, _, _) = dual(t.se(), t.h, &data, Some(0));
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    t.encrypt_init(ctr(&mut params), key);
    for part in data.chunks(33) {
        let (rv, len, _) = dual(t.se(), t.h, part, Some(8));
        assert_eq!((rv, len), (sys::CKR_OK, 0));
    }
    // An interleaved plain update goes to its own operation only.
    assert_eq!(
        call!(t.raw, C_SignUpdate(t.h, b"tail".as_ptr() as *mut u8, 4)),
        sys::CKR_OK
    );
    let ct = t.encrypt_final();
    let (rv, sig) = finish(t.raw.f.C_SignFinal.unwrap(), t.h);
    assert_eq!(rv, sys::CKR_OK);
    let mut signed = data.clone();
    signed.extend_from_slice(b"tail");
    t.s.verify(&Mechanism::EcdsaSha256, public, &signed, &sig)
        .unwrap();
    let mut params = ctr_params(1);
    assert_eq!(ct, t.encrypt(ctr(&mut params), key, &data));
    for o in [key, public, private] {
        t.s.destroy_object(o).unwrap();
    }
}

/// The plaintext each call returns is digested: whole blocks of CBC / ECB / CTR at once, all
/// but a last block for CBC-PAD (the application digests what `C_DecryptFinal` returns),
/// nothing before the tag is checked for GCM.
fn decrypt_digest(t: &T<'_>) {
    let key = aes_key(&t.s);
    let data = plain(48);
    let mut iv = [9u8; 16];
    let ct = t.s.encrypt(&Mechanism::AesCbc(iv), key, &data).unwrap();
    t.digest_init();
    t.decrypt_init(mech(sys::CKM_AES_CBC, &mut iv), key.handle());
    // 20 bytes: one whole block can be decrypted now.
    let (rv, len, _) = dual(t.dd(), t.h, &ct[..20], None);
    assert_eq!((rv, len), (sys::CKR_OK, 16));
    let (rv, len, _) = dual(t.dd(), t.h, &ct[..20], Some(8));
    assert_eq!((rv, len), (sys::CKR_BUFFER_TOO_SMALL, 16));
    let before = t.requests();
    let (rv, len, out) = dual(t.dd(), t.h, &ct[..20], Some(16));
    assert_eq!((rv, len), (sys::CKR_OK, 16));
    assert_eq!(out, data[..16]);
    assert!(t.requests() > before, "the block was decrypted by the HSM");
    // The rest (4 buffered + 28): two blocks, with the chaining value carried forward.
    let (rv, len, out) = dual(t.dd(), t.h, &ct[20..], Some(64));
    assert_eq!((rv, len), (sys::CKR_OK, 32));
    assert_eq!(out, data[16..]);
    let before = t.requests();
    assert_eq!(t.decrypt_final(), Vec::<u8>::new());
    assert_eq!(t.requests(), before, "nothing was left to decrypt");
    assert_eq!(t.digest_final(), t.sha256(&data));

    // ECB, fed one byte short of a block at a time.
    let ct = t.s.encrypt(&Mechanism::AesEcb, key, &data).unwrap();
    t.digest_init();
    t.decrypt_init(mech(sys::CKM_AES_ECB, &mut []), key.handle());
    let mut got = Vec::new();
    for part in ct.chunks(15) {
        let (rv, _, out) = dual(t.dd(), t.h, part, Some(64));
        assert_eq!(rv, sys::CKR_OK);
        got.extend_from_slice(&out);
    }
    got.extend_from_slice(&t.decrypt_final());
    assert_eq!(got, data);
    assert_eq!(t.digest_final(), t.sha256(&data));

    // CTR: a partial last block comes out of C_DecryptFinal, which the application digests.
    let data = plain(53);
    let mut params = ctr_params(0xfe);
    let ct = t.encrypt(ctr(&mut params), key, &data);
    let mut params = ctr_params(0xfe);
    t.digest_init();
    t.decrypt_init(ctr(&mut params), key.handle());
    let (rv, _, out) = dual(t.dd(), t.h, &ct, Some(64));
    assert_eq!(rv, sys::CKR_OK);
    assert_eq!(
        out,
        data[..48],
        "the counter block was carried across the carry"
    );
    let last = t.decrypt_final();
    assert_eq!(last, data[48..]);
    assert_eq!(
        call!(
            t.raw,
            C_DigestUpdate(t.h, last.as_ptr() as *mut u8, last.len() as _)
        ),
        sys::CKR_OK
    );
    assert_eq!(t.digest_final(), t.sha256(&data));

    // CBC-PAD: the last block may hold padding; it comes out of C_DecryptFinal and is not
    // digested by the library (the standard's caveat).
    let data = plain(40);
    let mut iv = [3u8; 16];
    let ct = t.s.encrypt(&Mechanism::AesCbcPad(iv), key, &data).unwrap();
    assert_eq!(ct.len(), 48);
    t.digest_init();
    t.decrypt_init(mech(sys::CKM_AES_CBC_PAD, &mut iv), key.handle());
    let (rv, len, _) = dual(t.dd(), t.h, &ct, None);
    assert_eq!((rv, len), (sys::CKR_OK, 32));
    let (rv, _, out) = dual(t.dd(), t.h, &ct, Some(32));
    assert_eq!(rv, sys::CKR_OK);
    assert_eq!(out, data[..32]);
    let last = t.decrypt_final();
    assert_eq!(last, data[32..]);
    assert_eq!(
        call!(
            t.raw,
            C_DigestUpdate(t.h, last.as_ptr() as *mut u8, last.len() as _)
        ),
        sys::CKR_OK
    );
    assert_eq!(t.digest_final(), t.sha256(&data));

    // GCM: no plaintext before the tag is checked, so nothing is digested by the update.
    let mut gcm_iv = [5u8; 12];
    let ct =
        t.s.encrypt(
            &Mechanism::AesGcm(
                cryptoki::mechanism::aead::GcmParams::new(&mut gcm_iv, b"aad", 128.into()).unwrap(),
            ),
            key,
            &data,
        )
        .unwrap();
    let mut gp = sys::CK_GCM_PARAMS {
        pIv: gcm_iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: b"aad".as_ptr() as *mut u8,
        ulAADLen: 3,
        ulTagBits: 128,
    };
    let m = sys::CK_MECHANISM {
        mechanism: sys::CKM_AES_GCM,
        pParameter: &mut gp as *mut _ as *mut _,
        ulParameterLen: std::mem::size_of::<sys::CK_GCM_PARAMS>() as _,
    };
    t.digest_init();
    t.decrypt_init(m, key.handle());
    let (rv, len, _) = dual(t.dd(), t.h, &ct, Some(64));
    assert_eq!((rv, len), (sys::CKR_OK, 0));
    let all = t.decrypt_final();
    assert_eq!(all, data);
    assert_eq!(t.digest_final(), t.sha256(b""), "nothing was passed on");
    t.s.destroy_object(key).unwrap();
}

/// The plaintext each call returns is verified.
fn decrypt_verify(t: &T<'_>) {
    let key = aes_key(&t.s);
    let (public, private) = ec_pair(&t.s);
    let data = plain(64);
    let sig = t.s.sign(&Mechanism::EcdsaSha256, private, &data).unwrap();
    let mut params = ctr_params(9);
    let ct = t.encrypt(ctr(&mut params), key, &data);
    for (signature, want) in [
        (sig.clone(), sys::CKR_OK),
        (
            {
                let mut bad = sig.clone();
                bad[10] ^= 1;
                bad
            },
            sys::CKR_SIGNATURE_INVALID,
        ),
    ] {
        let mut params = ctr_params(9);
        t.verify_init(public);
        t.decrypt_init(ctr(&mut params), key.handle());
        let mut got = Vec::new();
        for part in ct.chunks(24) {
            let (rv, _, out) = dual(t.dv(), t.h, part, Some(64));
            assert_eq!(rv, sys::CKR_OK);
            got.extend_from_slice(&out);
        }
        assert_eq!(got, data);
        assert!(t.decrypt_final().is_empty());
        assert_eq!(
            call!(
                t.raw,
                C_VerifyFinal(t.h, signature.as_ptr() as *mut u8, signature.len() as _)
            ),
            want
        );
    }
    for o in [key, public, private] {
        t.s.destroy_object(o).unwrap();
    }
}

/// Errors: a missing operation changes nothing; a failed decryption ends both operations;
/// NULL arguments are refused.
fn errors_end_both(t: &T<'_>) {
    let key = aes_key(&t.s);
    let data = plain(32);
    let mut iv = [1u8; 16];
    // Only the decryption active: refused, and the decryption carries on.
    t.decrypt_init(mech(sys::CKM_AES_CBC, &mut iv), key.handle());
    let (rv, _, _) = dual(t.dd(), t.h, &data, Some(64));
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    let (rv, _, _) = dual(t.dv(), t.h, &data, Some(64));
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(t.decrypt_final(), Vec::<u8>::new());
    // An unknown key: the decryption fails at the update and ends both operations.
    t.digest_init();
    t.decrypt_init(mech(sys::CKM_AES_CBC, &mut iv), 0x7fff_fff0);
    let (rv, _, _) = dual(t.dd(), t.h, &data, Some(64));
    assert_eq!(rv, sys::CKR_KEY_HANDLE_INVALID);
    let (rv, _) = finish(t.raw.f.C_DigestFinal.unwrap(), t.h);
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    let (rv, _) = finish(t.raw.f.C_DecryptFinal.unwrap(), t.h);
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
    // Wrong ciphertext length for CBC: the rest is refused at C_DecryptFinal.
    t.digest_init();
    t.decrypt_init(mech(sys::CKM_AES_CBC, &mut iv), key.handle());
    let (rv, len, _) = dual(t.dd(), t.h, &data[..20], Some(16));
    assert_eq!((rv, len), (sys::CKR_OK, 16));
    let (rv, _) = finish(t.raw.f.C_DecryptFinal.unwrap(), t.h);
    assert_eq!(rv, sys::CKR_ENCRYPTED_DATA_LEN_RANGE);
    // The digest is still active (it got the 16 bytes returned).
    assert_eq!(t.digest_final().len(), 32);
    // NULL pointers.
    t.digest_init();
    t.encrypt_init(mech(sys::CKM_AES_CBC, &mut iv), key);
    let mut len: sys::CK_ULONG = 0;
    assert_eq!(
        call!(
            t.raw,
            C_DigestEncryptUpdate(t.h, ptr::null_mut(), 5, ptr::null_mut(), &mut len)
        ),
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            t.raw,
            C_DigestEncryptUpdate(
                t.h,
                data.as_ptr() as *mut u8,
                16,
                ptr::null_mut(),
                ptr::null_mut()
            )
        ),
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            t.raw,
            C_SessionCancel(t.h, sys::CKF_DIGEST | sys::CKF_ENCRYPT)
        ),
        sys::CKR_OK
    );
    // An invalid session.
    let (rv, _, _) = dual(t.de(), 0xdead, &data, Some(0));
    assert_eq!(rv, sys::CKR_SESSION_HANDLE_INVALID);
    t.s.destroy_object(key).unwrap();
}

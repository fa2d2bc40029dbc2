//! Keys with a key password through the built library against a real stack:
//! `CKA_TRESOR_KEY_PASSWORD` at creation makes `CKA_ALWAYS_AUTHENTICATE` true, and each
//! signing or decryption then needs `C_Login(CKU_CONTEXT_SPECIFIC)` after its `…Init`: missing
//! (`CKR_USER_NOT_LOGGED_IN`), wrong (`CKR_PIN_INCORRECT`, and the operation stays usable for
//! the right one), right (the operation runs), and gone with the operation it served. Keys
//! without a password are unaffected, and a context-specific login without an operation or
//! without the user logged in is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Single-part operations after a context-specific login call the C ABI directly (the
// `cryptoki` crate starts each single-part operation with its own `…Init`).
#![allow(unsafe_code)]

mod common;

use std::ptr;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys as sys;

use common::{pin, rv, slot, RawLib, Stack, USER_PIN};

/// `CKA_TRESOR_KEY_PASSWORD` (docs/pkcs11.md).
const CKA_TRESOR_KEY_PASSWORD: u64 = 0xD452_0020;
/// The DER OID of P-256.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const PASSWORD: &str = "correct horse 7";

fn always_authenticate(s: &Session, k: ObjectHandle) -> bool {
    match s
        .get_attributes(k, &[AttributeType::AlwaysAuthenticate])
        .unwrap()
        .first()
    {
        Some(Attribute::AlwaysAuthenticate(b)) => *b,
        other => panic!("{other:?}"),
    }
}

/// A session of the same application opened through the raw function list.
struct Raw {
    raw: RawLib,
    h: sys::CK_SESSION_HANDLE,
}

impl Raw {
    fn sign_init(&self, mechanism: sys::CK_MECHANISM_TYPE, key: ObjectHandle) -> sys::CK_RV {
        let mut m = sys::CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        // SAFETY: a mechanism without parameters, alive for the call.
        unsafe { (self.raw.f.C_SignInit.unwrap())(self.h, &mut m, key.handle()) }
    }

    fn decrypt_init_oaep(&self, key: ObjectHandle) -> sys::CK_RV {
        let mut params = sys::CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: sys::CKM_SHA256,
            mgf: sys::CKG_MGF1_SHA256,
            source: sys::CKZ_DATA_SPECIFIED,
            pSourceData: ptr::null_mut(),
            ulSourceDataLen: 0,
        };
        let mut m = sys::CK_MECHANISM {
            mechanism: sys::CKM_RSA_PKCS_OAEP,
            pParameter: (&mut params as *mut sys::CK_RSA_PKCS_OAEP_PARAMS).cast(),
            ulParameterLen: std::mem::size_of::<sys::CK_RSA_PKCS_OAEP_PARAMS>() as sys::CK_ULONG,
        };
        // SAFETY: the mechanism and its parameters live for the call.
        unsafe { (self.raw.f.C_DecryptInit.unwrap())(self.h, &mut m, key.handle()) }
    }

    fn context_login(&self, password: &str) -> sys::CK_RV {
        let mut pw = password.as_bytes().to_vec();
        // SAFETY: `pw` holds `len` bytes.
        unsafe {
            (self.raw.f.C_Login.unwrap())(
                self.h,
                sys::CKU_CONTEXT_SPECIFIC,
                pw.as_mut_ptr(),
                pw.len() as sys::CK_ULONG,
            )
        }
    }

    /// `C_Sign` or `C_Decrypt` (same shape) into a buffer large enough for RSA-2048.
    fn run(
        &self,
        f: unsafe extern "C" fn(
            sys::CK_SESSION_HANDLE,
            *mut sys::CK_BYTE,
            sys::CK_ULONG,
            *mut sys::CK_BYTE,
            *mut sys::CK_ULONG,
        ) -> sys::CK_RV,
        input: &[u8],
    ) -> Result<Vec<u8>, sys::CK_RV> {
        let mut input = input.to_vec();
        let mut out = vec![0u8; 512];
        let mut len = out.len() as sys::CK_ULONG;
        // SAFETY: `input` and `out` hold the lengths passed.
        let rv = unsafe {
            f(
                self.h,
                input.as_mut_ptr(),
                input.len() as sys::CK_ULONG,
                out.as_mut_ptr(),
                &mut len,
            )
        };
        if rv != sys::CKR_OK {
            return Err(rv);
        }
        out.truncate(len as usize);
        Ok(out)
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, sys::CK_RV> {
        self.run(self.raw.f.C_Sign.unwrap(), data)
    }

    fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, sys::CK_RV> {
        self.run(self.raw.f.C_Decrypt.unwrap(), data)
    }
}

fn password_attr() -> Attribute {
    Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_TRESOR_KEY_PASSWORD),
        PASSWORD.as_bytes().to_vec(),
    ))
}

#[test]
fn key_passwords_through_context_specific_login() {
    let stack = Stack::start(1, 1);
    stack.export_env();
    let p = Pkcs11::new(common::library()).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let raw = RawLib::load(&common::library());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = p.open_rw_session(slot(&p, 0)).unwrap();
        let h = raw.open_session(0);
        let r = Raw { raw, h };
        // Not logged in: no context-specific login either.
        assert_eq!(
            rv(s.login(UserType::ContextSpecific, Some(&pin(PASSWORD)))),
            RvError::UserNotLoggedIn
        );
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        signing(&s, &r);
        decryption(&s, &r);
    }));
    if let Err(e) = r {
        eprintln!("--- node log\n{}", stack.node_log("node1"));
        std::panic::resume_unwind(e);
    }
    p.finalize().unwrap();
}

fn signing(s: &Session, r: &Raw) {
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                password_attr(),
            ],
        )
        .unwrap();
    assert!(always_authenticate(s, private));
    // The password itself never reads back.
    let info = s
        .get_attribute_info(
            private,
            &[AttributeType::VendorDefined(CKA_TRESOR_KEY_PASSWORD)],
        )
        .unwrap();
    assert!(
        matches!(info.as_slice(), [AttributeInfo::Sensitive]),
        "{info:?}"
    );
    let data = [7u8; 32];
    // No operation active: nothing to log in for.
    assert_eq!(
        rv(s.login(UserType::ContextSpecific, Some(&pin(PASSWORD)))),
        RvError::OperationNotInitialized
    );
    // Without the context-specific login the signature is refused.
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &data)),
        RvError::UserNotLoggedIn
    );
    // A wrong password is refused at the login, and the operation waits for the right one.
    assert_eq!(r.sign_init(sys::CKM_ECDSA, private), sys::CKR_OK);
    assert_eq!(r.context_login("wrong password"), sys::CKR_PIN_INCORRECT);
    assert_eq!(r.context_login(PASSWORD), sys::CKR_OK);
    let sig = r.sign(&data).unwrap();
    s.verify(&Mechanism::Ecdsa, public, &data, &sig).unwrap();
    // The operation ended with its signature, and the password with it.
    assert_eq!(
        r.context_login(PASSWORD),
        sys::CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(r.sign_init(sys::CKM_ECDSA, private), sys::CKR_OK);
    assert_eq!(r.sign(&data), Err(sys::CKR_USER_NOT_LOGGED_IN));
    // Multi-part signing with the login between the parts.
    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    s.sign_update(b"first part, ").unwrap();
    s.login(UserType::ContextSpecific, Some(&pin(PASSWORD)))
        .unwrap();
    s.sign_update(b"second part").unwrap();
    let sig = s.sign_final().unwrap();
    s.verify(
        &Mechanism::EcdsaSha256,
        public,
        b"first part, second part",
        &sig,
    )
    .unwrap();
    // The login served one operation: the next one needs its own.
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &data)),
        RvError::UserNotLoggedIn
    );
    // A key without a password: the context-specific login is accepted and changes nothing.
    let (pub2, priv2) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Verify(true),
            ],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )
        .unwrap();
    assert!(!always_authenticate(s, priv2));
    assert_eq!(r.sign_init(sys::CKM_ECDSA, priv2), sys::CKR_OK);
    assert_eq!(r.context_login("anything"), sys::CKR_OK);
    let sig = r.sign(&data).unwrap();
    s.verify(&Mechanism::Ecdsa, pub2, &data, &sig).unwrap();
    // Uses without a PKCS#11 way to carry the password are refused with the vendor code.
    match s.destroy_object(private) {
        Err(Error::Pkcs11(RvError::VendorDefined(0x8000_000E), _)) => {}
        other => panic!("destroying a key with a password: {other:?}"),
    }
}

fn decryption(s: &Session, r: &Raw) {
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::Encrypt(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Decrypt(true),
                password_attr(),
            ],
        )
        .unwrap();
    assert!(always_authenticate(s, private));
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    let ct = s.encrypt(&oaep, public, b"secret message").unwrap();
    assert_eq!(rv(s.decrypt(&oaep, private, &ct)), RvError::UserNotLoggedIn);
    assert_eq!(r.decrypt_init_oaep(private), sys::CKR_OK);
    assert_eq!(r.context_login(PASSWORD), sys::CKR_OK);
    assert_eq!(r.decrypt(&ct).unwrap(), b"secret message");
}

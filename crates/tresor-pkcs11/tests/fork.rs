//! Fork safety, in a test binary of its own: the parent initialises the library and signs;
//! a forked child finds the library uninitialised, calls `C_Initialize`, gets fresh state
//! and new connections, logs in and signs; the parent carries on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The child uses the raw C ABI (no destructors after fork).
#![allow(unsafe_code)]

mod common;

use std::ptr;

use cryptoki_sys as sys;

use common::{Stack, USER_PIN};

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

struct P11 {
    _lib: libloading::Library,
    f: sys::CK_FUNCTION_LIST,
}

macro_rules! ck {
    ($p:expr, $f:ident ( $($a:expr),* )) => {
        // SAFETY: test code calling the library with valid pointers.
        unsafe { ($p.f.$f.unwrap())($($a),*) }
    };
}

impl P11 {
    fn load() -> P11 {
        // SAFETY: loading the library under test and reading its function list.
        unsafe {
            let lib = libloading::Library::new(common::library()).unwrap();
            let gfl: libloading::Symbol<
                unsafe extern "C" fn(*mut *mut sys::CK_FUNCTION_LIST) -> sys::CK_RV,
            > = lib.get(b"C_GetFunctionList\0").unwrap();
            let mut fl = ptr::null_mut();
            assert_eq!(gfl(&mut fl), sys::CKR_OK);
            let f = *fl;
            P11 { _lib: lib, f }
        }
    }

    /// Opens a session, logs in (or finds the user logged in), returns the session.
    fn session(&self) -> Result<sys::CK_SESSION_HANDLE, sys::CK_RV> {
        let mut h = 0;
        let rv = ck!(
            self,
            C_OpenSession(
                0,
                sys::CKF_SERIAL_SESSION | sys::CKF_RW_SESSION,
                ptr::null_mut(),
                None,
                &mut h
            )
        );
        if rv != sys::CKR_OK {
            return Err(rv);
        }
        let rv = ck!(
            self,
            C_Login(
                h,
                sys::CKU_USER,
                USER_PIN.as_ptr() as *mut u8,
                USER_PIN.len() as _
            )
        );
        if rv != sys::CKR_OK && rv != sys::CKR_USER_ALREADY_LOGGED_IN {
            return Err(rv);
        }
        Ok(h)
    }

    fn find_key(
        &self,
        h: sys::CK_SESSION_HANDLE,
        label: &[u8],
        class: sys::CK_ULONG,
    ) -> Result<sys::CK_OBJECT_HANDLE, sys::CK_RV> {
        let mut class = class;
        let mut t = [
            sys::CK_ATTRIBUTE {
                type_: sys::CKA_LABEL,
                pValue: label.as_ptr() as *mut _,
                ulValueLen: label.len() as _,
            },
            sys::CK_ATTRIBUTE {
                type_: sys::CKA_CLASS,
                pValue: &mut class as *mut _ as *mut _,
                ulValueLen: std::mem::size_of::<sys::CK_ULONG>() as _,
            },
        ];
        let rv = ck!(self, C_FindObjectsInit(h, t.as_mut_ptr(), 2));
        if rv != sys::CKR_OK {
            return Err(rv);
        }
        let mut o = 0;
        let mut n = 0;
        let rv = ck!(self, C_FindObjects(h, &mut o, 1, &mut n));
        ck!(self, C_FindObjectsFinal(h));
        if rv != sys::CKR_OK {
            return Err(rv);
        }
        if n != 1 {
            return Err(sys::CKR_OBJECT_HANDLE_INVALID);
        }
        Ok(o)
    }

    fn sign_verify(
        &self,
        h: sys::CK_SESSION_HANDLE,
        private: sys::CK_OBJECT_HANDLE,
        public: sys::CK_OBJECT_HANDLE,
    ) -> Result<(), sys::CK_RV> {
        let mut m = sys::CK_MECHANISM {
            mechanism: sys::CKM_ECDSA_SHA256,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let data = b"signed across a fork";
        let mut sig = [0u8; 64];
        let mut len: sys::CK_ULONG = 64;
        for rv in [
            ck!(self, C_SignInit(h, &mut m, private)),
            ck!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    sig.as_mut_ptr(),
                    &mut len
                )
            ),
            ck!(self, C_VerifyInit(h, &mut m, public)),
            ck!(
                self,
                C_Verify(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    sig.as_mut_ptr(),
                    len
                )
            ),
        ] {
            if rv != sys::CKR_OK {
                return Err(rv);
            }
        }
        Ok(())
    }
}

fn child(p: &P11) -> i32 {
    // The parent's state is not the child's.
    let mut info = sys::CK_INFO::default();
    if ck!(p, C_GetInfo(&mut info)) != sys::CKR_CRYPTOKI_NOT_INITIALIZED {
        return 10;
    }
    if ck!(p, C_Initialize(ptr::null_mut())) != sys::CKR_OK {
        return 11;
    }
    let Ok(h) = p.session() else { return 12 };
    let Ok(private) = p.find_key(h, b"fork-key", sys::CKO_PRIVATE_KEY) else {
        return 13;
    };
    let Ok(public) = p.find_key(h, b"fork-key", sys::CKO_PUBLIC_KEY) else {
        return 14;
    };
    if p.sign_verify(h, private, public).is_err() {
        return 15;
    }
    if ck!(p, C_Finalize(ptr::null_mut())) != sys::CKR_OK {
        return 16;
    }
    0
}

#[test]
fn child_initialises_afresh_and_signs() {
    let stack = Stack::start(1, 1);
    stack.export_env();
    let p = P11::load();
    assert_eq!(ck!(p, C_Initialize(ptr::null_mut())), sys::CKR_OK);
    let h = p.session().unwrap();
    let label = b"fork-key";
    let mut yes: sys::CK_BBOOL = 1;
    let b = std::mem::size_of::<sys::CK_BBOOL>() as sys::CK_ULONG;
    let mut pub_t = [
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_TOKEN,
            pValue: &mut yes as *mut _ as *mut _,
            ulValueLen: b,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_VERIFY,
            pValue: &mut yes as *mut _ as *mut _,
            ulValueLen: b,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_EC_PARAMS,
            pValue: P256.as_ptr() as *mut _,
            ulValueLen: P256.len() as _,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: label.len() as _,
        },
    ];
    let mut priv_t = [
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_TOKEN,
            pValue: &mut yes as *mut _ as *mut _,
            ulValueLen: b,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_SIGN,
            pValue: &mut yes as *mut _ as *mut _,
            ulValueLen: b,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: label.len() as _,
        },
    ];
    let mut m = sys::CK_MECHANISM {
        mechanism: sys::CKM_EC_KEY_PAIR_GEN,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    };
    let (mut public, mut private) = (0, 0);
    assert_eq!(
        ck!(
            p,
            C_GenerateKeyPair(
                h,
                &mut m,
                pub_t.as_mut_ptr(),
                4,
                priv_t.as_mut_ptr(),
                3,
                &mut public,
                &mut private
            )
        ),
        sys::CKR_OK
    );
    p.sign_verify(h, private, public).unwrap();

    // SAFETY: fork in a test; the child only calls the library and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child(&p);
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child did not exit: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child failed at step {}",
        libc::WEXITSTATUS(status)
    );
    // The parent is unaffected.
    p.sign_verify(h, private, public).unwrap();
    assert_eq!(ck!(p, C_DestroyObject(h, private)), sys::CKR_OK);
    assert_eq!(ck!(p, C_DestroyObject(h, public)), sys::CKR_OK);
    assert_eq!(ck!(p, C_Finalize(ptr::null_mut())), sys::CKR_OK);
}

//! Initialisation without a usable configuration, in a process of its own: `C_Initialize`
//! fails cleanly (`CKR_GENERAL_ERROR`), nothing is left initialised, and calls answer
//! `CKR_CRYPTOKI_NOT_INITIALIZED`; the function lists are available before initialisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The library's C ABI is called directly.
#![allow(unsafe_code)]

mod common;

use std::ptr;

use cryptoki_sys as sys;

#[test]
fn missing_or_invalid_configuration_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: loading the library under test and reading its function list.
    let (_lib, f) = unsafe {
        let lib = libloading::Library::new(common::library()).unwrap();
        let gfl: libloading::Symbol<
            unsafe extern "C" fn(*mut *mut sys::CK_FUNCTION_LIST) -> sys::CK_RV,
        > = lib.get(b"C_GetFunctionList\0").unwrap();
        let mut fl = ptr::null_mut();
        assert_eq!(gfl(&mut fl), sys::CKR_OK);
        let f = *fl;
        (lib, f)
    };
    macro_rules! ck {
        ($f:ident ( $($a:expr),* )) => {
            // SAFETY: calling the library with valid (or deliberately NULL) pointers.
            unsafe { (f.$f.unwrap())($($a),*) }
        };
    }
    let mut info = sys::CK_INFO::default();
    assert_eq!(ck!(C_GetInfo(&mut info)), sys::CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(
        ck!(C_Finalize(ptr::null_mut())),
        sys::CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut n: sys::CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetSlotList(0, ptr::null_mut(), &mut n)),
        sys::CKR_CRYPTOKI_NOT_INITIALIZED
    );

    // No configuration file at all.
    std::env::set_var("TRESOR_PKCS11_CONF", dir.path().join("missing.cfg"));
    std::env::set_var("SECUROSYS_PKCS11_CONF", dir.path().join("missing-too.cfg"));
    assert_eq!(ck!(C_Initialize(ptr::null_mut())), sys::CKR_GENERAL_ERROR);
    assert_eq!(ck!(C_GetInfo(&mut info)), sys::CKR_CRYPTOKI_NOT_INITIALIZED);

    // A file that is not libconfig.
    let bad = dir.path().join("bad.cfg");
    std::fs::write(&bad, "primus: { hsms: { ").unwrap();
    std::env::set_var("TRESOR_PKCS11_CONF", &bad);
    assert_eq!(ck!(C_Initialize(ptr::null_mut())), sys::CKR_GENERAL_ERROR);

    // A valid file whose slot has no secrets: initialised, the slot has no token.
    let good = dir.path().join("primus.cfg");
    std::fs::write(
        &good,
        "version = \"1.0\";\nprimus: {\n  hsms: {\n    hsm0: { host = \"127.0.0.1\"; port = \"9\";\n      slots: { slot0: { user_name = \"P1\"; proxy_user = \"svc\"; id = 3; }; }; };\n  };\n};\n",
    )
    .unwrap();
    std::env::set_var("TRESOR_PKCS11_CONF", &good);
    std::env::set_var("TRESOR_SECRETS_CONF", dir.path().join("no-secrets.cfg"));
    assert_eq!(ck!(C_Initialize(ptr::null_mut())), sys::CKR_OK);
    assert_eq!(ck!(C_GetSlotList(1, ptr::null_mut(), &mut n)), sys::CKR_OK);
    assert_eq!(n, 0, "no slot with a token");
    assert_eq!(ck!(C_GetSlotList(0, ptr::null_mut(), &mut n)), sys::CKR_OK);
    assert_eq!(n, 1);
    let mut ti = sys::CK_TOKEN_INFO::default();
    assert_eq!(ck!(C_GetTokenInfo(3, &mut ti)), sys::CKR_TOKEN_NOT_PRESENT);
    let mut h = 0;
    assert_eq!(
        ck!(C_OpenSession(
            3,
            sys::CKF_SERIAL_SESSION,
            ptr::null_mut(),
            None,
            &mut h
        )),
        sys::CKR_TOKEN_NOT_PRESENT
    );
    // Mutex functions without CKF_OS_LOCKING_OK cannot be honoured.
    assert_eq!(ck!(C_Finalize(ptr::null_mut())), sys::CKR_OK);
    unsafe extern "C" fn create(_: *mut *mut std::ffi::c_void) -> sys::CK_RV {
        sys::CKR_OK
    }
    unsafe extern "C" fn other(_: *mut std::ffi::c_void) -> sys::CK_RV {
        sys::CKR_OK
    }
    let mut args = sys::CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create),
        DestroyMutex: Some(other),
        LockMutex: Some(other),
        UnlockMutex: Some(other),
        flags: 0,
        pReserved: ptr::null_mut(),
    };
    assert_eq!(
        ck!(C_Initialize(&mut args as *mut _ as *mut _)),
        sys::CKR_CANT_LOCK
    );
    args.flags = sys::CKF_OS_LOCKING_OK;
    assert_eq!(
        ck!(C_Initialize(&mut args as *mut _ as *mut _)),
        sys::CKR_OK
    );
    args.LockMutex = None;
    assert_eq!(ck!(C_Finalize(ptr::null_mut())), sys::CKR_OK);
    assert_eq!(
        ck!(C_Initialize(&mut args as *mut _ as *mut _)),
        sys::CKR_ARGUMENTS_BAD
    );
}

//! Black-box test of `C_InitToken` through the built library against a real stack: the
//! session rule, the label rule (refused and logged), a wrong SO PIN counted in the token's
//! flags, NULL arguments, then the re-initialisation itself (objects gone, user PIN not
//! initialised until `C_InitPIN`), and another application (slot 1: its own context on the
//! node) that can no longer use the destroyed objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The NULL-argument checks call the C ABI directly.
#![allow(unsafe_code)]

mod common;

use std::ptr;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys as sys;

use common::{pin, rv, slot, RawLib, Stack, SO_PIN, USER_PIN};

#[test]
fn init_token_through_the_library() {
    let stack = Stack::start(1, 2);
    stack.export_env();
    let lib = common::library();
    let p = Pkcs11::new(&lib).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let raw = RawLib::load(&lib);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&p, &raw, &stack);
    }));
    if let Err(e) = r {
        eprintln!("--- node log\n{}", stack.node_log("node1"));
        std::panic::resume_unwind(e);
    }
    p.finalize().unwrap();
}

fn run(p: &Pkcs11, raw: &RawLib, stack: &Stack) {
    let (s0, s1) = (slot(p, 0), slot(p, 1));
    // Another application of the partition (slot 1 is its own context on the node): a token
    // key and a session key, both in use.
    let other = p.open_rw_session(s1).unwrap();
    other.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let key_template = |token: bool| {
        vec![
            Attribute::Token(token),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"before-init".to_vec()),
        ]
    };
    let token_key = other
        .generate_key(&Mechanism::AesKeyGen, &key_template(true))
        .unwrap();
    let session_key = other
        .generate_key(&Mechanism::AesKeyGen, &key_template(false))
        .unwrap();
    for k in [token_key, session_key] {
        other.encrypt(&Mechanism::AesEcb, k, &[0u8; 16]).unwrap();
    }
    other.logout().unwrap();
    other.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let info = p.get_token_info(s0).unwrap();
    assert!(info.user_pin_initialized() && info.token_initialized());
    assert!(!info.so_pin_count_low());

    // This application has a session on slot 0: CKR_SESSION_EXISTS.
    let mine = p.open_ro_session(s0).unwrap();
    assert_eq!(
        rv(p.init_token(s0, &pin(SO_PIN), "P1")),
        RvError::SessionExists
    );
    mine.close().unwrap();
    // A label that is not the partition's name: CKR_ARGUMENTS_BAD, with the reason logged.
    assert_eq!(
        rv(p.init_token(s0, &pin(SO_PIN), "renamed")),
        RvError::ArgumentsBad
    );
    let log = std::fs::read_to_string(stack.log_file()).unwrap();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("C_InitToken"))
        .unwrap_or_else(|| panic!("no C_InitToken line in {log}"));
    assert!(
        line.contains("0x00000007") && line.contains("partition name \"P1\""),
        "{line}"
    );
    // A wrong SO PIN is counted (the token says so) and changes nothing.
    assert_eq!(
        rv(p.init_token(s0, &pin("wrong-so-pin"), "P1")),
        RvError::PinIncorrect
    );
    assert!(p.get_token_info(s0).unwrap().so_pin_count_low());
    other
        .encrypt(&Mechanism::AesEcb, token_key, &[0u8; 16])
        .unwrap();
    // NULL label, NULL PIN (no protected authentication path), unknown slot.
    let so = SO_PIN.as_bytes();
    // SAFETY: test code calling the library's C_InitToken with the pointers given.
    let init = |slot: sys::CK_SLOT_ID, pin: *mut u8, len: usize, label: *mut u8| unsafe {
        (raw.f.C_InitToken.unwrap())(slot, pin, len as _, label)
    };
    let mut label = [b' '; 32];
    label[..2].copy_from_slice(b"P1");
    assert_eq!(
        init(0, so.as_ptr() as *mut u8, so.len(), ptr::null_mut()),
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        init(0, ptr::null_mut(), 0, label.as_mut_ptr()),
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        init(77, so.as_ptr() as *mut u8, so.len(), label.as_mut_ptr()),
        sys::CKR_SLOT_ID_INVALID
    );

    // The re-initialisation.
    p.init_token(s0, &pin(SO_PIN), "P1").unwrap();
    let info = p.get_token_info(s0).unwrap();
    assert!(!info.user_pin_initialized(), "no user PIN until C_InitPIN");
    assert!(info.token_initialized() && !info.so_pin_count_low());
    assert!(stack
        .node_log("node1")
        .contains("token re-initialised by the security officer"));

    // The other application can no longer use what was destroyed: its node context lost the
    // login and the session key; the token key is gone.
    assert_eq!(
        rv(other.encrypt(&Mechanism::AesEcb, token_key, &[0u8; 16])),
        RvError::UserNotLoggedIn
    );
    assert_eq!(
        rv(other.encrypt(&Mechanism::AesEcb, session_key, &[0u8; 16])),
        RvError::UserNotLoggedIn
    );

    // The user cannot log in until the SO sets a PIN.
    let s = p.open_rw_session(s0).unwrap();
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserPinNotInitialized
    );
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin("fresh-user-pin")).unwrap();
    s.logout().unwrap();
    assert!(p.get_token_info(s0).unwrap().user_pin_initialized());
    s.login(UserType::User, Some(&pin("fresh-user-pin")))
        .unwrap();
    assert!(
        s.find_objects(&[]).unwrap().is_empty(),
        "every object destroyed"
    );
    assert!(s
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap()
        .is_empty());
    assert_eq!(
        rv(s.get_attributes(token_key, &[cryptoki::object::AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    // The token works as before for new keys.
    let k = s
        .generate_key(&Mechanism::AesKeyGen, &key_template(false))
        .unwrap();
    s.encrypt(&Mechanism::AesEcb, k, &[0u8; 16]).unwrap();
    // The other application logs in again with the new PIN: its old handles stay invalid.
    other.logout().ok();
    other
        .login(UserType::User, Some(&pin("fresh-user-pin")))
        .unwrap();
    assert_eq!(
        rv(other.encrypt(&Mechanism::AesEcb, token_key, &[0u8; 16])),
        RvError::KeyHandleInvalid
    );
    drop(s);
    drop(other);
}

//! Black-box tests of the built `libtresor_pkcs11.so`, loaded with the `cryptoki` crate (and,
//! for the raw-pointer rules, through its function list directly), against a real stack
//! started here: two nodes' worth of processes would be slower, so one node and one gateway.
//!
//! The library's state is per process, so the checks run in sequence inside one test; each
//! uses its own slot (every slot is its own application context on the node).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The raw-pointer checks call the C ABI directly.
#![allow(unsafe_code)]

mod common;

use std::ptr;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki_sys as sys;

use common::{pin, rv, slot, Stack, SO_PIN, USER_PIN};

macro_rules! call {
    ($raw:expr, $f:ident ( $($a:expr),* )) => {
        // SAFETY: test code calling the library with the pointers each case sets up.
        unsafe { ($raw.f.$f.unwrap())($($a),*) }
    };
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn user_session(p: &Pkcs11, id: u64) -> Session {
    let s = p.open_rw_session(slot(p, id)).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s
}

fn ec_pair(s: &Session, token: bool) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(token),
            Attribute::Verify(true),
            Attribute::EcParams(P256.to_vec()),
        ],
        &[
            Attribute::Token(token),
            Attribute::Sign(true),
            Attribute::Derive(true),
            Attribute::Private(true),
        ],
    )
    .unwrap()
}

fn aes_key(s: &Session, len: u64) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(len.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Extractable(true),
        ],
    )
    .unwrap()
}

/// A raw attribute pointing at `v`.
fn attr<T>(type_: sys::CK_ATTRIBUTE_TYPE, v: &mut T) -> sys::CK_ATTRIBUTE {
    sys::CK_ATTRIBUTE {
        type_,
        pValue: v as *mut T as *mut _,
        ulValueLen: std::mem::size_of::<T>() as sys::CK_ULONG,
    }
}

/// A named check.
type Step<'a> = (&'static str, Box<dyn Fn() + 'a>);

#[test]
fn library_against_a_real_stack() {
    let stack = Stack::start(1, 12);
    stack.export_env();
    let lib = common::library();
    let p = Pkcs11::new(&lib).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let raw = Raw::load(&lib);

    let steps: Vec<Step<'_>> = vec![
        ("exports", Box::new(exports_only_three_symbols)),
        ("general", Box::new(|| general_slot_token_mechanisms(&p))),
        ("sessions", Box::new(|| sessions_and_login(&p, &raw))),
        ("objects", Box::new(|| objects_attributes_find(&p))),
        ("sign", Box::new(|| sign_and_verify(&p))),
        (
            "ciphers",
            Box::new(|| ciphers_wrap_derive_digest_random(&p)),
        ),
        ("pqc", Box::new(|| post_quantum(&p))),
        ("raw", Box::new(|| raw.pointer_rules(&p))),
        (
            "round trips",
            Box::new(|| raw.one_round_trip(&p, stack.nodes[0].3)),
        ),
        ("keys raw", Box::new(|| raw.key_rules(&p))),
        ("messages", Box::new(|| raw.message_aead(&p))),
        ("threads", Box::new(|| eight_threads_sign(&p))),
        ("allowed", Box::new(|| allowed_mechanisms(&p))),
        ("reinit", Box::new(|| raw.initialize_rules())),
        ("log", Box::new(|| log_block_is_honoured(&stack))),
    ];
    for (name, f) in steps {
        eprintln!("--- {name}");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if let Err(e) = r {
            eprintln!("--- node log\n{}", stack.node_log("node1"));
            std::panic::resume_unwind(e);
        }
    }
    p.finalize().unwrap();
    let log = std::fs::read_to_string(stack.log_file()).unwrap();
    assert!(
        log.lines()
            .last()
            .unwrap_or_default()
            .ends_with("C_Finalize: finalised"),
        "{log}"
    );
    drop(stack);
}

/// The configuration's `log` block (file, `trace_level` 6, timestamp, pid, function): the
/// initialisation and the failed calls of the steps before are there, decorated; no `debug`
/// line (every call, the buffer-too-small idiom), and no PIN.
fn log_block_is_honoured(stack: &Stack) {
    let log = std::fs::read_to_string(stack.log_file()).unwrap();
    let pid = format!("[{}] ", std::process::id());
    let init = log
        .lines()
        .find(|l| l.contains("C_Initialize: initialised from"))
        .unwrap_or_else(|| panic!("no initialisation line in:\n{log}"));
    assert!(init.starts_with("20") && init.contains('T'), "{init}");
    assert!(init.contains(&pid) && init.contains(" INFO "), "{init}");
    // A failed call of the raw-pointer rules: an invalid session handle.
    assert!(
        log.lines()
            .any(|l| l.contains(" NOTICE ") && l.contains("CK_RV 0x000000B3")),
        "no CKR_SESSION_HANDLE_INVALID line in:\n{log}"
    );
    assert!(
        !log.contains(" DEBUG "),
        "trace_level 6 keeps debug lines out"
    );
    assert!(!log.contains(USER_PIN) && !log.contains(SO_PIN));
}

fn exports_only_three_symbols() {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(common::library())
        .output()
        .expect("nm (binutils) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|n| !n.starts_with('_'))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["C_GetFunctionList", "C_GetInterface", "C_GetInterfaceList"],
        "{text}"
    );
}

fn general_slot_token_mechanisms(p: &Pkcs11) {
    let info = p.get_library_info().unwrap();
    assert_eq!(info.manufacturer_id(), "Tresor");
    let slots = p.get_slots_with_token().unwrap();
    assert_eq!(slots.len(), 12);
    // The slot without credentials: listed, no token.
    assert_eq!(p.get_all_slots().unwrap().len(), 13);
    let none = slot(p, common::NO_TOKEN_SLOT);
    assert!(!p.get_slot_info(none).unwrap().token_present());
    assert_eq!(rv(p.get_token_info(none)), RvError::TokenNotPresent);
    assert_eq!(rv(p.open_ro_session(none)), RvError::TokenNotPresent);
    let s0 = slot(p, 0);
    let si = p.get_slot_info(s0).unwrap();
    assert!(si.token_present());
    let ti = p.get_token_info(s0).unwrap();
    assert_eq!(ti.label(), "P1");
    assert!(ti.login_required() && ti.user_pin_initialized() && ti.rng());
    assert!(ti.token_initialized());
    let mechs = p.get_mechanism_list(s0).unwrap();
    for m in [
        MechanismType::ECDSA,
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::AES_GCM,
        MechanismType::SHA256,
        MechanismType::EDDSA,
        MechanismType::ML_KEM,
    ] {
        assert!(mechs.contains(&m), "{m} missing");
    }
    let rsa = p
        .get_mechanism_info(s0, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
        .unwrap();
    assert_eq!((rsa.min_key_size(), rsa.max_key_size()), (2048, 8192));
    // Performed by the HSM node, not in the application: CKF_HW.
    assert!(rsa.generate_key_pair() && rsa.hardware());
    let ecdsa = p.get_mechanism_info(s0, MechanismType::ECDSA).unwrap();
    assert!(ecdsa.sign() && ecdsa.verify() && !ecdsa.encrypt());
    assert!(!ecdsa.sign_recover());
    let gcm = p.get_mechanism_info(s0, MechanismType::AES_GCM).unwrap();
    assert!(gcm.encrypt() && gcm.decrypt() && !gcm.sign());
    assert_eq!(
        rv(p.get_mechanism_info(s0, MechanismType::DES3_CBC)),
        RvError::MechanismInvalid
    );
    // A slot id that does not exist.
    let bad = Slot::try_from(999u64).unwrap();
    assert_eq!(rv(p.get_slot_info(bad)), RvError::SlotIdInvalid);
    assert_eq!(rv(p.get_token_info(bad)), RvError::SlotIdInvalid);
    assert_eq!(rv(p.open_ro_session(bad)), RvError::SlotIdInvalid);
    // C_InitToken with a label that is not the partition's name changes nothing (the
    // re-initialisation itself is in tests/init_token.rs).
    assert_eq!(
        rv(p.init_token(s0, &pin(SO_PIN), "x")),
        RvError::ArgumentsBad
    );
}

fn sessions_and_login(p: &Pkcs11, raw: &Raw) {
    let s1 = slot(p, 1);
    let ro = p.open_ro_session(s1).unwrap();
    let rw = p.open_rw_session(s1).unwrap();
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        SessionState::RoPublic
    );
    assert_eq!(
        rw.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );
    assert!(rw.get_session_info().unwrap().read_write());
    assert_eq!(rv(ro.logout()), RvError::UserNotLoggedIn);
    assert_eq!(
        rv(ro.login(UserType::User, Some(&pin("wrong-pin-000")))),
        RvError::PinIncorrect
    );
    ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    // Login state is the application's: both sessions see it.
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        SessionState::RoUser
    );
    assert_eq!(
        rw.get_session_info().unwrap().session_state(),
        SessionState::RwUser
    );
    assert_eq!(
        rv(rw.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserAlreadyLoggedIn
    );
    assert_eq!(
        rv(rw.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::UserAnotherAlreadyLoggedIn
    );
    // Token objects need a read/write session.
    assert_eq!(
        rv(ro.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::Token(true), Attribute::ValueLen(32.into())]
        )),
        RvError::SessionReadOnly
    );
    ro.logout().unwrap();
    assert_eq!(rv(rw.logout()), RvError::UserNotLoggedIn);
    // The security officer cannot log in while a read-only session is open.
    assert_eq!(
        rv(rw.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::SessionReadOnlyExists
    );
    drop(ro);
    rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(
        rw.get_session_info().unwrap().session_state(),
        SessionState::RwSecurityOfficer
    );
    assert_eq!(rv(p.open_ro_session(s1)), RvError::SessionReadWriteSoExists);
    // C_InitPIN as SO, then C_SetPIN as user and back.
    rw.init_pin(&pin(USER_PIN)).unwrap();
    rw.logout().unwrap();
    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    rw.set_pin(&pin(USER_PIN), &pin("user-pin-0002")).unwrap();
    rw.set_pin(&pin("user-pin-0002"), &pin(USER_PIN)).unwrap();
    assert_eq!(rv(rw.init_pin(&pin(USER_PIN))), RvError::UserNotLoggedIn);
    // Many sessions; C_CloseAllSessions ends them and the login.
    let many: Vec<Session> = (0..20).map(|_| p.open_ro_session(s1).unwrap()).collect();
    assert_eq!(p.get_token_info(s1).unwrap().session_count(), Some(21));
    assert_eq!(call!(raw, C_CloseAllSessions(1)), sys::CKR_OK);
    assert_eq!(
        call!(raw, C_CloseAllSessions(999)),
        sys::CKR_SLOT_ID_INVALID
    );
    assert_eq!(rv(rw.get_session_info()), RvError::SessionHandleInvalid);
    std::mem::forget(many);
    std::mem::forget(rw);
    let again = p.open_ro_session(s1).unwrap();
    assert_eq!(
        again.get_session_info().unwrap().session_state(),
        SessionState::RoPublic
    );
}

fn objects_attributes_find(p: &Pkcs11) {
    let s = user_session(p, 2);
    let value = [7u8; 32];
    let label = b"import-aes".to_vec();
    let k = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(value.to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sensitive(true),
        ])
        .unwrap();
    let attrs = s
        .get_attributes(
            k,
            &[
                AttributeType::Class,
                AttributeType::ValueLen,
                AttributeType::Label,
            ],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::Class(ObjectClass::SECRET_KEY)));
    assert!(attrs.contains(&Attribute::ValueLen(32.into())));
    assert!(attrs.contains(&Attribute::Label(label.clone())));
    let info = s
        .get_attribute_info(k, &[AttributeType::Value, AttributeType::Modulus])
        .unwrap();
    assert_eq!(
        format!("{info:?}"),
        "[Sensitive, TypeInvalid]",
        "sensitive value and a type an AES key lacks"
    );
    // Find by label and class; then by a label nobody has.
    let found = s
        .find_objects(&[
            Attribute::Label(label.clone()),
            Attribute::Class(ObjectClass::SECRET_KEY),
        ])
        .unwrap();
    assert_eq!(found, vec![k]);
    assert!(s
        .find_objects(&[Attribute::Label(b"nobody".to_vec())])
        .unwrap()
        .is_empty());
    // Change a label, copy, destroy.
    s.update_attributes(k, &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    let copy = s
        .copy_object(
            k,
            &[Attribute::Token(false), Attribute::Label(b"copy".to_vec())],
        )
        .unwrap();
    assert_ne!(copy, k);
    assert_eq!(
        rv(s.update_attributes(k, &[Attribute::Class(ObjectClass::DATA)])),
        RvError::AttributeReadOnly
    );
    // Inconsistent and invalid templates.
    assert_eq!(
        rv(s.create_object(&[Attribute::Token(true), Attribute::Token(false)])),
        RvError::TemplateInconsistent
    );
    // Session objects end with their session.
    let other = p.open_ro_session(slot(p, 2)).unwrap();
    assert_eq!(
        other
            .find_objects(&[Attribute::Label(b"copy".to_vec())])
            .unwrap(),
        vec![copy]
    );
    let temp = p.open_rw_session(slot(p, 2)).unwrap();
    let doomed = aes_key(&temp, 16);
    temp.close().unwrap();
    assert_eq!(
        rv(s.get_attributes(doomed, &[AttributeType::Class])),
        RvError::ObjectHandleInvalid
    );
    // Tresor's vendor attributes: usage count and the key's attestation.
    let vendor = s
        .get_attributes(
            k,
            &[
                AttributeType::VendorDefined(0xD452_0003),
                AttributeType::VendorDefined(0xD452_0010),
                AttributeType::VendorDefined(0xD452_0011),
            ],
        )
        .unwrap();
    assert_eq!(vendor.len(), 3, "{vendor:?}");
    match &vendor[1] {
        Attribute::VendorDefined((_, xml)) => {
            assert!(
                String::from_utf8_lossy(xml).contains('<'),
                "attestation XML"
            )
        }
        other => panic!("{other:?}"),
    }
    s.destroy_object(copy).unwrap();
    s.destroy_object(k).unwrap();
    assert_eq!(rv(s.destroy_object(k)), RvError::ObjectHandleInvalid);
}

fn sign_and_verify(p: &Pkcs11) {
    let s = user_session(p, 3);
    let data = b"the data to sign";
    // ECDSA P-256, single and multi-part.
    let (ecpub, ecpriv) = ec_pair(&s, false);
    for m in [Mechanism::EcdsaSha256, Mechanism::EcdsaSha384] {
        let sig = s.sign(&m, ecpriv, data).unwrap();
        assert_eq!(sig.len(), 64);
        s.verify(&m, ecpub, data, &sig).unwrap();
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert_eq!(
            rv(s.verify(&m, ecpub, data, &bad)),
            RvError::SignatureInvalid
        );
    }
    s.sign_init(&Mechanism::EcdsaSha256, ecpriv).unwrap();
    s.sign_update(b"the data ").unwrap();
    s.sign_update(b"to sign").unwrap();
    let sig = s.sign_final().unwrap();
    s.verify_init(&Mechanism::EcdsaSha256, ecpub).unwrap();
    s.verify_update(data).unwrap();
    s.verify_final(&sig).unwrap();
    // A second init while one is active.
    s.sign_init(&Mechanism::Ecdsa, ecpriv).unwrap();
    assert_eq!(
        rv(s.sign_init(&Mechanism::Ecdsa, ecpriv)),
        RvError::OperationActive
    );
    let digest = [0x11u8; 32];
    let raw_sig = s.sign(&Mechanism::Ecdsa, ecpriv, &digest);
    // cryptoki's sign re-initialises: the active operation gives OPERATION_ACTIVE.
    assert_eq!(rv(raw_sig), RvError::OperationActive);
    s.sign_final().map(|_| ()).unwrap_or(());
    let sig = s.sign(&Mechanism::Ecdsa, ecpriv, &digest).unwrap();
    s.verify(&Mechanism::Ecdsa, ecpub, &digest, &sig).unwrap();
    // Wrong key type for the mechanism; a public key cannot sign; invalid key handle.
    assert_eq!(
        rv(s.sign(&Mechanism::Sha256RsaPkcs, ecpriv, data)),
        RvError::KeyTypeInconsistent
    );
    assert!(s.sign(&Mechanism::EcdsaSha256, ecpub, data).is_err());
    // RSA-2048: PKCS#1 v1.5 and PSS.
    let (rpub, rpriv) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
                Attribute::Encrypt(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, rpriv, data).unwrap();
    assert_eq!(sig.len(), 256);
    s.verify(&Mechanism::Sha256RsaPkcs, rpub, data, &sig)
        .unwrap();
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let sig = s
        .sign(&Mechanism::Sha256RsaPkcsPss(pss), rpriv, data)
        .unwrap();
    s.verify(&Mechanism::Sha256RsaPkcsPss(pss), rpub, data, &sig)
        .unwrap();
    let modulus = s
        .get_attributes(rpub, &[AttributeType::ModulusBits])
        .unwrap();
    assert_eq!(modulus, vec![Attribute::ModulusBits(2048.into())]);
    // RSA-OAEP encrypt / decrypt.
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    );
    let ct = s
        .encrypt(&Mechanism::RsaPkcsOaep(oaep), rpub, b"secret")
        .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::RsaPkcsOaep(oaep), rpriv, &ct)
            .unwrap(),
        b"secret"
    );
    // Ed25519.
    let (epub, epriv) = s
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::Verify(true),
                Attribute::EcParams(ED25519.to_vec()),
            ],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )
        .unwrap();
    let ed = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let sig = s.sign(&ed, epriv, data).unwrap();
    assert_eq!(sig.len(), 64);
    s.verify(&ed, epub, data, &sig).unwrap();
    // HMAC with a generic secret.
    let hk = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
            ],
        )
        .unwrap();
    let mac = s.sign(&Mechanism::Sha256Hmac, hk, data).unwrap();
    assert_eq!(mac.len(), 32);
    s.verify(&Mechanism::Sha256Hmac, hk, data, &mac).unwrap();
}

fn ciphers_wrap_derive_digest_random(p: &Pkcs11) {
    let s = user_session(p, 4);
    let k = aes_key(&s, 32);
    let mut iv = [3u8; 12];
    let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
    let ct = s.encrypt(&gcm, k, b"hello gcm").unwrap();
    assert_eq!(ct.len(), 9 + 16);
    assert_eq!(s.decrypt(&gcm, k, &ct).unwrap(), b"hello gcm");
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert_eq!(rv(s.decrypt(&gcm, k, &bad)), RvError::EncryptedDataInvalid);
    // CBC-PAD multi-part.
    let cbc = Mechanism::AesCbcPad([9u8; 16]);
    s.encrypt_init(&cbc, k).unwrap();
    let mut out = s.encrypt_update(b"part one, ").unwrap();
    out.extend(s.encrypt_update(b"part two").unwrap());
    out.extend(s.encrypt_final().unwrap());
    assert_eq!(out.len(), 32);
    assert_eq!(s.decrypt(&cbc, k, &out).unwrap(), b"part one, part two");
    // Wrong IV length.
    assert_eq!(
        rv(s.encrypt(&Mechanism::AesEcb, k, &[0u8; 15])),
        RvError::DataLenRange
    );
    // Wrap / unwrap an extractable AES key with AES-KW.
    let target = aes_key(&s, 16);
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, k, target).unwrap();
    assert_eq!(wrapped.len(), 24);
    let unwrapped = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            k,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let ct1 = s.encrypt(&Mechanism::AesEcb, target, &[1u8; 16]).unwrap();
    let ct2 = s
        .encrypt(&Mechanism::AesEcb, unwrapped, &[1u8; 16])
        .unwrap();
    assert_eq!(ct1, ct2);
    // ECDH between two P-256 pairs gives the same secret on both sides.
    let (apub, apriv) = ec_pair(&s, false);
    let (bpub, bpriv) = ec_pair(&s, false);
    let point = |h| match &s.get_attributes(h, &[AttributeType::EcPoint]).unwrap()[0] {
        Attribute::EcPoint(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    let (pa, pb) = (point(apub), point(bpub));
    let derived = |priv_: ObjectHandle, peer: &[u8]| {
        s.derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer)),
            priv_,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap()
    };
    let (ka, kb) = (derived(apriv, &pb), derived(bpriv, &pa));
    assert_eq!(
        s.encrypt(&Mechanism::AesEcb, ka, &[5u8; 16]).unwrap(),
        s.encrypt(&Mechanism::AesEcb, kb, &[5u8; 16]).unwrap()
    );
    // Digest: known answer, single and multi-part.
    let abc = s.digest(&Mechanism::Sha256, b"abc").unwrap();
    assert_eq!(
        abc[..4],
        [0xba, 0x78, 0x16, 0xbf],
        "SHA-256(\"abc\") = ba7816bf…"
    );
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(b"a").unwrap();
    s.digest_update(b"bc").unwrap();
    assert_eq!(s.digest_final().unwrap(), abc);
    s.digest_init(&Mechanism::Sha256).unwrap();
    assert_eq!(rv(s.digest_key(k)), RvError::KeyIndigestible);
    assert_eq!(rv(s.digest_final()), RvError::OperationNotInitialized);
    // Random.
    let r1 = s.generate_random_vec(64).unwrap();
    let r2 = s.generate_random_vec(64).unwrap();
    assert_ne!(r1, r2);
    assert_eq!(rv(s.seed_random(b"seed")), RvError::RandomSeedNotSupported);
}

fn post_quantum(p: &Pkcs11) {
    let s = user_session(p, 5);
    let (pk, sk) = s
        .generate_key_pair(
            &Mechanism::MlKemKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ParameterSet(cryptoki::object::MlKemParameterSetType::ML_KEM_768.into()),
                Attribute::Encapsulate(true),
            ],
            &[Attribute::Token(false), Attribute::Decapsulate(true)],
        )
        .unwrap();
    let tmpl = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::ValueLen(32.into()),
    ];
    let (ct, k1) = s.encapsulate_key(&Mechanism::MlKem, pk, &tmpl).unwrap();
    assert_eq!(ct.len(), 1088);
    let k2 = s
        .decapsulate_key(&Mechanism::MlKem, sk, &tmpl, &ct)
        .unwrap();
    assert_eq!(
        s.encrypt(&Mechanism::AesEcb, k1, &[0u8; 16]).unwrap(),
        s.encrypt(&Mechanism::AesEcb, k2, &[0u8; 16]).unwrap()
    );
}

fn eight_threads_sign(p: &Pkcs11) {
    let setup = user_session(p, 6);
    let (public, private) = ec_pair(&setup, true);
    let p = Arc::new(p.clone());
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                let s = p.open_ro_session(slot(&p, 6)).unwrap();
                for j in 0..25 {
                    let data = format!("thread {i} message {j}");
                    let sig = s
                        .sign(&Mechanism::EcdsaSha256, private, data.as_bytes())
                        .unwrap();
                    s.verify(&Mechanism::EcdsaSha256, public, data.as_bytes(), &sig)
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    setup.destroy_object(private).unwrap();
    setup.destroy_object(public).unwrap();
}

/// `CKA_ALLOWED_MECHANISMS` as pkcs11-tool `--allowed-mechanisms` sets it: given in the
/// generation template, read back (size query first), enforced by the node on use
/// (`CKR_MECHANISM_INVALID`), never changed afterwards.
fn allowed_mechanisms(p: &Pkcs11) {
    let s = user_session(p, 11);
    let allowed = vec![MechanismType::ECDSA_SHA256, MechanismType::ECDSA_SHA384];
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(false), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::AllowedMechanisms(allowed.clone()),
            ],
        )
        .unwrap();
    let sig = s.sign(&Mechanism::EcdsaSha256, private, b"data").unwrap();
    s.verify(&Mechanism::EcdsaSha256, public, b"data", &sig)
        .unwrap();
    s.sign(&Mechanism::EcdsaSha384, private, b"data").unwrap();
    // Not listed: refused by the node, for single and multi-part signing alike.
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[1u8; 32])),
        RvError::MechanismInvalid
    );
    assert_eq!(
        rv(s.sign(&Mechanism::EcdsaSha512, private, b"data")),
        RvError::MechanismInvalid
    );
    s.sign_init(&Mechanism::EcdsaSha512, private).unwrap();
    s.sign_update(b"da").unwrap();
    assert_eq!(rv(s.sign_final()), RvError::MechanismInvalid);
    // The operation has ended: the next one starts clean.
    s.sign(&Mechanism::EcdsaSha256, private, b"data").unwrap();
    // Read back as given (the cryptoki crate asks the size first).
    let attrs = s
        .get_attributes(private, &[AttributeType::AllowedMechanisms])
        .unwrap();
    assert!(
        matches!(&attrs[..], [Attribute::AllowedMechanisms(v)] if *v == allowed),
        "{attrs:?}"
    );
    let attrs = s
        .get_attributes(public, &[AttributeType::AllowedMechanisms])
        .unwrap();
    assert!(
        matches!(&attrs[..], [Attribute::AllowedMechanisms(v)] if v.is_empty()),
        "{attrs:?}"
    );
    // Read-only once the key exists.
    assert_eq!(
        rv(s.update_attributes(
            private,
            &[Attribute::AllowedMechanisms(vec![MechanismType::ECDSA])]
        )),
        RvError::AttributeReadOnly
    );
    // A secret key limited to AES-GCM.
    let aes = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::AllowedMechanisms(vec![MechanismType::AES_GCM]),
            ],
        )
        .unwrap();
    let mut iv = [3u8; 12];
    let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, &[], 128.into()).unwrap());
    s.encrypt(&gcm, aes, b"plaintext").unwrap();
    assert_eq!(
        rv(s.encrypt(&Mechanism::AesEcb, aes, &[0u8; 16])),
        RvError::MechanismInvalid
    );
    for h in [private, public, aes] {
        s.destroy_object(h).unwrap();
    }
}

/// The library through its raw function lists (cryptoki-sys + libloading), for the rules
/// about NULL pointers, length queries and short buffers.
struct Raw {
    _lib: libloading::Library,
    f: sys::CK_FUNCTION_LIST_3_2,
    f240: sys::CK_FUNCTION_LIST,
}

impl Raw {
    fn load(path: &std::path::Path) -> Raw {
        // SAFETY: loading the library under test.
        let lib = unsafe { libloading::Library::new(path) }.unwrap();
        // SAFETY: symbols of the PKCS#11 ABI with their cryptoki-sys types.
        unsafe {
            let get_if: libloading::Symbol<
                unsafe extern "C" fn(
                    *mut u8,
                    *mut sys::CK_VERSION,
                    *mut *mut sys::CK_INTERFACE,
                    sys::CK_FLAGS,
                ) -> sys::CK_RV,
            > = lib.get(b"C_GetInterface\0").unwrap();
            let mut v = sys::CK_VERSION { major: 3, minor: 2 };
            let mut iface = ptr::null_mut();
            assert_eq!(
                get_if(c"PKCS 11".as_ptr() as *mut u8, &mut v, &mut iface, 0),
                sys::CKR_OK
            );
            let f = *((*iface).pFunctionList as *const sys::CK_FUNCTION_LIST_3_2);
            assert_eq!((f.version.major, f.version.minor), (3, 2));
            // Unknown version / name.
            let mut v9 = sys::CK_VERSION { major: 9, minor: 9 };
            assert_eq!(
                get_if(ptr::null_mut(), &mut v9, &mut iface, 0),
                sys::CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                get_if(c"Other".as_ptr() as *mut u8, ptr::null_mut(), &mut iface, 0),
                sys::CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                get_if(ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0),
                sys::CKR_ARGUMENTS_BAD
            );
            let list: libloading::Symbol<
                unsafe extern "C" fn(*mut sys::CK_INTERFACE, *mut sys::CK_ULONG) -> sys::CK_RV,
            > = lib.get(b"C_GetInterfaceList\0").unwrap();
            let mut n: sys::CK_ULONG = 0;
            assert_eq!(list(ptr::null_mut(), &mut n), sys::CKR_OK);
            assert_eq!(n, 3);
            let mut one = [sys::CK_INTERFACE {
                pInterfaceName: ptr::null_mut(),
                pFunctionList: ptr::null_mut(),
                flags: 0,
            }; 3];
            let mut small: sys::CK_ULONG = 1;
            assert_eq!(
                list(one.as_mut_ptr(), &mut small),
                sys::CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(list(one.as_mut_ptr(), &mut n), sys::CKR_OK);
            assert_eq!(
                list(ptr::null_mut(), ptr::null_mut()),
                sys::CKR_ARGUMENTS_BAD
            );
            let gfl: libloading::Symbol<
                unsafe extern "C" fn(*mut *mut sys::CK_FUNCTION_LIST) -> sys::CK_RV,
            > = lib.get(b"C_GetFunctionList\0").unwrap();
            let mut fl = ptr::null_mut();
            assert_eq!(gfl(&mut fl), sys::CKR_OK);
            assert_eq!(gfl(ptr::null_mut()), sys::CKR_ARGUMENTS_BAD);
            let f240 = *fl;
            assert_eq!((f240.version.major, f240.version.minor), (2, 40));
            Raw { _lib: lib, f, f240 }
        }
    }

    fn session(&self, slot: sys::CK_SLOT_ID, rw: bool) -> sys::CK_SESSION_HANDLE {
        let mut h = 0;
        let flags = sys::CKF_SERIAL_SESSION | if rw { sys::CKF_RW_SESSION } else { 0 };
        assert_eq!(
            call!(
                self,
                C_OpenSession(slot, flags, ptr::null_mut(), None, &mut h)
            ),
            sys::CKR_OK
        );
        h
    }

    fn pointer_rules(&self, p: &Pkcs11) {
        let s = user_session(p, 7);
        let (_, ecpriv) = ec_pair(&s, false);
        let h = self.session(7, false);
        // Serial-session flag is required.
        let mut dummy = 0;
        assert_eq!(
            call!(self, C_OpenSession(7, 0, ptr::null_mut(), None, &mut dummy)),
            sys::CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        // No asynchronous sessions (the token lacks CKF_ASYNC_SESSION_SUPPORTED), so the
        // C_Async* functions have nothing to complete.
        assert_eq!(
            call!(
                self,
                C_OpenSession(
                    7,
                    sys::CKF_SERIAL_SESSION | sys::CKF_ASYNC_SESSION,
                    ptr::null_mut(),
                    None,
                    &mut dummy
                )
            ),
            sys::CKR_SESSION_ASYNC_NOT_SUPPORTED
        );
        let mut tinfo = sys::CK_TOKEN_INFO::default();
        assert_eq!(call!(self, C_GetTokenInfo(7, &mut tinfo)), sys::CKR_OK);
        assert_eq!(tinfo.flags & sys::CKF_ASYNC_SESSION_SUPPORTED, 0);
        let mut id: sys::CK_ULONG = 0;
        assert_eq!(
            call!(
                self,
                C_AsyncGetID(h, c"C_Sign".as_ptr() as *mut u8, &mut id)
            ),
            sys::CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            call!(
                self,
                C_AsyncComplete(h, c"C_Sign".as_ptr() as *mut u8, ptr::null_mut())
            ),
            sys::CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            call!(
                self,
                C_OpenSession(
                    7,
                    sys::CKF_SERIAL_SESSION,
                    ptr::null_mut(),
                    None,
                    ptr::null_mut()
                )
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        // Info pointers.
        assert_eq!(
            call!(self, C_GetInfo(ptr::null_mut())),
            sys::CKR_ARGUMENTS_BAD
        );
        let mut info = sys::CK_INFO::default();
        assert_eq!(call!(self, C_GetInfo(&mut info)), sys::CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (3, 2)
        );
        // SAFETY: the 2.40 table's C_GetInfo with a valid pointer.
        let rv240 = unsafe { (self.f240.C_GetInfo.unwrap())(&mut info) };
        assert_eq!(rv240, sys::CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (2, 40)
        );
        let mut n: sys::CK_ULONG = 0;
        assert_eq!(
            call!(self, C_GetSlotList(0, ptr::null_mut(), ptr::null_mut())),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(self, C_GetSlotList(0, ptr::null_mut(), &mut n)),
            sys::CKR_OK
        );
        let mut few = [0 as sys::CK_SLOT_ID; 2];
        let mut two: sys::CK_ULONG = 2;
        assert_eq!(
            call!(self, C_GetSlotList(0, few.as_mut_ptr(), &mut two)),
            sys::CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(two, n);
        // Sign: not initialised, then length query, short buffer, success.
        let data = b"raw data";
        let mut len: sys::CK_ULONG = 0;
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    ptr::null_mut(),
                    &mut len
                )
            ),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        let mut mech = sys::CK_MECHANISM {
            mechanism: sys::CKM_ECDSA_SHA256,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            call!(self, C_SignInit(h, ptr::null_mut(), ecpriv.handle())),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(self, C_SignInit(h, &mut mech, ecpriv.handle())),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    ptr::null_mut(),
                    ptr::null_mut()
                )
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    ptr::null_mut(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(len, 64);
        let mut sig = [0u8; 64];
        let mut short: sys::CK_ULONG = 10;
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    sig.as_mut_ptr(),
                    &mut short
                )
            ),
            sys::CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(short, 64);
        let mut full: sys::CK_ULONG = 64;
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    sig.as_mut_ptr(),
                    &mut full
                )
            ),
            sys::CKR_OK
        );
        // The operation ended with the signature.
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    sig.as_mut_ptr(),
                    &mut full
                )
            ),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        // NULL data with a length.
        assert_eq!(
            call!(self, C_SignInit(h, &mut mech, ecpriv.handle())),
            sys::CKR_OK
        );
        assert_eq!(
            call!(self, C_SignUpdate(h, ptr::null_mut(), 5)),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(call!(self, C_SessionCancel(h, sys::CKF_SIGN)), sys::CKR_OK);
        assert_eq!(
            call!(self, C_SignFinal(h, sig.as_mut_ptr(), &mut full)),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        // An unknown mechanism and a mechanism with a malformed parameter.
        let mut unknown = sys::CK_MECHANISM {
            mechanism: 0x7777_0000,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            call!(self, C_SignInit(h, &mut unknown, ecpriv.handle())),
            sys::CKR_MECHANISM_INVALID
        );
        let mut junk = [0u8; 3];
        let mut malformed = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_GCM,
            pParameter: junk.as_mut_ptr() as *mut _,
            ulParameterLen: 3,
        };
        assert_eq!(
            call!(self, C_EncryptInit(h, &mut malformed, ecpriv.handle())),
            sys::CKR_MECHANISM_PARAM_INVALID
        );
        // Attribute size query and short buffer.
        let mut label = sys::CK_ATTRIBUTE {
            type_: sys::CKA_EC_PARAMS,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        let (public, _) = ec_pair(&s, false);
        assert_eq!(
            call!(self, C_GetAttributeValue(h, public.handle(), &mut label, 1)),
            sys::CKR_OK
        );
        assert_eq!(label.ulValueLen, 10);
        let mut buf = [0u8; 4];
        label.pValue = buf.as_mut_ptr() as *mut _;
        label.ulValueLen = 4;
        assert_eq!(
            call!(self, C_GetAttributeValue(h, public.handle(), &mut label, 1)),
            sys::CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(label.ulValueLen, sys::CK_UNAVAILABLE_INFORMATION);
        assert_eq!(
            call!(
                self,
                C_GetAttributeValue(h, public.handle(), ptr::null_mut(), 1)
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        // Find: not initialised, active twice, NULL outputs.
        let mut found = [0 as sys::CK_OBJECT_HANDLE; 4];
        let mut count: sys::CK_ULONG = 0;
        assert_eq!(
            call!(self, C_FindObjects(h, found.as_mut_ptr(), 4, &mut count)),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            call!(self, C_FindObjectsInit(h, ptr::null_mut(), 0)),
            sys::CKR_OK
        );
        assert_eq!(
            call!(self, C_FindObjectsInit(h, ptr::null_mut(), 0)),
            sys::CKR_OPERATION_ACTIVE
        );
        assert_eq!(
            call!(
                self,
                C_FindObjects(h, found.as_mut_ptr(), 4, ptr::null_mut())
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(self, C_FindObjects(h, found.as_mut_ptr(), 4, &mut count)),
            sys::CKR_OK
        );
        assert!(count >= 1);
        assert_eq!(call!(self, C_FindObjectsFinal(h)), sys::CKR_OK);
        assert_eq!(
            call!(self, C_FindObjectsFinal(h)),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        // Random with NULL buffer; a zero-length request is fine.
        assert_eq!(
            call!(self, C_GenerateRandom(h, ptr::null_mut(), 8)),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(self, C_GenerateRandom(h, ptr::null_mut(), 0)),
            sys::CKR_OK
        );
        // Functions that do not apply.
        assert_eq!(
            call!(self, C_SignRecoverInit(h, &mut mech, ecpriv.handle())),
            sys::CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            call!(self, C_GetFunctionStatus(h)),
            sys::CKR_FUNCTION_NOT_PARALLEL
        );
        assert_eq!(
            call!(self, C_GetOperationState(h, ptr::null_mut(), &mut len)),
            sys::CKR_FUNCTION_NOT_SUPPORTED
        );
        // Invalid object and key handles.
        let mut cls = sys::CK_ATTRIBUTE {
            type_: sys::CKA_CLASS,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        assert_eq!(
            call!(self, C_GetAttributeValue(h, 0, &mut cls, 1)),
            sys::CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(
            call!(self, C_GetAttributeValue(h, 0x7fff_fff0, &mut cls, 1)),
            sys::CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(
            call!(self, C_SignInit(h, &mut mech, 0)),
            sys::CKR_KEY_HANDLE_INVALID
        );
        assert_eq!(
            call!(self, C_SignInit(h, &mut mech, 0x7fff_fff0)),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_Sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as _,
                    sig.as_mut_ptr(),
                    &mut full
                )
            ),
            sys::CKR_KEY_HANDLE_INVALID
        );
        // Login rules through the raw ABI.
        let pinb = USER_PIN.as_bytes();
        assert_eq!(
            call!(
                self,
                C_Login(
                    h,
                    sys::CKU_CONTEXT_SPECIFIC,
                    pinb.as_ptr() as *mut u8,
                    pinb.len() as _
                )
            ),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            call!(
                self,
                C_Login(h, 77, pinb.as_ptr() as *mut u8, pinb.len() as _)
            ),
            sys::CKR_USER_TYPE_INVALID
        );
        assert_eq!(
            call!(self, C_Login(h, sys::CKU_USER, ptr::null_mut(), 4)),
            sys::CKR_ARGUMENTS_BAD
        );
        let other = b"OTHER";
        assert_eq!(
            call!(
                self,
                C_LoginUser(
                    h,
                    sys::CKU_USER,
                    pinb.as_ptr() as *mut u8,
                    pinb.len() as _,
                    other.as_ptr() as *mut u8,
                    5
                )
            ),
            sys::CKR_PIN_INCORRECT
        );
        assert_eq!(
            call!(
                self,
                C_SetPIN(
                    h,
                    pinb.as_ptr() as *mut u8,
                    pinb.len() as _,
                    pinb.as_ptr() as *mut u8,
                    pinb.len() as _
                )
            ),
            sys::CKR_SESSION_READ_ONLY
        );
        // Read-only sessions cannot destroy or copy token objects.
        let (tpub, tpriv) = ec_pair(&s, true);
        assert_eq!(
            call!(self, C_DestroyObject(h, tpub.handle())),
            sys::CKR_SESSION_READ_ONLY
        );
        let mut copy = 0;
        assert_eq!(
            call!(
                self,
                C_CopyObject(h, tpub.handle(), ptr::null_mut(), 0, &mut copy)
            ),
            sys::CKR_SESSION_READ_ONLY
        );
        assert_eq!(
            call!(
                self,
                C_CopyObject(h, tpub.handle(), ptr::null_mut(), 0, ptr::null_mut())
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        s.destroy_object(tpub).unwrap();
        s.destroy_object(tpriv).unwrap();
        // Object size is not disclosed; slot events never happen.
        let mut size: sys::CK_ULONG = 0;
        assert_eq!(
            call!(self, C_GetObjectSize(h, public.handle(), &mut size)),
            sys::CKR_OK
        );
        assert_eq!(size, sys::CK_UNAVAILABLE_INFORMATION);
        let mut ev: sys::CK_SLOT_ID = 0;
        assert_eq!(
            call!(
                self,
                C_WaitForSlotEvent(sys::CKF_DONT_BLOCK, &mut ev, ptr::null_mut())
            ),
            sys::CKR_NO_EVENT
        );
        assert_eq!(
            call!(
                self,
                C_GetMechanismList(7, ptr::null_mut(), ptr::null_mut())
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        let mut minfo = sys::CK_MECHANISM_INFO::default();
        assert_eq!(
            call!(self, C_GetMechanismInfo(7, sys::CKM_ML_KEM, &mut minfo)),
            sys::CKR_OK
        );
        assert_eq!(
            minfo.flags,
            sys::CKF_HW | sys::CKF_ENCAPSULATE | sys::CKF_DECAPSULATE
        );
        // Invalid session handle everywhere.
        assert_eq!(
            call!(self, C_CloseSession(0xdead)),
            sys::CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(
            call!(self, C_SignInit(0xdead, &mut mech, ecpriv.handle())),
            sys::CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(call!(self, C_CloseSession(h)), sys::CKR_OK);
    }

    /// `…Init` sends nothing, a length query with a known length sends nothing, the
    /// operation sends one request, immutable attributes are read once.
    fn one_round_trip(&self, p: &Pkcs11, http: std::net::SocketAddr) {
        let s = user_session(p, 9);
        let (public, private) = ec_pair(&s, false);
        let h = self.session(9, false);
        let data = b"count the requests";
        let mut sig = [0u8; 64];
        let mut mech = sys::CK_MECHANISM {
            mechanism: sys::CKM_ECDSA_SHA256,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        // Learn the length once.
        s.sign(&Mechanism::EcdsaSha256, private, data).unwrap();
        let mut attr = sys::CK_ATTRIBUTE {
            type_: sys::CKA_EC_PARAMS,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        assert_eq!(
            call!(self, C_GetAttributeValue(h, public.handle(), &mut attr, 1)),
            sys::CKR_OK
        );
        let mut ok = false;
        for _ in 0..3 {
            let before = Stack::requests(http);
            assert_eq!(
                call!(self, C_SignInit(h, &mut mech, private.handle())),
                sys::CKR_OK
            );
            let after_init = Stack::requests(http);
            let mut len: sys::CK_ULONG = 0;
            assert_eq!(
                call!(
                    self,
                    C_Sign(
                        h,
                        data.as_ptr() as *mut u8,
                        data.len() as _,
                        ptr::null_mut(),
                        &mut len
                    )
                ),
                sys::CKR_OK
            );
            assert_eq!(len, 64);
            let after_query = Stack::requests(http);
            assert_eq!(
                call!(
                    self,
                    C_Sign(
                        h,
                        data.as_ptr() as *mut u8,
                        data.len() as _,
                        sig.as_mut_ptr(),
                        &mut len
                    )
                ),
                sys::CKR_OK
            );
            let after_sign = Stack::requests(http);
            assert_eq!(
                call!(self, C_GetAttributeValue(h, public.handle(), &mut attr, 1)),
                sys::CKR_OK
            );
            let after_attr = Stack::requests(http);
            eprintln!("requests: {before} → init {after_init} → query {after_query} → sign {after_sign} → cached attribute {after_attr}");
            if (after_init, after_query, after_sign, after_attr)
                == (before, before, before + 1, before + 1)
            {
                ok = true;
                break;
            }
        }
        assert!(ok, "an operation must cost exactly one request");
        assert_eq!(call!(self, C_CloseSession(h)), sys::CKR_OK);
    }

    /// Key management through the raw ABI: wrap length query and short buffer, KEM queries
    /// that create no key, wrong mechanisms and NULL outputs.
    fn key_rules(&self, p: &Pkcs11) {
        let s = user_session(p, 10);
        let h = self.session(10, true);
        let kek = aes_key(&s, 32);
        let target = aes_key(&s, 16);
        let mut kw = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_KEY_WRAP,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let mut len: sys::CK_ULONG = 0;
        assert_eq!(
            call!(
                self,
                C_WrapKey(
                    h,
                    &mut kw,
                    kek.handle(),
                    target.handle(),
                    ptr::null_mut(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(len, 24);
        let mut buf = [0u8; 24];
        let mut short: sys::CK_ULONG = 8;
        assert_eq!(
            call!(
                self,
                C_WrapKey(
                    h,
                    &mut kw,
                    kek.handle(),
                    target.handle(),
                    buf.as_mut_ptr(),
                    &mut short
                )
            ),
            sys::CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(short, 24);
        assert_eq!(
            call!(
                self,
                C_WrapKey(
                    h,
                    &mut kw,
                    kek.handle(),
                    target.handle(),
                    buf.as_mut_ptr(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_WrapKey(
                    h,
                    &mut kw,
                    kek.handle(),
                    target.handle(),
                    buf.as_mut_ptr(),
                    ptr::null_mut()
                )
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        // A signing mechanism cannot wrap; a key-pair mechanism cannot make a secret key.
        let mut ecdsa = sys::CK_MECHANISM {
            mechanism: sys::CKM_ECDSA,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            call!(
                self,
                C_WrapKey(
                    h,
                    &mut ecdsa,
                    kek.handle(),
                    target.handle(),
                    ptr::null_mut(),
                    &mut len
                )
            ),
            sys::CKR_MECHANISM_INVALID
        );
        let mut kpg = sys::CK_MECHANISM {
            mechanism: sys::CKM_EC_KEY_PAIR_GEN,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let mut k = 0;
        assert_eq!(
            call!(self, C_GenerateKey(h, &mut kpg, ptr::null_mut(), 0, &mut k)),
            sys::CKR_MECHANISM_INVALID
        );
        assert_eq!(
            call!(
                self,
                C_GenerateKeyPair(
                    h,
                    &mut kpg,
                    ptr::null_mut(),
                    0,
                    ptr::null_mut(),
                    0,
                    ptr::null_mut(),
                    ptr::null_mut()
                )
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        // ECDH with a malformed parameter.
        let mut junk = [0u8; 5];
        let mut ecdh = sys::CK_MECHANISM {
            mechanism: sys::CKM_ECDH1_DERIVE,
            pParameter: junk.as_mut_ptr() as *mut _,
            ulParameterLen: 5,
        };
        let (_, ecpriv) = ec_pair(&s, false);
        assert_eq!(
            call!(
                self,
                C_DeriveKey(h, &mut ecdh, ecpriv.handle(), ptr::null_mut(), 0, &mut k)
            ),
            sys::CKR_MECHANISM_PARAM_INVALID
        );
        // ML-KEM: a query and a short buffer create no key.
        let (pk, _) = s
            .generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::ParameterSet(
                        cryptoki::object::MlKemParameterSetType::ML_KEM_512.into(),
                    ),
                    Attribute::Encapsulate(true),
                ],
                &[Attribute::Token(false), Attribute::Decapsulate(true)],
            )
            .unwrap();
        let secrets = || {
            s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
                .unwrap()
                .len()
        };
        let before = secrets();
        let mut kem = sys::CK_MECHANISM {
            mechanism: sys::CKM_ML_KEM,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let mut ctlen: sys::CK_ULONG = 0;
        assert_eq!(
            call!(
                self,
                C_EncapsulateKey(
                    h,
                    &mut kem,
                    pk.handle(),
                    ptr::null_mut(),
                    0,
                    ptr::null_mut(),
                    &mut ctlen,
                    ptr::null_mut()
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(ctlen, 768);
        let mut ct = vec![0u8; 768];
        let mut small: sys::CK_ULONG = 100;
        assert_eq!(
            call!(
                self,
                C_EncapsulateKey(
                    h,
                    &mut kem,
                    pk.handle(),
                    ptr::null_mut(),
                    0,
                    ct.as_mut_ptr(),
                    &mut small,
                    &mut k
                )
            ),
            sys::CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(small, 768);
        assert_eq!(secrets(), before, "no key was created");
        self.authenticated_wrap(p, &s, h);
        assert_eq!(call!(self, C_CloseSession(h)), sys::CKR_OK);
    }

    /// `C_WrapKeyAuthenticated` / `C_UnwrapKeyAuthenticated` (3.2) with AES-GCM: the
    /// associated data is bound to the wrapped key, the result is what `C_WrapKey` gives with
    /// the same data in the GCM parameter, and every refusal creates no key.
    fn authenticated_wrap(&self, p: &Pkcs11, s: &Session, h: sys::CK_SESSION_HANDLE) {
        let info = p
            .get_mechanism_info(slot(p, 10), MechanismType::AES_GCM)
            .unwrap();
        assert!(info.wrap() && info.unwrap() && info.encrypt(), "{info:?}");
        let kek = aes_key(s, 32);
        let target = aes_key(s, 16);
        let mut iv = [7u8; 12];
        let mut gcm_params = |aad: &mut [u8], tag_bits| sys::CK_GCM_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: if aad.is_empty() {
                ptr::null_mut()
            } else {
                aad.as_mut_ptr()
            },
            ulAADLen: aad.len() as sys::CK_ULONG,
            ulTagBits: tag_bits,
        };
        let size = std::mem::size_of::<sys::CK_GCM_PARAMS>() as sys::CK_ULONG;
        let mut none = [0u8; 0];
        let mut params = gcm_params(&mut none, 128);
        let mut gcm = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_GCM,
            pParameter: &mut params as *mut _ as *mut _,
            ulParameterLen: size,
        };
        let mut ad = *b"backup of 2026-12-07";
        let adl = ad.len() as sys::CK_ULONG;
        let secrets = || {
            s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
                .unwrap()
                .len()
        };
        let wrap = |m: &mut sys::CK_MECHANISM, ad: &mut [u8], out: &mut Vec<u8>| -> sys::CK_RV {
            let mut len: sys::CK_ULONG = 0;
            let adp = if ad.is_empty() {
                ptr::null_mut()
            } else {
                ad.as_mut_ptr()
            };
            let adl = ad.len() as sys::CK_ULONG;
            let rv = call!(
                self,
                C_WrapKeyAuthenticated(
                    h,
                    m,
                    kek.handle(),
                    target.handle(),
                    adp,
                    adl,
                    ptr::null_mut(),
                    &mut len
                )
            );
            if rv != sys::CKR_OK {
                return rv;
            }
            out.resize(len as usize, 0);
            call!(
                self,
                C_WrapKeyAuthenticated(
                    h,
                    m,
                    kek.handle(),
                    target.handle(),
                    adp,
                    adl,
                    out.as_mut_ptr(),
                    &mut len
                )
            )
        };
        let mut wrapped = Vec::new();
        assert_eq!(wrap(&mut gcm, &mut ad, &mut wrapped), sys::CKR_OK);
        assert_eq!(wrapped.len(), 16 + 16, "key bytes and the tag");
        let unwrap = |m: &mut sys::CK_MECHANISM, blob: &mut [u8], ad: &mut [u8]| {
            let mut class = sys::CKO_SECRET_KEY;
            let mut kt = sys::CKK_AES;
            let mut yes: sys::CK_BBOOL = 1;
            let mut no: sys::CK_BBOOL = 0;
            let mut t = [
                attr(sys::CKA_CLASS, &mut class),
                attr(sys::CKA_KEY_TYPE, &mut kt),
                attr(sys::CKA_TOKEN, &mut no),
                attr(sys::CKA_ENCRYPT, &mut yes),
            ];
            let mut k = 0;
            let rv = call!(
                self,
                C_UnwrapKeyAuthenticated(
                    h,
                    m,
                    kek.handle(),
                    blob.as_mut_ptr(),
                    blob.len() as sys::CK_ULONG,
                    t.as_mut_ptr(),
                    t.len() as sys::CK_ULONG,
                    if ad.is_empty() {
                        ptr::null_mut()
                    } else {
                        ad.as_mut_ptr()
                    },
                    ad.len() as sys::CK_ULONG,
                    &mut k
                )
            );
            (rv, k)
        };
        let before = secrets();
        let (rv, k) = unwrap(&mut gcm, &mut wrapped, &mut ad);
        assert_eq!(rv, sys::CKR_OK);
        // The unwrapped key is the target: both encrypt a block alike.
        let block = [5u8; 16];
        let ecb = |key| s.encrypt(&Mechanism::AesEcb, key, &block).unwrap();
        let unwrapped = s
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .unwrap()
            .into_iter()
            .find(|o| o.handle() == k)
            .expect("the unwrapped key is found");
        assert_eq!(ecb(unwrapped), ecb(target));
        assert_eq!(secrets(), before + 1);
        // Other associated data, none, or a changed byte: refused, and no key.
        let mut other = *b"backup of 2026-12-08";
        assert_eq!(
            unwrap(&mut gcm, &mut wrapped, &mut other).0,
            sys::CKR_WRAPPED_KEY_INVALID
        );
        assert_eq!(
            unwrap(&mut gcm, &mut wrapped, &mut none).0,
            sys::CKR_WRAPPED_KEY_INVALID
        );
        let mut bent = wrapped.clone();
        bent[3] ^= 1;
        assert_eq!(
            unwrap(&mut gcm, &mut bent, &mut ad).0,
            sys::CKR_WRAPPED_KEY_INVALID
        );
        assert_eq!(
            unwrap(&mut gcm, &mut wrapped[..10], &mut ad).0,
            sys::CKR_WRAPPED_KEY_LEN_RANGE
        );
        assert_eq!(secrets(), before + 1, "no key from a refused unwrap");
        // C_WrapKey with the data in the GCM parameter gives the same bytes.
        let mut in_param = ad;
        let mut pp = gcm_params(&mut in_param, 128);
        let mut gcm_aad = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_GCM,
            pParameter: &mut pp as *mut _ as *mut _,
            ulParameterLen: size,
        };
        let mut plain = vec![0u8; 64];
        let mut len = plain.len() as sys::CK_ULONG;
        assert_eq!(
            call!(
                self,
                C_WrapKey(
                    h,
                    &mut gcm_aad,
                    kek.handle(),
                    target.handle(),
                    plain.as_mut_ptr(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(&plain[..len as usize], &wrapped[..]);
        // The same data in both places is accepted; different data in both is not.
        let mut again = Vec::new();
        assert_eq!(wrap(&mut gcm_aad, &mut ad, &mut again), sys::CKR_OK);
        assert_eq!(again, wrapped);
        assert_eq!(
            wrap(&mut gcm_aad, &mut other, &mut again),
            sys::CKR_MECHANISM_PARAM_INVALID
        );
        // A truncated tag, a mechanism without associated data, a NULL data pointer with a
        // length.
        let mut p64 = gcm_params(&mut none, 64);
        let mut gcm64 = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_GCM,
            pParameter: &mut p64 as *mut _ as *mut _,
            ulParameterLen: size,
        };
        assert_eq!(
            wrap(&mut gcm64, &mut ad, &mut again),
            sys::CKR_MECHANISM_PARAM_INVALID
        );
        let mut kw = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_KEY_WRAP,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            wrap(&mut kw, &mut ad, &mut again),
            sys::CKR_MECHANISM_INVALID
        );
        let mut len: sys::CK_ULONG = 0;
        assert_eq!(
            call!(
                self,
                C_WrapKeyAuthenticated(
                    h,
                    &mut gcm,
                    kek.handle(),
                    target.handle(),
                    ptr::null_mut(),
                    adl,
                    ptr::null_mut(),
                    &mut len
                )
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(
                self,
                C_UnwrapKeyAuthenticated(
                    h,
                    &mut gcm,
                    kek.handle(),
                    wrapped.as_mut_ptr(),
                    wrapped.len() as sys::CK_ULONG,
                    ptr::null_mut(),
                    0,
                    ad.as_mut_ptr(),
                    adl,
                    ptr::null_mut()
                )
            ),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(secrets(), before + 1);
    }

    fn message_aead(&self, p: &Pkcs11) {
        let s = user_session(p, 8);
        let k = aes_key(&s, 32);
        let h = self.session(8, false);
        let mut mech = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_GCM,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            call!(self, C_MessageEncryptInit(h, &mut mech, k.handle())),
            sys::CKR_OK
        );
        assert_eq!(
            call!(self, C_MessageEncryptInit(h, &mut mech, k.handle())),
            sys::CKR_OPERATION_ACTIVE
        );
        let mut iv = [0u8; 12];
        let mut tag = [0u8; 16];
        let mut params = sys::CK_GCM_MESSAGE_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvFixedBits: 32,
            ivGenerator: sys::CKG_GENERATE_RANDOM,
            pTag: tag.as_mut_ptr(),
            ulTagBits: 128,
        };
        let plain = b"message one";
        let aad = b"header";
        let mut ct = [0u8; 11];
        let mut len: sys::CK_ULONG = 0;
        let size = std::mem::size_of::<sys::CK_GCM_MESSAGE_PARAMS>() as sys::CK_ULONG;
        assert_eq!(
            call!(
                self,
                C_EncryptMessage(
                    h,
                    &mut params as *mut _ as *mut _,
                    size,
                    aad.as_ptr() as *mut u8,
                    6,
                    plain.as_ptr() as *mut u8,
                    11,
                    ptr::null_mut(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(len, 11);
        assert_eq!(
            call!(
                self,
                C_EncryptMessage(
                    h,
                    &mut params as *mut _ as *mut _,
                    size,
                    aad.as_ptr() as *mut u8,
                    6,
                    plain.as_ptr() as *mut u8,
                    11,
                    ct.as_mut_ptr(),
                    &mut len
                )
            ),
            sys::CKR_OK
        );
        assert_ne!(iv, [0u8; 12], "the library generated the IV");
        assert_ne!(tag, [0u8; 16]);
        assert_eq!(call!(self, C_MessageEncryptFinal(h)), sys::CKR_OK);
        assert_eq!(
            call!(self, C_MessageEncryptFinal(h)),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        // Decrypt with the tag from the parameter.
        assert_eq!(
            call!(self, C_MessageDecryptInit(h, &mut mech, k.handle())),
            sys::CKR_OK
        );
        params.ivGenerator = sys::CKG_NO_GENERATE;
        let mut back = [0u8; 11];
        let mut blen: sys::CK_ULONG = 11;
        assert_eq!(
            call!(
                self,
                C_DecryptMessage(
                    h,
                    &mut params as *mut _ as *mut _,
                    size,
                    aad.as_ptr() as *mut u8,
                    6,
                    ct.as_mut_ptr(),
                    11,
                    back.as_mut_ptr(),
                    &mut blen
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(&back, plain);
        tag[0] ^= 1;
        params.pTag = tag.as_mut_ptr();
        assert_eq!(
            call!(
                self,
                C_DecryptMessage(
                    h,
                    &mut params as *mut _ as *mut _,
                    size,
                    aad.as_ptr() as *mut u8,
                    6,
                    ct.as_mut_ptr(),
                    11,
                    back.as_mut_ptr(),
                    &mut blen
                )
            ),
            sys::CKR_AEAD_DECRYPT_FAILED
        );
        assert_eq!(call!(self, C_MessageDecryptFinal(h)), sys::CKR_OK);
        // Message signing.
        let (public, private) = ec_pair(&s, false);
        let mut ecdsa = sys::CK_MECHANISM {
            mechanism: sys::CKM_ECDSA_SHA256,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            call!(self, C_MessageSignInit(h, &mut ecdsa, private.handle())),
            sys::CKR_OK
        );
        let mut sig = [0u8; 64];
        let mut slen: sys::CK_ULONG = 64;
        for msg in [b"first".as_slice(), b"second".as_slice()] {
            assert_eq!(
                call!(
                    self,
                    C_SignMessage(
                        h,
                        ptr::null_mut(),
                        0,
                        msg.as_ptr() as *mut u8,
                        msg.len() as _,
                        sig.as_mut_ptr(),
                        &mut slen
                    )
                ),
                sys::CKR_OK
            );
            s.verify(&Mechanism::EcdsaSha256, public, msg, &sig)
                .unwrap();
        }
        assert_eq!(call!(self, C_MessageSignFinal(h)), sys::CKR_OK);
        assert_eq!(
            call!(self, C_MessageVerifyInit(h, &mut ecdsa, public.handle())),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_VerifyMessage(
                    h,
                    ptr::null_mut(),
                    0,
                    b"second".as_ptr() as *mut u8,
                    6,
                    sig.as_mut_ptr(),
                    64
                )
            ),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_VerifyMessage(
                    h,
                    ptr::null_mut(),
                    0,
                    b"third".as_ptr() as *mut u8,
                    5,
                    sig.as_mut_ptr(),
                    64
                )
            ),
            sys::CKR_SIGNATURE_INVALID
        );
        assert_eq!(call!(self, C_MessageVerifyFinal(h)), sys::CKR_OK);
        assert_eq!(
            call!(
                self,
                C_EncryptMessageBegin(h, ptr::null_mut(), 0, ptr::null_mut(), 0)
            ),
            sys::CKR_OPERATION_NOT_INITIALIZED,
            "multi-part messages are in tests/messages.rs"
        );
        // 3.2 C_VerifySignature*.
        let data = b"verify signature";
        let good = s.sign(&Mechanism::EcdsaSha256, private, data).unwrap();
        assert_eq!(
            call!(
                self,
                C_VerifySignatureInit(h, &mut ecdsa, public.handle(), good.as_ptr() as *mut u8, 64)
            ),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_VerifySignatureUpdate(h, data.as_ptr() as *mut u8, 6)
            ),
            sys::CKR_OK
        );
        assert_eq!(
            call!(
                self,
                C_VerifySignatureUpdate(h, data[6..].as_ptr() as *mut u8, 10)
            ),
            sys::CKR_OK
        );
        assert_eq!(call!(self, C_VerifySignatureFinal(h)), sys::CKR_OK);
        assert_eq!(
            call!(self, C_VerifySignatureFinal(h)),
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
    }

    fn initialize_rules(&self) {
        // Already initialised (by the cryptoki context).
        assert_eq!(
            call!(self, C_Initialize(ptr::null_mut())),
            sys::CKR_CRYPTOKI_ALREADY_INITIALIZED
        );
        let mut reserved = 0u8;
        let mut args = sys::CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: sys::CKF_OS_LOCKING_OK,
            pReserved: &mut reserved as *mut u8 as *mut _,
        };
        assert_eq!(
            call!(self, C_Initialize(&mut args as *mut _ as *mut _)),
            sys::CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(self, C_Finalize(&mut reserved as *mut u8 as *mut _)),
            sys::CKR_ARGUMENTS_BAD
        );
    }
}

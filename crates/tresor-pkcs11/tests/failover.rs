//! Failover: two nodes behind one gateway, threads signing and encrypting through the library
//! with a token key and with session objects (a generated AES key, an imported EC key pair);
//! the node that serves them is killed: the application sees no error, and its session
//! objects keep working under the same handles (the library restores their sealed copies on
//! the surviving node). Then every target goes away: calls fail with `CKR_DEVICE_REMOVED` /
//! `CKR_TOKEN_NOT_PRESENT` within bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use common::{Stack, USER_PIN};

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

#[test]
fn node_loss_is_invisible_and_total_loss_is_bounded() {
    let mut stack = Stack::start(2, 1);
    stack.export_env();
    let p = Pkcs11::new(common::library()).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(P256.to_vec()),
            ],
            &[Attribute::Token(true), Attribute::Sign(true)],
        )
        .unwrap();
    let session = SessionKeys::make(&s);
    // Session objects that are gone before the failover must stay gone after it: one
    // destroyed, one whose session was closed.
    let destroyed = SessionKeys::aes(&s);
    s.destroy_object(destroyed).unwrap();
    let closed_session = p.open_rw_session(slot).unwrap();
    let closed = SessionKeys::aes(&closed_session);
    closed_session.close().unwrap();
    let block = [0x5au8; 16];
    let expected = s.encrypt(&Mechanism::AesEcb, session.aes, &block).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Successes per kind of work: token key, session EC key, session AES key.
    let done: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (p, stop, done, failures) =
                (p.clone(), stop.clone(), done.clone(), failures.clone());
            let (ec, aes, expected) = (session.ec_private, session.aes, expected.clone());
            std::thread::spawn(move || {
                let s = p.open_ro_session(slot).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let data = format!("load {i} {n}");
                    let (kind, r) = match i {
                        0 | 1 => (
                            0,
                            s.sign(&Mechanism::EcdsaSha256, private, data.as_bytes())
                                .map(|sig| sig.len() == 64),
                        ),
                        2 => (
                            1,
                            s.sign(&Mechanism::EcdsaSha256, ec, data.as_bytes())
                                .map(|sig| sig.len() == 64),
                        ),
                        _ => (
                            2,
                            s.encrypt(&Mechanism::AesEcb, aes, &block)
                                .map(|ct| ct == expected),
                        ),
                    };
                    match r {
                        Ok(true) => {
                            done[kind].fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            let mut f = failures.lock().unwrap();
                            // The first few say what went wrong; the count says how often.
                            if f.len() < 8 {
                                f.push(format!("worker {i}: {other:?}"));
                            } else {
                                f[7] = format!("… and more (last: worker {i}: {other:?})");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let open: Vec<u64> = stack
        .nodes
        .iter()
        .map(|n| Stack::metric(n.3, "tresor_node_connections_open"))
        .collect();
    let victim = if open[0] >= open[1] { 0 } else { 1 };
    let survivor = stack.nodes[1 - victim].3;
    let before: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    {
        let n = &mut stack.nodes[victim];
        n.1 .0.kill().unwrap();
        n.1 .0.wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(3000));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let after: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let failures = failures.lock().unwrap().clone();
    if !failures.is_empty() {
        for n in ["node1", "node2"] {
            eprintln!("--- {n}.log\n{}", stack.node_log(n));
        }
    }
    assert!(failures.is_empty(), "errors during failover: {failures:?}");
    eprintln!("work done: {before:?} before the kill, {after:?} at the end");
    for k in 0..3 {
        assert!(before[k] > 0, "no work of kind {k} before the kill");
        assert!(
            after[k] > before[k] + 5,
            "too little work of kind {k} after the kill: {before:?} → {after:?}"
        );
    }
    // The surviving node took the session objects back in one request, without error.
    let restores = Stack::metric(survivor, "tresor_node_requests_total{kind=\"0x29\"}");
    let refused = Stack::metric(survivor, "tresor_node_request_errors_total{kind=\"0x29\"}");
    assert!(
        restores >= 1 && refused == 0,
        "restores {restores}, refused {refused}"
    );
    // The restored session objects are the same keys, under the same handles.
    let sig = s
        .sign(&Mechanism::EcdsaSha256, session.ec_private, b"restored")
        .unwrap();
    s.verify(
        &Mechanism::EcdsaSha256,
        session.ec_public,
        b"restored",
        &sig,
    )
    .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::AesEcb, session.aes, &expected)
            .unwrap(),
        block
    );
    for gone in [destroyed, closed] {
        assert!(
            matches!(
                s.encrypt(&Mechanism::AesEcb, gone, &block),
                Err(Error::Pkcs11(RvError::KeyHandleInvalid, _))
            ),
            "a session object destroyed before the failover came back"
        );
    }
    // Destroying a session object after the failover works, and it stays destroyed.
    s.destroy_object(session.ec_public).unwrap();
    assert!(s
        .get_attributes(session.ec_public, &[AttributeType::Class])
        .is_err());
    let sig = s.sign(&Mechanism::EcdsaSha256, private, b"after").unwrap();
    s.verify(&Mechanism::EcdsaSha256, public, b"after", &sig)
        .unwrap();

    // Everything gone: bounded failure, never a hang.
    for n in &mut stack.nodes {
        let _ = n.1 .0.kill();
        let _ = n.1 .0.wait();
    }
    drop(stack.gateway.take());
    let start = Instant::now();
    let r = s.sign(&Mechanism::EcdsaSha256, private, b"nobody there");
    assert!(
        matches!(r, Err(Error::Pkcs11(RvError::DeviceRemoved, _))),
        "{r:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let r = p.get_token_info(slot);
    assert!(
        matches!(r, Err(Error::Pkcs11(RvError::TokenNotPresent, _))),
        "{r:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    drop(s);
    p.finalize().unwrap();
}

/// Session objects of the failover test: a generated AES key and an imported P-256 key pair.
struct SessionKeys {
    aes: ObjectHandle,
    ec_private: ObjectHandle,
    ec_public: ObjectHandle,
}

impl SessionKeys {
    /// A generated AES-256 session key.
    fn aes(s: &Session) -> ObjectHandle {
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

    fn make(s: &Session) -> SessionKeys {
        let aes = SessionKeys::aes(s);
        // An imported private scalar (session object), and its public key imported from the
        // SubjectPublicKeyInfo the token derives.
        let ec_private = s
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Value(vec![0x1d; 32]),
            ])
            .unwrap();
        let spki = match &s
            .get_attributes(ec_private, &[AttributeType::PublicKeyInfo])
            .unwrap()[0]
        {
            Attribute::PublicKeyInfo(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        let ec_public = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(false),
                Attribute::Verify(true),
                Attribute::PublicKeyInfo(spki),
            ])
            .unwrap();
        SessionKeys {
            aes,
            ec_private,
            ec_public,
        }
    }
}

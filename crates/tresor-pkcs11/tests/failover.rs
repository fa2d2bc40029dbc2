//! Failover: two nodes behind one gateway, four threads signing through the library; the
//! node that serves them is killed: the application sees no error. Then every target goes
//! away: calls fail with `CKR_DEVICE_REMOVED` / `CKR_TOKEN_NOT_PRESENT` within bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
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
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (p, stop, done, failures) =
                (p.clone(), stop.clone(), done.clone(), failures.clone());
            std::thread::spawn(move || {
                let s = p.open_ro_session(slot).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let data = format!("load {i}");
                    match s.sign(&Mechanism::EcdsaSha256, private, data.as_bytes()) {
                        Ok(sig) if sig.len() == 64 => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures.lock().unwrap().push(format!("{other:?}")),
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
    let before = done.load(Ordering::Relaxed);
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
    let after = done.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap().clone();
    if !failures.is_empty() {
        for n in ["node1", "node2"] {
            eprintln!("--- {n}.log\n{}", stack.node_log(n));
        }
    }
    assert!(failures.is_empty(), "errors during failover: {failures:?}");
    assert!(before > 0, "no signature before the kill");
    assert!(
        after > before + 20,
        "too few signatures after the kill: {before} → {after}"
    );
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

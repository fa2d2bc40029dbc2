//! Crash consistency: SIGKILL the process while it creates keys, many times; afterwards every
//! acknowledged key is present and usable, no object is half-written, and the audit chain
//! verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tresor");

fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().expect("run tresor");
    assert!(
        out.status.success(),
        "tresor {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn sigkill_during_key_creation_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let shares = dir.path().join("shares");
    let root = dir.path().join("root.pem");
    let db_s = db.to_str().unwrap();
    run(&[
        "init",
        "--store",
        db_s,
        "--shares",
        "1",
        "--threshold",
        "1",
        "--share-dir",
        shares.to_str().unwrap(),
        "--root-cert",
        root.to_str().unwrap(),
    ]);
    let share = shares.join("share-1.txt");
    let share_s = share.to_str().unwrap();
    run(&[
        "admin",
        "partition",
        "create",
        "--store",
        db_s,
        "--share-file",
        share_s,
        "p",
        "--so-pin",
        "so-pin-1",
        "--user-pin",
        "user-pin-1",
    ]);

    let trials = 12;
    let mut acknowledged: Vec<String> = Vec::new();
    for trial in 0..trials {
        let mut child = Command::new(BIN)
            .args([
                "admin",
                "keygen-loop",
                "--store",
                db_s,
                "--share-file",
                share_s,
                "--partition",
                "p",
                "--pin",
                "user-pin-1",
                "--count",
                "100000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.ends_with(b"\n") => {
                        let line = String::from_utf8_lossy(&buf).trim().to_owned();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    Ok(_) => break, // a partial line: not acknowledged
                }
            }
        });
        // Wait for the first key, then kill after a varying delay.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the loop produced no key within 60 s");
        acknowledged.push(first);
        let delay = Duration::from_millis(20 + (trial as u64 * 37) % 300);
        let start = Instant::now();
        while start.elapsed() < delay {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(5)) {
                acknowledged.push(l);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acknowledged.extend(rx.try_iter());
    }
    assert!(
        acknowledged.len() >= trials,
        "every trial acknowledged at least one key"
    );

    // After the crashes: every acknowledged key is there and usable; every stored object opens.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use tresor_core::ck::*;
        use tresor_core::crypto::{GcmParams, Mechanism};
        use tresor_core::template::Template;
        let store: std::sync::Arc<dyn tresor_store::Store> =
            std::sync::Arc::new(tresor_store::SqliteStore::open(&db).await.unwrap());
        let engine = tresor_core::Engine::open(store, tresor_core::EngineConfig::default())
            .await
            .unwrap();
        let text = std::fs::read_to_string(&share).unwrap();
        engine
            .unseal(&[tresor_core::seal::Share::parse(text.trim()).unwrap()])
            .await
            .unwrap();
        let ctx = engine
            .open_context("p")
            .await
            .expect("partition loads: its sealed digest matches the stored objects");
        ctx.login(tresor_core::UserType::User, b"user-pin-1")
            .await
            .unwrap();
        let all = ctx
            .find_objects(&Template::new(), usize::MAX)
            .await
            .expect("every stored object opens");
        assert!(all.len() >= acknowledged.len());
        assert!(
            all.len() <= acknowledged.len() + trials,
            "at most one unacknowledged key per crash"
        );
        let gcm = Mechanism::AesGcm(GcmParams {
            iv: vec![9; 12],
            aad: vec![],
            tag_bits: 128,
        });
        for line in &acknowledged {
            let label = line.split(' ').next().unwrap();
            let t = Template::new()
                .with_bytes(CKA_LABEL, label.as_bytes())
                .unwrap();
            let found = ctx.find_objects(&t, 10).await.unwrap();
            assert_eq!(
                found.len(),
                1,
                "acknowledged key {label} is present exactly once"
            );
            ctx.encrypt(found[0], &gcm, b"intact")
                .await
                .expect("acknowledged key is usable");
        }
        engine.seal().await.unwrap();
    });
    let out = Command::new(BIN)
        .args([
            "audit",
            "verify",
            "--store",
            db_s,
            "--root-cert",
            root.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit chain verifies after the crashes: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

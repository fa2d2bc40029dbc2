//! `tresor admin service …` and `tresor admin credentials …` end to end on a temporary store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tresor");

fn tresor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("TRESOR_STORE")
        .env_remove("TRESOR_PKCS11_PASSWORD")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let o = tresor(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

fn fails(args: &[&str]) -> String {
    let o = tresor(args);
    assert!(!o.status.success(), "{args:?} succeeded: {}", text(&o));
    text(&o)
}

struct Setup {
    _dir: tempfile::TempDir,
    db: String,
    share: String,
    path: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db").to_str().unwrap().to_owned();
    let shares = dir.path().join("shares");
    ok(&[
        "init",
        "--store",
        &db,
        "--shares",
        "1",
        "--threshold",
        "1",
        "--share-dir",
        shares.to_str().unwrap(),
        "--root-cert",
        dir.path().join("root.pem").to_str().unwrap(),
    ]);
    let share = shares.join("share-1.txt").to_str().unwrap().to_owned();
    ok(&[
        "admin",
        "partition",
        "create",
        "--store",
        &db,
        "--share-file",
        &share,
        "acme",
        "--so-pin",
        "so-pin-1234",
        "--user-pin",
        "user-pin-1234",
    ]);
    let path = dir.path().to_owned();
    Setup {
        _dir: dir,
        db,
        share,
        path,
    }
}

fn parse_file(p: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn service_and_credentials_file() {
    let s = setup();
    let (db, share) = (s.db.as_str(), s.share.as_str());
    let out = ok(&[
        "admin",
        "service",
        "create",
        "--store",
        db,
        "--share-file",
        share,
        "--name",
        "Acme",
        "--service-user",
        "acme-svc",
        "--allow",
        "10.0.0.0/8,192.0.2.7",
        "--partition",
        "acme",
    ]);
    assert!(out.contains("Service user password: "), "{out}");
    let list = ok(&["admin", "service", "list", "--store", db]);
    assert!(list.contains("acme-svc"), "{list}");
    assert!(list.contains("10.0.0.0/8,192.0.2.7/32"), "{list}");

    let file = s.path.join("creds.txt");
    ok(&[
        "admin",
        "credentials",
        "file",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
        "--service-user",
        "acme-svc",
        "--out",
        file.to_str().unwrap(),
        "--pkcs11-password",
        "pkcs11-pw-1",
        "--gateway",
        "gw1.example.com:2310",
        "--gateway",
        "192.0.2.1:2310",
    ]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let kv = parse_file(&file);
    let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Service User Name",
            "Service User Password",
            "HSM User Name",
            "HSM User Setup Password",
            "PKCS#11 password",
            "Gateway",
            "Gateway"
        ]
    );
    assert_eq!(kv[0].1, "acme-svc");
    assert!(kv[1].1.len() >= 24);
    assert_eq!(kv[2].1, "acme");
    let setup_pw = &kv[3].1;
    assert_eq!(setup_pw.len(), 29);
    assert_eq!(setup_pw.split('-').count(), 5);
    assert_eq!(kv[4].1, "pkcs11-pw-1");
    assert_eq!(kv[5].1, "gw1.example.com:2310");
    assert_eq!(kv[6].1, "192.0.2.1:2310");

    // Without --pkcs11-password the line is absent; the file is replaced.
    ok(&[
        "admin",
        "credentials",
        "file",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
        "--service-user",
        "acme-svc",
        "--out",
        file.to_str().unwrap(),
    ]);
    let kv2 = parse_file(&file);
    assert_eq!(kv2.len(), 4);
    assert_ne!(kv2[1].1, kv[1].1, "the service password was rotated");
    assert_ne!(kv2[3].1, kv[3].1, "a new setup password was issued");

    // The other credential commands.
    let out = ok(&[
        "admin",
        "credentials",
        "setup-password",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
        "--lifetime-days",
        "3",
        "--from-issue",
    ]);
    assert!(out.contains("valid 3 days from now"), "{out}");
    ok(&[
        "admin",
        "credentials",
        "set-pkcs11-password",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
        "--password",
        "another-pw",
    ]);
    let list = ok(&[
        "admin",
        "credentials",
        "list",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
    ]);
    assert!(list.trim().is_empty(), "{list}");
    let out = ok(&[
        "admin",
        "credentials",
        "revoke",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
        "--all",
    ]);
    assert!(out.contains("Revoked 0"), "{out}");

    // Service changes.
    ok(&[
        "admin",
        "service",
        "set",
        "--store",
        db,
        "--share-file",
        share,
        "--service-user",
        "acme-svc",
        "--allow",
        "2001:db8::/32",
        "--disable",
    ]);
    let list = ok(&["admin", "service", "list", "--store", db]);
    assert!(
        list.contains("2001:db8::/32") && list.contains("disabled"),
        "{list}"
    );
    let out = ok(&[
        "admin",
        "service",
        "rotate-password",
        "--store",
        db,
        "--share-file",
        share,
        "--service-user",
        "acme-svc",
    ]);
    assert!(out.contains("Service user password: "), "{out}");
    ok(&[
        "admin",
        "service",
        "unlock",
        "--store",
        db,
        "--share-file",
        share,
        "--service-user",
        "acme-svc",
    ]);
    ok(&[
        "admin",
        "service",
        "delete",
        "--store",
        db,
        "--share-file",
        share,
        "--service-user",
        "acme-svc",
    ]);
    let list = ok(&["admin", "service", "list", "--store", db]);
    assert!(!list.contains("acme-svc"), "{list}");

    // Every change is in the cluster audit chain, which still verifies.
    let root = s.path.join("root.pem");
    ok(&[
        "audit",
        "verify",
        "--store",
        db,
        "--root-cert",
        root.to_str().unwrap(),
    ]);
}

#[test]
fn precise_errors() {
    let s = setup();
    let (db, share) = (s.db.as_str(), s.share.as_str());
    let err = fails(&[
        "admin",
        "service",
        "create",
        "--store",
        db,
        "--share-file",
        share,
        "--name",
        "Acme",
        "--service-user",
        "acme-svc",
        "--allow",
        "10.0.0.0/8",
        "--partition",
        "nope",
    ]);
    assert!(err.contains("partition 'nope' does not exist"), "{err}");
    let err = fails(&[
        "admin",
        "service",
        "create",
        "--store",
        db,
        "--share-file",
        share,
        "--name",
        "Acme",
        "--service-user",
        "acme-svc",
        "--allow",
        "10.0.0.0/8,10.0.0.300",
        "--partition",
        "acme",
    ]);
    assert!(err.contains("\"10.0.0.300\""), "{err}");
    assert!(err.contains("not an IP address or CIDR"), "{err}");
    ok(&[
        "admin",
        "service",
        "create",
        "--store",
        db,
        "--share-file",
        share,
        "--name",
        "Acme",
        "--service-user",
        "acme-svc",
        "--allow",
        "10.0.0.0/8",
        "--partition",
        "acme",
    ]);
    let err = fails(&[
        "admin",
        "service",
        "create",
        "--store",
        db,
        "--share-file",
        share,
        "--name",
        "Other",
        "--service-user",
        "acme-svc",
        "--allow",
        "10.0.0.0/8",
        "--partition",
        "acme",
    ]);
    assert!(
        err.contains("service user 'acme-svc' already exists"),
        "{err}"
    );
    let err = fails(&[
        "admin",
        "credentials",
        "setup-password",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "nope",
    ]);
    assert!(err.contains("partition 'nope' does not exist"), "{err}");
    let file = s.path.join("c.txt");
    let err = fails(&[
        "admin",
        "credentials",
        "file",
        "--store",
        db,
        "--share-file",
        share,
        "--partition",
        "acme",
        "--service-user",
        "ghost",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(err.contains("service user 'ghost' does not exist"), "{err}");
    assert!(!file.exists());
    let err = fails(&[
        "admin",
        "service",
        "rotate-password",
        "--store",
        db,
        "--share-file",
        share,
        "--service-user",
        "ghost",
    ]);
    assert!(err.contains("service user 'ghost' does not exist"), "{err}");
}

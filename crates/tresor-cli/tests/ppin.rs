//! `ppin` without a server: help, version, service passwords, listing, precise errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ppin");

fn ppin(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("TRESOR_PKCS11_CONF")
        .env_remove("SECUROSYS_PKCS11_CONF")
        .env_remove("TRESOR_SECRETS_CONF")
        .env_remove("SECUROSYS_SECRETS_CONF")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CFG: &str = r#"version = "1.0";
primus: {
  ca_file = "/nonexistent/root.pem";
  hsms: {
    hsm0: { host = "127.0.0.1"; port = "1";
      slots: { slot0: { user_name = "P1"; proxy_user = "SVC"; client_id = "app"; id = 0; };
               slot1: { user_name = "P2"; proxy_user = "SVC"; id = 3; }; }; };
  };
};
"#;

fn setup(dir: &Path) -> (String, String) {
    let cfg = dir.join("primus.cfg");
    std::fs::write(&cfg, CFG).unwrap();
    let secrets = dir.join(".secrets.cfg");
    (
        cfg.to_str().unwrap().to_owned(),
        secrets.to_str().unwrap().to_owned(),
    )
}

#[test]
fn help_and_version() {
    let o = ppin(&["-h"]);
    assert!(o.status.success());
    let text = out(&o);
    assert!(text.starts_with("Primus Permanent PIN\n"), "{text}");
    for opt in [
        "-a -e <user>",
        "-p -e <svcuser>",
        "--test",
        "-c <cfg>",
        "-s <secrets>",
    ] {
        assert!(text.contains(opt), "{opt} missing in {text}");
    }
    let o = ppin(&["-v"]);
    assert!(o.status.success());
    let text = out(&o);
    assert!(text.contains("Primus HSM PKCS#11 2.2.4\n"), "{text}");
    assert!(text.contains("Tresor "), "{text}");
}

#[test]
fn proxy_password_round_trip_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = setup(dir.path());
    let o = ppin(&["-c", &cfg, "-s", &secrets, "-l"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "Primus Permanent PIN\n\
         [01] slot-id 0:    user 'P1'   permanent secret: MISSING\n\
         [02] slot-id 3:    user 'P2'   permanent secret: MISSING\n\
         [01] service/proxy user 'SVC'  permanent secret: MISSING\n"
    );

    let o = ppin(&["-c", &cfg, "-s", &secrets, "-p", "-e", "SVC", "s3cret-pw"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!out(&o).contains("s3cret-pw") && !err(&o).contains("s3cret-pw"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let o = ppin(&["-c", &cfg, "-s", &secrets, "-l"]);
    assert!(out(&o).contains("[01] service/proxy user 'SVC'  permanent secret: Configured\n"));
    assert!(!out(&o).contains("s3cret-pw"));

    let o = ppin(&["-c", &cfg, "-s", &secrets, "-x", "-e", "SVC"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = ppin(&["-c", &cfg, "-s", &secrets, "-l"]);
    assert!(out(&o).contains("service/proxy user 'SVC'  permanent secret: MISSING\n"));
    // Removing again: nothing stored.
    let o = ppin(&["-c", &cfg, "-s", &secrets, "-x", "-e", "SVC"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("no password of service user 'SVC'"),
        "{}",
        err(&o)
    );
}

#[test]
fn add_without_service_password_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = setup(dir.path());
    let o = ppin(&[
        "-c", &cfg, "-s", &secrets, "-a", "-e", "P1", "AAAAA", "1234",
    ]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains(
            "the password of service user 'SVC' is not known: run 'ppin -p -e SVC' first"
        ),
        "{}",
        err(&o)
    );
    assert!(!Path::new(&secrets).exists());
}

#[test]
fn add_with_service_password_names_the_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = setup(dir.path());
    assert!(ppin(&["-c", &cfg, "-s", &secrets, "-p", "-e", "SVC", "pw"])
        .status
        .success());
    let o = ppin(&[
        "-c", &cfg, "-s", &secrets, "-a", "-e", "P1", "AAAAA", "1234",
    ]);
    assert!(!o.status.success());
    assert!(err(&o).contains("0x80005005"), "{}", err(&o));
    assert!(err(&o).contains("/nonexistent/root.pem"), "{}", err(&o));
}

#[test]
fn unknown_user_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = setup(dir.path());
    for action in ["-a", "-p"] {
        let o = ppin(&["-c", &cfg, "-s", &secrets, action, "-e", "NOPE", "x", "y"]);
        assert!(!o.status.success());
        assert!(
            err(&o).contains("error 0x80005012: user 'NOPE' is not in the configuration file"),
            "{}",
            err(&o)
        );
    }
    let o = ppin(&["-c", &cfg, "-s", &secrets, "-t", "--user", "NOPE"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("0x80005012"), "{}", err(&o));
}

#[test]
fn missing_config_is_0x80005003() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.cfg");
    let o = ppin(&["-c", missing.to_str().unwrap(), "-l"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("error 0x80005003: configuration file not found"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("none.cfg"), "{}", err(&o));
    // Through the lookup: an environment variable naming a missing file is authoritative.
    let o = Command::new(BIN)
        .arg("-l")
        .env("TRESOR_PKCS11_CONF", &missing)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(err(&o).contains("0x80005003"), "{}", err(&o));
    assert!(err(&o).contains("$TRESOR_PKCS11_CONF="), "{}", err(&o));
}

#[test]
fn test_without_secret_fails_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = setup(dir.path());
    let o = ppin(&["-c", &cfg, "-s", &secrets, "-t", "--slotid", "3"]);
    assert!(!o.status.success());
    let text = out(&o);
    assert!(
        text.contains("hsm0: Connect to '127.0.0.1' on port 1, firmware: Tresor "),
        "{text}"
    );
    assert!(
        text.contains("slot1 (id=3), user=P2: FAILED (no permanent secret stored"),
        "{text}"
    );
    assert!(
        text.contains("Number of tested HSMs: 1 (number of partitions: 1)\n"),
        "{text}"
    );
    assert!(text.contains("Number of failures: 1\n"), "{text}");
}

#[test]
fn unsupported_and_bad_options() {
    for args in [
        &["--fetchlog", "--user", "P1"][..],
        &["--fortinet", "--user", "P1"][..],
    ] {
        let o = ppin(args);
        assert!(!o.status.success());
        assert!(err(&o).contains("not supported by Tresor"), "{}", err(&o));
    }
    let o = ppin(&["-q"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("unknown option '-q'"), "{}", err(&o));
    let o = ppin(&["-a"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("-e <user>"), "{}", err(&o));
}

//! `.secrets.cfg`: read, write (0600, atomic), round trip, warnings and errors.
#![allow(clippy::unwrap_used)]

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use tresor_client::config::secrets::{SecretsFile, SecretsUser};
use tresor_client::{Error, VendorCode};

#[test]
fn write_then_read_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".secrets.cfg");
    let mut file = SecretsFile::new();
    let user = file.user_mut("PARTITION");
    user.permanent_secret = Some(SecretSlice::from(vec![0u8, 1, 2, 255, 254]));
    user.pkcs11_password = Some(SecretString::from("pin \"quoted\" \\ ü"));
    file.user_mut("SVC").proxy_password = Some(SecretString::from("proxy"));
    file.write(&path).unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let loaded = SecretsFile::load(&path).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let s = loaded.secrets;
    assert_eq!(s.version, "1.0");
    assert_eq!(s.users.len(), 2);
    let p = s.user("PARTITION").unwrap();
    assert_eq!(
        p.permanent_secret.as_ref().unwrap().expose_secret(),
        &[0u8, 1, 2, 255, 254]
    );
    assert_eq!(
        p.pkcs11_password.as_ref().unwrap().expose_secret(),
        "pin \"quoted\" \\ ü"
    );
    assert!(p.proxy_password.is_none());
    assert_eq!(
        s.user("SVC")
            .unwrap()
            .proxy_password
            .as_ref()
            .unwrap()
            .expose_secret(),
        "proxy"
    );

    // Overwrite (rename over the existing file) and remove a user.
    let mut s = s;
    assert!(s.remove_user("SVC"));
    s.write(&path).unwrap();
    let again = SecretsFile::load(&path).unwrap().secrets;
    assert_eq!(again.users.len(), 1);
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn debug_output_hides_secrets() {
    let mut file = SecretsFile::new();
    file.user_mut("P").pkcs11_password = Some(SecretString::from("hunter2"));
    let text = SecretsFile::parse_str(
        "primus = { users = { user0 = { name = \"Q\"; secure_hex = \"hunter3\"; }; }; };",
        "s.cfg",
    )
    .unwrap();
    let debug = format!("{file:?} {text:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("hunter3"),
        "{debug}"
    );
}

#[test]
fn unknown_user_fields_are_kept_with_a_warning() {
    let text = "version = \"1.0\";\nprimus : {\n  users : {\n    user0 : { name = \"P\";\n      ciphered = \"ABCD\"; };\n  };\n};\n";
    let loaded = SecretsFile::parse_str(text, ".secrets.cfg").unwrap();
    let warnings: Vec<_> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [".secrets.cfg:5:7: setting 'primus.users.user0.ciphered' is not used by Tresor; it is kept as is"]
    );
    let written = loaded.secrets.to_libconfig_string();
    assert!(written.contains("ciphered = \"ABCD\";"), "{written}");
}

#[test]
fn invalid_secrets_are_reported() {
    let err = |t: &str| match SecretsFile::parse_str(t, "s.cfg") {
        Err(e @ Error::InvalidSecrets(_)) => {
            assert_eq!(e.vendor_code(), VendorCode::INVALID_SECRETS);
            e.to_string()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err("primus = { users = { u = { name = \"P\"; permanent_secret = \"!!\"; }; }; };"),
        "s.cfg:1:59: 'primus.users.u.permanent_secret' is not valid base64"
    );
    assert_eq!(
        err("primus = { users = { u = { permanent_secret = \"AA==\"; }; }; };"),
        "s.cfg:1:22: missing required setting 'primus.users.u.name'"
    );
    assert_eq!(
        err("primus = { usres = { }; };"),
        "s.cfg:1:12: unknown setting 'primus.usres' (did you mean 'users'?)"
    );
    assert_eq!(
        err("primus = { users = 1 "),
        "s.cfg:1:22: expected '}' to close the group 'primus'"
    );
}

#[cfg(unix)]
#[test]
fn loose_permissions_warn_and_unwritable_directory_fails() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".secrets.cfg");
    std::fs::write(&path, "version = \"1.0\";").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = SecretsFile::load(&path).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].to_string().contains("mode 0644"));

    let missing = dir.path().join("no-such-dir").join(".secrets.cfg");
    let e = SecretsFile::new().write(&missing).unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::SECRETS_NOT_WRITABLE);
    let _ = SecretsUser::new("x");
}

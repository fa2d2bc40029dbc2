//! The lookup order of `primus.cfg` and `.secrets.cfg`, with a fake environment.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tresor_client::config::lookup::{
    find_config, find_secrets, secrets_write_target, Environment, Located, Source,
};
use tresor_client::{Error, VendorCode};

#[derive(Default)]
struct Fake {
    vars: HashMap<&'static str, &'static str>,
    files: Vec<&'static str>,
}

impl Environment for Fake {
    fn var(&self, name: &str) -> Option<OsString> {
        self.vars.get(name).map(OsString::from)
    }
    fn is_file(&self, path: &Path) -> bool {
        self.files.iter().any(|f| Path::new(f) == path)
    }
}

fn found(path: &str, source: Source) -> Located {
    Located {
        path: PathBuf::from(path),
        source,
    }
}

#[test]
fn config_lookup_order() {
    let mut env = Fake {
        files: vec![
            "/t.cfg",
            "/s.cfg",
            "/etc/primus/primus.cfg",
            "/usr/local/primus/etc/primus.cfg",
        ],
        ..Fake::default()
    };
    assert_eq!(
        find_config(&env).unwrap(),
        found("/etc/primus/primus.cfg", Source::Default)
    );
    env.files.retain(|f| *f != "/etc/primus/primus.cfg");
    assert_eq!(
        find_config(&env).unwrap(),
        found("/usr/local/primus/etc/primus.cfg", Source::Default)
    );
    env.vars.insert("SECUROSYS_PKCS11_CONF", "/s.cfg");
    assert_eq!(
        find_config(&env).unwrap(),
        found("/s.cfg", Source::EnvVar("SECUROSYS_PKCS11_CONF"))
    );
    env.vars.insert("TRESOR_PKCS11_CONF", "/t.cfg");
    let l = find_config(&env).unwrap();
    assert_eq!(l, found("/t.cfg", Source::EnvVar("TRESOR_PKCS11_CONF")));
    assert_eq!(l.to_string(), "/t.cfg (from $TRESOR_PKCS11_CONF)");
}

#[test]
fn not_found_lists_every_place_looked() {
    let env = Fake::default();
    let e = find_config(&env).unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::CFG_NOT_FOUND);
    assert_eq!(
        e.to_string(),
        "configuration file not found; looked at: $TRESOR_PKCS11_CONF (not set), \
         $SECUROSYS_PKCS11_CONF (not set), /etc/primus/primus.cfg (no such file), \
         /usr/local/primus/etc/primus.cfg (no such file)"
    );
    let e = find_secrets(&env).unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::SECRETS_NOT_FOUND);
    assert!(matches!(&e, Error::SecretsNotFound { searched } if searched.len() == 4));
}

#[test]
fn a_set_variable_is_authoritative() {
    let env = Fake {
        vars: HashMap::from([("TRESOR_SECRETS_CONF", "/missing")]),
        files: vec!["/etc/primus/.secrets.cfg"],
    };
    let e = find_secrets(&env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "secrets file not found; looked at: $TRESOR_SECRETS_CONF=/missing (no such file)"
    );
    assert_eq!(
        secrets_write_target(&env),
        found("/missing", Source::EnvVar("TRESOR_SECRETS_CONF"))
    );
}

#[test]
fn secrets_lookup_and_write_target() {
    let mut env = Fake {
        files: vec!["/usr/local/primus/etc/.secrets.cfg"],
        ..Fake::default()
    };
    assert_eq!(
        find_secrets(&env).unwrap(),
        found("/usr/local/primus/etc/.secrets.cfg", Source::Default)
    );
    assert_eq!(
        secrets_write_target(&env),
        found("/usr/local/primus/etc/.secrets.cfg", Source::Default)
    );
    env.files.clear();
    assert_eq!(
        secrets_write_target(&env),
        found("/etc/primus/.secrets.cfg", Source::Default)
    );
    env.vars.insert("SECUROSYS_SECRETS_CONF", "/x");
    env.files.push("/x");
    assert_eq!(
        find_secrets(&env).unwrap(),
        found("/x", Source::EnvVar("SECUROSYS_SECRETS_CONF"))
    );
}

#[test]
fn closures_are_environments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.cfg");
    std::fs::write(&path, "").unwrap();
    let value = OsString::from(path.as_os_str());
    let env = move |name: &str| (name == "SECUROSYS_PKCS11_CONF").then(|| value.clone());
    assert_eq!(find_config(&env).unwrap().path, path);
}

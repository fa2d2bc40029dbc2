//! Where `primus.cfg` and `.secrets.cfg` are found.
//!
//! Configuration: `$TRESOR_PKCS11_CONF`, `$SECUROSYS_PKCS11_CONF`, `/etc/primus/primus.cfg`,
//! `/usr/local/primus/etc/primus.cfg`. Secrets: `$TRESOR_SECRETS_CONF`,
//! `$SECUROSYS_SECRETS_CONF`, `/etc/primus/.secrets.cfg`, `/usr/local/primus/etc/.secrets.cfg`.
//!
//! A variable that is set (and not empty) is authoritative: its file is used, and if it does not
//! exist the search stops with a "not found" error rather than silently falling back to another
//! file. Unset variables are skipped; default paths are used when they exist. "Not found" lists
//! every place looked.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// Variables naming the configuration file, in lookup order.
pub const CONFIG_ENV_VARS: [&str; 2] = ["TRESOR_PKCS11_CONF", "SECUROSYS_PKCS11_CONF"];
/// Default configuration paths, in lookup order.
pub const CONFIG_DEFAULT_PATHS: [&str; 2] =
    ["/etc/primus/primus.cfg", "/usr/local/primus/etc/primus.cfg"];
/// Variables naming the secrets file, in lookup order.
pub const SECRETS_ENV_VARS: [&str; 2] = ["TRESOR_SECRETS_CONF", "SECUROSYS_SECRETS_CONF"];
/// Default secrets paths, in lookup order.
pub const SECRETS_DEFAULT_PATHS: [&str; 2] = [
    "/etc/primus/.secrets.cfg",
    "/usr/local/primus/etc/.secrets.cfg",
];

/// What the lookup may see: environment variables and the existence of files.
///
/// Implemented for closures `Fn(&str) -> Option<OsString>` (files checked on the real file
/// system) and for [`ProcessEnvironment`]; tests implement it to avoid touching the process.
pub trait Environment {
    /// The value of an environment variable.
    fn var(&self, name: &str) -> Option<OsString>;
    /// Whether `path` is an existing regular file.
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// The real process environment and file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

impl<F: Fn(&str) -> Option<OsString>> Environment for F {
    fn var(&self, name: &str) -> Option<OsString> {
        self(name)
    }
}

/// Which candidate the file came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// An environment variable, by name.
    EnvVar(&'static str),
    /// A default path.
    Default,
}

/// A file found by the lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The file.
    pub path: PathBuf,
    /// Where its name came from.
    pub source: Source,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Source::EnvVar(var) => write!(f, "{} (from ${var})", self.path.display()),
            Source::Default => write!(f, "{} (default)", self.path.display()),
        }
    }
}

/// The outcome of a search: the file, or every place looked.
enum Search {
    Found(Located),
    NotFound(Vec<String>),
}

fn search(env: &dyn Environment, vars: &[&'static str], defaults: &[&str]) -> Search {
    let mut looked = Vec::new();
    for &var in vars {
        match env.var(var).filter(|v| !v.is_empty()) {
            None => looked.push(format!("${var} (not set)")),
            Some(value) => {
                let path = PathBuf::from(value);
                if env.is_file(&path) {
                    return Search::Found(Located {
                        path,
                        source: Source::EnvVar(var),
                    });
                }
                looked.push(format!("${var}={} (no such file)", path.display()));
                return Search::NotFound(looked);
            }
        }
    }
    for default in defaults {
        let path = PathBuf::from(default);
        if env.is_file(&path) {
            return Search::Found(Located {
                path,
                source: Source::Default,
            });
        }
        looked.push(format!("{default} (no such file)"));
    }
    Search::NotFound(looked)
}

/// Finds `primus.cfg`; [`Error::ConfigNotFound`] (0x80005003) lists every place looked.
pub fn find_config(env: &dyn Environment) -> Result<Located, Error> {
    match search(env, &CONFIG_ENV_VARS, &CONFIG_DEFAULT_PATHS) {
        Search::Found(l) => Ok(l),
        Search::NotFound(searched) => Err(Error::ConfigNotFound { searched }),
    }
}

/// Finds `.secrets.cfg`; [`Error::SecretsNotFound`] (0x80005004) lists every place looked.
pub fn find_secrets(env: &dyn Environment) -> Result<Located, Error> {
    match search(env, &SECRETS_ENV_VARS, &SECRETS_DEFAULT_PATHS) {
        Search::Found(l) => Ok(l),
        Search::NotFound(searched) => Err(Error::SecretsNotFound { searched }),
    }
}

/// Where a new or updated `.secrets.cfg` goes: the first variable that is set, else the first
/// existing default file, else the first default path.
pub fn secrets_write_target(env: &dyn Environment) -> Located {
    for &var in &SECRETS_ENV_VARS {
        if let Some(value) = env.var(var).filter(|v| !v.is_empty()) {
            return Located {
                path: PathBuf::from(value),
                source: Source::EnvVar(var),
            };
        }
    }
    let path = SECRETS_DEFAULT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| env.is_file(p))
        .unwrap_or_else(|| PathBuf::from(SECRETS_DEFAULT_PATHS[0]));
    Located {
        path,
        source: Source::Default,
    }
}

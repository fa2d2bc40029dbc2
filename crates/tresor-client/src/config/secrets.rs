//! The `.secrets.cfg` file: per-user credentials, read and written atomically with mode 0600.
//!
//! ```text
//! version = "1.0";
//! primus : { users : {
//!   user0 : { name = "PARTITION"; permanent_secret = "<base64>"; pkcs11_password = "…"; };
//!   user1 : { name = "SERVICE_USER"; proxy_password = "…"; };
//! }; };
//! ```
//!
//! Tresor's fields per user are `permanent_secret` (base64), `pkcs11_password` and, for
//! service users, `proxy_password`. Other per-user fields (e.g. the Securosys provider's
//! ciphered ones) are kept as they are and written back, with a warning on reading.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::config::libconfig::{self, Setting, Value, ValueKind};
use crate::config::primus::schema::{join, Problems};
use crate::{Diagnostic, Error, Position};

/// The `version` written to new files.
pub const SECRETS_VERSION: &str = "1.0";

const USER_KEYS: &[&str] = &[
    "name",
    "permanent_secret",
    "pkcs11_password",
    "proxy_password",
];

/// The whole `.secrets.cfg`.
#[derive(Clone, Debug)]
pub struct SecretsFile {
    /// `version` (`"1.0"`).
    pub version: String,
    /// `primus.users.*`, in file order.
    pub users: Vec<SecretsUser>,
}

/// One `primus.users.<entry>`.
#[derive(Clone, Default)]
pub struct SecretsUser {
    /// `name`: the partition or service user.
    pub name: String,
    /// `permanent_secret` (stored base64).
    pub permanent_secret: Option<SecretSlice<u8>>,
    /// `pkcs11_password`: the `C_Login` PIN, when stored.
    pub pkcs11_password: Option<SecretString>,
    /// `proxy_password`: the service user's password (CloudHSM).
    pub proxy_password: Option<SecretString>,
    /// Settings Tresor does not use, kept as read. Never printed.
    pub other: Vec<Setting>,
}

impl fmt::Debug for SecretsUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |set: bool| if set { "[REDACTED]" } else { "None" };
        f.debug_struct("SecretsUser")
            .field("name", &self.name)
            .field(
                "permanent_secret",
                &redacted(self.permanent_secret.is_some()),
            )
            .field("pkcs11_password", &redacted(self.pkcs11_password.is_some()))
            .field("proxy_password", &redacted(self.proxy_password.is_some()))
            .field(
                "other",
                &self
                    .other
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SecretsUser {
    /// An entry for `name` with no secrets yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl Default for SecretsFile {
    fn default() -> Self {
        Self {
            version: SECRETS_VERSION.to_owned(),
            users: Vec::new(),
        }
    }
}

/// A secrets file as read, with warnings (loose permissions, fields Tresor does not use).
#[derive(Debug)]
pub struct LoadedSecrets {
    /// The content.
    pub secrets: SecretsFile,
    /// Things worth telling the user; none of them stops Tresor.
    pub warnings: Vec<Diagnostic>,
}

impl SecretsFile {
    /// An empty file (`version = "1.0"`, no users).
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `name`.
    pub fn user(&self, name: &str) -> Option<&SecretsUser> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The entry of `name`, created empty if missing.
    pub fn user_mut(&mut self, name: &str) -> &mut SecretsUser {
        let index = match self.users.iter().position(|u| u.name == name) {
            Some(i) => i,
            None => {
                self.users.push(SecretsUser::new(name));
                self.users.len() - 1
            }
        };
        &mut self.users[index]
    }

    /// Removes the entry of `name`; whether there was one.
    pub fn remove_user(&mut self, name: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        before != self.users.len()
    }

    /// Parses `.secrets.cfg` text; `file_name` names it in messages.
    pub fn parse_str(text: &str, file_name: &str) -> Result<LoadedSecrets, Error> {
        let root =
            libconfig::parse_str(text, file_name).map_err(|d| Error::InvalidSecrets(vec![d]))?;
        Self::from_value(&root)
    }

    /// Reads `.secrets.cfg`; warns when the file is readable or writable by group or others.
    pub fn load(path: &Path) -> Result<LoadedSecrets, Error> {
        let root = libconfig::parse_file(path).map_err(|d| Error::InvalidSecrets(vec![d]))?;
        let mut loaded = Self::from_value(&root)?;
        if let Some(mode) = loose_mode(path) {
            loaded.warnings.insert(
                0,
                Diagnostic::file(
                    &path.display().to_string(),
                    format!(
                        "the secrets file is accessible by group or others (mode {mode:04o}); \
                         'chmod 600' is recommended"
                    ),
                ),
            );
        }
        Ok(loaded)
    }

    /// Reads the content out of a parsed tree.
    pub fn from_value(root: &Value) -> Result<LoadedSecrets, Error> {
        let mut p = Problems::default();
        let mut warnings = Vec::new();
        let mut file = SecretsFile {
            version: String::new(),
            users: Vec::new(),
        };
        let mut version_seen = false;
        for s in p.group(root, "<root>").unwrap_or_default() {
            match s.name.as_str() {
                "version" => {
                    version_seen = true;
                    file.version = p.string(&s.value, "version").unwrap_or_default();
                }
                "primus" => read_primus(&s.value, &mut file, &mut p, &mut warnings),
                _ => p.unknown(s, "", &["version", "primus"]),
            }
        }
        if !version_seen {
            file.version = SECRETS_VERSION.to_owned();
        }
        if p.0.is_empty() {
            Ok(LoadedSecrets {
                secrets: file,
                warnings,
            })
        } else {
            Err(Error::InvalidSecrets(p.0))
        }
    }

    /// The content as a libconfig tree.
    pub fn to_value(&self) -> Value {
        let users = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| setting(&format!("user{i}"), ValueKind::Group(user_settings(u))))
            .collect();
        let primus = vec![setting("users", ValueKind::Group(users))];
        group(vec![
            setting("version", ValueKind::Str(self.version.clone())),
            setting("primus", ValueKind::Group(primus)),
        ])
    }

    /// The content as libconfig text (contains the secrets: handle with care).
    pub fn to_libconfig_string(&self) -> String {
        libconfig::to_string(&self.to_value())
    }

    /// Writes the file atomically (temporary file with mode 0600 in the same directory, then
    /// rename); [`Error::SecretsNotWritable`] (0x80005007) on failure.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let not_writable = |source| Error::SecretsNotWritable {
            path: path.to_path_buf(),
            source,
        };
        let text = self.to_libconfig_string();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let base = path.file_name().map_or_else(
            || ".secrets.cfg".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".{base}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result =
            write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(not_writable(e));
        }
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn read_primus(value: &Value, file: &mut SecretsFile, p: &mut Problems, w: &mut Vec<Diagnostic>) {
    for s in p.group(value, "primus").unwrap_or_default() {
        if s.name != "users" {
            p.unknown(s, "primus", &["users"]);
            continue;
        }
        for entry in p.group(&s.value, "primus.users").unwrap_or_default() {
            let path = join("primus.users", &entry.name);
            if let Some(user) = read_user(entry, &path, p, w) {
                if let Some(first) = file.user(&user.name) {
                    let message = format!("user '{}' appears twice", first.name);
                    p.push(&entry.position, message);
                } else {
                    file.users.push(user);
                }
            }
        }
    }
}

fn read_user(
    entry: &Setting,
    path: &str,
    p: &mut Problems,
    warnings: &mut Vec<Diagnostic>,
) -> Option<SecretsUser> {
    let mut user = SecretsUser::default();
    let mut name = None;
    for s in p.group(&entry.value, path)? {
        let key = join(path, &s.name);
        match s.name.as_str() {
            "name" => name = p.string(&s.value, &key),
            "permanent_secret" => {
                let text = p.string(&s.value, &key)?;
                match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                    Ok(bytes) => user.permanent_secret = Some(SecretSlice::from(bytes)),
                    Err(_) => p.push(&s.value.position, format!("'{key}' is not valid base64")),
                }
            }
            "pkcs11_password" => user.pkcs11_password = p.secret(&s.value, &key),
            "proxy_password" => user.proxy_password = p.secret(&s.value, &key),
            _ => {
                warnings.push(Diagnostic::at(
                    s.position.clone(),
                    format!("setting '{key}' is not used by Tresor; it is kept as is"),
                ));
                user.other.push(s.clone());
            }
        }
    }
    if name.is_none() && entry.value.get("name").is_none() {
        p.missing(&entry.position, path, "name");
    }
    user.name = name?;
    Some(user)
}

fn generated() -> Position {
    Position {
        file: Arc::from("<generated>"),
        line: 0,
        column: 0,
    }
}

fn group(settings: Vec<Setting>) -> Value {
    Value {
        kind: ValueKind::Group(settings),
        position: generated(),
    }
}

fn setting(name: &str, kind: ValueKind) -> Setting {
    Setting {
        name: name.to_owned(),
        value: Value {
            kind,
            position: generated(),
        },
        position: generated(),
    }
}

fn user_settings(u: &SecretsUser) -> Vec<Setting> {
    let mut out = vec![setting("name", ValueKind::Str(u.name.clone()))];
    if let Some(secret) = &u.permanent_secret {
        let text = base64::engine::general_purpose::STANDARD.encode(secret.expose_secret());
        out.push(setting("permanent_secret", ValueKind::Str(text)));
    }
    let strings = [
        ("pkcs11_password", &u.pkcs11_password),
        ("proxy_password", &u.proxy_password),
    ];
    for (name, value) in strings {
        if let Some(v) = value {
            out.push(setting(name, ValueKind::Str(v.expose_secret().to_owned())));
        }
    }
    out.extend(
        u.other
            .iter()
            .filter(|s| !USER_KEYS.contains(&s.name.as_str()))
            .cloned(),
    );
    out
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes` durably.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The permission bits when group or others have any access (Unix only).
fn loose_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

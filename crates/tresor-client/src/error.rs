//! The crate's error type, its Securosys vendor codes, and the positioned [`Diagnostic`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A place in a configuration file: file name as given, 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The file name, as it was given to the parser (or resolved for an `@include`).
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem found in a configuration file, with its position when it has one.
///
/// Displayed as `file:line:column: message`, e.g.
/// `primus.cfg:7:18: expected ';' or ',' after the value of 'port'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is; `None` for problems of the file as a whole.
    pub position: Option<Position>,
    /// What is wrong (or what was expected).
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at `position`.
    pub fn at(position: Position, message: impl Into<String>) -> Self {
        Self {
            position: Some(position),
            message: message.into(),
        }
    }

    /// A diagnostic about a file as a whole (no line and column).
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        Self {
            position: None,
            message: format!("{file}: {}", message.into()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Securosys Primus vendor error codes (`CKR_VENDOR_DEFINED | ...`) that the errors map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VendorCode(pub u32);

impl VendorCode {
    /// `0x80005003`: the configuration file was not found.
    pub const CFG_NOT_FOUND: Self = Self(0x8000_5003);
    /// `0x80005004`: the secrets file was not found.
    pub const SECRETS_NOT_FOUND: Self = Self(0x8000_5004);
    /// `0x80005005`: the configuration file is invalid.
    pub const INVALID_CFG: Self = Self(0x8000_5005);
    /// `0x80005006`: the secrets file is invalid.
    pub const INVALID_SECRETS: Self = Self(0x8000_5006);
    /// `0x80005007`: the secrets file cannot be written.
    pub const SECRETS_NOT_WRITABLE: Self = Self(0x8000_5007);
    /// `0x80005012`: the user is not in the configuration file.
    pub const USER_NOT_IN_CFG: Self = Self(0x8000_5012);
}

impl fmt::Display for VendorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

fn join_lines(items: &[Diagnostic]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No configuration file was found; `searched` lists every place looked, in order.
    #[error("configuration file not found; looked at: {}", searched.join(", "))]
    ConfigNotFound {
        /// Every place looked, e.g. `$TRESOR_PKCS11_CONF (not set)` or `/etc/primus/primus.cfg`.
        searched: Vec<String>,
    },
    /// No secrets file was found; `searched` lists every place looked, in order.
    #[error("secrets file not found; looked at: {}", searched.join(", "))]
    SecretsNotFound {
        /// Every place looked.
        searched: Vec<String>,
    },
    /// The configuration file is invalid (syntax or content); every problem found is listed.
    #[error("{}", join_lines(.0))]
    InvalidConfig(Vec<Diagnostic>),
    /// The secrets file is invalid; every problem found is listed.
    #[error("{}", join_lines(.0))]
    InvalidSecrets(Vec<Diagnostic>),
    /// The secrets file could not be written.
    #[error("{}: cannot write the secrets file: {source}", path.display())]
    SecretsNotWritable {
        /// The file that was being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A user (partition or service user) is not configured in `primus.cfg`.
    #[error("user '{user}' is not in the configuration file")]
    UserNotInConfig {
        /// The user name that was asked for.
        user: String,
    },
}

impl Error {
    /// The Securosys vendor code this error maps to.
    pub fn vendor_code(&self) -> VendorCode {
        match self {
            Self::ConfigNotFound { .. } => VendorCode::CFG_NOT_FOUND,
            Self::SecretsNotFound { .. } => VendorCode::SECRETS_NOT_FOUND,
            Self::InvalidConfig(_) => VendorCode::INVALID_CFG,
            Self::InvalidSecrets(_) => VendorCode::INVALID_SECRETS,
            Self::SecretsNotWritable { .. } => VendorCode::SECRETS_NOT_WRITABLE,
            Self::UserNotInConfig { .. } => VendorCode::USER_NOT_IN_CFG,
        }
    }

    /// The positioned problems of an invalid configuration or secrets file (empty otherwise).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::InvalidConfig(d) | Self::InvalidSecrets(d) => d,
            _ => &[],
        }
    }
}

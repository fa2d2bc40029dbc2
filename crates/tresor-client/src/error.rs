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
    /// `0x80005015`: network failure (connect, TLS, timeout, broken connection).
    pub const NETWORK_FAILURE: Self = Self(0x8000_5015);
    /// `0x80005017`: the setup-password login (`ppin -a`) failed.
    pub const SETUP_LOGIN_FAILED: Self = Self(0x8000_5017);
    /// `0x80005018`: the setup password has expired.
    pub const SETUP_PASSWORD_EXPIRED: Self = Self(0x8000_5018);
    /// `CKR_TOKEN_NOT_PRESENT` (`0xE0`): no HSM of the slot could be reached.
    pub const TOKEN_NOT_PRESENT: Self = Self(0xE0);
    /// `CKR_DEVICE_ERROR` (`0x30`): the peer answered something unexpected.
    pub const DEVICE_ERROR: Self = Self(0x30);
}

/// `CK_RV` values of the engine that the client interprets.
pub mod rv {
    /// `CKR_PIN_INCORRECT`.
    pub const PIN_INCORRECT: u64 = 0xA0;
    /// `CKR_PIN_LOCKED`.
    pub const PIN_LOCKED: u64 = 0xA4;
    /// The setup password has expired.
    pub const SETUP_PASSWORD_EXPIRED: u64 = 0x8000_0037;
    /// The setup password was used already.
    pub const SETUP_PASSWORD_USED: u64 = 0x8000_0105;
    /// The setup password is wrong.
    pub const SETUP_PASSWORD_INVALID: u64 = 0x8000_0106;
    /// The client's permanent key is not registered for the partition.
    pub const CLIENT_NOT_REGISTERED: u64 = 0x8000_0107;
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
    /// A credential needed to connect is not configured (e.g. the service user's password or
    /// the partition's permanent secret). Maps to 0x80005004.
    #[error("{what} for '{user}' is not configured")]
    MissingCredential {
        /// The partition or service user.
        user: String,
        /// What is missing, e.g. "the permanent secret".
        what: String,
    },
    /// The root certificate (`ca_file`) is missing, unreadable or invalid. Maps to 0x80005005.
    #[error("CA file: {0}")]
    CaFile(String),
    /// A network failure: connect, TLS handshake, timeout, broken connection (0x80005015).
    #[error("network failure with {target}: {message}")]
    Network {
        /// `host:port` (and the HSM entry's name).
        target: String,
        /// What failed.
        message: String,
    },
    /// The gateway refused the connection (`GatewayMsg::Refused`); the code is a
    /// `tresor_proto::gateway::codes` value and is reported as the vendor code.
    #[error("gateway {target} refused the connection (0x{code:08X}): {message}")]
    GatewayRefused {
        /// `host:port`.
        target: String,
        /// The gateway's code.
        code: u32,
        /// The gateway's message.
        message: String,
    },
    /// The HSM node answered with an error (`Response::Error`).
    #[error("the HSM answered 0x{rv:08X}: {message}")]
    Node {
        /// The node's `CK_RV`.
        rv: u64,
        /// The node's message.
        message: String,
    },
    /// The setup-password exchange failed (wrong, used or locked setup password, wrong PKCS#11
    /// password): 0x80005017; `rv` is the node's `CK_RV`.
    #[error("setup-password login failed (0x{rv:08X}): {message}")]
    SetupLoginFailed {
        /// The node's `CK_RV`.
        rv: u64,
        /// The node's message.
        message: String,
    },
    /// The setup password has expired: 0x80005018; `rv` is the node's `CK_RV`.
    #[error("the setup password has expired (0x{rv:08X}): {message}")]
    SetupPasswordExpired {
        /// The node's `CK_RV`.
        rv: u64,
        /// The node's message.
        message: String,
    },
    /// The peer answered something the protocol does not allow here.
    #[error("protocol error with {target}: {message}")]
    Protocol {
        /// `host:port`.
        target: String,
        /// What was wrong.
        message: String,
    },
    /// No HSM of the slot could be reached within the retry budget (`CKR_TOKEN_NOT_PRESENT`).
    #[error("no HSM reachable for slot {slot_id} after {attempts} attempts; last error: {last}")]
    NoHsmReachable {
        /// The PKCS#11 slot id.
        slot_id: u32,
        /// Connection attempts made.
        attempts: u32,
        /// The last failure.
        last: Box<Error>,
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
            Self::MissingCredential { .. } => VendorCode::SECRETS_NOT_FOUND,
            Self::CaFile(_) => VendorCode::INVALID_CFG,
            Self::Network { .. } => VendorCode::NETWORK_FAILURE,
            Self::GatewayRefused { code, .. } => VendorCode(*code),
            Self::Node { rv, .. } => rv_code(*rv),
            Self::SetupLoginFailed { .. } => VendorCode::SETUP_LOGIN_FAILED,
            Self::SetupPasswordExpired { .. } => VendorCode::SETUP_PASSWORD_EXPIRED,
            Self::Protocol { .. } => VendorCode::DEVICE_ERROR,
            Self::NoHsmReachable { .. } => VendorCode::TOKEN_NOT_PRESENT,
        }
    }

    /// The HSM node's own `CK_RV`, when the node answered with an error.
    pub fn node_rv(&self) -> Option<u64> {
        match self {
            Self::Node { rv, .. }
            | Self::SetupLoginFailed { rv, .. }
            | Self::SetupPasswordExpired { rv, .. } => Some(*rv),
            Self::NoHsmReachable { last, .. } => last.node_rv(),
            _ => None,
        }
    }

    /// Whether this is a network-level failure (worth trying another HSM).
    pub fn is_network(&self) -> bool {
        matches!(self, Self::Network { .. } | Self::NoHsmReachable { .. })
    }

    /// The positioned problems of an invalid configuration or secrets file (empty otherwise).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::InvalidConfig(d) | Self::InvalidSecrets(d) => d,
            _ => &[],
        }
    }
}

fn rv_code(rv: u64) -> VendorCode {
    u32::try_from(rv).map_or(VendorCode::DEVICE_ERROR, VendorCode)
}

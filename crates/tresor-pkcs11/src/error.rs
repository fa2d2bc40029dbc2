//! The crate's one error type: a `CK_RV` and what went wrong. Every failure of the safe layer
//! is an [`Error`]; the ABI turns it into the function's return value, nowhere else.

use crate::ck::*;

/// A failed PKCS#11 call: the `CK_RV` to return and a message for diagnostics (never a
/// secret value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The `CK_RV`.
    pub rv: u64,
    /// What was wrong.
    pub message: String,
}

impl Error {
    /// An error with return value `rv`.
    pub fn new(rv: u64, message: impl Into<String>) -> Self {
        Self {
            rv,
            message: message.into(),
        }
    }

    /// `CKR_ARGUMENTS_BAD`.
    pub fn args(message: impl Into<String>) -> Self {
        Self::new(CKR_ARGUMENTS_BAD, message)
    }

    /// Maps a client-library error: the node's own `CK_RV` passes through; a transport
    /// failure that outlived every retry is `CKR_DEVICE_REMOVED`; a refused gateway login or
    /// a protocol violation is `CKR_DEVICE_ERROR`; a local configuration problem is
    /// `CKR_GENERAL_ERROR`.
    pub fn from_client(e: &tresor_client::Error) -> Self {
        use tresor_client::Error as C;
        let rv = match e {
            C::Node { rv, .. }
            | C::SetupLoginFailed { rv, .. }
            | C::SetupPasswordExpired { rv, .. } => *rv,
            C::Network { .. } | C::NoHsmReachable { .. } => CKR_DEVICE_REMOVED,
            C::GatewayRefused { .. } | C::Protocol { .. } => CKR_DEVICE_ERROR,
            _ => CKR_GENERAL_ERROR,
        };
        Self::new(rv, e.to_string())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CK_RV 0x{:08X}: {}", self.rv, self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with an [`Error`].
#[macro_export]
#[doc(hidden)]
macro_rules! fail {
    ($rv:expr, $($fmt:tt)+) => {
        return Err($crate::error::Error::new($rv, format!($($fmt)+)))
    };
}

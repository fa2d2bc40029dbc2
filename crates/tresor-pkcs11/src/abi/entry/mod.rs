//! Every entry point of the function tables. Each one converts its arguments (in one
//! `unsafe` block whose contract is the PKCS#11 specification of that function), calls the
//! safe layer, and writes results back; `guard` maps the outcome to a `CK_RV`.
//!
//! Specification references are to PKCS#11 3.2 (OASIS), section 5. The entry points are
//! grouped as the specification groups them: `general` (§5.4–5.5), `sessions` (§5.6),
//! `objects` (§5.7), `ops` (§5.9–5.14), `keys` (§5.15–5.17), `message` (3.0 message-based).

use std::os::raw::c_void;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::params;
use super::ptr::{bytes, capacity, deliver, put, slice, template};
use super::{guard, holder_or_create, module, u};
use crate::ck;
use crate::error::{Error, Result};
use crate::info;
use crate::mechanism::Usage;
use crate::module::Module;
use crate::session::{Out, Partner};

fn not_supported(what: &str) -> Result<()> {
    Err(Error::new(
        ck::CKR_FUNCTION_NOT_SUPPORTED,
        format!("{what} is not supported"),
    ))
}

/// A function that does not apply to this token (a recovery operation: no mechanism has
/// `CKF_SIGN_RECOVER` / `CKF_VERIFY_RECOVER`; asynchronous operations).
macro_rules! unsupported_fn {
    ($(#[$doc:meta])* $name:ident ( $($arg:ident : $ty:ty),* )) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(hSession: CK_SESSION_HANDLE, $($arg: $ty),*) -> CK_RV {
            $(let _ = $arg;)*
            guard(stringify!($name), || {
                module()?.session(u(hSession))?;
                not_supported(stringify!($name))
            })
        }
    };
}

mod general;
mod keys;
mod message;
mod objects;
mod ops;
mod sessions;

pub use general::*;
pub use keys::*;
pub use message::*;
pub use objects::*;
pub use ops::*;
pub use sessions::*;

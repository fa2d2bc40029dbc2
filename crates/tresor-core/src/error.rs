//! The engine's one error type.
//!
//! Every failure carries an [`Rv`]: the PKCS#11 return value (or a Tresor vendor code) that a
//! face reports for it. The PKCS#11 layer returns `rv.ckr()` as is; the REST layer maps the same
//! `Rv` to an HTTP status and a Securosys error body in its one mapping place. The `detail` text
//! names what was wrong; it never contains secret values.

use std::fmt;

/// Tresor's vendor return codes (`CKR_VENDOR_DEFINED` range), chosen to match the Securosys ones
/// where a Securosys code exists.
pub mod vendor {
    /// The engine is sealed: no key can be used until `tresor unseal`.
    pub const SEALED: u64 = 0x8000_0069;
    /// The named partition or user does not exist.
    pub const USER_NOT_FOUND: u64 = 0x8000_000D;
    /// The named key does not exist.
    pub const KEY_NOT_FOUND: u64 = 0x8000_0012;
    /// A key's approval policy requires approvals that were not given.
    pub const APPROVAL_REQUIRED: u64 = 0x8000_0100;
    /// The key is blocked (Smart Key Attribute `blocked`).
    pub const KEY_BLOCKED: u64 = 0x8000_0101;
    /// A stored object or blob failed its integrity check (tampered, swapped or rolled back).
    pub const INTEGRITY: u64 = 0x8000_0102;
    /// The object already exists (same name where names must be unique).
    pub const ALREADY_EXISTS: u64 = 0x8000_0103;
    /// A master-key share is wrong or corrupted.
    pub const BAD_SHARE: u64 = 0x8000_0104;
    /// The setup password has expired (Securosys "password expired").
    pub const SETUP_PASSWORD_EXPIRED: u64 = 0x8000_0037;
    /// The setup password was already exchanged for a permanent secret.
    pub const SETUP_PASSWORD_USED: u64 = 0x8000_0105;
    /// The setup password is wrong, or none was issued for the partition.
    pub const SETUP_PASSWORD_INVALID: u64 = 0x8000_0106;
    /// The client's key is not registered for the partition.
    pub const CLIENT_NOT_REGISTERED: u64 = 0x8000_0107;
    /// A key's password is wrong or missing, or one was given for a key without a password
    /// (Securosys "wrong key password").
    pub const KEY_PASSWORD_INCORRECT: u64 = 0x8000_000E;
}

/// A PKCS#11 return value or a Tresor vendor code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rv {
    ActionProhibited,
    ArgumentsBad,
    AttributeReadOnly,
    AttributeSensitive,
    AttributeTypeInvalid,
    AttributeValueInvalid,
    CurveNotSupported,
    DataInvalid,
    DataLenRange,
    DeviceError,
    DeviceMemory,
    DomainParamsInvalid,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    FunctionFailed,
    FunctionNotSupported,
    GeneralError,
    KeyFunctionNotPermitted,
    KeyHandleInvalid,
    KeyIndigestible,
    KeyNotWrappable,
    KeySizeRange,
    KeyTypeInconsistent,
    KeyUnextractable,
    MechanismInvalid,
    MechanismParamInvalid,
    ObjectHandleInvalid,
    OperationNotInitialized,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    SessionExists,
    SignatureInvalid,
    SignatureLenRange,
    TemplateIncomplete,
    TemplateInconsistent,
    TokenWriteProtected,
    UnwrappingKeyHandleInvalid,
    UnwrappingKeySizeRange,
    UnwrappingKeyTypeInconsistent,
    UserAlreadyLoggedIn,
    UserAnotherAlreadyLoggedIn,
    UserNotLoggedIn,
    UserPinNotInitialized,
    UserTypeInvalid,
    WrappedKeyInvalid,
    WrappedKeyLenRange,
    WrappingKeyHandleInvalid,
    WrappingKeySizeRange,
    WrappingKeyTypeInconsistent,
    /// A Tresor vendor code (see [`vendor`]).
    Vendor(u64),
}

impl Rv {
    /// The numeric `CK_RV` value.
    pub fn ckr(self) -> u64 {
        match self {
            Rv::ActionProhibited => 0x1B,
            Rv::ArgumentsBad => 0x07,
            Rv::AttributeReadOnly => 0x10,
            Rv::AttributeSensitive => 0x11,
            Rv::AttributeTypeInvalid => 0x12,
            Rv::AttributeValueInvalid => 0x13,
            Rv::CurveNotSupported => 0x140,
            Rv::DataInvalid => 0x20,
            Rv::DataLenRange => 0x21,
            Rv::DeviceError => 0x30,
            Rv::DeviceMemory => 0x31,
            Rv::DomainParamsInvalid => 0x130,
            Rv::EncryptedDataInvalid => 0x40,
            Rv::EncryptedDataLenRange => 0x41,
            Rv::FunctionFailed => 0x06,
            Rv::FunctionNotSupported => 0x54,
            Rv::GeneralError => 0x05,
            Rv::KeyFunctionNotPermitted => 0x68,
            Rv::KeyHandleInvalid => 0x60,
            Rv::KeyIndigestible => 0x67,
            Rv::KeyNotWrappable => 0x69,
            Rv::KeySizeRange => 0x62,
            Rv::KeyTypeInconsistent => 0x63,
            Rv::KeyUnextractable => 0x6A,
            Rv::MechanismInvalid => 0x70,
            Rv::MechanismParamInvalid => 0x71,
            Rv::ObjectHandleInvalid => 0x82,
            Rv::OperationNotInitialized => 0x91,
            Rv::PinExpired => 0xA3,
            Rv::PinIncorrect => 0xA0,
            Rv::PinInvalid => 0xA1,
            Rv::PinLenRange => 0xA2,
            Rv::PinLocked => 0xA4,
            Rv::SessionExists => 0xB6,
            Rv::SignatureInvalid => 0xC0,
            Rv::SignatureLenRange => 0xC1,
            Rv::TemplateIncomplete => 0xD0,
            Rv::TemplateInconsistent => 0xD1,
            Rv::TokenWriteProtected => 0xE2,
            Rv::UnwrappingKeyHandleInvalid => 0xF0,
            Rv::UnwrappingKeySizeRange => 0xF1,
            Rv::UnwrappingKeyTypeInconsistent => 0xF2,
            Rv::UserAlreadyLoggedIn => 0x100,
            Rv::UserAnotherAlreadyLoggedIn => 0x104,
            Rv::UserNotLoggedIn => 0x101,
            Rv::UserPinNotInitialized => 0x102,
            Rv::UserTypeInvalid => 0x103,
            Rv::WrappedKeyInvalid => 0x110,
            Rv::WrappedKeyLenRange => 0x112,
            Rv::WrappingKeyHandleInvalid => 0x113,
            Rv::WrappingKeySizeRange => 0x114,
            Rv::WrappingKeyTypeInconsistent => 0x115,
            Rv::Vendor(code) => code,
        }
    }

    /// The symbolic name, e.g. `CKR_PIN_INCORRECT`.
    pub fn name(self) -> &'static str {
        match self {
            Rv::ActionProhibited => "CKR_ACTION_PROHIBITED",
            Rv::ArgumentsBad => "CKR_ARGUMENTS_BAD",
            Rv::AttributeReadOnly => "CKR_ATTRIBUTE_READ_ONLY",
            Rv::AttributeSensitive => "CKR_ATTRIBUTE_SENSITIVE",
            Rv::AttributeTypeInvalid => "CKR_ATTRIBUTE_TYPE_INVALID",
            Rv::AttributeValueInvalid => "CKR_ATTRIBUTE_VALUE_INVALID",
            Rv::CurveNotSupported => "CKR_CURVE_NOT_SUPPORTED",
            Rv::DataInvalid => "CKR_DATA_INVALID",
            Rv::DataLenRange => "CKR_DATA_LEN_RANGE",
            Rv::DeviceError => "CKR_DEVICE_ERROR",
            Rv::DeviceMemory => "CKR_DEVICE_MEMORY",
            Rv::DomainParamsInvalid => "CKR_DOMAIN_PARAMS_INVALID",
            Rv::EncryptedDataInvalid => "CKR_ENCRYPTED_DATA_INVALID",
            Rv::EncryptedDataLenRange => "CKR_ENCRYPTED_DATA_LEN_RANGE",
            Rv::FunctionFailed => "CKR_FUNCTION_FAILED",
            Rv::FunctionNotSupported => "CKR_FUNCTION_NOT_SUPPORTED",
            Rv::GeneralError => "CKR_GENERAL_ERROR",
            Rv::KeyFunctionNotPermitted => "CKR_KEY_FUNCTION_NOT_PERMITTED",
            Rv::KeyHandleInvalid => "CKR_KEY_HANDLE_INVALID",
            Rv::KeyIndigestible => "CKR_KEY_INDIGESTIBLE",
            Rv::KeyNotWrappable => "CKR_KEY_NOT_WRAPPABLE",
            Rv::KeySizeRange => "CKR_KEY_SIZE_RANGE",
            Rv::KeyTypeInconsistent => "CKR_KEY_TYPE_INCONSISTENT",
            Rv::KeyUnextractable => "CKR_KEY_UNEXTRACTABLE",
            Rv::MechanismInvalid => "CKR_MECHANISM_INVALID",
            Rv::MechanismParamInvalid => "CKR_MECHANISM_PARAM_INVALID",
            Rv::ObjectHandleInvalid => "CKR_OBJECT_HANDLE_INVALID",
            Rv::OperationNotInitialized => "CKR_OPERATION_NOT_INITIALIZED",
            Rv::PinExpired => "CKR_PIN_EXPIRED",
            Rv::PinIncorrect => "CKR_PIN_INCORRECT",
            Rv::PinInvalid => "CKR_PIN_INVALID",
            Rv::PinLenRange => "CKR_PIN_LEN_RANGE",
            Rv::PinLocked => "CKR_PIN_LOCKED",
            Rv::SessionExists => "CKR_SESSION_EXISTS",
            Rv::SignatureInvalid => "CKR_SIGNATURE_INVALID",
            Rv::SignatureLenRange => "CKR_SIGNATURE_LEN_RANGE",
            Rv::TemplateIncomplete => "CKR_TEMPLATE_INCOMPLETE",
            Rv::TemplateInconsistent => "CKR_TEMPLATE_INCONSISTENT",
            Rv::TokenWriteProtected => "CKR_TOKEN_WRITE_PROTECTED",
            Rv::UnwrappingKeyHandleInvalid => "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
            Rv::UnwrappingKeySizeRange => "CKR_UNWRAPPING_KEY_SIZE_RANGE",
            Rv::UnwrappingKeyTypeInconsistent => "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
            Rv::UserAlreadyLoggedIn => "CKR_USER_ALREADY_LOGGED_IN",
            Rv::UserAnotherAlreadyLoggedIn => "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
            Rv::UserNotLoggedIn => "CKR_USER_NOT_LOGGED_IN",
            Rv::UserPinNotInitialized => "CKR_USER_PIN_NOT_INITIALIZED",
            Rv::UserTypeInvalid => "CKR_USER_TYPE_INVALID",
            Rv::WrappedKeyInvalid => "CKR_WRAPPED_KEY_INVALID",
            Rv::WrappedKeyLenRange => "CKR_WRAPPED_KEY_LEN_RANGE",
            Rv::WrappingKeyHandleInvalid => "CKR_WRAPPING_KEY_HANDLE_INVALID",
            Rv::WrappingKeySizeRange => "CKR_WRAPPING_KEY_SIZE_RANGE",
            Rv::WrappingKeyTypeInconsistent => "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
            Rv::Vendor(vendor::SEALED) => "TRESOR_SEALED",
            Rv::Vendor(vendor::USER_NOT_FOUND) => "TRESOR_USER_NOT_FOUND",
            Rv::Vendor(vendor::KEY_NOT_FOUND) => "TRESOR_KEY_NOT_FOUND",
            Rv::Vendor(vendor::APPROVAL_REQUIRED) => "TRESOR_APPROVAL_REQUIRED",
            Rv::Vendor(vendor::KEY_BLOCKED) => "TRESOR_KEY_BLOCKED",
            Rv::Vendor(vendor::INTEGRITY) => "TRESOR_INTEGRITY",
            Rv::Vendor(vendor::ALREADY_EXISTS) => "TRESOR_ALREADY_EXISTS",
            Rv::Vendor(vendor::BAD_SHARE) => "TRESOR_BAD_SHARE",
            Rv::Vendor(vendor::SETUP_PASSWORD_EXPIRED) => "TRESOR_SETUP_PASSWORD_EXPIRED",
            Rv::Vendor(vendor::SETUP_PASSWORD_USED) => "TRESOR_SETUP_PASSWORD_USED",
            Rv::Vendor(vendor::SETUP_PASSWORD_INVALID) => "TRESOR_SETUP_PASSWORD_INVALID",
            Rv::Vendor(vendor::CLIENT_NOT_REGISTERED) => "TRESOR_CLIENT_NOT_REGISTERED",
            Rv::Vendor(vendor::KEY_PASSWORD_INCORRECT) => "TRESOR_KEY_PASSWORD_INCORRECT",
            Rv::Vendor(_) => "CKR_VENDOR_DEFINED",
        }
    }
}

/// An engine error: what kind of failure (the [`Rv`]) and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    rv: Rv,
    detail: String,
}

impl Error {
    /// A new error with the given return value and detail text (no secrets in `detail`).
    pub fn new(rv: Rv, detail: impl Into<String>) -> Self {
        Error {
            rv,
            detail: detail.into(),
        }
    }

    /// The return value a face reports.
    pub fn rv(&self) -> Rv {
        self.rv
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Short-hands for the vendor codes.
    pub fn sealed() -> Self {
        Error::new(
            Rv::Vendor(vendor::SEALED),
            "the engine is sealed; run `tresor unseal`",
        )
    }

    /// A stored blob failed its integrity check.
    pub fn integrity(detail: impl Into<String>) -> Self {
        Error::new(Rv::Vendor(vendor::INTEGRITY), detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rv.name(), self.detail)
    }
}

impl std::error::Error for Error {}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        // OpenSSL's error text names the failing routine; it never contains key bytes.
        Error::new(Rv::FunctionFailed, format!("crypto library: {e}"))
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// `Err(Error::new(rv, detail))` as an expression.
#[macro_export]
macro_rules! bail {
    ($rv:expr, $($arg:tt)*) => {
        return Err($crate::error::Error::new($rv, format!($($arg)*)))
    };
}

//! The one error type of the REST face, [`ApiError`], and the one place where errors become
//! HTTP: the Securosys body `{errorCode, reason, message}` with the codes and HTTP mapping of
//! the TSB (compat §1.11): 45x → 403, 65x → 404, other 4xx/6xx → 400, 2xx/3xx/5xx/7xx → 500,
//! 1xx → 501, and 631 (bad API key) → 401. Engine failures arrive as `CK_RV` values and are
//! mapped to the nearest Securosys code in [`ApiError::from_node`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Securosys error codes used by this face (reason = `res.error.` + suffix).
#[allow(missing_docs)]
pub mod code {
    pub const NOT_IMPLEMENTED: u16 = 101;
    pub const OPERATION_UNREACHABLE: u16 = 102;
    pub const GENERAL: u16 = 103;
    pub const SECURITY_NOT_ALLOWED: u16 = 400;
    pub const MISSING_ACCESS_TOKEN: u16 = 406;
    pub const DECRYPT_FAILED: u16 = 410;
    pub const INVALID_CERTIFICATE_REQUEST: u16 = 411;
    pub const MISSING_API_KEY: u16 = 416;
    pub const INPUT_VALIDATION_FAILED: u16 = 600;
    pub const INPUT_KEYSIZE: u16 = 603;
    pub const KEY_ATTRIBUTES_INVALID: u16 = 606;
    pub const ALGORITHM_NOT_SUPPORTED_BY_KEY: u16 = 607;
    pub const KEY_ALREADY_EXISTING: u16 = 608;
    pub const INVALID_KEY_NAME: u16 = 610;
    pub const UNSUPPORTED_OPERATION: u16 = 611;
    pub const INVALID_PAYLOAD: u16 = 612;
    pub const INVALID_KEY_TYPE: u16 = 613;
    pub const OPERATION_FORBIDDEN_FOR_KEY: u16 = 614;
    pub const DATA_OBJECT_ALREADY_EXISTING: u16 = 615;
    pub const DATA_OBJECT_INVALID_VALUE: u16 = 616;
    pub const INVALID_ACCESS_TOKEN: u16 = 617;
    pub const INVALID_NUMBER_RANGE: u16 = 619;
    pub const KEY_PASSWORD_MISMATCH: u16 = 620;
    pub const INVALID_JSON: u16 = 621;
    pub const RESOURCE_NOT_FOUND: u16 = 622;
    pub const KEY_INVALID_TAG_LENGTH: u16 = 624;
    pub const KEY_INVALID_ENCODING: u16 = 625;
    pub const CERTIFICATE_INVALID_ENCODING: u16 = 626;
    pub const CSR_INVALID_FORMAT: u16 = 628;
    pub const UNSUPPORTED_CIPHER: u16 = 629;
    pub const INVALID_API_KEY: u16 = 631;
    pub const KEY_NOT_EXISTENT: u16 = 650;
    pub const REQUEST_NOT_EXISTENT: u16 = 651;
    pub const DATA_OBJECT_NOT_EXISTENT: u16 = 653;
    pub const IN_SUBSYSTEM: u16 = 700;
    pub const IN_HSM: u16 = 701;
}

/// The reason string of a code (`res.error.…`).
pub fn reason(c: u16) -> &'static str {
    match c {
        100 => "res.error.impl",
        101 => "res.error.not.implemented",
        102 => "res.error.operation.unreachable",
        103 => "res.error.general",
        400 => "res.error.security.not.allowed",
        406 => "res.error.missing.access.token",
        410 => "res.error.decrypt.failed",
        411 => "res.error.invalid.certificate.request",
        416 => "res.error.missing.api.key",
        600 => "res.error.input.validation.failed",
        603 => "res.error.input.keysize",
        606 => "res.error.key.attributes.invalid",
        607 => "res.error.algorithm.not.supported.by.key",
        608 => "res.error.key.already.existing",
        610 => "res.error.invalid.key.name",
        611 => "res.error.unsupported.operation",
        612 => "res.error.invalid.payload",
        613 => "res.error.invalid.key.type",
        614 => "res.error.operation.forbidden.for.key",
        615 => "res.error.data.object.already.existing",
        616 => "res.error.data.object.invalid.value",
        617 => "res.error.invalid.access.token",
        619 => "res.error.invalid.number.range",
        620 => "res.error.key.password.mismatch",
        621 => "res.error.invalid.json",
        622 => "res.error.resource.not.found",
        624 => "res.error.key.invalid.tagLength",
        625 => "res.error.key.invalid.encoding",
        626 => "res.error.certificate.invalid.encoding",
        628 => "res.error.csr.invalid.format",
        629 => "res.error.unsupported.cipher",
        631 => "res.error.invalid.api.key",
        650 => "res.error.key.not.existent",
        651 => "res.error.request.not.existent",
        653 => "res.error.data.object.not.existent",
        700 => "res.error.in.subystem",
        _ => "res.error.in.hsm",
    }
}

/// The HTTP status of a Securosys code.
pub fn http_status(c: u16) -> StatusCode {
    match c {
        code::INVALID_API_KEY | code::INVALID_ACCESS_TOKEN | code::MISSING_ACCESS_TOKEN => {
            StatusCode::UNAUTHORIZED
        }
        450..=499 => StatusCode::FORBIDDEN,
        650..=699 => StatusCode::NOT_FOUND,
        400..=449 | 600..=649 => StatusCode::BAD_REQUEST,
        100..=199 => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error body every failing endpoint answers with.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"errorCode": 650, "reason": "res.error.key.not.existent", "message": "no key named \"TSB_KEY\""}))]
pub struct ErrorBody {
    /// Securosys error code.
    pub error_code: u16,
    /// `res.error.…`.
    pub reason: String,
    /// What went wrong (never secret values).
    pub message: String,
}

/// A failed request: a Securosys code and a message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Securosys error code.
    pub code: u16,
    /// What went wrong.
    pub message: String,
}

/// The REST face's result type.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 600: the input does not validate.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INPUT_VALIDATION_FAILED, message)
    }

    /// 611: valid, but not offered by this service.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(code::UNSUPPORTED_OPERATION, message)
    }

    /// 650: no key of that name.
    pub fn no_key(label: &str) -> Self {
        Self::new(code::KEY_NOT_EXISTENT, format!("no key named {label:?}"))
    }

    /// 701: an internal failure (message logged, not returned in detail).
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(code::IN_HSM, "internal error in the HSM service")
    }

    /// The nearest Securosys code for a failure of the client library or the engine.
    pub fn from_client(e: &tresor_client::Error) -> Self {
        match e {
            tresor_client::Error::Node { rv, message } => Self::from_node(*rv, message),
            other if other.is_network() => {
                tracing::warn!(error = %other, "HSM unreachable");
                Self::new(code::IN_SUBSYSTEM, "the HSM cannot be reached")
            }
            other => {
                tracing::error!(error = %other, "client library failure");
                Self::new(code::IN_SUBSYSTEM, "the HSM connection failed")
            }
        }
    }

    /// The nearest Securosys code for an engine `CK_RV`.
    pub fn from_node(rv: u64, message: &str) -> Self {
        let c = match rv {
            // Attribute and template problems.
            0x10 | 0x11 | 0x12 | 0x13 | 0xD0 | 0xD1 => code::KEY_ATTRIBUTES_INVALID,
            // Data and payload.
            0x20 | 0x21 => code::INVALID_PAYLOAD,
            // Ciphertext.
            0x40 | 0x41 => code::DECRYPT_FAILED,
            // Key handles.
            0x60 | 0x82 => code::KEY_NOT_EXISTENT,
            0x62 => code::INPUT_KEYSIZE,
            0x63 | 0x70 | 0x71 | 0x113 | 0x114 | 0x115 => code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
            0x67 | 0x68 | 0x69 | 0x6A | 0x1B => code::OPERATION_FORBIDDEN_FOR_KEY,
            0x54 => code::UNSUPPORTED_OPERATION,
            // Curves and domain parameters.
            0x130 | 0x140 => code::INPUT_VALIDATION_FAILED,
            // Wrapped keys.
            0x110 | 0x112 | 0xF0 | 0xF1 | 0xF2 => code::INVALID_PAYLOAD,
            // Tresor vendor codes: key not found, approval required, blocked, already exists.
            0x8000_0012 => code::KEY_NOT_EXISTENT,
            0x8000_0100 | 0x8000_0101 => code::SECURITY_NOT_ALLOWED,
            0x8000_0103 => code::KEY_ALREADY_EXISTING,
            // A wrong or missing key password, a locked one, one of the wrong length.
            0x8000_000E | 0xA2 | 0xA4 => code::KEY_PASSWORD_MISMATCH,
            _ => {
                tracing::warn!(rv = format_args!("{rv:#x}"), message, "HSM error");
                code::IN_HSM
            }
        };
        Self::new(c, message.to_owned())
    }

    /// The same error with the engine's internal object ids in its message replaced by the
    /// REST name of the key they belong to: `key 4879… is blocked` → `key "TSB_KEY" is
    /// blocked`. `handles` are the key's object ids; other ids are left for [`Self::body`],
    /// which never shows one.
    pub fn naming(mut self, handles: &[i64], label: &str) -> Self {
        self.message = rewrite_ids(&self.message, |id| {
            handles.contains(&id).then(|| format!("key {label:?}"))
        });
        self
    }

    /// The body (any internal object id left in the message is replaced by "the key" /
    /// "the object": ids are the engine's, not the client's).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error_code: self.code,
            reason: reason(self.code).to_owned(),
            message: rewrite_ids(&self.message, |_| None),
        }
    }
}

/// Rewrite every `key <id>` / `object <id>` of an engine message: `name(id)` gives the
/// replacement, or `None` for the anonymous "the key" / "the object".
fn rewrite_ids(message: &str, name: impl Fn(i64) -> Option<String>) -> String {
    const WORDS: [(&str, &str); 2] = [("key ", "the key"), ("object ", "the object")];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        let boundary = out
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        if boundary {
            for (word, anonymous) in WORDS {
                let Some(after) = rest.strip_prefix(word) else {
                    continue;
                };
                let sign = usize::from(after.starts_with('-'));
                let digits = after[sign..].bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    continue;
                }
                let end = sign + digits;
                let followed_by_word = after[end..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                if followed_by_word {
                    continue;
                }
                match after[..end].parse::<i64>().ok().and_then(&name) {
                    Some(n) => out.push_str(&n),
                    None => out.push_str(anonymous),
                }
                rest = &after[end..];
                continue 'scan;
            }
        }
        let Some(c) = rest.chars().next() else {
            break;
        };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (http_status(self.code), axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_ids_become_key_names() {
        let e = ApiError::new(400, "key 4879123 is blocked").naming(&[4879123, 7], "TSB_KEY");
        assert_eq!(e.message, "key \"TSB_KEY\" is blocked");
        assert_eq!(e.body().message, "key \"TSB_KEY\" is blocked");
        let e = ApiError::new(614, "object 12 is not a key that can sign").naming(&[12], "k1");
        assert_eq!(e.message, "key \"k1\" is not a key that can sign");
        // An id of another object is never shown.
        let e = ApiError::new(614, "key -99 is not extractable").naming(&[12], "k1");
        assert_eq!(e.body().message, "the key is not extractable");
        // Words and numbers that are not ids stay.
        let e = ApiError::new(603, "monkey 12 and key size 2048 and key 12abc").naming(&[12], "k");
        assert_eq!(
            e.body().message,
            "monkey 12 and key size 2048 and key 12abc"
        );
        assert_eq!(
            ApiError::new(650, "no key named \"x\"").body().message,
            "no key named \"x\""
        );
    }
}

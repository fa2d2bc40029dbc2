//! [`ApiJson`]: the JSON body extractor whose every failure is a Securosys 400 body (600)
//! naming the field at fault — malformed JSON, a missing or mistyped field, an unknown enum
//! value, a body too large — instead of axum's plain-text rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::{code, ApiError};

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                code::INPUT_VALIDATION_FAILED,
                format!("cannot read the request body: {}", e.body_text()),
            )
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parse a body, naming the path of the first error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." || path.is_empty() {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid JSON body at {path}: {inner}")
        };
        ApiError::new(code::INPUT_VALIDATION_FAILED, msg)
    })
}

/// Reads every request body completely (up to [`crate::MAX_BODY`]) before routing, so that an
/// early answer (an authentication failure, an unknown path) never leaves a half-read body
/// behind — HTTP/2 clients would see the stream reset — and a body that is too large is a
/// Securosys 400.
pub async fn buffer_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, crate::MAX_BODY).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(_) => ApiError::new(
            code::INPUT_VALIDATION_FAILED,
            format!(
                "the request body is unreadable or larger than {} bytes",
                crate::MAX_BODY
            ),
        )
        .into_response(),
    }
}

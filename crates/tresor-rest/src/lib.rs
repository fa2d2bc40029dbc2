//! # tresor-rest — the REST API (Securosys TSB v1 compatible)
//!
//! An HTTPS service with the paths, JSON bodies, error codes and authentication of the
//! Securosys REST API / Transaction Security Broker v1 (`shared/compat/securosys.md` §1–§5),
//! an OpenAPI 3.1 document generated from the code at `/v3/api-docs` and an offline Swagger UI
//! at `/swagger-ui/index.html`.
//!
//! ```text
//! HTTPS (rustls, optional mTLS) → hyper → axum router
//!   → auth::Caller        JWT bearer / client certificate / X-API-KEY → tenant + role check
//!   → extract::ApiJson    body → typed request, every failure a Securosys 400
//!   → handlers / certs    Securosys request → tresor-proto Request(s) → Tenant::call
//!   → Tenant              one partition, one tresor_client::transport::Transport
//!                         (network SlotClient, or the in-process engine inside `tresor dev`),
//!                         blocking calls on the blocking pool
//!   → error::ApiError     CK_RV → {errorCode, reason, message} + HTTP status, in one place
//! ```
//!
//! The service holds **no key material**: keys are generated, used and stored by the engine,
//! reached only through `tresor-proto` messages. Every rule (attributes, policies, the tenant
//! boundary) is enforced by the engine; a tenant's transport is logged in to its own partition
//! only, so one tenant's requests cannot name another's keys.
//!
//! Synchronous requests are recorded in the store's `requests` table ([`requests`]), designed
//! for the asynchronous approval workflow of a later stage.

#![forbid(unsafe_code)]

pub mod attestation;
pub mod auth;
pub mod certs;
pub mod data;
pub mod dto;
pub mod error;
pub mod eth;
pub mod extract;
pub mod handlers;
mod keyinfo;
pub mod mech;
pub mod metrics;
pub mod openapi;
pub mod requests;
pub mod server;
pub mod tenant;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

pub use auth::{ApiKeys, JwtVerifier, Role, TokenAlgorithm};
pub use error::{ApiError, ApiResult};
pub use server::{serve, TlsSettings};
pub use tenant::Tenant;

/// The API version reported by `/v1/versionInfo`.
pub const API_VERSION: &str = "2.1.0";

/// Largest request body accepted (bytes).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// The service's shared state.
#[derive(Debug)]
pub struct App {
    /// The tenants.
    pub tenants: Vec<Arc<Tenant>>,
    /// Bearer-token verification, if JWTs are accepted.
    pub jwt: Option<JwtVerifier>,
    /// The tenant a verified client certificate maps to when its name is not listed.
    pub mtls_default: Option<Arc<Tenant>>,
    /// The request table.
    pub requests: Arc<requests::Requests>,
    /// Request counters and latencies (see [`metrics`]).
    pub metrics: Arc<metrics::RestMetrics>,
}

/// The router with every endpoint, the OpenAPI document and the Swagger UI.
pub fn router(app: Arc<App>) -> Router {
    use certs as c;
    use handlers as h;
    Router::new()
        .route("/v1/versionInfo", get(h::version_info))
        .route("/v1/licenseInfo", get(h::license_info))
        .route("/v1/keystore/statistics", get(h::statistics))
        .route("/v1/generateRandom/{length}", get(h::generate_random))
        .route("/v1/key", post(h::create_key).get(h::list_keys))
        .route("/v1/key/{keyName}", delete(h::delete_key))
        .route("/v1/key/deleteKey", post(h::delete_key_post))
        .route("/v1/key/attributes", post(h::key_attributes))
        .route("/v1/key/{keyName}/attributes", get(h::key_attributes_get))
        .route("/v1/key/import/plain", post(h::import_plain))
        .route("/v1/key/export/plain", post(h::export_plain))
        .route("/v1/key/changePassword", post(h::change_password))
        .route("/v1/key/keyAttestation", post(attestation::key_attestation))
        .route("/v1/synchronousSign", post(h::synchronous_sign))
        .route("/v1/verify", post(h::verify))
        .route("/v1/synchronousHmac", post(h::synchronous_hmac))
        .route("/v1/verifyHmac", post(h::verify_hmac))
        .route("/v1/encrypt", post(h::encrypt))
        .route("/v1/synchronousDecrypt", post(h::synchronous_decrypt))
        .route("/v1/wrap", post(h::wrap))
        .route("/v1/synchronousUnwrap", post(h::synchronous_unwrap))
        .route("/v1/synchronousBlock", post(h::synchronous_block))
        .route("/v1/synchronousUnblock", post(h::synchronous_unblock))
        .route("/v1/sign", post(h::sign_async))
        .route("/v1/unwrap", post(h::unwrap_async))
        .route("/v1/block", post(h::block_async))
        .route("/v1/unblock", post(h::unblock_async))
        .route("/v1/synchronousModify", post(h::synchronous_modify))
        .route("/v1/modify", post(h::modify_async))
        .route(
            "/v1/request/{id}",
            get(h::get_request).delete(h::cancel_request),
        )
        .route("/v1/certificate/synchronous/request", post(c::csr))
        .route("/v1/certificate/synchronous/selfsign", post(c::self_sign))
        .route(
            "/v1/certificate/synchronous/create/selfSigned",
            post(c::self_sign),
        )
        .route("/v1/certificate/synchronous/sign", post(c::sign_csr))
        .route("/v1/certificate/import/plain", post(c::import))
        .route("/v1/dataObject", post(data::create).get(data::list))
        .route("/v1/dataObject/{name}", get(data::get))
        .route("/v1/certificate/{keyName}", get(c::get).delete(c::delete))
        .route("/health", get(h::health))
        .route("/ready", get(h::ready))
        .route("/actuator/health", get(h::health))
        .route("/actuator/health/readiness", get(h::ready))
        .merge(openapi::docs())
        .route_layer(axum::middleware::from_fn(metrics::mark_route))
        .fallback(h::not_found)
        .method_not_allowed_fallback(h::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(extract::buffer_body))
        .layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            metrics::track,
        ))
        .with_state(app)
}

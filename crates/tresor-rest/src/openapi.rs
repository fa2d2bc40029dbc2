//! The OpenAPI 3.1 document (generated from the handlers' annotations and the body types) and
//! the Swagger UI, served from the binary (no network access needed).

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::App;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        c.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-KEY"))),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tresor REST API", description = "Securosys TSB v1 compatible REST API of the Tresor HSM service."),
    paths(
        crate::handlers::version_info,
        crate::handlers::license_info,
        crate::handlers::statistics,
        crate::handlers::generate_random,
        crate::handlers::create_key,
        crate::handlers::list_keys,
        crate::handlers::delete_key,
        crate::handlers::delete_key_post,
        crate::handlers::key_attributes,
        crate::handlers::key_attributes_get,
        crate::handlers::import_plain,
        crate::handlers::export_plain,
        crate::handlers::change_password,
        crate::attestation::key_attestation,
        crate::handlers::synchronous_sign,
        crate::handlers::verify,
        crate::handlers::synchronous_hmac,
        crate::handlers::verify_hmac,
        crate::handlers::encrypt,
        crate::handlers::synchronous_decrypt,
        crate::handlers::wrap,
        crate::handlers::synchronous_unwrap,
        crate::handlers::synchronous_block,
        crate::handlers::synchronous_unblock,
        crate::handlers::sign_async,
        crate::handlers::unwrap_async,
        crate::handlers::block_async,
        crate::handlers::unblock_async,
        crate::handlers::synchronous_modify,
        crate::handlers::modify_async,
        crate::handlers::get_request,
        crate::handlers::cancel_request,
        crate::certs::csr,
        crate::certs::self_sign,
        crate::certs::sign_csr,
        crate::certs::import,
        crate::certs::get,
        crate::certs::delete,
        crate::data::create,
        crate::data::get,
        crate::data::list,
        crate::handlers::health,
        crate::handlers::ready,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []), ("apiKey" = [])),
    tags(
        (name = "service", description = "version, licence, statistics, random"),
        (name = "keys", description = "key management"),
        (name = "crypto", description = "sign, verify, HMAC, encrypt, decrypt, wrap, unwrap, block"),
        (name = "certificates", description = "CSRs and certificates"),
        (name = "data objects", description = "data objects (CKO_DATA) by name"),
        (name = "requests", description = "request status"),
        (name = "health", description = "liveness and readiness"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// `/v3/api-docs` and `/swagger-ui/`.
pub fn docs() -> Router<Arc<App>> {
    Router::from(SwaggerUi::new("/swagger-ui").url("/v3/api-docs", ApiDoc::openapi()))
}

//! Authentication and authorisation of every request, in one extractor ([`Caller`]):
//!
//! 1. The **tenant** is fixed by exactly one credential, in this order: a JWT bearer token
//!    (`Authorization: Bearer …`, signature checked with the configured public key, the
//!    algorithm pinned — `none` and algorithm confusion are refused by construction —, `exp`,
//!    `nbf` and `aud` checked, claims `tenant` and `partition` naming a configured tenant and
//!    its partition); else a client certificate verified by TLS against the configured client
//!    CA (mTLS, dedicated mode), mapped to a tenant by its common name; else an `X-API-KEY`
//!    that belongs to a tenant.
//! 2. The **role** (compat §5): when a tenant has API keys configured, every endpoint needs an
//!    `X-API-KEY` of the endpoint's role for that tenant: missing → 416, wrong → HTTP 401 with
//!    code 631. API keys are kept as SHA-256 digests and compared in constant time.
//!
//! No API takes the partition from the request body: handlers only ever see the caller's
//! tenant.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::Method;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{code, ApiError};
use crate::tenant::Tenant;
use crate::App;

/// The API-key roles of compat §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// `keyManagementToken`.
    #[serde(rename = "keyManagementToken")]
    KeyManagement,
    /// `keyOperationToken`.
    #[serde(rename = "keyOperationToken")]
    KeyOperation,
    /// `approverToken`.
    #[serde(rename = "approverToken")]
    Approver,
    /// `serviceToken`.
    #[serde(rename = "serviceToken")]
    Service,
    /// `approverKeyManagementToken`.
    #[serde(rename = "approverKeyManagementToken")]
    ApproverKeyManagement,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::KeyManagement,
        Role::KeyOperation,
        Role::Approver,
        Role::Service,
        Role::ApproverKeyManagement,
    ];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Role::KeyManagement => "keyManagementToken",
            Role::KeyOperation => "keyOperationToken",
            Role::Approver => "approverToken",
            Role::Service => "serviceToken",
            Role::ApproverKeyManagement => "approverKeyManagementToken",
        }
    }

    /// From the configuration name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// The role an endpoint needs (compat §1.1), `None` for public endpoints (health, docs).
pub fn role_for(method: &Method, path: &str) -> Option<Role> {
    if !path.starts_with("/v1/") {
        return None;
    }
    let p = &path[3..];
    Some(match p {
        "/versionInfo" | "/licenseInfo" | "/keystore/statistics" => Role::Service,
        _ if p.starts_with("/key") => Role::KeyManagement,
        "/modify" | "/synchronousModify" => Role::KeyManagement,
        _ if p.starts_with("/dataObject") => Role::KeyManagement,
        _ if p.starts_with("/generateRandom") => Role::KeyOperation,
        _ if p.starts_with("/approval") || p.starts_with("/filtered") && p.ends_with("Task") => {
            Role::Approver
        }
        _ if p.starts_with("/approverManagement") => Role::ApproverKeyManagement,
        _ => {
            let _ = method;
            Role::KeyOperation
        }
    })
}

/// A tenant's API keys by role (SHA-256 digests).
#[derive(Clone, Default)]
pub struct ApiKeys {
    by_role: HashMap<Role, Vec<[u8; 32]>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("roles", &self.by_role.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// SHA-256 of an API key, as stored in the configuration (`sha256:<hex>`).
pub fn api_key_digest(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

impl ApiKeys {
    /// From configured entries: `sha256:<hex>` digests, or keys in clear (hashed here).
    pub fn from_config(entries: &HashMap<String, Vec<String>>) -> Result<Self, String> {
        let mut by_role: HashMap<Role, Vec<[u8; 32]>> = HashMap::new();
        for (role, keys) in entries {
            let r = Role::parse(role).ok_or_else(|| format!("unknown API-key role {role:?}"))?;
            for k in keys {
                let d: [u8; 32] = match k.strip_prefix("sha256:") {
                    Some(h) => hex::decode(h)
                        .ok()
                        .and_then(|v| <[u8; 32]>::try_from(v).ok())
                        .ok_or_else(|| format!("{role}: bad sha256 digest"))?,
                    None => Sha256::digest(k.as_bytes()).into(),
                };
                by_role.entry(r).or_default().push(d);
            }
        }
        Ok(ApiKeys { by_role })
    }

    /// True if API-key authentication is on for the tenant.
    pub fn enabled(&self) -> bool {
        self.by_role.values().any(|v| !v.is_empty())
    }

    fn matches(&self, role: Option<Role>, presented: &[u8; 32]) -> bool {
        let mut ok = subtle::Choice::from(0u8);
        for (r, keys) in &self.by_role {
            if role.is_some_and(|want| want != *r) {
                continue;
            }
            for k in keys {
                ok |= k.ct_eq(presented);
            }
        }
        ok.into()
    }
}

/// JWT claims of a Tresor access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject (who the token was issued to).
    pub sub: String,
    /// Tenant name.
    pub tenant: String,
    /// The tenant's partition.
    pub partition: String,
    /// Audience.
    pub aud: String,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
}

/// The two signature algorithms tokens may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenAlgorithm {
    /// Ed25519.
    EdDSA,
    /// ECDSA P-256 SHA-256.
    ES256,
}

impl TokenAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            TokenAlgorithm::EdDSA => Algorithm::EdDSA,
            TokenAlgorithm::ES256 => Algorithm::ES256,
        }
    }

    /// From `EdDSA` / `ES256`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(TokenAlgorithm::EdDSA),
            "ES256" => Some(TokenAlgorithm::ES256),
            _ => None,
        }
    }
}

/// Verifies bearer tokens.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Tokens already verified (the exact token text → its claims), so that a client reusing
    /// its token does not pay a signature verification per request; expiry is re-checked on
    /// every use.
    cache: parking_lot::Mutex<HashMap<String, Claims>>,
}

/// Most tokens remembered as verified.
const TOKEN_CACHE: usize = 10_000;

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier for tokens signed with `alg` by the key whose public half is `public_pem`
    /// (SubjectPublicKeyInfo PEM), for audience `audience` (and issuer `issuer` if set).
    pub fn new(
        alg: TokenAlgorithm,
        public_pem: &[u8],
        audience: &str,
        issuer: Option<&str>,
    ) -> Result<Self, String> {
        let key = match alg {
            TokenAlgorithm::EdDSA => DecodingKey::from_ed_pem(public_pem),
            TokenAlgorithm::ES256 => DecodingKey::from_ec_pem(public_pem),
        }
        .map_err(|e| format!("the JWT public key: {e}"))?;
        let mut validation = Validation::new(alg.jwt());
        validation.algorithms = vec![alg.jwt()];
        validation.set_audience(&[audience]);
        if let Some(i) = issuer {
            validation.set_issuer(&[i]);
        }
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "nbf", "aud"]);
        Ok(JwtVerifier {
            key,
            validation,
            cache: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(u64::MAX);
        {
            let mut cache = self.cache.lock();
            if let Some(c) = cache.get(token) {
                if now <= c.exp.saturating_add(self.validation.leeway) {
                    return Ok(c.clone());
                }
                cache.remove(token);
            }
        }
        let claims = self.verify_signature(token)?;
        let mut cache = self.cache.lock();
        if cache.len() >= TOKEN_CACHE {
            cache.retain(|_, c| now <= c.exp.saturating_add(self.validation.leeway));
            if cache.len() >= TOKEN_CACHE {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                let why = match e.kind() {
                    K::ExpiredSignature => "the token has expired",
                    K::ImmatureSignature => "the token is not valid yet",
                    K::InvalidAudience => "the token is for another audience",
                    K::InvalidIssuer => "the token is from another issuer",
                    K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                        "the token's algorithm is not accepted"
                    }
                    K::InvalidSignature => "the token's signature is invalid",
                    K::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is malformed",
                };
                ApiError::new(code::INVALID_ACCESS_TOKEN, why)
            })
    }
}

/// Sign a token (for `tresor admin token`): `private_pem` is the PKCS#8 PEM of the signing key.
pub fn issue_token(
    alg: TokenAlgorithm,
    private_pem: &[u8],
    claims: &Claims,
) -> Result<String, String> {
    let key = match alg {
        TokenAlgorithm::EdDSA => EncodingKey::from_ed_pem(private_pem),
        TokenAlgorithm::ES256 => EncodingKey::from_ec_pem(private_pem),
    }
    .map_err(|e| format!("the signing key: {e}"))?;
    jsonwebtoken::encode(&Header::new(alg.jwt()), claims, &key).map_err(|e| e.to_string())
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new token-signing key: (PKCS#8 PEM of the private key, SubjectPublicKeyInfo PEM).
pub fn generate_token_key(
    alg: TokenAlgorithm,
) -> Result<(zeroize::Zeroizing<String>, String), String> {
    use aws_lc_rs::signature::KeyPair;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    match alg {
        TokenAlgorithm::EdDSA => {
            let pk8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|e| format!("key generation: {e}"))?;
            let kp = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pk8.as_ref())
                .map_err(|e| format!("key generation: {e}"))?;
            let mut spki = hex::decode("302a300506032b6570032100").map_err(|e| e.to_string())?;
            spki.extend_from_slice(kp.public_key().as_ref());
            Ok((
                zeroize::Zeroizing::new(pem("PRIVATE KEY", pk8.as_ref())),
                pem("PUBLIC KEY", &spki),
            ))
        }
        TokenAlgorithm::ES256 => {
            let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pk8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .map_err(|e| format!("key generation: {e}"))?;
            let kp = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, pk8.as_ref())
                .map_err(|e| format!("key generation: {e}"))?;
            let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200")
                .map_err(|e| e.to_string())?;
            spki.extend_from_slice(kp.public_key().as_ref());
            Ok((
                zeroize::Zeroizing::new(pem("PRIVATE KEY", pk8.as_ref())),
                pem("PUBLIC KEY", &spki),
            ))
        }
    }
}

/// A new random API key (`tsb-x-token_` and 32 random bytes in hex).
pub fn generate_api_key() -> Result<String, String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(|e| format!("random: {e}"))?;
    Ok(format!("tsb-x-token_{}", hex::encode(b)))
}

/// The common name of the client certificate TLS verified on this connection (mTLS).
#[derive(Debug, Clone, Default)]
pub struct ClientCertName(pub Option<String>);

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's tenant.
    pub tenant: Arc<Tenant>,
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
        let role = role_for(&parts.method, &path);
        let api_key = match parts.headers.get("x-api-key") {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::new(code::INVALID_API_KEY, "invalid API key"))?
                    .to_owned(),
            ),
            None => None,
        };
        let api_digest: Option<[u8; 32]> = api_key
            .as_deref()
            .map(|k| Sha256::digest(k.as_bytes()).into());
        let tenant = identify(parts, app, api_digest.as_ref())?;
        if tenant.api_keys.enabled() {
            let Some(d) = api_digest else {
                return Err(ApiError::new(
                    code::MISSING_API_KEY,
                    "this endpoint needs an X-API-KEY header",
                ));
            };
            if !tenant.api_keys.matches(role, &d) {
                return Err(ApiError::new(code::INVALID_API_KEY, "invalid API key"));
            }
        }
        Ok(Caller { tenant })
    }
}

fn identify(parts: &Parts, app: &App, api: Option<&[u8; 32]>) -> Result<Arc<Tenant>, ApiError> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = h
            .to_str()
            .map_err(|_| ApiError::new(code::INVALID_ACCESS_TOKEN, "the token is malformed"))?;
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::new(code::INVALID_ACCESS_TOKEN, "expected a Bearer token"))?;
        let Some(jwt) = &app.jwt else {
            return Err(ApiError::new(
                code::INVALID_ACCESS_TOKEN,
                "bearer tokens are not accepted by this service",
            ));
        };
        let claims = jwt.verify(token.trim())?;
        let t = app
            .tenants
            .iter()
            .find(|t| t.name == claims.tenant)
            .ok_or_else(|| ApiError::new(code::INVALID_ACCESS_TOKEN, "unknown tenant"))?;
        if t.partition != claims.partition {
            return Err(ApiError::new(
                code::INVALID_ACCESS_TOKEN,
                "the token's partition is not the tenant's",
            ));
        }
        return Ok(t.clone());
    }
    if let Some(ClientCertName(Some(cn))) = parts.extensions.get::<ClientCertName>() {
        if let Some(t) = app
            .tenants
            .iter()
            .find(|t| t.mtls_names.iter().any(|n| n == cn))
        {
            return Ok(t.clone());
        }
        if let Some(t) = &app.mtls_default {
            return Ok(t.clone());
        }
    }
    if let Some(d) = api {
        return app
            .tenants
            .iter()
            .find(|t| t.api_keys.matches(None, d))
            .cloned()
            .ok_or_else(|| ApiError::new(code::INVALID_API_KEY, "invalid API key"));
    }
    if app.jwt.is_some() {
        Err(ApiError::new(
            code::MISSING_ACCESS_TOKEN,
            "an Authorization: Bearer token is required",
        ))
    } else {
        Err(ApiError::new(
            code::MISSING_API_KEY,
            "this endpoint needs an X-API-KEY header",
        ))
    }
}

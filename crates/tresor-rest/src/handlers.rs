//! The handlers of the TSB v1 surface: extract (auth, JSON), translate into `tresor-proto`
//! requests, call the engine through the tenant's transport, shape the Securosys answer.
//! Every rule (attributes, policy, usage flags, tenant boundary) is the engine's.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Json;
use serde_json::{json, Value};
use tresor_proto::{Request, Response, Secret, Template};

use crate::auth::Caller;
use crate::dto::*;
use crate::error::{code, ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::mech;
use crate::requests::Outcome;
use crate::tenant::{b64, bytes_of, ck, unb64, unexpected, unlock, KeyKind, KeyRef, Tenant};
use crate::App;

/// Longest key name accepted.
const MAX_LABEL: usize = 256;

/// A key name must be non-empty, printable and at most 256 bytes.
pub fn check_label(label: &str) -> ApiResult<()> {
    if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(ApiError::new(
            code::INVALID_KEY_NAME,
            "a key name is 1 to 256 printable characters",
        ));
    }
    Ok(())
}

/// A new key's password in its (private or secret key) template: the engine hashes it.
fn with_password(t: Template, p: &Password) -> Template {
    match p.as_ref().and_then(|p| p.bytes()) {
        Some(b) => t.with_bytes(ck::CKA_TRESOR_KEY_PASSWORD, b),
        None => t,
    }
}

fn no_approvals(a: &Option<Vec<String>>) -> ApiResult<()> {
    match a {
        Some(v) if !v.is_empty() => Err(ApiError::unsupported(
            "signedApprovals are not accepted yet: keys with approval rules are refused by the HSM",
        )),
        _ => Ok(()),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// ISO-8601 UTC of Unix seconds.
pub fn iso(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Service endpoints.

/// API version.
#[utoipa::path(get, path = "/v1/versionInfo", tag = "service",
    responses((status = 200, body = VersionResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn version_info(_c: Caller) -> Json<VersionResponse> {
    Json(VersionResponse {
        version: crate::API_VERSION.to_owned(),
    })
}

/// Licence flags.
#[utoipa::path(get, path = "/v1/licenseInfo", tag = "service",
    responses((status = 200, body = LicenseResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn license_info(_c: Caller) -> Json<LicenseResponse> {
    Json(LicenseResponse {
        client_flags: vec!["REST_API".into(), "KEY_AUTH".into()],
    })
}

/// Key store statistics of the caller's partition.
#[utoipa::path(get, path = "/v1/keystore/statistics", tag = "service",
    responses((status = 200, body = StatisticsResponse), (status = "4XX", body = crate::error::ErrorBody),
        (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn statistics(c: Caller) -> ApiResult<Json<StatisticsResponse>> {
    let t = &c.tenant;
    let private = t.handles_of_class(ck::CKO_PRIVATE_KEY).await?.len() as u64;
    let public = t.handles_of_class(ck::CKO_PUBLIC_KEY).await?.len() as u64;
    let secret = t.handles_of_class(ck::CKO_SECRET_KEY).await?.len() as u64;
    let certs = t.handles_of_class(ck::CKO_CERTIFICATE).await?.len() as u64;
    let all = match t
        .call(Request::FindObjects {
            template: Template::new(),
            max: u32::MAX,
        })
        .await?
    {
        Response::Objects { objects } => objects.len() as u64,
        other => return Err(unexpected(&other)),
    };
    Ok(Json(StatisticsResponse {
        key_count: private + secret + public.saturating_sub(private),
        private_key_count: private,
        public_key_count: public,
        secret_key_count: secret,
        certificate_count: certs,
        object_count: all,
    }))
}

/// Random bytes from the HSM.
#[utoipa::path(get, path = "/v1/generateRandom/{length}", tag = "service",
    params(("length" = i64, Path, description = "number of bytes, 1 to 65536")),
    responses((status = 200, body = RandomResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn generate_random(
    c: Caller,
    Path(length): Path<String>,
) -> ApiResult<Json<RandomResponse>> {
    let n: u32 = length
        .parse()
        .ok()
        .filter(|n| (1..=65536).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                code::INVALID_NUMBER_RANGE,
                "length must be a number from 1 to 65536",
            )
        })?;
    match c.tenant.call(Request::Random { len: n }).await? {
        Response::Random { bytes } => Ok(Json(RandomResponse {
            random: b64(bytes.expose()),
        })),
        other => Err(unexpected(&other)),
    }
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, body = HealthResponse)))]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "UP".into(),
    })
}

/// Readiness: every tenant's HSM answers.
#[utoipa::path(get, path = "/ready", tag = "health", security(()),
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn ready(State(app): State<Arc<App>>) -> HttpResponse {
    for t in &app.tenants {
        if !matches!(t.call(Request::Ping {}).await, Ok(Response::Pong { .. })) {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthResponse {
                    status: "DOWN".into(),
                }),
            )
                .into_response();
        }
    }
    Json(HealthResponse {
        status: "UP".into(),
    })
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Keys.

fn bool_attr(t: Template, ty: u64, v: Option<bool>) -> Template {
    match v {
        Some(b) => t.with_bool(ty, b),
        None => t,
    }
}

struct Caps {
    sign: bool,
    encrypt: bool,
    wrap: bool,
    derive: bool,
}

fn caps(alg: KeyAlgorithm) -> Caps {
    use KeyAlgorithm as A;
    match alg {
        A::Rsa => Caps {
            sign: true,
            encrypt: true,
            wrap: true,
            derive: false,
        },
        A::Ec => Caps {
            sign: true,
            encrypt: false,
            wrap: false,
            derive: true,
        },
        A::Ed
        | A::MlDsa44
        | A::MlDsa65
        | A::MlDsa87
        | A::SlhDsaSha2_128s
        | A::SlhDsaSha2_128f
        | A::SlhDsaSha2_192s
        | A::SlhDsaSha2_192f
        | A::SlhDsaSha2_256s
        | A::SlhDsaSha2_256f
        | A::SlhDsaShake128s
        | A::SlhDsaShake128f
        | A::SlhDsaShake192s
        | A::SlhDsaShake192f
        | A::SlhDsaShake256s
        | A::SlhDsaShake256f => Caps {
            sign: true,
            encrypt: false,
            wrap: false,
            derive: false,
        },
        A::MlKem512 | A::MlKem768 | A::MlKem1024 => Caps {
            sign: false,
            encrypt: false,
            wrap: true,
            derive: false,
        },
        A::Aes | A::ChaCha20 => Caps {
            sign: false,
            encrypt: true,
            wrap: alg == A::Aes,
            derive: false,
        },
        A::HmacSha256 => Caps {
            sign: true,
            encrypt: false,
            wrap: false,
            derive: false,
        },
        _ => Caps {
            sign: false,
            encrypt: false,
            wrap: false,
            derive: false,
        },
    }
}

fn only(cap: bool, v: Option<bool>) -> Option<bool> {
    if cap {
        v
    } else {
        v.map(|_| false)
    }
}

/// The common part of a key template: token object, label, id, protection flags.
fn base_template(label: &str, id: Option<&str>, a: &KeyAttributes, private: bool) -> Template {
    let mut t = Template::new()
        .with_bool(ck::CKA_TOKEN, true)
        .with_bytes(ck::CKA_LABEL, label.as_bytes());
    if let Some(id) = id.filter(|s| !s.is_empty()) {
        t = t.with_bytes(ck::CKA_ID, id.as_bytes());
    }
    t = t
        .with_bool(ck::CKA_MODIFIABLE, a.modifiable.unwrap_or(true))
        .with_bool(ck::CKA_DESTROYABLE, a.destroyable.unwrap_or(false));
    if private {
        t = t
            .with_bool(ck::CKA_PRIVATE, true)
            .with_bool(ck::CKA_SENSITIVE, a.sensitive.unwrap_or(true))
            .with_bool(ck::CKA_EXTRACTABLE, a.extractable.unwrap_or(false))
            .with_bool(ck::CKA_COPYABLE, a.copyable.unwrap_or(false));
    }
    t
}

fn policy_bytes(p: &Option<Value>) -> ApiResult<Option<Vec<u8>>> {
    match p {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(
            serde_json::to_vec(v).map_err(|e| ApiError::invalid(e.to_string()))?,
        )),
        Some(_) => Err(ApiError::invalid("policy must be an object or null")),
    }
}

/// The templates and mechanism of a key creation.
pub(crate) struct KeySpec {
    mechanism: u64,
    pair: bool,
    public: Template,
    private: Template,
}

fn key_spec(req: &CreateKeyRequest) -> ApiResult<KeySpec> {
    use KeyAlgorithm as A;
    let a = req.attributes.clone().unwrap_or_default();
    if a.bip32 == Some(true) || a.slip10 == Some(true) {
        return Err(ApiError::new(
            code::KEY_ATTRIBUTES_INVALID,
            "bip32 / slip10 derivation is not offered by this HSM",
        ));
    }
    let c = caps(req.algorithm);
    let policy = policy_bytes(&req.policy)?;
    let mut public = base_template(&req.label, req.id.as_deref(), &a, false);
    public = bool_attr(public, ck::CKA_VERIFY, only(c.sign, a.verify));
    public = bool_attr(public, ck::CKA_ENCRYPT, only(c.encrypt, a.encrypt));
    public = bool_attr(public, ck::CKA_WRAP, only(c.wrap, a.wrap));
    let mut private = base_template(&req.label, req.id.as_deref(), &a, true);
    private = bool_attr(private, ck::CKA_SIGN, only(c.sign, a.sign));
    private = bool_attr(private, ck::CKA_DECRYPT, only(c.encrypt, a.decrypt));
    private = bool_attr(private, ck::CKA_UNWRAP, only(c.wrap, a.unwrap));
    private = bool_attr(private, ck::CKA_DERIVE, only(c.derive, a.derive));
    if let Some(p) = &policy {
        private = private.with_bytes(ck::CKA_TRESOR_POLICY, p);
    }
    let pq = |ckk: u64, set: u64, public: Template, private: Template| {
        (
            public
                .with_ulong(ck::CKA_KEY_TYPE, ckk)
                .with_ulong(ck::CKA_PARAMETER_SET, set),
            private.with_ulong(ck::CKA_KEY_TYPE, ckk),
        )
    };
    let key_size = req.key_size;
    let spec = match req.algorithm {
        A::Rsa => {
            let bits = key_size.unwrap_or(2048);
            if !(2048..=8192).contains(&bits) || bits % 8 != 0 {
                return Err(ApiError::new(
                    code::INPUT_KEYSIZE,
                    format!("RSA keySize {bits} is not supported (2048 to 8192)"),
                ));
            }
            KeySpec {
                mechanism: ck::CKM_RSA_PKCS_KEY_PAIR_GEN,
                pair: true,
                public: public.with_ulong(ck::CKA_MODULUS_BITS, u64::from(bits)),
                private,
            }
        }
        A::Ec => {
            let oid = req.curve_oid.as_deref().unwrap_or("1.2.840.10045.3.1.7");
            KeySpec {
                mechanism: ck::CKM_EC_KEY_PAIR_GEN,
                pair: true,
                public: public.with_bytes(ck::CKA_EC_PARAMS, &mech::oid_der(oid)?),
                private,
            }
        }
        A::Ed => {
            let oid = req.curve_oid.as_deref().unwrap_or("1.3.101.112");
            KeySpec {
                mechanism: ck::CKM_EC_EDWARDS_KEY_PAIR_GEN,
                pair: true,
                public: public.with_bytes(ck::CKA_EC_PARAMS, &mech::oid_der(oid)?),
                private,
            }
        }
        A::MlDsa44 | A::MlDsa65 | A::MlDsa87 => {
            let set = match req.algorithm {
                A::MlDsa44 => 1,
                A::MlDsa65 => 2,
                _ => 3,
            };
            let (public, private) = pq(ck::CKK_ML_DSA, set, public, private);
            KeySpec {
                mechanism: ck::CKM_ML_DSA_KEY_PAIR_GEN,
                pair: true,
                public,
                private,
            }
        }
        A::MlKem512 | A::MlKem768 | A::MlKem1024 => {
            let set = match req.algorithm {
                A::MlKem512 => 1,
                A::MlKem768 => 2,
                _ => 3,
            };
            let (public, private) = pq(ck::CKK_ML_KEM, set, public, private);
            KeySpec {
                mechanism: ck::CKM_ML_KEM_KEY_PAIR_GEN,
                pair: true,
                public,
                private,
            }
        }
        A::SlhDsaSha2_128s
        | A::SlhDsaShake128s
        | A::SlhDsaSha2_128f
        | A::SlhDsaShake128f
        | A::SlhDsaSha2_192s
        | A::SlhDsaShake192s
        | A::SlhDsaSha2_192f
        | A::SlhDsaShake192f
        | A::SlhDsaSha2_256s
        | A::SlhDsaShake256s
        | A::SlhDsaSha2_256f
        | A::SlhDsaShake256f => {
            let set = match req.algorithm {
                A::SlhDsaSha2_128s => 1,
                A::SlhDsaShake128s => 2,
                A::SlhDsaSha2_128f => 3,
                A::SlhDsaShake128f => 4,
                A::SlhDsaSha2_192s => 5,
                A::SlhDsaShake192s => 6,
                A::SlhDsaSha2_192f => 7,
                A::SlhDsaShake192f => 8,
                A::SlhDsaSha2_256s => 9,
                A::SlhDsaShake256s => 10,
                A::SlhDsaSha2_256f => 11,
                _ => 12,
            };
            let (public, private) = pq(ck::CKK_SLH_DSA, set, public, private);
            KeySpec {
                mechanism: ck::CKM_SLH_DSA_KEY_PAIR_GEN,
                pair: true,
                public,
                private,
            }
        }
        A::Aes | A::ChaCha20 | A::HmacSha256 => {
            let (mechanism, bits) = match req.algorithm {
                A::Aes => {
                    let b = key_size.unwrap_or(256);
                    if ![128, 192, 256].contains(&b) {
                        return Err(ApiError::new(
                            code::INPUT_KEYSIZE,
                            format!("AES keySize {b} is not 128, 192 or 256"),
                        ));
                    }
                    (ck::CKM_AES_KEY_GEN, b)
                }
                A::ChaCha20 => {
                    if key_size.is_some_and(|b| b != 256) {
                        return Err(ApiError::new(
                            code::INPUT_KEYSIZE,
                            "ChaCha20 keys are 256 bits",
                        ));
                    }
                    (ck::CKM_CHACHA20_KEY_GEN, 256)
                }
                _ => {
                    let b = key_size.unwrap_or(256);
                    if !(128..=4096).contains(&b) || b % 8 != 0 {
                        return Err(ApiError::new(
                            code::INPUT_KEYSIZE,
                            format!("HMAC keySize {b} is not a multiple of 8 from 128 to 4096"),
                        ));
                    }
                    (ck::CKM_GENERIC_SECRET_KEY_GEN, b)
                }
            };
            let mut t = base_template(&req.label, req.id.as_deref(), &a, true)
                .with_ulong(ck::CKA_VALUE_LEN, u64::from(bits / 8));
            t = bool_attr(t, ck::CKA_SIGN, only(c.sign, a.sign));
            t = bool_attr(t, ck::CKA_VERIFY, only(c.sign, a.verify));
            t = bool_attr(t, ck::CKA_ENCRYPT, only(c.encrypt, a.encrypt));
            t = bool_attr(t, ck::CKA_DECRYPT, only(c.encrypt, a.decrypt));
            t = bool_attr(t, ck::CKA_WRAP, only(c.wrap, a.wrap));
            t = bool_attr(t, ck::CKA_UNWRAP, only(c.wrap, a.unwrap));
            t = bool_attr(t, ck::CKA_DERIVE, a.derive);
            if let Some(p) = &policy {
                t = t.with_bytes(ck::CKA_TRESOR_POLICY, p);
            }
            KeySpec {
                mechanism,
                pair: false,
                public: Template::new(),
                private: t,
            }
        }
        other => {
            return Err(ApiError::unsupported(format!(
                "algorithm {} is not offered by this HSM",
                other.as_str()
            )))
        }
    };
    Ok(spec)
}

/// Algorithm facts of a record: (algorithm, algorithmOid, curveOid, keySize).
fn alg_facts(rec: &Value) -> (Value, Value, Value, Value) {
    let s = |x: &str| Value::String(x.to_owned());
    let bits = |b: Option<u64>| b.map_or(Value::Null, |b| json!(b));
    match rec.get("alg") {
        Some(Value::String(a)) => match a.as_str() {
            "Rsa" => (
                s("RSA"),
                s("1.2.840.113549.1.1.1"),
                Value::Null,
                bits(rec.pointer("/public/modulus_bits").and_then(Value::as_u64)),
            ),
            "Aes" => (
                s("AES"),
                s("2.16.840.1.101.3.4.1"),
                Value::Null,
                bits(rec.get("value_len").and_then(Value::as_u64).map(|l| l * 8)),
            ),
            "GenericSecret" => (
                s("HMACSHA256"),
                s("1.2.840.113549.2.9"),
                Value::Null,
                bits(rec.get("value_len").and_then(Value::as_u64).map(|l| l * 8)),
            ),
            "ChaCha20" => (
                s("ChaCha20"),
                s("1.2.840.113549.1.9.16.3.18"),
                Value::Null,
                json!(256),
            ),
            _ => (Value::Null, Value::Null, Value::Null, Value::Null),
        },
        Some(Value::Object(m)) => {
            if let Some(c) = m.get("Ec").and_then(Value::as_str) {
                let (oid, b) = match c {
                    "P256" => ("1.2.840.10045.3.1.7", 256),
                    "P384" => ("1.3.132.0.34", 384),
                    "P521" => ("1.3.132.0.35", 521),
                    "Secp256k1" => ("1.3.132.0.10", 256),
                    "BrainpoolP256r1" => ("1.3.36.3.3.2.8.1.1.7", 256),
                    "BrainpoolP384r1" => ("1.3.36.3.3.2.8.1.1.11", 384),
                    _ => ("1.3.36.3.3.2.8.1.1.13", 512),
                };
                (s("EC"), s("1.2.840.10045.2.1"), s(oid), json!(b))
            } else if let Some(c) = m.get("Ed").and_then(Value::as_str) {
                let (oid, b) = if c == "Ed448" {
                    ("1.3.101.113", 448)
                } else {
                    ("1.3.101.112", 255)
                };
                (s("ED"), s(oid), s(oid), json!(b))
            } else if let Some(p) = m.get("MlDsa").and_then(Value::as_str) {
                let n = p.trim_start_matches("MlDsa");
                (
                    s(&format!("ML-DSA-{n}")),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                )
            } else if let Some(p) = m.get("MlKem").and_then(Value::as_str) {
                let n = p.trim_start_matches("MlKem");
                (
                    s(&format!("ML-KEM-{n}")),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                )
            } else if let Some(p) = m.get("SlhDsa").and_then(Value::as_str) {
                let name = p.replace("Sha2_", "SHA2-").replace("Shake", "SHAKE-");
                (
                    s(&format!("SLH-DSA-{name}")),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                )
            } else {
                (Value::Null, Value::Null, Value::Null, Value::Null)
            }
        }
        _ => (Value::Null, Value::Null, Value::Null, Value::Null),
    }
}

/// The `json` part of the key envelope.
fn key_json(rec: &Value, usage: i64, attest_time: i64) -> Value {
    let (algorithm, algorithm_oid, curve_oid, key_size) = alg_facts(rec);
    let f = |n: &str| {
        rec.pointer(&format!("/flags/{n}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let id = bytes_of(rec.get("ckaid"))
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8(b.clone()).unwrap_or_else(|_| hex::encode(b)));
    let public_key = bytes_of(rec.pointer("/public/spki")).map(|b| b64(&b));
    json!({
        "label": rec.get("label").cloned().unwrap_or(Value::Null),
        "id": id,
        "uuid": rec.get("uuid").cloned().unwrap_or(Value::Null),
        "algorithm": algorithm,
        "algorithmOid": algorithm_oid,
        "curveOid": curve_oid,
        "keySize": key_size,
        "keyUsageCount": usage,
        "createTime": rec.get("created").and_then(Value::as_i64).map(iso),
        "attestTime": iso(attest_time),
        "publicKey": public_key,
        "addressTruncated": null,
        "derivedAttributes": null,
        "attributes": {
            "encrypt": f("encrypt"),
            "decrypt": f("decrypt"),
            "verify": f("verify"),
            "sign": f("sign"),
            "ekaSign": null,
            "wrap": f("wrap"),
            "unwrap": f("unwrap"),
            "derive": f("derive"),
            "sensitive": f("sensitive"),
            "alwaysSensitive": f("always_sensitive"),
            "extractable": f("extractable"),
            "neverExtractable": f("never_extractable"),
            "modifiable": f("modifiable"),
            "copyable": f("copyable"),
            "destroyable": f("destroyable"),
        },
        "policy": rec.get("policy").cloned().unwrap_or(Value::Null),
    })
}

/// The `{xml, json, xmlSignature, attestationKeyName}` envelope of a key (a key with a
/// password is attested with it).
pub(crate) async fn envelope(
    t: &Tenant,
    k: &KeyRef,
    password: &Password,
) -> ApiResult<KeyEnvelope> {
    let main = k.main().ok_or_else(|| ApiError::no_key(&k.label))?;
    let (mut rec, usage) = t.record(main).await?;
    // The public half carries encrypt / verify / wrap of a key pair.
    if let (Some(p), Some(_)) = (k.public, k.private) {
        let (pub_rec, _) = t.record(p).await?;
        for n in ["encrypt", "verify", "wrap"] {
            if let (Some(v), Some(flags)) = (
                pub_rec.pointer(&format!("/flags/{n}")).cloned(),
                rec.get_mut("flags").and_then(Value::as_object_mut),
            ) {
                flags.insert(n.to_owned(), v);
            }
        }
    }
    let att = match t
        .call_unlocked(Request::Attest { key: main }, unlock(k, password)?)
        .await?
    {
        Response::Attested { attestation } => attestation,
        other => return Err(unexpected(&other)),
    };
    Ok(KeyEnvelope {
        json: key_json(&rec, usage, now()),
        xml: att.xml,
        xml_signature: b64(&att.signature),
        attestation_key_name: att.attestation_key_name,
    })
}

async fn exists(t: &Tenant, label: &str) -> ApiResult<bool> {
    t.forget(label);
    match t.key(label).await {
        Ok(_) => Ok(true),
        Err(e) if e.code == code::KEY_NOT_EXISTENT => Ok(false),
        Err(e) => Err(e),
    }
}

/// Create a key.
#[utoipa::path(post, path = "/v1/key", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 200, body = KeyEnvelope), (status = "4XX", body = crate::error::ErrorBody),
        (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn create_key(
    c: Caller,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<Json<KeyEnvelope>> {
    check_label(&req.label)?;
    if req.address_format.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::unsupported(
            "addressFormat is not offered by this HSM",
        ));
    }
    let mut spec = key_spec(&req)?;
    // The engine refuses the key if its name was taken meanwhile (by any REST process).
    spec.private = with_password(spec.private, &req.password)
        .with_ulong(ck::CKA_TRESOR_UNIQUE_LABEL, ck::UNIQUE_KEY_NAME);
    let t = &c.tenant;
    // A quick answer before a costly generation; the engine's check is the one that counts.
    if exists(t, &req.label).await? {
        return Err(ApiError::new(
            code::KEY_ALREADY_EXISTING,
            format!("a key named {:?} exists", req.label),
        ));
    }
    let r = if spec.pair {
        t.call(Request::GenerateKeyPair {
            mechanism: spec.mechanism,
            public_template: spec.public,
            private_template: spec.private,
        })
        .await
    } else {
        t.call(Request::GenerateKey {
            mechanism: spec.mechanism,
            template: spec.private,
        })
        .await
    };
    t.forget(&req.label);
    match r? {
        Response::KeyPairGenerated { .. } | Response::KeyGenerated { .. } => {}
        other => return Err(unexpected(&other)),
    }
    let k = t.key(&req.label).await?;
    Ok(Json(envelope(t, &k, &req.password).await?))
}

/// Key names of the caller's partition.
#[utoipa::path(get, path = "/v1/key", tag = "keys",
    responses((status = 200, body = Vec<String>), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn list_keys(c: Caller) -> ApiResult<Json<Vec<String>>> {
    let t = &c.tenant;
    let mut names = std::collections::BTreeSet::new();
    for class in [ck::CKO_PRIVATE_KEY, ck::CKO_SECRET_KEY, ck::CKO_PUBLIC_KEY] {
        for h in t.handles_of_class(class).await? {
            names.insert(t.label_of(h).await?);
        }
    }
    Ok(Json(names.into_iter().filter(|n| !n.is_empty()).collect()))
}

/// Attributes and attestation of a key.
#[utoipa::path(post, path = "/v1/key/attributes", tag = "keys", request_body = KeyNameRequest,
    responses((status = 200, body = KeyEnvelope), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn key_attributes(
    c: Caller,
    ApiJson(req): ApiJson<KeyNameRequest>,
) -> ApiResult<Json<KeyEnvelope>> {
    attributes_of(&c.tenant, &req.label, &req.password).await
}

/// Attributes and attestation of a key (deprecated password-less variant).
#[utoipa::path(get, path = "/v1/key/{keyName}/attributes", tag = "keys",
    params(("keyName" = String, Path, description = "key name")),
    responses((status = 200, body = KeyEnvelope), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn key_attributes_get(
    c: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<KeyEnvelope>> {
    attributes_of(&c.tenant, &name, &None).await
}

async fn attributes_of(
    t: &Tenant,
    label: &str,
    password: &Password,
) -> ApiResult<Json<KeyEnvelope>> {
    check_label(label)?;
    let env = t
        .with_key(label, |k| async move { envelope(t, &k, password).await })
        .await?;
    Ok(Json(env))
}

async fn delete_named(t: &Tenant, label: &str, password: &Password) -> ApiResult<()> {
    check_label(label)?;
    t.forget(label);
    let k = t.key(label).await?;
    let main = k.main();
    let unlocked = unlock(&k, password)?;
    // The private or secret half first: if it may not be destroyed, nothing is. Its password
    // (if any) goes with it; the other objects carry none.
    for h in [k.private, k.secret, k.public, k.cert]
        .into_iter()
        .flatten()
    {
        let pw = if Some(h) == main {
            unlocked.clone()
        } else {
            Vec::new()
        };
        match t
            .call_unlocked(Request::DestroyObject { object: h }, pw)
            .await
        {
            Ok(Response::ObjectDestroyed {}) => {}
            Ok(other) => return Err(unexpected(&other)),
            Err(e) => {
                t.forget(label);
                return Err(e);
            }
        }
    }
    t.forget(label);
    Ok(())
}

/// Delete a key (all objects of that name).
#[utoipa::path(delete, path = "/v1/key/{keyName}", tag = "keys",
    params(("keyName" = String, Path, description = "key name")),
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete_key(c: Caller, Path(name): Path<String>) -> ApiResult<()> {
    delete_named(&c.tenant, &name, &None).await
}

/// Delete a key (`{label, password}`).
#[utoipa::path(post, path = "/v1/key/deleteKey", tag = "keys", request_body = KeyNameRequest,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete_key_post(c: Caller, ApiJson(req): ApiJson<KeyNameRequest>) -> ApiResult<()> {
    delete_named(&c.tenant, &req.label, &req.password).await
}

/// Set, change or remove a key's password: `password` is the current one (null for a key
/// without), `newPassword` the new one (null or empty removes it).
#[utoipa::path(post, path = "/v1/key/changePassword", tag = "keys", request_body = ChangePasswordRequest,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn change_password(
    c: Caller,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<()> {
    check_label(&req.label)?;
    let t = &c.tenant;
    let new_password = req
        .new_password
        .as_ref()
        .and_then(|p| p.bytes())
        .map(Secret::from_slice);
    t.with_key(&req.label, |k| {
        let new_password = new_password.clone();
        let password = &req.password;
        async move {
            let key = k.private_side()?;
            match t
                .call_unlocked(
                    Request::ChangeKeyPassword { key, new_password },
                    unlock(&k, password)?,
                )
                .await?
            {
                Response::KeyPasswordChanged {} => Ok(()),
                other => Err(unexpected(&other)),
            }
        }
    })
    .await
}

/// Import a key in plain form.
#[utoipa::path(post, path = "/v1/key/import/plain", tag = "keys", request_body = ImportKeyRequest,
    responses((status = 200, body = KeyEnvelope), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn import_plain(
    c: Caller,
    ApiJson(req): ApiJson<ImportKeyRequest>,
) -> ApiResult<Json<KeyEnvelope>> {
    check_label(&req.label)?;
    let t = &c.tenant;
    let a = req.attributes.clone().unwrap_or_default();
    let policy = policy_bytes(&req.policy)?;
    let existing = if exists(t, &req.label).await? {
        Some(t.key(&req.label).await?)
    } else {
        None
    };
    if let Some(k) = existing.as_ref().filter(|k| k.main().is_some()) {
        // Adding to a key with a password needs it: checked before anything changes (the
        // answer is that key's attested envelope).
        envelope(t, k, &req.password).await?;
    }
    let mut made = false;
    if let Some(sk) = &req.secret_key {
        if existing.is_some() {
            return Err(ApiError::new(
                code::KEY_ALREADY_EXISTING,
                "a key of that name exists",
            ));
        }
        let raw = zeroize::Zeroizing::new(unb64("secretKey", sk)?);
        let ckk = match req.algorithm {
            Some(KeyAlgorithm::Aes) | None => ck::CKK_AES,
            Some(KeyAlgorithm::HmacSha256) => ck::CKK_GENERIC_SECRET,
            Some(KeyAlgorithm::ChaCha20) => ck::CKK_CHACHA20,
            Some(o) => {
                return Err(ApiError::new(
                    code::INVALID_KEY_TYPE,
                    format!("{} is not a secret-key algorithm", o.as_str()),
                ))
            }
        };
        let mut tm = base_template(&req.label, None, &a, true)
            .with_ulong(ck::CKA_CLASS, ck::CKO_SECRET_KEY)
            .with_ulong(ck::CKA_KEY_TYPE, ckk)
            .with_bytes(ck::CKA_VALUE, &raw)
            .with_ulong(ck::CKA_TRESOR_UNIQUE_LABEL, ck::UNIQUE_KEY_NAME);
        for (ty, v) in [
            (ck::CKA_ENCRYPT, a.encrypt),
            (ck::CKA_DECRYPT, a.decrypt),
            (ck::CKA_SIGN, a.sign),
            (ck::CKA_VERIFY, a.verify),
            (ck::CKA_WRAP, a.wrap),
            (ck::CKA_UNWRAP, a.unwrap),
            (ck::CKA_DERIVE, a.derive),
        ] {
            tm = bool_attr(tm, ty, v);
        }
        if let Some(p) = &policy {
            tm = tm.with_bytes(ck::CKA_TRESOR_POLICY, p);
        }
        tm = with_password(tm, &req.password);
        t.call(Request::CreateObject { template: tm }).await?;
        made = true;
    }
    if let Some(pk8) = &req.private_key {
        if existing
            .as_ref()
            .is_some_and(|k| k.private.is_some() || k.secret.is_some())
        {
            return Err(ApiError::new(
                code::KEY_ALREADY_EXISTING,
                "a private key of that name exists and cannot be re-imported",
            ));
        }
        if req.public_key.is_none() && req.certificate.is_none() && existing.is_none() {
            return Err(ApiError::invalid(
                "a private key is imported with its public key or certificate",
            ));
        }
        let der = zeroize::Zeroizing::new(unb64("privateKey", strip_pem(pk8).as_str())?);
        let (ckk, params) = crate::keyinfo::pkcs8_key_type(&der)?;
        let mut tm = base_template(&req.label, None, &a, true)
            .with_ulong(ck::CKA_CLASS, ck::CKO_PRIVATE_KEY)
            .with_ulong(ck::CKA_KEY_TYPE, ckk)
            .with_bytes(ck::CKA_TRESOR_PKCS8, &der)
            .with_ulong(
                ck::CKA_TRESOR_UNIQUE_LABEL,
                if existing.is_some() {
                    ck::UNIQUE_SECRET_HALF
                } else {
                    ck::UNIQUE_KEY_NAME
                },
            );
        if let Some(p) = params {
            tm = tm.with_bytes(ck::CKA_EC_PARAMS, &p);
        }
        for (ty, v) in [
            (ck::CKA_DECRYPT, a.decrypt),
            (ck::CKA_SIGN, a.sign),
            (ck::CKA_UNWRAP, a.unwrap),
            (ck::CKA_DERIVE, a.derive),
        ] {
            tm = bool_attr(tm, ty, v);
        }
        if let Some(p) = &policy {
            tm = tm.with_bytes(ck::CKA_TRESOR_POLICY, p);
        }
        tm = with_password(tm, &req.password);
        t.call(Request::CreateObject { template: tm }).await?;
        made = true;
    }
    if let Some(spki) = &req.public_key {
        let der = unb64("publicKey", strip_pem(spki).as_str())?;
        let (ckk, params) = crate::keyinfo::spki_key_type(&der)?;
        if let Some(h) = existing.as_ref().and_then(|k| k.public) {
            t.call(Request::DestroyObject { object: h }).await?;
        }
        let mut tm = base_template(&req.label, None, &a, false)
            .with_ulong(ck::CKA_CLASS, ck::CKO_PUBLIC_KEY)
            .with_ulong(ck::CKA_KEY_TYPE, ckk)
            .with_bytes(ck::CKA_PUBLIC_KEY_INFO, &der)
            .with_ulong(ck::CKA_TRESOR_UNIQUE_LABEL, ck::UNIQUE_PUBLIC_HALF);
        if let Some(p) = params {
            tm = tm.with_bytes(ck::CKA_EC_PARAMS, &p);
        }
        for (ty, v) in [
            (ck::CKA_ENCRYPT, a.encrypt),
            (ck::CKA_VERIFY, a.verify),
            (ck::CKA_WRAP, a.wrap),
        ] {
            tm = bool_attr(tm, ty, v);
        }
        t.call(Request::CreateObject { template: tm }).await?;
        made = true;
    }
    if let Some(cert) = &req.certificate {
        let der = unb64("certificate", strip_pem(cert).as_str())?;
        crate::certs::store_certificate(t, &req.label, &der).await?;
        made = true;
    }
    t.forget(&req.label);
    if !made {
        return Err(ApiError::invalid(
            "nothing to import: give privateKey with publicKey, publicKey, secretKey or certificate",
        ));
    }
    let k = t.key(&req.label).await?;
    if k.main().is_none() {
        return Err(ApiError::new(
            code::KEY_NOT_EXISTENT,
            "imported a certificate only; no key of that name",
        ));
    }
    Ok(Json(envelope(t, &k, &req.password).await?))
}

/// Remove PEM armour and whitespace.
pub fn strip_pem(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("")
}

/// Export a key in plain form (extractable and not sensitive only; the engine decides).
#[utoipa::path(post, path = "/v1/key/export/plain", tag = "keys", request_body = KeyNameRequest,
    responses((status = 200, body = ExportKeyResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn export_plain(
    c: Caller,
    ApiJson(req): ApiJson<KeyNameRequest>,
) -> ApiResult<Json<ExportKeyResponse>> {
    check_label(&req.label)?;
    let t = &c.tenant;
    let k = t.key(&req.label).await?;
    let main = k.main().ok_or_else(|| ApiError::no_key(&req.label))?;
    let (rec, _) = t.record(main).await?;
    let (algorithm, ..) = alg_facts(&rec);
    let public_key = bytes_of(rec.pointer("/public/spki")).map(|b| b64(&b));
    let unlocked = unlock(&k, &req.password)?;
    let read = |h: i64, ty: u64| {
        let pw = if h == main {
            unlocked.clone()
        } else {
            Vec::new()
        };
        async move {
            match t
                .call_unlocked(
                    Request::GetAttributes {
                        object: h,
                        types: vec![ty],
                    },
                    pw,
                )
                .await?
            {
                Response::Attributes { values } => match values.into_iter().next() {
                    Some(tresor_proto::AttrRead::Value(v)) => Ok(Some(b64(v.expose()))),
                    Some(tresor_proto::AttrRead::Sensitive) => Err(ApiError::new(
                        code::OPERATION_FORBIDDEN_FOR_KEY,
                        "the key is sensitive or not extractable",
                    )),
                    _ => Ok(None),
                },
                other => Err(unexpected(&other)),
            }
        }
    };
    let secret_key = match k.secret {
        Some(h) => read(h, ck::CKA_VALUE).await?,
        None => None,
    };
    let private_key = match k.private {
        Some(h) => read(h, ck::CKA_TRESOR_PKCS8).await?,
        None => None,
    };
    if k.private.is_some() && private_key.is_none() {
        return Err(ApiError::new(
            code::OPERATION_FORBIDDEN_FOR_KEY,
            "the private key cannot be exported",
        ));
    }
    let certificate = match k.cert {
        Some(h) => read(h, ck::CKA_VALUE).await?,
        None => None,
    };
    Ok(Json(ExportKeyResponse {
        algorithm: algorithm.as_str().unwrap_or_default().to_owned(),
        private_key,
        public_key,
        secret_key,
        certificate,
    }))
}

// ---------------------------------------------------------------------------------------------
// Sign, verify, HMAC.

fn with_request_id(id: String, body: impl IntoResponse) -> HttpResponse {
    let mut r = body.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

/// Sign now.
#[utoipa::path(post, path = "/v1/synchronousSign", tag = "crypto", request_body = SignBody,
    responses((status = 200, body = SignResponse), (status = "4XX", body = crate::error::ErrorBody),
        (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_sign(
    State(app): State<Arc<App>>,
    c: Caller,
    ApiJson(body): ApiJson<SignBody>,
) -> ApiResult<HttpResponse> {
    let r = body.sign_request;
    no_approvals(&r.signed_approvals)?;
    if r.sign_key_object.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::unsupported(
            "signKeyObject (external key store) is not offered",
        ));
    }
    check_label(&r.sign_key_name)?;
    let payload = unb64("payload", &r.payload)?;
    let sig_type = r.signature_type.unwrap_or(SignatureType::Der);
    let t = &c.tenant;
    let alg = r.signature_algorithm;
    let pw = &r.key_password;
    let result = t
        .with_key(&r.sign_key_name, |k| {
            let payload = payload.clone();
            async move {
                let (mechanism, data) = mech::sign_mechanism(alg, k.kind, &payload)?;
                let key = k.private_side()?;
                if sig_type == SignatureType::Eth && !matches!(k.kind, KeyKind::Ec(32)) {
                    return Err(ApiError::new(
                        code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                        "signatureType ETH needs an EC secp256k1 key",
                    ));
                }
                // ETH: the key's public point (checked to be secp256k1 before any signature)
                // and the digest that will be signed.
                let eth = if sig_type == SignatureType::Eth {
                    let (rec, _) = t.record(key).await?;
                    let spki = bytes_of(rec.pointer("/public/spki")).unwrap_or_default();
                    if !crate::eth::is_secp256k1(&spki) {
                        return Err(ApiError::new(
                            code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                            "signatureType ETH needs an EC secp256k1 key",
                        ));
                    }
                    Some((signed_digest(t, &mechanism, &data).await?, spki))
                } else {
                    None
                };
                let signature = match t
                    .call_unlocked(
                        Request::Sign {
                            key,
                            mechanism,
                            data: Secret::new(data),
                        },
                        unlock(&k, pw)?,
                    )
                    .await?
                {
                    Response::Signature { signature } => signature,
                    other => return Err(unexpected(&other)),
                };
                match eth {
                    // r, s, v: the recovery id from public values (the key's public point).
                    Some((d, spki)) => {
                        Ok((crate::eth::eth_signature(&signature, &d, &spki)?, k.kind))
                    }
                    None => Ok((signature, k.kind)),
                }
            }
        })
        .await;
    let outcome = match &result {
        Ok((sig, kind)) => {
            let sig = match (kind, sig_type) {
                (KeyKind::Ec(_), SignatureType::Der) => mech::ecdsa_raw_to_der(sig),
                _ => sig.clone(),
            };
            Outcome::Executed(Some(b64(&sig)))
        }
        Err(e) => Outcome::Failed(e.clone()),
    };
    let id = app
        .requests
        .record(t, "Sign", Some(&r.sign_key_name), outcome.clone())
        .await;
    match outcome {
        Outcome::Executed(Some(signature)) => {
            Ok(with_request_id(id, Json(SignResponse { signature })))
        }
        _ => Err(result.err().unwrap_or_else(|| ApiError::internal("sign"))),
    }
}

/// Verify a signature.
#[utoipa::path(post, path = "/v1/verify", tag = "crypto", request_body = VerifyBody,
    responses((status = 200, body = VerifyResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn verify(
    c: Caller,
    ApiJson(body): ApiJson<VerifyBody>,
) -> ApiResult<Json<VerifyResponse>> {
    let r = body.verify_signature_request;
    if r.sign_key_object.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::unsupported(
            "signKeyObject (external key store) is not offered",
        ));
    }
    check_label(&r.sign_key_name)?;
    let payload = unb64("payload", &r.payload)?;
    let signature = unb64("signature", &r.signature)?;
    let sig_type = r.signature_type.unwrap_or(SignatureType::Der);
    let t = &c.tenant;
    let alg = r.signature_algorithm;
    let pw = &r.master_key_password;
    let valid = t
        .with_key(&r.sign_key_name, |k| {
            let payload = payload.clone();
            let signature = signature.clone();
            async move {
                let (mechanism, data) = mech::sign_mechanism(alg, k.kind, &payload)?;
                let signature = match (k.kind, sig_type) {
                    (KeyKind::Ec(n), SignatureType::Der) => {
                        match mech::ecdsa_der_to_raw(&signature, n) {
                            Some(s) => s,
                            None => return Ok(false),
                        }
                    }
                    (KeyKind::Ec(_), SignatureType::Eth) => {
                        match crate::eth::eth_to_raw(&signature) {
                            Some(s) => s,
                            None => return Ok(false),
                        }
                    }
                    (_, SignatureType::Eth) => {
                        return Err(ApiError::new(
                            code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                            "signatureType ETH needs an EC secp256k1 key",
                        ))
                    }
                    _ => signature,
                };
                let key = k.public_side()?;
                check_verify(
                    t.call_raw_unlocked(
                        Request::Verify {
                            key,
                            mechanism,
                            data: Secret::new(data),
                            signature,
                        },
                        unlock(&k, pw)?,
                    )
                    .await?,
                )
            }
        })
        .await?;
    Ok(Json(VerifyResponse {
        signature_valid: valid,
    }))
}

/// The digest an ECDSA mechanism signs (ETH signatures recover the key from it), computed by
/// the HSM's digest (public data only).
async fn signed_digest(t: &Tenant, m: &tresor_proto::Mechanism, data: &[u8]) -> ApiResult<Vec<u8>> {
    use tresor_proto::{HashAlg, Mechanism as M};
    let digest = |hash: HashAlg, data: Vec<u8>| async move {
        match t
            .call(Request::Digest {
                hash,
                data: Secret::new(data),
            })
            .await?
        {
            Response::Digest { digest } => Ok(digest),
            other => Err(unexpected(&other)),
        }
    };
    match m {
        M::Ecdsa {} => Ok(data.to_vec()),
        M::EcdsaHash { hash } | M::EcdsaDeterministic { hash } => {
            digest(*hash, data.to_vec()).await
        }
        M::EcdsaDoubleSha256 {} => {
            let once = digest(HashAlg::Sha256, data.to_vec()).await?;
            digest(HashAlg::Sha256, once).await
        }
        _ => Err(ApiError::new(
            code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
            "signatureType ETH needs an ECDSA signature algorithm",
        )),
    }
}

fn check_verify(r: Result<Response, tresor_client::Error>) -> ApiResult<bool> {
    match r {
        Ok(Response::Verified {}) => Ok(true),
        Ok(other) => Err(unexpected(&other)),
        Err(tresor_client::Error::Node { rv, .. }) if rv == 0xC0 || rv == 0xC1 => Ok(false),
        Err(e) => Err(ApiError::from_client(&e)),
    }
}

/// HMAC-SHA256 with a secret key.
#[utoipa::path(post, path = "/v1/synchronousHmac", tag = "crypto", request_body = HmacBody,
    responses((status = 200, body = HmacResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_hmac(
    c: Caller,
    ApiJson(body): ApiJson<HmacBody>,
) -> ApiResult<Json<HmacResponse>> {
    let r = body.hmac_request;
    check_label(&r.key_name)?;
    let payload = unb64("payload", &r.payload)?;
    let t = &c.tenant;
    let pw = &r.key_password;
    let mac = t
        .with_key(&r.key_name, |k| {
            let payload = payload.clone();
            async move {
                if k.kind != KeyKind::Hmac {
                    return Err(ApiError::new(
                        code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                        "HMAC needs an HMACSHA256 key",
                    ));
                }
                match t
                    .call_unlocked(
                        Request::Sign {
                            key: k.private_side()?,
                            mechanism: tresor_proto::Mechanism::Hmac {
                                hash: tresor_proto::HashAlg::Sha256,
                            },
                            data: Secret::new(payload),
                        },
                        unlock(&k, pw)?,
                    )
                    .await?
                {
                    Response::Signature { signature } => Ok(signature),
                    other => Err(unexpected(&other)),
                }
            }
        })
        .await?;
    Ok(Json(HmacResponse {
        keyed_hash: b64(&mac),
    }))
}

/// Verify an HMAC-SHA256.
#[utoipa::path(post, path = "/v1/verifyHmac", tag = "crypto", request_body = VerifyHmacBody,
    responses((status = 200, body = VerifyResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn verify_hmac(
    c: Caller,
    ApiJson(body): ApiJson<VerifyHmacBody>,
) -> ApiResult<Json<VerifyResponse>> {
    let r = body.verify_hmac_request;
    check_label(&r.key_name)?;
    let payload = unb64("payload", &r.payload)?;
    let signature = unb64("signature", &r.signature)?;
    let t = &c.tenant;
    let pw = &r.key_password;
    let valid = t
        .with_key(&r.key_name, |k| {
            let payload = payload.clone();
            let signature = signature.clone();
            async move {
                if k.kind != KeyKind::Hmac {
                    return Err(ApiError::new(
                        code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                        "HMAC needs an HMACSHA256 key",
                    ));
                }
                check_verify(
                    t.call_raw_unlocked(
                        Request::Verify {
                            key: k.private_side()?,
                            mechanism: tresor_proto::Mechanism::Hmac {
                                hash: tresor_proto::HashAlg::Sha256,
                            },
                            data: Secret::new(payload),
                            signature,
                        },
                        unlock(&k, pw)?,
                    )
                    .await?,
                )
            }
        })
        .await?;
    Ok(Json(VerifyResponse {
        signature_valid: valid,
    }))
}

// ---------------------------------------------------------------------------------------------
// Encrypt, decrypt.

/// Encrypt.
#[utoipa::path(post, path = "/v1/encrypt", tag = "crypto", request_body = EncryptBody,
    responses((status = 200, body = EncryptResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn encrypt(
    c: Caller,
    ApiJson(body): ApiJson<EncryptBody>,
) -> ApiResult<Json<EncryptResponse>> {
    let r = body.encrypt_request;
    check_label(&r.encrypt_key_name)?;
    let payload = zeroize::Zeroizing::new(unb64("payload", &r.payload)?);
    let aad = match &r.additional_authentication_data {
        Some(a) => unb64("additionalAuthenticationData", a)?,
        None => Vec::new(),
    };
    let t = &c.tenant;
    let pw = &r.key_password;
    let (ct, choice) = t
        .with_key(&r.encrypt_key_name, |k| {
            let payload = payload.clone();
            let aad = aad.clone();
            async move {
                let choice = mech::cipher(r.cipher_algorithm, k.kind, None, r.tag_length, aad)?;
                match t
                    .call_unlocked(
                        Request::Encrypt {
                            key: k.public_side()?,
                            mechanism: choice.mechanism.clone(),
                            data: Secret::from_slice(&payload),
                        },
                        unlock(&k, pw)?,
                    )
                    .await?
                {
                    Response::Encrypted { ciphertext } => Ok((ciphertext, choice)),
                    other => Err(unexpected(&other)),
                }
            }
        })
        .await?;
    let (without, mac) = match choice.tag_len {
        Some(n) if ct.len() >= n => {
            let (a, b) = ct.split_at(ct.len() - n);
            (Some(b64(a)), Some(b64(b)))
        }
        _ => (None, None),
    };
    Ok(Json(EncryptResponse {
        encrypted_payload: b64(&ct),
        encrypted_payload_without_message_authentication_code: without,
        initialization_vector: choice.iv.as_deref().map(b64),
        message_authentication_code: mac,
    }))
}

/// Decrypt now.
#[utoipa::path(post, path = "/v1/synchronousDecrypt", tag = "crypto", request_body = DecryptBody,
    responses((status = 200, body = DecryptResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_decrypt(
    State(app): State<Arc<App>>,
    c: Caller,
    ApiJson(body): ApiJson<DecryptBody>,
) -> ApiResult<HttpResponse> {
    let r = body.decrypt_request;
    no_approvals(&r.signed_approvals)?;
    check_label(&r.decrypt_key_name)?;
    let ct = unb64("encryptedPayload", &r.encrypted_payload)?;
    let iv = match &r.initialization_vector {
        Some(v) => Some(unb64("initializationVector", v)?),
        None => None,
    };
    let aad = match &r.additional_authentication_data {
        Some(a) => unb64("additionalAuthenticationData", a)?,
        None => Vec::new(),
    };
    let t = &c.tenant;
    let pw = &r.key_password;
    let result = t
        .with_key(&r.decrypt_key_name, |k| {
            let ct = ct.clone();
            let aad = aad.clone();
            let iv = iv.clone();
            async move {
                let needs_iv = matches!(
                    r.cipher_algorithm,
                    CipherAlgorithm::AesGcm
                        | CipherAlgorithm::Aes
                        | CipherAlgorithm::AesCbcNoPadding
                        | CipherAlgorithm::AesCtr
                        | CipherAlgorithm::ChaCha20Aead
                );
                if needs_iv && iv.is_none() {
                    return Err(ApiError::invalid(format!(
                        "initializationVector is required for {}",
                        r.cipher_algorithm.as_str()
                    )));
                }
                let choice = mech::cipher(r.cipher_algorithm, k.kind, iv, r.tag_length, aad)?;
                match t
                    .call_unlocked(
                        Request::Decrypt {
                            key: k.private_side()?,
                            mechanism: choice.mechanism,
                            data: ct,
                        },
                        unlock(&k, pw)?,
                    )
                    .await?
                {
                    Response::Decrypted { plaintext } => Ok(plaintext),
                    other => Err(unexpected(&other)),
                }
            }
        })
        .await;
    let outcome = match &result {
        Ok(_) => Outcome::Executed(None),
        Err(e) => Outcome::Failed(e.clone()),
    };
    let id = app
        .requests
        .record(t, "Decrypt", Some(&r.decrypt_key_name), outcome)
        .await;
    let pt = result?;
    Ok(with_request_id(
        id,
        Json(DecryptResponse {
            payload: b64(pt.expose()),
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// Wrap, unwrap, block, unblock.

/// Wrap a key.
#[utoipa::path(post, path = "/v1/wrap", tag = "crypto", request_body = WrapBody,
    responses((status = 200, body = WrapResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn wrap(c: Caller, ApiJson(body): ApiJson<WrapBody>) -> ApiResult<Json<WrapResponse>> {
    let r = body.wrap_key_request;
    check_label(&r.key_to_be_wrapped)?;
    check_label(&r.wrap_key_name)?;
    let t = &c.tenant;
    let target = t.key(&r.key_to_be_wrapped).await?;
    let target_h = target.private_side()?;
    let target_pw = unlock(&target, &r.key_to_be_wrapped_password)?;
    let pw = &r.wrap_key_password;
    let wrapped = t
        .with_key(&r.wrap_key_name, |k| {
            let method = r.wrap_method;
            let mut passwords = target_pw.clone();
            async move {
                let m = mech::wrap_mechanism(method, k.kind)?;
                passwords.extend(unlock(&k, pw)?);
                match t
                    .call_unlocked(
                        Request::WrapKey {
                            wrapping_key: k.public_side()?,
                            mechanism: m,
                            target: target_h,
                        },
                        passwords,
                    )
                    .await?
                {
                    Response::Wrapped { wrapped } => Ok(wrapped),
                    other => Err(unexpected(&other)),
                }
            }
        })
        .await?;
    Ok(Json(WrapResponse {
        wrapped_key: b64(&wrapped),
    }))
}

/// Unwrap (import) a wrapped key now.
#[utoipa::path(post, path = "/v1/synchronousUnwrap", tag = "crypto", request_body = UnwrapBody,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody),
        (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_unwrap(
    State(app): State<Arc<App>>,
    c: Caller,
    ApiJson(body): ApiJson<UnwrapBody>,
) -> ApiResult<HttpResponse> {
    let r = body.unwrap_key_request;
    no_approvals(&r.signed_approvals)?;
    check_label(&r.label)?;
    check_label(&r.unwrap_key_name)?;
    let wrapped = unb64("wrappedKey", &r.wrapped_key)?;
    let t = &c.tenant;
    let name_taken = || {
        ApiError::new(
            code::IN_HSM,
            format!("Error unwrapping key: a key named {:?} exists", r.label),
        )
    };
    if exists(t, &r.label).await? {
        return Err(name_taken());
    }
    let (class, ckk) = mech::unwrapped_kind(r.wrap_method)?;
    let a = r.attributes.clone().unwrap_or_default();
    let mut tm = base_template(&r.label, None, &a, true)
        .with_ulong(ck::CKA_CLASS, class)
        .with_ulong(ck::CKA_KEY_TYPE, ckk)
        .with_ulong(ck::CKA_TRESOR_UNIQUE_LABEL, ck::UNIQUE_KEY_NAME);
    for (ty, v) in [
        (ck::CKA_DECRYPT, a.decrypt),
        (ck::CKA_SIGN, a.sign),
        (ck::CKA_UNWRAP, a.unwrap),
        (ck::CKA_DERIVE, a.derive),
    ] {
        tm = bool_attr(tm, ty, v);
    }
    if class == ck::CKO_SECRET_KEY {
        for (ty, v) in [
            (ck::CKA_ENCRYPT, a.encrypt),
            (ck::CKA_VERIFY, a.verify),
            (ck::CKA_WRAP, a.wrap),
        ] {
            tm = bool_attr(tm, ty, v);
        }
    }
    if let Some(p) = policy_bytes(&r.policy)? {
        tm = tm.with_bytes(ck::CKA_TRESOR_POLICY, &p);
    }
    let pw = &r.unwrap_key_password;
    let result = t
        .with_key(&r.unwrap_key_name, |k| {
            let wrapped = wrapped.clone();
            let tm = tm.clone();
            async move {
                let m = mech::wrap_mechanism(r.wrap_method, k.kind)?;
                match t
                    .call_unlocked(
                        Request::UnwrapKey {
                            unwrapping_key: k.private_side()?,
                            mechanism: m,
                            wrapped,
                            template: tm,
                        },
                        unlock(&k, pw)?,
                    )
                    .await?
                {
                    Response::Unwrapped { .. } => Ok(()),
                    other => Err(unexpected(&other)),
                }
            }
        })
        .await;
    t.forget(&r.label);
    // Securosys answers an existing name on unwrap with 701.
    let result = result.map_err(|e| {
        if e.code == code::KEY_ALREADY_EXISTING {
            name_taken()
        } else {
            e
        }
    });
    let outcome = match &result {
        Ok(()) => Outcome::Executed(None),
        Err(e) => Outcome::Failed(e.clone()),
    };
    let id = app
        .requests
        .record(t, "UnWrap", Some(&r.label), outcome)
        .await;
    result?;
    Ok(with_request_id(id, ()))
}

async fn block_or_unblock(
    app: &App,
    t: &Tenant,
    label: &str,
    password: &Password,
    block: bool,
) -> ApiResult<HttpResponse> {
    check_label(label)?;
    let result = t
        .with_key(label, |k| async move {
            let key = k.private_side()?;
            let req = if block {
                Request::BlockKey { key }
            } else {
                Request::UnblockKey { key }
            };
            match t.call_unlocked(req, unlock(&k, password)?).await? {
                Response::KeyBlocked {} | Response::KeyUnblocked {} => Ok(()),
                other => Err(unexpected(&other)),
            }
        })
        .await;
    let outcome = match &result {
        Ok(()) => Outcome::Executed(None),
        Err(e) => Outcome::Failed(e.clone()),
    };
    let kind = if block { "Block" } else { "UnBlock" };
    let id = app.requests.record(t, kind, Some(label), outcome).await;
    result?;
    Ok(with_request_id(id, ()))
}

/// Block a key now.
#[utoipa::path(post, path = "/v1/synchronousBlock", tag = "crypto", request_body = BlockBody,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_block(
    State(app): State<Arc<App>>,
    c: Caller,
    ApiJson(body): ApiJson<BlockBody>,
) -> ApiResult<HttpResponse> {
    let r = body.block_request;
    no_approvals(&r.signed_approvals)?;
    block_or_unblock(&app, &c.tenant, &r.block_key_name, &r.key_password, true).await
}

/// Unblock a key now.
#[utoipa::path(post, path = "/v1/synchronousUnblock", tag = "crypto", request_body = UnblockBody,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_unblock(
    State(app): State<Arc<App>>,
    c: Caller,
    ApiJson(body): ApiJson<UnblockBody>,
) -> ApiResult<HttpResponse> {
    let r = body.unblock_request;
    no_approvals(&r.signed_approvals)?;
    block_or_unblock(&app, &c.tenant, &r.unblock_key_name, &r.key_password, false).await
}

/// Change the approval policy of a key now.
#[utoipa::path(post, path = "/v1/synchronousModify", tag = "crypto", request_body = ModifyBody,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody),
        (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn synchronous_modify(
    State(app): State<Arc<App>>,
    c: Caller,
    ApiJson(body): ApiJson<ModifyBody>,
) -> ApiResult<HttpResponse> {
    let r = body.modify_request;
    no_approvals(&r.signed_approvals)?;
    check_label(&r.modify_key_name)?;
    let policy = match policy_bytes(&Some(r.policy.clone()))? {
        Some(p) => p,
        None => return Err(ApiError::invalid("policy must be an object")),
    };
    let t = &c.tenant;
    let pw = &r.key_password;
    let result = t
        .with_key(&r.modify_key_name, |k| {
            let policy = policy.clone();
            async move {
                let key = k.private_side()?;
                match t
                    .call_unlocked(Request::ModifyPolicy { key, policy }, unlock(&k, pw)?)
                    .await?
                {
                    Response::PolicyModified {} => Ok(()),
                    other => Err(unexpected(&other)),
                }
            }
        })
        .await;
    let outcome = match &result {
        Ok(()) => Outcome::Executed(None),
        Err(e) => Outcome::Failed(e.clone()),
    };
    let id = app
        .requests
        .record(t, "Modify", Some(&r.modify_key_name), outcome)
        .await;
    result?;
    Ok(with_request_id(id, ()))
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// A request's status and result.
#[utoipa::path(get, path = "/v1/request/{id}", tag = "requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = RequestStatusResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get_request(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestStatusResponse>> {
    let row = app.requests.get(&c.tenant, &id).await?;
    let approvals: Vec<String> = serde_json::from_slice(&row.approvals_json).unwrap_or_default();
    Ok(Json(RequestStatusResponse {
        id: row.id,
        status: row.status,
        execution_time: row.executed.map(iso),
        approved_by: approvals,
        not_yet_approved_by: Vec::new(),
        rejected_by: Vec::new(),
        result: row.result.map(|r| String::from_utf8_lossy(&r).into_owned()),
    }))
}

/// Cancel a pending request.
#[utoipa::path(delete, path = "/v1/request/{id}", tag = "requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn cancel_request(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<()> {
    app.requests.cancel(&c.tenant, &id).await
}

/// Unknown paths: 404 with the Securosys body.
pub async fn not_found(_headers: HeaderMap) -> HttpResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        Json(ApiError::new(code::RESOURCE_NOT_FOUND, "no such endpoint").body()),
    )
        .into_response()
}

/// A known path with another method: 405 with the Securosys body.
pub async fn method_not_allowed() -> HttpResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        Json(
            ApiError::new(
                code::UNSUPPORTED_OPERATION,
                "method not allowed on this path",
            )
            .body(),
        ),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Asynchronous entry points. Without the approval workflow (licence without TSB_ENGINE), the
// TSB forwards them to the synchronous code: the request runs now, is recorded, and the client
// gets HTTP 201 with its id and polls `/v1/request/{id}`.

fn request_id_of(r: &HttpResponse) -> ApiResult<String> {
    r.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::internal("no request id"))
}

fn created(body: impl serde::Serialize) -> HttpResponse {
    (axum::http::StatusCode::CREATED, Json(body)).into_response()
}

/// The asynchronous form of an approval-capable operation: it runs now, through the synchronous
/// handler, and answers 201 with the request id (the operation's outcome is the request's
/// `result`). One handler per path, so that each has its own OpenAPI entry.
macro_rules! async_form {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $body:ty, $sync:ident, $id:ident { $field:ident }) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "crypto", request_body = $body,
            responses((status = 201, body = $id), (status = "4XX", body = crate::error::ErrorBody),
                (status = "5XX", body = crate::error::ErrorBody)))]
        pub async fn $name(
            app: State<Arc<App>>,
            c: Caller,
            body: ApiJson<$body>,
        ) -> ApiResult<HttpResponse> {
            let r = $sync(app, c, body).await?;
            Ok(created($id {
                $field: request_id_of(&r)?,
            }))
        }
    };
}

async_form!(
    /// Sign (asynchronous form: runs now, answers 201 with the request id; the signature is the
    /// request's `result`).
    sign_async, "/v1/sign", SignBody, synchronous_sign, SignRequestId { sign_request_id }
);
async_form!(
    /// Unwrap (asynchronous form).
    unwrap_async, "/v1/unwrap", UnwrapBody, synchronous_unwrap, UnwrapRequestId { unwrap_request_id }
);
async_form!(
    /// Block (asynchronous form).
    block_async, "/v1/block", BlockBody, synchronous_block, BlockRequestId { block_key_request_id }
);
async_form!(
    /// Modify (asynchronous form).
    modify_async, "/v1/modify", ModifyBody, synchronous_modify, ModifyRequestId { modify_key_request_id }
);
async_form!(
    /// Unblock (asynchronous form).
    unblock_async, "/v1/unblock", UnblockBody, synchronous_unblock,
    UnblockRequestId { unblock_key_request_id }
);

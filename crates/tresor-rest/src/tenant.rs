//! A tenant: one partition reached through one [`Transport`], and the REST face's view of its
//! keys. A Securosys key name is the `CKA_LABEL` shared by a key pair's two halves (or one
//! secret key, and the certificate stored with it); [`KeyRef`] holds their handles and the
//! public facts the face needs to shape requests (algorithm, sizes). Handles are cached per
//! label and dropped when the engine says a handle is stale, when the key is deleted, or when
//! a key of that name is created.
//!
//! Nothing here holds key material: records carry public halves only.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::Value;
use tresor_client::transport::{AsyncTransport, Transport};
use tresor_proto::{Request, Response, Template};

use crate::auth::ApiKeys;
use crate::error::{ApiError, ApiResult};

/// PKCS#11 numbers the face uses: the shared `tresor-ck` crate (the engine's numbers), and the
/// unique-label conditions the face sets.
pub mod ck {
    pub use tresor_ck::*;

    /// `CKA_TRESOR_UNIQUE_LABEL` for a new key name: no key or certificate of that name.
    pub const UNIQUE_KEY_NAME: u64 = (1 << CKO_CERTIFICATE)
        | (1 << CKO_PUBLIC_KEY)
        | (1 << CKO_PRIVATE_KEY)
        | (1 << CKO_SECRET_KEY);
    /// `CKA_TRESOR_UNIQUE_LABEL` for a private or secret key added to a name that may hold a
    /// public key or certificate already.
    pub const UNIQUE_SECRET_HALF: u64 = (1 << CKO_PRIVATE_KEY) | (1 << CKO_SECRET_KEY);
    /// `CKA_TRESOR_UNIQUE_LABEL` for a public key imported under a name.
    pub const UNIQUE_PUBLIC_HALF: u64 = 1 << CKO_PUBLIC_KEY;
}

/// What kind of key a name refers to (from the engine's record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(u32),
    /// ECDSA with the field size in bytes.
    Ec(usize),
    /// EdDSA.
    Ed,
    /// AES.
    Aes,
    /// HMAC (generic secret).
    Hmac,
    /// ChaCha20.
    ChaCha20,
    /// ML-DSA.
    MlDsa,
    /// ML-KEM.
    MlKem,
    /// SLH-DSA.
    SlhDsa,
    /// Anything else (certificates only, …).
    Other,
}

/// The objects stored under one key name.
#[derive(Debug, Clone)]
pub struct KeyRef {
    /// The name.
    pub label: String,
    /// Private key handle.
    pub private: Option<i64>,
    /// Public key handle.
    pub public: Option<i64>,
    /// Secret key handle.
    pub secret: Option<i64>,
    /// Certificate handle.
    pub cert: Option<i64>,
    /// The key's kind.
    pub kind: KeyKind,
}

impl KeyRef {
    /// The handle that signs, decrypts and unwraps (private or secret key).
    pub fn private_side(&self) -> ApiResult<i64> {
        self.private.or(self.secret).ok_or_else(|| {
            ApiError::new(
                crate::error::code::OPERATION_FORBIDDEN_FOR_KEY,
                format!("{:?} has no private or secret key", self.label),
            )
        })
    }

    /// The handle that verifies, encrypts and wraps (public or secret key).
    pub fn public_side(&self) -> ApiResult<i64> {
        self.public.or(self.secret).ok_or_else(|| {
            ApiError::new(
                crate::error::code::OPERATION_FORBIDDEN_FOR_KEY,
                format!("{:?} has no public or secret key", self.label),
            )
        })
    }

    /// Every handle stored under the name.
    pub fn handles(&self) -> Vec<i64> {
        [self.private, self.public, self.secret, self.cert]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The handle whose record and attestation describe the key.
    pub fn main(&self) -> Option<i64> {
        self.private.or(self.secret).or(self.public)
    }
}

/// Which object classes [`Tenant::find`] reports.
fn class_of(record: &Value) -> Option<u64> {
    Some(match record.get("class")?.as_str()? {
        "PrivateKey" => ck::CKO_PRIVATE_KEY,
        "PublicKey" => ck::CKO_PUBLIC_KEY,
        "SecretKey" => ck::CKO_SECRET_KEY,
        "Certificate" => ck::CKO_CERTIFICATE,
        _ => return None,
    })
}

/// The key kind of a record (`alg` as the engine serialises it).
pub fn kind_of(record: &Value) -> KeyKind {
    let Some(alg) = record.get("alg") else {
        return KeyKind::Other;
    };
    match alg {
        Value::String(s) => match s.as_str() {
            "Rsa" => KeyKind::Rsa(
                record
                    .pointer("/public/modulus_bits")
                    .and_then(Value::as_u64)
                    .and_then(|b| u32::try_from(b).ok())
                    .unwrap_or(0),
            ),
            "Aes" => KeyKind::Aes,
            "GenericSecret" => KeyKind::Hmac,
            "ChaCha20" => KeyKind::ChaCha20,
            _ => KeyKind::Other,
        },
        Value::Object(m) => {
            if let Some(c) = m.get("Ec").and_then(Value::as_str) {
                KeyKind::Ec(match c {
                    "P384" | "BrainpoolP384r1" => 48,
                    "P521" => 66,
                    "BrainpoolP512r1" => 64,
                    _ => 32,
                })
            } else if m.contains_key("Ed") {
                KeyKind::Ed
            } else if m.contains_key("MlDsa") {
                KeyKind::MlDsa
            } else if m.contains_key("MlKem") {
                KeyKind::MlKem
            } else if m.contains_key("SlhDsa") {
                KeyKind::SlhDsa
            } else {
                KeyKind::Other
            }
        }
        _ => KeyKind::Other,
    }
}

/// Bytes of a JSON array of numbers (how the engine's record serialises `Vec<u8>`).
pub fn bytes_of(v: Option<&Value>) -> Option<Vec<u8>> {
    v?.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect()
}

/// A tenant (one partition).
pub struct Tenant {
    /// Tenant name (JWT `tenant` claim).
    pub name: String,
    /// The partition it is bound to.
    pub partition: String,
    /// API keys of this tenant, by role.
    pub api_keys: ApiKeys,
    /// Client-certificate subjects (common names) that authenticate as this tenant.
    pub mtls_names: Vec<String>,
    transport: Arc<dyn Transport>,
    fast: Option<Arc<dyn AsyncTransport>>,
    /// Blocking calls in flight at once: the client library keeps this many idle connections,
    /// so more would open (and close) connections to the node under load.
    blocking: tokio::sync::Semaphore,
    keys: Mutex<HashMap<String, Arc<KeyRef>>>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.name)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

/// Most handles one name can have.
const MAX_PER_NAME: u32 = 16;

/// Blocking transport calls in flight per tenant (the client library's default idle pool).
const BLOCKING_CALLS: usize = 8;

/// Most keys listed.
const MAX_LIST: u32 = 100_000;

impl Tenant {
    /// A tenant over `transport` (already logged in as the partition user).
    pub fn new(
        name: String,
        partition: String,
        transport: Arc<dyn Transport>,
        api_keys: ApiKeys,
        mtls_names: Vec<String>,
    ) -> Self {
        Tenant {
            name,
            partition,
            api_keys,
            mtls_names,
            transport,
            fast: None,
            blocking: tokio::sync::Semaphore::new(BLOCKING_CALLS),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Use `fast` for requests from async code (an in-process engine answers without a
    /// blocking thread); the blocking transport stays for blocking callers.
    pub fn with_async(mut self, fast: Arc<dyn AsyncTransport>) -> Self {
        self.fast = Some(fast);
        self
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Send one request on a blocking thread; engine errors are mapped.
    pub async fn call(&self, req: Request) -> ApiResult<Response> {
        self.call_raw(req)
            .await?
            .map_err(|e| ApiError::from_client(&e))
    }

    /// Send one request with key passwords (`Request::WithKeyPasswords`; none: a plain
    /// request), answering the inner request's answer. The engine checks the passwords.
    pub async fn call_unlocked(
        &self,
        req: Request,
        passwords: Vec<tresor_proto::KeyPassword>,
    ) -> ApiResult<Response> {
        if passwords.is_empty() {
            return self.call(req).await;
        }
        match self
            .call(Request::WithKeyPasswords {
                passwords,
                request: Box::new(req),
            })
            .await?
        {
            Response::WithKeyPasswords { response } => Ok(*response),
            other => Err(unexpected(&other)),
        }
    }

    /// As [`call_unlocked`](Self::call_unlocked), returning the client library's error as is.
    pub async fn call_raw_unlocked(
        &self,
        req: Request,
        passwords: Vec<tresor_proto::KeyPassword>,
    ) -> ApiResult<Result<Response, tresor_client::Error>> {
        if passwords.is_empty() {
            return self.call_raw(req).await;
        }
        Ok(self
            .call_raw(Request::WithKeyPasswords {
                passwords,
                request: Box::new(req),
            })
            .await?
            .map(|r| match r {
                Response::WithKeyPasswords { response } => *response,
                other => other,
            }))
    }

    /// Send one request on a blocking thread; the client library's error is returned as is.
    pub async fn call_raw(
        &self,
        req: Request,
    ) -> ApiResult<Result<Response, tresor_client::Error>> {
        if let Some(f) = &self.fast {
            return Ok(f.call_async(&req).await);
        }
        let _permit = self
            .blocking
            .acquire()
            .await
            .map_err(|e| ApiError::internal(format!("transport permits: {e}")))?;
        let t = self.transport.clone();
        tokio::task::spawn_blocking(move || t.call(&req))
            .await
            .map_err(ApiError::internal)
    }

    /// Forget the cached handles of `label`.
    pub fn forget(&self, label: &str) {
        self.keys.lock().remove(label);
    }

    /// The objects named `label` (cached).
    pub async fn key(&self, label: &str) -> ApiResult<Arc<KeyRef>> {
        if let Some(k) = self.keys.lock().get(label) {
            return Ok(k.clone());
        }
        let k = Arc::new(self.find(label).await?);
        let mut cache = self.keys.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(label.to_owned(), k.clone());
        Ok(k)
    }

    /// Run `f` with the key's handles; if the engine says a handle is stale (the key was
    /// deleted or replaced by another client), look the name up again once and retry.
    pub async fn with_key<T, F, Fut>(&self, label: &str, f: F) -> ApiResult<T>
    where
        F: Fn(Arc<KeyRef>) -> Fut,
        Fut: std::future::Future<Output = ApiResult<T>>,
    {
        let k = self.key(label).await?;
        let named = k.clone();
        match f(k).await {
            Err(e) if e.code == crate::error::code::KEY_NOT_EXISTENT => {
                self.forget(label);
                let k = self.key(label).await?;
                let named = k.clone();
                f(k).await.map_err(|e| e.naming(&named.handles(), label))
            }
            other => other.map_err(|e| e.naming(&named.handles(), label)),
        }
    }

    /// Look a name up in the engine.
    async fn find(&self, label: &str) -> ApiResult<KeyRef> {
        crate::handlers::check_label(label)?;
        let handles = match self
            .call(Request::FindObjects {
                template: Template::new().with_bytes(ck::CKA_LABEL, label.as_bytes()),
                max: MAX_PER_NAME,
            })
            .await?
        {
            Response::Objects { objects } => objects,
            other => return Err(unexpected(&other)),
        };
        let mut k = KeyRef {
            label: label.to_owned(),
            private: None,
            public: None,
            secret: None,
            cert: None,
            kind: KeyKind::Other,
        };
        for h in handles {
            let rec = self.record(h).await?.0;
            let slot = match class_of(&rec) {
                Some(ck::CKO_PRIVATE_KEY) => &mut k.private,
                Some(ck::CKO_PUBLIC_KEY) => &mut k.public,
                Some(ck::CKO_SECRET_KEY) => &mut k.secret,
                Some(ck::CKO_CERTIFICATE) => &mut k.cert,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(h);
                if k.kind == KeyKind::Other {
                    k.kind = kind_of(&rec);
                }
            }
        }
        if k.private.is_none() && k.public.is_none() && k.secret.is_none() && k.cert.is_none() {
            return Err(ApiError::no_key(label));
        }
        Ok(k)
    }

    /// An object's record (JSON, no secret material) and usage count.
    pub async fn record(&self, handle: i64) -> ApiResult<(Value, i64)> {
        match self.call(Request::Record { object: handle }).await? {
            Response::Record {
                record_json,
                usage_count,
            } => Ok((
                serde_json::from_slice(&record_json).map_err(ApiError::internal)?,
                usage_count,
            )),
            other => Err(unexpected(&other)),
        }
    }

    /// Every handle of one class.
    pub async fn handles_of_class(&self, class: u64) -> ApiResult<Vec<i64>> {
        match self
            .call(Request::FindObjects {
                template: Template::new().with_ulong(ck::CKA_CLASS, class),
                max: MAX_LIST,
            })
            .await?
        {
            Response::Objects { objects } => Ok(objects),
            other => Err(unexpected(&other)),
        }
    }

    /// The label of an object.
    pub async fn label_of(&self, handle: i64) -> ApiResult<String> {
        match self
            .call(Request::GetAttributes {
                object: handle,
                types: vec![ck::CKA_LABEL],
            })
            .await?
        {
            Response::Attributes { values } => match values.first() {
                Some(tresor_proto::AttrRead::Value(v)) => {
                    Ok(String::from_utf8_lossy(v.expose()).into_owned())
                }
                _ => Ok(String::new()),
            },
            other => Err(unexpected(&other)),
        }
    }
}

/// The key password to present for `k` (on its private or secret key), if one was given.
pub fn unlock(
    k: &KeyRef,
    password: &crate::dto::Password,
) -> ApiResult<Vec<tresor_proto::KeyPassword>> {
    match password.as_ref().and_then(|p| p.bytes()) {
        None => Ok(Vec::new()),
        Some(p) => Ok(vec![tresor_proto::KeyPassword {
            key: k.main().ok_or_else(|| ApiError::no_key(&k.label))?,
            password: tresor_proto::Secret::from_slice(p),
        }]),
    }
}

/// An answer of the wrong kind: the node broke the protocol.
pub fn unexpected(r: &Response) -> ApiError {
    ApiError::internal(format!(
        "unexpected answer from the HSM: code {:#x}",
        r.code()
    ))
}

/// Standard base64.
pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decode standard base64 (also accepting missing padding and embedded newlines) or fail with
/// 612 naming the field.
pub fn unb64(field: &str, s: &str) -> ApiResult<Vec<u8>> {
    if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(s) {
        return Ok(b); // the common case: no copy without whitespace
    }
    let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cleaned))
        .map_err(|_| {
            ApiError::new(
                crate::error::code::INVALID_PAYLOAD,
                format!("{field} is not valid base64"),
            )
        })
}

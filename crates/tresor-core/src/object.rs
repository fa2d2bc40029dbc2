//! Objects and the PKCS#11 attribute model.
//!
//! An [`ObjectRecord`] is everything the engine knows about an object except its secret
//! material; both are sealed together in the store. The rules that make PKCS#11 keys safe live
//! here and nowhere else:
//!
//! * `sensitive` only goes false→true, `extractable` only true→false, `wrap_with_trusted` only
//!   false→true, `copyable`/`destroyable` only true→false; `modifiable` is fixed at creation;
//! * `always_sensitive` / `never_extractable` are maintained by the engine, never set by callers;
//! * a usage flag can only be true where the key type can do that operation;
//! * a key with an approval policy is never extractable.

use serde::{Deserialize, Serialize};

use crate::ck::*;
use crate::crypto::{KeyAlg, Mechanism, MlDsaParam, MlKemParam, PublicInfo, SlhDsaParam};
use crate::error::{Error, Result, Rv};
use crate::policy::Policy;
use crate::template::{AttrValue, Template};

/// Object id within a partition (random, non-zero).
pub type ObjectId = i64;

/// `CKO_*` object classes the engine stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectClass {
    Data,
    Certificate,
    PublicKey,
    PrivateKey,
    SecretKey,
}

impl ObjectClass {
    /// From a `CKO_*` value.
    pub fn from_ck(v: u64) -> Result<Self> {
        Ok(match v {
            CKO_DATA => ObjectClass::Data,
            CKO_CERTIFICATE => ObjectClass::Certificate,
            CKO_PUBLIC_KEY => ObjectClass::PublicKey,
            CKO_PRIVATE_KEY => ObjectClass::PrivateKey,
            CKO_SECRET_KEY => ObjectClass::SecretKey,
            _ => {
                return Err(Error::new(
                    Rv::AttributeValueInvalid,
                    format!("object class {v:#x} is not supported"),
                ))
            }
        })
    }

    /// The `CKO_*` value.
    pub fn ck(self) -> u64 {
        match self {
            ObjectClass::Data => CKO_DATA,
            ObjectClass::Certificate => CKO_CERTIFICATE,
            ObjectClass::PublicKey => CKO_PUBLIC_KEY,
            ObjectClass::PrivateKey => CKO_PRIVATE_KEY,
            ObjectClass::SecretKey => CKO_SECRET_KEY,
        }
    }

    /// True for key classes.
    pub fn is_key(self) -> bool {
        matches!(
            self,
            ObjectClass::PublicKey | ObjectClass::PrivateKey | ObjectClass::SecretKey
        )
    }

    /// True for classes that hold secret material.
    pub fn has_secret(self) -> bool {
        matches!(self, ObjectClass::PrivateKey | ObjectClass::SecretKey)
    }
}

/// How a key came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Generated inside the engine.
    Generated,
    /// Imported in plain form (`C_CreateObject`, REST import).
    Imported,
    /// Unwrapped from a wrapped blob.
    Unwrapped,
    /// Derived from another key.
    Derived,
    /// Copied from another object.
    Copied,
}

/// Usage operations gated by a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Derive,
    Encapsulate,
    Decapsulate,
}

impl Usage {
    /// The `CKA_*` flag gating this operation.
    pub fn attr(self) -> u64 {
        match self {
            Usage::Encrypt => CKA_ENCRYPT,
            Usage::Decrypt => CKA_DECRYPT,
            Usage::Sign => CKA_SIGN,
            Usage::Verify => CKA_VERIFY,
            Usage::Wrap => CKA_WRAP,
            Usage::Unwrap => CKA_UNWRAP,
            Usage::Derive => CKA_DERIVE,
            Usage::Encapsulate => CKA_ENCAPSULATE,
            Usage::Decapsulate => CKA_DECAPSULATE,
        }
    }

    /// Name for messages and audit entries.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Encrypt => "encrypt",
            Usage::Decrypt => "decrypt",
            Usage::Sign => "sign",
            Usage::Verify => "verify",
            Usage::Wrap => "wrap",
            Usage::Unwrap => "unwrap",
            Usage::Derive => "derive",
            Usage::Encapsulate => "encapsulate",
            Usage::Decapsulate => "decapsulate",
        }
    }
}

const ALL_USAGES: [Usage; 9] = [
    Usage::Encrypt,
    Usage::Decrypt,
    Usage::Sign,
    Usage::Verify,
    Usage::Wrap,
    Usage::Unwrap,
    Usage::Derive,
    Usage::Encapsulate,
    Usage::Decapsulate,
];

/// The boolean attributes of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Flags {
    pub token: bool,
    pub private: bool,
    pub modifiable: bool,
    pub copyable: bool,
    pub destroyable: bool,
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
    pub local: bool,
    pub trusted: bool,
    pub wrap_with_trusted: bool,
    pub encrypt: bool,
    pub decrypt: bool,
    pub sign: bool,
    pub verify: bool,
    pub wrap: bool,
    pub unwrap: bool,
    pub derive: bool,
    pub encapsulate: bool,
    pub decapsulate: bool,
}

impl Flags {
    /// The flag for a usage.
    pub fn allows(&self, u: Usage) -> bool {
        match u {
            Usage::Encrypt => self.encrypt,
            Usage::Decrypt => self.decrypt,
            Usage::Sign => self.sign,
            Usage::Verify => self.verify,
            Usage::Wrap => self.wrap,
            Usage::Unwrap => self.unwrap,
            Usage::Derive => self.derive,
            Usage::Encapsulate => self.encapsulate,
            Usage::Decapsulate => self.decapsulate,
        }
    }

    fn set_usage(&mut self, u: Usage, v: bool) {
        match u {
            Usage::Encrypt => self.encrypt = v,
            Usage::Decrypt => self.decrypt = v,
            Usage::Sign => self.sign = v,
            Usage::Verify => self.verify = v,
            Usage::Wrap => self.wrap = v,
            Usage::Unwrap => self.unwrap = v,
            Usage::Derive => self.derive = v,
            Usage::Encapsulate => self.encapsulate = v,
            Usage::Decapsulate => self.decapsulate = v,
        }
    }

    /// Look up a boolean attribute by `CKA_*` type.
    pub fn get(&self, ty: u64) -> Option<bool> {
        Some(match ty {
            CKA_TOKEN => self.token,
            CKA_PRIVATE => self.private,
            CKA_MODIFIABLE => self.modifiable,
            CKA_COPYABLE => self.copyable,
            CKA_DESTROYABLE => self.destroyable,
            CKA_SENSITIVE => self.sensitive,
            CKA_EXTRACTABLE => self.extractable,
            CKA_ALWAYS_SENSITIVE => self.always_sensitive,
            CKA_NEVER_EXTRACTABLE => self.never_extractable,
            CKA_LOCAL => self.local,
            CKA_TRUSTED => self.trusted,
            CKA_WRAP_WITH_TRUSTED => self.wrap_with_trusted,
            CKA_ENCRYPT => self.encrypt,
            CKA_DECRYPT => self.decrypt,
            CKA_SIGN => self.sign,
            CKA_VERIFY => self.verify,
            CKA_WRAP => self.wrap,
            CKA_UNWRAP => self.unwrap,
            CKA_DERIVE => self.derive,
            CKA_ENCAPSULATE => self.encapsulate,
            CKA_DECAPSULATE => self.decapsulate,
            CKA_SIGN_RECOVER | CKA_VERIFY_RECOVER | CKA_ALWAYS_AUTHENTICATE => false,
            _ => return None,
        })
    }
}

/// A certificate object's public content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CertInfo {
    pub value: Vec<u8>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
    pub category: u64,
}

/// A data object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DataInfo {
    pub application: Vec<u8>,
    pub object_id: Vec<u8>,
    pub value: Vec<u8>,
}

/// Everything about an object except its secret material. Sealed in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub class: ObjectClass,
    pub alg: Option<KeyAlg>,
    pub label: String,
    pub ckaid: Vec<u8>,
    pub uuid: String,
    /// Unix seconds.
    pub created: i64,
    pub flags: Flags,
    pub origin: Origin,
    pub key_gen_mechanism: Option<u64>,
    /// Secret keys: length of the value in bytes.
    pub value_len: Option<u64>,
    /// Asymmetric keys: the public half.
    pub public: Option<PublicInfo>,
    pub subject: Vec<u8>,
    pub start_date: Vec<u8>,
    pub end_date: Vec<u8>,
    pub cert: Option<CertInfo>,
    pub data: Option<DataInfo>,
    /// Smart Key Attribute policy; `None` = not an SKA key (and never becomes one).
    pub policy: Option<Policy>,
    /// The key's password (private and secret keys), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<KeyPasswordState>,
    /// Keys: `CKA_ALLOWED_MECHANISMS`, the `CKM_*` values the key may be used with; empty = any.
    /// Set at creation only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_mechanisms: Vec<u64>,
}

/// A key password as the engine keeps it, sealed in the key's record: the Argon2id hash and
/// the state of the lockout. The password itself is never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPasswordState {
    /// Argon2id PHC string.
    pub phc: String,
    /// Consecutive wrong passwords.
    #[serde(default)]
    pub failures: u32,
    /// While `failures` is at the limit: Unix seconds until which no password is checked.
    #[serde(default)]
    pub locked_until: i64,
}

impl KeyPasswordState {
    /// A fresh state for a password hash.
    pub fn new(phc: String) -> Self {
        KeyPasswordState {
            phc,
            failures: 0,
            locked_until: 0,
        }
    }
}

impl std::fmt::Debug for KeyPasswordState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPasswordState")
            .field("failures", &self.failures)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

impl ObjectRecord {
    /// The `CKK_*` value of a key.
    pub fn ckk(&self) -> Option<u64> {
        self.alg.map(alg_to_ckk)
    }

    /// Whether `CKA_ALLOWED_MECHANISMS` lets the key be used with `m` (an empty list allows
    /// every mechanism the key type can do, as in SoftHSM and OpenSC).
    pub fn allows_mechanism(&self, m: &Mechanism) -> bool {
        self.allowed_mechanisms.is_empty()
            || m.ck_types()
                .iter()
                .any(|t| self.allowed_mechanisms.contains(t))
    }

    /// Whether the key is blocked (SKA).
    pub fn blocked(&self) -> bool {
        self.policy.as_ref().is_some_and(|p| p.key_status.blocked)
    }
}

/// `CKK_*` of a key algorithm.
pub fn alg_to_ckk(a: KeyAlg) -> u64 {
    match a {
        KeyAlg::Rsa => CKK_RSA,
        KeyAlg::Ec(_) => CKK_EC,
        KeyAlg::Ed(_) => CKK_EC_EDWARDS,
        KeyAlg::Aes => CKK_AES,
        KeyAlg::GenericSecret => CKK_GENERIC_SECRET,
        KeyAlg::ChaCha20 => CKK_CHACHA20,
        KeyAlg::MlDsa(_) => CKK_ML_DSA,
        KeyAlg::MlKem(_) => CKK_ML_KEM,
        KeyAlg::SlhDsa(_) => CKK_SLH_DSA,
    }
}

/// `CKA_PARAMETER_SET` of a post-quantum key.
pub fn parameter_set(a: KeyAlg) -> Option<u64> {
    Some(match a {
        KeyAlg::MlDsa(MlDsaParam::MlDsa44) => CKP_ML_DSA_44,
        KeyAlg::MlDsa(MlDsaParam::MlDsa65) => CKP_ML_DSA_65,
        KeyAlg::MlDsa(MlDsaParam::MlDsa87) => CKP_ML_DSA_87,
        KeyAlg::MlKem(MlKemParam::MlKem512) => CKP_ML_KEM_512,
        KeyAlg::MlKem(MlKemParam::MlKem768) => CKP_ML_KEM_768,
        KeyAlg::MlKem(MlKemParam::MlKem1024) => CKP_ML_KEM_1024,
        KeyAlg::SlhDsa(p) => match p {
            SlhDsaParam::Sha2_128s => CKP_SLH_DSA_SHA2_128S,
            SlhDsaParam::Sha2_128f => CKP_SLH_DSA_SHA2_128F,
            SlhDsaParam::Sha2_192s => CKP_SLH_DSA_SHA2_192S,
            SlhDsaParam::Sha2_192f => CKP_SLH_DSA_SHA2_192F,
            SlhDsaParam::Sha2_256s => CKP_SLH_DSA_SHA2_256S,
            SlhDsaParam::Sha2_256f => CKP_SLH_DSA_SHA2_256F,
            SlhDsaParam::Shake128s => CKP_SLH_DSA_SHAKE_128S,
            SlhDsaParam::Shake128f => CKP_SLH_DSA_SHAKE_128F,
            SlhDsaParam::Shake192s => CKP_SLH_DSA_SHAKE_192S,
            SlhDsaParam::Shake192f => CKP_SLH_DSA_SHAKE_192F,
            SlhDsaParam::Shake256s => CKP_SLH_DSA_SHAKE_256S,
            SlhDsaParam::Shake256f => CKP_SLH_DSA_SHAKE_256F,
        },
        _ => return None,
    })
}

/// The PQC algorithm for a key type and `CKA_PARAMETER_SET`.
pub fn alg_from_parameter_set(ckk: u64, set: u64) -> Result<KeyAlg> {
    let all = [
        KeyAlg::MlDsa(MlDsaParam::MlDsa44),
        KeyAlg::MlDsa(MlDsaParam::MlDsa65),
        KeyAlg::MlDsa(MlDsaParam::MlDsa87),
        KeyAlg::MlKem(MlKemParam::MlKem512),
        KeyAlg::MlKem(MlKemParam::MlKem768),
        KeyAlg::MlKem(MlKemParam::MlKem1024),
        KeyAlg::SlhDsa(SlhDsaParam::Sha2_128s),
        KeyAlg::SlhDsa(SlhDsaParam::Sha2_128f),
        KeyAlg::SlhDsa(SlhDsaParam::Sha2_192s),
        KeyAlg::SlhDsa(SlhDsaParam::Sha2_192f),
        KeyAlg::SlhDsa(SlhDsaParam::Sha2_256s),
        KeyAlg::SlhDsa(SlhDsaParam::Sha2_256f),
        KeyAlg::SlhDsa(SlhDsaParam::Shake128s),
        KeyAlg::SlhDsa(SlhDsaParam::Shake128f),
        KeyAlg::SlhDsa(SlhDsaParam::Shake192s),
        KeyAlg::SlhDsa(SlhDsaParam::Shake192f),
        KeyAlg::SlhDsa(SlhDsaParam::Shake256s),
        KeyAlg::SlhDsa(SlhDsaParam::Shake256f),
    ];
    all.into_iter()
        .find(|a| alg_to_ckk(*a) == ckk && parameter_set(*a) == Some(set))
        .ok_or_else(|| {
            Error::new(
                Rv::AttributeValueInvalid,
                format!("parameter set {set} is not valid for key type {ckk:#x}"),
            )
        })
}

/// The operations a key of this algorithm and class can do at all.
pub fn capabilities(class: ObjectClass, alg: KeyAlg) -> &'static [Usage] {
    use ObjectClass::*;
    use Usage::*;
    match (class, alg) {
        (PrivateKey, KeyAlg::Rsa) => &[Sign, Decrypt, Unwrap],
        (PublicKey, KeyAlg::Rsa) => &[Verify, Encrypt, Wrap],
        (PrivateKey, KeyAlg::Ec(_)) => &[Sign, Derive],
        (PublicKey, KeyAlg::Ec(_)) => &[Verify],
        (PrivateKey, KeyAlg::Ed(_) | KeyAlg::MlDsa(_) | KeyAlg::SlhDsa(_)) => &[Sign],
        (PublicKey, KeyAlg::Ed(_) | KeyAlg::MlDsa(_) | KeyAlg::SlhDsa(_)) => &[Verify],
        (PrivateKey, KeyAlg::MlKem(_)) => &[Decapsulate, Unwrap],
        (PublicKey, KeyAlg::MlKem(_)) => &[Encapsulate, Wrap],
        (SecretKey, KeyAlg::Aes) => &[Encrypt, Decrypt, Wrap, Unwrap, Derive],
        (SecretKey, KeyAlg::ChaCha20) => &[Encrypt, Decrypt],
        (SecretKey, KeyAlg::GenericSecret) => &[Sign, Verify, Derive],
        _ => &[],
    }
}

/// Whether a key of `class` may carry the usage flag `u` at all. CKA_DERIVE is a common key
/// attribute (pkcs11-tool --usage-derive sets it on both halves of an ECDH pair); on a public
/// key it grants nothing, since a public key is never a base key.
fn class_may_carry(class: ObjectClass, u: Usage) -> bool {
    use Usage::*;
    match class {
        ObjectClass::SecretKey => !matches!(u, Encapsulate | Decapsulate),
        ObjectClass::PrivateKey => matches!(u, Sign | Decrypt | Unwrap | Derive | Decapsulate),
        ObjectClass::PublicKey => matches!(u, Verify | Encrypt | Wrap | Encapsulate | Derive),
        _ => false,
    }
}

/// The class a key algorithm allows for a class, or `KeyTypeInconsistent`.
pub fn check_class_alg(class: ObjectClass, alg: KeyAlg) -> Result<()> {
    let symmetric = matches!(alg, KeyAlg::Aes | KeyAlg::GenericSecret | KeyAlg::ChaCha20);
    let ok = match class {
        ObjectClass::SecretKey => symmetric,
        ObjectClass::PublicKey | ObjectClass::PrivateKey => !symmetric,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Rv::TemplateInconsistent,
            format!(
                "key type {:#x} is not valid for this object class",
                alg_to_ckk(alg)
            ),
        ))
    }
}

/// Attributes a caller may give when creating an object of this class (beyond which the
/// template is inconsistent). Key material attributes are accepted by the import path.
fn settable_at_creation(class: ObjectClass, ty: u64) -> bool {
    let common = matches!(
        ty,
        CKA_CLASS
            | CKA_TOKEN
            | CKA_PRIVATE
            | CKA_LABEL
            | CKA_MODIFIABLE
            | CKA_COPYABLE
            | CKA_DESTROYABLE
            | CKA_TRESOR_UNIQUE_LABEL
    );
    if common {
        return true;
    }
    match class {
        ObjectClass::Data => matches!(ty, CKA_APPLICATION | CKA_OBJECT_ID | CKA_VALUE),
        ObjectClass::Certificate => matches!(
            ty,
            CKA_CERTIFICATE_TYPE
                | CKA_TRUSTED
                | CKA_CERTIFICATE_CATEGORY
                | CKA_SUBJECT
                | CKA_ID
                | CKA_ISSUER
                | CKA_SERIAL_NUMBER
                | CKA_VALUE
                | CKA_START_DATE
                | CKA_END_DATE
        ),
        _ => {
            let key_common = matches!(
                ty,
                CKA_KEY_TYPE
                    | CKA_ID
                    | CKA_START_DATE
                    | CKA_END_DATE
                    | CKA_DERIVE
                    | CKA_SUBJECT
                    | CKA_TRESOR_POLICY
                    | CKA_ALLOWED_MECHANISMS
            ) || ALL_USAGES.iter().any(|u| u.attr() == ty)
                || (class.has_secret() && ty == CKA_TRESOR_KEY_PASSWORD);
            key_common
                || match class {
                    ObjectClass::PublicKey => matches!(
                        ty,
                        CKA_TRUSTED
                            | CKA_MODULUS
                            | CKA_MODULUS_BITS
                            | CKA_PUBLIC_EXPONENT
                            | CKA_EC_PARAMS
                            | CKA_EC_POINT
                            | CKA_VALUE
                            | CKA_PARAMETER_SET
                            | CKA_PUBLIC_KEY_INFO
                            | CKA_VERIFY_RECOVER
                    ),
                    ObjectClass::PrivateKey => matches!(
                        ty,
                        CKA_SENSITIVE
                            | CKA_EXTRACTABLE
                            | CKA_WRAP_WITH_TRUSTED
                            | CKA_ALWAYS_AUTHENTICATE
                            | CKA_MODULUS
                            | CKA_PUBLIC_EXPONENT
                            | CKA_PRIVATE_EXPONENT
                            | CKA_PRIME_1
                            | CKA_PRIME_2
                            | CKA_EXPONENT_1
                            | CKA_EXPONENT_2
                            | CKA_COEFFICIENT
                            | CKA_EC_PARAMS
                            | CKA_VALUE
                            | CKA_PARAMETER_SET
                            | CKA_TRESOR_PKCS8
                            | CKA_PUBLIC_KEY_INFO
                            | CKA_SIGN_RECOVER
                            | CKA_TRESOR_BLOCKED
                    ),
                    ObjectClass::SecretKey => matches!(
                        ty,
                        CKA_SENSITIVE
                            | CKA_EXTRACTABLE
                            | CKA_WRAP_WITH_TRUSTED
                            | CKA_TRUSTED
                            | CKA_VALUE
                            | CKA_VALUE_LEN
                            | CKA_CHECK_VALUE
                            | CKA_ALWAYS_AUTHENTICATE
                            | CKA_TRESOR_BLOCKED
                    ),
                    _ => false,
                }
        }
    }
}

/// Attributes only the engine sets: a caller giving them gets `CKR_ATTRIBUTE_READ_ONLY`.
fn engine_maintained(ty: u64) -> bool {
    matches!(
        ty,
        CKA_LOCAL
            | CKA_ALWAYS_SENSITIVE
            | CKA_NEVER_EXTRACTABLE
            | CKA_KEY_GEN_MECHANISM
            | CKA_UNIQUE_ID
            | CKA_TRESOR_USAGE_COUNT
            | CKA_TRESOR_CREATE_TIME
            | CKA_TRESOR_UUID
    )
}

/// Check that a creation/generation/unwrap template only names attributes that fit the class.
/// `material_allowed` is false for generation and unwrap (the engine makes the material).
pub fn check_creation_template(
    class: ObjectClass,
    t: &Template,
    material_allowed: bool,
) -> Result<()> {
    for ty in t.types() {
        if engine_maintained(ty) {
            return Err(Error::new(
                Rv::AttributeReadOnly,
                format!("attribute {ty:#x} is set by the token, not the caller"),
            ));
        }
        if !settable_at_creation(class, ty) {
            // A usage flag set to false on a class that cannot use it is harmless.
            if t.bool(ty) == Some(false) {
                continue;
            }
            return Err(Error::new(
                Rv::TemplateInconsistent,
                format!("attribute {ty:#x} does not apply to a {class:?} object"),
            ));
        }
        let is_material = matches!(
            ty,
            CKA_VALUE
                | CKA_PRIVATE_EXPONENT
                | CKA_PRIME_1
                | CKA_PRIME_2
                | CKA_EXPONENT_1
                | CKA_EXPONENT_2
                | CKA_COEFFICIENT
                | CKA_TRESOR_PKCS8
                | CKA_EC_POINT
                | CKA_PUBLIC_KEY_INFO
        ) || (class == ObjectClass::PublicKey && ty == CKA_MODULUS)
            || (class == ObjectClass::PrivateKey && ty == CKA_MODULUS);
        if is_material && !material_allowed && class.is_key() {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                format!(
                    "attribute {ty:#x} (key material) cannot be given when the token makes the key"
                ),
            ));
        }
    }
    if t.bool(CKA_TRUSTED) == Some(true) {
        return Err(Error::new(
            Rv::AttributeReadOnly,
            "only the security officer can set CKA_TRUSTED",
        ));
    }
    Ok(())
}

/// The most mechanisms `CKA_ALLOWED_MECHANISMS` may list (the catalogue has under 100).
pub const MAX_ALLOWED_MECHANISMS: usize = 256;

/// `CKA_ALLOWED_MECHANISMS` of a creation template: an array of `CK_MECHANISM_TYPE`, 8 bytes
/// each in the engine's byte order (the PKCS#11 library widens a 4-byte `CK_ULONG`). Absent or
/// empty = no restriction. Values the engine does not know are kept: they never match, and an
/// application that lists a mechanism of another token's reads its list back as it gave it.
pub fn allowed_mechanisms(t: &Template) -> Result<Vec<u64>> {
    let Some(raw) = t.bytes(CKA_ALLOWED_MECHANISMS) else {
        return Ok(Vec::new());
    };
    if raw.len() % 8 != 0 {
        return Err(Error::new(
            Rv::AttributeValueInvalid,
            format!(
                "CKA_ALLOWED_MECHANISMS is an array of 8-byte CK_MECHANISM_TYPE, got {} bytes",
                raw.len()
            ),
        ));
    }
    if raw.len() / 8 > MAX_ALLOWED_MECHANISMS {
        return Err(Error::new(
            Rv::AttributeValueInvalid,
            format!("CKA_ALLOWED_MECHANISMS lists more than {MAX_ALLOWED_MECHANISMS} mechanisms"),
        ));
    }
    let mut out = Vec::with_capacity(raw.len() / 8);
    for c in raw.chunks_exact(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        out.push(u64::from_ne_bytes(b));
    }
    Ok(out)
}

/// Compute the flags of a new key from its template, origin and algorithm.
///
/// Defaults: `token` false, `private` true for private/secret keys and false otherwise,
/// `modifiable` / `copyable` / `destroyable` true, `sensitive` true and `extractable` false for
/// private and secret keys. Usage flags: if the template names none, every operation the key
/// type can do is allowed; if it names any, the others are false (Securosys ≥ 2.1.3). A usage
/// flag set to true that the key type cannot do is `CKR_TEMPLATE_INCONSISTENT`.
pub fn new_key_flags(
    class: ObjectClass,
    alg: KeyAlg,
    t: &Template,
    origin: Origin,
) -> Result<Flags> {
    check_class_alg(class, alg)?;
    let caps = capabilities(class, alg);
    let secret = class.has_secret();
    let mut f = Flags {
        token: t.bool(CKA_TOKEN).unwrap_or(false),
        private: t.bool(CKA_PRIVATE).unwrap_or(secret),
        modifiable: t.bool(CKA_MODIFIABLE).unwrap_or(true),
        copyable: t.bool(CKA_COPYABLE).unwrap_or(true),
        destroyable: t.bool(CKA_DESTROYABLE).unwrap_or(true),
        sensitive: secret && t.bool(CKA_SENSITIVE).unwrap_or(true),
        extractable: secret && t.bool(CKA_EXTRACTABLE).unwrap_or(false),
        wrap_with_trusted: t.bool(CKA_WRAP_WITH_TRUSTED).unwrap_or(false),
        ..Flags::default()
    };
    let any_usage = ALL_USAGES.iter().any(|u| t.has(u.attr()));
    for u in ALL_USAGES {
        let want = if any_usage {
            t.bool(u.attr()).unwrap_or(false)
        } else {
            caps.contains(&u)
        };
        // A usage the class can have but this key type cannot perform is kept and grants
        // nothing (every operation checks the mechanism against the key type): tools set
        // "all usages" templates, e.g. pkcs11-tool's ECDH-derived generic secret with
        // CKA_ENCRYPT. A usage the class can never have (CKA_SIGN on a public key) is refused.
        if want && !caps.contains(&u) && !class_may_carry(class, u) {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                format!(
                    "a {:?} of type {:#x} cannot {}",
                    class,
                    alg_to_ckk(alg),
                    u.name()
                ),
            ));
        }
        f.set_usage(u, want);
    }
    match origin {
        Origin::Generated => {
            f.local = true;
            f.always_sensitive = f.sensitive;
            f.never_extractable = !f.extractable;
        }
        Origin::Imported | Origin::Unwrapped | Origin::Copied | Origin::Derived => {
            // Material that existed outside, or whose history the caller sets from the base key.
            f.local = false;
            f.always_sensitive = false;
            f.never_extractable = false;
        }
    }
    if !secret {
        f.always_sensitive = false;
        f.never_extractable = false;
    }
    Ok(f)
}

/// Apply a `C_SetAttributeValue` template to a record, enforcing the one-way rules. The record
/// is only changed if every attribute is acceptable. `is_so` gates `CKA_TRUSTED`.
pub fn apply_set_template(rec: &mut ObjectRecord, t: &Template, is_so: bool) -> Result<()> {
    if !rec.flags.modifiable {
        return Err(Error::new(
            Rv::ActionProhibited,
            "the object is not modifiable (CKA_MODIFIABLE = false)",
        ));
    }
    let mut next = rec.clone();
    let caps: &[Usage] = match rec.alg {
        Some(a) if rec.class.is_key() => capabilities(rec.class, a),
        _ => &[],
    };
    for (ty, v) in t.iter() {
        let b = |v: &AttrValue| match v {
            AttrValue::Bool(b) => Ok(*b),
            _ => Err(Error::new(
                Rv::AttributeValueInvalid,
                format!("attribute {ty:#x} must be a CK_BBOOL"),
            )),
        };
        match ty {
            CKA_LABEL => {
                next.label = t.string(CKA_LABEL)?.unwrap_or_default();
            }
            CKA_ID if rec.class != ObjectClass::Data => {
                next.ckaid = t.bytes(CKA_ID).unwrap_or_default().to_vec()
            }
            CKA_SUBJECT if rec.class != ObjectClass::Data => {
                next.subject = t.bytes(CKA_SUBJECT).unwrap_or_default().to_vec()
            }
            CKA_START_DATE if rec.class.is_key() => {
                next.start_date = t.bytes(ty).unwrap_or_default().to_vec()
            }
            CKA_END_DATE if rec.class.is_key() => {
                next.end_date = t.bytes(ty).unwrap_or_default().to_vec()
            }
            CKA_APPLICATION if rec.class == ObjectClass::Data => {
                if let Some(d) = next.data.as_mut() {
                    d.application = t.bytes(ty).unwrap_or_default().to_vec();
                }
            }
            CKA_SENSITIVE if rec.class.has_secret() => {
                next.flags.sensitive = one_way(rec.flags.sensitive, b(v)?, true, "CKA_SENSITIVE")?;
            }
            CKA_EXTRACTABLE if rec.class.has_secret() => {
                next.flags.extractable =
                    one_way(rec.flags.extractable, b(v)?, false, "CKA_EXTRACTABLE")?;
            }
            CKA_WRAP_WITH_TRUSTED if rec.class.has_secret() => {
                next.flags.wrap_with_trusted = one_way(
                    rec.flags.wrap_with_trusted,
                    b(v)?,
                    true,
                    "CKA_WRAP_WITH_TRUSTED",
                )?;
            }
            CKA_COPYABLE => {
                next.flags.copyable = one_way(rec.flags.copyable, b(v)?, false, "CKA_COPYABLE")?
            }
            CKA_DESTROYABLE => {
                next.flags.destroyable =
                    one_way(rec.flags.destroyable, b(v)?, false, "CKA_DESTROYABLE")?
            }
            CKA_TRUSTED
                if matches!(
                    rec.class,
                    ObjectClass::PublicKey | ObjectClass::SecretKey | ObjectClass::Certificate
                ) =>
            {
                let v = b(v)?;
                if v && !is_so {
                    return Err(Error::new(
                        Rv::UserNotLoggedIn,
                        "only the security officer can set CKA_TRUSTED",
                    ));
                }
                next.flags.trusted = v;
            }
            _ if rec.class.is_key() && ALL_USAGES.iter().any(|u| u.attr() == ty) => {
                let v = b(v)?;
                let u = ALL_USAGES
                    .iter()
                    .copied()
                    .find(|u| u.attr() == ty)
                    .ok_or_else(|| Error::new(Rv::GeneralError, "usage"))?;
                if v && !caps.contains(&u) {
                    return Err(Error::new(
                        Rv::TemplateInconsistent,
                        format!("this key cannot {}", u.name()),
                    ));
                }
                next.flags.set_usage(u, v);
            }
            _ => {
                return Err(if crate::template::attr_kind(ty).is_some() {
                    Error::new(
                        Rv::AttributeReadOnly,
                        format!("attribute {ty:#x} cannot be changed"),
                    )
                } else {
                    Error::new(
                        Rv::AttributeTypeInvalid,
                        format!("attribute {ty:#x} is not supported"),
                    )
                });
            }
        }
    }
    *rec = next;
    Ok(())
}

/// A one-way boolean: once it holds `toward`, it can never change back.
fn one_way(current: bool, new: bool, toward: bool, name: &str) -> Result<bool> {
    if current == toward && new != toward {
        return Err(Error::new(
            Rv::AttributeReadOnly,
            format!("{name} can only change from {} to {toward}", !toward),
        ));
    }
    Ok(new)
}

/// The answer to reading one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrRead {
    /// The value, encoded as PKCS#11 passes it (`CK_BBOOL` 1 byte, `CK_ULONG` native 8 bytes).
    Value(Vec<u8>),
    /// The attribute exists but is sensitive or unextractable (`CKR_ATTRIBUTE_SENSITIVE`).
    Sensitive,
    /// The object has no such attribute (`CKR_ATTRIBUTE_TYPE_INVALID`).
    Invalid,
}

fn ulong(v: u64) -> AttrRead {
    AttrRead::Value(v.to_ne_bytes().to_vec())
}

fn boolean(v: bool) -> AttrRead {
    AttrRead::Value(vec![u8::from(v)])
}

/// Read one public attribute of a record. Secret values (`CKA_VALUE` of secret keys, private
/// key components) are answered by the engine, which holds the material; here they read as
/// sensitive or invalid.
pub fn read_attribute(rec: &ObjectRecord, usage_count: i64, ty: u64) -> AttrRead {
    if ty == CKA_ALWAYS_AUTHENTICATE && rec.class.has_secret() {
        // A key with a key password needs it for every use: PKCS#11 applications present it
        // with C_Login(CKU_CONTEXT_SPECIFIC) after the operation's …Init.
        return boolean(rec.password.is_some());
    }
    if let Some(b) = rec.flags.get(ty) {
        let applies = match ty {
            CKA_TOKEN | CKA_PRIVATE | CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE => true,
            CKA_TRUSTED => matches!(
                rec.class,
                ObjectClass::Certificate | ObjectClass::PublicKey | ObjectClass::SecretKey
            ),
            CKA_SENSITIVE
            | CKA_EXTRACTABLE
            | CKA_ALWAYS_SENSITIVE
            | CKA_NEVER_EXTRACTABLE
            | CKA_WRAP_WITH_TRUSTED
            | CKA_ALWAYS_AUTHENTICATE
            | CKA_SIGN_RECOVER => rec.class.has_secret(),
            CKA_VERIFY_RECOVER => {
                rec.class == ObjectClass::PublicKey || rec.class == ObjectClass::SecretKey
            }
            _ => rec.class.is_key(),
        };
        return if applies {
            boolean(b)
        } else {
            AttrRead::Invalid
        };
    }
    let bytes = |v: &[u8]| AttrRead::Value(v.to_vec());
    match ty {
        CKA_CLASS => ulong(rec.class.ck()),
        CKA_LABEL => bytes(rec.label.as_bytes()),
        CKA_UNIQUE_ID | CKA_TRESOR_UUID => bytes(rec.uuid.as_bytes()),
        CKA_TRESOR_CREATE_TIME => ulong(u64::try_from(rec.created).unwrap_or(0)),
        CKA_TRESOR_USAGE_COUNT => ulong(u64::try_from(usage_count).unwrap_or(0)),
        CKA_ID if rec.class != ObjectClass::Data => bytes(&rec.ckaid),
        CKA_SUBJECT if rec.class != ObjectClass::Data => match &rec.cert {
            Some(c) => bytes(&c.subject),
            None => bytes(&rec.subject),
        },
        CKA_KEY_TYPE => rec.ckk().map(ulong).unwrap_or(AttrRead::Invalid),
        CKA_START_DATE if rec.class.is_key() => bytes(&rec.start_date),
        CKA_END_DATE if rec.class.is_key() => bytes(&rec.end_date),
        CKA_KEY_GEN_MECHANISM if rec.class.is_key() => ulong(
            rec.key_gen_mechanism
                .unwrap_or(crate::ck::CK_UNAVAILABLE_INFORMATION),
        ),
        CKA_VALUE_LEN if rec.class == ObjectClass::SecretKey => ulong(rec.value_len.unwrap_or(0)),
        CKA_TRESOR_POLICY if rec.class.is_key() => match &rec.policy {
            Some(p) => bytes(p.to_json().as_bytes()),
            None => AttrRead::Value(Vec::new()),
        },
        CKA_TRESOR_BLOCKED if rec.class.is_key() => boolean(rec.blocked()),
        CKA_ALLOWED_MECHANISMS if rec.class.is_key() => AttrRead::Value(
            rec.allowed_mechanisms
                .iter()
                .flat_map(|m| m.to_ne_bytes())
                .collect(),
        ),
        // Write-only: the hash is never answered.
        CKA_TRESOR_KEY_PASSWORD if rec.class.has_secret() => AttrRead::Sensitive,
        CKA_PARAMETER_SET => rec
            .alg
            .and_then(parameter_set)
            .map(ulong)
            .unwrap_or(AttrRead::Invalid),
        CKA_MODULUS | CKA_PUBLIC_EXPONENT | CKA_MODULUS_BITS | CKA_EC_PARAMS | CKA_EC_POINT
        | CKA_PUBLIC_KEY_INFO => {
            let Some(p) = rec.public.as_ref() else {
                return AttrRead::Invalid;
            };
            let v = match ty {
                CKA_MODULUS => p.modulus.clone(),
                CKA_PUBLIC_EXPONENT => p.public_exponent.clone(),
                CKA_MODULUS_BITS => p.modulus_bits.map(|b| u64::from(b).to_ne_bytes().to_vec()),
                CKA_EC_PARAMS => p.ec_params.clone(),
                // A private EC key has no CKA_EC_POINT in PKCS#11.
                CKA_EC_POINT if rec.class == ObjectClass::PublicKey => p.ec_point.clone(),
                CKA_PUBLIC_KEY_INFO => Some(p.spki.clone()),
                _ => None,
            };
            v.map(AttrRead::Value).unwrap_or(AttrRead::Invalid)
        }
        CKA_VALUE if rec.class == ObjectClass::PublicKey => {
            match rec.public.as_ref().and_then(|p| p.raw_public.clone()) {
                Some(v) => AttrRead::Value(v),
                None => AttrRead::Invalid,
            }
        }
        CKA_VALUE if rec.class == ObjectClass::Certificate => rec
            .cert
            .as_ref()
            .map(|c| bytes(&c.value))
            .unwrap_or(AttrRead::Invalid),
        CKA_CERTIFICATE_TYPE if rec.class == ObjectClass::Certificate => ulong(CKC_X_509),
        CKA_CERTIFICATE_CATEGORY if rec.class == ObjectClass::Certificate => {
            ulong(rec.cert.as_ref().map_or(0, |c| c.category))
        }
        CKA_ISSUER if rec.class == ObjectClass::Certificate => rec
            .cert
            .as_ref()
            .map(|c| bytes(&c.issuer))
            .unwrap_or(AttrRead::Invalid),
        CKA_SERIAL_NUMBER if rec.class == ObjectClass::Certificate => rec
            .cert
            .as_ref()
            .map(|c| bytes(&c.serial))
            .unwrap_or(AttrRead::Invalid),
        CKA_VALUE | CKA_APPLICATION | CKA_OBJECT_ID if rec.class == ObjectClass::Data => {
            let d = rec.data.clone().unwrap_or_default();
            bytes(match ty {
                CKA_VALUE => &d.value,
                CKA_APPLICATION => &d.application,
                _ => &d.object_id,
            })
        }
        CKA_VALUE if rec.class == ObjectClass::SecretKey => AttrRead::Sensitive,
        CKA_VALUE | CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1
        | CKA_EXPONENT_2 | CKA_COEFFICIENT
            if rec.class == ObjectClass::PrivateKey =>
        {
            AttrRead::Sensitive
        }
        _ => AttrRead::Invalid,
    }
}

/// Does a record match a search template (every attribute equal)?
pub fn matches_template(rec: &ObjectRecord, usage_count: i64, t: &Template) -> bool {
    t.iter().all(|(ty, v)| {
        let want: Vec<u8> = match v {
            AttrValue::Bool(b) => vec![u8::from(*b)],
            AttrValue::Ulong(u) => u.to_ne_bytes().to_vec(),
            AttrValue::Bytes(b) => b.to_vec(),
        };
        matches!(read_attribute(rec, usage_count, ty), AttrRead::Value(have) if have == want)
    })
}

/// The algorithm a key template names (`CKA_KEY_TYPE` plus `CKA_EC_PARAMS` / `CKA_PARAMETER_SET`).
pub fn alg_from_template(ckk: u64, t: &Template) -> Result<KeyAlg> {
    Ok(match ckk {
        CKK_RSA => KeyAlg::Rsa,
        CKK_AES => KeyAlg::Aes,
        CKK_GENERIC_SECRET => KeyAlg::GenericSecret,
        CKK_CHACHA20 => KeyAlg::ChaCha20,
        CKK_EC | CKK_EC_EDWARDS => {
            let params = t.bytes(CKA_EC_PARAMS).ok_or_else(|| {
                Error::new(
                    Rv::TemplateIncomplete,
                    "CKA_EC_PARAMS is required for an EC key",
                )
            })?;
            match crate::crypto::curve_from_oid_der(params)? {
                crate::crypto::AnyCurve::Weierstrass(c) if ckk == CKK_EC => KeyAlg::Ec(c),
                crate::crypto::AnyCurve::Edwards(c) if ckk == CKK_EC_EDWARDS => KeyAlg::Ed(c),
                _ => {
                    return Err(Error::new(
                        Rv::TemplateInconsistent,
                        "CKA_EC_PARAMS names a curve of the other key type",
                    ))
                }
            }
        }
        CKK_ML_DSA | CKK_ML_KEM | CKK_SLH_DSA => {
            let set = t.ulong(CKA_PARAMETER_SET).ok_or_else(|| {
                Error::new(
                    Rv::TemplateIncomplete,
                    "CKA_PARAMETER_SET is required for a post-quantum key",
                )
            })?;
            alg_from_parameter_set(ckk, set)?
        }
        other => {
            return Err(Error::new(
                Rv::AttributeValueInvalid,
                format!("key type {other:#x} is not supported"),
            ))
        }
    })
}

//! Checked conversions between the wire types and the engine's types (feature `core`).
//!
//! * wire → engine conversions fail with a `tresor_core` [`Error`] carrying the `CK_RV` the
//!   caller should see (e.g. `CKR_ATTRIBUTE_TYPE_INVALID` for an unknown attribute,
//!   `CKR_MECHANISM_PARAM_INVALID` for a parameter the platform cannot hold), so a node can
//!   answer with it directly;
//! * engine → wire conversions are total except for engine values the protocol does not know
//!   yet (a newer `Mechanism` variant), which fail with [`ProtoError::Unrepresentable`].

use tresor_core::crypto as core_crypto;
use tresor_core::error::{Error, Rv};
use tresor_core::{attest, engine, object, template};

use crate::error::ProtoError;
use crate::response::Response;
use crate::secret::Secret;
use crate::types::{
    Attestation, AttrRead, AttrValue, Attribute, EcdhParams, GcmParams, HashAlg, Mechanism,
    OaepParams, PartitionSummary, PssParams, Template, UserType,
};

impl From<HashAlg> for core_crypto::HashAlg {
    fn from(h: HashAlg) -> Self {
        use core_crypto::HashAlg as C;
        match h {
            HashAlg::Sha1 => C::Sha1,
            HashAlg::Sha224 => C::Sha224,
            HashAlg::Sha256 => C::Sha256,
            HashAlg::Sha384 => C::Sha384,
            HashAlg::Sha512 => C::Sha512,
            HashAlg::Sha3_224 => C::Sha3_224,
            HashAlg::Sha3_256 => C::Sha3_256,
            HashAlg::Sha3_384 => C::Sha3_384,
            HashAlg::Sha3_512 => C::Sha3_512,
            HashAlg::Keccak224 => C::Keccak224,
            HashAlg::Keccak256 => C::Keccak256,
            HashAlg::Keccak384 => C::Keccak384,
            HashAlg::Keccak512 => C::Keccak512,
        }
    }
}

impl From<core_crypto::HashAlg> for HashAlg {
    fn from(h: core_crypto::HashAlg) -> Self {
        use core_crypto::HashAlg as C;
        match h {
            C::Sha1 => HashAlg::Sha1,
            C::Sha224 => HashAlg::Sha224,
            C::Sha256 => HashAlg::Sha256,
            C::Sha384 => HashAlg::Sha384,
            C::Sha512 => HashAlg::Sha512,
            C::Sha3_224 => HashAlg::Sha3_224,
            C::Sha3_256 => HashAlg::Sha3_256,
            C::Sha3_384 => HashAlg::Sha3_384,
            C::Sha3_512 => HashAlg::Sha3_512,
            C::Keccak224 => HashAlg::Keccak224,
            C::Keccak256 => HashAlg::Keccak256,
            C::Keccak384 => HashAlg::Keccak384,
            C::Keccak512 => HashAlg::Keccak512,
        }
    }
}

impl From<UserType> for engine::UserType {
    fn from(u: UserType) -> Self {
        match u {
            UserType::SecurityOfficer => engine::UserType::SecurityOfficer,
            UserType::User => engine::UserType::User,
        }
    }
}

impl From<engine::UserType> for UserType {
    fn from(u: engine::UserType) -> Self {
        match u {
            engine::UserType::SecurityOfficer => UserType::SecurityOfficer,
            engine::UserType::User => UserType::User,
        }
    }
}

fn param_usize(v: u64, what: &str) -> Result<usize, Error> {
    usize::try_from(v).map_err(|_| {
        Error::new(
            Rv::MechanismParamInvalid,
            format!("{what} {v} is out of range"),
        )
    })
}

fn wire_u64(v: usize, what: &str) -> Result<u64, ProtoError> {
    u64::try_from(v).map_err(|_| ProtoError::Unrepresentable(format!("{what} {v}")))
}

fn wire_u32(v: usize, what: &str) -> Result<u32, ProtoError> {
    u32::try_from(v).map_err(|_| ProtoError::Unrepresentable(format!("{what} {v}")))
}

impl TryFrom<&PssParams> for core_crypto::PssParams {
    type Error = Error;
    fn try_from(p: &PssParams) -> Result<Self, Error> {
        Ok(core_crypto::PssParams {
            hash: p.hash.into(),
            mgf: p.mgf.into(),
            salt_len: param_usize(p.salt_len, "PSS salt length")?,
        })
    }
}

impl TryFrom<&core_crypto::PssParams> for PssParams {
    type Error = ProtoError;
    fn try_from(p: &core_crypto::PssParams) -> Result<Self, ProtoError> {
        Ok(PssParams {
            hash: p.hash.into(),
            mgf: p.mgf.into(),
            salt_len: wire_u64(p.salt_len, "PSS salt length")?,
        })
    }
}

impl TryFrom<&Mechanism> for core_crypto::Mechanism {
    type Error = Error;
    fn try_from(m: &Mechanism) -> Result<Self, Error> {
        use core_crypto::Mechanism as C;
        Ok(match m {
            Mechanism::RsaPkcs {} => C::RsaPkcs,
            Mechanism::RsaX509 {} => C::RsaX509,
            Mechanism::RsaPkcsHash { hash } => C::RsaPkcsHash((*hash).into()),
            Mechanism::RsaPss { params } => C::RsaPss(params.try_into()?),
            Mechanism::RsaPssHash { hash, params } => {
                C::RsaPssHash((*hash).into(), params.try_into()?)
            }
            Mechanism::RsaOaep { params } => C::RsaOaep(core_crypto::OaepParams {
                hash: params.hash.into(),
                mgf: params.mgf.into(),
                label: params.label.clone(),
            }),
            Mechanism::Ecdsa {} => C::Ecdsa,
            Mechanism::EcdsaHash { hash } => C::EcdsaHash((*hash).into()),
            Mechanism::EcdsaDeterministic { hash } => C::EcdsaDeterministic((*hash).into()),
            Mechanism::EcdsaDoubleSha256 {} => C::EcdsaDoubleSha256,
            Mechanism::Eddsa {} => C::Eddsa,
            Mechanism::MlDsa { context } => C::MlDsa {
                context: context.clone(),
            },
            Mechanism::SlhDsa { context } => C::SlhDsa {
                context: context.clone(),
            },
            Mechanism::Hmac { hash } => C::Hmac((*hash).into()),
            Mechanism::AesEcb {} => C::AesEcb,
            Mechanism::AesCbc { iv } => C::AesCbc { iv: iv.clone() },
            Mechanism::AesCbcPad { iv } => C::AesCbcPad { iv: iv.clone() },
            Mechanism::AesCtr { iv, counter_bits } => C::AesCtr {
                iv: iv.clone(),
                counter_bits: param_usize(u64::from(*counter_bits), "CTR counter bits")?,
            },
            Mechanism::AesGcm { params } => C::AesGcm(core_crypto::GcmParams {
                iv: params.iv.clone(),
                aad: params.aad.clone(),
                tag_bits: param_usize(u64::from(params.tag_bits), "GCM tag bits")?,
            }),
            Mechanism::ChaCha20Poly1305 { nonce, aad } => C::ChaCha20Poly1305 {
                nonce: nonce.clone(),
                aad: aad.clone(),
            },
            Mechanism::AesKeyWrap {} => C::AesKeyWrap,
            Mechanism::AesKeyWrapPad {} => C::AesKeyWrapPad,
            Mechanism::MlKem {} => C::MlKem,
            Mechanism::Ecdh1Derive { params } => C::Ecdh1Derive(core_crypto::EcdhParams {
                kdf: params.kdf.map(Into::into),
                shared_data: params.shared_data.clone(),
                public_data: params.public_data.clone(),
            }),
            Mechanism::Digest { hash } => C::Digest((*hash).into()),
        })
    }
}

impl TryFrom<&core_crypto::Mechanism> for Mechanism {
    type Error = ProtoError;
    fn try_from(m: &core_crypto::Mechanism) -> Result<Self, ProtoError> {
        use core_crypto::Mechanism as C;
        Ok(match m {
            C::RsaPkcs => Mechanism::RsaPkcs {},
            C::RsaX509 => Mechanism::RsaX509 {},
            C::RsaPkcsHash(h) => Mechanism::RsaPkcsHash { hash: (*h).into() },
            C::RsaPss(p) => Mechanism::RsaPss {
                params: p.try_into()?,
            },
            C::RsaPssHash(h, p) => Mechanism::RsaPssHash {
                hash: (*h).into(),
                params: p.try_into()?,
            },
            C::RsaOaep(p) => Mechanism::RsaOaep {
                params: OaepParams {
                    hash: p.hash.into(),
                    mgf: p.mgf.into(),
                    label: p.label.clone(),
                },
            },
            C::Ecdsa => Mechanism::Ecdsa {},
            C::EcdsaHash(h) => Mechanism::EcdsaHash { hash: (*h).into() },
            C::EcdsaDeterministic(h) => Mechanism::EcdsaDeterministic { hash: (*h).into() },
            C::EcdsaDoubleSha256 => Mechanism::EcdsaDoubleSha256 {},
            C::Eddsa => Mechanism::Eddsa {},
            C::MlDsa { context } => Mechanism::MlDsa {
                context: context.clone(),
            },
            C::SlhDsa { context } => Mechanism::SlhDsa {
                context: context.clone(),
            },
            C::Hmac(h) => Mechanism::Hmac { hash: (*h).into() },
            C::AesEcb => Mechanism::AesEcb {},
            C::AesCbc { iv } => Mechanism::AesCbc { iv: iv.clone() },
            C::AesCbcPad { iv } => Mechanism::AesCbcPad { iv: iv.clone() },
            C::AesCtr { iv, counter_bits } => Mechanism::AesCtr {
                iv: iv.clone(),
                counter_bits: wire_u32(*counter_bits, "CTR counter bits")?,
            },
            C::AesGcm(p) => Mechanism::AesGcm {
                params: GcmParams {
                    iv: p.iv.clone(),
                    aad: p.aad.clone(),
                    tag_bits: wire_u32(p.tag_bits, "GCM tag bits")?,
                },
            },
            C::ChaCha20Poly1305 { nonce, aad } => Mechanism::ChaCha20Poly1305 {
                nonce: nonce.clone(),
                aad: aad.clone(),
            },
            C::AesKeyWrap => Mechanism::AesKeyWrap {},
            C::AesKeyWrapPad => Mechanism::AesKeyWrapPad {},
            C::MlKem => Mechanism::MlKem {},
            C::Ecdh1Derive(p) => Mechanism::Ecdh1Derive {
                params: EcdhParams {
                    kdf: p.kdf.map(Into::into),
                    shared_data: p.shared_data.clone(),
                    public_data: p.public_data.clone(),
                },
            },
            C::Digest(h) => Mechanism::Digest { hash: (*h).into() },
            other => {
                return Err(ProtoError::Unrepresentable(format!(
                    "mechanism {}",
                    tresor_core::engine::mechanism_name(other)
                )))
            }
        })
    }
}

impl TryFrom<&Template> for template::Template {
    type Error = Error;
    /// Checks every attribute as the engine does: unknown type, wrong value kind and
    /// conflicting duplicates fail with their PKCS#11 return value.
    fn try_from(t: &Template) -> Result<Self, Error> {
        let mut out = template::Template::new();
        for a in &t.0 {
            let v = match &a.value {
                AttrValue::Bool(b) => template::AttrValue::Bool(*b),
                AttrValue::Ulong(u) => template::AttrValue::Ulong(*u),
                AttrValue::Bytes(b) => template::AttrValue::Bytes(b.0.clone()),
            };
            out.insert(a.ty, v)?;
        }
        Ok(out)
    }
}

impl From<&template::Template> for Template {
    fn from(t: &template::Template) -> Self {
        Template(
            t.iter()
                .map(|(ty, v)| Attribute {
                    ty,
                    value: match v {
                        template::AttrValue::Bool(b) => AttrValue::Bool(*b),
                        template::AttrValue::Ulong(u) => AttrValue::Ulong(*u),
                        template::AttrValue::Bytes(b) => AttrValue::Bytes(Secret(b.clone())),
                    },
                })
                .collect(),
        )
    }
}

impl From<object::AttrRead> for AttrRead {
    fn from(a: object::AttrRead) -> Self {
        match a {
            object::AttrRead::Value(v) => AttrRead::Value(Secret::new(v)),
            object::AttrRead::Sensitive => AttrRead::Sensitive,
            object::AttrRead::Invalid => AttrRead::Invalid,
        }
    }
}

impl From<&AttrRead> for object::AttrRead {
    fn from(a: &AttrRead) -> Self {
        match a {
            AttrRead::Value(v) => object::AttrRead::Value(v.expose().to_vec()),
            AttrRead::Sensitive => object::AttrRead::Sensitive,
            AttrRead::Invalid => object::AttrRead::Invalid,
        }
    }
}

impl From<engine::PartitionSummary> for PartitionSummary {
    fn from(p: engine::PartitionSummary) -> Self {
        PartitionSummary {
            id: p.id,
            name: p.name,
            created: p.created,
            objects: p.objects,
        }
    }
}

impl From<&PartitionSummary> for engine::PartitionSummary {
    fn from(p: &PartitionSummary) -> Self {
        engine::PartitionSummary {
            id: p.id,
            name: p.name.clone(),
            created: p.created,
            objects: p.objects,
        }
    }
}

impl From<attest::Attestation> for Attestation {
    fn from(a: attest::Attestation) -> Self {
        Attestation {
            xml: a.xml,
            signature: a.signature,
            chain_pem: a.chain_pem,
            attestation_key_name: a.attestation_key_name.to_owned(),
        }
    }
}

/// The `ObjectRecord` JSON carried by [`Response::Record`].
pub fn record_to_json(rec: &object::ObjectRecord) -> Result<Vec<u8>, ProtoError> {
    serde_json::to_vec(rec).map_err(|e| ProtoError::Unrepresentable(format!("object record: {e}")))
}

/// Parse the `ObjectRecord` JSON of [`Response::Record`] (`CKR_DEVICE_ERROR` if malformed).
pub fn record_from_json(json: &[u8]) -> Result<object::ObjectRecord, Error> {
    serde_json::from_slice(json).map_err(|e| {
        Error::new(
            Rv::DeviceError,
            format!("the node sent an unreadable object record: {e}"),
        )
    })
}

/// Every named `Rv`, to map a numeric `CK_RV` back (anything else is `Rv::Vendor(code)`,
/// whose `ckr()` is the same number).
const KNOWN_RV: &[Rv] = &[
    Rv::ActionProhibited,
    Rv::ArgumentsBad,
    Rv::AttributeReadOnly,
    Rv::AttributeSensitive,
    Rv::AttributeTypeInvalid,
    Rv::AttributeValueInvalid,
    Rv::CurveNotSupported,
    Rv::DataInvalid,
    Rv::DataLenRange,
    Rv::DeviceError,
    Rv::DeviceMemory,
    Rv::DomainParamsInvalid,
    Rv::EncryptedDataInvalid,
    Rv::EncryptedDataLenRange,
    Rv::FunctionFailed,
    Rv::FunctionNotSupported,
    Rv::GeneralError,
    Rv::KeyFunctionNotPermitted,
    Rv::KeyHandleInvalid,
    Rv::KeyIndigestible,
    Rv::KeyNotWrappable,
    Rv::KeySizeRange,
    Rv::KeyTypeInconsistent,
    Rv::KeyUnextractable,
    Rv::MechanismInvalid,
    Rv::MechanismParamInvalid,
    Rv::ObjectHandleInvalid,
    Rv::OperationNotInitialized,
    Rv::PinExpired,
    Rv::PinIncorrect,
    Rv::PinInvalid,
    Rv::PinLenRange,
    Rv::PinLocked,
    Rv::SignatureInvalid,
    Rv::SignatureLenRange,
    Rv::TemplateIncomplete,
    Rv::TemplateInconsistent,
    Rv::TokenWriteProtected,
    Rv::UnwrappingKeyHandleInvalid,
    Rv::UnwrappingKeySizeRange,
    Rv::UnwrappingKeyTypeInconsistent,
    Rv::UserAlreadyLoggedIn,
    Rv::UserAnotherAlreadyLoggedIn,
    Rv::UserNotLoggedIn,
    Rv::UserPinNotInitialized,
    Rv::UserTypeInvalid,
    Rv::WrappedKeyInvalid,
    Rv::WrappedKeyLenRange,
    Rv::WrappingKeyHandleInvalid,
    Rv::WrappingKeySizeRange,
    Rv::WrappingKeyTypeInconsistent,
];

/// The `Rv` of a numeric `CK_RV`; `rv_from_ckr(x).ckr() == x` for every `x`.
pub fn rv_from_ckr(code: u64) -> Rv {
    KNOWN_RV
        .iter()
        .copied()
        .find(|r| r.ckr() == code)
        .unwrap_or(Rv::Vendor(code))
}

impl From<&Error> for Response {
    fn from(e: &Error) -> Self {
        Response::error(e.rv().ckr(), e.detail())
    }
}

impl Response {
    /// The engine error an `Error` response stands for (`None` for any other response).
    pub fn to_engine_error(&self) -> Option<Error> {
        match self {
            Response::Error { rv, message } => Some(Error::new(rv_from_ckr(*rv), message.clone())),
            _ => None,
        }
    }
}

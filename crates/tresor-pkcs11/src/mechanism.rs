//! Mechanisms: the parameters the ABI read from a `CK_MECHANISM`, checked and turned into the
//! wire's [`Mechanism`], and which operation each `CKM_*` serves. Everything here is checked
//! locally, so an `…Init` needs no round trip.

use tresor_proto::{EcdhParams, GcmParams, HashAlg, Mechanism, OaepParams, PssParams};

use crate::ck::*;
use crate::error::{Error, Result};
use crate::fail;

/// The parameter of a `CK_MECHANISM`, as read by the ABI for the mechanism's type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Param {
    /// No parameter (NULL / length 0).
    #[default]
    None,
    /// A plain byte string (an IV, …).
    Bytes(Vec<u8>),
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        /// `hashAlg` (`CKM_*`).
        hash: u64,
        /// `mgf` (`CKG_MGF1_*`).
        mgf: u64,
        /// `sLen`.
        salt_len: u64,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep {
        /// `hashAlg`.
        hash: u64,
        /// `mgf`.
        mgf: u64,
        /// `source` (0 or `CKZ_DATA_SPECIFIED`).
        source: u64,
        /// The label.
        label: Vec<u8>,
    },
    /// `CK_GCM_PARAMS`.
    Gcm {
        /// IV.
        iv: Vec<u8>,
        /// Additional data.
        aad: Vec<u8>,
        /// Tag length in bits.
        tag_bits: u64,
    },
    /// `CK_AES_CTR_PARAMS`.
    Ctr {
        /// Counter bits.
        counter_bits: u64,
        /// Counter block.
        cb: [u8; 16],
    },
    /// `CK_SALSA20_CHACHA20_POLY1305_PARAMS`.
    ChaChaPoly {
        /// Nonce.
        nonce: Vec<u8>,
        /// Additional data.
        aad: Vec<u8>,
    },
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh {
        /// `kdf` (`CKD_*`).
        kdf: u64,
        /// Shared data.
        shared: Vec<u8>,
        /// The peer's public point.
        public: Vec<u8>,
    },
    /// `CK_SIGN_ADDITIONAL_CONTEXT` (ML-DSA, SLH-DSA).
    SignContext {
        /// `hedgeVariant`.
        hedge: u64,
        /// Context string.
        context: Vec<u8>,
    },
    /// A parameter of a size that does not fit the mechanism.
    Malformed(u64),
}

/// A mechanism as the application gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMechanism {
    /// `CKM_*`.
    pub ty: u64,
    /// Its parameter.
    pub param: Param,
}

/// What an operation does with a mechanism (selects the `CKF_*` flag it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Sign / MAC.
    Sign,
    /// Verify.
    Verify,
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// Digest.
    Digest,
    /// Wrap.
    Wrap,
    /// Unwrap.
    Unwrap,
    /// Derive.
    Derive,
    /// Encapsulate / decapsulate.
    Kem,
}

/// The hash of a `CKM_SHA*` digest mechanism.
pub fn digest_hash(ty: u64) -> Option<HashAlg> {
    Some(match ty {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224 => HashAlg::Sha224,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        CKM_SHA3_224 => HashAlg::Sha3_224,
        CKM_SHA3_256 => HashAlg::Sha3_256,
        CKM_SHA3_384 => HashAlg::Sha3_384,
        CKM_SHA3_512 => HashAlg::Sha3_512,
        _ => return None,
    })
}

/// Output length of a hash.
pub fn hash_len(h: HashAlg) -> usize {
    match h {
        HashAlg::Sha1 => 20,
        HashAlg::Sha224 | HashAlg::Sha3_224 | HashAlg::Keccak224 => 28,
        HashAlg::Sha256 | HashAlg::Sha3_256 | HashAlg::Keccak256 => 32,
        HashAlg::Sha384 | HashAlg::Sha3_384 | HashAlg::Keccak384 => 48,
        HashAlg::Sha512 | HashAlg::Sha3_512 | HashAlg::Keccak512 => 64,
    }
}

fn mgf_hash(mgf: u64) -> Result<HashAlg> {
    Ok(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        CKG_MGF1_SHA3_224 => HashAlg::Sha3_224,
        CKG_MGF1_SHA3_256 => HashAlg::Sha3_256,
        CKG_MGF1_SHA3_384 => HashAlg::Sha3_384,
        CKG_MGF1_SHA3_512 => HashAlg::Sha3_512,
        _ => fail!(CKR_MECHANISM_PARAM_INVALID, "unknown MGF {mgf:#x}"),
    })
}

fn param_hash(ty: u64) -> Result<HashAlg> {
    digest_hash(ty).ok_or_else(|| {
        Error::new(
            CKR_MECHANISM_PARAM_INVALID,
            format!("hash mechanism {ty:#x} is not supported"),
        )
    })
}

fn kdf_hash(kdf: u64) -> Result<Option<HashAlg>> {
    Ok(Some(match kdf {
        CKD_NULL => return Ok(None),
        CKD_SHA1_KDF => HashAlg::Sha1,
        CKD_SHA224_KDF => HashAlg::Sha224,
        CKD_SHA256_KDF => HashAlg::Sha256,
        CKD_SHA384_KDF => HashAlg::Sha384,
        CKD_SHA512_KDF => HashAlg::Sha512,
        CKD_SHA3_224_KDF => HashAlg::Sha3_224,
        CKD_SHA3_256_KDF => HashAlg::Sha3_256,
        CKD_SHA3_384_KDF => HashAlg::Sha3_384,
        CKD_SHA3_512_KDF => HashAlg::Sha3_512,
        _ => fail!(CKR_MECHANISM_PARAM_INVALID, "unknown KDF {kdf:#x}"),
    }))
}

/// The hash of a hash-and-sign RSA mechanism (PKCS#1 v1.5 or PSS) and whether it is PSS.
fn rsa_hash(ty: u64) -> Option<(HashAlg, bool)> {
    Some(match ty {
        CKM_SHA1_RSA_PKCS => (HashAlg::Sha1, false),
        CKM_SHA224_RSA_PKCS => (HashAlg::Sha224, false),
        CKM_SHA256_RSA_PKCS => (HashAlg::Sha256, false),
        CKM_SHA384_RSA_PKCS => (HashAlg::Sha384, false),
        CKM_SHA512_RSA_PKCS => (HashAlg::Sha512, false),
        CKM_SHA3_224_RSA_PKCS => (HashAlg::Sha3_224, false),
        CKM_SHA3_256_RSA_PKCS => (HashAlg::Sha3_256, false),
        CKM_SHA3_384_RSA_PKCS => (HashAlg::Sha3_384, false),
        CKM_SHA3_512_RSA_PKCS => (HashAlg::Sha3_512, false),
        CKM_SHA1_RSA_PKCS_PSS => (HashAlg::Sha1, true),
        CKM_SHA224_RSA_PKCS_PSS => (HashAlg::Sha224, true),
        CKM_SHA256_RSA_PKCS_PSS => (HashAlg::Sha256, true),
        CKM_SHA384_RSA_PKCS_PSS => (HashAlg::Sha384, true),
        CKM_SHA512_RSA_PKCS_PSS => (HashAlg::Sha512, true),
        CKM_SHA3_224_RSA_PKCS_PSS => (HashAlg::Sha3_224, true),
        CKM_SHA3_256_RSA_PKCS_PSS => (HashAlg::Sha3_256, true),
        CKM_SHA3_384_RSA_PKCS_PSS => (HashAlg::Sha3_384, true),
        CKM_SHA3_512_RSA_PKCS_PSS => (HashAlg::Sha3_512, true),
        _ => return None,
    })
}

fn ecdsa_hash(ty: u64) -> Option<HashAlg> {
    Some(match ty {
        CKM_ECDSA_SHA1 => HashAlg::Sha1,
        CKM_ECDSA_SHA224 => HashAlg::Sha224,
        CKM_ECDSA_SHA256 => HashAlg::Sha256,
        CKM_ECDSA_SHA384 => HashAlg::Sha384,
        CKM_ECDSA_SHA512 => HashAlg::Sha512,
        CKM_ECDSA_SHA3_224 => HashAlg::Sha3_224,
        CKM_ECDSA_SHA3_256 => HashAlg::Sha3_256,
        CKM_ECDSA_SHA3_384 => HashAlg::Sha3_384,
        CKM_ECDSA_SHA3_512 => HashAlg::Sha3_512,
        _ => return None,
    })
}

fn hmac_hash(ty: u64) -> Option<HashAlg> {
    Some(match ty {
        CKM_SHA_1_HMAC => HashAlg::Sha1,
        CKM_SHA224_HMAC => HashAlg::Sha224,
        CKM_SHA256_HMAC => HashAlg::Sha256,
        CKM_SHA384_HMAC => HashAlg::Sha384,
        CKM_SHA512_HMAC => HashAlg::Sha512,
        CKM_SHA3_224_HMAC => HashAlg::Sha3_224,
        CKM_SHA3_256_HMAC => HashAlg::Sha3_256,
        CKM_SHA3_384_HMAC => HashAlg::Sha3_384,
        CKM_SHA3_512_HMAC => HashAlg::Sha3_512,
        _ => return None,
    })
}

/// The usages a mechanism serves (the `CKF_*` of the engine's catalogue).
fn serves(ty: u64, u: Usage) -> bool {
    use Usage::*;
    let sign_verify = matches!(u, Sign | Verify);
    let enc_dec = matches!(u, Encrypt | Decrypt);
    match ty {
        CKM_RSA_PKCS | CKM_RSA_X_509 => sign_verify || enc_dec,
        CKM_RSA_PKCS_OAEP => enc_dec || matches!(u, Wrap | Unwrap),
        CKM_RSA_PKCS_PSS | CKM_ECDSA | CKM_EDDSA | CKM_ML_DSA | CKM_SLH_DSA => sign_verify,
        CKM_AES_ECB | CKM_AES_CBC | CKM_AES_CBC_PAD | CKM_AES_CTR => enc_dec,
        CKM_AES_GCM | CKM_CHACHA20_POLY1305 => enc_dec || matches!(u, Wrap | Unwrap),
        CKM_AES_KEY_WRAP | CKM_AES_KEY_WRAP_PAD | CKM_AES_KEY_WRAP_KWP => {
            matches!(u, Wrap | Unwrap)
        }
        CKM_ECDH1_DERIVE => u == Derive,
        CKM_ML_KEM => u == Kem,
        t if rsa_hash(t).is_some() || ecdsa_hash(t).is_some() || hmac_hash(t).is_some() => {
            sign_verify
        }
        t if digest_hash(t).is_some() => u == Digest,
        _ => false,
    }
}

/// True if a message-based operation with this mechanism works in parts
/// (`C_EncryptMessageBegin`, `C_SignMessageBegin`, …): the engine's catalogue gives these
/// mechanisms `CKF_MULTI_MESSAGE`. The mechanisms that sign a precomputed digest or an encoded
/// block are single-part in PKCS#11.
pub fn multi_message(ty: u64) -> bool {
    !matches!(
        ty,
        CKM_RSA_PKCS | CKM_RSA_X_509 | CKM_RSA_PKCS_PSS | CKM_ECDSA
    )
}

/// True if the `CKM_*` is known to this library at all.
pub fn known(ty: u64) -> bool {
    use Usage::*;
    [Sign, Encrypt, Digest, Wrap, Derive, Kem]
        .iter()
        .any(|u| serves(ty, *u))
}

fn bytes_param(p: &Param, what: &str) -> Result<Vec<u8>> {
    match p {
        Param::Bytes(b) => Ok(b.clone()),
        _ => fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "{what} needs a byte-string parameter"
        ),
    }
}

fn no_param(m: &RawMechanism) -> Result<()> {
    match &m.param {
        Param::None => Ok(()),
        Param::Bytes(b) if b.is_empty() => Ok(()),
        _ => fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "mechanism {:#x} takes no parameter",
            m.ty
        ),
    }
}

fn pss(p: &Param, hash: Option<HashAlg>) -> Result<PssParams> {
    let Param::Pss {
        hash: h,
        mgf,
        salt_len,
    } = p
    else {
        fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "PSS needs CK_RSA_PKCS_PSS_PARAMS"
        );
    };
    let ph = param_hash(*h)?;
    if hash.is_some_and(|x| x != ph) {
        fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "the PSS hashAlg differs from the mechanism's hash"
        );
    }
    Ok(PssParams {
        hash: ph,
        mgf: mgf_hash(*mgf)?,
        salt_len: *salt_len,
    })
}

/// Checks `m` for `usage` and converts it into the wire's mechanism.
pub fn to_wire(m: &RawMechanism, usage: Usage) -> Result<Mechanism> {
    if !serves(m.ty, usage) {
        fail!(
            CKR_MECHANISM_INVALID,
            "mechanism {:#x} does not serve {usage:?}",
            m.ty
        );
    }
    if let Param::Malformed(len) = m.param {
        fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "parameter of {len} bytes does not fit mechanism {:#x}",
            m.ty
        );
    }
    let p = &m.param;
    Ok(match m.ty {
        CKM_RSA_PKCS => {
            no_param(m)?;
            Mechanism::RsaPkcs {}
        }
        CKM_RSA_X_509 => {
            no_param(m)?;
            Mechanism::RsaX509 {}
        }
        CKM_RSA_PKCS_PSS => Mechanism::RsaPss {
            params: pss(p, None)?,
        },
        CKM_RSA_PKCS_OAEP => {
            let Param::Oaep {
                hash,
                mgf,
                source,
                label,
            } = p
            else {
                fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "OAEP needs CK_RSA_PKCS_OAEP_PARAMS"
                );
            };
            if *source != 0 && *source != CKZ_DATA_SPECIFIED {
                fail!(CKR_MECHANISM_PARAM_INVALID, "OAEP source {source:#x}");
            }
            Mechanism::RsaOaep {
                params: OaepParams {
                    hash: param_hash(*hash)?,
                    mgf: mgf_hash(*mgf)?,
                    label: label.clone(),
                },
            }
        }
        CKM_ECDSA => {
            no_param(m)?;
            Mechanism::Ecdsa {}
        }
        CKM_EDDSA => match p {
            // CK_EDDSA_PARAMS with phFlag = false and no context is pure EdDSA too.
            Param::None => Mechanism::Eddsa {},
            Param::Bytes(b) if b.is_empty() => Mechanism::Eddsa {},
            _ => fail!(
                CKR_MECHANISM_PARAM_INVALID,
                "only pure EdDSA without context is supported"
            ),
        },
        CKM_ML_DSA | CKM_SLH_DSA => {
            let context = match p {
                Param::None => Vec::new(),
                Param::SignContext { context, .. } => context.clone(),
                _ => fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "needs CK_SIGN_ADDITIONAL_CONTEXT or no parameter"
                ),
            };
            if context.len() > 255 {
                fail!(CKR_MECHANISM_PARAM_INVALID, "context longer than 255 bytes");
            }
            if m.ty == CKM_ML_DSA {
                Mechanism::MlDsa { context }
            } else {
                Mechanism::SlhDsa { context }
            }
        }
        CKM_AES_ECB => {
            no_param(m)?;
            Mechanism::AesEcb {}
        }
        CKM_AES_CBC | CKM_AES_CBC_PAD => {
            let iv = bytes_param(p, "AES-CBC")?;
            if iv.len() != 16 {
                fail!(CKR_MECHANISM_PARAM_INVALID, "AES-CBC needs a 16-byte IV");
            }
            if m.ty == CKM_AES_CBC {
                Mechanism::AesCbc { iv }
            } else {
                Mechanism::AesCbcPad { iv }
            }
        }
        CKM_AES_CTR => {
            let Param::Ctr { counter_bits, cb } = p else {
                fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "AES-CTR needs CK_AES_CTR_PARAMS"
                );
            };
            if !(1..=128).contains(counter_bits) {
                fail!(CKR_MECHANISM_PARAM_INVALID, "counter bits must be 1..=128");
            }
            Mechanism::AesCtr {
                iv: cb.to_vec(),
                counter_bits: *counter_bits as u32,
            }
        }
        CKM_AES_GCM => {
            let Param::Gcm { iv, aad, tag_bits } = p else {
                fail!(CKR_MECHANISM_PARAM_INVALID, "AES-GCM needs CK_GCM_PARAMS");
            };
            gcm(iv, aad, *tag_bits)?
        }
        CKM_CHACHA20_POLY1305 => {
            let Param::ChaChaPoly { nonce, aad } = p else {
                fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "ChaCha20-Poly1305 needs CK_SALSA20_CHACHA20_POLY1305_PARAMS"
                );
            };
            if nonce.len() != 12 {
                fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "ChaCha20-Poly1305 needs a 12-byte nonce"
                );
            }
            Mechanism::ChaCha20Poly1305 {
                nonce: nonce.clone(),
                aad: aad.clone(),
            }
        }
        CKM_AES_KEY_WRAP => {
            no_param(m)?;
            Mechanism::AesKeyWrap {}
        }
        CKM_AES_KEY_WRAP_PAD | CKM_AES_KEY_WRAP_KWP => {
            no_param(m)?;
            Mechanism::AesKeyWrapPad {}
        }
        CKM_ML_KEM => {
            no_param(m)?;
            Mechanism::MlKem {}
        }
        CKM_ECDH1_DERIVE => {
            let Param::Ecdh {
                kdf,
                shared,
                public,
            } = p
            else {
                fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "ECDH needs CK_ECDH1_DERIVE_PARAMS"
                );
            };
            let kdf = kdf_hash(*kdf)?;
            if kdf.is_none() && !shared.is_empty() {
                fail!(CKR_MECHANISM_PARAM_INVALID, "CKD_NULL takes no shared data");
            }
            if public.is_empty() {
                fail!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "ECDH needs the peer's public point"
                );
            }
            Mechanism::Ecdh1Derive {
                params: EcdhParams {
                    kdf,
                    shared_data: shared.clone(),
                    public_data: public.clone(),
                },
            }
        }
        t => {
            if let Some((hash, is_pss)) = rsa_hash(t) {
                if is_pss {
                    Mechanism::RsaPssHash {
                        hash,
                        params: pss(p, Some(hash))?,
                    }
                } else {
                    no_param(m)?;
                    Mechanism::RsaPkcsHash { hash }
                }
            } else if let Some(hash) = ecdsa_hash(t) {
                no_param(m)?;
                Mechanism::EcdsaHash { hash }
            } else if let Some(hash) = hmac_hash(t) {
                no_param(m)?;
                Mechanism::Hmac { hash }
            } else if let Some(hash) = digest_hash(t) {
                no_param(m)?;
                Mechanism::Digest { hash }
            } else {
                fail!(CKR_MECHANISM_INVALID, "mechanism {t:#x} is not supported")
            }
        }
    })
}

/// `CK_GCM_PARAMS` checked into the wire's mechanism.
pub fn gcm(iv: &[u8], aad: &[u8], tag_bits: u64) -> Result<Mechanism> {
    if iv.is_empty() || iv.len() > 256 {
        fail!(CKR_MECHANISM_PARAM_INVALID, "GCM IV must be 1..=256 bytes");
    }
    if !(32..=128).contains(&tag_bits) || tag_bits % 8 != 0 {
        fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "GCM tag must be 32..=128 bits, a multiple of 8"
        );
    }
    Ok(Mechanism::AesGcm {
        params: GcmParams {
            iv: iv.to_vec(),
            aad: aad.to_vec(),
            tag_bits: tag_bits as u32,
        },
    })
}

/// The mechanism of `C_WrapKeyAuthenticated` / `C_UnwrapKeyAuthenticated` with the function's
/// associated data `ad` bound to it. Only the AEADs take associated data; associated data in
/// the mechanism parameter as well is accepted only when it is the same bytes (or when `ad`
/// is empty), so that neither is silently dropped.
pub fn with_associated_data(m: Mechanism, ad: &[u8]) -> Result<Mechanism> {
    let own = match &m {
        Mechanism::AesGcm { params } => &params.aad,
        Mechanism::ChaCha20Poly1305 { aad, .. } => aad,
        _ => fail!(
            CKR_MECHANISM_INVALID,
            "authenticated wrapping needs an AEAD mechanism (CKM_AES_GCM, CKM_CHACHA20_POLY1305)"
        ),
    };
    if ad.is_empty() || own.as_slice() == ad {
        return Ok(m);
    }
    if !own.is_empty() {
        fail!(
            CKR_MECHANISM_PARAM_INVALID,
            "associated data given both in the mechanism parameter and as an argument, and they differ"
        );
    }
    Ok(match m {
        Mechanism::AesGcm { mut params } => {
            params.aad = ad.to_vec();
            Mechanism::AesGcm { params }
        }
        Mechanism::ChaCha20Poly1305 { nonce, .. } => Mechanism::ChaCha20Poly1305 {
            nonce,
            aad: ad.to_vec(),
        },
        other => other,
    })
}

/// The exact output length of a symmetric encryption, computable without the key (`None`
/// when it depends on the key, as for RSA).
pub fn encrypt_len(m: &Mechanism, input: usize) -> Option<usize> {
    Some(match m {
        Mechanism::AesEcb {} | Mechanism::AesCbc { .. } | Mechanism::AesCtr { .. } => input,
        Mechanism::AesCbcPad { .. } => (input / 16 + 1) * 16,
        Mechanism::AesGcm { params } => input + params.tag_bits as usize / 8,
        Mechanism::ChaCha20Poly1305 { .. } => input + 16,
        _ => return None,
    })
}

/// True for the key-generation mechanisms of `C_GenerateKey`.
pub fn is_key_gen(ty: u64) -> bool {
    matches!(
        ty,
        CKM_AES_KEY_GEN | CKM_GENERIC_SECRET_KEY_GEN | CKM_CHACHA20_KEY_GEN
    )
}

/// True for the key-pair-generation mechanisms of `C_GenerateKeyPair`.
pub fn is_key_pair_gen(ty: u64) -> bool {
    matches!(
        ty,
        CKM_RSA_PKCS_KEY_PAIR_GEN
            | CKM_EC_KEY_PAIR_GEN
            | CKM_EC_EDWARDS_KEY_PAIR_GEN
            | CKM_ML_DSA_KEY_PAIR_GEN
            | CKM_ML_KEM_KEY_PAIR_GEN
            | CKM_SLH_DSA_KEY_PAIR_GEN
    )
}

/// ML-KEM ciphertext length of a parameter set.
pub fn ml_kem_ciphertext_len(parameter_set: u64) -> Option<usize> {
    Some(match parameter_set {
        CKP_ML_KEM_512 => 768,
        CKP_ML_KEM_768 => 1088,
        CKP_ML_KEM_1024 => 1568,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ty: u64, param: Param) -> RawMechanism {
        RawMechanism { ty, param }
    }

    #[test]
    fn conversions_and_refusals() {
        let m = to_wire(&raw(CKM_SHA256_RSA_PKCS, Param::None), Usage::Sign);
        assert_eq!(
            m.ok(),
            Some(Mechanism::RsaPkcsHash {
                hash: HashAlg::Sha256
            })
        );
        let e = to_wire(&raw(CKM_SHA256_RSA_PKCS, Param::None), Usage::Encrypt);
        assert_eq!(e.map_err(|e| e.rv), Err(CKR_MECHANISM_INVALID));
        let e = to_wire(&raw(CKM_AES_CBC, Param::Bytes(vec![0; 8])), Usage::Encrypt);
        assert_eq!(e.map_err(|e| e.rv), Err(CKR_MECHANISM_PARAM_INVALID));
        let pss = Param::Pss {
            hash: CKM_SHA384,
            mgf: CKG_MGF1_SHA384,
            salt_len: 48,
        };
        let e = to_wire(&raw(CKM_SHA256_RSA_PKCS_PSS, pss.clone()), Usage::Sign);
        assert_eq!(e.map_err(|e| e.rv), Err(CKR_MECHANISM_PARAM_INVALID));
        assert!(to_wire(&raw(CKM_SHA384_RSA_PKCS_PSS, pss), Usage::Verify).is_ok());
        let e = to_wire(&raw(CKM_AES_GCM, Param::Malformed(3)), Usage::Encrypt);
        assert_eq!(e.map_err(|e| e.rv), Err(CKR_MECHANISM_PARAM_INVALID));
        assert_eq!(
            encrypt_len(&Mechanism::AesCbcPad { iv: vec![0; 16] }, 16),
            Some(32)
        );
        assert!(known(CKM_SHA256) && !known(0x7777_7777));
    }
}

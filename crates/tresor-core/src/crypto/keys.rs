//! [`LoadedKey`]: a key parsed once, with every operation dispatched on (key, mechanism).

use std::fmt;

use openssl::pkey::{PKey, Private, Public};
use zeroize::Zeroizing;

use super::aead::FastAead;
use super::types::{KeyAlg, KeyMaterial, Mechanism, PublicInfo};
use super::{ec, ed, gen, hash, pq, rsa, sym};
use crate::bail;
use crate::error::{Error, Result, Rv};

/// Precomputed aws-lc-rs keys for the hot signing paths (see `ec.rs` / `ed.rs` for figures).
pub(crate) enum Fast {
    /// No faster path: OpenSSL only.
    None,
    /// ECDSA P-256/SHA-256 or P-384/SHA-384 with fixed (r‖s) output.
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
    /// Ed25519.
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
    /// ML-DSA (pure, empty context): aws-lc-rs signed ML-DSA-65 at 6 934/s against OpenSSL
    /// 3.6's 1 133/s on this machine (`tresor bench engine`, 2026-11-22).
    MlDsa(aws_lc_rs::signature::PqdsaKeyPair),
    /// RSA PKCS#1 v1.5 with SHA-256/384/512: aws-lc-rs signed RSA-2048 at 4 047/s against
    /// OpenSSL 3.6's 3 790/s here (`tresor bench engine`, 2026-11-23).
    Rsa(aws_lc_rs::signature::RsaKeyPair),
}

/// An asymmetric key: the public half always, the private half if present.
pub(crate) struct Asym {
    pub(crate) private: Option<PKey<Private>>,
    pub(crate) public: PKey<Public>,
    pub(crate) info: PublicInfo,
    pub(crate) fast: Fast,
    /// aws-lc-rs parsed public key for fast verification (P-256/384/521 ECDSA, Ed25519).
    pub(crate) fast_pub: Option<aws_lc_rs::signature::ParsedPublicKey>,
}

enum Kind {
    Asym(Box<Asym>),
    Secret {
        value: Zeroizing<Vec<u8>>,
        /// The prepared HMAC key (GenericSecret only).
        hmac: Option<PKey<Private>>,
        /// The prepared AEAD key (AES, ChaCha20).
        aead: Option<Box<FastAead>>,
    },
}

/// A parsed key, built once and cached by the engine; every operation uses it without
/// re-parsing. `Send + Sync`; its `Debug` shows only the algorithm.
pub struct LoadedKey {
    alg: KeyAlg,
    kind: Kind,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match &self.kind {
            Kind::Asym(a) if a.private.is_some() => "private",
            Kind::Asym(_) => "public",
            Kind::Secret { .. } => "secret",
        };
        write!(f, "LoadedKey({:?}, {k})", self.alg)
    }
}

/// Shortest AEAD tag accepted for wrapping: a wrapped key is kept and replayed for years, so
/// the truncated GCM tags that `C_Encrypt` allows (32–88 bits) are refused here.
const MIN_WRAP_TAG_BITS: usize = 96;

/// Refuses an AES-GCM wrapping mechanism whose tag is shorter than [`MIN_WRAP_TAG_BITS`].
fn wrap_tag_ok(m: &Mechanism) -> Result<()> {
    if let Mechanism::AesGcm(p) = m {
        if p.tag_bits < MIN_WRAP_TAG_BITS {
            bail!(
                Rv::MechanismParamInvalid,
                "wrapping with AES-GCM needs a tag of at least {MIN_WRAP_TAG_BITS} bits, not {}",
                p.tag_bits
            );
        }
    }
    Ok(())
}

/// The error for a mechanism that does not fit the key.
pub(crate) fn mismatch(m: &Mechanism) -> Error {
    if matches!(m, Mechanism::Digest(_)) {
        Error::new(Rv::MechanismInvalid, "digest is not a key operation")
    } else {
        Error::new(
            Rv::KeyTypeInconsistent,
            "mechanism does not fit the key type",
        )
    }
}

/// The aws-lc-rs verification key, where aws-lc-rs is the faster verifier.
fn fast_public(alg: KeyAlg, info: &PublicInfo) -> Option<aws_lc_rs::signature::ParsedPublicKey> {
    let point = super::der::parse_octet_string(info.ec_point.as_deref()?)?;
    match alg {
        KeyAlg::Ec(c) => ec::fast_public(c, point),
        KeyAlg::Ed(super::types::EdCurve::Ed25519) => ed::fast_public(point),
        _ => None,
    }
}

fn need_private(a: &Asym) -> Result<&PKey<Private>> {
    a.private
        .as_ref()
        .ok_or_else(|| Error::new(Rv::KeyTypeInconsistent, "operation needs a private key"))
}

impl LoadedKey {
    /// Parses a PKCS#8 private key of algorithm `alg` (`KeyTypeInconsistent` if the DER holds
    /// another algorithm or curve, `AttributeValueInvalid` if it is not a valid key).
    pub fn private(alg: KeyAlg, pkcs8_der: &[u8]) -> Result<LoadedKey> {
        let pkey = PKey::private_key_from_pkcs8(pkcs8_der)
            .map_err(|_| Error::new(Rv::AttributeValueInvalid, "not a valid PKCS#8 private key"))?;
        let found = gen::alg_of(&pkey)?;
        if found != alg {
            bail!(
                Rv::KeyTypeInconsistent,
                "key is {found:?}, expected {alg:?}"
            );
        }
        let public = PKey::public_key_from_der(&pkey.public_key_to_der()?)?;
        let info = gen::public_info(alg, &public)?;
        let fast = match alg {
            KeyAlg::Ec(c) => ec::fast_key(c, pkcs8_der),
            KeyAlg::Rsa => rsa::fast_key(pkcs8_der),
            KeyAlg::Ed(_) => ed::fast_key(pkcs8_der),
            KeyAlg::MlDsa(p) => pq::fast_mldsa(p, pkcs8_der),
            _ => Fast::None,
        };
        let fast_pub = fast_public(alg, &info);
        let asym = Asym {
            private: Some(pkey),
            public,
            info,
            fast,
            fast_pub,
        };
        Ok(LoadedKey {
            alg,
            kind: Kind::Asym(Box::new(asym)),
        })
    }

    /// Parses a DER `SubjectPublicKeyInfo` of algorithm `alg`.
    pub fn public(alg: KeyAlg, spki_der: &[u8]) -> Result<LoadedKey> {
        let public = PKey::public_key_from_der(spki_der)
            .map_err(|_| Error::new(Rv::AttributeValueInvalid, "not a valid public key"))?;
        let found = gen::alg_of(&public)?;
        if found != alg {
            bail!(
                Rv::KeyTypeInconsistent,
                "key is {found:?}, expected {alg:?}"
            );
        }
        let info = gen::public_info(alg, &public)?;
        let fast_pub = fast_public(alg, &info);
        let asym = Asym {
            private: None,
            public,
            info,
            fast: Fast::None,
            fast_pub,
        };
        Ok(LoadedKey {
            alg,
            kind: Kind::Asym(Box::new(asym)),
        })
    }

    /// A secret key: AES (16/24/32 bytes), ChaCha20 (32) or GenericSecret (1..=512, HMAC).
    pub fn secret(alg: KeyAlg, value: &[u8]) -> Result<LoadedKey> {
        gen::check_secret_len(alg, value.len())?;
        let hmac = match alg {
            KeyAlg::GenericSecret => Some(PKey::hmac(value)?),
            _ => None,
        };
        Ok(LoadedKey {
            alg,
            kind: Kind::Secret {
                value: Zeroizing::new(value.to_vec()),
                hmac,
                aead: FastAead::new(alg, value).map(Box::new),
            },
        })
    }

    /// The key's algorithm.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// The public half (asymmetric keys only).
    pub fn public_info(&self) -> Option<&PublicInfo> {
        match &self.kind {
            Kind::Asym(a) => Some(&a.info),
            Kind::Secret { .. } => None,
        }
    }

    /// Signs (or MACs, for secret keys) `data`.
    pub fn sign(&self, m: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
        match (&self.kind, self.alg) {
            (Kind::Secret { hmac: Some(k), .. }, _) => match m {
                Mechanism::Hmac(h) => hash::hmac(k, *h, data),
                _ => Err(mismatch(m)),
            },
            (Kind::Secret { .. }, _) => Err(mismatch(m)),
            (Kind::Asym(a), KeyAlg::Rsa) => match (&a.fast, m) {
                (Fast::Rsa(k), Mechanism::RsaPkcsHash(h)) if rsa::fast_supports(*h) => {
                    rsa::sign_fast(k, *h, data)
                }
                _ => rsa::sign(
                    need_private(a)?,
                    a.info.modulus.as_deref().unwrap_or(&[]),
                    m,
                    data,
                ),
            },
            (Kind::Asym(a), KeyAlg::Ec(c)) => ec::sign(need_private(a)?, c, &a.fast, m, data),
            (Kind::Asym(a), KeyAlg::Ed(_)) => ed::sign(need_private(a)?, &a.fast, m, data),
            (Kind::Asym(a), KeyAlg::MlDsa(_) | KeyAlg::SlhDsa(_)) => match (&a.fast, m) {
                (Fast::MlDsa(k), Mechanism::MlDsa { context }) if context.is_empty() => {
                    pq::sign_fast_mldsa(k, data)
                }
                _ => pq::sign(self.alg, need_private(a)?, m, data),
            },
            _ => Err(mismatch(m)),
        }
    }

    /// Verifies `sig` over `data` (`SignatureInvalid` / `SignatureLenRange` on a bad signature).
    /// Works with public and private keys, and with GenericSecret keys for HMAC.
    pub fn verify(&self, m: &Mechanism, data: &[u8], sig: &[u8]) -> Result<()> {
        match (&self.kind, self.alg) {
            (Kind::Secret { hmac: Some(k), .. }, _) => match m {
                Mechanism::Hmac(h) => {
                    let mac = hash::hmac(k, *h, data)?;
                    if sig.len() != mac.len() {
                        bail!(Rv::SignatureLenRange, "HMAC length is {}", mac.len());
                    }
                    if openssl::memcmp::eq(&mac, sig) {
                        Ok(())
                    } else {
                        bail!(Rv::SignatureInvalid, "HMAC mismatch")
                    }
                }
                _ => Err(mismatch(m)),
            },
            (Kind::Secret { .. }, _) => Err(mismatch(m)),
            (Kind::Asym(a), KeyAlg::Rsa) => rsa::verify(
                &a.public,
                a.info.modulus.as_deref().unwrap_or(&[]),
                m,
                data,
                sig,
            ),
            (Kind::Asym(a), KeyAlg::Ec(c)) => {
                ec::verify(&a.public, a.fast_pub.as_ref(), c, m, data, sig)
            }
            (Kind::Asym(a), KeyAlg::Ed(_)) => {
                ed::verify(&a.public, a.fast_pub.as_ref(), m, data, sig)
            }
            (Kind::Asym(a), KeyAlg::MlDsa(_) | KeyAlg::SlhDsa(_)) => {
                pq::verify(self.alg, &a.public, m, data, sig)
            }
            _ => Err(mismatch(m)),
        }
    }

    /// The exact (or, for RSA-style mechanisms, maximum) signature length, without signing.
    pub fn signature_len(&self, m: &Mechanism) -> Result<usize> {
        match (&self.kind, self.alg, m) {
            (Kind::Secret { hmac: Some(_), .. }, _, Mechanism::Hmac(h)) => Ok(hash::hash_len(*h)),
            (Kind::Secret { .. }, _, _) => Err(mismatch(m)),
            (Kind::Asym(_), KeyAlg::Ec(c), _) => {
                ec::check_sign_mech(m)?;
                Ok(2 * super::der::field_len(c))
            }
            (Kind::Asym(a), KeyAlg::Rsa, _) => {
                rsa::check_sign_mech(m)?;
                Ok(a.public.size())
            }
            (Kind::Asym(a), KeyAlg::Ed(_), Mechanism::Eddsa) => Ok(a.public.size()),
            (Kind::Asym(_), KeyAlg::MlDsa(p), Mechanism::MlDsa { .. }) => Ok(pq::mldsa_sig_len(p)),
            (Kind::Asym(_), KeyAlg::SlhDsa(p), Mechanism::SlhDsa { .. }) => {
                Ok(pq::slhdsa_sig_len(p))
            }
            _ => Err(mismatch(m)),
        }
    }

    /// Encrypts `data`.
    pub fn encrypt(&self, m: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
        match (&self.kind, self.alg) {
            (Kind::Secret { value, aead, .. }, KeyAlg::Aes | KeyAlg::ChaCha20) => {
                match aead.as_ref().and_then(|f| f.seal(m, data)) {
                    Some(r) => r,
                    None => sym::encrypt(self.alg, value, m, data),
                }
            }
            (Kind::Asym(a), KeyAlg::Rsa) => {
                rsa::encrypt(&a.public, a.info.modulus.as_deref().unwrap_or(&[]), m, data)
            }
            _ => Err(mismatch(m)),
        }
    }

    /// Decrypts `data` (`EncryptedDataInvalid` on tag/padding failure, `EncryptedDataLenRange`
    /// on a wrong length).
    pub fn decrypt(&self, m: &Mechanism, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match (&self.kind, self.alg) {
            (Kind::Secret { value, aead, .. }, KeyAlg::Aes | KeyAlg::ChaCha20) => {
                match aead.as_ref().and_then(|f| f.open(m, data)) {
                    Some(r) => r,
                    None => sym::decrypt(self.alg, value, m, data),
                }
            }
            (Kind::Asym(a), KeyAlg::Rsa) => rsa::decrypt(need_private(a)?, m, data),
            _ => Err(mismatch(m)),
        }
    }

    /// Wraps `target` (a raw secret value or a PKCS#8 private key) with AES-KW, AES-KWP,
    /// RSA-OAEP, or an AEAD (AES-GCM, ChaCha20-Poly1305: ciphertext ‖ tag, the associated data
    /// bound to it; `C_WrapKeyAuthenticated`).
    pub fn wrap(&self, m: &Mechanism, target: &KeyMaterial) -> Result<Vec<u8>> {
        let t = target.expose();
        match (&self.kind, self.alg, m) {
            (Kind::Secret { value, .. }, KeyAlg::Aes, Mechanism::AesGcm(_))
            | (Kind::Secret { value, .. }, KeyAlg::ChaCha20, Mechanism::ChaCha20Poly1305 { .. }) => {
                wrap_tag_ok(m)?;
                sym::encrypt(self.alg, value, m, t)
            }
            (Kind::Secret { value, .. }, KeyAlg::Aes, Mechanism::AesKeyWrap) => {
                sym::wrap(value, false, t)
            }
            (Kind::Secret { value, .. }, KeyAlg::Aes, Mechanism::AesKeyWrapPad) => {
                sym::wrap(value, true, t)
            }
            (Kind::Asym(a), KeyAlg::Rsa, Mechanism::RsaOaep(_)) => {
                rsa::encrypt(&a.public, &[], m, t).map_err(|e| {
                    if e.rv() == Rv::DataLenRange {
                        Error::new(Rv::KeyNotWrappable, "key too long for RSA-OAEP wrapping")
                    } else {
                        e
                    }
                })
            }
            _ => Err(Error::new(
                Rv::WrappingKeyTypeInconsistent,
                "mechanism does not fit the wrapping key",
            )),
        }
    }

    /// Unwraps `wrapped` to the key bytes (`WrappedKeyInvalid` / `WrappedKeyLenRange` on bad
    /// input).
    pub fn unwrap(&self, m: &Mechanism, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match (&self.kind, self.alg, m) {
            (Kind::Secret { value, .. }, KeyAlg::Aes, Mechanism::AesGcm(_))
            | (Kind::Secret { value, .. }, KeyAlg::ChaCha20, Mechanism::ChaCha20Poly1305 { .. }) => {
                wrap_tag_ok(m)?;
                sym::decrypt(self.alg, value, m, wrapped).map_err(|e| match e.rv() {
                    Rv::EncryptedDataLenRange => {
                        Error::new(Rv::WrappedKeyLenRange, "wrapped key shorter than the tag")
                    }
                    Rv::EncryptedDataInvalid => Error::new(
                        Rv::WrappedKeyInvalid,
                        "the wrapped key or its associated data fails authentication",
                    ),
                    _ => e,
                })
            }
            (Kind::Secret { value, .. }, KeyAlg::Aes, Mechanism::AesKeyWrap) => {
                sym::unwrap(value, false, wrapped)
            }
            (Kind::Secret { value, .. }, KeyAlg::Aes, Mechanism::AesKeyWrapPad) => {
                sym::unwrap(value, true, wrapped)
            }
            (Kind::Asym(a), KeyAlg::Rsa, Mechanism::RsaOaep(_)) => {
                rsa::decrypt(need_private(a)?, m, wrapped).map_err(|e| match e.rv() {
                    Rv::EncryptedDataLenRange => Error::new(
                        Rv::WrappedKeyLenRange,
                        "wrapped key length is not the modulus length",
                    ),
                    Rv::EncryptedDataInvalid => {
                        Error::new(Rv::WrappedKeyInvalid, "OAEP decoding failed")
                    }
                    _ => e,
                })
            }
            _ => Err(Error::new(
                Rv::UnwrappingKeyTypeInconsistent,
                "mechanism does not fit the unwrapping key",
            )),
        }
    }

    /// Derives a shared secret (`Ecdh1Derive`).
    pub fn derive(&self, m: &Mechanism, out_len: usize) -> Result<Zeroizing<Vec<u8>>> {
        match (&self.kind, self.alg, m) {
            (Kind::Asym(a), KeyAlg::Ec(c), Mechanism::Ecdh1Derive(p)) => {
                ec::derive(need_private(a)?, c, p, out_len)
            }
            _ => Err(mismatch(m)),
        }
    }

    /// ML-KEM encapsulation: (ciphertext, 32-byte shared secret).
    pub fn encapsulate(&self, m: &Mechanism) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        match (&self.kind, self.alg, m) {
            (Kind::Asym(a), KeyAlg::MlKem(_), Mechanism::MlKem) => {
                Ok(tresor_pqc::encapsulate(&a.public)?)
            }
            _ => Err(mismatch(m)),
        }
    }

    /// ML-KEM decapsulation (`EncryptedDataLenRange` on a wrong ciphertext length).
    pub fn decapsulate(&self, m: &Mechanism, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match (&self.kind, self.alg, m) {
            (Kind::Asym(a), KeyAlg::MlKem(p), Mechanism::MlKem) => {
                pq::decapsulate(p, need_private(a)?, ciphertext)
            }
            _ => Err(mismatch(m)),
        }
    }
}

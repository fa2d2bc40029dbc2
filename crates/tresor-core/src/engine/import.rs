//! Turning a creation template's key material into the engine's forms: PKCS#8 DER for private
//! keys, SPKI for public keys, raw bytes for secret keys.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::pkey::{Id, PKey};
use openssl::rsa::RsaPrivateKeyBuilder;
use zeroize::Zeroizing;

use crate::ck::*;
use crate::crypto::{self, EdCurve, KeyAlg, KeyMaterial, PublicInfo};
use crate::error::{Error, Result, Rv};
use crate::template::Template;

fn need<'a>(t: &'a Template, ty: u64, what: &str) -> Result<&'a [u8]> {
    t.bytes(ty)
        .ok_or_else(|| Error::new(Rv::TemplateIncomplete, format!("{what} is required")))
}

fn bn(b: &[u8]) -> Result<BigNum> {
    Ok(BigNum::from_slice(b)?)
}

fn ec_group(alg: KeyAlg) -> Result<EcGroup> {
    let KeyAlg::Ec(c) = alg else {
        return Err(Error::new(Rv::GeneralError, "not an EC key"));
    };
    let nid = match c {
        crypto::Curve::P256 => openssl::nid::Nid::X9_62_PRIME256V1,
        crypto::Curve::P384 => openssl::nid::Nid::SECP384R1,
        crypto::Curve::P521 => openssl::nid::Nid::SECP521R1,
        crypto::Curve::Secp256k1 => openssl::nid::Nid::SECP256K1,
        crypto::Curve::BrainpoolP256r1 => openssl::nid::Nid::BRAINPOOL_P256R1,
        crypto::Curve::BrainpoolP384r1 => openssl::nid::Nid::BRAINPOOL_P384R1,
        crypto::Curve::BrainpoolP512r1 => openssl::nid::Nid::BRAINPOOL_P512R1,
    };
    Ok(EcGroup::from_curve_name(nid)?)
}

/// `CKA_EC_POINT` is a DER OCTET STRING holding the point; some callers pass the raw point.
fn unwrap_octet_string(b: &[u8]) -> &[u8] {
    if b.len() >= 2 && b[0] == 0x04 {
        let (len, hdr) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else if b[1] == 0x81 && b.len() >= 3 {
            (b[2] as usize, 3)
        } else {
            (usize::MAX, 0)
        };
        if hdr > 0 && b.len() == hdr + len {
            return &b[hdr..];
        }
    }
    b
}

/// Private key material of a `C_CreateObject` template → (PKCS#8, public info).
pub(crate) fn private_from_template(
    alg: KeyAlg,
    t: &Template,
) -> Result<(KeyMaterial, PublicInfo)> {
    let invalid = |what: &str| {
        Error::new(
            Rv::AttributeValueInvalid,
            format!("{what} is not a valid key"),
        )
    };
    let pk8: Zeroizing<Vec<u8>> = if let Some(der) = t.bytes(CKA_TRESOR_PKCS8) {
        let detected = crypto::detect_private(der)?;
        if detected != alg {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                "the PKCS#8 key is not of the template's key type or curve",
            ));
        }
        Zeroizing::new(der.to_vec())
    } else {
        match alg {
            KeyAlg::Rsa => {
                let n = bn(need(t, CKA_MODULUS, "CKA_MODULUS")?)?;
                let e = bn(need(t, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?)?;
                let d = bn(need(t, CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?)?;
                let mut b = RsaPrivateKeyBuilder::new(n, e, d)?;
                if let (Some(p), Some(q)) = (t.bytes(CKA_PRIME_1), t.bytes(CKA_PRIME_2)) {
                    b = b.set_factors(bn(p)?, bn(q)?)?;
                }
                if let (Some(a), Some(b2), Some(c)) = (
                    t.bytes(CKA_EXPONENT_1),
                    t.bytes(CKA_EXPONENT_2),
                    t.bytes(CKA_COEFFICIENT),
                ) {
                    b = b.set_crt_params(bn(a)?, bn(b2)?, bn(c)?)?;
                }
                let rsa = b.build();
                if !rsa.check_key().unwrap_or(false) {
                    return Err(invalid("the RSA private key"));
                }
                Zeroizing::new(PKey::from_rsa(rsa)?.private_key_to_pkcs8()?)
            }
            KeyAlg::Ec(_) => {
                let group = ec_group(alg)?;
                let d = bn(need(t, CKA_VALUE, "CKA_VALUE (the private scalar)")?)?;
                let mut ctx = BigNumContext::new()?;
                let mut q = EcPoint::new(&group)?;
                q.mul_generator2(&group, &d, &mut ctx)?;
                let key = EcKey::from_private_components(&group, &d, &q)?;
                key.check_key().map_err(|_| invalid("the EC private key"))?;
                Zeroizing::new(PKey::from_ec_key(key)?.private_key_to_pkcs8()?)
            }
            KeyAlg::Ed(c) => {
                let raw = need(t, CKA_VALUE, "CKA_VALUE (the private key)")?;
                let id = if c == EdCurve::Ed25519 {
                    Id::ED25519
                } else {
                    Id::ED448
                };
                let k = PKey::private_key_from_raw_bytes(raw, id)
                    .map_err(|_| invalid("the EdDSA private key"))?;
                Zeroizing::new(k.private_key_to_pkcs8()?)
            }
            _ => {
                return Err(Error::new(
                    Rv::TemplateIncomplete,
                    "post-quantum private keys are imported as PKCS#8 in CKA_TRESOR_PKCS8",
                ))
            }
        }
    };
    let info = crypto::public_info_from_private(alg, &pk8)?;
    Ok((KeyMaterial(pk8), info))
}

/// Public key material of a `C_CreateObject` template → public info.
pub(crate) fn public_from_template(alg: KeyAlg, t: &Template) -> Result<PublicInfo> {
    let spki: Vec<u8> = if let Some(spki) = t.bytes(CKA_PUBLIC_KEY_INFO) {
        spki.to_vec()
    } else {
        match alg {
            KeyAlg::Rsa => {
                let n = bn(need(t, CKA_MODULUS, "CKA_MODULUS")?)?;
                let e = bn(need(t, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?)?;
                let rsa = openssl::rsa::Rsa::from_public_components(n, e)?;
                PKey::from_rsa(rsa)?.public_key_to_der()?
            }
            KeyAlg::Ec(_) => {
                let group = ec_group(alg)?;
                let mut ctx = BigNumContext::new()?;
                let point = unwrap_octet_string(need(t, CKA_EC_POINT, "CKA_EC_POINT")?);
                let p = EcPoint::from_bytes(&group, point, &mut ctx).map_err(|_| {
                    Error::new(
                        Rv::AttributeValueInvalid,
                        "CKA_EC_POINT is not a point on the curve",
                    )
                })?;
                PKey::from_ec_key(EcKey::from_public_key(&group, &p)?)?.public_key_to_der()?
            }
            KeyAlg::Ed(c) => {
                let point = unwrap_octet_string(need(t, CKA_EC_POINT, "CKA_EC_POINT")?);
                let id = if c == EdCurve::Ed25519 {
                    Id::ED25519
                } else {
                    Id::ED448
                };
                PKey::public_key_from_raw_bytes(point, id)
                    .map_err(|_| {
                        Error::new(
                            Rv::AttributeValueInvalid,
                            "CKA_EC_POINT is not an EdDSA public key",
                        )
                    })?
                    .public_key_to_der()?
            }
            _ => {
                return Err(Error::new(
                    Rv::TemplateIncomplete,
                    "CKA_PUBLIC_KEY_INFO is required for this key type",
                ))
            }
        }
    };
    let (detected, info) = crypto::detect_public(&spki)?;
    if detected != alg {
        return Err(Error::new(
            Rv::TemplateInconsistent,
            "the public key is not of the template's key type or curve",
        ));
    }
    Ok(info)
}

/// Check a secret key value's length for its type.
pub(crate) fn check_secret_len(alg: KeyAlg, len: usize) -> Result<()> {
    let ok = match alg {
        KeyAlg::Aes => matches!(len, 16 | 24 | 32),
        KeyAlg::ChaCha20 => len == 32,
        KeyAlg::GenericSecret => (1..=512).contains(&len),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Rv::KeySizeRange,
            format!("{len} bytes is not a valid length for this key type"),
        ))
    }
}

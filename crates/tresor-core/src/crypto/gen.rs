//! Key generation, algorithm detection, public-key information and random bytes.

use std::ffi::CStr;

use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::pkey::{HasParams, HasPublic, Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use zeroize::Zeroizing;

use super::der::{curve_from_nid, curve_nid, curve_oid_der, octet_string};
use super::types::{
    AnyCurve, EdCurve, KeyAlg, KeyMaterial, KeyPairParams, MlDsaParam, MlKemParam, PublicInfo,
    SlhDsaParam,
};
use crate::bail;
use crate::error::{Error, Result, Rv};

const ML_DSA: [(MlDsaParam, &CStr); 3] = [
    (MlDsaParam::MlDsa44, c"ML-DSA-44"),
    (MlDsaParam::MlDsa65, c"ML-DSA-65"),
    (MlDsaParam::MlDsa87, c"ML-DSA-87"),
];
const ML_KEM: [(MlKemParam, &CStr); 3] = [
    (MlKemParam::MlKem512, c"ML-KEM-512"),
    (MlKemParam::MlKem768, c"ML-KEM-768"),
    (MlKemParam::MlKem1024, c"ML-KEM-1024"),
];
const SLH_DSA: [(SlhDsaParam, &CStr); 12] = [
    (SlhDsaParam::Sha2_128s, c"SLH-DSA-SHA2-128s"),
    (SlhDsaParam::Sha2_128f, c"SLH-DSA-SHA2-128f"),
    (SlhDsaParam::Sha2_192s, c"SLH-DSA-SHA2-192s"),
    (SlhDsaParam::Sha2_192f, c"SLH-DSA-SHA2-192f"),
    (SlhDsaParam::Sha2_256s, c"SLH-DSA-SHA2-256s"),
    (SlhDsaParam::Sha2_256f, c"SLH-DSA-SHA2-256f"),
    (SlhDsaParam::Shake128s, c"SLH-DSA-SHAKE-128s"),
    (SlhDsaParam::Shake128f, c"SLH-DSA-SHAKE-128f"),
    (SlhDsaParam::Shake192s, c"SLH-DSA-SHAKE-192s"),
    (SlhDsaParam::Shake192f, c"SLH-DSA-SHAKE-192f"),
    (SlhDsaParam::Shake256s, c"SLH-DSA-SHAKE-256s"),
    (SlhDsaParam::Shake256f, c"SLH-DSA-SHAKE-256f"),
];

/// The OpenSSL algorithm name of a post-quantum key algorithm.
fn pq_name(alg: KeyAlg) -> Option<&'static CStr> {
    match alg {
        KeyAlg::MlDsa(p) => ML_DSA.iter().find(|(q, _)| *q == p).map(|(_, n)| *n),
        KeyAlg::MlKem(p) => ML_KEM.iter().find(|(q, _)| *q == p).map(|(_, n)| *n),
        KeyAlg::SlhDsa(p) => SLH_DSA.iter().find(|(q, _)| *q == p).map(|(_, n)| *n),
        _ => None,
    }
}

/// The algorithm (and curve / parameter set) of a parsed key.
pub(crate) fn alg_of<T: HasParams>(pkey: &PKeyRef<T>) -> Result<KeyAlg> {
    match pkey.id() {
        Id::RSA => return Ok(KeyAlg::Rsa),
        Id::ED25519 => return Ok(KeyAlg::Ed(EdCurve::Ed25519)),
        Id::ED448 => return Ok(KeyAlg::Ed(EdCurve::Ed448)),
        Id::EC => {
            let ec = pkey.ec_key()?;
            return ec
                .group()
                .curve_name()
                .and_then(curve_from_nid)
                .map(KeyAlg::Ec)
                .ok_or_else(|| Error::new(Rv::CurveNotSupported, "unsupported EC curve"));
        }
        _ => {}
    }
    let pq = ML_DSA
        .iter()
        .map(|(p, n)| (KeyAlg::MlDsa(*p), *n))
        .chain(ML_KEM.iter().map(|(p, n)| (KeyAlg::MlKem(*p), *n)))
        .chain(SLH_DSA.iter().map(|(p, n)| (KeyAlg::SlhDsa(*p), *n)));
    for (alg, name) in pq {
        if tresor_pqc::is_a(pkey, name) {
            return Ok(alg);
        }
    }
    Err(Error::new(
        Rv::KeyTypeInconsistent,
        "unsupported key algorithm",
    ))
}

/// The public information of a key of algorithm `alg`.
pub(crate) fn public_info<T: HasPublic>(alg: KeyAlg, pkey: &PKeyRef<T>) -> Result<PublicInfo> {
    let mut info = PublicInfo {
        spki: pkey.public_key_to_der()?,
        ..PublicInfo::default()
    };
    match alg {
        KeyAlg::Rsa => {
            let rsa = pkey.rsa()?;
            info.modulus = Some(rsa.n().to_vec());
            info.public_exponent = Some(rsa.e().to_vec());
            info.modulus_bits = Some(rsa.n().num_bits() as u32);
        }
        KeyAlg::Ec(c) => {
            let ec = pkey.ec_key()?;
            let mut bn = openssl::bn::BigNumContext::new()?;
            let pt =
                ec.public_key()
                    .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut bn)?;
            info.ec_params = Some(curve_oid_der(AnyCurve::Weierstrass(c)).to_vec());
            info.ec_point = Some(octet_string(&pt));
        }
        KeyAlg::Ed(c) => {
            info.ec_params = Some(curve_oid_der(AnyCurve::Edwards(c)).to_vec());
            info.ec_point = Some(octet_string(&pkey.raw_public_key()?));
        }
        KeyAlg::MlDsa(_) | KeyAlg::MlKem(_) | KeyAlg::SlhDsa(_) => {
            info.raw_public = Some(pkey.raw_public_key()?);
        }
        KeyAlg::Aes | KeyAlg::GenericSecret | KeyAlg::ChaCha20 => {
            bail!(Rv::KeyTypeInconsistent, "secret keys have no public half")
        }
    }
    Ok(info)
}

/// Checks the length of a secret key value (`KeySizeRange`).
pub(crate) fn check_secret_len(alg: KeyAlg, len: usize) -> Result<()> {
    let ok = match alg {
        KeyAlg::Aes => matches!(len, 16 | 24 | 32),
        KeyAlg::ChaCha20 => len == 32,
        KeyAlg::GenericSecret => (1..=512).contains(&len),
        _ => bail!(
            Rv::KeyTypeInconsistent,
            "{alg:?} is not a secret key algorithm"
        ),
    };
    if !ok {
        bail!(
            Rv::KeySizeRange,
            "{len} bytes is not a valid {alg:?} key length"
        );
    }
    Ok(())
}

/// `len` random bytes from OpenSSL's DRBG (1..=1 MiB, else `DataLenRange`).
pub fn random(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if !(1..=1_048_576).contains(&len) {
        bail!(Rv::DataLenRange, "random length must be 1..=1048576");
    }
    let mut v = Zeroizing::new(vec![0u8; len]);
    openssl::rand::rand_bytes(&mut v)?;
    Ok(v)
}

/// Generates a secret key value of `len` bytes (`KeySizeRange` on a bad length).
pub fn generate_secret(alg: KeyAlg, len: usize) -> Result<KeyMaterial> {
    check_secret_len(alg, len)?;
    Ok(KeyMaterial(random(len)?))
}

fn generate_pkey(alg: KeyAlg, p: &KeyPairParams) -> Result<PKey<Private>> {
    Ok(match alg {
        KeyAlg::Rsa => {
            let bits = p.modulus_bits.unwrap_or(2048);
            if !(2048..=8192).contains(&bits) || bits % 8 != 0 {
                bail!(
                    Rv::KeySizeRange,
                    "RSA modulus must be 2048..=8192 bits, a multiple of 8"
                );
            }
            let e = match &p.public_exponent {
                Some(e) => BigNum::from_slice(e)?,
                None => BigNum::from_u32(65537)?,
            };
            if !e.is_bit_set(0) || e.num_bits() < 2 || e.num_bits() > 256 {
                bail!(
                    Rv::TemplateInconsistent,
                    "RSA public exponent must be odd and >= 3"
                );
            }
            PKey::from_rsa(Rsa::generate_with_e(bits, &e)?)?
        }
        KeyAlg::Ec(c) => {
            let g = EcGroup::from_curve_name(curve_nid(c))?;
            PKey::from_ec_key(EcKey::generate(&g)?)?
        }
        KeyAlg::Ed(EdCurve::Ed25519) => PKey::generate_ed25519()?,
        KeyAlg::Ed(EdCurve::Ed448) => PKey::generate_ed448()?,
        KeyAlg::MlDsa(_) | KeyAlg::MlKem(_) | KeyAlg::SlhDsa(_) => {
            let name = pq_name(alg)
                .ok_or_else(|| Error::new(Rv::MechanismInvalid, "unknown parameter set"))?;
            tresor_pqc::generate(name)?
        }
        KeyAlg::Aes | KeyAlg::GenericSecret | KeyAlg::ChaCha20 => {
            bail!(
                Rv::KeyTypeInconsistent,
                "{alg:?} is not a key-pair algorithm"
            )
        }
    })
}

/// Generates a key pair: (PKCS#8 DER private key, public information).
pub fn generate_key_pair(alg: KeyAlg, p: &KeyPairParams) -> Result<(KeyMaterial, PublicInfo)> {
    let pkey = generate_pkey(alg, p)?;
    let info = public_info(alg, &pkey)?;
    Ok((
        KeyMaterial(Zeroizing::new(pkey.private_key_to_pkcs8()?)),
        info,
    ))
}

fn parse_private(der: &[u8]) -> Result<PKey<Private>> {
    if let Ok(k) = PKey::private_key_from_pkcs8(der) {
        return Ok(k);
    }
    if let Ok(rsa) = Rsa::private_key_from_der(der) {
        return Ok(PKey::from_rsa(rsa)?);
    }
    Err(Error::new(
        Rv::AttributeValueInvalid,
        "not a PKCS#8 (or PKCS#1 RSA) private key",
    ))
}

/// Which algorithm a PKCS#8 (or traditional PKCS#1 RSA) private key DER is.
pub fn detect_private(der: &[u8]) -> Result<KeyAlg> {
    let pkey = parse_private(der)?;
    alg_of(&pkey)
}

/// Converts a PKCS#8 or PKCS#1 RSA private key DER into canonical PKCS#8 DER.
pub fn normalize_private_der(der: &[u8]) -> Result<KeyMaterial> {
    let pkey = parse_private(der)?;
    alg_of(&pkey)?;
    Ok(KeyMaterial(Zeroizing::new(pkey.private_key_to_pkcs8()?)))
}

/// The public information of a PKCS#8 private key (import validation): the key must parse,
/// be of algorithm `alg` (`KeyTypeInconsistent`) and pass OpenSSL's consistency check.
pub fn public_info_from_private(alg: KeyAlg, pkcs8_der: &[u8]) -> Result<PublicInfo> {
    let pkey = parse_private(pkcs8_der)?;
    let found = alg_of(&pkey)?;
    if found != alg {
        bail!(
            Rv::KeyTypeInconsistent,
            "key is {found:?}, expected {alg:?}"
        );
    }
    match alg {
        KeyAlg::Rsa if !pkey.rsa()?.check_key().unwrap_or(false) => {
            bail!(
                Rv::AttributeValueInvalid,
                "RSA key fails its consistency check"
            )
        }
        KeyAlg::Ec(_) => pkey
            .ec_key()?
            .check_key()
            .map_err(|_| Error::new(Rv::AttributeValueInvalid, "EC key fails its check"))?,
        _ => {}
    }
    public_info(alg, &pkey)
}

/// Which algorithm a DER `SubjectPublicKeyInfo` is, with its public information.
pub fn detect_public(spki_der: &[u8]) -> Result<(KeyAlg, PublicInfo)> {
    let pkey = PKey::public_key_from_der(spki_der)
        .map_err(|_| Error::new(Rv::AttributeValueInvalid, "not a valid public key"))?;
    let alg = alg_of(&pkey)?;
    Ok((alg, public_info(alg, &pkey)?))
}

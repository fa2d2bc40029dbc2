//! RSA: PKCS#1 v1.5, raw (X.509), PSS and OAEP.

use openssl::md_ctx::MdCtx;
use openssl::pkey::{PKey, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use zeroize::Zeroizing;

use super::hash::{digest_into, hash_len, md_no_keccak};
use super::keys::mismatch;
use super::types::{HashAlg, Mechanism, OaepParams, PssParams};
use crate::bail;
use crate::error::{Error, Result, Rv};

/// Checks that `m` is an RSA signature mechanism.
pub(crate) fn check_sign_mech(m: &Mechanism) -> Result<()> {
    match m {
        Mechanism::RsaPkcs
        | Mechanism::RsaX509
        | Mechanism::RsaPkcsHash(_)
        | Mechanism::RsaPss(_)
        | Mechanism::RsaPssHash(..) => Ok(()),
        _ => Err(mismatch(m)),
    }
}

/// Left-pads `data` to `k` bytes and checks it is below the modulus.
fn raw_input(modulus: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let k = modulus.len();
    if data.len() > k {
        bail!(Rv::DataLenRange, "raw RSA input longer than the modulus");
    }
    let mut v = Zeroizing::new(vec![0u8; k]);
    v[k - data.len()..].copy_from_slice(data);
    if v[..] >= *modulus {
        bail!(Rv::DataInvalid, "raw RSA input is not below the modulus");
    }
    Ok(v)
}

/// Configures a sign/verify context for PSS, validating the parameters against the key.
fn setup_pss<T>(ctx: &mut PkeyCtx<T>, bits: u32, p: &PssParams) -> Result<()> {
    let h = md_no_keccak(p.hash)?;
    let mgf = md_no_keccak(p.mgf)?;
    let em_len = (bits as usize).saturating_sub(1).div_ceil(8);
    if p.salt_len + hash_len(p.hash) + 2 > em_len {
        bail!(Rv::MechanismParamInvalid, "PSS salt too long for the key");
    }
    ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
    ctx.set_signature_md(h)?;
    ctx.set_rsa_mgf1_md(mgf)?;
    let salt = i32::try_from(p.salt_len)
        .map_err(|_| Error::new(Rv::MechanismParamInvalid, "salt length"))?;
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))?;
    Ok(())
}

fn check_pss_hash(h: super::types::HashAlg, p: &PssParams) -> Result<()> {
    if h != p.hash {
        bail!(
            Rv::MechanismParamInvalid,
            "PSS params hash differs from the mechanism hash"
        );
    }
    Ok(())
}

/// Signs with an RSA private key.
/// The aws-lc-rs RSA key for the fast PKCS#1 v1.5 signing path, if aws-lc-rs accepts it.
pub(crate) fn fast_key(pkcs8_der: &[u8]) -> super::keys::Fast {
    match aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8_der) {
        Ok(k) => super::keys::Fast::Rsa(k),
        Err(_) => super::keys::Fast::None,
    }
}

/// Hashes the fast path handles.
pub(crate) fn fast_supports(h: HashAlg) -> bool {
    matches!(h, HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512)
}

/// PKCS#1 v1.5 signature with aws-lc-rs (deterministic: byte-identical to OpenSSL's).
pub(crate) fn sign_fast(
    k: &aws_lc_rs::signature::RsaKeyPair,
    h: HashAlg,
    data: &[u8],
) -> Result<Vec<u8>> {
    use aws_lc_rs::signature as sig;
    let enc: &'static dyn sig::RsaEncoding = match h {
        HashAlg::Sha256 => &sig::RSA_PKCS1_SHA256,
        HashAlg::Sha384 => &sig::RSA_PKCS1_SHA384,
        _ => &sig::RSA_PKCS1_SHA512,
    };
    let mut out = vec![0u8; k.public_modulus_len()];
    k.sign(enc, &aws_lc_rs::rand::SystemRandom::new(), data, &mut out)
        .map_err(|_| Error::new(Rv::FunctionFailed, "RSA signing failed"))?;
    Ok(out)
}

pub(crate) fn sign(
    key: &PKey<Private>,
    modulus: &[u8],
    m: &Mechanism,
    data: &[u8],
) -> Result<Vec<u8>> {
    let k = key.size();
    let mut out = Vec::with_capacity(k);
    match m {
        Mechanism::RsaPkcs => {
            if data.len() + 11 > k {
                bail!(Rv::DataLenRange, "RSA PKCS#1 input longer than k-11");
            }
            let mut ctx = PkeyCtx::new(key)?;
            ctx.sign_init()?;
            ctx.set_rsa_padding(Padding::PKCS1)?;
            ctx.sign_to_vec(data, &mut out)?;
        }
        Mechanism::RsaX509 => {
            let input = raw_input(modulus, data)?;
            let mut ctx = PkeyCtx::new(key)?;
            ctx.decrypt_init()?;
            ctx.set_rsa_padding(Padding::NONE)?;
            ctx.decrypt_to_vec(&input, &mut out)?;
        }
        Mechanism::RsaPkcsHash(h) => {
            let md = md_no_keccak(*h)?;
            let mut ctx = MdCtx::new()?;
            ctx.digest_sign_init(Some(md), key)?
                .set_rsa_padding(Padding::PKCS1)?;
            ctx.digest_sign_to_vec(data, &mut out)?;
        }
        Mechanism::RsaPss(p) => pss_sign(key, p, data, &mut out)?,
        Mechanism::RsaPssHash(h, p) => {
            check_pss_hash(*h, p)?;
            md_no_keccak(*h)?;
            let (d, n) = digest_into(*h, data)?;
            pss_sign(key, p, &d[..n], &mut out)?;
        }
        _ => return Err(mismatch(m)),
    }
    Ok(out)
}

fn pss_sign(key: &PKey<Private>, p: &PssParams, digest: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if digest.len() != hash_len(p.hash) {
        bail!(
            Rv::DataLenRange,
            "PSS input must be a {}-byte digest",
            hash_len(p.hash)
        );
    }
    let mut ctx = PkeyCtx::new(key)?;
    ctx.sign_init()?;
    setup_pss(&mut ctx, key.bits(), p)?;
    ctx.sign_to_vec(digest, out)?;
    Ok(())
}

fn invalid() -> Error {
    Error::new(Rv::SignatureInvalid, "RSA signature does not verify")
}

/// Verifies with an RSA public key.
pub(crate) fn verify(
    key: &PKey<Public>,
    modulus: &[u8],
    m: &Mechanism,
    data: &[u8],
    sig: &[u8],
) -> Result<()> {
    check_sign_mech(m)?;
    let k = key.size();
    if sig.len() != k {
        bail!(Rv::SignatureLenRange, "RSA signature must be {k} bytes");
    }
    let ok = match m {
        Mechanism::RsaPkcs => {
            if data.len() + 11 > k {
                bail!(Rv::DataLenRange, "RSA PKCS#1 input longer than k-11");
            }
            let mut ctx = PkeyCtx::new(key)?;
            ctx.verify_init()?;
            ctx.set_rsa_padding(Padding::PKCS1)?;
            ctx.verify(data, sig).unwrap_or(false)
        }
        Mechanism::RsaX509 => {
            let want = raw_input(modulus, data)?;
            let mut ctx = PkeyCtx::new(key)?;
            ctx.encrypt_init()?;
            ctx.set_rsa_padding(Padding::NONE)?;
            let mut got = Vec::with_capacity(k);
            if sig >= modulus {
                return Err(invalid());
            }
            ctx.encrypt_to_vec(sig, &mut got).map_err(|_| invalid())?;
            openssl::memcmp::eq(&got, &want)
        }
        Mechanism::RsaPkcsHash(h) => {
            let md = md_no_keccak(*h)?;
            let mut ctx = MdCtx::new()?;
            ctx.digest_verify_init(Some(md), key)?
                .set_rsa_padding(Padding::PKCS1)?;
            ctx.digest_verify(data, sig).unwrap_or(false)
        }
        Mechanism::RsaPss(p) => pss_verify(key, p, data, sig)?,
        Mechanism::RsaPssHash(h, p) => {
            check_pss_hash(*h, p)?;
            md_no_keccak(*h)?;
            let (d, n) = digest_into(*h, data)?;
            pss_verify(key, p, &d[..n], sig)?
        }
        _ => return Err(mismatch(m)),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

fn pss_verify(key: &PKey<Public>, p: &PssParams, digest: &[u8], sig: &[u8]) -> Result<bool> {
    if digest.len() != hash_len(p.hash) {
        bail!(
            Rv::DataLenRange,
            "PSS input must be a {}-byte digest",
            hash_len(p.hash)
        );
    }
    let mut ctx = PkeyCtx::new(key)?;
    ctx.verify_init()?;
    setup_pss(&mut ctx, key.bits(), p)?;
    Ok(ctx.verify(digest, sig).unwrap_or(false))
}

fn setup_oaep<T>(ctx: &mut PkeyCtx<T>, p: &OaepParams) -> Result<()> {
    ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
    ctx.set_rsa_oaep_md(md_no_keccak(p.hash)?)?;
    ctx.set_rsa_mgf1_md(md_no_keccak(p.mgf)?)?;
    if !p.label.is_empty() {
        ctx.set_rsa_oaep_label(&p.label)?;
    }
    Ok(())
}

/// Encrypts with an RSA public key (`modulus` is needed for `RsaX509` only).
pub(crate) fn encrypt(
    key: &PKey<Public>,
    modulus: &[u8],
    m: &Mechanism,
    data: &[u8],
) -> Result<Vec<u8>> {
    let k = key.size();
    let mut ctx = PkeyCtx::new(key)?;
    ctx.encrypt_init()?;
    let mut out = Vec::with_capacity(k);
    match m {
        Mechanism::RsaPkcs => {
            if data.len() + 11 > k {
                bail!(Rv::DataLenRange, "RSA PKCS#1 input longer than k-11");
            }
            ctx.set_rsa_padding(Padding::PKCS1)?;
            ctx.encrypt_to_vec(data, &mut out)?;
        }
        Mechanism::RsaX509 => {
            let input = raw_input(modulus, data)?;
            ctx.set_rsa_padding(Padding::NONE)?;
            ctx.encrypt_to_vec(&input, &mut out)?;
        }
        Mechanism::RsaOaep(p) => {
            md_no_keccak(p.hash)?;
            if data.len() + 2 * hash_len(p.hash) + 2 > k {
                bail!(Rv::DataLenRange, "OAEP input longer than k-2hLen-2");
            }
            setup_oaep(&mut ctx, p)?;
            ctx.encrypt_to_vec(data, &mut out)?;
        }
        _ => return Err(mismatch(m)),
    }
    Ok(out)
}

/// Decrypts with an RSA private key. PKCS#1 v1.5 decryption uses OpenSSL's implicit rejection
/// (a bad padding yields a pseudo-random message, not an error), which defeats padding oracles.
pub(crate) fn decrypt(
    key: &PKey<Private>,
    m: &Mechanism,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let k = key.size();
    match m {
        Mechanism::RsaPkcs | Mechanism::RsaX509 | Mechanism::RsaOaep(_) => {}
        _ => return Err(mismatch(m)),
    }
    if data.len() != k {
        bail!(
            Rv::EncryptedDataLenRange,
            "RSA ciphertext must be {k} bytes"
        );
    }
    let mut ctx = PkeyCtx::new(key)?;
    ctx.decrypt_init()?;
    match m {
        Mechanism::RsaPkcs => ctx.set_rsa_padding(Padding::PKCS1)?,
        Mechanism::RsaX509 => ctx.set_rsa_padding(Padding::NONE)?,
        Mechanism::RsaOaep(p) => setup_oaep(&mut ctx, p)?,
        _ => return Err(mismatch(m)),
    }
    let mut out = Zeroizing::new(Vec::with_capacity(k));
    ctx.decrypt_to_vec(data, &mut out)
        .map_err(|_| Error::new(Rv::EncryptedDataInvalid, "RSA decryption failed"))?;
    Ok(out)
}

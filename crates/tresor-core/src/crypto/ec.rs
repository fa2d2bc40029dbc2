//! ECDSA (raw r‖s in and out) and ECDH.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};
use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::pkey::{PKey, Private, Public};
use openssl::pkey_ctx::{NonceType, PkeyCtx};
use zeroize::Zeroizing;

use super::der::{curve_nid, ecdsa_raw_to_der, field_len, parse_octet_string};
use super::hash::{digest_into, md, x963_kdf};
use super::keys::{mismatch, Fast};
use super::types::{Curve, EcdhParams, HashAlg, Mechanism};
use crate::bail;
use crate::error::{Error, Result, Rv};

/// Checks that `m` is an ECDSA mechanism.
pub(crate) fn check_sign_mech(m: &Mechanism) -> Result<()> {
    match m {
        Mechanism::Ecdsa
        | Mechanism::EcdsaHash(_)
        | Mechanism::EcdsaDeterministic(_)
        | Mechanism::EcdsaDoubleSha256 => Ok(()),
        _ => Err(mismatch(m)),
    }
}

/// The aws-lc-rs key for the hot path, if the curve has one.
///
/// Measured (release, this 2-core machine, `tests/mechanisms.rs::bench_hot_paths`):
/// ECDSA P-256/SHA-256 sign: aws-lc-rs ≈ 24 µs vs OpenSSL PkeyCtx ≈ 30 µs per signature;
/// P-384/SHA-384: aws-lc-rs ≈ 200 µs vs OpenSSL ≈ 390 µs. aws-lc-rs is faster on both, so
/// `EcdsaHash(Sha256)` on P-256 and `EcdsaHash(Sha384)` on P-384 go there; everything else (and
/// any key aws-lc-rs refuses) stays on OpenSSL.
pub(crate) fn fast_key(c: Curve, pkcs8: &[u8]) -> Fast {
    let alg = match c {
        Curve::P256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
        _ => return Fast::None,
    };
    EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_or(Fast::None, Fast::Ecdsa)
}

/// Reads one DER INTEGER at `d[*i..]`, writing it left-padded into `out` (`n` bytes).
fn der_int(d: &[u8], i: &mut usize, n: usize, out: &mut Vec<u8>) -> Option<()> {
    if *d.get(*i)? != 0x02 {
        return None;
    }
    let len = *d.get(*i + 1)? as usize;
    let mut v = d.get(*i + 2..*i + 2 + len)?;
    *i += 2 + len;
    while v.len() > n && v[0] == 0 {
        v = &v[1..];
    }
    if v.len() > n {
        return None;
    }
    out.resize(out.len() + n - v.len(), 0);
    out.extend_from_slice(v);
    Some(())
}

/// DER ECDSA-Sig-Value (as OpenSSL produces it) to raw r‖s, without big-number allocations.
fn der_to_raw(der: &[u8], n: usize) -> Result<Vec<u8>> {
    let bad = || Error::new(Rv::GeneralError, "unexpected ECDSA signature encoding");
    let mut out = Vec::with_capacity(2 * n);
    let mut i = match (der.first(), der.get(1)) {
        (Some(0x30), Some(l)) if *l < 0x80 => 2,
        (Some(0x30), Some(0x81)) => 3,
        _ => return Err(bad()),
    };
    der_int(der, &mut i, n, &mut out).ok_or_else(bad)?;
    der_int(der, &mut i, n, &mut out).ok_or_else(bad)?;
    Ok(out)
}

/// Raw ECDSA over an already-computed digest with OpenSSL.
fn sign_digest(
    key: &PKey<Private>,
    c: Curve,
    digest: &[u8],
    det: Option<HashAlg>,
) -> Result<Vec<u8>> {
    if digest.is_empty() {
        bail!(Rv::DataLenRange, "ECDSA input must not be empty");
    }
    let mut ctx = PkeyCtx::new(key)?;
    ctx.sign_init()?;
    if let Some(h) = det {
        ctx.set_nonce_type(NonceType::DETERMINISTIC_K)?;
        ctx.set_signature_md(md(h)?)?;
    }
    let mut der = [0u8; 160];
    let n = ctx.sign(digest, Some(&mut der))?;
    der_to_raw(&der[..n], field_len(c))
}

/// The digest the mechanism signs (stack buffer, length).
fn message_digest(m: &Mechanism, data: &[u8]) -> Result<([u8; 64], usize)> {
    match m {
        Mechanism::EcdsaHash(h) | Mechanism::EcdsaDeterministic(h) => digest_into(*h, data),
        Mechanism::EcdsaDoubleSha256 => {
            let (d, n) = digest_into(HashAlg::Sha256, data)?;
            digest_into(HashAlg::Sha256, &d[..n])
        }
        _ => Err(mismatch(m)),
    }
}

/// ECDSA signature, raw r‖s.
pub(crate) fn sign(
    key: &PKey<Private>,
    c: Curve,
    fast: &Fast,
    m: &Mechanism,
    data: &[u8],
) -> Result<Vec<u8>> {
    match (m, fast, c) {
        (Mechanism::Ecdsa, _, _) => sign_digest(key, c, data, None),
        // Hot path (see `fast_key` for the measured speed-up).
        (Mechanism::EcdsaHash(HashAlg::Sha256), Fast::Ecdsa(k), Curve::P256)
        | (Mechanism::EcdsaHash(HashAlg::Sha384), Fast::Ecdsa(k), Curve::P384) => {
            let sig = k
                .sign(&SystemRandom::new(), data)
                .map_err(|_| Error::new(Rv::FunctionFailed, "ECDSA signing failed"))?;
            Ok(sig.as_ref().to_vec())
        }
        (Mechanism::EcdsaDeterministic(h), _, _) => {
            let (d, n) = message_digest(m, data)?;
            sign_digest(key, c, &d[..n], Some(*h))
        }
        _ => {
            let (d, n) = message_digest(m, data)?;
            sign_digest(key, c, &d[..n], None)
        }
    }
}

/// Verifies a raw r‖s ECDSA signature.
pub(crate) fn verify(
    key: &PKey<Public>,
    c: Curve,
    m: &Mechanism,
    data: &[u8],
    sig: &[u8],
) -> Result<()> {
    check_sign_mech(m)?;
    if sig.len() != 2 * field_len(c) {
        bail!(
            Rv::SignatureLenRange,
            "ECDSA signature must be {} bytes",
            2 * field_len(c)
        );
    }
    let der = ecdsa_raw_to_der(sig)?;
    let mut ctx = PkeyCtx::new(key)?;
    ctx.verify_init()?;
    let ok = match m {
        Mechanism::Ecdsa => {
            if data.is_empty() {
                bail!(Rv::DataLenRange, "ECDSA input must not be empty");
            }
            ctx.verify(data, &der)
        }
        _ => {
            let (d, n) = message_digest(m, data)?;
            ctx.verify(&d[..n], &der)
        }
    };
    if ok.unwrap_or(false) {
        Ok(())
    } else {
        bail!(Rv::SignatureInvalid, "ECDSA signature does not verify")
    }
}

/// ECDH with the peer point in `p`, then the optional X9.63 KDF.
pub(crate) fn derive(
    key: &PKey<Private>,
    c: Curve,
    p: &EcdhParams,
    out_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let fl = field_len(c);
    let raw = &p.public_data;
    let point = if (raw.len() == 1 + 2 * fl && raw[0] == 0x04)
        || (raw.len() == 1 + fl && matches!(raw[0], 0x02 | 0x03))
    {
        &raw[..]
    } else {
        parse_octet_string(raw).ok_or_else(|| {
            Error::new(Rv::MechanismParamInvalid, "peer public point is malformed")
        })?
    };
    let group = EcGroup::from_curve_name(curve_nid(c))?;
    let mut bn = BigNumContext::new()?;
    let bad_point = |_| {
        Error::new(
            Rv::MechanismParamInvalid,
            "peer point is not on the key's curve",
        )
    };
    let pt = EcPoint::from_bytes(&group, point, &mut bn).map_err(bad_point)?;
    let peer = PKey::from_ec_key(EcKey::from_public_key(&group, &pt)?)?;
    let mut d = Deriver::new(key)?;
    d.set_peer(&peer).map_err(bad_point)?;
    let z = Zeroizing::new(d.derive_to_vec()?);
    match p.kdf {
        None => {
            if !p.shared_data.is_empty() {
                bail!(Rv::MechanismParamInvalid, "shared data needs a KDF");
            }
            if out_len > z.len() {
                bail!(
                    Rv::KeySizeRange,
                    "raw ECDH secret is only {} bytes",
                    z.len()
                );
            }
            // Truncation keeps the leading bytes of the shared x-coordinate.
            let n = if out_len == 0 { z.len() } else { out_len };
            Ok(Zeroizing::new(z[..n].to_vec()))
        }
        Some(h) => x963_kdf(h, &z, &p.shared_data, out_len),
    }
}

//! ECDSA (raw r‖s in and out) and ECDH.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED, ECDSA_P384_SHA384_FIXED_SIGNING, ECDSA_P521_SHA512_FIXED,
    ECDSA_P521_SHA512_FIXED_SIGNING,
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
/// Measured (release build, this 2-core machine, `tests/mechanisms.rs::bench_hot_paths`,
/// 3000 signatures of 64 bytes): P-256/SHA-256 sign aws-lc-rs 16.5 µs vs OpenSSL `Signer`
/// 23.0 µs; P-384/SHA-384 aws-lc-rs 89 µs vs OpenSSL 834 µs (the vendored OpenSSL has no
/// fast P-384 code). The engine's `EcdsaHash` is within 3% of raw aws-lc-rs. aws-lc-rs wins
/// on every curve it offers, so P-256, P-384 and P-521 ECDSA signing (random nonce) and
/// verification go there; deterministic ECDSA (RFC 6979), the other curves, and any key
/// aws-lc-rs refuses stay on OpenSSL.
pub(crate) fn fast_key(c: Curve, pkcs8: &[u8]) -> Fast {
    let alg = match c {
        Curve::P256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => return Fast::None,
    };
    EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_or(Fast::None, Fast::Ecdsa)
}

/// The aws-lc-rs digest algorithm of a fast key, its length, and whether the group order is a
/// whole number of bytes (so that X9.62 truncation is "keep the leading bytes").
fn fast_digest(c: Curve) -> Option<(&'static digest::Algorithm, usize, bool)> {
    match c {
        Curve::P256 => Some((&digest::SHA256, 32, true)),
        Curve::P384 => Some((&digest::SHA384, 48, true)),
        Curve::P521 => Some((&digest::SHA512, 64, false)),
        _ => None,
    }
}

/// Signs a caller's digest with aws-lc-rs, if it can give the same result as X9.62: a shorter
/// digest is left-padded with zeros (same integer), a longer one is truncated to the leading
/// bytes when the order is byte-aligned. `None` means "use OpenSSL".
fn fast_sign_digest(k: &EcdsaKeyPair, c: Curve, d: &[u8]) -> Option<Result<Vec<u8>>> {
    let dg = fast_digest_value(c, d)?;
    Some(
        k.sign_digest(&dg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::new(Rv::FunctionFailed, "ECDSA signing failed")),
    )
}

/// The aws-lc-rs verification key for P-256/P-384/P-521 (uncompressed point), parsed once.
pub(crate) fn fast_public(c: Curve, point: &[u8]) -> Option<ParsedPublicKey> {
    let alg = match c {
        Curve::P256 => &ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &ECDSA_P521_SHA512_FIXED,
        _ => return None,
    };
    ParsedPublicKey::new(alg, point).ok()
}

/// Normalises a digest for aws-lc-rs as X9.62 would (see [`fast_sign_digest`]).
fn fast_digest_value(c: Curve, d: &[u8]) -> Option<digest::Digest> {
    let (alg, len, aligned) = fast_digest(c)?;
    let mut buf = [0u8; 64];
    if d.len() <= len {
        buf[len - d.len()..len].copy_from_slice(d);
    } else if aligned {
        buf[..len].copy_from_slice(&d[..len]);
    } else {
        return None;
    }
    digest::Digest::import_less_safe(&buf[..len], alg).ok()
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
    let fast = match fast {
        Fast::Ecdsa(k) => Some(k),
        _ => None,
    };
    match (m, fast, c) {
        (Mechanism::Ecdsa, _, _) if data.is_empty() => {
            bail!(Rv::DataLenRange, "ECDSA input must not be empty")
        }
        (Mechanism::Ecdsa, Some(k), _) => match fast_sign_digest(k, c, data) {
            Some(r) => r,
            None => sign_digest(key, c, data, None),
        },
        (Mechanism::Ecdsa, None, _) => sign_digest(key, c, data, None),
        // Hot path (see `fast_key` for the measured speed-up): aws-lc-rs hashes and signs.
        (Mechanism::EcdsaHash(HashAlg::Sha256), Some(k), Curve::P256)
        | (Mechanism::EcdsaHash(HashAlg::Sha384), Some(k), Curve::P384)
        | (Mechanism::EcdsaHash(HashAlg::Sha512), Some(k), Curve::P521) => {
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
            match fast.and_then(|k| fast_sign_digest(k, c, &d[..n])) {
                Some(r) => r,
                None => sign_digest(key, c, &d[..n], None),
            }
        }
    }
}

/// Verifies a raw r‖s ECDSA signature (aws-lc-rs where it has the curve: faster, see
/// `fast_key`; OpenSSL otherwise).
pub(crate) fn verify(
    key: &PKey<Public>,
    fast: Option<&ParsedPublicKey>,
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
    if *m == Mechanism::Ecdsa && data.is_empty() {
        bail!(Rv::DataLenRange, "ECDSA input must not be empty");
    }
    let invalid = || Error::new(Rv::SignatureInvalid, "ECDSA signature does not verify");
    let (buf, n) = match m {
        Mechanism::Ecdsa => ([0u8; 64], 0),
        _ => message_digest(m, data)?,
    };
    let d: &[u8] = if *m == Mechanism::Ecdsa {
        data
    } else {
        &buf[..n]
    };
    if let Some(dg) = fast.and_then(|_| fast_digest_value(c, d)) {
        if let Some(p) = fast {
            return p.verify_digest_sig(&dg, sig).map_err(|_| invalid());
        }
    }
    let der = ecdsa_raw_to_der(sig)?;
    let mut ctx = PkeyCtx::new(key)?;
    ctx.verify_init()?;
    if ctx.verify(d, &der).unwrap_or(false) {
        Ok(())
    } else {
        Err(invalid())
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

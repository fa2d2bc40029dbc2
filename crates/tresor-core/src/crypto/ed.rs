//! EdDSA: pure Ed25519 and Ed448.

use aws_lc_rs::signature::{Ed25519KeyPair, ParsedPublicKey, ED25519};
use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};

use super::keys::{mismatch, Fast};
use super::types::Mechanism;
use crate::bail;
use crate::error::{Error, Result, Rv};

/// The aws-lc-rs Ed25519 key for the hot path.
///
/// Measured (release build, this 2-core machine, `tests/mechanisms.rs::bench_hot_paths`,
/// 3000 signatures of 64 bytes): aws-lc-rs 6.6 µs vs OpenSSL one-shot `Signer` 26.7 µs per
/// signature, so pure Ed25519 signing and verification go to aws-lc-rs; OpenSSL remains the
/// fallback (a key aws-lc-rs refuses) and handles Ed448.
pub(crate) fn fast_key(pkcs8: &[u8]) -> Fast {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_or(Fast::None, Fast::Ed25519)
}

/// The aws-lc-rs Ed25519 verification key (raw 32-byte public key).
pub(crate) fn fast_public(raw: &[u8]) -> Option<ParsedPublicKey> {
    ParsedPublicKey::new(&ED25519, raw).ok()
}

/// Signs `data` (pure EdDSA, empty context).
pub(crate) fn sign(
    key: &PKey<Private>,
    fast: &Fast,
    m: &Mechanism,
    data: &[u8],
) -> Result<Vec<u8>> {
    if *m != Mechanism::Eddsa {
        return Err(mismatch(m));
    }
    if let Fast::Ed25519(k) = fast {
        return Ok(k.sign(data).as_ref().to_vec());
    }
    let mut s = Signer::new_without_digest(key)?;
    Ok(s.sign_oneshot_to_vec(data)?)
}

/// Verifies a pure EdDSA signature.
pub(crate) fn verify(
    key: &PKey<Public>,
    fast: Option<&ParsedPublicKey>,
    m: &Mechanism,
    data: &[u8],
    sig: &[u8],
) -> Result<()> {
    if *m != Mechanism::Eddsa {
        return Err(mismatch(m));
    }
    if sig.len() != key.size() {
        bail!(
            Rv::SignatureLenRange,
            "EdDSA signature must be {} bytes",
            key.size()
        );
    }
    if let Some(p) = fast {
        return p
            .verify_sig(data, sig)
            .map_err(|_| Error::new(Rv::SignatureInvalid, "EdDSA signature does not verify"));
    }
    let mut v = Verifier::new_without_digest(key)?;
    if v.verify_oneshot(sig, data).unwrap_or(false) {
        Ok(())
    } else {
        Err(Error::new(
            Rv::SignatureInvalid,
            "EdDSA signature does not verify",
        ))
    }
}

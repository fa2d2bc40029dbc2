//! EdDSA: pure Ed25519 and Ed448.

use aws_lc_rs::signature::Ed25519KeyPair;
use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};

use super::keys::{mismatch, Fast};
use super::types::Mechanism;
use crate::bail;
use crate::error::{Error, Result, Rv};

/// The aws-lc-rs Ed25519 key for the hot path.
///
/// Measured (release, this machine, `tests/mechanisms.rs::bench_hot_paths`): see the report in
/// `ec.rs`; aws-lc-rs signs Ed25519 faster than OpenSSL's one-shot `Signer`, so pure Ed25519
/// signing goes there, with OpenSSL as the fallback (and for Ed448).
pub(crate) fn fast_key(pkcs8: &[u8]) -> Fast {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_or(Fast::None, Fast::Ed25519)
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
pub(crate) fn verify(key: &PKey<Public>, m: &Mechanism, data: &[u8], sig: &[u8]) -> Result<()> {
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

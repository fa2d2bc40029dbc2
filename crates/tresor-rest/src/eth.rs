//! `signatureType: ETH`: an ECDSA secp256k1 signature as Ethereum wants it, `r ‖ s ‖ v`
//! (65 bytes), with `s` in the lower half of the group order (EIP-2) and `v = 27 + recovery
//! id`. The recovery id is found with public values only — the signature, the digest that was
//! signed and the key's public point: the candidate point `R` whose public key recovery
//! `Q = r⁻¹ (s·R − e·G)` gives the key's public key. No key material is involved.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::PKey;

use crate::error::{code, ApiError, ApiResult};

fn crypto(e: openssl::error::ErrorStack) -> ApiError {
    ApiError::internal(format!("secp256k1 arithmetic: {e}"))
}

/// True if `spki` is an EC public key on secp256k1.
pub fn is_secp256k1(spki: &[u8]) -> bool {
    PKey::public_key_from_der(spki)
        .and_then(|k| k.ec_key())
        .is_ok_and(|k| k.group().curve_name() == Some(Nid::SECP256K1))
}

/// `r ‖ s ‖ v` from a raw `r ‖ s` secp256k1 signature over `digest` by the key whose
/// SubjectPublicKeyInfo is `spki`.
pub fn eth_signature(raw: &[u8], digest: &[u8], spki: &[u8]) -> ApiResult<Vec<u8>> {
    if raw.len() != 64 || digest.is_empty() {
        return Err(ApiError::internal(
            "an ETH signature needs r ‖ s of 32 bytes each",
        ));
    }
    let group = EcGroup::from_curve_name(Nid::SECP256K1).map_err(crypto)?;
    let mut ctx = BigNumContext::new().map_err(crypto)?;
    let mut n = BigNum::new().map_err(crypto)?;
    group.order(&mut n, &mut ctx).map_err(crypto)?;
    let public = PKey::public_key_from_der(spki)
        .and_then(|k| k.ec_key())
        .map_err(|_| {
            ApiError::new(
                code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                "signatureType ETH needs an EC secp256k1 key",
            )
        })?;
    if public.group().curve_name() != Some(Nid::SECP256K1) {
        return Err(ApiError::new(
            code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
            "signatureType ETH needs an EC secp256k1 key",
        ));
    }
    let r = BigNum::from_slice(&raw[..32]).map_err(crypto)?;
    let mut s = BigNum::from_slice(&raw[32..]).map_err(crypto)?;
    // Low s (EIP-2): s and n − s are both valid; Ethereum accepts the lower one only.
    let mut half = BigNum::new().map_err(crypto)?;
    half.rshift1(&n).map_err(crypto)?;
    if s > half {
        let mut low = BigNum::new().map_err(crypto)?;
        low.checked_sub(&n, &s).map_err(crypto)?;
        s = low;
    }
    // e: the leftmost 256 bits of the digest.
    let e = BigNum::from_slice(&digest[..digest.len().min(32)]).map_err(crypto)?;
    let mut r_inv = BigNum::new().map_err(crypto)?;
    r_inv.mod_inverse(&r, &n, &mut ctx).map_err(crypto)?;
    let mut u1 = BigNum::new().map_err(crypto)?;
    let mut neg_e = BigNum::new().map_err(crypto)?;
    neg_e.mod_sub(&n, &e, &n, &mut ctx).map_err(crypto)?;
    u1.mod_mul(&neg_e, &r_inv, &n, &mut ctx).map_err(crypto)?;
    let mut u2 = BigNum::new().map_err(crypto)?;
    u2.mod_mul(&s, &r_inv, &n, &mut ctx).map_err(crypto)?;
    let x = r.to_vec_padded(32).map_err(crypto)?;
    for recid in 0u8..2 {
        let mut compressed = vec![0x02 + recid];
        compressed.extend_from_slice(&x);
        let Ok(big_r) = EcPoint::from_bytes(&group, &compressed, &mut ctx) else {
            continue;
        };
        let mut q = EcPoint::new(&group).map_err(crypto)?;
        q.mul_full(&group, &u1, &big_r, &u2, &mut ctx)
            .map_err(crypto)?;
        if q.eq(&group, public.public_key(), &mut ctx)
            .map_err(crypto)?
        {
            let mut out = x.clone();
            out.extend_from_slice(&s.to_vec_padded(32).map_err(crypto)?);
            out.push(27 + recid);
            return Ok(out);
        }
    }
    // Only if r ≥ n − … (x of R above the order): probability about 2⁻¹²⁸.
    Err(ApiError::internal(
        "no recovery id matches the key (r beyond the group order)",
    ))
}

/// The `r ‖ s` of an ETH signature (`r ‖ s ‖ v`, v 27 or 28), for verification.
pub fn eth_to_raw(sig: &[u8]) -> Option<Vec<u8>> {
    match sig {
        [rs @ .., v] if rs.len() == 64 && (*v == 27 || *v == 28) => Some(rs.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openssl::ec::EcKey;
    use openssl::ecdsa::EcdsaSig;

    #[test]
    fn recovers_the_key_and_keeps_s_low() {
        let group = EcGroup::from_curve_name(Nid::SECP256K1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let spki = PKey::from_ec_key(key.clone())
            .unwrap()
            .public_key_to_der()
            .unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut n = BigNum::new().unwrap();
        group.order(&mut n, &mut ctx).unwrap();
        let mut seen = [false; 2];
        for i in 0..40u8 {
            let digest = [i; 32];
            let sig = EcdsaSig::sign(&digest, &key).unwrap();
            let mut raw = sig.r().to_vec_padded(32).unwrap();
            raw.extend(sig.s().to_vec_padded(32).unwrap());
            let eth = eth_signature(&raw, &digest, &spki).unwrap();
            assert_eq!(eth.len(), 65);
            seen[usize::from(eth[64] - 27)] = true;
            let s = BigNum::from_slice(&eth[32..64]).unwrap();
            let mut half = BigNum::new().unwrap();
            half.rshift1(&n).unwrap();
            assert!(s <= half, "s is low");
            // Still a valid ECDSA signature of the digest.
            let back =
                EcdsaSig::from_private_components(BigNum::from_slice(&eth[..32]).unwrap(), s)
                    .unwrap();
            assert!(back.verify(&digest, &key).unwrap());
            assert_eq!(eth_to_raw(&eth).unwrap(), eth[..64].to_vec());
        }
        assert_eq!(seen, [true, true], "both recovery ids occur");
        // Another key's public key: no recovery id matches.
        let other = EcKey::generate(&group).unwrap();
        let other_spki = PKey::from_ec_key(other)
            .unwrap()
            .public_key_to_der()
            .unwrap();
        let sig = EcdsaSig::sign(&[1; 32], &key).unwrap();
        let mut raw = sig.r().to_vec_padded(32).unwrap();
        raw.extend(sig.s().to_vec_padded(32).unwrap());
        assert!(eth_signature(&raw, &[1; 32], &other_spki).is_err());
        assert!(eth_to_raw(&[0; 64]).is_none());
    }
}

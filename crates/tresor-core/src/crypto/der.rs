//! Curve OIDs (`CKA_EC_PARAMS`), DER OCTET STRINGs (`CKA_EC_POINT`) and ECDSA signature
//! format conversion.

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;

use super::types::{AnyCurve, Curve, EdCurve};
use crate::bail;
use crate::error::{Error, Result, Rv};

const CURVES: [(Curve, &[u8]); 7] = [
    (
        Curve::P256,
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    ),
    (Curve::P384, &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
    (Curve::P521, &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]),
    (
        Curve::Secp256k1,
        &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
    ),
    (
        Curve::BrainpoolP256r1,
        &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07,
        ],
    ),
    (
        Curve::BrainpoolP384r1,
        &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b,
        ],
    ),
    (
        Curve::BrainpoolP512r1,
        &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d,
        ],
    ),
];

const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];

/// The curve named by a DER `CKA_EC_PARAMS` value: an OID, or for Edwards curves also the
/// PrintableString `"edwards25519"` / `"edwards448"`. `CurveNotSupported` otherwise.
pub fn curve_from_oid_der(ec_params: &[u8]) -> Result<AnyCurve> {
    if let Some((c, _)) = CURVES.iter().find(|(_, oid)| *oid == ec_params) {
        return Ok(AnyCurve::Weierstrass(*c));
    }
    match ec_params {
        ED25519_OID => return Ok(AnyCurve::Edwards(EdCurve::Ed25519)),
        ED448_OID => return Ok(AnyCurve::Edwards(EdCurve::Ed448)),
        _ => {}
    }
    if ec_params.len() >= 2 && ec_params[0] == 0x13 && ec_params[1] as usize == ec_params.len() - 2
    {
        match &ec_params[2..] {
            b"edwards25519" => return Ok(AnyCurve::Edwards(EdCurve::Ed25519)),
            b"edwards448" => return Ok(AnyCurve::Edwards(EdCurve::Ed448)),
            _ => {}
        }
    }
    Err(Error::new(
        Rv::CurveNotSupported,
        "unknown or unsupported curve parameters",
    ))
}

/// The DER OID of a curve (the `CKA_EC_PARAMS` value Tresor reports).
pub fn curve_oid_der(c: AnyCurve) -> &'static [u8] {
    match c {
        AnyCurve::Weierstrass(w) => CURVES
            .iter()
            .find(|(k, _)| *k == w)
            .map(|(_, o)| *o)
            .unwrap_or(&[]),
        AnyCurve::Edwards(EdCurve::Ed25519) => ED25519_OID,
        AnyCurve::Edwards(EdCurve::Ed448) => ED448_OID,
    }
}

/// OpenSSL's NID of a Weierstrass curve.
pub fn curve_nid(c: Curve) -> Nid {
    match c {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
        Curve::Secp256k1 => Nid::SECP256K1,
        Curve::BrainpoolP256r1 => Nid::BRAINPOOL_P256R1,
        Curve::BrainpoolP384r1 => Nid::BRAINPOOL_P384R1,
        Curve::BrainpoolP512r1 => Nid::BRAINPOOL_P512R1,
    }
}

/// The curve of an OpenSSL NID, if supported.
pub fn curve_from_nid(n: Nid) -> Option<Curve> {
    [
        Curve::P256,
        Curve::P384,
        Curve::P521,
        Curve::Secp256k1,
        Curve::BrainpoolP256r1,
        Curve::BrainpoolP384r1,
        Curve::BrainpoolP512r1,
    ]
    .into_iter()
    .find(|c| curve_nid(*c) == n)
}

/// The field element size in bytes (half a raw r‖s signature).
pub fn field_len(c: Curve) -> usize {
    match c {
        Curve::P256 | Curve::Secp256k1 | Curve::BrainpoolP256r1 => 32,
        Curve::P384 | Curve::BrainpoolP384r1 => 48,
        Curve::P521 => 66,
        Curve::BrainpoolP512r1 => 64,
    }
}

/// DER OCTET STRING holding `v` (for `CKA_EC_POINT`).
pub fn octet_string(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 4);
    out.push(0x04);
    let n = v.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(v);
    out
}

/// The content of a DER OCTET STRING, if `v` is exactly one.
pub fn parse_octet_string(v: &[u8]) -> Option<&[u8]> {
    if v.len() < 2 || v[0] != 0x04 {
        return None;
    }
    let (len, hdr) = match v[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 if v.len() >= 3 => (v[2] as usize, 3),
        0x82 if v.len() >= 4 => (((v[2] as usize) << 8) | v[3] as usize, 4),
        _ => return None,
    };
    (v.len() == hdr + len).then(|| &v[hdr..])
}

/// Raw `r‖s` (two equal halves) to a DER `ECDSA-Sig-Value`.
pub fn ecdsa_raw_to_der(sig: &[u8]) -> Result<Vec<u8>> {
    if sig.is_empty() || sig.len() % 2 != 0 {
        bail!(
            Rv::SignatureLenRange,
            "raw ECDSA signature must be r||s of equal halves"
        );
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    Ok(sig.to_der()?)
}

/// DER `ECDSA-Sig-Value` to raw `r‖s`, each left-padded to the field size of `curve`.
pub fn ecdsa_der_to_raw(sig: &[u8], curve: Curve) -> Result<Vec<u8>> {
    let n = field_len(curve);
    let s = EcdsaSig::from_der(sig)
        .map_err(|_| Error::new(Rv::SignatureInvalid, "malformed DER ECDSA signature"))?;
    let mut out = s.r().to_vec_padded(n as i32)?;
    out.extend_from_slice(&s.s().to_vec_padded(n as i32)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_round_trip() -> Result<()> {
        for (c, oid) in CURVES {
            assert_eq!(curve_from_oid_der(oid)?, AnyCurve::Weierstrass(c));
            assert_eq!(curve_oid_der(AnyCurve::Weierstrass(c)), oid);
        }
        let mut ps = vec![0x13, 12];
        ps.extend_from_slice(b"edwards25519");
        assert_eq!(
            curve_from_oid_der(&ps)?,
            AnyCurve::Edwards(EdCurve::Ed25519)
        );
        assert_eq!(
            curve_from_oid_der(ED448_OID)?,
            AnyCurve::Edwards(EdCurve::Ed448)
        );
        let e = curve_from_oid_der(&[0x06, 0x01, 0x00]);
        assert_eq!(e.map_err(|e| e.rv()), Err(Rv::CurveNotSupported));
        Ok(())
    }

    #[test]
    fn octets() {
        for n in [0usize, 5, 127, 128, 255, 256, 1000] {
            let v = vec![7u8; n];
            assert_eq!(parse_octet_string(&octet_string(&v)), Some(&v[..]));
        }
        assert_eq!(parse_octet_string(&[0x04, 3, 1]), None);
    }

    #[test]
    fn ecdsa_formats() -> Result<()> {
        let mut raw = vec![0u8; 64];
        raw[1] = 9;
        raw[63] = 1;
        let der = ecdsa_raw_to_der(&raw)?;
        assert_eq!(ecdsa_der_to_raw(&der, Curve::P256)?, raw);
        Ok(())
    }
}

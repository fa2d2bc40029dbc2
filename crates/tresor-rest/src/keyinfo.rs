//! Key type of imported DER keys (the algorithm identifier only: the key itself goes to the
//! engine untouched).

use x509_parser::prelude::FromDer;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::error::{code, ApiError, ApiResult};
use crate::mech::oid_der;
use crate::tenant::ck;

fn bad(what: &str) -> ApiError {
    ApiError::new(
        code::KEY_INVALID_ENCODING,
        format!("{what} is not valid DER"),
    )
}

fn key_type(alg: &AlgorithmIdentifier<'_>) -> ApiResult<(u64, Option<Vec<u8>>)> {
    let oid = alg.algorithm.to_id_string();
    Ok(match oid.as_str() {
        "1.2.840.113549.1.1.1" => (ck::CKK_RSA, None),
        "1.2.840.10045.2.1" => {
            let curve = alg
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .ok_or_else(|| {
                    ApiError::new(code::KEY_INVALID_ENCODING, "EC key without a named curve")
                })?;
            (ck::CKK_EC, Some(oid_der(&curve)?))
        }
        "1.3.101.112" | "1.3.101.113" => (ck::CKK_EC_EDWARDS, Some(oid_der(&oid)?)),
        other => {
            return Err(ApiError::new(
                code::INVALID_KEY_TYPE,
                format!("keys of algorithm {other} cannot be imported in plain form"),
            ))
        }
    })
}

/// `CKK_*` and `CKA_EC_PARAMS` of a SubjectPublicKeyInfo.
pub fn spki_key_type(der: &[u8]) -> ApiResult<(u64, Option<Vec<u8>>)> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| bad("publicKey"))?;
    if !rest.is_empty() {
        return Err(bad("publicKey"));
    }
    key_type(&spki.algorithm)
}

/// `CKK_*` and `CKA_EC_PARAMS` of a PKCS#8 PrivateKeyInfo.
pub fn pkcs8_key_type(der: &[u8]) -> ApiResult<(u64, Option<Vec<u8>>)> {
    // SEQUENCE { INTEGER version, AlgorithmIdentifier, OCTET STRING, … }
    let body = seq_body(der).ok_or_else(|| bad("privateKey"))?;
    let after_version = skip_tlv(body, 0x02).ok_or_else(|| bad("privateKey"))?;
    let (_, alg) = AlgorithmIdentifier::from_der(after_version).map_err(|_| bad("privateKey"))?;
    key_type(&alg)
}

fn header(b: &[u8], tag: u8) -> Option<(usize, usize)> {
    if *b.first()? != tag {
        return None;
    }
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *b.get(2 + i)? as usize;
    }
    Some((2 + n, len))
}

fn seq_body(b: &[u8]) -> Option<&[u8]> {
    let (h, len) = header(b, 0x30)?;
    b.get(h..h.checked_add(len)?)
}

fn skip_tlv(b: &[u8], tag: u8) -> Option<&[u8]> {
    let (h, len) = header(b, tag)?;
    b.get(h.checked_add(len)?..)
}

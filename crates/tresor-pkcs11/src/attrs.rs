//! Attribute templates: raw `(type, bytes)` pairs from the ABI into wire templates, with the
//! engine's encodings (`CK_BBOOL` one byte, `CK_ULONG` native width, the rest bytes), and the
//! set of attributes that never change once an object exists (cached per handle).

use tresor_proto::{AttrValue, Attribute, Secret, Template};
use zeroize::Zeroizing;

use crate::ck::*;
use crate::error::{Error, Result};

/// One attribute as the application passed it: type and value bytes (zeroized on drop: it
/// may be key material).
pub type RawAttr = (u64, Zeroizing<Vec<u8>>);

/// How an attribute's value is encoded (the table is shared with the engine).
pub use tresor_ck::{attr_kind as kind, AttrKind as Kind};

/// True for the attributes computed by this library (from an `Attest` request), not stored.
pub fn is_attestation(ty: u64) -> bool {
    matches!(
        ty,
        CKA_TRESOR_ATTESTATION | CKA_TRESOR_ATTESTATION_SIGNATURE | CKA_TRESOR_ATTESTATION_CHAIN
    )
}

/// Attributes that cannot change after creation (PKCS#11 3.2 §4, tables of each class): a
/// value read once is served from the cache afterwards.
pub fn is_immutable(ty: u64) -> bool {
    matches!(
        ty,
        CKA_CLASS
            | CKA_TOKEN
            | CKA_KEY_TYPE
            | CKA_CERTIFICATE_TYPE
            | CKA_MODULUS
            | CKA_MODULUS_BITS
            | CKA_PUBLIC_EXPONENT
            | CKA_EC_PARAMS
            | CKA_EC_POINT
            | CKA_VALUE_LEN
            | CKA_KEY_GEN_MECHANISM
            | CKA_LOCAL
            | CKA_PARAMETER_SET
            | CKA_UNIQUE_ID
            | CKA_PUBLIC_KEY_INFO
            | CKA_ALLOWED_MECHANISMS
    )
}

/// Parses one raw value.
fn value(ty: u64, bytes: &[u8]) -> Result<AttrValue> {
    let k = kind(ty).ok_or_else(|| {
        Error::new(
            CKR_ATTRIBUTE_TYPE_INVALID,
            format!("attribute type {ty:#x} is not supported"),
        )
    })?;
    Ok(match k {
        Kind::Bool => match bytes {
            [b] => AttrValue::Bool(*b != 0),
            _ => {
                return Err(Error::new(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    format!(
                        "attribute {ty:#x} is a CK_BBOOL: one byte, got {}",
                        bytes.len()
                    ),
                ))
            }
        },
        Kind::Ulong => AttrValue::Ulong(ulong(ty, bytes)?),
        Kind::Bytes => AttrValue::Bytes(Secret::from_slice(bytes)),
        Kind::Mechanisms => AttrValue::Bytes(Secret::from_slice(&mechanisms(ty, bytes)?)),
    })
}

/// An array of native `CK_ULONG` as the engine takes it: 8 bytes per value.
fn mechanisms(ty: u64, bytes: &[u8]) -> Result<Vec<u8>> {
    let width = std::mem::size_of::<cryptoki_sys::CK_ULONG>();
    if bytes.len() % width != 0 {
        return Err(Error::new(
            CKR_ATTRIBUTE_VALUE_INVALID,
            format!(
                "attribute {ty:#x} is an array of {width}-byte CK_MECHANISM_TYPE, got {} bytes",
                bytes.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() / width * 8);
    for c in bytes.chunks_exact(width) {
        out.extend_from_slice(&ulong(ty, c)?.to_ne_bytes());
    }
    Ok(out)
}

/// A `CK_ULONG` in native byte order, 4 or 8 bytes wide.
pub fn ulong(ty: u64, bytes: &[u8]) -> Result<u64> {
    if let Ok(b) = <[u8; 8]>::try_from(bytes) {
        return Ok(u64::from_ne_bytes(b));
    }
    if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        return Ok(u64::from(u32::from_ne_bytes(b)));
    }
    Err(Error::new(
        CKR_ATTRIBUTE_VALUE_INVALID,
        format!(
            "attribute {ty:#x} is a CK_ULONG: 4 or 8 bytes, got {}",
            bytes.len()
        ),
    ))
}

/// A wire template from raw attributes. The same type twice with different values is
/// `CKR_TEMPLATE_INCONSISTENT`; twice with the same value is accepted once.
pub fn template(raw: &[RawAttr]) -> Result<Template> {
    let mut out: Vec<Attribute> = Vec::with_capacity(raw.len());
    for (ty, bytes) in raw {
        let v = value(*ty, bytes)?;
        match out.iter().find(|a| a.ty == *ty) {
            Some(prev) if prev.value == v => continue,
            Some(_) => {
                return Err(Error::new(
                    CKR_TEMPLATE_INCONSISTENT,
                    format!("attribute {ty:#x} is given twice with different values"),
                ))
            }
            None => out.push(Attribute { ty: *ty, value: v }),
        }
    }
    Ok(Template(out))
}

/// The boolean value of `ty` in a template, if given.
pub fn bool_in(t: &Template, ty: u64) -> Option<bool> {
    t.0.iter().find(|a| a.ty == ty).and_then(|a| match a.value {
        AttrValue::Bool(b) => Some(b),
        _ => None,
    })
}

/// The `CK_ULONG` value of `ty` in a template, if given.
pub fn ulong_in(t: &Template, ty: u64) -> Option<u64> {
    t.0.iter().find(|a| a.ty == ty).and_then(|a| match a.value {
        AttrValue::Ulong(u) => Some(u),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_duplicates() {
        let z = |v: Vec<u8>| Zeroizing::new(v);
        let t = template(&[
            (CKA_TOKEN, z(vec![1])),
            (CKA_CLASS, z(3u64.to_ne_bytes().to_vec())),
            (CKA_LABEL, z(b"k".to_vec())),
            (CKA_TOKEN, z(vec![1])),
        ])
        .unwrap_or_default();
        assert_eq!(t.0.len(), 3);
        assert_eq!(bool_in(&t, CKA_TOKEN), Some(true));
        assert_eq!(ulong_in(&t, CKA_CLASS), Some(3));
        let bad = template(&[(CKA_TOKEN, z(vec![1])), (CKA_TOKEN, z(vec![0]))]);
        assert_eq!(bad.map_err(|e| e.rv), Err(CKR_TEMPLATE_INCONSISTENT));
        let bad = template(&[(CKA_TOKEN, z(vec![1, 0]))]);
        assert_eq!(bad.map_err(|e| e.rv), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        let bad = template(&[(0x7fff_0000, z(vec![]))]);
        assert_eq!(bad.map_err(|e| e.rv), Err(CKR_ATTRIBUTE_TYPE_INVALID));
        assert_eq!(ulong(CKA_CLASS, &4u32.to_ne_bytes()).ok(), Some(4));
    }

    #[test]
    fn allowed_mechanisms_are_an_array_of_ulongs() {
        let z = |v: Vec<u8>| Zeroizing::new(v);
        let list: Vec<u8> = [CKM_ECDSA, 0x1234_5678]
            .iter()
            .flat_map(|m| (*m as cryptoki_sys::CK_ULONG).to_ne_bytes())
            .collect();
        let t = template(&[(CKA_ALLOWED_MECHANISMS, z(list))]).unwrap_or_default();
        let want: Vec<u8> = [CKM_ECDSA, 0x1234_5678]
            .iter()
            .flat_map(|m| m.to_ne_bytes())
            .collect();
        assert!(matches!(&t.0[..], [a] if a.value == AttrValue::Bytes(Secret::from_slice(&want))));
        // An empty list is a list (no restriction), a cut one is refused.
        assert!(template(&[(CKA_ALLOWED_MECHANISMS, z(vec![]))]).is_ok());
        let bad = template(&[(CKA_ALLOWED_MECHANISMS, z(vec![1, 2, 3]))]);
        assert_eq!(bad.map_err(|e| e.rv), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        assert!(is_immutable(CKA_ALLOWED_MECHANISMS));
    }
}

//! PKCS#11 attribute templates: parsing raw `(type, bytes)` pairs into typed values with the
//! precise PKCS#11 outcome for each defect, and typed accessors for the engine's rules.
//!
//! Faces build a [`Template`] either from raw attributes (`Template::from_raw`, used by the
//! PKCS#11 layer so that it stays a thin shell) or with [`Template::with`] (REST).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::error::{Error, Result, Rv};

/// The value of one attribute.
#[derive(Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// `CK_BBOOL`.
    Bool(bool),
    /// `CK_ULONG`.
    Ulong(u64),
    /// Byte string (zeroized on drop: it may be key material).
    Bytes(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Bool(b) => write!(f, "Bool({b})"),
            AttrValue::Ulong(u) => write!(f, "Ulong({u:#x})"),
            AttrValue::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

pub use tresor_ck::{attr_kind, AttrKind};

/// A parsed template: at most one value per attribute type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    attrs: BTreeMap<u64, AttrValue>,
}

impl Template {
    /// An empty template.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse raw attributes. `CK_ULONG` values may be 4 or 8 bytes (native endian, as the
    /// C ABI passes them); `CK_BBOOL` must be exactly one byte, 0 or 1 (any non-zero is
    /// accepted as true, as most tokens do). Unknown types give `CKR_ATTRIBUTE_TYPE_INVALID`,
    /// malformed values `CKR_ATTRIBUTE_VALUE_INVALID`, the same type twice with different
    /// values `CKR_TEMPLATE_INCONSISTENT`.
    pub fn from_raw<'a>(raw: impl IntoIterator<Item = (u64, &'a [u8])>) -> Result<Template> {
        let mut t = Template::new();
        for (ty, bytes) in raw {
            let kind = attr_kind(ty).ok_or_else(|| {
                Error::new(
                    Rv::AttributeTypeInvalid,
                    format!("attribute type {ty:#x} is not supported"),
                )
            })?;
            let value = match kind {
                AttrKind::Bool => {
                    if bytes.len() != 1 {
                        return Err(Error::new(
                            Rv::AttributeValueInvalid,
                            format!(
                                "attribute {ty:#x} is a CK_BBOOL (1 byte), got {} bytes",
                                bytes.len()
                            ),
                        ));
                    }
                    AttrValue::Bool(bytes[0] != 0)
                }
                AttrKind::Ulong => AttrValue::Ulong(match bytes.len() {
                    8 => u64::from_ne_bytes(
                        bytes
                            .try_into()
                            .map_err(|_| Error::new(Rv::GeneralError, "len"))?,
                    ),
                    4 => u64::from(u32::from_ne_bytes(
                        bytes
                            .try_into()
                            .map_err(|_| Error::new(Rv::GeneralError, "len"))?,
                    )),
                    n => {
                        return Err(Error::new(
                            Rv::AttributeValueInvalid,
                            format!("attribute {ty:#x} is a CK_ULONG, got {n} bytes"),
                        ))
                    }
                }),
                // An array of 8-byte mechanism numbers: checked where it is used
                // (`object::allowed_mechanisms`).
                AttrKind::Bytes | AttrKind::Mechanisms => {
                    AttrValue::Bytes(Zeroizing::new(bytes.to_vec()))
                }
            };
            t.insert(ty, value)?;
        }
        Ok(t)
    }

    /// Add an attribute (builder style, for faces that build templates in code).
    pub fn with(mut self, ty: u64, value: AttrValue) -> Result<Self> {
        self.insert(ty, value)?;
        Ok(self)
    }

    /// Add a boolean attribute.
    pub fn with_bool(self, ty: u64, v: bool) -> Result<Self> {
        self.with(ty, AttrValue::Bool(v))
    }

    /// Add a `CK_ULONG` attribute.
    pub fn with_ulong(self, ty: u64, v: u64) -> Result<Self> {
        self.with(ty, AttrValue::Ulong(v))
    }

    /// Add a byte-string attribute.
    pub fn with_bytes(self, ty: u64, v: &[u8]) -> Result<Self> {
        self.with(ty, AttrValue::Bytes(Zeroizing::new(v.to_vec())))
    }

    /// Insert, checking the kind and refusing a conflicting duplicate.
    pub fn insert(&mut self, ty: u64, value: AttrValue) -> Result<()> {
        let kind = attr_kind(ty).ok_or_else(|| {
            Error::new(
                Rv::AttributeTypeInvalid,
                format!("attribute type {ty:#x} is not supported"),
            )
        })?;
        let ok = matches!(
            (kind, &value),
            (AttrKind::Bool, AttrValue::Bool(_))
                | (AttrKind::Ulong, AttrValue::Ulong(_))
                | (AttrKind::Bytes | AttrKind::Mechanisms, AttrValue::Bytes(_))
        );
        if !ok {
            return Err(Error::new(
                Rv::AttributeValueInvalid,
                format!("attribute {ty:#x} has the wrong value kind"),
            ));
        }
        if let Some(old) = self.attrs.get(&ty) {
            if *old != value {
                return Err(Error::new(
                    Rv::TemplateInconsistent,
                    format!("attribute {ty:#x} is given twice with different values"),
                ));
            }
        }
        self.attrs.insert(ty, value);
        Ok(())
    }

    /// True if the attribute is present.
    pub fn has(&self, ty: u64) -> bool {
        self.attrs.contains_key(&ty)
    }

    /// The attribute types present.
    pub fn types(&self) -> impl Iterator<Item = u64> + '_ {
        self.attrs.keys().copied()
    }

    /// Iterate over all attributes.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &AttrValue)> {
        self.attrs.iter().map(|(k, v)| (*k, v))
    }

    /// A boolean attribute.
    pub fn bool(&self, ty: u64) -> Option<bool> {
        match self.attrs.get(&ty) {
            Some(AttrValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A `CK_ULONG` attribute.
    pub fn ulong(&self, ty: u64) -> Option<u64> {
        match self.attrs.get(&ty) {
            Some(AttrValue::Ulong(u)) => Some(*u),
            _ => None,
        }
    }

    /// A byte-string attribute.
    pub fn bytes(&self, ty: u64) -> Option<&[u8]> {
        match self.attrs.get(&ty) {
            Some(AttrValue::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        }
    }

    /// A UTF-8 attribute (label); invalid UTF-8 is `CKR_ATTRIBUTE_VALUE_INVALID`.
    pub fn string(&self, ty: u64) -> Result<Option<String>> {
        match self.bytes(ty) {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec()).map(Some).map_err(|_| {
                Error::new(
                    Rv::AttributeValueInvalid,
                    format!("attribute {ty:#x} is not UTF-8"),
                )
            }),
        }
    }

    /// Remove an attribute and return it.
    pub fn take(&mut self, ty: u64) -> Option<AttrValue> {
        self.attrs.remove(&ty)
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ck::*;

    #[test]
    fn raw_parsing_gives_precise_errors() {
        let t =
            Template::from_raw([(CKA_SIGN, &[1u8][..]), (CKA_LABEL, b"k".as_slice())]).expect("ok");
        assert_eq!(t.bool(CKA_SIGN), Some(true));
        assert_eq!(t.string(CKA_LABEL).expect("utf8").as_deref(), Some("k"));
        let e = Template::from_raw([(CKA_SIGN, &[1u8, 0][..])]).unwrap_err();
        assert_eq!(e.rv(), Rv::AttributeValueInvalid);
        let e = Template::from_raw([(0x7fff_0000u64, &[1u8][..])]).unwrap_err();
        assert_eq!(e.rv(), Rv::AttributeTypeInvalid);
        let e = Template::from_raw([(CKA_SIGN, &[1u8][..]), (CKA_SIGN, &[0u8][..])]).unwrap_err();
        assert_eq!(e.rv(), Rv::TemplateInconsistent);
        let e = Template::from_raw([(CKA_CLASS, &[1u8, 2, 3][..])]).unwrap_err();
        assert_eq!(e.rv(), Rv::AttributeValueInvalid);
        let t = Template::from_raw([(CKA_CLASS, &4u32.to_ne_bytes()[..])]).expect("4-byte ulong");
        assert_eq!(t.ulong(CKA_CLASS), Some(4));
    }
}

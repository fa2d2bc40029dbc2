//! Property tests: the attribute rules hold for every sequence of templates, and the decoders
//! never panic on arbitrary input.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tresor_core::ck::*;
use tresor_core::crypto::KeyAlg;
use tresor_core::object::{
    apply_set_template, new_key_flags, read_attribute, AttrRead, ObjectClass, ObjectRecord, Origin,
};
use tresor_core::template::Template;

const BOOL_ATTRS: [u64; 14] = [
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_MODIFIABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_LOCAL,
];

fn template(pairs: &[(usize, bool)]) -> Option<Template> {
    let mut t = Template::new();
    for (i, v) in pairs {
        if t.insert(
            BOOL_ATTRS[*i % BOOL_ATTRS.len()],
            tresor_core::template::AttrValue::Bool(*v),
        )
        .is_err()
        {
            return None;
        }
    }
    Some(t)
}

fn record(flags: tresor_core::object::Flags, class: ObjectClass, origin: Origin) -> ObjectRecord {
    ObjectRecord {
        class,
        alg: Some(KeyAlg::Aes),
        label: String::new(),
        ckaid: vec![],
        uuid: "u".into(),
        created: 0,
        flags,
        origin,
        key_gen_mechanism: None,
        value_len: Some(32),
        public: None,
        subject: vec![],
        start_date: vec![],
        end_date: vec![],
        cert: None,
        data: None,
        policy: None,
        password: None,
        allowed_mechanisms: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever the creation template and however many SetAttribute calls follow:
    /// sensitive never goes back to false, extractable never back to true, never_extractable
    /// is true only if extractable was never true, always_sensitive only if sensitive was
    /// always true, and a secret value is readable only from a non-sensitive extractable key.
    #[test]
    fn one_way_rules_hold(
        create in proptest::collection::vec((0usize..14, any::<bool>()), 0..8),
        generated in any::<bool>(),
        updates in proptest::collection::vec(proptest::collection::vec((0usize..14, any::<bool>()), 1..4), 0..12),
    ) {
        let origin = if generated { Origin::Generated } else { Origin::Imported };
        let Some(t) = template(&create) else { return Ok(()) };
        let Ok(flags) = new_key_flags(ObjectClass::SecretKey, KeyAlg::Aes, &t, origin) else { return Ok(()) };
        let mut rec = record(flags, ObjectClass::SecretKey, origin);
        let mut ever_extractable = rec.flags.extractable;
        let mut ever_insensitive = !rec.flags.sensitive;
        prop_assert!(!(rec.flags.never_extractable && ever_extractable));
        prop_assert!(!(rec.flags.always_sensitive && ever_insensitive));
        for u in updates {
            let Some(t) = template(&u) else { continue };
            let before = rec.flags;
            if apply_set_template(&mut rec, &t, false).is_err() {
                prop_assert_eq!(rec.flags, before, "a refused change changes nothing");
                continue;
            }
            prop_assert!(!before.sensitive || rec.flags.sensitive, "sensitive went back to false");
            prop_assert!(before.extractable || !rec.flags.extractable, "extractable went back to true");
            prop_assert_eq!(before.never_extractable, rec.flags.never_extractable);
            prop_assert_eq!(before.always_sensitive, rec.flags.always_sensitive);
            prop_assert_eq!(before.local, rec.flags.local);
            prop_assert_eq!(before.modifiable, rec.flags.modifiable);
            ever_extractable |= rec.flags.extractable;
            ever_insensitive |= !rec.flags.sensitive;
            prop_assert!(!(rec.flags.never_extractable && ever_extractable));
            prop_assert!(!(rec.flags.always_sensitive && ever_insensitive));
        }
        // The value attribute itself is always answered as sensitive by the record layer;
        // the engine reveals it only for !sensitive && extractable (tested in tests/engine.rs).
        prop_assert_eq!(read_attribute(&rec, 0, CKA_VALUE), AttrRead::Sensitive);
    }

    /// Raw template parsing never panics and either parses or names a precise error.
    #[test]
    fn template_from_raw_never_panics(raw in proptest::collection::vec((0u64..0x700, proptest::collection::vec(any::<u8>(), 0..12)), 0..10)) {
        let r = Template::from_raw(raw.iter().map(|(t, v)| (*t, v.as_slice())));
        if let Err(e) = r {
            prop_assert!(matches!(
                e.rv(),
                tresor_core::Rv::AttributeTypeInvalid | tresor_core::Rv::AttributeValueInvalid | tresor_core::Rv::TemplateInconsistent
            ));
        }
    }

    /// Policy JSON parsing never panics.
    #[test]
    fn policy_parse_never_panics(s in ".{0,200}") {
        let _ = tresor_core::policy::Policy::from_json(s.as_bytes());
    }

    /// Share parsing never panics.
    #[test]
    fn share_parse_never_panics(s in "[a-z0-9-]{0,140}") {
        let _ = tresor_core::seal::Share::parse(&s);
    }

    /// `CKA_ALLOWED_MECHANISMS` from arbitrary bytes: accepted exactly when it is a whole
    /// number of 8-byte values and at most the limit, and then read back as given.
    #[test]
    fn allowed_mechanisms_decode(b in proptest::collection::vec(any::<u8>(), 0..2200)) {
        use tresor_core::object::{allowed_mechanisms, MAX_ALLOWED_MECHANISMS};
        let t = Template::new().with_bytes(CKA_ALLOWED_MECHANISMS, &b).unwrap();
        let ok = b.len() % 8 == 0 && b.len() / 8 <= MAX_ALLOWED_MECHANISMS;
        match allowed_mechanisms(&t) {
            Ok(list) => {
                prop_assert!(ok);
                let back: Vec<u8> = list.iter().flat_map(|m| m.to_ne_bytes()).collect();
                prop_assert_eq!(back, b);
            }
            Err(e) => {
                prop_assert!(!ok);
                prop_assert_eq!(e.rv(), tresor_core::Rv::AttributeValueInvalid);
            }
        }
    }

    /// Key import from arbitrary bytes never panics.
    #[test]
    fn key_decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = tresor_core::crypto::detect_private(&b);
        let _ = tresor_core::crypto::detect_public(&b);
        let _ = tresor_core::crypto::curve_from_oid_der(&b);
    }
}

/// pkcs11-tool's `--usage-derive` puts CKA_DERIVE = TRUE in the public template of an EC pair:
/// accepted and kept on the public key; other usages a public key cannot do stay refused.
#[test]
fn derive_on_a_public_key_is_accepted() {
    use tresor_core::crypto::Curve;
    use tresor_core::object::Usage;
    let mut t = Template::new();
    t.insert(CKA_DERIVE, tresor_core::template::AttrValue::Bool(true))
        .unwrap();
    t.insert(CKA_VERIFY, tresor_core::template::AttrValue::Bool(true))
        .unwrap();
    let f = new_key_flags(
        ObjectClass::PublicKey,
        KeyAlg::Ec(Curve::P256),
        &t,
        Origin::Generated,
    )
    .unwrap();
    assert!(f.allows(Usage::Derive) && f.allows(Usage::Verify));
    let mut t = Template::new();
    t.insert(CKA_SIGN, tresor_core::template::AttrValue::Bool(true))
        .unwrap();
    let e = new_key_flags(
        ObjectClass::PublicKey,
        KeyAlg::Ec(Curve::P256),
        &t,
        Origin::Generated,
    )
    .unwrap_err();
    assert_eq!(e.rv(), tresor_core::Rv::TemplateInconsistent);
}

/// pkcs11-tool's ECDH-derived key template asks for a generic secret with CKA_ENCRYPT,
/// CKA_DECRYPT, CKA_WRAP and CKA_UNWRAP: kept (no generic-secret mechanism can use them).
#[test]
fn usages_the_key_type_cannot_perform_are_kept() {
    use tresor_core::object::Usage;
    let mut t = Template::new();
    for a in [CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP] {
        t.insert(a, tresor_core::template::AttrValue::Bool(true))
            .unwrap();
    }
    let f = new_key_flags(
        ObjectClass::SecretKey,
        KeyAlg::GenericSecret,
        &t,
        Origin::Derived,
    )
    .unwrap();
    assert!(f.allows(Usage::Encrypt) && !f.allows(Usage::Sign));
}

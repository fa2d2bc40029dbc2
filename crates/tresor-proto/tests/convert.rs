//! Conversions between wire and engine types (feature `core`).
#![cfg(feature = "core")]
#![allow(clippy::unwrap_used)]

mod strategies;

use proptest::prelude::*;
use tresor_core::error::{Error, Rv};
use tresor_core::{crypto, template};
use tresor_proto::convert::rv_from_ckr;
use tresor_proto::{AttrValue, Attribute, HashAlg, Mechanism, Response, Secret, Template};

proptest! {
    #[test]
    fn mechanisms_roundtrip_through_the_engine_type(m in strategies::mechanism()) {
        let core = crypto::Mechanism::try_from(&m).unwrap();
        prop_assert_eq!(Mechanism::try_from(&core).unwrap(), m);
    }

    #[test]
    fn rv_codes_roundtrip(code in prop_oneof![0u64..0x200, any::<u64>()]) {
        prop_assert_eq!(rv_from_ckr(code).ckr(), code);
    }
}

#[test]
fn hash_algs_roundtrip() {
    for h in HashAlg::ALL {
        assert_eq!(HashAlg::from(crypto::HashAlg::from(*h)), *h);
    }
}

#[test]
fn templates_are_checked_like_the_engine_does() {
    let t = template::Template::new()
        .with_bool(0x108, true)
        .unwrap()
        .with_ulong(0x161, 32)
        .unwrap()
        .with_bytes(0x3, b"label")
        .unwrap();
    let wire = Template::from(&t);
    assert_eq!(template::Template::try_from(&wire).unwrap(), t);

    let unknown = Template::new().with_bool(0x7fff_0000, true);
    let e = template::Template::try_from(&unknown).unwrap_err();
    assert_eq!(e.rv(), Rv::AttributeTypeInvalid);

    let wrong_kind = Template(vec![Attribute {
        ty: 0x108,
        value: AttrValue::Bytes(Secret::from_slice(b"x")),
    }]);
    let e = template::Template::try_from(&wrong_kind).unwrap_err();
    assert_eq!(e.rv(), Rv::AttributeValueInvalid);

    let conflicting = Template::new()
        .with_bool(0x108, true)
        .with_bool(0x108, false);
    let e = template::Template::try_from(&conflicting).unwrap_err();
    assert_eq!(e.rv(), Rv::TemplateInconsistent);
}

#[test]
fn engine_errors_roundtrip_through_responses() {
    let e = Error::new(Rv::PinIncorrect, "wrong PIN");
    let r = Response::from(&e);
    assert_eq!(
        r,
        Response::Error {
            rv: 0xa0,
            message: "wrong PIN".into()
        }
    );
    assert_eq!(r.to_engine_error().unwrap(), e);
    let sealed = Error::sealed();
    assert_eq!(Response::from(&sealed).to_engine_error().unwrap(), sealed);
    assert!(Response::Verified {}.to_engine_error().is_none());
}

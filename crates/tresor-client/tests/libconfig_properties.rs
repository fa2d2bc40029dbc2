//! Property tests: the parser never panics, and serialize → parse gives the same tree.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use proptest::prelude::*;
use tresor_client::config::libconfig::{
    parse_str, parse_str_with, to_string, ParseOptions, Setting, Value, ValueKind,
};
use tresor_client::Position;

fn pos() -> Position {
    Position {
        file: Arc::from("gen"),
        line: 1,
        column: 1,
    }
}

fn value(kind: ValueKind) -> Value {
    Value {
        kind,
        position: pos(),
    }
}

fn scalar() -> impl Strategy<Value = ValueKind> {
    prop_oneof![
        any::<i32>().prop_map(ValueKind::Int),
        any::<i64>().prop_map(ValueKind::Int64),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(ValueKind::Float),
        any::<bool>().prop_map(ValueKind::Bool),
        any::<String>().prop_map(ValueKind::Str),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z*][-A-Za-z0-9_*]{0,8}"
}

fn group_of(inner: impl Strategy<Value = ValueKind> + Clone) -> impl Strategy<Value = ValueKind> {
    prop::collection::vec((name(), inner), 0..5).prop_map(|items| {
        let mut settings: Vec<Setting> = Vec::new();
        for (name, kind) in items {
            if settings.iter().all(|s| s.name != name) {
                settings.push(Setting {
                    name,
                    value: value(kind),
                    position: pos(),
                });
            }
        }
        ValueKind::Group(settings)
    })
}

fn array() -> impl Strategy<Value = ValueKind> {
    prop_oneof![
        prop::collection::vec(any::<i32>().prop_map(ValueKind::Int), 0..4),
        prop::collection::vec(any::<bool>().prop_map(ValueKind::Bool), 0..4),
        prop::collection::vec(any::<String>().prop_map(ValueKind::Str), 0..4),
    ]
    .prop_map(|items| ValueKind::Array(items.into_iter().map(value).collect()))
}

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![scalar(), array()];
    let kind = leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| ValueKind::List(items.into_iter().map(value).collect())),
            group_of(inner),
        ]
    });
    group_of(kind).prop_map(value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse_str_with(&text, "x.cfg", &ParseOptions { allow_includes: false, ..ParseOptions::default() });
    }

    #[test]
    fn never_panics_on_config_like_text(text in "[-a-z0-9_=:;,{}()\\[\\]\"\\\\ #/*.xLe+\n@]{0,80}") {
        let _ = parse_str_with(&text, "x.cfg", &ParseOptions { allow_includes: false, ..ParseOptions::default() });
    }

    #[test]
    fn serialize_then_parse_gives_the_same_tree(root in tree()) {
        let text = to_string(&root);
        let back = parse_str(&text, "x.cfg").unwrap();
        prop_assert!(back.same_content(&root), "text:\n{}", text);
    }
}

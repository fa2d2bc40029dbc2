//! The libconfig parser: golden edge cases, syntax errors with exact positions, `@include`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use tresor_client::config::libconfig::{
    parse_file, parse_str, parse_str_with, to_string, ParseOptions, Value, ValueKind,
};

fn parse(text: &str) -> Value {
    parse_str(text, "t.cfg").unwrap()
}

fn error(text: &str) -> String {
    parse_str(text, "t.cfg").unwrap_err().to_string()
}

#[test]
fn golden_comments_in_odd_places() {
    let v = parse(
        "# head\na /* x */ = /* y */ 1 // tail\n; b # c\n : /* multi\nline */ \"s\" /* z */ ;\n/**/",
    );
    assert_eq!(v.lookup("a").unwrap().as_i64(), Some(1));
    assert_eq!(v.lookup("b").unwrap().as_str(), Some("s"));
    let b = v.get("b").unwrap();
    assert_eq!((b.position.line, b.position.column), (3, 3));
    assert_eq!((b.value.position.line, b.value.position.column), (5, 9));
}

#[test]
fn golden_string_concatenation_and_escapes() {
    let v = parse("s = \"a\" \"b\" # c\n \"c\\\"\\\\\\n\\t\\r\\f\\x41\";");
    assert_eq!(v.lookup("s").unwrap().as_str(), Some("abc\"\\\n\t\r\x0cA"));
    let v = parse("u = \"caf\\xc3\\xa9 ü\";");
    assert_eq!(v.lookup("u").unwrap().as_str(), Some("café ü"));
}

#[test]
fn golden_numbers() {
    let v = parse(
        "a = 0x1F; b = 0xFFFFFFFF; c = 5L; d = 3000000000; e = -12; f = 1.5; g = .5; h = 1e3;\
         i = -2.5E-3; j = 0x100000000; k = 0b101; l = 0o17; m = +7; n = 0xAL;",
    );
    let kind = |k: &str| v.lookup(k).unwrap().kind.clone();
    assert!(matches!(kind("a"), ValueKind::Int(31)));
    assert!(matches!(kind("b"), ValueKind::Int(-1)));
    assert!(matches!(kind("c"), ValueKind::Int64(5)));
    assert!(matches!(kind("d"), ValueKind::Int64(3_000_000_000)));
    assert!(matches!(kind("e"), ValueKind::Int(-12)));
    assert!(matches!(kind("f"), ValueKind::Float(x) if x == 1.5));
    assert!(matches!(kind("g"), ValueKind::Float(x) if x == 0.5));
    assert!(matches!(kind("h"), ValueKind::Float(x) if x == 1000.0));
    assert!(matches!(kind("i"), ValueKind::Float(x) if x == -0.0025));
    assert!(matches!(kind("j"), ValueKind::Int64(0x1_0000_0000)));
    assert!(matches!(kind("k"), ValueKind::Int(5)));
    assert!(matches!(kind("l"), ValueKind::Int(15)));
    assert!(matches!(kind("m"), ValueKind::Int(7)));
    assert!(matches!(kind("n"), ValueKind::Int64(10)));
}

#[test]
fn golden_colon_equals_terminators_and_containers() {
    let v = parse(
        "a : TRUE\nb = False, c = [1, 2L, 3,]; d = (1, \"x\", { e = 1 }, [true]); g : {}\n h = ()",
    );
    assert_eq!(v.lookup("a").unwrap().as_bool(), Some(true));
    assert_eq!(v.lookup("b").unwrap().as_bool(), Some(false));
    assert!(matches!(&v.lookup("c").unwrap().kind, ValueKind::Array(a) if a.len() == 3));
    assert!(matches!(&v.lookup("d").unwrap().kind, ValueKind::List(l) if l.len() == 4));
    assert!(matches!(&v.lookup("g").unwrap().kind, ValueKind::Group(g) if g.is_empty()));
    assert!(matches!(&v.lookup("h").unwrap().kind, ValueKind::List(l) if l.is_empty()));
    let names: Vec<_> = v
        .settings()
        .unwrap()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "g", "h"]);
    // Serialized and parsed back: same tree.
    let again = parse(&to_string(&v));
    assert!(again.same_content(&v), "{}", to_string(&v));
}

#[test]
fn syntax_errors_with_exact_positions() {
    let cases: &[(&str, &str)] = &[
        ("a = 1 2;", "t.cfg:1:7: expected ';' or ',' after the value of 'a'"),
        ("a 1;", "t.cfg:1:3: expected '=' or ':' after 'a'"),
        ("a = ;", "t.cfg:1:5: expected a value for 'a'"),
        ("= 1;", "t.cfg:1:1: expected a setting name"),
        ("g = { a = 1;", "t.cfg:1:13: expected '}' to close the group 'g'"),
        ("g = { 1 };", "t.cfg:1:7: expected a setting name or '}'"),
        ("a = [1, \"x\"];", "t.cfg:1:9: the elements of the array 'a' must have one type: expected int, found string"),
        ("a = [(1)];", "t.cfg:1:6: the array 'a' may hold scalars only (use a list '( … )' for a list)"),
        ("a = (1 2);", "t.cfg:1:8: expected ',' or ')' in the list 'a'"),
        ("a = [1,", "t.cfg:1:8: expected ']' to close the array 'a'"),
        ("a = \"abc", "t.cfg:1:5: unterminated string"),
        ("a = \"\\q\";", "t.cfg:1:6: unknown escape sequence '\\q'"),
        ("a = \"\\x4\";", "t.cfg:1:6: expected two hex digits after '\\x'"),
        ("a = \"\\xff\";", "t.cfg:1:5: string is not valid UTF-8"),
        ("a = 1;\n  /* open", "t.cfg:2:3: unterminated '/*' comment"),
        ("a = 12abc;", "t.cfg:1:5: malformed number for 'a'"),
        ("a = 99999999999999999999;", "t.cfg:1:5: number out of range for 'a'"),
        ("a = 1e999;", "t.cfg:1:5: number out of range for 'a'"),
        ("a = 1;\nb = 2;\na = 3;", "t.cfg:3:1: duplicate setting 'a' (first set at t.cfg:1:1)"),
        ("a = truex;", "t.cfg:1:5: expected a value for 'a'"),
        ("@include 5", "t.cfg:1:10: expected a file name string after '@include'"),
    ];
    for (text, expected) in cases {
        assert_eq!(&error(text), expected, "input: {text:?}");
    }
}

#[test]
fn depth_and_size_limits() {
    let deep = format!("a = {}1{};", "(".repeat(100), ")".repeat(100));
    assert_eq!(error(&deep), "t.cfg:1:69: nesting deeper than 64 levels");
    let options = ParseOptions {
        max_input_bytes: 10,
        ..ParseOptions::default()
    };
    let e = parse_str_with("a = \"0123456789\";", "t.cfg", &options).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.cfg: input is larger than the limit of 10 bytes"
    );
}

#[test]
fn includes_are_resolved_relative_to_the_including_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        dir.path().join("main.cfg"),
        "a = 1;\ng = {\n  @include \"sub/inner.cfg\"\n  z = 3;\n};\n",
    )
    .unwrap();
    std::fs::write(sub.join("inner.cfg"), "b = 2;\n@include \"leaf.cfg\"\n").unwrap();
    std::fs::write(sub.join("leaf.cfg"), "\n  c = \"leaf\";\n").unwrap();
    let v = parse_file(&dir.path().join("main.cfg")).unwrap();
    let names: Vec<_> = v
        .lookup("g")
        .unwrap()
        .settings()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["b", "c", "z"]);
    let c = v.lookup("g").unwrap().get("c").unwrap();
    assert!(c.position.file.ends_with("leaf.cfg"), "{}", c.position);
    assert_eq!((c.position.line, c.position.column), (2, 3));
    assert_eq!(v.lookup("g.c").unwrap().as_str(), Some("leaf"));
}

#[test]
fn include_cycles_missing_files_and_disabled_includes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.cfg"), "x = 1;\n@include \"b.cfg\"\n").unwrap();
    std::fs::write(dir.path().join("b.cfg"), "@include \"a.cfg\"\n").unwrap();
    let e = parse_file(&dir.path().join("a.cfg"))
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("b.cfg:1:1: '@include' cycle: 'a.cfg' is already being read"),
        "{e}"
    );

    std::fs::write(dir.path().join("m.cfg"), "@include \"missing.cfg\"\n").unwrap();
    let e = parse_file(&dir.path().join("m.cfg"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.cfg:1:1: cannot read included file 'missing.cfg'"),
        "{e}"
    );

    std::fs::write(dir.path().join("d.cfg"), "x = 1;\n@include \"d2.cfg\"\n").unwrap();
    std::fs::write(dir.path().join("d2.cfg"), "x = 2;\n").unwrap();
    let e = parse_file(&dir.path().join("d.cfg"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("d2.cfg:1:1: duplicate setting 'x' (first set at "),
        "{e}"
    );

    let options = ParseOptions {
        allow_includes: false,
        ..ParseOptions::default()
    };
    let e = parse_str_with("@include \"/etc/passwd\"", "t.cfg", &options).unwrap_err();
    assert_eq!(e.to_string(), "t.cfg:1:1: '@include' is not allowed here");
}

#[test]
fn include_depth_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..15 {
        std::fs::write(
            dir.path().join(format!("f{i}.cfg")),
            format!("@include \"f{}.cfg\"\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("f15.cfg"), "x = 1;").unwrap();
    let e = parse_file(&dir.path().join("f0.cfg"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'@include' nested deeper than 10 levels"), "{e}");
}

#[test]
fn missing_file_is_reported() {
    let e = parse_file(Path::new("/nonexistent/primus.cfg"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/primus.cfg: "), "{e}");
}

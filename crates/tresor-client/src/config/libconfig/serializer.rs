//! Writes a [`Value`] tree back as libconfig text that the parser reads into the same tree.

use std::fmt::Write;

use super::value::{Setting, Value, ValueKind};

/// Serializes a root group as libconfig text (`name = value;` lines, nested groups indented).
///
/// A root that is not a group is written as a single setting called `value`. Every tree the
/// parser produces round-trips: `parse_str(&to_string(&v))` has the same content as `v`
/// (non-finite floats, which libconfig cannot express, are written as `0.0`).
pub fn to_string(root: &Value) -> String {
    let mut out = String::new();
    match &root.kind {
        ValueKind::Group(settings) => write_settings(&mut out, settings, 0),
        _ => {
            out.push_str("value = ");
            write_value(&mut out, root, 0);
            out.push_str(";\n");
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_settings(out: &mut String, settings: &[Setting], level: usize) {
    for setting in settings {
        indent(out, level);
        out.push_str(&setting.name);
        out.push_str(" = ");
        write_value(out, &setting.value, level);
        out.push_str(";\n");
    }
}

fn write_value(out: &mut String, value: &Value, level: usize) {
    match &value.kind {
        ValueKind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        ValueKind::Int64(i) => {
            let _ = write!(out, "{i}L");
        }
        ValueKind::Float(f) => write_float(out, *f),
        ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ValueKind::Str(s) => write_string(out, s),
        ValueKind::Array(items) => write_sequence(out, items, level, '[', ']'),
        ValueKind::List(items) => write_sequence(out, items, level, '(', ')'),
        ValueKind::Group(settings) => {
            if settings.is_empty() {
                out.push_str("{ }");
                return;
            }
            out.push_str("{\n");
            write_settings(out, settings, level + 1);
            indent(out, level);
            out.push('}');
        }
    }
}

fn write_sequence(out: &mut String, items: &[Value], level: usize, open: char, close: char) {
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        write_value(out, item, level);
    }
    if !items.is_empty() {
        out.push(' ');
    }
    out.push(close);
}

fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("0.0");
        return;
    }
    // `{:?}` is the shortest text that reads back to the same f64; make sure it reads as a
    // float (it always has a '.' or an exponent, except for values like `1e100` which have one).
    let text = format!("{f:?}");
    out.push_str(&text);
    if !text.contains(['.', 'e', 'E']) {
        out.push_str(".0");
    }
}

/// A quoted string with libconfig escapes.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

//! Reading typed values out of a libconfig tree, collecting every problem with its position.

use secrecy::SecretString;

use crate::config::libconfig::{Setting, Value, ValueKind};
use crate::config::suggest;
use crate::{Diagnostic, Position};

/// Collects problems while a tree is read.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<Diagnostic>);

/// "a string", "an int", ... for messages.
fn article(kind: &ValueKind) -> String {
    let name = kind.type_name();
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {name}")
    } else {
        format!("a {name}")
    }
}

/// `parent.name`, or `name` at the root.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

impl Problems {
    pub(crate) fn push(&mut self, position: &Position, message: impl Into<String>) {
        self.0.push(Diagnostic::at(position.clone(), message));
    }

    pub(crate) fn unknown(&mut self, setting: &Setting, path: &str, known: &[&str]) {
        let full = join(path, &setting.name);
        let hint = suggest::closest(&setting.name, known)
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        self.push(&setting.position, format!("unknown setting '{full}'{hint}"));
    }

    pub(crate) fn missing(&mut self, at: &Position, path: &str, name: &str) {
        let full = join(path, name);
        self.push(at, format!("missing required setting '{full}'"));
    }

    fn wrong_type(&mut self, value: &Value, path: &str, expected: &str) {
        self.push(
            &value.position,
            format!(
                "'{path}' must be {expected}, found {}",
                article(&value.kind)
            ),
        );
    }

    /// The settings of a group.
    pub(crate) fn group<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v [Setting]> {
        let settings = value.settings();
        if settings.is_none() {
            self.wrong_type(value, path, "a group");
        }
        settings
    }

    pub(crate) fn string(&mut self, value: &Value, path: &str) -> Option<String> {
        let s = value.as_str().map(str::to_owned);
        if s.is_none() {
            self.wrong_type(value, path, "a string");
        }
        s
    }

    pub(crate) fn secret(&mut self, value: &Value, path: &str) -> Option<SecretString> {
        self.string(value, path).map(SecretString::from)
    }

    pub(crate) fn boolean(&mut self, value: &Value, path: &str) -> Option<bool> {
        let b = value.as_bool();
        if b.is_none() {
            self.wrong_type(value, path, "a bool (true or false)");
        }
        b
    }

    /// An integer in `min..=max`.
    pub(crate) fn integer(&mut self, value: &Value, path: &str, min: i64, max: i64) -> Option<i64> {
        let Some(i) = value.as_i64() else {
            self.wrong_type(value, path, &format!("an integer ({min}..={max})"));
            return None;
        };
        if (min..=max).contains(&i) {
            Some(i)
        } else {
            self.push(
                &value.position,
                format!("'{path}' must be between {min} and {max}, found {i}"),
            );
            None
        }
    }

    /// A bit mask: a 32-bit int is taken as its bit pattern (so `0xFFFFFFFF` works).
    pub(crate) fn mask(&mut self, value: &Value, path: &str) -> Option<u32> {
        match value.kind {
            ValueKind::Int(i) => Some(i as u32),
            _ => self
                .integer(value, path, 0, i64::from(u32::MAX))
                .and_then(|i| u32::try_from(i).ok()),
        }
    }

    /// A TCP port: a string of digits (the Securosys format) or an integer, 1..=65535.
    pub(crate) fn port(&mut self, value: &Value, path: &str) -> Option<u16> {
        match &value.kind {
            ValueKind::Str(s) => match s.trim().parse::<u16>() {
                Ok(p) if p != 0 => Some(p),
                _ => {
                    self.push(
                        &value.position,
                        format!("'{path}' must be a port number (1..=65535), found \"{s}\""),
                    );
                    None
                }
            },
            ValueKind::Int(_) | ValueKind::Int64(_) => self
                .integer(value, path, 1, 65535)
                .and_then(|p| u16::try_from(p).ok()),
            _ => {
                self.wrong_type(value, path, "a port number string such as \"2310\"");
                None
            }
        }
    }
}

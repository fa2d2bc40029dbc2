//! The parsed tree: [`Value`], [`ValueKind`] and [`Setting`].

use crate::Position;

/// A libconfig value with the position where it starts.
#[derive(Clone, Debug)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where the value starts (for the root group: line 1, column 1 of the file).
    pub position: Position,
}

/// The kinds of libconfig values.
#[derive(Clone, Debug)]
pub enum ValueKind {
    /// A 32-bit integer.
    Int(i32),
    /// A 64-bit integer (`L` suffix, or too large for 32 bits).
    Int64(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (adjacent literals already concatenated, escapes resolved).
    Str(String),
    /// `[ ... ]`: scalars of one type.
    Array(Vec<Value>),
    /// `( ... )`: values of any type.
    List(Vec<Value>),
    /// `{ ... }`: named settings in file order.
    Group(Vec<Setting>),
}

/// A named setting of a group, with the position of its name.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The setting's name.
    pub name: String,
    /// Its value.
    pub value: Value,
    /// Where the name starts.
    pub position: Position,
}

impl ValueKind {
    /// The libconfig name of this kind, for messages: `int`, `int64`, `float`, `bool`, `string`,
    /// `array`, `list`, `group`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "int",
            Self::Int64(_) => "int64",
            Self::Float(_) => "float",
            Self::Bool(_) => "bool",
            Self::Str(_) => "string",
            Self::Array(_) => "array",
            Self::List(_) => "list",
            Self::Group(_) => "group",
        }
    }

    /// Whether this is a scalar (int, int64, float, bool, string).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Self::Array(_) | Self::List(_) | Self::Group(_))
    }

    /// Same content, ignoring every position.
    pub fn same_content(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::Int64(a), Self::Int64(b)) => a == b,
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits() || a == b,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Str(a), Self::Str(b)) => a == b,
            (Self::Array(a), Self::Array(b)) | (Self::List(a), Self::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_content(y))
            }
            (Self::Group(a), Self::Group(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x.name == y.name && x.value.same_content(&y.value))
            }
            _ => false,
        }
    }
}

impl Value {
    /// Same content, ignoring every position.
    pub fn same_content(&self, other: &Value) -> bool {
        self.kind.same_content(&other.kind)
    }

    /// The settings of a group (`None` for other kinds).
    pub fn settings(&self) -> Option<&[Setting]> {
        match &self.kind {
            ValueKind::Group(s) => Some(s),
            _ => None,
        }
    }

    /// The setting called `name` of a group.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings()?.iter().find(|s| s.name == name)
    }

    /// Follows a dotted path of group members, e.g. `primus.hsms.hsm0.port`.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(self, |v, part| v.get(part).map(|s| &s.value))
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer (32- or 64-bit), if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            ValueKind::Int(i) => Some(i64::from(i)),
            ValueKind::Int64(i) => Some(i),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            ValueKind::Bool(b) => Some(b),
            _ => None,
        }
    }
}

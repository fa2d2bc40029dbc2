//! The libconfig grammar: settings, groups, arrays, lists, scalars and `@include`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{self, NumberToken};
use super::value::{Setting, Value, ValueKind};
use crate::{Diagnostic, Position};

/// Limits and switches of the parser.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// Deepest nesting of groups, arrays and lists (default 64).
    pub max_depth: usize,
    /// Largest input in bytes, all included files counted together (default 1 MiB).
    pub max_input_bytes: usize,
    /// Deepest chain of `@include` (default 10).
    pub max_include_depth: usize,
    /// Whether `@include` is honoured (default `true`); when `false` it is an error, and the
    /// parser never touches the file system.
    pub allow_includes: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_input_bytes: 1 << 20,
            max_include_depth: 10,
            allow_includes: true,
        }
    }
}

/// State shared by a file and the files it includes.
struct Context<'o> {
    options: &'o ParseOptions,
    /// Canonical paths of the files being parsed, outermost first.
    stack: Vec<PathBuf>,
    total_bytes: usize,
}

/// Parses a libconfig file with the default [`ParseOptions`]; the root is a group.
pub fn parse_file(path: &Path) -> Result<Value, Diagnostic> {
    parse_file_with(path, &ParseOptions::default())
}

/// Parses a libconfig file; the root is a group. Positions name the file as `path` displays.
pub fn parse_file_with(path: &Path, options: &ParseOptions) -> Result<Value, Diagnostic> {
    let name = path.display().to_string();
    let text = super::read_limited(path, options.max_input_bytes)
        .map_err(|e| Diagnostic::file(&name, e))?;
    let mut ctx = Context {
        options,
        stack: Vec::new(),
        total_bytes: text.len(),
    };
    if let Ok(canonical) = path.canonicalize() {
        ctx.stack.push(canonical);
    }
    parse_in_context(&text, &name, path.parent(), &mut ctx)
}

/// Parses libconfig text with the default [`ParseOptions`]. `file_name` names the text in
/// positions; `@include` is resolved relative to its directory.
pub fn parse_str(text: &str, file_name: &str) -> Result<Value, Diagnostic> {
    parse_str_with(text, file_name, &ParseOptions::default())
}

/// Parses libconfig text; see [`parse_str`].
pub fn parse_str_with(
    text: &str,
    file_name: &str,
    options: &ParseOptions,
) -> Result<Value, Diagnostic> {
    if text.len() > options.max_input_bytes {
        return Err(Diagnostic::file(
            file_name,
            format!(
                "input is larger than the limit of {} bytes",
                options.max_input_bytes
            ),
        ));
    }
    let mut ctx = Context {
        options,
        stack: Vec::new(),
        total_bytes: text.len(),
    };
    parse_in_context(text, file_name, Path::new(file_name).parent(), &mut ctx)
}

fn parse_in_context(
    text: &str,
    file_name: &str,
    dir: Option<&Path>,
    ctx: &mut Context<'_>,
) -> Result<Value, Diagnostic> {
    let mut parser = FileParser::new(text, file_name, dir, ctx);
    let mut input = text;
    let settings = parser.settings(&mut input, 0, None)?;
    Ok(Value {
        kind: ValueKind::Group(settings),
        position: parser.position(text),
    })
}

/// The parser of one file.
struct FileParser<'a, 'c, 'o> {
    full: &'a str,
    file: Arc<str>,
    dir: Option<PathBuf>,
    line_starts: Vec<usize>,
    ctx: &'c mut Context<'o>,
}

/// Who a value belongs to, for messages.
#[derive(Clone, Copy)]
struct Owner<'n>(&'n str);

impl<'a, 'c, 'o> FileParser<'a, 'c, 'o> {
    fn new(full: &'a str, file: &str, dir: Option<&Path>, ctx: &'c mut Context<'o>) -> Self {
        let line_starts = std::iter::once(0)
            .chain(full.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            full,
            file: Arc::from(file),
            dir: dir.map(Path::to_path_buf),
            line_starts,
            ctx,
        }
    }

    /// The position of the start of `rest` (a suffix of the file's text).
    fn position(&self, rest: &str) -> Position {
        let offset = self.full.len().saturating_sub(rest.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .full
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        Position {
            file: self.file.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    fn error(&self, rest: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.position(rest), message)
    }

    fn trivia(&self, input: &mut &'a str) -> Result<(), Diagnostic> {
        lexer::skip_trivia(input).map_err(|at| self.error(at, "unterminated '/*' comment"))
    }

    /// A list of settings up to the end of input (`closing` is `None`) or a closing `}`.
    fn settings(
        &mut self,
        input: &mut &'a str,
        depth: usize,
        closing: Option<(Owner<'_>, &'a str)>,
    ) -> Result<Vec<Setting>, Diagnostic> {
        let mut out: Vec<Setting> = Vec::new();
        loop {
            self.trivia(input)?;
            if let Some((owner, _)) = closing {
                if input.is_empty() {
                    return Err(self.error(
                        input,
                        format!("expected '}}' to close the group '{}'", owner.0),
                    ));
                }
                if let Some(rest) = input.strip_prefix('}') {
                    *input = rest;
                    return Ok(out);
                }
            } else if input.is_empty() {
                return Ok(out);
            }
            if input.starts_with("@include") {
                let included = self.include(input)?;
                for setting in included {
                    push_unique(&mut out, setting)?;
                }
                continue;
            }
            let setting = self.setting(input, depth, closing.is_some())?;
            push_unique(&mut out, setting)?;
        }
    }

    /// `name (=|:) value [;|,]`.
    fn setting(
        &mut self,
        input: &mut &'a str,
        depth: usize,
        in_group: bool,
    ) -> Result<Setting, Diagnostic> {
        let start = *input;
        let name = lexer::name(input).map_err(|_| {
            *input = start;
            let what = if in_group {
                "expected a setting name or '}'"
            } else {
                "expected a setting name"
            };
            self.error(start, what)
        })?;
        let position = self.position(start);
        self.trivia(input)?;
        match input.strip_prefix(['=', ':']) {
            Some(rest) => *input = rest,
            None => {
                return Err(self.error(input, format!("expected '=' or ':' after '{name}'")));
            }
        }
        self.trivia(input)?;
        let value = self.value(input, depth, Owner(name))?;
        self.trivia(input)?;
        if let Some(rest) = input.strip_prefix([';', ',']) {
            *input = rest;
        } else {
            let ok = input.is_empty()
                || (in_group && input.starts_with('}'))
                || input.starts_with(lexer::is_name_start)
                || input.starts_with("@include");
            if !ok {
                return Err(self.error(
                    input,
                    format!("expected ';' or ',' after the value of '{name}'"),
                ));
            }
        }
        Ok(Setting {
            name: name.to_owned(),
            value,
            position,
        })
    }

    fn value(
        &mut self,
        input: &mut &'a str,
        depth: usize,
        owner: Owner<'_>,
    ) -> Result<Value, Diagnostic> {
        let start = *input;
        let position = self.position(start);
        let nested = |this: &Self| {
            if depth >= this.ctx.options.max_depth {
                Err(this.error(
                    start,
                    format!("nesting deeper than {} levels", this.ctx.options.max_depth),
                ))
            } else {
                Ok(())
            }
        };
        let kind = if let Some(rest) = input.strip_prefix('{') {
            nested(self)?;
            *input = rest;
            ValueKind::Group(self.settings(input, depth + 1, Some((owner, start)))?)
        } else if let Some(rest) = input.strip_prefix('[') {
            nested(self)?;
            *input = rest;
            ValueKind::Array(self.sequence(input, depth + 1, owner, ']')?)
        } else if let Some(rest) = input.strip_prefix('(') {
            nested(self)?;
            *input = rest;
            ValueKind::List(self.sequence(input, depth + 1, owner, ')')?)
        } else if input.starts_with('"') {
            ValueKind::Str(self.strings(input)?)
        } else if let Ok(b) = lexer::boolean(input) {
            ValueKind::Bool(b)
        } else {
            *input = start;
            self.number(input, owner)?
        };
        Ok(Value { kind, position })
    }

    /// Elements of an array (`close` is `]`) or a list (`)`), after the opening bracket.
    fn sequence(
        &mut self,
        input: &mut &'a str,
        depth: usize,
        owner: Owner<'_>,
        close: char,
    ) -> Result<Vec<Value>, Diagnostic> {
        let array = close == ']';
        let what = if array { "array" } else { "list" };
        let mut out: Vec<Value> = Vec::new();
        loop {
            self.trivia(input)?;
            if let Some(rest) = input.strip_prefix(close) {
                *input = rest;
                return Ok(out);
            }
            if input.is_empty() {
                return Err(self.error(
                    input,
                    format!("expected '{close}' to close the {what} '{}'", owner.0),
                ));
            }
            let element_start = *input;
            let value = self.value(input, depth, owner)?;
            if array {
                check_array_element(self, element_start, out.first(), &value, owner)?;
            }
            out.push(value);
            self.trivia(input)?;
            if let Some(rest) = input.strip_prefix(',') {
                *input = rest;
            } else if !input.starts_with(close) {
                return Err(self.error(
                    input,
                    format!("expected ',' or '{close}' in the {what} '{}'", owner.0),
                ));
            }
        }
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self, input: &mut &'a str) -> Result<String, Diagnostic> {
        let mut bytes = Vec::new();
        let start = *input;
        loop {
            self.string_literal(input, &mut bytes)?;
            let before = *input;
            self.trivia(input)?;
            if !input.starts_with('"') {
                *input = before;
                break;
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error(start, "string is not valid UTF-8"))
    }

    fn string_literal(&self, input: &mut &'a str, out: &mut Vec<u8>) -> Result<(), Diagnostic> {
        let open = *input;
        *input = input.get(1..).unwrap_or_default();
        loop {
            let chunk = lexer::string_chunk(input).unwrap_or_default();
            out.extend_from_slice(chunk.as_bytes());
            if let Some(rest) = input.strip_prefix('"') {
                *input = rest;
                return Ok(());
            }
            let Some(rest) = input.strip_prefix('\\') else {
                return Err(self.error(open, "unterminated string"));
            };
            let escape_at = *input;
            *input = rest;
            let mut chars = input.chars();
            let c = chars.next();
            *input = chars.as_str();
            let byte = match c {
                Some('"') => b'"',
                Some('\\') => b'\\',
                Some('n') => b'\n',
                Some('t') => b'\t',
                Some('r') => b'\r',
                Some('f') => 0x0c,
                Some('a') => 0x07,
                Some('b') => 0x08,
                Some('v') => 0x0b,
                Some('x') => lexer::hex_byte(input)
                    .map_err(|_| self.error(escape_at, "expected two hex digits after '\\x'"))?,
                None => return Err(self.error(open, "unterminated string")),
                Some(other) => {
                    return Err(
                        self.error(escape_at, format!("unknown escape sequence '\\{other}'"))
                    );
                }
            };
            out.push(byte);
        }
    }

    fn number(&self, input: &mut &'a str, owner: Owner<'_>) -> Result<ValueKind, Diagnostic> {
        let start = *input;
        let expected = || self.error(start, format!("expected a value for '{}'", owner.0));
        let Ok(token) = lexer::number(input) else {
            *input = start;
            return Err(expected());
        };
        if lexer::glued(input) {
            *input = start;
            return Err(self.error(start, format!("malformed number for '{}'", owner.0)));
        }
        let out_of_range = || self.error(start, format!("number out of range for '{}'", owner.0));
        match token {
            NumberToken::Float(text) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(ValueKind::Float(f)),
                _ => Err(out_of_range()),
            },
            NumberToken::Integer {
                negative,
                digits,
                radix: 10,
                long,
            } => {
                let magnitude = digits.parse::<u64>().map_err(|_| out_of_range())?;
                let value = if negative {
                    0i64.checked_sub_unsigned(magnitude)
                } else {
                    i64::try_from(magnitude).ok()
                }
                .ok_or_else(out_of_range)?;
                Ok(match i32::try_from(value) {
                    Ok(small) if !long => ValueKind::Int(small),
                    _ => ValueKind::Int64(value),
                })
            }
            NumberToken::Integer {
                digits,
                radix,
                long,
                ..
            } => {
                // libconfig reads prefixed integers as unsigned bit patterns.
                let bits = u64::from_str_radix(digits, radix).map_err(|_| out_of_range())?;
                Ok(match u32::try_from(bits) {
                    Ok(small) if !long => ValueKind::Int(small as i32),
                    _ => ValueKind::Int64(bits as i64),
                })
            }
        }
    }

    /// `@include "file"`: parses the file and returns its settings.
    fn include(&mut self, input: &mut &'a str) -> Result<Vec<Setting>, Diagnostic> {
        let at = *input;
        *input = input.get("@include".len()..).unwrap_or_default();
        let _: Result<(), _> = lexer::skip_trivia(input);
        if !input.starts_with('"') {
            return Err(self.error(input, "expected a file name string after '@include'"));
        }
        let name = self.strings(input)?;
        let options = self.ctx.options;
        if !options.allow_includes {
            return Err(self.error(at, "'@include' is not allowed here"));
        }
        if self.ctx.stack.len() > options.max_include_depth {
            return Err(self.error(
                at,
                format!(
                    "'@include' nested deeper than {} levels",
                    options.max_include_depth
                ),
            ));
        }
        let path = match &self.dir {
            Some(dir) if Path::new(&name).is_relative() => dir.join(&name),
            _ => PathBuf::from(&name),
        };
        let canonical = path
            .canonicalize()
            .map_err(|e| self.error(at, format!("cannot read included file '{name}': {e}")))?;
        if self.ctx.stack.contains(&canonical) {
            return Err(self.error(
                at,
                format!("'@include' cycle: '{name}' is already being read"),
            ));
        }
        let remaining = options.max_input_bytes.saturating_sub(self.ctx.total_bytes);
        let text = super::read_limited(&canonical, remaining)
            .map_err(|e| self.error(at, format!("cannot read included file '{name}': {e}")))?;
        self.ctx.total_bytes += text.len();
        self.ctx.stack.push(canonical);
        let file_name = path.display().to_string();
        let parsed = parse_in_context(&text, &file_name, path.parent(), self.ctx);
        self.ctx.stack.pop();
        match parsed?.kind {
            ValueKind::Group(settings) => Ok(settings),
            _ => Ok(Vec::new()),
        }
    }
}

/// Adds a setting to a group, refusing a second setting of the same name.
fn push_unique(out: &mut Vec<Setting>, setting: Setting) -> Result<(), Diagnostic> {
    if let Some(first) = out.iter().find(|s| s.name == setting.name) {
        return Err(Diagnostic::at(
            setting.position.clone(),
            format!(
                "duplicate setting '{}' (first set at {})",
                setting.name, first.position
            ),
        ));
    }
    out.push(setting);
    Ok(())
}

/// Arrays hold scalars of one type (int and int64 count as one).
fn check_array_element(
    parser: &FileParser<'_, '_, '_>,
    at: &str,
    first: Option<&Value>,
    value: &Value,
    owner: Owner<'_>,
) -> Result<(), Diagnostic> {
    if !value.kind.is_scalar() {
        return Err(parser.error(
            at,
            format!(
                "the array '{}' may hold scalars only (use a list '( … )' for a {})",
                owner.0,
                value.kind.type_name()
            ),
        ));
    }
    let class = |k: &ValueKind| match k {
        ValueKind::Int64(_) => "int",
        other => other.type_name(),
    };
    if let Some(first) = first {
        if class(&first.kind) != class(&value.kind) {
            return Err(parser.error(
                at,
                format!(
                    "the elements of the array '{}' must have one type: expected {}, found {}",
                    owner.0,
                    first.kind.type_name(),
                    value.kind.type_name()
                ),
            ));
        }
    }
    Ok(())
}

//! A complete parser and serializer for the [libconfig](https://hyperrealm.github.io/libconfig/)
//! syntax, as used by `primus.cfg` and `.secrets.cfg`.
//!
//! Grammar accepted (libconfig 1.7):
//! - settings `name = value` or `name : value`, optionally terminated by `;` or `,`;
//!   names match `[A-Za-z*][-A-Za-z0-9_*]*`; a name may appear only once per group;
//! - groups `{ settings }`, arrays `[ scalars of one type ]`, lists `( values )`;
//! - integers: decimal, hexadecimal `0x..`, binary `0b..`, octal `0o..`, with an optional
//!   `L`/`LL` suffix for 64-bit values (values beyond 32 bits are 64-bit anyway);
//! - floats `1.5`, `.5`, `1e3`, `-2.5E-3`; booleans `true`/`false` in any case;
//! - strings with the escapes `\\ \" \n \t \r \f \a \b \v \xNN`; adjacent strings concatenate;
//! - comments `# …`, `// …` and `/* … */`;
//! - `@include "file"` where a setting may stand, resolved relative to the including file,
//!   with a depth limit and cycle detection.
//!
//! Lists and arrays also accept a trailing `,` (libconfig does not; accepting more is harmless).
//!
//! The result is a [`Value`] tree (the root is a [`ValueKind::Group`]) that keeps every setting in
//! file order with its [`Position`](crate::Position). Errors are
//! [`Diagnostic`](crate::Diagnostic)s with file, line, column and what was expected. The parser
//! never panics, bounds its recursion depth and the size of its input (see [`ParseOptions`]).

mod lexer;
mod parser;
mod serializer;
mod value;

use std::path::Path;

pub use parser::{parse_file, parse_file_with, parse_str, parse_str_with, ParseOptions};
pub use serializer::to_string;
pub use value::{Setting, Value, ValueKind};

/// Reads a file for the parser: regular files only, at most `limit` bytes, UTF-8.
pub(crate) fn read_limited(path: &Path, limit: usize) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > limit {
        return Err(format!("file is larger than the limit of {limit} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_owned())
}

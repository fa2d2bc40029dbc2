//! Tokens of the libconfig syntax, recognised with `winnow`.
//!
//! Every function takes the remaining input and either consumes a token and returns it, or
//! leaves the input as it was and fails (the parser turns failures into positioned messages).

use winnow::ascii::{digit0, digit1, hex_digit1, Caseless};
use winnow::combinator::{alt, not, opt, peek};
use winnow::token::{one_of, take_till, take_until, take_while};
use winnow::Parser;

type R<T> = winnow::Result<T>;

/// Whether `c` may start a setting name.
pub(super) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '*'
}

/// Whether `c` may continue a setting name.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*')
}

/// Skips whitespace and comments. On an unterminated `/* … */`, returns the input at the
/// comment's start.
pub(super) fn skip_trivia<'a>(input: &mut &'a str) -> Result<(), &'a str> {
    loop {
        let _: R<&str> = take_while(0.., [' ', '\t', '\r', '\n', '\x0b', '\x0c']).parse_next(input);
        if input.starts_with('#') || input.starts_with("//") {
            let _: R<&str> = take_till(0.., '\n').parse_next(input);
            continue;
        }
        if input.starts_with("/*") {
            let start = *input;
            let comment: R<()> = ("/*", take_until(0.., "*/"), "*/").void().parse_next(input);
            if comment.is_err() {
                *input = start;
                return Err(start);
            }
            continue;
        }
        return Ok(());
    }
}

/// A setting name: `[A-Za-z*][-A-Za-z0-9_*]*`.
pub(super) fn name<'a>(input: &mut &'a str) -> R<&'a str> {
    (one_of(is_name_start), take_while(0.., is_name_char))
        .take()
        .parse_next(input)
}

/// `true` or `false` in any case, not followed by a name character.
pub(super) fn boolean(input: &mut &str) -> R<bool> {
    let word = alt((Caseless("true").value(true), Caseless("false").value(false)));
    (word, not(one_of(is_name_char)))
        .map(|(b, ())| b)
        .parse_next(input)
}

/// A numeric token as written.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NumberToken<'a> {
    /// Digits in `radix` (without prefix or sign), a leading `-`, and whether an `L` suffix
    /// followed.
    Integer {
        /// `true` for a leading `-`.
        negative: bool,
        /// The digits.
        digits: &'a str,
        /// 10, 16, 2 or 8.
        radix: u32,
        /// Whether an `L`/`LL` suffix followed.
        long: bool,
    },
    /// A float as written (Rust's `f64` parser accepts libconfig's forms).
    Float(&'a str),
}

fn exponent(input: &mut &str) -> R<()> {
    (one_of(['e', 'E']), opt(one_of(['+', '-'])), digit1)
        .void()
        .parse_next(input)
}

fn float<'a>(input: &mut &'a str) -> R<&'a str> {
    (
        opt(one_of(['+', '-'])),
        alt((
            (digit1, '.', digit0, opt(exponent)).void(),
            ('.', digit1, opt(exponent)).void(),
            (digit1, exponent).void(),
        )),
    )
        .take()
        .parse_next(input)
}

fn prefixed<'a>(input: &mut &'a str) -> R<(u32, &'a str)> {
    alt((
        (alt(("0x", "0X")), hex_digit1).map(|(_, d)| (16, d)),
        (alt(("0b", "0B")), take_while(1.., ['0', '1'])).map(|(_, d)| (2, d)),
        (alt(("0o", "0O")), take_while(1.., '0'..='7')).map(|(_, d)| (8, d)),
    ))
    .parse_next(input)
}

fn long_suffix(input: &mut &str) -> R<bool> {
    opt(alt(("LL", "L"))).map(|s| s.is_some()).parse_next(input)
}

/// A number: prefixed integer, float, or decimal integer, with an optional `L`/`LL` suffix on
/// integers.
pub(super) fn number<'a>(input: &mut &'a str) -> R<NumberToken<'a>> {
    alt((
        (prefixed, long_suffix).map(|((radix, digits), long)| NumberToken::Integer {
            negative: false,
            digits,
            radix,
            long,
        }),
        float.map(NumberToken::Float),
        (opt(one_of(['+', '-'])), digit1, long_suffix).map(|(sign, digits, long)| {
            NumberToken::Integer {
                negative: sign == Some('-'),
                digits,
                radix: 10,
                long,
            }
        }),
    ))
    .parse_next(input)
}

/// Whether a number token is directly followed by something that would make it malformed
/// (e.g. `12abc`, `1.2.3`).
pub(super) fn glued(input: &mut &str) -> bool {
    let r: R<char> = peek(one_of(|c: char| is_name_char(c) || c == '.')).parse_next(input);
    r.is_ok()
}

/// A run of string characters up to a `"` or `\`.
pub(super) fn string_chunk<'a>(input: &mut &'a str) -> R<&'a str> {
    take_till(0.., ['"', '\\']).parse_next(input)
}

/// Two hex digits of a `\xNN` escape.
pub(super) fn hex_byte(input: &mut &str) -> R<u8> {
    take_while(2..=2, |c: char| c.is_ascii_hexdigit())
        .try_map(|d| u8::from_str_radix(d, 16))
        .parse_next(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut s = "0x1FL;";
        assert_eq!(
            number(&mut s),
            Ok(NumberToken::Integer {
                negative: false,
                digits: "1F",
                radix: 16,
                long: true
            })
        );
        assert_eq!(s, ";");
        let mut s = "-2.5e3 ";
        assert_eq!(number(&mut s), Ok(NumberToken::Float("-2.5e3")));
        let mut s = ".5";
        assert_eq!(number(&mut s), Ok(NumberToken::Float(".5")));
        let mut s = "-12;";
        assert_eq!(
            number(&mut s),
            Ok(NumberToken::Integer {
                negative: true,
                digits: "12",
                radix: 10,
                long: false
            })
        );
    }

    #[test]
    fn trivia() {
        let mut s = "  # c\n // d\n /* e\n f */ x";
        assert_eq!(skip_trivia(&mut s), Ok(()));
        assert_eq!(s, "x");
        let mut s = " /* open";
        assert_eq!(skip_trivia(&mut s), Err("/* open"));
    }

    #[test]
    fn booleans() {
        let mut s = "TrUe;";
        assert_eq!(boolean(&mut s), Ok(true));
        let mut s = "trueish";
        assert!(boolean(&mut s).is_err());
    }
}

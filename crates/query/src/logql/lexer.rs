//! LogQL's tokens, each with the byte offset it starts at, so every syntax
//! error can say where it is.

use super::LogqlError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A label name, a keyword or a function name: `[A-Za-z_][A-Za-z0-9_.]*`.
    Ident(String),
    /// A string: `"..."` with Go's escapes, or `` `...` `` taken as it is.
    Str(String),
    /// A number, a duration (`5m`, `1h30m`, `250ms`) or a byte size
    /// (`10KB`, `1.5MiB`), as written; label filters read it by its form.
    Number(String),
    /// Punctuation and operators: `{ } ( ) [ ] , = != =~ !~ |= |~ | == > >= < <=`
    /// and the arithmetic `+ - * / %`.
    Op(&'static str),
}

impl Token {
    /// The token as an error message names it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("{name:?}"),
            Token::Str(text) => format!("the string {:?}", clip(text)),
            Token::Number(text) => format!("the number {text}"),
            Token::Op(op) => format!("{op:?}"),
        }
    }
}

/// A string quoted back in an error, clipped.
fn clip(text: &str) -> String {
    logtap_core::clip_quote(text, 40)
}

/// The operators, longest first so that `!=` is not read as `!` then `=`.
const OPERATORS: [&str; 24] = [
    "|=", "|~", "!=", "!~", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",", "=", "|",
    ">", "<", "+", "-", "*", "/", "%",
];

/// Splits `text` into tokens with their offsets.
pub(crate) fn tokens(text: &str) -> Result<Vec<(usize, Token)>, LogqlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        if byte == b'"' {
            let (value, end) = quoted(text, at)?;
            out.push((start, Token::Str(value)));
            at = end;
        } else if byte == b'`' {
            let close = text[at + 1..]
                .find('`')
                .ok_or_else(|| LogqlError::at(start, "a closing ` for this string", "the end"))?;
            out.push((start, Token::Str(text[at + 1..at + 1 + close].to_string())));
            at += close + 2;
        } else if byte.is_ascii_alphabetic() || byte == b'_' {
            while at < bytes.len()
                && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at] == b'.')
            {
                at += 1;
            }
            out.push((start, Token::Ident(text[start..at].to_string())));
        } else if byte.is_ascii_digit() {
            // A number with its unit letters: `5m`, `1h30m`, `1.5KiB`, `1e3`.
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'.') {
                at += 1;
            }
            out.push((start, Token::Number(text[start..at].to_string())));
        } else if let Some(op) = OPERATORS.iter().find(|op| text[at..].starts_with(**op)) {
            out.push((start, Token::Op(op)));
            at += op.len();
        } else {
            let found = text[at..].chars().next().unwrap_or(' ');
            return Err(LogqlError::at(
                start,
                "a label, a string, a number or an operator",
                &format!("{found:?}"),
            ));
        }
    }
    Ok(out)
}

/// Reads the double-quoted string starting at `start`: its value and the
/// offset just after its closing quote.
fn quoted(text: &str, start: usize) -> Result<(String, usize), LogqlError> {
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Ok((value, start + 1 + offset + 1)),
            '\\' => {
                let Some((_, escaped)) = chars.next() else {
                    break;
                };
                match escaped {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    '\\' | '"' => value.push(escaped),
                    // Anything else as written: a regex's `\d` is `"\\d"`
                    // in a LogQL string, but people write `"\d"` and mean it.
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
            }
            c => value.push(c),
        }
    }
    Err(LogqlError::at(
        start,
        "a closing \" for this string",
        "the end",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_numbers_and_operators() {
        let found = tokens(r#"{app=~"a\"b"} |= `x\y` | n >= 1.5KiB"#).unwrap();
        let kinds: Vec<Token> = found.into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            kinds,
            [
                Token::Op("{"),
                Token::Ident("app".into()),
                Token::Op("=~"),
                Token::Str("a\"b".into()),
                Token::Op("}"),
                Token::Op("|="),
                Token::Str("x\\y".into()),
                Token::Op("|"),
                Token::Ident("n".into()),
                Token::Op(">="),
                Token::Number("1.5KiB".into()),
            ]
        );
        assert_eq!(tokens(r#""\d+""#).unwrap()[0].1, Token::Str("\\d+".into()));
    }

    #[test]
    fn an_unclosed_string_names_where_it_starts() {
        let error = tokens(r#"{a="b"} |= "x"#).unwrap_err();
        assert!(error.to_string().contains("at 11"), "{error}");
    }
}

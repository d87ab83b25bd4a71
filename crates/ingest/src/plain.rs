//! Plain-text lines: the whole line is the message, kept as written. The
//! timestamp is the line's own when the line starts with an RFC 3339 time
//! that has an offset (`2024-05-01T12:00:00.123Z app started`, also in
//! brackets, or with a space between date and time): see
//! [`leading_timestamp`]. Anything else gets the receive time: times inside
//! free text, or without an offset, come in too many shapes to read them
//! reliably. The level is recognised from the forms loggers commonly
//! write. [`detect_level`] tries, in this order:
//!
//! 1. A key naming the level, anywhere: `level=error`, `level="warn"`,
//!    `lvl=debug`, `severity: error`, `"level":"error"` (logfmt, and JSON
//!    that is not the whole line). The first such key whose value is a level
//!    wins, before any other form: it is the most explicit.
//! 2. Forms that only count at the start of the line (after white space):
//!    a syslog priority `<3>` (severity = priority mod 8: 0-2 fatal, 3 error,
//!    4 warn, 5-6 info, 7 debug); an Android logcat tag `E/Tag:` or
//!    `W/Tag(123):` (V trace, D debug, I info, W warn, E error, F and A
//!    fatal); a glog/klog header `E0501 12:00:00.000000 ...`; a single
//!    bracketed letter `[E]` or `<W>` (T D I W E F).
//! 3. A level word (a name or alias, see `Level::parse`), the first one in
//!    the line that is one of:
//!    * in capitals, anywhere: `ERROR`, `WARN:`, `[2024-05-01 INFO app]`;
//!    * in brackets of any case: `[warn]`, `<Error>`, `( debug )`;
//!    * first on the line and followed by a colon: `error: ...`,
//!      `Warning: ...`;
//!    * right after the line's leading time (see [`leading_timestamp`]):
//!      `2024-05-01T12:00:00Z error disk full`;
//!    * a tab-separated field: `2024-05-01T12:00:00Z\terror\tapp\t...`
//!      (zap's console format).
//!
//! A level word must be a whole word: letters with no letter, digit or `_`
//! touching it, so `terrors`, `ERRORS`, `error_count` and `INFO2` do not
//! count. Lower-case words in running text do not count either (`no error
//! occurred` is info). ANSI colour codes are skipped for recognition (a
//! coloured `ERROR` still counts) but kept in the message. No match: info.

use logtap_core::{Level, NewEntry};

/// A plain-text line as an entry: see the module's rules.
pub fn parse_plain_text(line: &str, received_ns: i64) -> NewEntry {
    // The time is read once: the level rules need where it ends.
    let time = leading_time(line);
    NewEntry {
        timestamp: time.map_or(received_ns, |(nanos, _)| nanos),
        level: level_of(line, time.map(|(_, end)| end)).unwrap_or(Level::Info),
        message: line.to_string(),
        labels: Vec::new(),
    }
}

/// The time a line starts with, in Unix epoch nanoseconds, when it is an
/// RFC 3339 time with an offset: the first word (brackets around it are
/// ignored), or the first two words joined, for `2024-05-01 12:00:00Z`.
pub fn leading_timestamp(line: &str) -> Option<i64> {
    leading_time(line).map(|(nanos, _)| nanos)
}

/// [`leading_timestamp`], with the byte offset where the time's words end.
fn leading_time(line: &str) -> Option<(i64, usize)> {
    let unbracket = |word: &str| {
        word.trim_start_matches(['[', '(', '<'])
            .trim_end_matches([']', ')', '>', ':', ','])
            .to_string()
    };
    let rfc3339 = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|time| time.timestamp_nanos_opt())
    };
    // Only a word that starts like a date is worth parsing.
    let looks_like_date = |word: &str| word.len() >= 10 && word.as_bytes()[4] == b'-';
    let (first, first_end) = next_word(line, 0)?;
    let word = unbracket(first);
    if !looks_like_date(&word) {
        return None;
    }
    if let Some(nanos) = rfc3339(&word) {
        return Some((nanos, first_end));
    }
    let (second, second_end) = next_word(line, first_end)?;
    let nanos = rfc3339(&format!("{word}T{}", unbracket(second)))?;
    Some((nanos, second_end))
}

/// The next run of non-white-space characters in `line` from byte `from`,
/// and the offset where it ends.
fn next_word(line: &str, from: usize) -> Option<(&str, usize)> {
    let rest = &line[from..];
    let start = from + (rest.len() - rest.trim_start().len());
    let word_len = line[start..]
        .find(char::is_whitespace)
        .unwrap_or(line.len() - start);
    (word_len > 0).then(|| (&line[start..start + word_len], start + word_len))
}

/// The level a plain-text line states, if it states one (see the module's
/// rules).
pub fn detect_level(line: &str) -> Option<Level> {
    level_of(line, leading_time(line).map(|(_, end)| end))
}

/// [`detect_level`], given where the line's leading time ends, if it has
/// one.
fn level_of(line: &str, time_end: Option<usize>) -> Option<Level> {
    let stripped;
    let (text, time_end) = if line.contains('\x1b') {
        stripped = strip_ansi(line);
        let time_end = leading_time(&stripped).map(|(_, end)| end);
        (stripped.as_str(), time_end)
    } else {
        (line, time_end)
    };
    key_value_level(text)
        .or_else(|| line_start_level(text))
        .or_else(|| word_level(text, time_end))
}

/// Whether a byte can be part of a word: a level word touching one of these
/// is part of a longer word. Bytes of non-ASCII characters are not word
/// bytes, so `…ERROR…` still counts.
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The maximal runs of ASCII letters in `text` that no digit or `_` touches,
/// as (start, end) byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !bytes[i].is_ascii_alphabetic() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let touched = (start > 0 && is_word_byte(bytes[start - 1]))
                || (i < bytes.len() && is_word_byte(bytes[i]));
            if !touched {
                return Some((start, i));
            }
        }
        None
    })
}

/// Rule 1: `level=error` and its kin.
fn key_value_level(text: &str) -> Option<Level> {
    let bytes = text.as_bytes();
    for (start, end) in words(text) {
        let key = &text[start..end];
        if !["level", "lvl", "severity"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            continue;
        }
        let mut i = end;
        // A quoted key: `"level":`.
        if start > 0
            && matches!(bytes[start - 1], b'"' | b'\'')
            && bytes.get(i) == Some(&bytes[start - 1])
        {
            i += 1;
        }
        i = skip_spaces(bytes, i);
        if !matches!(bytes.get(i), Some(b'=' | b':')) {
            continue;
        }
        i = skip_spaces(bytes, i + 1);
        if matches!(bytes.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        let value_end = i + bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if value_end == i || bytes.get(value_end).is_some_and(|&b| is_word_byte(b)) {
            continue;
        }
        if let Ok(level) = Level::parse(&text[i..value_end]) {
            return Some(level);
        }
    }
    None
}

/// Rule 2: forms anchored at the start of the line.
fn line_start_level(text: &str) -> Option<Level> {
    let rest = text.trim_start().as_bytes();
    let letter_level = |letter: u8| match letter {
        b'V' | b'T' => Some(Level::Trace),
        b'D' => Some(Level::Debug),
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' => Some(Level::Error),
        b'F' | b'A' => Some(Level::Fatal),
        _ => None,
    };

    // Syslog: `<PRI>` with PRI from 0 to 191.
    if rest.first() == Some(&b'<') {
        let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=3).contains(&digits) && rest.get(1 + digits) == Some(&b'>') {
            let priority: u32 = std::str::from_utf8(&rest[1..1 + digits])
                .ok()?
                .parse()
                .ok()?;
            if priority <= 191 {
                return Some(match priority % 8 {
                    0..=2 => Level::Fatal,
                    3 => Level::Error,
                    4 => Level::Warn,
                    5 | 6 => Level::Info,
                    _ => Level::Debug,
                });
            }
        }
    }

    // A single bracketed letter: `[E]`, `<W>`. `V` and `A` are logcat's and
    // too unusual to mean a level here.
    if rest.len() >= 3
        && matches!((rest[0], rest[2]), (b'[', b']') | (b'<', b'>'))
        && !matches!(rest[1], b'V' | b'A')
        && rest.get(3).is_none_or(|&b| !is_word_byte(b))
    {
        if let Some(level) = letter_level(rest[1]) {
            return Some(level);
        }
    }

    // Logcat: `E/Tag: msg`, `W/Tag( 123): msg`. The tag runs to `(` or `:`
    // with no space, so `I/O error: x` is not a tag.
    if rest.len() >= 4 && rest[1] == b'/' && rest[0] != b'T' {
        let tag = rest[2..]
            .iter()
            .take_while(|&&b| !matches!(b, b'(' | b':' | b' ' | b'\t'))
            .count();
        if tag > 0 && matches!(rest.get(2 + tag), Some(b'(' | b':')) {
            if let Some(level) = letter_level(rest[0]) {
                return Some(level);
            }
        }
    }

    // glog / klog: `Lmmdd hh:mm:ss`.
    let glog_shape = b"L0000 00:00:00";
    if rest.len() >= glog_shape.len()
        && matches!(rest[0], b'I' | b'W' | b'E' | b'F')
        && rest[1..glog_shape.len()]
            .iter()
            .zip(&glog_shape[1..])
            .all(|(&b, &shape)| {
                if shape == b'0' {
                    b.is_ascii_digit()
                } else {
                    b == shape
                }
            })
    {
        return letter_level(rest[0]);
    }
    None
}

/// Rule 3: a level word in capitals, in brackets, first with a colon,
/// right after the leading time (which ends at `time_end`), or as a
/// tab-separated field.
fn word_level(text: &str, time_end: Option<usize>) -> Option<Level> {
    let bytes = text.as_bytes();
    let first_word_start = text.len() - text.trim_start().len();
    for (start, end) in words(text) {
        let word = &text[start..end];
        // The longest name or alias is 8 letters ("critical", "warning").
        if word.len() > 8 {
            continue;
        }
        let Ok(level) = Level::parse(word) else {
            continue;
        };
        let capitals = word.bytes().all(|b| b.is_ascii_uppercase());
        let before = skip_spaces_back(bytes, start);
        let after = skip_spaces(bytes, end);
        let bracketed = before > 0
            && matches!(
                (bytes[before - 1], bytes.get(after)),
                (b'[', Some(b']')) | (b'<', Some(b'>')) | (b'(', Some(b')'))
            );
        let first_with_colon = start == first_word_start && bytes.get(end) == Some(&b':');
        let first_after_time =
            time_end.is_some_and(|time_end| skip_spaces(bytes, time_end) == start);
        let tab_field = {
            let tab_before = start > 0 && bytes[start - 1] == b'\t';
            let tab_after = bytes.get(end) == Some(&b'\t');
            (tab_before && (tab_after || end == bytes.len())) || (tab_after && start == 0)
        };
        if capitals || bracketed || first_with_colon || first_after_time || tab_field {
            return Some(level);
        }
    }
    None
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

fn skip_spaces_back(bytes: &[u8], mut i: usize) -> usize {
    while i > 0 && bytes[i - 1] == b' ' {
        i -= 1;
    }
    i
}

/// The text without ANSI escape sequences (CSI `ESC [ ... final`, and
/// two-byte `ESC x`), for recognising the level of coloured output.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // A CSI sequence runs to its final byte; any other escape is two
        // characters, the second dropped here.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(cases: &[(&str, Option<Level>)]) {
        for (line, expected) in cases {
            assert_eq!(detect_level(line), *expected, "{line:?}");
        }
    }

    #[test]
    fn key_value_forms() {
        use Level::*;
        check(&[
            ("level=error msg=boom", Some(Error)),
            ("ts=1 level=\"warn\" msg=x", Some(Warn)),
            ("ts=1 level='debug' msg=x", Some(Debug)),
            ("t=1 lvl=eror lvl=crit", Some(Fatal)),
            ("LEVEL=Warning", Some(Warn)),
            ("severity: error", Some(Error)),
            ("prefix {\"level\":\"error\",\"msg\":\"x\"", Some(Error)),
            ("prefix {\"level\": \"trace\"}", Some(Trace)),
            // The explicit key beats an earlier capital word.
            ("INFO handler level=error", Some(Error)),
            // Not a level value: the other rules still apply.
            ("level=loud ERROR", Some(Error)),
            ("level=errors", None),
            ("loglevel=error", None),
            ("level=", None),
            ("level", None),
        ]);
    }

    #[test]
    fn line_start_forms() {
        use Level::*;
        check(&[
            ("<3>kernel: oops", Some(Error)),
            ("<11>app: oops", Some(Error)),
            ("<4>x", Some(Warn)),
            ("<0>x", Some(Fatal)),
            ("<6>x", Some(Info)),
            ("<7>x", Some(Debug)),
            ("<191>x", Some(Debug)),
            ("<192>x", None),
            ("<3 x", None),
            ("x <3>", None),
            ("E/ActivityManager( 123): crash", Some(Error)),
            ("W/Tag: careful", Some(Warn)),
            ("D/Tag: x", Some(Debug)),
            ("V/Tag: x", Some(Trace)),
            ("F/libc: abort", Some(Fatal)),
            ("I/O failure on sda", None),
            ("E0501 12:00:00.123456    1 main.go:10] failed", Some(Error)),
            ("W0501 12:00:00.123456    1 main.go:10] slow", Some(Warn)),
            ("E0501 x", None),
            ("[E] failed", Some(Error)),
            ("<W> careful", Some(Warn)),
            ("  [D] x", Some(Debug)),
            ("[X] x", None),
            ("[a] footnote", None),
        ]);
    }

    #[test]
    fn level_words() {
        use Level::*;
        check(&[
            ("ERROR could not open file", Some(Error)),
            ("2024-05-01 12:00:00,123 WARN [main] slow", Some(Warn)),
            ("[2024-05-01T12:00:00Z ERROR my_crate] boom", Some(Error)),
            ("2024-05-01T12:00:00.1Z  WARN my_crate: slow", Some(Warn)),
            ("ERROR:root:boom", Some(Error)),
            ("WARN: disk 91%", Some(Warn)),
            ("[warn] disk 91%", Some(Warn)),
            ("[ERROR] boom", Some(Error)),
            ("[ Info ] x", Some(Info)),
            ("2024/05/01 12:00:00 [error] 123#0: upstream", Some(Error)),
            ("<Error> x", Some(Error)),
            ("failed (fatal) at x", Some(Fatal)),
            ("error: could not compile", Some(Error)),
            ("  Warning: deprecated", Some(Warn)),
            ("Err: x", Some(Error)),
            ("PANIC in goroutine 7", Some(Fatal)),
            ("CRITICAL: reactor", Some(Fatal)),
            ("ERR x", Some(Error)),
            ("TRACE x", Some(Trace)),
            ("DEBUG x", Some(Debug)),
            ("2024-05-01T12:00:00Z\terror\tapp\tboom", Some(Error)),
            ("debug\tapp\tboom", Some(Debug)),
            ("2024-05-01T12:00:00Z\twarn", Some(Warn)),
            ("2026-11-24T10:00:00Z error disk on fire", Some(Error)),
            ("[2024-05-01T12:00:00+02:00] warning: slow", Some(Warn)),
            ("2024-05-01 12:00:00.5Z   debug cache miss", Some(Debug)),
            // Only the word right after the time counts, and only after a
            // time that is read as the entry's timestamp.
            ("2024-05-01T12:00:00Z app error count rose", None),
            ("2024-05-01T12:00:00 error no offset", None),
            ("12:00:00 error no date", None),
            // The first level word wins.
            ("INFO retry after ERROR", Some(Info)),
            ("user said: ERROR", Some(Error)),
            ("…ERROR…", Some(Error)),
        ]);
    }

    #[test]
    fn words_that_are_not_levels() {
        check(&[
            ("terrors of the deep", None),
            ("ERRORS: 0", None),
            ("error_count=3", None),
            ("INFO2 x", None),
            ("no error occurred", None),
            ("the build had an Error", None),
            ("an error: in the middle", None),
            ("errors: none", None),
            ("Error opening file", None),
            ("warning", None),
            ("xERROR", None),
            ("ERROR9", None),
            ("[errors]", None),
            ("plain message", None),
            ("", None),
            ("WARNINGS", None),
        ]);
    }

    #[test]
    fn ansi_colours_are_skipped_for_recognition_only() {
        let line = "2024-05-01T12:00:00Z \x1b[31mERROR\x1b[0m app: boom";
        assert_eq!(detect_level(line), Some(Level::Error));
        let entry = parse_plain_text(line, 5);
        assert_eq!(entry.message, line);
        assert_eq!(entry.level, Level::Error);
        assert_eq!(detect_level("\x1b[2mdim\x1b"), None);
        assert_eq!(detect_level("\x1b"), None);
    }

    #[test]
    fn plain_entries_keep_the_line_and_the_receive_time() {
        let entry = parse_plain_text("  hello  ", 99);
        assert_eq!(entry.message, "  hello  ");
        assert_eq!(entry.timestamp, 99);
        assert_eq!(entry.level, Level::Info);
        assert!(entry.labels.is_empty());
    }
}

#[cfg(test)]
mod leading_timestamp_tests {
    use super::*;

    const T: i64 = 1_714_564_800_123_000_000; // 2024-05-01T12:00:00.123Z

    #[test]
    fn a_line_that_starts_with_an_rfc3339_time_takes_it_and_keeps_its_text() {
        for line in [
            "2024-05-01T12:00:00.123Z ERROR disk full",
            "[2024-05-01T12:00:00.123Z] ERROR disk full",
            "2024-05-01T14:00:00.123+02:00 ERROR disk full",
            "2024-05-01 12:00:00.123Z ERROR disk full",
        ] {
            let entry = parse_plain_text(line, 7);
            assert_eq!(entry.timestamp, T, "{line}");
            assert_eq!(entry.message, line);
            assert_eq!(entry.level, Level::Error);
        }
    }

    #[test]
    fn other_lines_keep_the_receive_time() {
        for line in [
            "ERROR 2024-05-01T12:00:00Z later in the line",
            "2024-05-01 12:00:00 no offset, so no time zone to trust",
            "2024-13-45T99:00:00Z impossible",
            "12345 not a date",
            "",
        ] {
            assert_eq!(parse_plain_text(line, 7).timestamp, 7, "{line}");
        }
    }
}

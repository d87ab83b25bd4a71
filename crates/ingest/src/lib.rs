//! Decoders from a wire format to entries: what arrives, turned into what
//! a backend keeps. No network types and no runtime here: a protocol
//! receives its bytes in the server and hands them to its decoder.
//!
//! The decoders: the push line format (what `logtap push` sends and
//! `POST /api/v1/push` takes), with the time expressions users type, and
//! Loki's push bodies, JSON and protobuf+snappy ([`loki`]), OTLP logs
//! ([`otlp`]), Elasticsearch bulk bodies ([`elasticsearch`]), syslog
//! messages, RFC 5424 and RFC 3164, with TCP framing ([`syslog`]), and
//! journald's export format, read incrementally from a stream ([`journald`]).
//!
//! * [`parse_line`] turns one log line into a [`NewEntry`]: a line that is a
//!   JSON object gives its fields (see [`json`]), any other line is plain text
//!   whose level is recognised from common forms (see [`plain`]).
//! * [`parse_time`] reads the times users give to `--since` / `--until` and
//!   to the HTTP API's query parameters (see [`time`]).
//!
//! Lines are `&str`: bytes that are not UTF-8 are the caller's business. The
//! `logtap push` command converts them lossily (invalid sequences become
//! U+FFFD), so a stray byte never costs a whole line.
//!
//! The rules for ambiguous and bad input are written out on each module and
//! in the crate's README.md, and each one has a test.

#![deny(missing_docs)]

pub mod elasticsearch;
pub mod journald;
pub mod json;
pub mod loki;
pub mod otlp;
pub mod plain;
pub mod syslog;
pub mod time;

use logtap_core::NewEntry;

pub use json::JsonLineError;
pub use time::{parse_duration, parse_epoch, parse_time, DurationError, TimeError};

/// Why a line could not be turned into an entry.
///
/// Only JSON lines can fail, and only in ways where guessing would put the
/// entry somewhere misleading (today instead of the year it happened), so
/// the caller decides: `logtap push` warns and stores the line as plain
/// text ([`parse_plain`]); an HTTP push answers 400 with the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error(transparent)]
    /// A JSON line whose fields cannot be stored as they say.
    Json(#[from] JsonLineError),
}

/// Parses one log line. `received_ns` (Unix epoch nanoseconds) is the
/// timestamp of entries that do not carry their own.
///
/// A trailing `\n` and `\r` are ignored, so lines may come straight from a
/// reader that keeps them. A line of only white space gives `Ok(None)`.
pub fn parse_line(line: &str, received_ns: i64) -> Result<Option<NewEntry>, LineError> {
    let line = strip_line_end(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    if let Some(entry) = json::parse_json_line(line, received_ns)? {
        return Ok(Some(entry));
    }
    Ok(Some(plain::parse_plain_text(line, received_ns)))
}

/// Parses a line as plain text whatever it looks like: the whole line is the
/// message, the level is recognised from the text, the timestamp is
/// `received_ns`. This is the fallback for a JSON line [`parse_line`]
/// rejected, so that no line is ever lost. Returns `None` for a blank line.
pub fn parse_plain(line: &str, received_ns: i64) -> Option<NewEntry> {
    let line = strip_line_end(line);
    if line.trim().is_empty() {
        return None;
    }
    Some(plain::parse_plain_text(line, received_ns))
}

/// Drops one trailing `\n` and then any `\r` before it: Windows files and
/// `read_line` buffers both end that way, and neither ending is part of the
/// message.
fn strip_line_end(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.trim_end_matches('\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtap_core::Level;

    #[test]
    fn blank_lines_give_nothing() {
        for line in ["", " ", "\t", "\r", "\r\n", "  \n"] {
            assert_eq!(parse_line(line, 7), Ok(None), "{line:?}");
            assert_eq!(parse_plain(line, 7), None, "{line:?}");
        }
    }

    #[test]
    fn line_endings_are_not_part_of_the_message() {
        let entry = parse_line("ERROR boom\r\n", 7).unwrap().unwrap();
        assert_eq!(entry.message, "ERROR boom");
        assert_eq!(entry.level, Level::Error);
        let entry = parse_line("{\"msg\":\"x\"}\r", 7).unwrap().unwrap();
        assert_eq!(entry.message, "x");
    }

    #[test]
    fn a_rejected_json_line_can_still_be_kept_as_plain_text() {
        let line = r#"{"level":"error","ts":"yesterday","msg":"disk full"}"#;
        assert!(parse_line(line, 7).is_err());
        let entry = parse_plain(line, 7).unwrap();
        assert_eq!(entry.message, line);
        assert_eq!(entry.timestamp, 7);
        // `"level":"error"` is recognised in plain text too.
        assert_eq!(entry.level, Level::Error);
    }
}

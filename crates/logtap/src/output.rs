//! How `logtap logs` prints entries: text for people, JSON for programs.

use std::io::{self, Write};

use anstyle::{AnsiColor, Effects, Style};
use chrono::{DateTime, Local};
use logtap_core::json;
use logtap_proto::v1::LogEntry;

/// The `--output` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Local time, level, message, labels; coloured on a terminal.
    Text,
    /// One JSON object a line: {"cursor","timestamp","level","message","labels"},
    /// the HTTP API's form.
    Json,
}

/// Writes entries in one format to one writer.
pub struct Printer<W> {
    out: W,
    format: Format,
    color: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, color: bool) -> Self {
        Printer { out, format, color }
    }

    pub fn entry(&mut self, entry: &LogEntry) -> io::Result<()> {
        match self.format {
            Format::Json => {
                // The HTTP API's form (one writer for both, in the core
                // crate); labels come out sorted by name, so the gRPC
                // map's lack of order does not show.
                let mut line = String::with_capacity(96 + entry.message.len());
                json::write_entry(
                    &mut line,
                    entry.cursor,
                    entry.timestamp,
                    &entry.level,
                    &entry.message,
                    entry.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                line.push('\n');
                self.out.write_all(line.as_bytes())
            }
            Format::Text => write_text(&mut self.out, entry, self.color),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `2024-05-01 14:00:00.123 ERROR message k=v`, the time in the local zone
/// (people read their own clock), millisecond precision.
///
/// What the server sends is shown, never obeyed: control characters in the
/// level, the message and label names and values are written as escapes
/// ([`Escaped`]), so an entry cannot retitle the terminal, move its cursor,
/// overwrite earlier lines with a carriage return, or pass for several
/// entries with a newline.
fn write_text(out: &mut impl Write, entry: &LogEntry, color: bool) -> io::Result<()> {
    let time = DateTime::from_timestamp_nanos(entry.timestamp)
        .with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S%.3f");
    let style = level_style(&entry.level);
    let dim = Style::new().effects(Effects::DIMMED);
    let (dim, style) = if color {
        (dim, style)
    } else {
        (Style::new(), Style::new())
    };
    write!(
        out,
        "{dim}{time}{dim:#} {style}{:<5} {}{style:#}",
        Escaped(&entry.level.to_uppercase()).to_string(),
        Escaped(&entry.message)
    )?;
    let mut labels: Vec<_> = entry.labels.iter().collect();
    labels.sort();
    for (name, value) in labels {
        write!(
            out,
            " {dim}{}={}{dim:#}",
            Escaped(name),
            Escaped(&quote_if_needed(value))
        )?;
    }
    out.write_all(b"\n")
}

/// Text for a terminal with its control characters escaped, much as
/// `journalctl` shows them: `\n`, `\r`, and `\xNN` for the other C0
/// characters and DEL, `\u{NN}` for the C1 ones (U+0080 to U+009F, which
/// some terminals obey as ESC sequences). Tab stays: it cannot hide or move
/// text. Everything else, all of UTF-8, is written as it is; a backslash
/// too, so an escape and the same characters typed out look alike.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(|c: char| c.is_control() && c != '\t') {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                c if (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Red for errors (bold for fatal), yellow for warnings, dim for debug and
/// trace: "Show Errors" should look like it.
fn level_style(level: &str) -> Style {
    match level {
        "fatal" => Style::new()
            .fg_color(Some(AnsiColor::Red.into()))
            .effects(Effects::BOLD),
        "error" => Style::new().fg_color(Some(AnsiColor::Red.into())),
        "warn" => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        "debug" | "trace" => Style::new().effects(Effects::DIMMED),
        _ => Style::new(),
    }
}

/// Label values with spaces, quotes, `=` or control characters are quoted
/// as JSON strings, so each `name=value` stays one readable token.
fn quote_if_needed(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if plain {
        value.to_string()
    } else {
        let mut quoted = String::with_capacity(value.len() + 2);
        json::write_string(&mut quoted, value);
        quoted
    }
}

/// Writes a line to standard output. A reader that went away is not an
/// error: `logtap push ... | head -0` should not fail for it.
pub fn print_line(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LogEntry {
        LogEntry {
            message: "disk full".into(),
            timestamp: 1_714_564_800_123_000_000,
            level: "error".into(),
            cursor: 7,
            labels: [
                ("host".to_string(), "a 1".to_string()),
                ("app".into(), "db".into()),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn print(format: Format, color: bool) -> String {
        let mut printer = Printer::new(Vec::new(), format, color);
        printer.entry(&entry()).unwrap();
        String::from_utf8(printer.out).unwrap()
    }

    #[test]
    fn json_is_the_http_api_form() {
        let line = print(Format::Json, false);
        assert_eq!(
            line,
            "{\"cursor\":7,\"timestamp\":1714564800123000000,\"level\":\"error\",\"message\":\"disk full\",\"labels\":{\"app\":\"db\",\"host\":\"a 1\"}}\n"
        );
    }

    #[test]
    fn text_has_time_level_message_and_sorted_labels() {
        let line = print(Format::Text, false);
        let expected_time = DateTime::from_timestamp_nanos(1_714_564_800_123_000_000)
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        assert_eq!(
            line,
            format!("{expected_time} ERROR disk full app=db host=\"a 1\"\n")
        );
        assert!(!line.contains('\x1b'));
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        let mut entry = entry();
        entry.message = "\x1b]0;owned\x07title\r\x1b[2Aup\nfake line\ttab \u{9b}31m é".into();
        entry.level = "error\x1b[8m".into();
        entry.labels = [
            ("k\x1b[1m".to_string(), "v\x1b[2J".to_string()),
            ("plain".into(), "\u{9b}c".into()),
        ]
        .into_iter()
        .collect();
        let mut printer = Printer::new(Vec::new(), Format::Text, false);
        printer.entry(&entry).unwrap();
        let line = String::from_utf8(printer.out).unwrap();
        assert!(
            !line.contains(|c: char| c.is_control() && c != '\t' && c != '\n'),
            "{line:?}"
        );
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'));
        assert!(
            line.contains(
                "ERROR\\x1b[8M \\x1b]0;owned\\x07title\\r\\x1b[2Aup\\nfake line\ttab \\u{9b}31m é"
            ),
            "{line:?}"
        );
        assert!(line.contains(" k\\x1b[1m=\"v\\u001b[2J\""), "{line:?}");
        assert!(line.contains(" plain=\"\\u{9b}c\""), "{line:?}");
    }

    #[test]
    fn colour_only_when_asked() {
        let line = print(Format::Text, true);
        assert!(line.contains("\x1b[31m"), "{line:?}");
    }
}

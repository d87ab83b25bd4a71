//! Syslog messages (RFC 5424 and RFC 3164) into entries, and the framing of
//! syslog over TCP (RFC 6587).
//!
//! One message is one entry:
//!
//! - `<PRI>` gives the severity, mapped to the level (0–2 fatal, 3 error,
//!   4 warn, 5–6 info, 7 debug), and the facility, kept as the label
//!   `facility` by name (`kern`, `user`, ..., `local7`);
//! - RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`):
//!   the header fields become the labels `hostname`, `app`, `procid`,
//!   `msgid` (a NILVALUE `-` gives no label), each structured data param
//!   the label `sd.<id>.<param>` (with `\"`, `\\` and `\]` unescaped), the
//!   message is MSG without its leading spaces (rsyslog's RFC 5424 template
//!   sends one) and its UTF-8 BOM; a NILVALUE time is the time
//!   received;
//! - RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`): the labels
//!   `hostname`, `app` (TAG) and `procid` (PID). Its time has no year and no
//!   zone: it is read as UTC, in the year received, or the year before if
//!   that would put it more than a day after the time received (a message
//!   sent on 31 December and received on 1 January). A message after
//!   `<PRI>` that has no such time is kept whole as the message, received
//!   now, with no host or tag: RFC 3164 asks relays to accept anything.
//!
//! A message must start with a valid `<PRI>` (0–191) and be UTF-8 (RFC 5424
//! MSG without a BOM may be any bytes: it is converted lossily); otherwise
//! it is refused with a [`SyslogError`]. A trailing `\n` (and `\r`, and
//! NUL that some senders add) is not part of the message.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use logtap_core::{Level, NewEntry};

/// The facility names, by number (RFC 5424, table 1).
pub const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Why a syslog message cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    /// No `<PRI>` with a number from 0 to 191 at the start.
    #[error("the message does not start with <PRI> (a number from 0 to 191 in angle brackets)")]
    Priority,
    /// An RFC 5424 header that does not parse.
    #[error("the RFC 5424 header is malformed: {0}")]
    Header(&'static str),
    /// RFC 5424 structured data that does not parse.
    #[error("the RFC 5424 structured data is malformed: {0}")]
    StructuredData(&'static str),
    /// A message that is not UTF-8 where it must be.
    #[error("the message is not UTF-8")]
    Utf8,
}

/// Why a TCP stream of syslog frames cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame longer than the limit.
    #[error("a frame is longer than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// An octet count that is not a number followed by a space.
    #[error("an octet-counted frame does not start with LENGTH SP")]
    BadLength,
}

/// How a TCP connection frames its messages (RFC 6587), decided by its
/// first byte: a digit is octet counting, anything else (`<`) newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `LEN SP MSG`.
    OctetCounting,
    /// Messages ended by LF.
    NonTransparent,
}

impl Framing {
    /// The framing of a connection whose first byte is `first`.
    pub fn detect(first: u8) -> Framing {
        if first.is_ascii_digit() {
            Framing::OctetCounting
        } else {
            Framing::NonTransparent
        }
    }
}

/// The next whole frame at the front of `buffer`, if there is one: the
/// frame, borrowed from the buffer, and how many bytes it takes up there
/// (its length or LF included), which the caller skips to find the next.
/// A frame is borrowed rather than cut off the buffer so that a read full
/// of frames costs one pass over its bytes, not a move of the rest of the
/// buffer per frame. `Ok(None)`: more bytes are needed. A frame (or, with
/// LF framing, bytes without an LF) longer than `limit` is an error: the
/// connection must close, since where the next frame starts is no longer
/// known.
pub fn next_frame(
    buffer: &[u8],
    framing: Framing,
    limit: usize,
) -> Result<Option<(&[u8], usize)>, FrameError> {
    match framing {
        Framing::NonTransparent => match buffer.iter().position(|&b| b == b'\n') {
            Some(end) if end <= limit => Ok(Some((&buffer[..end], end + 1))),
            Some(_) => Err(FrameError::TooLarge { limit }),
            None if buffer.len() > limit => Err(FrameError::TooLarge { limit }),
            None => Ok(None),
        },
        Framing::OctetCounting => {
            let digits = buffer.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == buffer.len() {
                // A length still arriving; more than 20 digits is no length.
                return if digits > 20 {
                    Err(FrameError::BadLength)
                } else {
                    Ok(None)
                };
            }
            if digits == 0 || buffer[digits] != b' ' {
                return Err(FrameError::BadLength);
            }
            let length: usize = std::str::from_utf8(&buffer[..digits])
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or(FrameError::BadLength)?;
            if length > limit {
                return Err(FrameError::TooLarge { limit });
            }
            let start = digits + 1;
            if buffer.len() - start < length {
                return Ok(None);
            }
            Ok(Some((&buffer[start..start + length], start + length)))
        }
    }
}

/// The level of a syslog severity (0–7).
pub fn level_of_severity(severity: u8) -> Level {
    match severity {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    }
}

/// Decodes one syslog message, RFC 5424 or RFC 3164 (see the module doc).
/// `received_ns` (Unix epoch nanoseconds) is the time of a message without
/// one, and the "now" the RFC 3164 year is chosen against.
pub fn decode(message: &[u8], received_ns: i64) -> Result<NewEntry, SyslogError> {
    let mut end = message.len();
    while end > 0 && matches!(message[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    let message = &message[..end];
    let (pri, rest) = priority(message).ok_or(SyslogError::Priority)?;
    let mut labels = vec![(
        "facility".to_string(),
        FACILITIES[usize::from(pri / 8)].to_string(),
    )];
    let level = level_of_severity(pri % 8);
    if let Some(after_version) = rest.strip_prefix(b"1 ") {
        let (timestamp, text) = decode_5424(after_version, received_ns, &mut labels)?;
        return Ok(NewEntry {
            timestamp,
            level,
            message: text,
            labels,
        });
    }
    let rest = std::str::from_utf8(rest).map_err(|_| SyslogError::Utf8)?;
    let (timestamp, text) = decode_3164(rest, received_ns, &mut labels);
    Ok(NewEntry {
        timestamp,
        level,
        message: text,
        labels,
    })
}

/// `<PRI>` and what follows it.
fn priority(message: &[u8]) -> Option<(u8, &[u8])> {
    let rest = message.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pri: u16 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (pri <= 191).then(|| (pri as u8, &rest[close + 1..]))
}

/// Splits off the next space-separated header field.
fn field(rest: &[u8]) -> Result<(&str, &[u8]), SyslogError> {
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let value = std::str::from_utf8(&rest[..end]).map_err(|_| SyslogError::Utf8)?;
    if value.is_empty() {
        return Err(SyslogError::Header("an empty header field"));
    }
    let after = rest.get(end + 1..).unwrap_or(&[]);
    Ok((value, after))
}

/// The RFC 5424 header after `VERSION SP`: the time and the message, with
/// the header's labels added to `labels`.
fn decode_5424(
    rest: &[u8],
    received_ns: i64,
    labels: &mut Vec<(String, String)>,
) -> Result<(i64, String), SyslogError> {
    let (time, rest) = field(rest)?;
    let timestamp = if time == "-" {
        received_ns
    } else {
        DateTime::parse_from_rfc3339(time)
            .ok()
            .and_then(|time| time.timestamp_nanos_opt())
            .ok_or(SyslogError::Header("TIMESTAMP is not an RFC 3339 time"))?
    };
    let mut rest = rest;
    for name in ["hostname", "app", "procid", "msgid"] {
        let (value, after) = field(rest)?;
        if value != "-" {
            labels.push((name.to_string(), value.to_string()));
        }
        rest = after;
    }
    let rest = structured_data(rest, labels)?;
    // Spaces before MSG are not part of it: rsyslog's RFC 5424 template
    // sends the space that followed a local message's tag as MSG's first
    // byte.
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let rest = &rest[start..];
    let text = match rest.strip_prefix("\u{feff}".as_bytes()) {
        Some(utf8) => std::str::from_utf8(utf8)
            .map_err(|_| SyslogError::Utf8)?
            .to_string(),
        None => String::from_utf8_lossy(rest).into_owned(),
    };
    Ok((timestamp, text))
}

/// Reads `-` or `[id param="value" ...]...`, adding `sd.<id>.<param>`
/// labels; returns what follows.
fn structured_data<'a>(
    rest: &'a [u8],
    labels: &mut Vec<(String, String)>,
) -> Result<&'a [u8], SyslogError> {
    if let Some(after) = rest.strip_prefix(b"-") {
        return Ok(after);
    }
    let mut rest = rest;
    if !rest.starts_with(b"[") {
        return Err(SyslogError::StructuredData(
            "STRUCTURED-DATA is neither - nor [...]",
        ));
    }
    while let Some(element) = rest.strip_prefix(b"[") {
        let id_end = element
            .iter()
            .position(|&b| b == b' ' || b == b']')
            .ok_or(SyslogError::StructuredData("an element does not end"))?;
        let id = std::str::from_utf8(&element[..id_end]).map_err(|_| SyslogError::Utf8)?;
        if id.is_empty() {
            return Err(SyslogError::StructuredData("an element without an id"));
        }
        let mut at = &element[id_end..];
        loop {
            if let Some(after) = at.strip_prefix(b"]") {
                rest = after;
                break;
            }
            at = at
                .strip_prefix(b" ")
                .ok_or(SyslogError::StructuredData("expected a space or ]"))?;
            let eq = at
                .iter()
                .position(|&b| b == b'=')
                .ok_or(SyslogError::StructuredData("a param without ="))?;
            let name = std::str::from_utf8(&at[..eq]).map_err(|_| SyslogError::Utf8)?;
            if name.is_empty() || name.contains([' ', ']', '"']) {
                return Err(SyslogError::StructuredData("a bad param name"));
            }
            at = at[eq + 1..]
                .strip_prefix(b"\"")
                .ok_or(SyslogError::StructuredData("a param value without quotes"))?;
            let mut value = Vec::new();
            loop {
                match at {
                    [b'\\', escaped @ (b'"' | b'\\' | b']'), tail @ ..] => {
                        value.push(*escaped);
                        at = tail;
                    }
                    [b'"', tail @ ..] => {
                        at = tail;
                        break;
                    }
                    [byte, tail @ ..] => {
                        value.push(*byte);
                        at = tail;
                    }
                    [] => return Err(SyslogError::StructuredData("a param value does not end")),
                }
            }
            let value = String::from_utf8(value).map_err(|_| SyslogError::Utf8)?;
            labels.push((format!("sd.{id}.{name}"), value));
        }
    }
    Ok(rest)
}

/// The RFC 3164 part after `<PRI>`: the time and the message, with the
/// host, tag and pid added to `labels`.
fn decode_3164(rest: &str, received_ns: i64, labels: &mut Vec<(String, String)>) -> (i64, String) {
    let Some((timestamp, after)) = bsd_time(rest, received_ns) else {
        return (received_ns, rest.to_string());
    };
    let mut after = after;
    // HOST, unless the next word is already the tag (`tag:`), as local
    // senders write it.
    if let Some((word, tail)) = after.split_once(' ') {
        if !word.ends_with(':') && !word.contains('[') && !word.is_empty() {
            labels.push(("hostname".to_string(), word.to_string()));
            after = tail;
        }
    }
    // TAG[PID]: up to the first ':' or '[' within a word.
    let tag_end = after.find([':', '[', ' ']).unwrap_or(after.len());
    let tag = &after[..tag_end];
    let mut tail = &after[tag_end..];
    let mut pid = None;
    if let Some(inner) = tail.strip_prefix('[') {
        if let Some(close) = inner.find(']') {
            pid = Some(&inner[..close]);
            tail = &inner[close + 1..];
        }
    }
    match tail.strip_prefix(':') {
        Some(message) if !tag.is_empty() => {
            labels.push(("app".to_string(), tag.to_string()));
            if let Some(pid) = pid.filter(|pid| !pid.is_empty()) {
                labels.push(("procid".to_string(), pid.to_string()));
            }
            let message = message.strip_prefix(' ').unwrap_or(message);
            (timestamp, message.to_string())
        }
        // No `TAG:`: all of it is the message.
        _ => (timestamp, after.to_string()),
    }
}

/// `Mmm dd hh:mm:ss ` at the start of `text`, as Unix nanoseconds under
/// the year rule of the module doc, and what follows.
fn bsd_time(text: &str, received_ns: i64) -> Option<(i64, &str)> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let head = text.get(..15)?;
    let month = MONTHS.iter().position(|m| head.starts_with(m))? as u32 + 1;
    let bytes = head.as_bytes();
    if bytes[3] != b' ' || bytes[6] != b' ' || bytes[9] != b':' || bytes[12] != b':' {
        return None;
    }
    let number = |s: &str| -> Option<u32> {
        let s = s.trim_start();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let day = number(&head[4..6])?;
    let (hour, minute, second) = (
        number(&head[7..9])?,
        number(&head[10..12])?,
        number(&head[13..15])?,
    );
    let rest = text[15..].strip_prefix(' ').unwrap_or(&text[15..]);
    let now = Utc.timestamp_nanos(received_ns);
    let at = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_opt(hour, minute, second))
            .and_then(|time| time.and_utc().timestamp_nanos_opt())
    };
    const DAY_NS: i64 = 86_400_000_000_000;
    let this_year = at(now.year());
    let timestamp = match this_year {
        Some(ns) if ns <= received_ns.saturating_add(DAY_NS) => ns,
        // More than a day ahead, or 29 February in a year without one:
        // last year's.
        _ => at(now.year() - 1)?,
    };
    Some((timestamp, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T17:00:00Z.
    const NOW: i64 = 1_796_403_600_000_000_000;

    fn label<'a>(entry: &'a NewEntry, name: &str) -> Option<&'a str> {
        entry
            .labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn rfc5424_with_structured_data_and_bom() {
        let message = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"li\\]cation\"][b x=\"\"] \u{feff}An application event\n";
        let entry = decode(message.as_bytes(), NOW).unwrap();
        assert_eq!(entry.message, "An application event");
        assert_eq!(entry.level, Level::Info);
        assert_eq!(entry.timestamp, 1_065_910_455_003_000_000);
        assert_eq!(label(&entry, "facility"), Some("local4"));
        assert_eq!(label(&entry, "hostname"), Some("mymachine.example.com"));
        assert_eq!(label(&entry, "app"), Some("evntslog"));
        assert_eq!(label(&entry, "procid"), None);
        assert_eq!(label(&entry, "msgid"), Some("ID47"));
        assert_eq!(label(&entry, "sd.exampleSDID@32473.iut"), Some("3"));
        assert_eq!(
            label(&entry, "sd.exampleSDID@32473.eventSource"),
            Some("App\"li]cation")
        );
        assert_eq!(label(&entry, "sd.b.x"), Some(""));
    }

    #[test]
    fn rfc5424_spaces_before_msg_are_not_part_of_it() {
        // What rsyslog's RSYSLOG_SyslogProtocol23Format sends for a local
        // message: the space after the tag stays at the front of %msg%.
        let message = "<11>1 2024-05-01T10:00:00+02:00 web01 shop 42 - -  disk full\n";
        assert_eq!(
            decode(message.as_bytes(), NOW).unwrap().message,
            "disk full"
        );
    }

    #[test]
    fn rfc5424_nil_values() {
        let entry = decode(b"<11>1 - - - - - -", NOW).unwrap();
        assert_eq!(entry.timestamp, NOW);
        assert_eq!(entry.level, Level::Error);
        assert_eq!(entry.message, "");
        assert_eq!(entry.labels, [("facility".into(), "user".into())]);
    }

    #[test]
    fn rfc3164_with_host_tag_and_pid() {
        let entry = decode(
            b"<34>Oct  1 22:14:15 mymachine su[123]: 'su root' failed",
            NOW,
        )
        .unwrap();
        assert_eq!(entry.message, "'su root' failed");
        assert_eq!(entry.level, Level::Fatal);
        assert_eq!(label(&entry, "facility"), Some("auth"));
        assert_eq!(label(&entry, "hostname"), Some("mymachine"));
        assert_eq!(label(&entry, "app"), Some("su"));
        assert_eq!(label(&entry, "procid"), Some("123"));
        let expected = Utc.with_ymd_and_hms(2026, 10, 1, 22, 14, 15).unwrap();
        assert_eq!(entry.timestamp, expected.timestamp_nanos_opt().unwrap());
    }

    #[test]
    fn rfc3164_year_is_last_years_when_more_than_a_day_ahead() {
        // Received 2026-12-04: 5 December is within a day... of tomorrow.
        let entry = decode(b"<13>Dec  5 16:00:00 h t: m", NOW).unwrap();
        let this = Utc.with_ymd_and_hms(2026, 12, 5, 16, 0, 0).unwrap();
        assert_eq!(entry.timestamp, this.timestamp_nanos_opt().unwrap());
        let entry = decode(b"<13>Dec 25 16:00:00 h t: m", NOW).unwrap();
        let last = Utc.with_ymd_and_hms(2025, 12, 25, 16, 0, 0).unwrap();
        assert_eq!(entry.timestamp, last.timestamp_nanos_opt().unwrap());
    }

    #[test]
    fn rfc3164_without_a_time_is_kept_whole() {
        let entry = decode(b"<13>just some text", NOW).unwrap();
        assert_eq!(entry.message, "just some text");
        assert_eq!(entry.timestamp, NOW);
    }

    #[test]
    fn bad_messages_are_refused() {
        assert_eq!(decode(b"no pri", NOW), Err(SyslogError::Priority));
        assert_eq!(decode(b"<192>x", NOW), Err(SyslogError::Priority));
        assert_eq!(decode(b"<>x", NOW), Err(SyslogError::Priority));
        assert!(decode(b"<13>1 notatime h a p m - x", NOW).is_err());
        assert!(decode(b"<13>1 - h a p m [x a=\"b] x", NOW).is_err());
        assert!(decode(b"<13>1 - h a p m nosd", NOW).is_err());
    }

    #[test]
    fn both_framings() {
        let buffer = b"5 <13>a3 <1".to_vec();
        let framing = Framing::detect(buffer[0]);
        assert_eq!(framing, Framing::OctetCounting);
        let (frame, used) = next_frame(&buffer, framing, 100).unwrap().unwrap();
        assert_eq!((frame, used), (&b"<13>a"[..], 7));
        assert_eq!(next_frame(&buffer[used..], framing, 100).unwrap(), None);
        let mut buffer = buffer[used..].to_vec();
        buffer.extend_from_slice(b">");
        assert_eq!(
            next_frame(&buffer, framing, 100).unwrap(),
            Some((&b"<1>"[..], 5))
        );
        assert_eq!(
            next_frame(b"200 x", framing, 100),
            Err(FrameError::TooLarge { limit: 100 })
        );
        assert_eq!(next_frame(b"x", framing, 100), Err(FrameError::BadLength));
        let buffer = b"<13>a\n<13>b".to_vec();
        let framing = Framing::detect(buffer[0]);
        let (frame, used) = next_frame(&buffer, framing, 100).unwrap().unwrap();
        assert_eq!((frame, used), (&b"<13>a"[..], 6));
        assert_eq!(next_frame(&buffer[used..], framing, 100).unwrap(), None);
        assert_eq!(
            next_frame(&[b'x'; 101], framing, 100),
            Err(FrameError::TooLarge { limit: 100 })
        );
    }
}

//! journald's Journal Export Format (`application/vnd.fdo.journal`), as
//! `systemd-journal-upload` sends it to `POST /upload`, into entries.
//!
//! The format: entries one after another, each a run of fields ended by an
//! empty line. A field is a line `NAME=value\n`, or, for a value that is
//! not printable text (binary, or holding a newline), the binary-safe form
//! `NAME\n`, the value's length as a 64-bit little-endian number, the
//! value's bytes, and `\n`.
//!
//! The mapping:
//!
//! - `MESSAGE` is the message; bytes that are not UTF-8 (a binary
//!   `MESSAGE`) become U+FFFD, as `logtap push` reads lines; an entry
//!   without one has an empty message;
//! - `PRIORITY` (syslog's severity) is the level: 0–2 fatal, 3 error,
//!   4 warn, 5–6 info, 7 debug; missing, info; a value that is not 0–7
//!   leaves the level at info and stays as a label `PRIORITY`;
//! - `__REALTIME_TIMESTAMP` (microseconds since 1970) is the time; missing,
//!   the receive time; a value that is not such a number, or is past 2262
//!   (outside `i64` nanoseconds), refuses the entry ([`JournaldError::BadTime`]),
//!   since an entry filed elsewhere in time is hidden;
//! - every other field whose name starts with `__` is dropped: those are
//!   the export's addresses (`__CURSOR`, `__MONOTONIC_TIMESTAMP`,
//!   `__SEQNUM`, `__SEQNUM_ID`), which say where the entry sat in the
//!   sender's journal and mean nothing here, and `systemd-journal-remote`
//!   drops them the same way;
//! - every other field is a label, named as journald spells it
//!   (`_HOSTNAME`, `_SYSTEMD_UNIT`, `SYSLOG_IDENTIFIER`, `_PID`,
//!   `_BOOT_ID`, ...), so a filter reads like `journalctl _SYSTEMD_UNIT=...`;
//!   values that are not UTF-8 become U+FFFD. A name given twice keeps its
//!   last value (the server's batcher keeps labels in that one form), and
//!   so does `MESSAGE`.
//!
//! Names follow journald's rule: A–Z, 0–9 and `_`, not starting with a
//! digit, at most 64 bytes. A `NAME=value` line whose name breaks it is
//! skipped, as `systemd-journal-remote` skips it; a line without `=`
//! whose text is not such a name is not the format at all (text sent to
//! the wrong place), and refuses the entry ([`JournaldError::NotAField`]).
//!
//! The format arrives as a stream (one request, chunked, holding every
//! entry the uploader has), so [`Decoder`] takes bytes as they come, in
//! pieces of any size, and yields each entry once its empty line arrives,
//! keeping an unfinished entry across pieces; how the bytes are cut never
//! changes what comes out. One entry may take at most the decoder's limit
//! of bytes ([`JournaldError::TooLarge`]) and [`MAX_FIELDS`] fields
//! ([`JournaldError::TooManyFields`]), which bound what it holds. At
//! the end of the body ([`Decoder::finish`]) a last entry without its
//! empty line is an entry all the same; one that ends inside a binary
//! field is refused ([`JournaldError::Truncated`]).

use crate::syslog::level_of_severity;
use logtap_core::{Level, NewEntry};

/// The media type of the format: the `Content-Type` of an upload.
pub const MEDIA_TYPE: &str = "application/vnd.fdo.journal";

/// The longest field name journald allows.
const MAX_NAME_BYTES: usize = 64;

/// The field whose value is the entry's time, in microseconds.
const REALTIME: &str = "__REALTIME_TIMESTAMP";

/// The most fields one entry may have, journald's own limit
/// (`ENTRY_FIELD_COUNT_MAX`): a byte limit alone would let an entry of
/// tiny fields (`A=\n`, three bytes each) take many times its size in
/// memory as labels.
pub const MAX_FIELDS: usize = 1024;

/// How much of a client's line an error quotes.
const QUOTED_BYTES: usize = 60;

/// Why the rest of an upload cannot be read. Entries are numbered from 0
/// in the order they arrive in the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournaldError {
    /// A line without `=` that is not a field name.
    #[error("entry {entry}: the line {line:?} is neither NAME=value nor the NAME of a binary field (A-Z, 0-9 and _, at most 64 bytes): the body is not in the Journal Export Format")]
    NotAField {
        /// The entry's number in the body, from 0.
        entry: u64,
        /// The line, clipped, with bytes that are not UTF-8 as U+FFFD.
        line: String,
    },
    /// A binary field's value not followed by its newline: the length
    /// before it was wrong, so nothing after it can be trusted.
    #[error("entry {entry}: the binary field {name} is not followed by a newline after its {length} bytes (a wrong length?)")]
    MissingNewline {
        /// The entry's number in the body, from 0.
        entry: u64,
        /// The field's name.
        name: String,
        /// The length it declared.
        length: u64,
    },
    /// One entry over the decoder's limit.
    #[error("entry {entry} is over {limit} bytes, the largest entry accepted")]
    TooLarge {
        /// The entry's number in the body, from 0.
        entry: u64,
        /// The limit, in bytes.
        limit: usize,
    },
    /// One entry with more than [`MAX_FIELDS`] fields.
    #[error("entry {entry} has more than {limit} fields, the most journald allows")]
    TooManyFields {
        /// The entry's number in the body, from 0.
        entry: u64,
        /// The limit, in fields.
        limit: usize,
    },
    /// The body ends inside a binary field.
    #[error("entry {entry}: the body ends inside {part}")]
    Truncated {
        /// The entry's number in the body, from 0.
        entry: u64,
        /// Which part: the length or the value of which field.
        part: String,
    },
    /// A `__REALTIME_TIMESTAMP` that is not a time logtap can keep.
    #[error("entry {entry}: __REALTIME_TIMESTAMP={value:?} is not a time (decimal microseconds since 1970, before 2262)")]
    BadTime {
        /// The entry's number in the body, from 0.
        entry: u64,
        /// The value as sent, clipped.
        value: String,
    },
}

/// Where the decoder is within an entry.
#[derive(Debug, Default)]
enum State {
    /// Reading a line: a `NAME=value` field, a binary field's name, or the
    /// empty line that ends the entry.
    #[default]
    Line,
    /// Reading the 8 bytes of a binary field's length.
    Length {
        /// The field's name.
        name: String,
        /// The length's bytes so far.
        bytes: [u8; 8],
        /// How many of them have arrived.
        have: usize,
    },
    /// Reading a binary field's value.
    Value {
        /// The field's name.
        name: String,
        /// The bytes so far.
        value: Vec<u8>,
        /// How many bytes it declared.
        length: usize,
    },
    /// Expecting the newline after a binary field's value.
    Newline {
        /// The field's name.
        name: String,
        /// The whole value.
        value: Vec<u8>,
    },
}

/// An entry whose empty line has not arrived yet.
#[derive(Debug, Default)]
struct Partial {
    /// Fields that have arrived (dropped addresses included): an entry of
    /// none, nothing but empty lines, is no entry.
    fields: usize,
    /// `MESSAGE`, once seen.
    message: Option<String>,
    /// From `PRIORITY`, once seen and valid.
    level: Option<Level>,
    /// From `__REALTIME_TIMESTAMP`, in nanoseconds, once seen.
    timestamp: Option<i64>,
    /// Every other field, in the order they came.
    labels: Vec<(String, String)>,
}

/// Reads the export format from bytes as they arrive; see the module doc.
#[derive(Debug)]
pub struct Decoder {
    /// The most bytes one entry may take in the body, which bounds what
    /// the decoder holds.
    limit: usize,
    /// Where it is within the current entry.
    state: State,
    /// The start of a line whose newline has not arrived.
    line: Vec<u8>,
    /// The fields of the current entry so far.
    entry: Partial,
    /// Bytes of the body the current entry has taken so far.
    size: usize,
    /// Entries completed: the number of the current one.
    done: u64,
}

impl Decoder {
    /// A decoder at the start of a body, refusing an entry over `limit`
    /// bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            limit,
            state: State::Line,
            line: Vec::new(),
            entry: Partial::default(),
            size: 0,
            done: 0,
        }
    }

    /// Entries completed so far; also the number (from 0) of the entry
    /// being read.
    pub fn entries(&self) -> u64 {
        self.done
    }

    /// Bytes of an unfinished entry held: what is lost if the body ends
    /// here.
    pub fn unfinished_bytes(&self) -> usize {
        self.size
    }

    /// Reads from the front of `input` until an entry is complete, and
    /// returns it with `input` advanced past its bytes; or, once `input`
    /// is used up, `None` (an unfinished entry is kept for the next
    /// bytes). `received_ns` is the time of an entry without
    /// `__REALTIME_TIMESTAMP`. After an error the body cannot be read on.
    pub fn next_entry(
        &mut self,
        input: &mut &[u8],
        received_ns: i64,
    ) -> Result<Option<NewEntry>, JournaldError> {
        while !input.is_empty() {
            match std::mem::take(&mut self.state) {
                State::Line => {
                    let Some(end) = input.iter().position(|&byte| byte == b'\n') else {
                        self.grow(input.len())?;
                        self.line.extend_from_slice(input);
                        *input = &[];
                        return Ok(None);
                    };
                    self.grow(end + 1)?;
                    let piece = &input[..end];
                    *input = &input[end + 1..];
                    if self.line.is_empty() {
                        if piece.is_empty() {
                            if let Some(entry) = self.end_entry(received_ns) {
                                return Ok(Some(entry));
                            }
                        } else {
                            self.field_line(piece)?;
                        }
                    } else {
                        let mut line = std::mem::take(&mut self.line);
                        line.extend_from_slice(piece);
                        self.field_line(&line)?;
                    }
                }
                State::Length {
                    name,
                    mut bytes,
                    have,
                } => {
                    let count = input.len().min(8 - have);
                    self.grow(count)?;
                    bytes[have..have + count].copy_from_slice(&input[..count]);
                    *input = &input[count..];
                    let have = have + count;
                    self.state = if have < 8 {
                        State::Length { name, bytes, have }
                    } else {
                        let declared = u64::from_le_bytes(bytes);
                        let room = self.limit.saturating_sub(self.size) as u64;
                        if declared > room {
                            return Err(self.too_large());
                        }
                        // Within the limit, so it fits in usize.
                        let length = declared as usize;
                        State::Value {
                            name,
                            value: Vec::new(),
                            length,
                        }
                    };
                }
                State::Value {
                    name,
                    mut value,
                    length,
                } => {
                    let count = input.len().min(length - value.len());
                    // Counted when the length was read.
                    value.extend_from_slice(&input[..count]);
                    *input = &input[count..];
                    self.state = if value.len() < length {
                        State::Value {
                            name,
                            value,
                            length,
                        }
                    } else {
                        State::Newline { name, value }
                    };
                }
                State::Newline { name, value } => {
                    if input[0] != b'\n' {
                        return Err(JournaldError::MissingNewline {
                            entry: self.done,
                            length: value.len() as u64,
                            name,
                        });
                    }
                    *input = &input[1..];
                    self.grow(1)?;
                    self.entry.field(&name, &value, self.done)?;
                }
            }
            // A zero-length binary value is complete with its length.
            if let State::Value { length: 0, .. } = self.state {
                if let State::Value { name, value, .. } = std::mem::take(&mut self.state) {
                    self.state = State::Newline { name, value };
                }
            }
        }
        Ok(None)
    }

    /// At the end of the body: the last entry if it lacks its empty line
    /// (and its last line its newline), or an error if the body ends
    /// inside a binary field. The decoder is then at the start of a body
    /// again.
    pub fn finish(&mut self, received_ns: i64) -> Result<Option<NewEntry>, JournaldError> {
        let entry = self.done;
        match std::mem::take(&mut self.state) {
            State::Line => {
                if !self.line.is_empty() {
                    let line = std::mem::take(&mut self.line);
                    self.field_line(&line)?;
                    if let State::Length { name, .. } = std::mem::take(&mut self.state) {
                        return Err(JournaldError::Truncated {
                            entry,
                            part: format!("the length of the binary field {name}"),
                        });
                    }
                }
                Ok(self.end_entry(received_ns))
            }
            State::Length { name, .. } => Err(JournaldError::Truncated {
                entry,
                part: format!("the length of the binary field {name}"),
            }),
            State::Value { name, .. } | State::Newline { name, .. } => {
                Err(JournaldError::Truncated {
                    entry,
                    part: format!("the value of the binary field {name}"),
                })
            }
        }
    }

    /// Counts `bytes` more of the current entry against the limit.
    fn grow(&mut self, bytes: usize) -> Result<(), JournaldError> {
        self.size = self.size.saturating_add(bytes);
        if self.size > self.limit {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The error for the current entry over the limit.
    fn too_large(&self) -> JournaldError {
        JournaldError::TooLarge {
            entry: self.done,
            limit: self.limit,
        }
    }

    /// One whole line, without its newline, that is not empty: a
    /// `NAME=value` field, or the name of a binary field that follows.
    fn field_line(&mut self, line: &[u8]) -> Result<(), JournaldError> {
        match line.iter().position(|&byte| byte == b'=') {
            Some(equals) => {
                let (name, value) = (&line[..equals], &line[equals + 1..]);
                if let Some(name) = field_name(name) {
                    self.entry.field(name, value, self.done)?;
                }
                Ok(())
            }
            None => {
                let Some(name) = field_name(line) else {
                    return Err(JournaldError::NotAField {
                        entry: self.done,
                        line: clip(line),
                    });
                };
                self.state = State::Length {
                    name: name.to_string(),
                    bytes: [0; 8],
                    have: 0,
                };
                Ok(())
            }
        }
    }

    /// Ends the current entry at its empty line: the entry, unless it held
    /// no field at all.
    fn end_entry(&mut self, received_ns: i64) -> Option<NewEntry> {
        let partial = std::mem::take(&mut self.entry);
        self.size = 0;
        if partial.fields == 0 {
            return None;
        }
        self.done += 1;
        Some(NewEntry {
            timestamp: partial.timestamp.unwrap_or(received_ns),
            level: partial.level.unwrap_or(Level::Info),
            message: partial.message.unwrap_or_default(),
            labels: partial.labels,
        })
    }
}

impl Partial {
    /// Takes one field of entry number `entry` as the module doc maps it.
    fn field(&mut self, name: &str, value: &[u8], entry: u64) -> Result<(), JournaldError> {
        self.fields += 1;
        if self.fields > MAX_FIELDS {
            return Err(JournaldError::TooManyFields {
                entry,
                limit: MAX_FIELDS,
            });
        }
        match name {
            "MESSAGE" => self.message = Some(String::from_utf8_lossy(value).into_owned()),
            "PRIORITY" => match priority(value) {
                Some(level) => self.level = Some(level),
                None => self.labels.push((
                    name.to_string(),
                    String::from_utf8_lossy(value).into_owned(),
                )),
            },
            REALTIME => {
                let nanos = realtime_nanos(value).ok_or_else(|| JournaldError::BadTime {
                    entry,
                    value: clip(value),
                })?;
                self.timestamp = Some(nanos);
            }
            // The export's addresses: where the entry sat in the sender's
            // journal.
            name if name.starts_with("__") => {}
            name => self.labels.push((
                name.to_string(),
                String::from_utf8_lossy(value).into_owned(),
            )),
        }
        Ok(())
    }
}

/// Appends one field in the binary-safe form, as `systemd-journal-upload`
/// writes a value that is not printable text: `NAME\n`, the value's length
/// as a 64-bit little-endian number, the value, `\n`. For tests and
/// benchmarks that make uploads.
pub fn write_binary_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// `bytes` as a field name, if journald would take it as one: A–Z, 0–9
/// and `_`, not starting with a digit, 1 to 64 bytes.
fn field_name(bytes: &[u8]) -> Option<&str> {
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|&byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_');
    // Only ASCII passed, so this cannot fail.
    valid.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

/// The level of a `PRIORITY` value, if it is a syslog severity (0–7).
fn priority(value: &[u8]) -> Option<Level> {
    match value.trim_ascii() {
        [digit @ b'0'..=b'7'] => Some(level_of_severity(digit - b'0')),
        _ => None,
    }
}

/// A `__REALTIME_TIMESTAMP` (decimal microseconds since 1970) in
/// nanoseconds, if it is one and fits.
fn realtime_nanos(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = text.parse().ok()?;
    micros.checked_mul(1_000)
}

/// A client's bytes quoted in an error: the first [`QUOTED_BYTES`] of them,
/// lossily.
fn clip(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED_BYTES)]).into_owned();
    if bytes.len() > QUOTED_BYTES {
        format!("{shown}...")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 42;

    /// A binary field in the export's binary-safe form.
    fn binary(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_binary_field(&mut out, name, value);
        out
    }

    /// Every entry of `body` fed in `pieces`, then finished.
    fn decode_in(
        body: &[u8],
        pieces: &[usize],
        limit: usize,
    ) -> Result<Vec<NewEntry>, JournaldError> {
        let mut decoder = Decoder::new(limit);
        let mut entries = Vec::new();
        let mut start = 0;
        for &end in pieces.iter().chain(std::iter::once(&body.len())) {
            let mut input = &body[start..end];
            while let Some(entry) = decoder.next_entry(&mut input, NOW)? {
                entries.push(entry);
            }
            assert!(input.is_empty());
            start = end;
        }
        entries.extend(decoder.finish(NOW)?);
        Ok(entries)
    }

    fn decode(body: &[u8]) -> Result<Vec<NewEntry>, JournaldError> {
        decode_in(body, &[], 1 << 20)
    }

    /// Two entries, one with binary fields, as `systemd-journal-upload`
    /// writes them.
    fn sample() -> Vec<u8> {
        let mut body = b"__CURSOR=s=abc;i=1\n__REALTIME_TIMESTAMP=1700000000123456\n\
__MONOTONIC_TIMESTAMP=12345\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
PRIORITY=3\n_HOSTNAME=web-1\n_SYSTEMD_UNIT=nginx.service\nSYSLOG_IDENTIFIER=nginx\n\
_PID=812\nMESSAGE=upstream timed out\n\n"
            .to_vec();
        body.extend_from_slice(b"__CURSOR=s=abc;i=2\n__SEQNUM=2\n__SEQNUM_ID=x\nPRIORITY=4\n");
        body.extend(binary("MESSAGE", b"line one\nline two \xff"));
        body.extend(binary("BLOB", &[0, 1, 2, b'\n', 255]));
        body.extend(binary("EMPTY", b""));
        body.extend_from_slice(b"\n");
        body
    }

    #[test]
    fn fields_map_to_message_level_time_and_labels() {
        let entries = decode(&sample()).unwrap();
        assert_eq!(entries.len(), 2);
        let first = &entries[0];
        assert_eq!(first.message, "upstream timed out");
        assert_eq!(first.level, Level::Error);
        assert_eq!(first.timestamp, 1_700_000_000_123_456_000);
        let names: Vec<&str> = first.labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "_BOOT_ID",
                "_HOSTNAME",
                "_SYSTEMD_UNIT",
                "SYSLOG_IDENTIFIER",
                "_PID"
            ]
        );
        let second = &entries[1];
        assert_eq!(second.message, "line one\nline two \u{fffd}");
        assert_eq!(second.level, Level::Warn);
        assert_eq!(second.timestamp, NOW, "no time: the receive time");
        assert_eq!(
            second.labels,
            [
                ("BLOB".to_string(), "\0\u{1}\u{2}\n\u{fffd}".to_string()),
                ("EMPTY".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn every_split_gives_the_same_entries() {
        let body = sample();
        let whole = decode(&body).unwrap();
        for cut in 0..=body.len() {
            assert_eq!(
                decode_in(&body, &[cut], 1 << 20).unwrap(),
                whole,
                "cut {cut}"
            );
        }
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(decode_in(&body, &bytes, 1 << 20).unwrap(), whole);
    }

    #[test]
    fn priorities_map_to_levels() {
        let expected = [
            ("0", Level::Fatal),
            ("1", Level::Fatal),
            ("2", Level::Fatal),
            ("3", Level::Error),
            ("4", Level::Warn),
            ("5", Level::Info),
            ("6", Level::Info),
            ("7", Level::Debug),
        ];
        for (priority, level) in expected {
            let body = format!("PRIORITY={priority}\nMESSAGE=m\n\n");
            let entry = &decode(body.as_bytes()).unwrap()[0];
            assert_eq!(entry.level, level, "{priority}");
            assert!(entry.labels.is_empty());
        }
        let entry = &decode(b"MESSAGE=m\n\n").unwrap()[0];
        assert_eq!(entry.level, Level::Info);
        let entry = &decode(b"PRIORITY=9\nMESSAGE=m\n\n").unwrap()[0];
        assert_eq!(entry.level, Level::Info);
        assert_eq!(entry.labels, [("PRIORITY".to_string(), "9".to_string())]);
    }

    #[test]
    fn the_last_entry_needs_no_empty_line_and_blank_runs_are_no_entries() {
        let entries = decode(b"\n\nMESSAGE=a\n\n\n\nMESSAGE=b").unwrap();
        let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["a", "b"]);
        assert!(decode(b"").unwrap().is_empty());
        // An entry of only addresses is an entry, with an empty message.
        let entries = decode(b"__CURSOR=x\n\n").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].message, "");
    }

    #[test]
    fn names_journald_would_refuse_are_skipped_in_name_value_lines() {
        let entries = decode(b"MESSAGE=m\nlower=x\n=empty\n9LIVES=x\nOK_2=y\n\n").unwrap();
        assert_eq!(entries[0].labels, [("OK_2".to_string(), "y".to_string())]);
    }

    #[test]
    fn bad_input_is_refused_with_the_entry_it_is_in() {
        let error = decode(b"MESSAGE=a\n\nthis is a log line\n\n").unwrap_err();
        assert!(
            matches!(&error, JournaldError::NotAField { entry: 1, line } if line == "this is a log line"),
            "{error:?}"
        );
        // A binary length cut short by the end of the body.
        let error = decode(b"MESSAGE\n\x05\x00\x00").unwrap_err();
        assert!(
            matches!(&error, JournaldError::Truncated { entry: 0, part } if part.contains("length of the binary field MESSAGE")),
            "{error:?}"
        );
        let mut value_cut = binary("MESSAGE", b"hello");
        value_cut.truncate(value_cut.len() - 3);
        let error = decode(&value_cut).unwrap_err();
        assert!(
            error.to_string().contains("value of the binary field"),
            "{error}"
        );
        // A binary name as the last line of the body, with nothing after.
        let error = decode(b"MESSAGE=a\nDATA").unwrap_err();
        assert!(
            matches!(error, JournaldError::Truncated { .. }),
            "{error:?}"
        );
        // A length that lies: the byte after the value is not a newline.
        let mut lying = b"MESSAGE\n".to_vec();
        lying.extend_from_slice(&2u64.to_le_bytes());
        lying.extend_from_slice(b"abc\n\n");
        let error = decode(&lying).unwrap_err();
        assert!(
            matches!(error, JournaldError::MissingNewline { length: 2, .. }),
            "{error:?}"
        );
        for bad in ["x", "", "-1", "1.5", "99999999999999999999"] {
            let body = format!("MESSAGE=a\n__REALTIME_TIMESTAMP={bad}\n\n");
            let error = decode(body.as_bytes()).unwrap_err();
            assert!(
                matches!(error, JournaldError::BadTime { .. }),
                "{bad}: {error:?}"
            );
        }
        // Past 2262 in nanoseconds.
        let error = decode(b"__REALTIME_TIMESTAMP=9300000000000000\n\n").unwrap_err();
        assert!(matches!(error, JournaldError::BadTime { .. }), "{error:?}");
    }

    #[test]
    fn an_entry_over_the_limit_is_refused_however_it_arrives() {
        let long = format!("MESSAGE={}\n\n", "x".repeat(200));
        for pieces in [vec![], vec![10, 20, 150]] {
            let error = decode_in(long.as_bytes(), &pieces, 100).unwrap_err();
            assert_eq!(
                error,
                JournaldError::TooLarge {
                    entry: 0,
                    limit: 100
                }
            );
        }
        // A binary length over the limit is refused before its bytes come.
        let mut declared = b"MESSAGE=ok\n\nDATA\n".to_vec();
        declared.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut decoder = Decoder::new(100);
        let mut input = &declared[..];
        assert!(decoder.next_entry(&mut input, NOW).unwrap().is_some());
        assert_eq!(
            decoder.next_entry(&mut input, NOW).unwrap_err(),
            JournaldError::TooLarge {
                entry: 1,
                limit: 100
            }
        );
        // More fields than journald allows, each tiny.
        let many = "A=\n".repeat(MAX_FIELDS + 1) + "\n";
        let error = decode(many.as_bytes()).unwrap_err();
        assert_eq!(
            error,
            JournaldError::TooManyFields {
                entry: 0,
                limit: MAX_FIELDS
            }
        );
        assert_eq!(
            decode("A=\n".repeat(MAX_FIELDS).as_bytes()).unwrap().len(),
            1
        );
        // Many small entries are each within the limit.
        let body = "MESSAGE=0123456789\n\n".repeat(100);
        assert_eq!(decode_in(body.as_bytes(), &[], 30).unwrap().len(), 100);
    }
}

//! Loki push bodies (`POST /loki/api/v1/push`): the JSON form and the
//! protobuf form (`logproto.PushRequest`, block snappy), into entries.
//!
//! The mapping, the same for both forms:
//!
//! - each value (JSON) or entry (protobuf) is one entry; its line is the
//!   message, kept as sent (an empty line too: Loki keeps it);
//! - its time is Loki's, Unix epoch nanoseconds (a decimal string in JSON, a
//!   `google.protobuf.Timestamp` in protobuf); a time before 1970 or after
//!   2262 (outside `i64` nanoseconds) refuses the whole push, since storing
//!   it elsewhere in time would hide it;
//! - the stream's labels, then the entry's structured metadata, become the
//!   entry's labels (a name in both keeps the metadata's value, as the
//!   server's batcher keeps the last value of a name given twice);
//! - the level comes from the first of the labels `level`, `detected_level`,
//!   `severity`, `lvl` whose value [`Level::parse`] knows (`warning`,
//!   `critical`, `err`, ...); without one, from the line as `logtap push`
//!   recognises plain text ([`crate::plain::detect_level`]); else info.
//!
//! Decoding is all or nothing: any malformed part (bad JSON, bad protobuf,
//! invalid UTF-8 in a string, a bad label selector, a time out of range)
//! refuses the whole body with a [`LokiError`] that says where, so a client
//! never has half a push stored. Decompression ([`decompress`],
//! [`decode_protobuf`]) is bounded by a caller's limit checked before and
//! while bytes are produced, so a small body cannot become a large one.

use logtap_core::{Level, NewEntry};
use serde::Deserialize;
use std::io::Read;

/// The label names the level is read from, in the order tried.
pub const LEVEL_LABELS: [&str; 4] = ["level", "detected_level", "severity", "lvl"];

/// Why a Loki push body cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LokiError {
    /// The body is not the JSON form.
    #[error("the body is not a Loki JSON push ({{\"streams\":[{{\"stream\":{{...}},\"values\":[[\"<ns>\",\"line\"]]}}]}}): {0}")]
    Json(String),
    /// The body is not snappy-compressed protobuf.
    #[error("the body is not block-snappy-compressed data: {0}")]
    Snappy(String),
    /// The decompressed body is not a `logproto.PushRequest`.
    #[error("the body is not a Loki protobuf PushRequest: {0}")]
    Protobuf(String),
    /// A gzip or deflate body that does not decompress.
    #[error("the body is not valid {encoding} data: {reason}")]
    Compression {
        /// The content coding.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The body decompresses to more than the caller allows.
    #[error("the body decompresses to more than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A stream's label selector (`{a="b"}`) does not parse.
    #[error("stream {stream}: labels {selector:?} are not a selector like {{app=\"web\", env=\"prod\"}}: {reason}")]
    Selector {
        /// The stream's position in the push, from 0.
        stream: usize,
        /// The selector, clipped to 100 bytes.
        selector: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value's time is not a time this store can hold.
    #[error("stream {stream}, entry {entry}: timestamp {timestamp:?} is out of range; send Unix epoch nanoseconds from 1970 to 2262")]
    Timestamp {
        /// The stream's position in the push, from 0.
        stream: usize,
        /// The entry's position in its stream, from 0.
        entry: usize,
        /// The time as sent, clipped to 100 bytes.
        timestamp: String,
    },
    /// A JSON value that is not `["<ns>", "line"]` or
    /// `["<ns>", "line", {metadata}]`.
    #[error("stream {stream}, value {entry}: {reason}")]
    Value {
        /// The stream's position in the push, from 0.
        stream: usize,
        /// The value's position in its stream, from 0.
        entry: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A content coding of a push body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No coding.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// deflate, which HTTP defines as zlib (RFC 1950); raw deflate is
    /// accepted too, since some clients send it.
    Deflate,
}

/// Undoes a content coding, refusing to produce more than `limit` bytes:
/// the output is read in steps and checked as it grows, so a
/// decompression bomb costs at most `limit` bytes of memory.
pub fn decompress(encoding: Encoding, body: &[u8], limit: u64) -> Result<Vec<u8>, LokiError> {
    let name = match encoding {
        Encoding::Identity => {
            if body.len() as u64 > limit {
                return Err(LokiError::TooLarge { limit });
            }
            return Ok(body.to_vec());
        }
        Encoding::Gzip => "gzip",
        Encoding::Deflate => "deflate",
    };
    let read = |reader: &mut dyn Read| -> Result<Vec<u8>, LokiError> {
        let mut out = Vec::new();
        // One byte past the limit tells "at the limit" from "over it".
        let mut limited = reader.take(limit.saturating_add(1));
        limited
            .read_to_end(&mut out)
            .map_err(|error| LokiError::Compression {
                encoding: name,
                reason: error.to_string(),
            })?;
        if out.len() as u64 > limit {
            return Err(LokiError::TooLarge { limit });
        }
        Ok(out)
    };
    match encoding {
        Encoding::Gzip => read(&mut flate2::read::MultiGzDecoder::new(body)),
        // zlib's header says which it is: its first two bytes, read
        // big-endian, are a multiple of 31 with method 8.
        Encoding::Deflate
            if body.len() >= 2
                && body[0] & 0x0f == 8
                && u16::from_be_bytes([body[0], body[1]]).is_multiple_of(31) =>
        {
            read(&mut flate2::read::ZlibDecoder::new(body))
        }
        _ => read(&mut flate2::read::DeflateDecoder::new(body)),
    }
}

/// The JSON form's top level.
#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

/// One JSON stream.
#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

/// Decodes the JSON form: `{"streams":[{"stream":{labels},"values":
/// [["<ns>","line"], ["<ns>","line",{metadata}]]}]}`. Times may also be
/// JSON integers, which some clients send.
pub fn decode_json(body: &[u8]) -> Result<Vec<NewEntry>, LokiError> {
    let push: JsonPush =
        serde_json::from_slice(body).map_err(|error| LokiError::Json(error.to_string()))?;
    let mut entries = Vec::new();
    for (stream_index, stream) in push.streams.into_iter().enumerate() {
        let labels: Vec<(String, String)> = stream.stream.into_iter().collect();
        for (entry_index, value) in stream.values.into_iter().enumerate() {
            let bad = |reason| LokiError::Value {
                stream: stream_index,
                entry: entry_index,
                reason,
            };
            let mut value = value.into_iter();
            let (Some(time), Some(line)) = (value.next(), value.next()) else {
                return Err(bad(
                    "a value is [\"<ns timestamp>\", \"line\"] with an optional {metadata} third",
                ));
            };
            let timestamp = match &time {
                serde_json::Value::String(text) => parse_nanos(text),
                serde_json::Value::Number(number) => number.as_i64().filter(|ns| *ns >= 0),
                _ => return Err(bad("the timestamp is a string of Unix epoch nanoseconds")),
            }
            .ok_or_else(|| LokiError::Timestamp {
                stream: stream_index,
                entry: entry_index,
                timestamp: clip(&match &time {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                }),
            })?;
            let serde_json::Value::String(line) = line else {
                return Err(bad("the line is a string"));
            };
            let mut entry_labels = labels.clone();
            match value.next() {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Object(metadata)) => {
                    for (name, value) in metadata {
                        let serde_json::Value::String(value) = value else {
                            return Err(bad("structured metadata values are strings"));
                        };
                        entry_labels.push((name, value));
                    }
                }
                Some(_) => {
                    return Err(bad("the third element is an object of structured metadata"))
                }
            }
            if value.next().is_some() {
                return Err(bad("a value has at most three elements"));
            }
            entries.push(entry(timestamp, line, entry_labels));
        }
    }
    Ok(entries)
}

/// Decodes the protobuf form: a block-snappy-compressed
/// `logproto.PushRequest` ([`PushRequest`]) that decompresses to at most
/// `limit` bytes (the length snappy declares is checked before anything is
/// allocated).
pub fn decode_protobuf(body: &[u8], limit: u64) -> Result<Vec<NewEntry>, LokiError> {
    let length =
        snap::raw::decompress_len(body).map_err(|error| LokiError::Snappy(error.to_string()))?;
    if length as u64 > limit {
        return Err(LokiError::TooLarge { limit });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|error| LokiError::Snappy(error.to_string()))?;
    decode_push_request(&raw)
}

/// Decodes an uncompressed `logproto.PushRequest`.
pub fn decode_push_request(raw: &[u8]) -> Result<Vec<NewEntry>, LokiError> {
    let request = <PushRequest as prost::Message>::decode(raw)
        .map_err(|error| LokiError::Protobuf(error.to_string()))?;
    let mut entries = Vec::new();
    for (stream_index, stream) in request.streams.into_iter().enumerate() {
        let labels = parse_selector(&stream.labels).map_err(|reason| LokiError::Selector {
            stream: stream_index,
            selector: clip(&stream.labels),
            reason,
        })?;
        for (entry_index, adapter) in stream.entries.into_iter().enumerate() {
            let time = adapter.timestamp.unwrap_or_default();
            let timestamp = timestamp_nanos(&time).ok_or_else(|| LokiError::Timestamp {
                stream: stream_index,
                entry: entry_index,
                timestamp: format!("{}s {}ns", time.seconds, time.nanos),
            })?;
            let mut entry_labels = labels.clone();
            entry_labels.extend(
                adapter
                    .structured_metadata
                    .into_iter()
                    .map(|pair| (pair.name, pair.value)),
            );
            entries.push(entry(timestamp, adapter.line, entry_labels));
        }
    }
    Ok(entries)
}

/// The entry for one Loki line: the level from its labels, else its text.
fn entry(timestamp: i64, message: String, labels: Vec<(String, String)>) -> NewEntry {
    let level = level_of(&labels)
        .or_else(|| crate::plain::detect_level(&message))
        .unwrap_or(Level::Info);
    NewEntry {
        timestamp,
        level,
        message,
        labels,
    }
}

/// The level the labels state: the first of [`LEVEL_LABELS`] (the last
/// value of a name given twice, as it is stored) that is a level.
pub fn level_of(labels: &[(String, String)]) -> Option<Level> {
    LEVEL_LABELS.iter().find_map(|wanted| {
        labels
            .iter()
            .rev()
            .find(|(name, _)| name == wanted)
            .and_then(|(_, value)| Level::parse(value).ok())
    })
}

/// Nanoseconds from a decimal string, if they fit from 1970 on.
fn parse_nanos(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// A protobuf time as nanoseconds, if it is a valid time from 1970 on that
/// fits.
fn timestamp_nanos(time: &Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&time.nanos) || time.seconds < 0 {
        return None;
    }
    time.seconds
        .checked_mul(1_000_000_000)?
        .checked_add(i64::from(time.nanos))
}

/// `text` cut to about 100 bytes for an error message, which a client's
/// megabyte of input must not become (the Elasticsearch decoder's too).
pub(crate) fn clip(text: &str) -> String {
    if text.len() <= 100 {
        return text.to_string();
    }
    let mut cut = 100;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

/// Parses a Prometheus-style label selector as Loki's protobuf form carries
/// a stream's labels: `{app="web", env="prod"}`. Values are double-quoted
/// with Go escapes (`\"`, `\\`, `\n`, `\t`, `\r`, `\xNN`, `\uNNNN`, ...);
/// names are `[A-Za-z_][A-Za-z0-9_.]*` (dots too, as OTLP attributes reach
/// Loki with them); commas between pairs, an optional trailing one, and
/// white space anywhere between tokens. `{}` and an empty string are no
/// labels.
pub fn parse_selector(text: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut labels = Vec::new();
    let text = text.trim();
    if text.is_empty() {
        return Ok(labels);
    }
    let inner = text
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or("it is not enclosed in { }")?;
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
            name.push(c);
        }
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("a label name is missing or does not start with a letter or _");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err("a label name is not followed by =");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err("a label value is not double-quoted");
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or("a label value is not closed")? {
                '"' => break,
                '\\' => value.push(unescape(&mut chars)?),
                c => value.push(c),
            }
        }
        labels.push((name, value));
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Ok(labels),
            Some(',') => {}
            Some(_) => return Err("label pairs are separated by commas"),
        }
    }
}

/// The character an escape after `\` stands for.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, &'static str> {
    Ok(match chars.next().ok_or("a label value ends in \\")? {
        '"' => '"',
        '\\' => '\\',
        '\'' => '\'',
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        'x' => hex(chars, 2)?,
        'u' => hex(chars, 4)?,
        'U' => hex(chars, 8)?,
        _ => return Err("a label value has an unknown escape"),
    })
}

/// The character `digits` hex digits stand for.
fn hex(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    digits: usize,
) -> Result<char, &'static str> {
    let mut code = 0u32;
    for _ in 0..digits {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or("an escape has too few hex digits")?;
        code = code * 16 + digit;
    }
    char::from_u32(code).ok_or("an escape is not a character")
}

/// Writes `labels` as a selector [`parse_selector`] reads back: what a
/// Loki client puts in `StreamAdapter.labels`.
pub fn format_selector(labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let mut quoted = String::with_capacity(value.len() + 2);
            for c in value.chars() {
                match c {
                    '"' => quoted.push_str("\\\""),
                    '\\' => quoted.push_str("\\\\"),
                    '\n' => quoted.push_str("\\n"),
                    c => quoted.push(c),
                }
            }
            format!("{name}=\"{quoted}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// `logproto.PushRequest` (Grafana Loki's `pkg/push/push.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams, each with its labels and entries.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The stream's labels as a selector: `{app="web", env="prod"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The stream's entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

/// `logproto.EntryAdapter`: one line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When it happened.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Labels of this entry alone.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`: one label of structured metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// The label's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The label's value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0 to 999,999,999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Encodes `request` as a Loki client sends it: protobuf, then block
/// snappy. For tests and benchmarks.
pub fn encode_protobuf(request: &PushRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(request);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input under 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn json_values_become_entries_with_labels_and_levels() {
        let body = br#"{"streams":[{"stream":{"app":"web","level":"warning"},"values":[
            ["1700000000000000001","slow"],
            ["1700000000000000002","ERROR ignored",{"trace_id":"abc","level":"err"}]]},
            {"stream":{"app":"db"},"values":[["3","disk is full ERROR"],["4","fine"],["5","x",{"severity":"nonsense"}]]}]}"#;
        let entries = decode_json(body).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].timestamp, 1_700_000_000_000_000_001);
        assert_eq!(entries[0].level, Level::Warn);
        assert_eq!(
            entries[0].labels,
            pairs(&[("app", "web"), ("level", "warning")])
        );
        // Metadata comes after the stream's labels, so its `level` wins.
        assert_eq!(entries[1].level, Level::Error);
        assert_eq!(
            entries[1].labels.last().unwrap(),
            &("trace_id".into(), "abc".into())
        );
        assert_eq!(entries[2].level, Level::Error);
        assert_eq!(entries[3].level, Level::Info);
        assert_eq!(entries[4].level, Level::Info);
    }

    #[test]
    fn bad_json_and_times_are_refused() {
        for (body, wanted) in [
            (&b"{"[..], "not a Loki JSON push"),
            (br#"{"streams":[{"values":[["-1","x"]]}]}"#, "out of range"),
            (
                br#"{"streams":[{"values":[["99999999999999999999","x"]]}]}"#,
                "out of range",
            ),
            (br#"{"streams":[{"values":[["1"]]}]}"#, "value 0"),
            (
                br#"{"streams":[{"values":[["1","x",{"a":1}]]}]}"#,
                "strings",
            ),
            (
                b"{\"streams\":[{\"values\":[[\"1\",\"\xff\"]]}]}",
                "not a Loki JSON push",
            ),
        ] {
            let error = decode_json(body).unwrap_err().to_string();
            assert!(error.contains(wanted), "{error}");
        }
    }

    #[test]
    fn selectors_parse_with_escapes() {
        assert_eq!(
            parse_selector(r#"{app="web", msg="a \"q\" \\ \n", service.name="x",}"#).unwrap(),
            pairs(&[
                ("app", "web"),
                ("msg", "a \"q\" \\ \n"),
                ("service.name", "x")
            ])
        );
        assert_eq!(parse_selector("{}").unwrap(), vec![]);
        assert_eq!(parse_selector("").unwrap(), vec![]);
        for bad in [
            "app=\"x\"",
            "{app=x}",
            "{app=\"x}",
            "{=\"x\"}",
            "{a=\"x\" b=\"y\"}",
            "{a=\"\\q\"}",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
        let labels = pairs(&[("a", "q\"\\\n"), ("b", "")]);
        assert_eq!(parse_selector(&format_selector(&labels)).unwrap(), labels);
    }

    #[test]
    fn protobuf_round_trips_and_limits_hold() {
        let request = PushRequest {
            streams: vec![StreamAdapter {
                labels: "{app=\"web\", lvl=\"critical\"}".into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 2,
                        nanos: 5,
                    }),
                    line: "boom".into(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "user".into(),
                        value: "7".into(),
                    }],
                }],
            }],
        };
        let body = encode_protobuf(&request);
        let entries = decode_protobuf(&body, 1 << 20).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].timestamp, 2_000_000_005);
        assert_eq!(entries[0].level, Level::Fatal);
        assert_eq!(
            entries[0].labels,
            pairs(&[("app", "web"), ("lvl", "critical"), ("user", "7")])
        );
        assert_eq!(
            decode_protobuf(&body, 4),
            Err(LokiError::TooLarge { limit: 4 })
        );
        assert!(matches!(
            decode_protobuf(b"\xff\xff\xff", 1 << 20),
            Err(LokiError::Snappy(_))
        ));
    }

    #[test]
    fn decompression_is_bounded() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert_eq!(
            decompress(Encoding::Gzip, &bomb, 1 << 20).unwrap().len(),
            1 << 20
        );
        assert_eq!(
            decompress(Encoding::Gzip, &bomb, (1 << 20) - 1),
            Err(LokiError::TooLarge {
                limit: (1 << 20) - 1
            })
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(b"hello").unwrap();
        assert_eq!(
            decompress(Encoding::Deflate, &zlib.finish().unwrap(), 10).unwrap(),
            b"hello"
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"hello").unwrap();
        assert_eq!(
            decompress(Encoding::Deflate, &raw.finish().unwrap(), 10).unwrap(),
            b"hello"
        );
        assert!(matches!(
            decompress(Encoding::Gzip, b"nope", 10),
            Err(LokiError::Compression { .. })
        ));
    }
}

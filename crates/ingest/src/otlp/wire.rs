//! An `ExportLogsServiceRequest` decoded field by field straight from its
//! bytes, for the shape exporters send: bodies and attribute values that
//! are strings. prost would build every message of the request (a
//! `LogRecord` with its `AnyValue`s and `KeyValue`s, each string its own
//! allocation) only for [`super::map`] to take them apart again; here each
//! string is checked and copied once, into the label or message that keeps
//! it, and the severity text is only looked at.
//!
//! This reader reads what prost reads the same way: the fields the
//! messages in [`super`] declare, with the wire types they declare
//! (anything else there is prost's error), others skipped, repeated
//! fields in order, the last of a repeated scalar winning, a message given
//! twice merged (the resource's attributes add up). Whatever it does not
//! take (a value that is not a string, a body or value given twice, a
//! group, a malformed message) makes it give up with `None`, and the
//! caller decodes the request with prost instead, so that error messages
//! and rare shapes stay prost's. A property test holds the two to the same
//! entries (`tests/otlp_fuzz.rs`).

use super::{push_pair, push_record, Decoded, Record};

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// The entries of a protobuf request, or `None` to leave it to prost.
pub(super) fn decode(body: &[u8], received_ns: i64) -> Option<Decoded> {
    let mut decoded = Decoded::default();
    let mut buf = body;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LEN) => resource_logs(bytes(&mut buf)?, received_ns, &mut decoded)?,
            (1, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Some(decoded)
}

/// `ResourceLogs`: the resource's attributes first, wherever they are in
/// the message, then the records of each scope.
pub(super) fn resource_logs(mut buf: &[u8], received_ns: i64, decoded: &mut Decoded) -> Option<()> {
    let mut resource_labels = Vec::new();
    let mut scopes = Vec::new();
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LEN) => resource(bytes(&mut buf)?, &mut resource_labels)?,
            (2, LEN) => scopes.push(bytes(&mut buf)?),
            (3, LEN) => {
                text(bytes(&mut buf)?)?;
            }
            (1..=3, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    for scope in scopes {
        scope_logs(scope, &resource_labels, received_ns, decoded)?;
    }
    Some(())
}

/// `Resource`: its attributes, added to `labels`.
fn resource(mut buf: &[u8], labels: &mut Vec<(String, String)>) -> Option<()> {
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LEN) => key_value(bytes(&mut buf)?, labels)?,
            (1, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Some(())
}

/// `ScopeLogs`: the scope is checked and left; each record is an entry.
fn scope_logs(
    mut buf: &[u8],
    resource_labels: &[(String, String)],
    received_ns: i64,
    decoded: &mut Decoded,
) -> Option<()> {
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LEN) => scope(bytes(&mut buf)?)?,
            (2, LEN) => log_record(bytes(&mut buf)?, resource_labels, received_ns, decoded)?,
            (1 | 2, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Some(())
}

/// `InstrumentationScope`: read only to be checked as prost checks it.
fn scope(mut buf: &[u8]) -> Option<()> {
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1 | 2, LEN) => {
                text(bytes(&mut buf)?)?;
            }
            (1 | 2, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Some(())
}

/// `LogRecord`: one entry.
fn log_record(
    mut buf: &[u8],
    resource_labels: &[(String, String)],
    received_ns: i64,
    decoded: &mut Decoded,
) -> Option<()> {
    let mut time_unix_nano = 0;
    let mut observed_time_unix_nano = 0;
    let mut severity_number = 0;
    let mut severity_text = "";
    let mut body = None;
    let mut attributes = Vec::new();
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, FIXED64) => time_unix_nano = fixed64(&mut buf)?,
            // prost reads an int32 as the low 32 bits of the varint.
            (2, VARINT) => severity_number = varint(&mut buf)? as i32,
            (3, LEN) => severity_text = text(bytes(&mut buf)?)?,
            // A body given twice would be merged: prost's to do.
            (5, LEN) if body.is_none() => body = Some(string_value(bytes(&mut buf)?)?),
            (6, LEN) => key_value(bytes(&mut buf)?, &mut attributes)?,
            (8, FIXED32) => {
                take(&mut buf, 4)?;
            }
            (9, LEN) => trace_id = bytes(&mut buf)?,
            (10, LEN) => span_id = bytes(&mut buf)?,
            (11, FIXED64) => observed_time_unix_nano = fixed64(&mut buf)?,
            (1..=3 | 5 | 6 | 8..=11, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    push_record(
        decoded,
        resource_labels,
        Record {
            time_unix_nano,
            observed_time_unix_nano,
            severity_number,
            severity_text,
            attributes,
            trace_id,
            span_id,
            message: body.unwrap_or_default().to_string(),
        },
        received_ns,
    );
    Some(())
}

/// `KeyValue` with a string value (or none), added as a label.
fn key_value(mut buf: &[u8], labels: &mut Vec<(String, String)>) -> Option<()> {
    let mut name = "";
    let mut value = None;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LEN) => name = text(bytes(&mut buf)?)?,
            (2, LEN) if value.is_none() => value = Some(string_value(bytes(&mut buf)?)?),
            (1 | 2, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    push_pair(
        labels,
        name.to_string(),
        value.unwrap_or_default().to_string(),
    );
    Some(())
}

/// An `AnyValue` that is a string, or empty (the empty string); `None` for
/// any other value.
fn string_value(mut buf: &[u8]) -> Option<&str> {
    let mut value = "";
    let mut seen = false;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LEN) if !seen => {
                value = text(bytes(&mut buf)?)?;
                seen = true;
            }
            (1..=7, _) => return None,
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Some(value)
}

/// A field's key: its number and wire type, as prost reads it.
fn key(buf: &mut &[u8]) -> Option<(u32, u8)> {
    let key = varint(buf)?;
    let key = u32::try_from(key).ok()?;
    let field = key >> 3;
    (field != 0).then_some((field, (key & 7) as u8))
}

/// A base-128 varint, at most 10 bytes, the tenth at most 1.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, &byte) in buf.iter().enumerate().take(10) {
        if index == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            *buf = &buf[index + 1..];
            return Some(value);
        }
    }
    None
}

/// The next `n` bytes.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Some(head)
}

/// A length-delimited field's bytes.
fn bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(buf)?).ok()?;
    take(buf, len)
}

/// A little-endian fixed64.
fn fixed64(buf: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(buf, 8)?.try_into().ok()?))
}

/// A string field's text: prost refuses one that is not UTF-8.
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Skips a field this reader does not read; a group (wire types 3 and 4)
/// or an unknown wire type gives up.
fn skip(buf: &mut &[u8], wire: u8) -> Option<()> {
    match wire {
        VARINT => varint(buf).map(|_| ()),
        FIXED64 => take(buf, 8).map(|_| ()),
        LEN => bytes(buf).map(|_| ()),
        FIXED32 => take(buf, 4).map(|_| ()),
        _ => None,
    }
}

//! The JSON form of an entry, shared by every HTTP fallback and by
//! `logtap logs --output json`:
//!
//! ```json
//! {"cursor":7,"timestamp":1714564800123000000,"level":"error","message":"disk full","labels":{"app":"db"}}
//! ```
//!
//! `cursor` and `timestamp` are JSON integers (clients that read numbers as
//! doubles must take care above 2^53), `labels` an object whose members are
//! sorted by name. A name stored more than once (a JSON line may repeat a
//! field) keeps its last value, as the gRPC API's map does, so both APIs
//! show the same entry.
//!
//! Written by hand rather than through serde: it runs once per entry sent,
//! it cannot fail, and it borrows straight from the reader's buffer. The
//! escaping is serde_json's byte for byte (tested), so the output is what
//! the CLI prints.

use bytes::Bytes;
use logtap_core::EntryRef;

/// The entry's JSON text.
pub fn entry(entry: &EntryRef<'_>) -> String {
    let mut out = String::with_capacity(96 + entry.message.len());
    write_entry(&mut out, entry);
    out
}

/// The entry's JSON text and a newline: one NDJSON line.
pub fn line(entry: &EntryRef<'_>) -> Bytes {
    let mut out = String::with_capacity(96 + entry.message.len());
    write_entry(&mut out, entry);
    out.push('\n');
    Bytes::from(out)
}

/// Appends the entry's JSON text to `out`.
pub fn write_entry(out: &mut String, entry: &EntryRef<'_>) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{{\"cursor\":{},\"timestamp\":{},\"level\":\"{}\",\"message\":",
        entry.cursor,
        entry.timestamp,
        entry.level.as_str()
    );
    write_string(out, entry.message);
    out.push_str(",\"labels\":{");
    let mut labels: Vec<(&str, &str)> = entry.labels().collect();
    // Stable, so among equal names the stored order is kept and the last
    // one written below wins.
    labels.sort_by(|a, b| a.0.cmp(b.0));
    let mut first = true;
    for (index, (name, value)) in labels.iter().enumerate() {
        if labels.get(index + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, name);
        out.push(':');
        write_string(out, value);
    }
    out.push_str("}}");
}

/// A JSON string literal, escaped as serde_json does: `"` and `\`, the
/// short forms `\b \f \n \r \t`, other control characters as `\u00xx`;
/// everything else, non-ASCII included, as it is.
pub fn write_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let samples = [
            "",
            "plain",
            "quote \" and \\ backslash",
            "new\nline\r\ttab\u{8}\u{c}",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "ünïcødé ✓ 🚀 </script>",
        ];
        for sample in samples {
            let mut ours = String::new();
            write_string(&mut ours, sample);
            assert_eq!(ours, serde_json::to_string(sample).unwrap(), "{sample:?}");
        }
        let every_byte: String = (0u8..=127).map(char::from).collect();
        let mut ours = String::new();
        write_string(&mut ours, &every_byte);
        assert_eq!(ours, serde_json::to_string(&every_byte).unwrap());
    }
}

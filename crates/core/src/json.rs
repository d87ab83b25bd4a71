//! The one JSON form of an entry, and the one JSON string escaper, shared
//! by every HTTP route that sends entries and by `logtap logs --output json`:
//!
//! ```json
//! {"cursor":7,"timestamp":1714564800123000000,"level":"error","message":"disk full","labels":{"app":"db"}}
//! ```
//!
//! `cursor` and `timestamp` are JSON integers (clients that read numbers as
//! doubles must take care above 2^53), `labels` an object whose members are
//! sorted by name. A name stored more than once (a JSON line may repeat a
//! field) keeps its last value, as the gRPC API's map does, so every API
//! shows the same entry.
//!
//! Written by hand rather than through serde: it runs once per entry sent,
//! it cannot fail, it borrows straight from the reader's buffer, and this
//! crate has no dependencies. The escaping is serde_json's byte for byte
//! (tested where serde_json is at hand, in the server's tests).

use crate::EntryRef;
use std::fmt::Write;

/// Appends the JSON text of the entry with these fields to `out`. `labels`
/// may repeat a name; the last value of each name is written.
pub fn write_entry<'a>(
    out: &mut String,
    cursor: u64,
    timestamp: i64,
    level: &str,
    message: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{{\"cursor\":{cursor},\"timestamp\":{timestamp},\"level\":"
    );
    write_string(out, level);
    out.push_str(",\"message\":");
    write_string(out, message);
    out.push_str(",\"labels\":{");
    let mut labels: Vec<(&str, &str)> = labels.into_iter().collect();
    // Stable, so among equal names the given order is kept and the last
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

impl EntryRef<'_> {
    /// Appends the entry's JSON text to `out` (see the module's docs).
    pub fn write_json(&self, out: &mut String) {
        write_entry(
            out,
            self.cursor,
            self.timestamp,
            self.level.as_str(),
            self.message,
            self.labels(),
        );
    }
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
    use crate::{encode_labels, Labels, Level};

    fn string(text: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, text);
        out
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        assert_eq!(string(""), "\"\"");
        assert_eq!(string("quote \" and \\"), "\"quote \\\" and \\\\\"");
        assert_eq!(
            string("new\nline\r\ttab\u{8}\u{c}"),
            "\"new\\nline\\r\\ttab\\b\\f\""
        );
        assert_eq!(string("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(string("ünï ✓ 🚀 </script>"), "\"ünï ✓ 🚀 </script>\"");
    }

    #[test]
    fn an_entry_has_sorted_labels_and_the_last_value_of_a_repeated_name() {
        let mut bytes = Vec::new();
        let labels = [("host", "b"), ("app", "db"), ("host", "a \"1\"")]
            .map(|(n, v)| (n.to_string(), v.to_string()));
        encode_labels(&labels, &mut bytes).unwrap();
        let entry = EntryRef::new(
            7,
            1_714_564_800_123_000_000,
            Level::Error,
            "disk full",
            Labels::parse(&bytes).unwrap(),
        );
        let mut out = String::new();
        entry.write_json(&mut out);
        assert_eq!(
            out,
            "{\"cursor\":7,\"timestamp\":1714564800123000000,\"level\":\"error\",\"message\":\"disk full\",\"labels\":{\"app\":\"db\",\"host\":\"a \\\"1\\\"\"}}"
        );
    }
}

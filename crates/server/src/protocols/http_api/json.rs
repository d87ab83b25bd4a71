//! The JSON form of an entry for the HTTP routes: the core crate's one
//! form (`logtap_core::json`, which `logtap logs --output json` prints
//! too), as a `String` or as one NDJSON line.

use bytes::Bytes;
use logtap_core::EntryRef;

/// The entry's JSON text.
pub(crate) fn entry(entry: &EntryRef<'_>) -> String {
    let mut out = String::with_capacity(96 + entry.message.len());
    entry.write_json(&mut out);
    out
}

/// The entry's JSON text and a newline: one NDJSON line.
pub(crate) fn line(entry: &EntryRef<'_>) -> Bytes {
    let mut out = String::with_capacity(96 + entry.message.len());
    entry.write_json(&mut out);
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use logtap_core::json::write_string;

    #[test]
    fn the_core_escaper_escapes_exactly_as_serde_json_does() {
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

//! Properties of the journald export format decoder: arbitrary bytes
//! never panic, and however a body is cut into pieces the decoder gives
//! the same entries (or the same error) as for the whole body; generated
//! entries, their fields written in the text or the binary-safe form,
//! come back with their message, level, time and labels.

use logtap_core::{Level, NewEntry};
use logtap_ingest::journald::{write_binary_field, Decoder, JournaldError};
use logtap_ingest::syslog::level_of_severity;
use proptest::prelude::*;

const NOW: i64 = 7;
const LIMIT: usize = 4096;

/// Every entry of `body`, fed cut at `cuts` (sorted positions), then
/// finished.
fn decode_cut(body: &[u8], cuts: &[usize], limit: usize) -> Result<Vec<NewEntry>, JournaldError> {
    let mut decoder = Decoder::new(limit);
    let mut entries = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain(std::iter::once(body.len())) {
        let end = end.clamp(start, body.len());
        let mut input = &body[start..end];
        while let Some(entry) = decoder.next_entry(&mut input, NOW)? {
            entries.push(entry);
        }
        start = end;
    }
    entries.extend(decoder.finish(NOW)?);
    Ok(entries)
}

/// One generated field: a name that is no special field, its value, and
/// whether it is written in the binary-safe form.
fn field() -> impl Strategy<Value = (String, Vec<u8>, bool)> {
    (
        "[A-Z][A-Z0-9_]{0,12}".prop_filter("not a special field", |name| {
            !matches!(name.as_str(), "MESSAGE" | "PRIORITY")
        }),
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
}

/// One field in the export format; a value holding a newline must be
/// binary.
fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8], binary: bool) {
    if binary || value.contains(&b'\n') {
        write_binary_field(out, name, value);
    } else {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
}

/// A generated entry: message, priority, time in microseconds, labels.
type Generated = (
    Vec<u8>,
    Option<u8>,
    Option<u32>,
    Vec<(String, Vec<u8>, bool)>,
);

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_cuts_change_nothing(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..6),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = decode_cut(&bytes, &[], 200);
        prop_assert_eq!(&whole, &decode_cut(&bytes, &cuts, 200));
        // The same with journald-looking text in front.
        let mut shaped = b"MESSAGE=x\nDATA\n\x03\0\0\0\0\0\0\0abc\n".to_vec();
        shaped.extend_from_slice(&bytes);
        prop_assert_eq!(decode_cut(&shaped, &[], 200), decode_cut(&shaped, &cuts, 200));
    }

    #[test]
    fn generated_entries_round_trip_however_they_are_cut(
        entries in proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..60),
                proptest::option::of(0u8..8),
                proptest::option::of(any::<u32>()),
                proptest::collection::vec(field(), 0..6),
            ),
            1..5,
        ),
        message_binary in any::<bool>(),
        cuts in proptest::collection::vec(0usize..2000, 0..8),
    ) {
        let entries: Vec<Generated> = entries;
        let mut body = Vec::new();
        for (message, priority, micros, fields) in &entries {
            body.extend_from_slice(b"__CURSOR=s=1;i=2\n");
            if let Some(micros) = micros {
                body.extend_from_slice(format!("__REALTIME_TIMESTAMP={micros}\n").as_bytes());
            }
            if let Some(priority) = priority {
                body.extend_from_slice(format!("PRIORITY={priority}\n").as_bytes());
            }
            write_field(&mut body, "MESSAGE", message, message_binary);
            for (name, value, binary) in fields {
                write_field(&mut body, name, value, *binary);
            }
            body.push(b'\n');
        }
        let mut cuts = cuts;
        cuts.sort_unstable();
        let decoded = decode_cut(&body, &cuts, LIMIT).unwrap();
        prop_assert_eq!(decoded.len(), entries.len());
        for (entry, (message, priority, micros, fields)) in decoded.iter().zip(&entries) {
            prop_assert_eq!(&entry.message, &String::from_utf8_lossy(message));
            prop_assert_eq!(entry.level, priority.map_or(Level::Info, level_of_severity));
            prop_assert_eq!(entry.timestamp, micros.map_or(NOW, |m| i64::from(m) * 1000));
            let labels: Vec<(String, String)> = fields
                .iter()
                .map(|(name, value, _)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
                .collect();
            prop_assert_eq!(&entry.labels, &labels);
        }
    }
}

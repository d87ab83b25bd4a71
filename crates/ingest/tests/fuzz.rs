//! Fuzzing the push line parser and the time parser: arbitrary text,
//! arbitrary bytes (converted lossily, as `logtap push` does), JSON-shaped
//! lines built from the fields the parser looks at, and mutations of the
//! seed corpus in `fuzz/corpus/lines/`. They never panic, give the same
//! answer twice, and a plain-text line is always kept whole.
//!
//! proptest stands in for cargo-fuzz (which needs a nightly toolchain):
//! failures shrink to a minimal line and are saved in
//! `fuzz/regressions/lines_*.txt`, replayed on every run. New cases per
//! target: `LOGTAP_FUZZ_CASES` (default 512, a second or two).

#[path = "../../../fuzz/harness.rs"]
mod harness;
use harness::{fuzz, fuzz_dir, Settings};
use logtap_ingest::{parse_duration, parse_line, parse_plain, parse_time};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const NOW: i64 = 1_714_564_800_000_000_000;

/// The line without its ending, as the parser defines it.
fn strip_line_end(line: &str) -> &str {
    line.strip_suffix('\n')
        .unwrap_or(line)
        .trim_end_matches('\r')
}

/// Everything that must hold for any line.
fn check_line(line: &str) -> Result<(), TestCaseError> {
    let parsed = parse_line(line, NOW);
    prop_assert_eq!(&parsed, &parse_line(line, NOW), "not deterministic");
    let plain = parse_plain(line, NOW);
    let stripped = strip_line_end(line);
    if stripped.trim().is_empty() {
        prop_assert_eq!(parsed, Ok(None));
        prop_assert!(plain.is_none());
        return Ok(());
    }
    // The fallback keeps the whole line, at the receive time unless the
    // line starts with a time of its own.
    let plain = plain.expect("a non-blank line gives an entry");
    prop_assert_eq!(plain.message.as_str(), stripped);
    if !stripped.starts_with(|c: char| c.is_ascii_digit() || c == '[') {
        prop_assert_eq!(plain.timestamp, NOW);
    }
    prop_assert!(plain.labels.is_empty());
    match parsed {
        Ok(Some(entry)) => {
            // A line that is not a JSON object is exactly the fallback.
            if !stripped.trim_start().starts_with('{') {
                prop_assert_eq!(entry, plain);
            }
        }
        Ok(None) => prop_assert!(false, "a non-blank line gave nothing"),
        // Only JSON lines can be refused, and only for their time.
        Err(error) => {
            prop_assert!(stripped.trim_start().starts_with('{'), "{error}");
            prop_assert!(!error.to_string().is_empty());
        }
    }
    Ok(())
}

fn check_time(text: &str) -> Result<(), TestCaseError> {
    let first = parse_time(text, NOW);
    prop_assert_eq!(&first, &parse_time(text, NOW));
    let _ = parse_duration(text);
    Ok(())
}

fn corpus() -> Vec<String> {
    let dir = fuzz_dir().join("corpus/lines");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        lines.extend(
            String::from_utf8_lossy(&bytes)
                .split_inclusive('\n')
                .map(str::to_string),
        );
    }
    assert!(!lines.is_empty(), "the seed corpus is empty");
    lines
}

/// A JSON value of the kinds log lines carry, nested a little.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            f.to_string()
        } else {
            "1e400".into()
        }),
        "-?[0-9]{1,25}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,3})?",
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::sample::select(vec![
            "\"2024-05-01T12:00:00Z\"",
            "\"2024-05-01\"",
            "\"2024-05-01 12:00:00+05:30\"",
            "\"1714564805000\"",
            "\"error\"",
            "\"WARN\"",
            "\"\"",
            "\"yesterday\"",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((json_key(), inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "level", "msg", "message", "ts", "time", "timestamp", "labels", "cursor", "app", "",
        ])
        .prop_map(|k| format!("\"{k}\"")),
        1 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

fn json_line() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((json_key(), json_value()), 0..8),
        prop::sample::select(vec!["", "\n", "\r\n", " ", "}", ","]),
    )
        .prop_map(|(fields, tail)| {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}{tail}", fields.join(","))
        })
}

/// A corpus line with a few characters inserted, deleted or replaced.
fn mutated_corpus_line(corpus: Vec<String>) -> impl Strategy<Value = String> {
    (
        prop::sample::select(corpus),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6),
    )
        .prop_map(|(line, edits)| {
            let mut chars: Vec<char> = line.chars().collect();
            for (at, kind, c) in edits {
                let at = at.index(chars.len() + 1);
                match kind {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ if at < chars.len() => chars[at] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

#[test]
fn the_seed_corpus_parses() {
    for line in corpus() {
        check_line(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        check_time(strip_line_end(&line)).unwrap();
    }
}

#[test]
fn arbitrary_text_never_panics() {
    fuzz(
        "lines_text",
        Settings::default(),
        &any::<String>(),
        |line| check_line(&line),
    );
    fuzz(
        "lines_time",
        Settings::default(),
        &any::<String>(),
        |text| check_time(&text),
    );
}

#[test]
fn arbitrary_bytes_read_lossily_never_panic() {
    fuzz(
        "lines_bytes",
        Settings::default(),
        &prop::collection::vec(any::<u8>(), 0..300),
        // What `logtap push` does with bytes that are not UTF-8.
        |bytes| check_line(&String::from_utf8_lossy(&bytes)),
    );
}

#[test]
fn json_shaped_lines_never_panic() {
    fuzz("lines_json", Settings::default(), &json_line(), |line| {
        check_line(&line)
    });
}

#[test]
fn mutated_corpus_lines_never_panic() {
    fuzz(
        "lines_corpus_mutated",
        Settings::default(),
        &mutated_corpus_line(corpus()),
        |line| {
            check_line(&line)?;
            check_time(&line)
        },
    );
}

//! Properties of the line and time parsers over generated input.

use logtap_core::{Level, NewEntry};
use logtap_ingest::{parse_line, parse_plain, parse_time};
use proptest::prelude::*;

/// Epoch-nanosecond integers from here on (in magnitude) read back as
/// nanoseconds; smaller ones read as seconds, milliseconds or microseconds
/// (see `parse_epoch`). 1e17 ns is March 1973.
const NANOS_FROM: i64 = 100_000_000_000_000_000;

fn level() -> impl Strategy<Value = Level> {
    prop::sample::select(Level::ALL.to_vec())
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![NANOS_FROM..=i64::MAX, i64::MIN..=-NANOS_FROM]
}

fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((any::<String>(), any::<String>()), 0..6)
}

fn json(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// The HTTP API's JSON form of an entry.
fn api_form(cursor: u64, entry: &NewEntry) -> String {
    let labels: Vec<String> = entry
        .labels
        .iter()
        .map(|(k, v)| format!("{}:{}", json(k), json(v)))
        .collect();
    format!(
        r#"{{"cursor":{cursor},"timestamp":{},"level":"{}","message":{},"labels":{{{}}}}}"#,
        entry.timestamp,
        entry.level,
        json(&entry.message),
        labels.join(",")
    )
}

/// A flat JSON line: the role fields first, then each label as a field.
fn flat_form(entry: &NewEntry) -> String {
    let mut fields = vec![
        format!("\"level\":\"{}\"", entry.level),
        format!("\"msg\":{}", json(&entry.message)),
        format!("\"ts\":{}", entry.timestamp),
    ];
    fields.extend(
        entry
            .labels
            .iter()
            .map(|(k, v)| format!("{}:{}", json(k), json(v))),
    );
    format!("{{{}}}", fields.join(","))
}

proptest! {
    #[test]
    fn parse_line_never_panics(line in any::<String>(), received in any::<i64>()) {
        let _ = parse_line(&line, received);
        let _ = parse_plain(&line, received);
    }

    #[test]
    fn parse_line_never_panics_on_json_like_text(
        line in r#"[{}\[\]":, 0-9a-z.eE+\-\\]{0,60}"#,
        key in prop::sample::select(vec!["level", "msg", "message", "ts", "time", "timestamp", "labels", "cursor"]),
        value in r#"[{}\[\]":, 0-9a-zA-Z.eE+\-]{0,30}"#,
    ) {
        let _ = parse_line(&line, 0);
        let _ = parse_line(&format!("{{\"{key}\":{value}}}"), 0);
        let _ = parse_line(&format!("{{\"{key}\":\"{value}\"}}"), 0);
    }

    #[test]
    fn parse_time_never_panics(text in any::<String>(), now in any::<i64>()) {
        let _ = parse_time(&text, now);
    }

    #[test]
    fn the_api_json_form_round_trips(
        cursor in any::<u64>(),
        timestamp in timestamp(),
        level in level(),
        message in any::<String>(),
        labels in labels(),
    ) {
        let entry = NewEntry { timestamp, level, message, labels };
        let line = api_form(cursor, &entry);
        prop_assert_eq!(parse_line(&line, 1).unwrap(), Some(entry));
    }

    #[test]
    fn the_flat_json_form_round_trips(
        timestamp in timestamp(),
        level in level(),
        message in any::<String>(),
        labels in labels(),
    ) {
        let entry = NewEntry { timestamp, level, message, labels };
        let line = flat_form(&entry);
        prop_assert_eq!(parse_line(&line, 1).unwrap(), Some(entry));
    }

    #[test]
    fn a_bracketed_level_prefix_is_recognised(
        level in level(),
        upper in any::<bool>(),
        rest in "[a-z0-9 ,.]{0,40}",
    ) {
        let name = if upper { level.as_str().to_uppercase() } else { level.as_str().to_string() };
        let line = format!("[{name}] {rest}");
        let entry = parse_line(&line, 3).unwrap().unwrap();
        prop_assert_eq!(entry.level, level);
        prop_assert_eq!(entry.message, line);
        prop_assert_eq!(entry.timestamp, 3);
    }

    #[test]
    fn rfc3339_round_trips(timestamp in any::<i64>()) {
        let text = chrono::DateTime::from_timestamp_nanos(timestamp)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        prop_assert_eq!(parse_time(&text, 0), Ok(timestamp));
    }

    #[test]
    fn durations_count_back_from_now(
        amount in 0i64..100_000,
        (unit, ns) in prop::sample::select(vec![
            ("ms", 1_000_000i64), ("s", 1_000_000_000), ("m", 60_000_000_000),
            ("h", 3_600_000_000_000), ("d", 86_400_000_000_000),
        ]),
        now in NANOS_FROM..i64::MAX,
    ) {
        prop_assert_eq!(parse_time(&format!("{amount}{unit}"), now), Ok(now - amount * ns));
    }
}

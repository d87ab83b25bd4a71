//! Fuzzing the syslog decoder and TCP framing: arbitrary bytes never panic
//! and answer the same twice; generated RFC 5424 messages come back with
//! their level, labels (structured data escapes included) and message.

use logtap_ingest::syslog::{decode, level_of_severity, next_frame, Framing};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let first = decode(&bytes, 0);
        prop_assert_eq!(first, decode(&bytes, 0));
        let mut with_pri = b"<13>".to_vec();
        with_pri.extend_from_slice(&bytes);
        let _ = decode(&with_pri, 1_700_000_000_000_000_000);
        let mut with_version = b"<13>1 ".to_vec();
        with_version.extend_from_slice(&bytes);
        let _ = decode(&with_version, 0);
        for framing in [Framing::OctetCounting, Framing::NonTransparent] {
            let mut buffer = bytes.clone();
            while let Ok(Some(frame)) = next_frame(&mut buffer, framing, 64) {
                prop_assert!(frame.len() <= 64);
            }
        }
    }

    #[test]
    fn rfc5424_round_trips(
        pri in 0u8..192,
        host in "[a-z0-9.]{1,20}",
        app in "[a-zA-Z0-9_]{1,20}",
        value in "[ -~]{0,20}",
        message in "[ -~]{0,50}",
    ) {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
        let wire = format!("<{pri}>1 2024-01-02T03:04:05Z {host} {app} 42 - [id@1 k=\"{escaped}\"] \u{feff}{message}");
        let entry = decode(wire.as_bytes(), 0).unwrap();
        prop_assert_eq!(entry.level, level_of_severity(pri % 8));
        prop_assert_eq!(entry.message, message);
        prop_assert_eq!(entry.timestamp, 1_704_164_645_000_000_000);
        let label = |name: &str| entry.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        prop_assert_eq!(label("hostname"), Some(host));
        prop_assert_eq!(label("app"), Some(app));
        prop_assert_eq!(label("procid"), Some("42".to_string()));
        prop_assert_eq!(label("msgid"), None);
        prop_assert_eq!(label("sd.id@1.k"), Some(value));
    }
}

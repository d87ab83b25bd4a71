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
            let mut at = 0;
            while let Ok(Some((frame, used))) = next_frame(&bytes[at..], framing, 64) {
                prop_assert!(frame.len() <= 64);
                prop_assert!(used > frame.len() && at + used <= bytes.len());
                at += used;
            }
        }
    }

    /// Frames written with either framing come back one by one, whatever
    /// the reads they arrive in are cut into.
    #[test]
    fn frames_come_back_across_reads(
        messages in proptest::collection::vec("<[0-9]{1,3}>[ -~]{0,40}", 1..20),
        cuts in proptest::collection::vec(1usize..50, 1..40),
    ) {
        for framing in [Framing::OctetCounting, Framing::NonTransparent] {
            let mut wire = Vec::new();
            for message in &messages {
                if framing == Framing::OctetCounting {
                    wire.extend_from_slice(format!("{} ", message.len()).as_bytes());
                    wire.extend_from_slice(message.as_bytes());
                } else {
                    wire.extend_from_slice(message.as_bytes());
                    wire.push(b'\n');
                }
            }
            let mut buffer = Vec::new();
            let mut got = Vec::new();
            let mut sent = 0;
            for cut in cuts.iter().cycle() {
                if sent == wire.len() {
                    break;
                }
                let end = (sent + cut).min(wire.len());
                buffer.extend_from_slice(&wire[sent..end]);
                sent = end;
                let mut at = 0;
                while let Some((frame, used)) = next_frame(&buffer[at..], framing, 64).unwrap() {
                    got.push(String::from_utf8(frame.to_vec()).unwrap());
                    at += used;
                }
                buffer.drain(..at);
            }
            prop_assert_eq!(&got, &messages);
            prop_assert!(buffer.is_empty());
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

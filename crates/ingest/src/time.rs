//! Times as users write them: for `--since` / `--until`, the HTTP API's
//! query parameters, and the timestamps inside JSON log lines.
//!
//! Accepted forms ([`parse_time`]):
//! * an RFC 3339 time with `Z` or an offset: `2024-05-01T12:00:00Z`,
//!   `2024-05-01T14:00:00.123+02:00` (a space instead of the `T` is fine);
//! * a date, `2024-05-01`, meaning its midnight in UTC (the server has no
//!   idea of the user's time zone, so UTC is the one answer that means the
//!   same everywhere);
//! * Unix epoch numbers in seconds, milliseconds, microseconds or
//!   nanoseconds, told apart by magnitude ([`parse_epoch`]), with an optional
//!   fraction: `1714564800`, `1714564800.25`, `1714564800250`;
//! * a duration back from now: `90s`, `15m`, `1h`, `2h30m`, `7d`, `2w`,
//!   `500ms`;
//! * `now`.
//!
//! A time with neither `Z` nor an offset is refused rather than guessed: read
//! as UTC it would be off by the writer's offset, silently.

use chrono::{DateTime, NaiveDate};

/// Below this magnitude an epoch number is seconds (1e11 s is the year
/// 5138; 1e11 ms is only March 1973, so milliseconds before that read as
/// seconds, which real logs do not have).
const SECONDS_BELOW: u128 = 100_000_000_000;
/// Below this, milliseconds (1e14 ms is the year 5138).
const MILLIS_BELOW: u128 = 100_000_000_000_000;
/// Below this, microseconds; from here on, nanoseconds.
const MICROS_BELOW: u128 = 100_000_000_000_000_000;

/// The forms [`parse_time`] accepts, for error messages.
pub const ACCEPTED_FORMS: &str = "use an RFC 3339 time (2024-05-01T12:00:00Z, \
     2024-05-01T14:00:00+02:00), a date (2024-05-01, midnight UTC), Unix epoch \
     seconds, milliseconds, microseconds or nanoseconds (1714564800), a duration \
     back from now (90s, 15m, 2h30m, 7d), or \"now\"";

/// A time that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid time {text:?}: {ACCEPTED_FORMS}")]
    /// None of the accepted forms.
    Invalid {
        /// What was given.
        text: String,
    },
    #[error(
        "invalid time {text:?}: it has no UTC offset; add Z for UTC or an offset such as +02:00"
    )]
    /// A date and time without a UTC offset.
    NoOffset {
        /// What was given.
        text: String,
    },
    #[error(
        "time {text:?} is outside the range logtap can store (from 1677-09-21 to 2262-04-11 UTC)"
    )]
    /// Outside what an i64 of nanoseconds holds.
    OutOfRange {
        /// What was given.
        text: String,
    },
}

/// Reads a time in any of the forms listed on this module, as Unix epoch
/// nanoseconds. Durations count back from `now_ns`.
pub fn parse_time(text: &str, now_ns: i64) -> Result<i64, TimeError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }
    if let Some(result) = parse_epoch(trimmed) {
        return result;
    }
    if let Some(duration_ns) = parse_duration_ns(trimmed) {
        return duration_ns
            .and_then(|d| now_ns.checked_sub(d))
            .ok_or_else(|| TimeError::OutOfRange {
                text: text.to_string(),
            });
    }
    parse_datetime(trimmed).map_err(|error| match error {
        // Report the text as the user gave it, spaces and all.
        TimeError::Invalid { .. } => TimeError::Invalid {
            text: text.to_string(),
        },
        other => other,
    })
}

/// Reads an RFC 3339 time (or a bare date, as midnight UTC) as Unix epoch
/// nanoseconds. The JSON line parser uses this for string timestamps that
/// are not numbers.
pub fn parse_datetime(text: &str) -> Result<i64, TimeError> {
    let invalid = || TimeError::Invalid {
        text: text.to_string(),
    };
    let out_of_range = || TimeError::OutOfRange {
        text: text.to_string(),
    };
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return time.timestamp_nanos_opt().ok_or_else(out_of_range);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
            .ok_or_else(out_of_range);
    }
    // Say what is missing when the text is a good time without an offset.
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if chrono::NaiveDateTime::parse_from_str(text, format).is_ok() {
            return Err(TimeError::NoOffset {
                text: text.to_string(),
            });
        }
    }
    Err(invalid())
}

/// Reads a Unix epoch number, `-?DIGITS(.DIGITS)?`, as nanoseconds, its unit
/// told by the magnitude of its integer part: below 1e11 seconds, below 1e14
/// milliseconds, below 1e17 microseconds, else nanoseconds. A fraction finer
/// than a nanosecond is dropped (towards zero).
///
/// Returns `None` when the text is not such a number at all, and
/// `Some(Err(OutOfRange))` when it is one but names a time beyond what an
/// i64 of nanoseconds holds (the years 1677 to 2262).
pub fn parse_epoch(text: &str) -> Option<Result<i64, TimeError>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((int_part, frac_part)) => (int_part, Some(frac_part)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    let out_of_range = || TimeError::OutOfRange {
        text: text.to_string(),
    };
    // u128 holds 38 digits; anything longer is out of range anyway.
    let int_part = int_part.trim_start_matches('0');
    if int_part.len() > 30 {
        return Some(Err(out_of_range()));
    }
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let ns_per_unit: u128 = if int < SECONDS_BELOW {
        1_000_000_000
    } else if int < MILLIS_BELOW {
        1_000_000
    } else if int < MICROS_BELOW {
        1_000
    } else {
        1
    };
    // The fraction in nanoseconds: its first digits, as many as the unit has
    // below it (9 for seconds, 6 for milliseconds, ...).
    let frac_digits = ns_per_unit.ilog10() as usize;
    let mut frac_ns: u128 = 0;
    if let Some(frac) = frac_part {
        let kept = &frac[..frac.len().min(frac_digits)];
        for (i, digit) in kept.bytes().enumerate() {
            frac_ns += u128::from(digit - b'0') * 10u128.pow((frac_digits - 1 - i) as u32);
        }
    }
    let magnitude = int * ns_per_unit + frac_ns;
    let value = if negative {
        i64::try_from(magnitude)
            .ok()
            .map(|m| -m)
            .or((magnitude == 1u128 << 63).then_some(i64::MIN))
    } else {
        i64::try_from(magnitude).ok()
    };
    Some(value.ok_or_else(out_of_range))
}

/// Reads a duration written as number-unit pairs (`90s`, `15m`, `2h30m`,
/// `7d`, `2w`, `500ms`), for options such as a retention age.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let trimmed = text.trim();
    match parse_duration_ns(trimmed) {
        Some(Some(ns)) => Ok(std::time::Duration::from_nanos(ns as u64)),
        _ => Err(DurationError {
            text: text.to_string(),
        }),
    }
}

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: use numbers with units ms, s, m, h, d or w, such as 90s, 15m, 2h30m, 7d")]
pub struct DurationError {
    /// What was given.
    pub text: String,
}

/// Reads `2h30m`-style durations as nanoseconds: one or more number-unit
/// pairs, units `ms`, `s`, `m`, `h`, `d`, `w`. Returns `None` when the text
/// is not of that shape, `Some(None)` when it is but overflows.
fn parse_duration_ns(text: &str) -> Option<Option<i64>> {
    let mut rest = text;
    let mut total: i64 = 0;
    let mut overflow = false;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let ns_per_unit: i64 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            _ => return None,
        };
        match number
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(ns_per_unit))
            .and_then(|n| total.checked_add(n))
        {
            Some(sum) => total = sum,
            None => overflow = true,
        }
        rest = after;
    }
    Some((!overflow).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_714_564_800_000_000_000; // 2024-05-01T12:00:00Z
    const S: i64 = 1_000_000_000;

    #[test]
    fn rfc3339_with_offsets() {
        assert_eq!(parse_time("2024-05-01T12:00:00Z", 0), Ok(NOW));
        assert_eq!(parse_time("2024-05-01T14:00:00+02:00", 0), Ok(NOW));
        assert_eq!(parse_time("2024-05-01t12:00:00z", 0), Ok(NOW));
        assert_eq!(parse_time("2024-05-01 12:00:00Z", 0), Ok(NOW));
        assert_eq!(
            parse_time("  2024-05-01T12:00:00.000000001Z ", 0),
            Ok(NOW + 1)
        );
        assert_eq!(
            parse_time("2024-05-01T11:00:00.5-01:00", 0),
            Ok(NOW + S / 2)
        );
    }

    #[test]
    fn dates_are_midnight_utc() {
        assert_eq!(parse_time("2024-05-01", 0), Ok(NOW - 12 * 3600 * S));
    }

    #[test]
    fn times_without_an_offset_are_refused_with_a_hint() {
        let error = parse_time("2024-05-01T12:00:00", 0).unwrap_err();
        assert!(matches!(error, TimeError::NoOffset { .. }));
        assert!(error.to_string().contains("add Z"), "{error}");
        assert!(matches!(
            parse_time("2024-05-01 12:00:00.5", 0),
            Err(TimeError::NoOffset { .. })
        ));
    }

    #[test]
    fn epoch_units_by_magnitude() {
        assert_eq!(parse_time("1714564800", 0), Ok(NOW));
        assert_eq!(parse_time("1714564800.25", 0), Ok(NOW + S / 4));
        assert_eq!(parse_time("1714564800250", 0), Ok(NOW + S / 4));
        assert_eq!(parse_time("1714564800250000", 0), Ok(NOW + S / 4));
        assert_eq!(parse_time("1714564800250000000", 0), Ok(NOW + S / 4));
        assert_eq!(parse_time("1714564800250.5", 0), Ok(NOW + S / 4 + 500_000));
        assert_eq!(parse_time("0", 0), Ok(0));
        assert_eq!(parse_time("-1", 0), Ok(-S));
        assert_eq!(parse_time("0.000000001", 0), Ok(1));
        // Digits finer than a nanosecond are dropped.
        assert_eq!(parse_time("0.0000000019", 0), Ok(1));
        assert_eq!(
            parse_time("100000000000", 0),
            Ok(100_000_000_000 * 1_000_000)
        );
    }

    #[test]
    fn epoch_numbers_beyond_i64_nanoseconds_are_out_of_range() {
        // 9.3e9 seconds is past 2262.
        for text in [
            "9300000000",
            "99999999999999999999",
            "1".repeat(60).as_str(),
        ] {
            assert!(
                matches!(parse_time(text, 0), Err(TimeError::OutOfRange { .. })),
                "{text}"
            );
        }
        assert_eq!(parse_time("9223372036854775807", 0), Ok(i64::MAX));
        assert_eq!(parse_time("-9223372036854775808", 0), Ok(i64::MIN));
        assert!(parse_time("9223372036854775808", 0).is_err());
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("NOW", NOW), Ok(NOW));
        assert_eq!(parse_time("90s", NOW), Ok(NOW - 90 * S));
        assert_eq!(parse_time("15m", NOW), Ok(NOW - 900 * S));
        assert_eq!(parse_time("1h", NOW), Ok(NOW - 3600 * S));
        assert_eq!(parse_time("2h30m", NOW), Ok(NOW - 9000 * S));
        assert_eq!(parse_time("7d", NOW), Ok(NOW - 7 * 86400 * S));
        assert_eq!(parse_time("2w", NOW), Ok(NOW - 14 * 86400 * S));
        assert_eq!(parse_time("500ms", NOW), Ok(NOW - S / 2));
        assert_eq!(parse_time("0s", NOW), Ok(NOW));
    }

    #[test]
    fn bad_times_list_the_accepted_forms() {
        for text in [
            "",
            " ",
            "yesterday",
            "15",
            "15x",
            "h",
            "1h30",
            "1.5h",
            "-15m",
            "15 m",
            "2024-13-01",
            "2024-05-01T25:00:00Z",
            "1e9",
            "--1",
            "1.",
            ".5",
            "+5",
        ] {
            // "15" is an epoch number (15 s after 1970), not an error.
            if text == "15" {
                assert_eq!(parse_time(text, NOW), Ok(15 * S));
                continue;
            }
            let error = parse_time(text, NOW).unwrap_err();
            assert!(
                matches!(error, TimeError::Invalid { .. }),
                "{text:?}: {error:?}"
            );
            assert!(error.to_string().contains("RFC 3339"), "{error}");
            assert!(error.to_string().contains("15m"), "{error}");
        }
    }

    #[test]
    fn plain_durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration(" 2h30m "), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for text in ["", "7", "7 d", "-7d", "1.5h", "99999999999999999999d"] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.to_string().contains("2h30m"), "{error}");
        }
    }

    #[test]
    fn durations_that_overflow_are_out_of_range() {
        assert!(matches!(
            parse_time("99999999999999999999d", NOW),
            Err(TimeError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_time("106751d", i64::MIN + 1),
            Err(TimeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn rfc3339_beyond_i64_nanoseconds_is_out_of_range() {
        assert!(matches!(
            parse_time("3000-01-01T00:00:00Z", 0),
            Err(TimeError::OutOfRange { .. })
        ));
    }
}

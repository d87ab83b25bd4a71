//! Severity levels, lowest to highest, and the names users may give them.

use std::fmt;
use std::str::FromStr;

/// A log level. The order is the severity order, so `level >= Level::Error`
/// is "Show Errors". The discriminant is the byte stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// The finest detail, off in most production setups.
    Trace = 0,
    /// Detail for developers.
    Debug = 1,
    /// Normal operation: what an entry without a recognised level gets.
    Info = 2,
    /// Something unexpected that the program handled.
    Warn = 3,
    /// An operation failed: what "Show Errors" shows (with fatals).
    Error = 4,
    /// The program cannot go on.
    Fatal = 5,
}

/// A level name that is none of the known names or aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLevel(pub String);

impl fmt::Display for UnknownLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown level {:?}: valid levels are trace, debug, info, warn, error, fatal (aliases: warning, err, critical, crit, panic)",
            self.0
        )
    }
}

impl std::error::Error for UnknownLevel {}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// How many levels there are: the length of per-level count arrays.
    pub const COUNT: usize = 6;

    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// The level stored as this byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<Level> {
        Level::ALL.get(byte as usize).copied()
    }

    /// Parses a name case-insensitively, with the aliases PRODUCT.md gives.
    pub fn parse(name: &str) -> Result<Level, UnknownLevel> {
        let lower = name.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "critical" | "crit" | "panic" => Level::Fatal,
            // The name is echoed in error messages a server sends back; a
            // client's megabyte of "level" must not become a megabyte of
            // error, so only its start is kept.
            _ => return Err(UnknownLevel(crate::clip_quote(name, 64))),
        })
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::parse(s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_is_quoted_clipped() {
        let long = "é".repeat(100_000);
        let error = Level::parse(&long).unwrap_err();
        assert!(error.to_string().len() < 300, "{}", error.to_string().len());
        assert!(error.0.ends_with("(200000 bytes in all)"), "{}", error.0);
        assert_eq!(Level::parse("loud").unwrap_err().0, "loud");
    }

    #[test]
    fn names_and_aliases_parse_case_insensitively() {
        assert_eq!(Level::parse("ERROR"), Ok(Level::Error));
        assert_eq!(Level::parse("Warning"), Ok(Level::Warn));
        assert_eq!(Level::parse("err"), Ok(Level::Error));
        assert_eq!(Level::parse("crit"), Ok(Level::Fatal));
        assert_eq!(Level::parse("PANIC"), Ok(Level::Fatal));
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), Ok(level));
            assert_eq!(Level::from_byte(level as u8), Some(level));
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_valid_ones_listed() {
        let error = Level::parse("loud").unwrap_err();
        assert!(error
            .to_string()
            .contains("trace, debug, info, warn, error, fatal"));
        assert_eq!(Level::parse(""), Err(UnknownLevel(String::new())));
        assert_eq!(Level::from_byte(6), None);
    }
}

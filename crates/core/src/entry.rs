//! Entries: what goes into a store, and what comes out.

use crate::{Labels, Level};

/// An entry to append. The store gives it its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Unix epoch nanoseconds, as given by the producer (or its receive time).
    pub timestamp: i64,
    /// The entry's severity.
    pub level: Level,
    /// The log line's text.
    pub message: String,
    /// Labels in the order given; names are not required to be unique.
    pub labels: Vec<(String, String)>,
}

/// A stored entry, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's sequence number: strictly increasing, never reused, from 1.
    pub cursor: u64,
    /// Unix epoch nanoseconds.
    pub timestamp: i64,
    /// The entry's severity.
    pub level: Level,
    /// The log line's text.
    pub message: String,
    /// Labels in stored order.
    pub labels: Vec<(String, String)>,
}

/// A stored entry borrowed from a reader's buffer: what readers yield, so a
/// scan that skips most entries never allocates for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The entry's sequence number.
    pub cursor: u64,
    /// Unix epoch nanoseconds.
    pub timestamp: i64,
    /// The entry's severity.
    pub level: Level,
    /// The log line's text.
    pub message: &'a str,
    /// The labels, still in their compact form; `labels()` walks them.
    labels: Labels<'a>,
}

impl<'a> EntryRef<'a> {
    /// An entry read from a backend's buffer.
    #[inline]
    pub fn new(
        cursor: u64,
        timestamp: i64,
        level: Level,
        message: &'a str,
        labels: Labels<'a>,
    ) -> EntryRef<'a> {
        EntryRef {
            cursor,
            timestamp,
            level,
            message,
            labels,
        }
    }

    /// The entry's labels, in stored order.
    #[inline]
    pub fn labels(&self) -> Labels<'a> {
        self.labels
    }

    /// Whether the entry carries `name` with exactly `value`.
    pub fn has_label(&self, name: &str, value: &str) -> bool {
        self.labels().any(|(n, v)| n == name && v == value)
    }

    /// Copies the entry out of the reader's buffer.
    pub fn to_entry(&self) -> Entry {
        Entry {
            cursor: self.cursor,
            timestamp: self.timestamp,
            level: self.level,
            message: self.message.to_string(),
            labels: self
                .labels()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }
}

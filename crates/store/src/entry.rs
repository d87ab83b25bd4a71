//! The entries the store keeps: what goes in, and what comes out.

use crate::Level;

/// An entry to append. The store gives it its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Unix epoch nanoseconds, as given by the producer (or its receive time).
    pub timestamp: i64,
    pub level: Level,
    pub message: String,
    /// Labels in the order given; names are not required to be unique.
    pub labels: Vec<(String, String)>,
}

/// A stored entry, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's sequence number: strictly increasing, never reused, from 1.
    pub cursor: u64,
    pub timestamp: i64,
    pub level: Level,
    pub message: String,
    pub labels: Vec<(String, String)>,
}

/// A stored entry borrowed from a reader's buffer: what readers yield, so a
/// scan that skips most entries never allocates for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub cursor: u64,
    pub timestamp: i64,
    pub level: Level,
    pub message: &'a str,
    /// The labels' encoded bytes; `labels()` walks them.
    pub(crate) labels: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// The entry's labels, in stored order.
    pub fn labels(&self) -> Labels<'a> {
        Labels { rest: self.labels }
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

/// Iterator over an entry's labels as `(name, value)`.
///
/// The bytes were checked when the record was decoded (its CRC matched and
/// the label block parsed), so iteration cannot fail.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, rest) = crate::record::take_str(self.rest)?;
        let (value, rest) = crate::record::take_str(rest)?;
        self.rest = rest;
        Some((name, value))
    }
}

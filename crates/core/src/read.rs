//! What a reader is asked for: where it starts and stops, which way it
//! walks, what the backend filters itself, and what each step gives.

use crate::{EntryRef, Level};
use std::sync::Arc;

/// Which way a reader walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first; a forward reader keeps seeing new entries as they
    /// become visible (call `step` again after [`Step::End`]).
    #[default]
    Forward,
    /// Newest first, from the newest entry visible when the reader was made.
    Backward,
}

/// The filters a backend applies itself, skipping whole blocks whose
/// summaries rule them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter {
    /// This level and above.
    pub min_level: Option<Level>,
    /// `timestamp >= since`.
    pub since: Option<i64>,
    /// `timestamp < until`.
    pub until: Option<i64>,
}

impl Filter {
    /// Whether an entry with `level` and `timestamp` passes.
    #[inline]
    pub fn passes(&self, level: Level, timestamp: i64) -> bool {
        self.min_level.is_none_or(|min| level >= min)
            && self.since.is_none_or(|since| timestamp >= since)
            && self.until.is_none_or(|until| timestamp < until)
    }
}

/// What an entry's message and labels must hold for the caller to want
/// it, told to the backend so that it can pass over whole blocks that
/// cannot hold such an entry.
///
/// A hint, not a filter: the backend may still yield entries that lack
/// it, and the caller checks every entry itself (the query crate's
/// `Matcher`). A backend must never skip an entry that has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// Each of these occurs in the message: byte for byte, or with
    /// `ignore_case`, once every character of both is lowercased on its
    /// own (`char::to_lowercase`, which keeps a substring a substring).
    pub substrings: Vec<String>,
    /// Compare `substrings` without regard to case (see above).
    pub ignore_case: bool,
    /// Each of these `(name, value)` pairs is among the entry's labels.
    pub labels: Vec<(String, String)>,
}

impl Search {
    /// Whether the hint rules nothing out.
    pub fn is_empty(&self) -> bool {
        self.substrings.is_empty() && self.labels.is_empty()
    }
}

/// Where a reader starts and stops, and what it yields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Only entries with `cursor > after`.
    pub after: Option<u64>,
    /// Only entries with `cursor < before`.
    pub before: Option<u64>,
    /// Oldest first or newest first.
    pub direction: Direction,
    /// What the backend filters itself.
    pub filter: Filter,
    /// What the caller looks for in messages and labels, for the backend
    /// to skip blocks by (`None`: nothing to skip by). Shared, so options
    /// stay cheap to clone.
    pub search: Option<Arc<Search>>,
}

/// One step of a reader.
#[derive(Debug)]
pub enum Step<'a> {
    /// The next matching entry, borrowed from the reader's buffer.
    Entry(EntryRef<'a>),
    /// The budget was spent on entries that did not match; call again. Lets
    /// async callers yield instead of blocking a thread on a long skip.
    Pending,
    /// Nothing more for now: a forward reader has caught up with the newest
    /// visible entry (or reached `before`), a backward one has passed `after`.
    End,
}

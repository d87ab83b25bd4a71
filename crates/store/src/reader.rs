//! Readers: a cursor into the store that holds O(1) memory however far it goes.

use crate::entry::EntryRef;
use crate::{Level, StoreError};

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

/// The filters the store applies itself, skipping whole blocks whose
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

/// Where a reader starts and stops, and what it yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Only entries with `cursor > after`.
    pub after: Option<u64>,
    /// Only entries with `cursor < before`.
    pub before: Option<u64>,
    pub direction: Direction,
    pub filter: Filter,
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

/// A position in the store and a small buffer. Dropping it releases
/// everything it holds.
pub struct Reader {}

impl Reader {
    /// Scans at most `budget` records (a skipped block counts as one) and
    /// returns the first that matches, or says why it stopped.
    pub fn step(&mut self, budget: usize) -> Result<Step<'_>, StoreError> {
        let _ = budget;
        todo!()
    }

    /// The next matching entry, or `None` at [`Step::End`].
    pub fn next_entry(&mut self) -> Result<Option<EntryRef<'_>>, StoreError> {
        todo!()
    }

    /// The cursor of the last record this reader has looked at, matching or
    /// not (in a forward reader: everything up to it has been considered);
    /// `None` before the first. Resuming after it with the same filters
    /// neither repeats nor misses an entry.
    pub fn scanned_through(&self) -> Option<u64> {
        todo!()
    }
}

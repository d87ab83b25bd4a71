//! The backend interface: what every reader and writer of log data goes
//! through, whatever keeps the entries (the embedded store today, a
//! replicated log next).
//!
//! The interface is synchronous and knows nothing of an async runtime:
//! appends and reads may block on I/O, so async callers run them where
//! blocking is allowed, and a backend wakes async waiters through the
//! commit hook ([`Backend::on_commit`]) rather than a runtime's types.

use crate::{EntryLimits, EntryRef, Level, NewEntry, ReadOptions, Run, Step, StoreError};
use std::time::Duration;

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendReceipt {
    /// Cursor of the batch's first entry (0 for an empty batch).
    pub first_cursor: u64,
    /// Cursor of the batch's last entry (0 for an empty batch).
    pub last_cursor: u64,
    /// How many entries the batch held.
    pub count: u64,
}

/// Sizes, for /metrics and the storage-cost benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Files (or other units of storage) held.
    pub segments: u64,
    /// Of those, the ones still in the form they were written in, not yet
    /// compacted (the newest, being written, and any waiting to be
    /// sealed): the sealing backlog is this minus one.
    pub unsealed_segments: u64,
    /// Bytes held, visible or not yet.
    pub bytes: u64,
    /// Visible entries.
    pub entries: u64,
    /// Oldest cursor still held (the next cursor when the store is empty).
    pub oldest_cursor: u64,
    /// Newest visible cursor (0 when nothing was ever stored).
    pub last_cursor: u64,
    /// Bytes of the newest records held in memory for live readers.
    pub recent_bytes: u64,
    /// Bytes readers have read from files since the store was opened:
    /// what live readers take from memory does not count.
    pub file_read_bytes: u64,
}

/// Called with the newest visible cursor after each commit.
pub type CommitHook = Box<dyn Fn(u64) + Send + Sync>;

/// A durable, ordered log of entries: append, read from a cursor either
/// way, count, and wait for what is new.
///
/// Every entry gets a cursor, strictly increasing in append order and never
/// reused; an append returns only once its entries are durable and
/// visible to readers, all of them at once.
pub trait Backend: Send + Sync + 'static {
    /// Appends a batch, all or nothing, and returns once it is visible.
    fn append(&self, entries: &[NewEntry]) -> Result<AppendReceipt, StoreError>;

    /// A reader positioned by `options`. A cursor older than anything held
    /// is [`StoreError::CursorDeleted`].
    fn reader(&self, options: ReadOptions) -> Result<Box<dyn LogReader>, StoreError>;

    /// The exact number of entries `options` selects, without reading each.
    fn count(&self, options: &ReadOptions) -> Result<u64, StoreError>;

    /// The entries `options` selects (its cursor range and filter; its
    /// search hint is not applied), counted by level into time buckets:
    /// bucket `i` holds the timestamps in `[edges[i], edges[i + 1])`, so
    /// there is one bucket fewer than edges (`edges` ascending). What
    /// metric queries over level and time are answered from.
    ///
    /// This default reads every entry; a backend with per-block summaries
    /// counts whole blocks from them and decodes only the blocks that
    /// straddle an edge.
    fn histogram(
        &self,
        options: &ReadOptions,
        edges: &[i64],
    ) -> Result<Vec<[u64; Level::COUNT]>, StoreError> {
        let mut counts = vec![[0; Level::COUNT]; edges.len().saturating_sub(1)];
        let options = ReadOptions {
            search: None,
            ..options.clone()
        };
        let mut reader = self.reader(options)?;
        while let Some(entry) = reader.next_entry()? {
            if let Some(bucket) = histogram_bucket(edges, entry.timestamp) {
                counts[bucket][entry.level as usize] += 1;
            }
        }
        Ok(counts)
    }

    /// The newest visible cursor (0 when nothing was ever stored).
    fn last_cursor(&self) -> u64;

    /// The oldest cursor still held (the next cursor when empty).
    fn oldest_cursor(&self) -> u64;

    /// Blocks until the newest visible cursor passes `cursor` or `timeout`
    /// ends, and returns the newest visible cursor.
    fn wait_for(&self, cursor: u64, timeout: Duration) -> u64;

    /// Registers `hook`, called after every commit with the newest visible
    /// cursor. Hooks run on the committing thread: they must be quick.
    fn on_commit(&self, hook: CommitHook);

    /// Makes everything appended so far durable.
    fn sync(&self) -> Result<(), StoreError>;

    /// Applies the retention limits now (also done on append).
    fn enforce_retention(&self);

    /// Sizes, as of now.
    fn stats(&self) -> StoreStats;

    /// The largest entry this backend keeps.
    fn limits(&self) -> EntryLimits;
}

/// The bucket of [`Backend::histogram`] that `timestamp` falls in, if any.
pub fn histogram_bucket(edges: &[i64], timestamp: i64) -> Option<usize> {
    let after = edges.partition_point(|edge| *edge <= timestamp);
    (after > 0 && after < edges.len()).then(|| after - 1)
}

/// A position in a backend and a small buffer; dropping it releases
/// everything it holds.
pub trait LogReader: Send {
    /// Scans at most `budget` units of work (a record read, or a block
    /// passed over) and returns the first entry that matches, or says why
    /// it stopped.
    fn step(&mut self, budget: usize) -> Result<Step<'_>, StoreError>;

    /// The next matching entry, or `None` at [`Step::End`].
    fn next_entry(&mut self) -> Result<Option<EntryRef<'_>>, StoreError>;

    /// Takes the rest of a chunk of the newest records in one step, when
    /// the backend keeps them in memory and this reader yields every record
    /// (see [`Run`]); `None` leaves the reader where it was, for `step`.
    /// Backends without shared newest records keep the default.
    fn take_run(&mut self) -> Option<Run<'_>> {
        None
    }

    /// The work the last `step` did, in the budget's units.
    fn last_step_cost(&self) -> usize;

    /// The cursor of the last record this reader has looked at, matching or
    /// not; `None` before the first. Resuming after it with the same
    /// filters neither repeats nor misses an entry.
    fn scanned_through(&self) -> Option<u64>;
}

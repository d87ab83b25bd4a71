//! The store handle: append, read, count, wait, retention.

use crate::reader::{ReadOptions, Reader};
use crate::recovery::RecoveryReport;
use crate::{NewEntry, StoreConfig, StoreError};
use std::time::Duration;

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Cursor of the batch's first entry (0 for an empty batch).
    pub first_cursor: u64,
    /// Cursor of the batch's last entry (0 for an empty batch).
    pub last_cursor: u64,
    pub count: u64,
}

/// Sizes, for /metrics and the storage-cost benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    pub segments: u64,
    pub bytes: u64,
    pub entries: u64,
    /// Oldest cursor still held (the next cursor when the store is empty).
    pub oldest_cursor: u64,
    /// Newest visible cursor (0 when nothing was ever stored).
    pub last_cursor: u64,
}

/// A handle on an open store; cheap to clone, shared by every thread.
#[derive(Clone)]
pub struct Store {}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`, recovering from
    /// a crash: torn or corrupt records are cut or skipped, and
    /// [`Store::recovery_report`] says what.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let _ = config;
        todo!()
    }

    /// Appends a batch with one write and at most one fsync (shared with
    /// concurrent batches), and returns once it is durable under the sync
    /// policy; only then do readers see it.
    pub fn append(&self, entries: &[NewEntry]) -> Result<AppendReceipt, StoreError> {
        let _ = entries;
        todo!()
    }

    /// A reader positioned by `options`. Fails with
    /// [`StoreError::CursorDeleted`] when `options.after` is older than what
    /// retention kept.
    pub fn reader(&self, options: ReadOptions) -> Result<Reader, StoreError> {
        let _ = options;
        todo!()
    }

    /// The exact number of entries a reader with these options would yield
    /// now (bounded by `options.before`, else by the newest visible entry).
    /// Costs O(blocks): whole blocks are counted from their summaries; only
    /// blocks straddling a time or cursor bound are decoded.
    pub fn count(&self, options: &ReadOptions) -> Result<u64, StoreError> {
        let _ = options;
        todo!()
    }

    /// Newest visible cursor; 0 when nothing was ever stored.
    pub fn last_cursor(&self) -> u64 {
        todo!()
    }

    /// Oldest cursor still held; resuming after `oldest_cursor() - 1` is the
    /// earliest resume that loses nothing.
    pub fn oldest_cursor(&self) -> u64 {
        todo!()
    }

    /// Blocks until an entry after `cursor` is visible or `timeout` passes;
    /// returns the newest visible cursor.
    pub fn wait_for(&self, cursor: u64, timeout: Duration) -> u64 {
        let _ = (cursor, timeout);
        todo!()
    }

    /// Calls `hook` with the newest visible cursor after every append that
    /// became visible. Hooks run on the appending thread, so they must be
    /// quick (e.g. send on a `tokio::sync::watch`).
    pub fn on_commit(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        let _ = hook;
        todo!()
    }

    /// Forces everything written to disk (for shutdown under a lazy policy).
    pub fn sync(&self) -> Result<(), StoreError> {
        todo!()
    }

    /// Sizes and cursor bounds.
    pub fn stats(&self) -> StoreStats {
        todo!()
    }

    /// What recovery cut or skipped when the store was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        todo!()
    }
}

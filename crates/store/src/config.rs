//! How a store is opened: where, how durable, how big, how long kept.

use crate::fs::{FileSystem, StdFileSystem};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// When appended entries are forced to disk. An append returns (and its
/// entries become visible to readers) only once its batch is durable under
/// this policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync once per batch (concurrent batches share one fsync): nothing
    /// acknowledged is lost on power failure. The default.
    EveryBatch,
    /// fsync at most once per interval; a crash of the machine may lose what
    /// was acknowledged within the last interval, a crash of the process
    /// loses nothing.
    Interval(Duration),
    /// Never fsync; the operating system writes back when it likes.
    Never,
}

/// Retention limits; the oldest whole segments go first. The newest segment
/// is never deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep the total size of all segments at or below this many bytes.
    pub max_bytes: Option<u64>,
    /// Delete a segment once its newest entry is older than this (by the
    /// entries' timestamps against the wall clock).
    pub max_age: Option<Duration>,
}

/// Everything needed to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory; created if missing.
    pub dir: PathBuf,
    /// When appends are forced to disk.
    pub sync: SyncPolicy,
    /// A segment is rolled (sealed, a new one started) once it reaches this size.
    pub segment_bytes: u64,
    /// Records are summarised in blocks of about this many bytes: smaller
    /// blocks make rare-entry searches decode less, larger ones keep fewer
    /// summaries in memory.
    pub block_bytes: u64,
    /// When the oldest segments are deleted.
    pub retention: Retention,
    /// How many of the newest written bytes stay in memory once published,
    /// for readers at the live edge to share instead of reading the file
    /// (0: none). A fixed cost for the whole store, whatever the number of
    /// readers.
    pub recent_bytes: usize,
    /// Seal closed segments (compress them into blocks with filters and a
    /// footer) on a thread of the store's own, once the writer has moved
    /// on. Off, segments stay record logs until [`crate::Store::seal_now`].
    pub seal_in_background: bool,
    /// How long a segment stays a record log after the writer moves on
    /// before the background sealer takes it: live readers that fell
    /// behind in a burst read its raw records, shared and unchecked,
    /// instead of each decoding sealed blocks (bench/RESULTS.md, "Sealing's
    /// memory"). Segments closed before the store opened are sealed at once.
    pub seal_delay: Duration,
    /// A sealed block holds about this many bytes of records once decoded:
    /// larger blocks compress better and need fewer filters, smaller ones
    /// make a search that finds a block decode less.
    pub seal_block_bytes: u64,
    /// zstd's compression level for sealed blocks.
    pub seal_level: i32,
    /// Memory for decoded sealed blocks, shared by all readers (each
    /// reader holds a read's worth of the block it is in besides).
    pub block_cache_bytes: usize,
    /// What every file operation goes through: the real filesystem
    /// ([`StdFileSystem`]) unless a test puts one that fails on purpose
    /// here ([`crate::fault::FaultyFs`]) to check how the store survives a
    /// full disk, a failed fsync or a torn write.
    pub fs: Arc<dyn FileSystem>,
}

impl StoreConfig {
    /// Defaults: fsync every batch, 16 MiB segments, 32 KiB blocks, no
    /// retention limits, the newest 1 MiB in memory, sealing in the
    /// background 5 s after a segment closes, into blocks of 1 MiB at zstd
    /// level 9, 16 MiB of decoded
    /// blocks cached, the real filesystem.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            sync: SyncPolicy::EveryBatch,
            segment_bytes: 16 << 20,
            block_bytes: 32 << 10,
            retention: Retention::default(),
            recent_bytes: 1 << 20,
            seal_in_background: true,
            seal_delay: Duration::from_secs(5),
            seal_block_bytes: 1 << 20,
            seal_level: 9,
            block_cache_bytes: 16 << 20,
            fs: Arc::new(StdFileSystem),
        }
    }
}

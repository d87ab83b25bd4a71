//! The store handle: append with group commit, publish, count, retention.
//!
//! Writing and making visible are two steps. An append encodes its batch and
//! writes it with one positional write under the writer lock, then leaves
//! the lock and asks for a commit. Commits are serialised by the sync lock:
//! the first appender in takes every batch written so far, fsyncs once, and
//! publishes them all, so concurrent batches share one fsync (group commit).
//! Readers see only published blocks, so they never see an entry that is
//! not yet durable, nor half of a batch.

use crate::fs::{FileSystem, FsFile, StdFileSystem};
use crate::reader::Reader;
use crate::recent::{Chunk, ChunkPool};
use crate::recovery::{RecoveryEvent, RecoveryReport};
use crate::sealed::cache::BlockCache;
use crate::sealed::{self, SealSettings};
use crate::segment::{self, Block, Segment};
use crate::{record, NewEntry, StoreConfig, StoreError, SyncPolicy};
use logtap_core::{
    histogram_bucket, AppendReceipt, Backend, CommitHook, EntryLimits, Level, LogReader,
    ReadOptions, StoreStats,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A handle on an open store; cheap to clone, shared by every thread.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    /// The data directory's `LOCK` file, locked: while it is held no other
    /// store (in this process or another) opens the directory. Held by the
    /// handles, not by `Shared`, so it is released with the last clone
    /// even while readers live on: they only read, and a store reopened
    /// on the directory may start while the old one's readers finish.
    /// Dropping the last one also stops the sealer, before the lock goes.
    _owner: Arc<Owner>,
}

/// What the store's handles own together: the directory's lock, and the
/// sealer thread, which must be done with the directory before another
/// store may open it.
struct Owner {
    shared: Arc<Shared>,
    sealer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Dropped last (fields drop in order): the lock.
    lock: Box<dyn FsFile>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.seal_stop.store(true, Ordering::Relaxed);
        self.shared.wake_sealer();
        if let Some(sealer) = lock(&self.sealer).take() {
            let _ = sealer.join();
        }
        let _ = &self.lock;
    }
}

pub(crate) struct Shared {
    config: StoreConfig,
    /// The retention limits in force: `config.retention` at open, changed
    /// by [`Store::set_retention`] while the store runs.
    retention: Mutex<crate::Retention>,
    /// Oldest first. The last one is the one being written.
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    writer: Mutex<Writer>,
    /// Held while committing, so commits publish in write order and one
    /// fsync serves every batch written before it started.
    sync: Mutex<SyncState>,
    /// Newest published cursor: what readers may see.
    visible: AtomicU64,
    /// Wakes `wait_for` callers on every publish.
    wake: (Mutex<()>, Condvar),
    hooks: RwLock<Vec<CommitHook>>,
    /// Bytes of all segment files (written, not only published).
    bytes: AtomicU64,
    /// Published entries still held.
    entries: AtomicU64,
    /// Bytes readers have read from segment files (see [`StoreStats`]).
    pub(crate) file_read_bytes: AtomicU64,
    /// The fixed set of buffers the chunks of `Segment::recent` are made in.
    chunk_pool: Arc<ChunkPool>,
    recovery: RecoveryReport,
    /// Decoded sealed blocks, shared by every reader.
    pub(crate) cache: BlockCache,
    /// Set when closed segments wait to be sealed; the sealer thread waits
    /// on the condition variable for it.
    seal_wanted: (Mutex<bool>, Condvar),
    /// Set when the store closes: the sealer abandons its work (the
    /// segment stays as it was, whole) and ends.
    seal_stop: AtomicBool,
    /// Held while a segment is sealed: one at a time, whoever asked.
    sealing: Mutex<()>,
}

/// The state only the appending side touches.
struct Writer {
    segment: Arc<Segment>,
    /// The segment's file opened for writing; shared with the committer,
    /// which fsyncs it outside the writer lock.
    file: Arc<dyn FsFile>,
    /// Bytes written to the current segment.
    written: u64,
    next_cursor: u64,
    /// The current segment's last block as written (maybe not yet visible).
    open_block: Option<Block>,
    /// Written but not yet published, in write order.
    staged: Vec<Staged>,
    /// Reused encoding buffer: appends allocate nothing once warm.
    buf: Vec<u8>,
    /// Where each record of the batch in `buf` ends, for cutting it into
    /// chunks; reused like `buf`.
    record_ends: Vec<usize>,
    /// Set when a failure left the file in a state the store cannot vouch
    /// for; appends are refused until the store is reopened.
    poisoned: Option<String>,
}

/// Block summaries to publish for one segment, or the note that it is sealed.
struct Staged {
    segment: Arc<Segment>,
    /// Each replaces the segment's last visible block if it starts at the
    /// same offset, and is pushed otherwise.
    blocks: Vec<Block>,
    /// The batch's bytes, for readers to share once published.
    chunks: Vec<Chunk>,
    seal: bool,
}

struct SyncState {
    last_sync: Instant,
    /// Newest cursor known to be fsynced. Under `SyncPolicy::Interval` it
    /// trails `visible`; the background syncer closes the gap.
    durable: u64,
}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`, recovering from
    /// a crash: torn or corrupt records are cut or skipped, and
    /// [`Store::recovery_report`] says what.
    ///
    /// One store at a time owns a data directory: while one is open (any
    /// clone of it; readers do not count), opening the same directory
    /// again, from this process or another, fails with
    /// [`StoreError::Locked`].
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let dir = config.dir.clone();
        let fs = Arc::clone(&config.fs);
        fs.create_dir_all(&dir)
            .map_err(|e| StoreError::io("creating the data directory", &dir, e))?;
        let dir_lock = lock_dir(&*fs, &dir)?;
        crate::format::check(&*fs, &dir)?;
        let files = list_files(&*fs, &dir)?;
        for &base in &files.temporary {
            // A seal that did not finish: the record log is whole.
            let path = dir.join(sealed::temp_name(base));
            if let Err(error) = fs.remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "Could not remove an unfinished sealed segment.");
            }
        }
        let bases = files.bases();
        let mut segments = Vec::with_capacity(bases.len() + 1);
        let mut events = Vec::new();
        let mut after = 0u64;
        let mut bytes = 0u64;
        let mut entries = 0u64;
        let mut tail_end = 0u64;
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let has_log = files.logs.binary_search(&base).is_ok();
            let opened = if files.sealed.binary_search(&base).is_ok() {
                open_sealed(&*fs, &dir, base, has_log, after, &config, &mut events)?
            } else {
                None
            };
            let (segment, len) = match opened {
                Some(opened) => opened,
                None if has_log => {
                    let (segment, len) =
                        open_log(&*fs, &dir, base, after, is_last, &config, &mut events)?;
                    tail_end = len;
                    (segment, len)
                }
                None => continue,
            };
            if let Some(last) = segment
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .blocks
                .last()
            {
                after = after.max(last.last_cursor);
            }
            after = after.max(base.saturating_sub(1));
            // The next segment starts at the cursor after this one's last:
            // a later start means entries that are in no file. (Before the
            // oldest segment held, a gap is retention's doing, not damage.)
            if let Some(&next_base) = bases.get(i + 1) {
                if next_base > after.saturating_add(1) {
                    events.push(RecoveryEvent::MissingEntries {
                        path: dir.join(Segment::file_name(next_base)),
                        first_cursor: after + 1,
                        last_cursor: next_base - 1,
                    });
                }
            }
            bytes += len;
            entries += segment
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .blocks
                .iter()
                .map(|b| b.count_from(None))
                .sum::<u64>();
            segments.push(Arc::new(segment));
        }
        for event in &events {
            tracing::warn!(
                ?event,
                "Recovery cut or skipped bytes that are not whole, valid records."
            );
        }
        let next_cursor = after + 1;
        let (segment, file, written) = match segments.last() {
            Some(last) if last.sealed.is_none() => {
                let file = fs
                    .open_write(&last.path)
                    .map_err(|e| StoreError::io("opening the newest segment", &last.path, e))?;
                (Arc::clone(last), file, tail_end)
            }
            _ => {
                let (segment, file) = Segment::create(&*fs, &dir, next_cursor)?;
                sync_dir(&*fs, &dir)?;
                let segment = Arc::new(segment);
                segments.push(Arc::clone(&segment));
                (segment, file, 0)
            }
        };
        // Appends continue the last block only if it ends where they start.
        let open_block = {
            let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
            index
                .blocks
                .last()
                .copied()
                .filter(|b| b.end == written && !b.is_full(config.block_bytes))
        };
        let shared = Arc::new(Shared {
            writer: Mutex::new(Writer {
                segment,
                file: Arc::from(file),
                written,
                next_cursor,
                open_block,
                staged: Vec::new(),
                buf: Vec::new(),
                record_ends: Vec::new(),
                poisoned: None,
            }),
            segments: RwLock::new(segments),
            sync: Mutex::new(SyncState {
                last_sync: Instant::now(),
                durable: after,
            }),
            visible: AtomicU64::new(after),
            wake: (Mutex::new(()), Condvar::new()),
            hooks: RwLock::new(Vec::new()),
            bytes: AtomicU64::new(bytes),
            entries: AtomicU64::new(entries),
            file_read_bytes: AtomicU64::new(0),
            chunk_pool: Arc::new(ChunkPool::new(config.recent_bytes)),
            recovery: RecoveryReport { events },
            cache: BlockCache::new(config.block_cache_bytes),
            seal_wanted: (Mutex::new(true), Condvar::new()),
            seal_stop: AtomicBool::new(false),
            sealing: Mutex::new(()),
            retention: Mutex::new(config.retention),
            config,
        });
        let owner = Arc::new(Owner {
            shared: Arc::clone(&shared),
            sealer: Mutex::new(None),
            lock: dir_lock,
        });
        if let SyncPolicy::Interval(interval) = shared.config.sync {
            spawn_interval_syncer(Arc::downgrade(&shared), Arc::downgrade(&owner), interval);
        }
        if shared.config.seal_in_background {
            *lock(&owner.sealer) = spawn_sealer(Arc::clone(&shared));
        }
        let store = Store {
            shared,
            _owner: owner,
        };
        store.shared.enforce_retention();
        Ok(store)
    }

    /// Appends a batch with one write and at most one fsync (shared with
    /// concurrent batches), and returns once it is durable under the sync
    /// policy; only then do readers see it.
    pub fn append(&self, entries: &[NewEntry]) -> Result<AppendReceipt, StoreError> {
        if entries.is_empty() {
            return Ok(AppendReceipt {
                first_cursor: 0,
                last_cursor: 0,
                count: 0,
            });
        }
        let receipt = self.shared.write(None, entries)?;
        self.finish_append(receipt)
    }

    /// Appends a batch whose first entry takes cursor `first_cursor`, the
    /// next ones the cursors after it: how a local copy of a replicated log
    /// keeps the log's own sequence numbers, so that a cursor names the same
    /// entry on every node. A `first_cursor` beyond the next cursor leaves a
    /// gap (the log dropped those entries before this copy saw them) and
    /// starts a new segment there; one the store has passed is refused
    /// ([`StoreError::CursorBehind`]), since cursors are never reused.
    pub fn append_at(
        &self,
        first_cursor: u64,
        entries: &[NewEntry],
    ) -> Result<AppendReceipt, StoreError> {
        if entries.is_empty() {
            return Ok(AppendReceipt::default());
        }
        let receipt = self.shared.write(Some(first_cursor), entries)?;
        self.finish_append(receipt)
    }

    /// The commit half of an append: durable under the sync policy, then
    /// visible.
    fn finish_append(&self, receipt: AppendReceipt) -> Result<AppendReceipt, StoreError> {
        let fsync = match self.shared.config.sync {
            SyncPolicy::EveryBatch => true,
            SyncPolicy::Never => false,
            SyncPolicy::Interval(interval) => {
                lock(&self.shared.sync).last_sync.elapsed() >= interval
            }
        };
        self.shared.commit(receipt.last_cursor, fsync)?;
        Ok(receipt)
    }

    /// A reader positioned by `options`. Fails with
    /// [`StoreError::CursorDeleted`] when `options.after` is older than what
    /// retention kept.
    pub fn reader(&self, options: ReadOptions) -> Result<Reader, StoreError> {
        self.check_not_deleted(options.after)?;
        Ok(Reader::new(Arc::clone(&self.shared), options))
    }

    /// The exact number of entries a reader with these options would yield
    /// now (bounded by `options.before`, else by the newest visible entry).
    /// Costs O(blocks): whole blocks are counted from their summaries; only
    /// blocks straddling a time or cursor bound are decoded.
    pub fn count(&self, options: &ReadOptions) -> Result<u64, StoreError> {
        self.check_not_deleted(options.after)?;
        let low = options.after.map_or(0, |after| after.saturating_add(1));
        let visible_end = self.last_cursor().saturating_add(1);
        let high = options
            .before
            .map_or(visible_end, |before| before.min(visible_end));
        let filter = &options.filter;
        let segments: Vec<Arc<Segment>> = self.shared.segments().clone();
        let mut total = 0u64;
        let mut buf = segment::ReadBuffer::default();
        for segment in &segments {
            // Whole blocks are added up under the lock; only the few that
            // straddle a bound are copied out, to be decoded after it.
            let straddling: Vec<(usize, Block)> = {
                let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
                let Some(summary) = index.summary else {
                    continue;
                };
                if summary.first_cursor >= high
                    || summary.last_cursor < low
                    || !summary.may_match(filter)
                {
                    continue;
                }
                if summary.first_cursor >= low
                    && summary.last_cursor < high
                    && summary.within_time(filter)
                {
                    total += summary.count_from(filter.min_level);
                    continue;
                }
                let from = index.block_for(low);
                let mut straddling = Vec::new();
                for (at, block) in index.blocks[from..]
                    .iter()
                    .enumerate()
                    .take_while(|(_, block)| block.first_cursor < high)
                    .filter(|(_, block)| block.may_match(filter))
                {
                    if block.first_cursor >= low
                        && block.last_cursor < high
                        && block.within_time(filter)
                    {
                        total += block.count_from(filter.min_level);
                    } else {
                        straddling.push((from + at, *block));
                    }
                }
                straddling
            };
            for (at, block) in &straddling {
                let cache = &self.shared.cache;
                let read = segment::for_each_in_block(
                    segment,
                    *at,
                    block,
                    &mut buf,
                    cache,
                    |entry, _| {
                        let in_range = (low..high).contains(&entry.cursor);
                        if in_range && filter.passes(entry.level, entry.timestamp) {
                            total += 1;
                        }
                    },
                )?;
                self.shared
                    .file_read_bytes
                    .fetch_add(read, Ordering::Relaxed);
            }
        }
        Ok(total)
    }

    /// See [`Backend::histogram`]: blocks inside one bucket (and inside
    /// the cursor range and the filter's time range) are counted from
    /// their summaries, under the index lock; the few that straddle an
    /// edge or a bound are decoded after it, each once.
    pub fn histogram(
        &self,
        options: &ReadOptions,
        edges: &[i64],
    ) -> Result<Vec<[u64; Level::COUNT]>, StoreError> {
        self.check_not_deleted(options.after)?;
        let mut counts = vec![[0u64; Level::COUNT]; edges.len().saturating_sub(1)];
        let low = options.after.map_or(0, |after| after.saturating_add(1));
        let visible_end = self.last_cursor().saturating_add(1);
        let high = options
            .before
            .map_or(visible_end, |before| before.min(visible_end));
        let filter = &options.filter;
        let from_level = filter.min_level.map_or(0, |level| level as usize);
        let segments: Vec<Arc<Segment>> = self.shared.segments().clone();
        let mut buf = segment::ReadBuffer::default();
        for segment in &segments {
            let straddling: Vec<(usize, Block)> = {
                let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
                let Some(summary) = index.summary else {
                    continue;
                };
                if summary.first_cursor >= high
                    || summary.last_cursor < low
                    || !summary.may_match(filter)
                {
                    continue;
                }
                let from = index.block_for(low);
                let mut straddling = Vec::new();
                for (at, block) in index.blocks[from..]
                    .iter()
                    .enumerate()
                    .take_while(|(_, block)| block.first_cursor < high)
                    .filter(|(_, block)| block.may_match(filter))
                {
                    let bucket = histogram_bucket(edges, block.min_timestamp)
                        .filter(|b| histogram_bucket(edges, block.max_timestamp) == Some(*b));
                    match bucket {
                        Some(bucket)
                            if block.first_cursor >= low
                                && block.last_cursor < high
                                && block.within_time(filter) =>
                        {
                            let into = &mut counts[bucket][from_level..];
                            for (sum, count) in into.iter_mut().zip(&block.counts[from_level..]) {
                                *sum += u64::from(*count);
                            }
                        }
                        _ => straddling.push((from + at, *block)),
                    }
                }
                straddling
            };
            for (at, block) in &straddling {
                let mut count = |cursor: u64, timestamp: i64, level: Level| {
                    let in_range = (low..high).contains(&cursor);
                    if in_range && filter.passes(level, timestamp) {
                        if let Some(bucket) = histogram_bucket(edges, timestamp) {
                            counts[bucket][level as usize] += 1;
                        }
                    }
                };
                let read = if segment.sealed.is_some() {
                    // Only the front of the block's columns: cursors,
                    // times and levels.
                    segment.heads(*at, block, |head| {
                        count(head.cursor, head.timestamp, head.level)
                    })?
                } else {
                    segment::for_each_in_block(
                        segment,
                        *at,
                        block,
                        &mut buf,
                        &self.shared.cache,
                        |entry, _| count(entry.cursor, entry.timestamp, entry.level),
                    )?
                };
                self.shared
                    .file_read_bytes
                    .fetch_add(read, Ordering::Relaxed);
            }
        }
        Ok(counts)
    }

    /// Newest visible cursor; 0 when nothing was ever stored.
    pub fn last_cursor(&self) -> u64 {
        self.shared.visible.load(Ordering::Acquire)
    }

    /// Oldest cursor still held; resuming after `oldest_cursor() - 1` is the
    /// earliest resume that loses nothing.
    pub fn oldest_cursor(&self) -> u64 {
        self.shared.oldest_cursor()
    }

    /// Blocks until an entry after `cursor` is visible or `timeout` passes;
    /// returns the newest visible cursor.
    pub fn wait_for(&self, cursor: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let (mutex, condvar) = &self.shared.wake;
        let mut guard = lock(mutex);
        loop {
            let last = self.last_cursor();
            let now = Instant::now();
            if last > cursor || now >= deadline {
                return last;
            }
            guard = condvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Calls `hook` with the newest visible cursor after every append that
    /// became visible. Hooks run on the appending thread, so they must be
    /// quick (e.g. send on a `tokio::sync::watch`).
    pub fn on_commit(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        self.shared
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(hook));
    }

    /// Forces everything written to disk and visible (for shutdown under a
    /// lazy policy).
    pub fn sync(&self) -> Result<(), StoreError> {
        let written = lock(&self.shared.writer).next_cursor - 1;
        self.shared.commit(written, true)
    }

    /// Applies the retention limits now. Appends do this themselves; a
    /// server calls it periodically too, so age limits apply while no
    /// entries arrive.
    pub fn enforce_retention(&self) {
        self.shared.enforce_retention();
    }

    /// Replaces the retention limits (a server reloading its
    /// configuration) and applies the new ones at once.
    pub fn set_retention(&self, retention: crate::Retention) {
        *lock(&self.shared.retention) = retention;
        self.shared.enforce_retention();
    }

    /// The retention limits in force.
    pub fn retention(&self) -> crate::Retention {
        *lock(&self.shared.retention)
    }

    /// Seals every closed segment now, on this thread, and returns once
    /// none is left: what the background sealer does (see
    /// [`StoreConfig::seal_in_background`]), for tools and tests that want
    /// it done at a known moment.
    pub fn seal_now(&self) -> Result<(), StoreError> {
        self.shared.seal_closed(Duration::ZERO).map(|_| ())
    }

    /// Bytes of decoded blocks kept in the shared cache.
    pub fn cached_bytes(&self) -> usize {
        self.shared.cache.bytes()
    }

    /// Sizes and cursor bounds.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            segments: self.shared.segments().len() as u64,
            unsealed_segments: self
                .shared
                .segments()
                .iter()
                .filter(|segment| segment.sealed.is_none())
                .count() as u64,
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            entries: self.shared.entries.load(Ordering::Relaxed),
            oldest_cursor: self.shared.oldest_cursor(),
            last_cursor: self.last_cursor(),
            recent_bytes: self
                .shared
                .segments()
                .iter()
                .map(|segment| {
                    segment
                        .recent
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .bytes() as u64
                })
                .sum(),
            file_read_bytes: self.shared.file_read_bytes.load(Ordering::Relaxed),
        }
    }

    /// What recovery cut or skipped when the store was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.shared.recovery.clone()
    }

    fn check_not_deleted(&self, after: Option<u64>) -> Result<(), StoreError> {
        let oldest = self.oldest_cursor();
        // Deleted means before the oldest segment held (retention deletes
        // whole segments from the front). Cursors after its start that no
        // record holds were lost to damage, which recovery reported; a
        // reader resuming among them goes on, as one reading through them
        // does.
        let first_held = self
            .shared
            .segments()
            .first()
            .map_or(oldest, |segment| segment.base_cursor);
        match after {
            Some(after) if after.saturating_add(1) < oldest.min(first_held) => {
                Err(StoreError::CursorDeleted {
                    requested: after,
                    oldest,
                })
            }
            _ => Ok(()),
        }
    }
}

/// The embedded store behind the backend interface; each method is the
/// inherent one of the same name, which the store's own tests and
/// benchmarks call without a virtual call.
impl Backend for Store {
    fn append(&self, entries: &[NewEntry]) -> Result<AppendReceipt, StoreError> {
        Store::append(self, entries)
    }

    fn reader(&self, options: ReadOptions) -> Result<Box<dyn LogReader>, StoreError> {
        Ok(Box::new(Store::reader(self, options)?))
    }

    fn count(&self, options: &ReadOptions) -> Result<u64, StoreError> {
        Store::count(self, options)
    }

    fn histogram(
        &self,
        options: &ReadOptions,
        edges: &[i64],
    ) -> Result<Vec<[u64; Level::COUNT]>, StoreError> {
        Store::histogram(self, options, edges)
    }

    fn last_cursor(&self) -> u64 {
        Store::last_cursor(self)
    }

    fn oldest_cursor(&self) -> u64 {
        Store::oldest_cursor(self)
    }

    fn wait_for(&self, cursor: u64, timeout: Duration) -> u64 {
        Store::wait_for(self, cursor, timeout)
    }

    fn on_commit(&self, hook: CommitHook) {
        Store::on_commit(self, hook)
    }

    fn sync(&self) -> Result<(), StoreError> {
        Store::sync(self)
    }

    fn enforce_retention(&self) {
        Store::enforce_retention(self)
    }

    fn stats(&self) -> StoreStats {
        Store::stats(self)
    }

    fn limits(&self) -> EntryLimits {
        record::LIMITS
    }
}

impl Shared {
    pub(crate) fn segments(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Segment>>> {
        self.segments.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The segment that may hold `cursor`: the last whose base is at or
    /// before it, or the oldest when `cursor` is older than every base.
    pub(crate) fn segment_for(&self, cursor: u64) -> Option<Arc<Segment>> {
        let segments = self.segments();
        let after = segments.partition_point(|s| s.base_cursor <= cursor);
        segments.get(after.saturating_sub(1)).cloned()
    }

    pub(crate) fn segment_after(&self, base_cursor: u64) -> Option<Arc<Segment>> {
        let segments = self.segments();
        let at = segments.partition_point(|s| s.base_cursor <= base_cursor);
        segments.get(at).cloned()
    }

    pub(crate) fn segment_before(&self, base_cursor: u64) -> Option<Arc<Segment>> {
        let segments = self.segments();
        let at = segments.partition_point(|s| s.base_cursor < base_cursor);
        at.checked_sub(1).and_then(|i| segments.get(i).cloned())
    }

    /// Asks the sealer thread to look for closed segments.
    fn wake_sealer(&self) {
        let (wanted, condvar) = &self.seal_wanted;
        *lock(wanted) = true;
        condvar.notify_all();
    }

    /// Seals every record log closed at least `delay` ago, oldest first
    /// (steps 1 to 4 of the `sealed` module's documentation), until none
    /// is left or the store closes. Returns how long until the next closed
    /// one is old enough, if one is waiting.
    fn seal_closed(&self, delay: Duration) -> Result<Option<Duration>, StoreError> {
        let _one_at_a_time = lock(&self.sealing);
        loop {
            if self.seal_stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let mut wait = None;
            let next = self
                .segments()
                .iter()
                .find(|segment| {
                    if segment.sealed.is_some() {
                        return false;
                    }
                    let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
                    let age = index.closed_at.map_or(delay, |at| at.elapsed());
                    if index.closed && age < delay {
                        wait = Some(delay - age);
                    }
                    index.closed && age >= delay
                })
                .cloned();
            let Some(log) = next else {
                return Ok(wait);
            };
            let settings = seal_settings(&self.config);
            let fs = &*self.config.fs;
            let Some((sealed, len)) = sealed::seal(
                fs,
                &self.config.dir,
                &log,
                settings,
                &self.cache,
                &self.seal_stop,
            )?
            else {
                return Ok(None);
            };
            let sealed = Arc::new(sealed);
            let swapped = {
                let mut segments = self.segments.write().unwrap_or_else(|e| e.into_inner());
                match segments.iter().position(|s| Arc::ptr_eq(s, &log)) {
                    Some(at) => {
                        segments[at] = Arc::clone(&sealed);
                        true
                    }
                    None => false,
                }
            };
            if !swapped {
                // Retention deleted the segment meanwhile.
                let _ = fs.remove_file(&sealed.path);
                continue;
            }
            let old_len = log.file.len().unwrap_or(0);
            self.bytes.fetch_add(len, Ordering::Relaxed);
            self.bytes.fetch_sub(
                old_len.min(self.bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            if let Err(error) = fs.remove_file(&log.path) {
                // Harmless: the next open removes it (the sealed file is whole).
                tracing::warn!(path = %log.path.display(), %error, "Could not remove a sealed record log.");
            }
            tracing::debug!(path = %sealed.path.display(), bytes = len, was = old_len, "Sealed a segment.");
        }
    }

    pub(crate) fn oldest_cursor(&self) -> u64 {
        let segments = self.segments();
        for segment in segments.iter() {
            let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
            if let Some(first) = index.blocks.first() {
                return first.first_cursor;
            }
        }
        self.visible.load(Ordering::Acquire) + 1
    }

    /// Step one of an append: assign cursors (from `at` when given),
    /// encode, write.
    fn write(&self, at: Option<u64>, entries: &[NewEntry]) -> Result<AppendReceipt, StoreError> {
        let mut writer = lock(&self.writer);
        if let Some(reason) = &writer.poisoned {
            return Err(StoreError::Poisoned(reason.clone()));
        }
        match at {
            Some(requested) if requested < writer.next_cursor => {
                return Err(StoreError::CursorBehind {
                    requested,
                    next: writer.next_cursor,
                });
            }
            Some(requested) if requested > writer.next_cursor => {
                // A segment's records are consecutive from the cursor it is
                // named after, so a gap starts a new segment there.
                writer.next_cursor = requested;
                self.roll(&mut writer)?;
            }
            _ if writer.written >= self.config.segment_bytes => self.roll(&mut writer)?,
            _ => {}
        }
        let first_cursor = writer.next_cursor;
        let writer = &mut *writer;
        writer.buf.clear();
        let mut cursor = first_cursor;
        let mut staged_blocks = Vec::new();
        let mut block = writer.open_block;
        let mut offset = writer.written;
        writer.record_ends.clear();
        for entry in entries {
            let start = writer.buf.len();
            record::encode(&mut writer.buf, cursor, entry)?;
            writer.record_ends.push(writer.buf.len());
            let len = (writer.buf.len() - start) as u64;
            let current = block.get_or_insert_with(|| Block::new(offset, cursor, entry.timestamp));
            current.add(cursor, entry.timestamp, entry.level, len);
            if current.is_full(self.config.block_bytes) {
                staged_blocks.push(*current);
                block = None;
            }
            offset += len;
            cursor += 1;
        }
        staged_blocks.extend(block);
        if let Err(error) = writer.file.write_all_at(&writer.buf, writer.written) {
            // Cut back whatever part of the batch reached the file, so the
            // next append starts on a record boundary and nothing half
            // written is ever scanned as data.
            if let Err(cut) = writer.file.set_len(writer.written) {
                writer.poisoned = Some(format!("a failed write could not be cut back: {cut}"));
            }
            return Err(StoreError::io(
                "writing a batch",
                &writer.segment.path,
                error,
            ));
        }
        // With `recent_bytes` 0 the pool has no buffers and this keeps nothing.
        let chunks = Chunk::cut(
            writer.written,
            first_cursor,
            &writer.buf,
            writer.record_ends.iter().copied(),
            &self.chunk_pool,
        );
        writer.written = offset;
        writer.open_block = block;
        writer.next_cursor = cursor;
        self.bytes
            .fetch_add(writer.buf.len() as u64, Ordering::Relaxed);
        let segment = Arc::clone(&writer.segment);
        writer.staged.push(Staged {
            segment,
            blocks: staged_blocks,
            chunks,
            seal: false,
        });
        Ok(AppendReceipt {
            first_cursor,
            last_cursor: cursor - 1,
            count: entries.len() as u64,
        })
    }

    /// Seals the current segment (durably, unless the policy never syncs)
    /// and starts a new one named after the next cursor.
    fn roll(&self, writer: &mut Writer) -> Result<(), StoreError> {
        if self.config.sync != SyncPolicy::Never {
            writer.file.sync_data().map_err(|e| {
                StoreError::io("syncing a segment before rolling", &writer.segment.path, e)
            })?;
        }
        let fs = &*self.config.fs;
        let (segment, file) = Segment::create(fs, &self.config.dir, writer.next_cursor)?;
        sync_dir(fs, &self.config.dir)?;
        let segment = Arc::new(segment);
        let old = std::mem::replace(&mut writer.segment, Arc::clone(&segment));
        writer.staged.push(Staged {
            segment: old,
            blocks: Vec::new(),
            chunks: Vec::new(),
            seal: true,
        });
        writer.file = Arc::from(file);
        writer.written = 0;
        writer.open_block = None;
        self.segments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(segment);
        Ok(())
    }

    /// Step two: make everything written up to `cursor` durable (one fsync
    /// for all batches waiting) and visible.
    fn commit(&self, cursor: u64, fsync: bool) -> Result<(), StoreError> {
        let mut sync = lock(&self.sync);
        let visible = self.visible.load(Ordering::Acquire);
        if visible >= cursor && (!fsync || sync.durable >= cursor) {
            return Ok(());
        }
        let (staged, file, path, target) = {
            let mut writer = lock(&self.writer);
            if let Some(reason) = &writer.poisoned {
                return Err(StoreError::Poisoned(reason.clone()));
            }
            let staged = std::mem::take(&mut writer.staged);
            (
                staged,
                Arc::clone(&writer.file),
                writer.segment.path.clone(),
                writer.next_cursor - 1,
            )
        };
        if fsync {
            if let Err(error) = file.sync_data() {
                // After a failed fsync the kernel may have dropped the dirty
                // pages: the store cannot say what is on disk, so it stops
                // writing until reopened, where recovery finds out.
                lock(&self.writer).poisoned = Some(format!("fsync failed: {error}"));
                return Err(StoreError::io("syncing a segment", &path, error));
            }
            sync.last_sync = Instant::now();
            sync.durable = target;
        }
        if target > visible || !staged.is_empty() {
            self.publish(staged, target);
        }
        drop(sync);
        self.enforce_retention();
        Ok(())
    }

    fn publish(&self, staged: Vec<Staged>, target: u64) {
        let mut published = 0u64;
        for item in staged {
            let mut index = item
                .segment
                .index
                .write()
                .unwrap_or_else(|e| e.into_inner());
            for block in item.blocks {
                published += index.publish(block);
            }
            if item.seal && !index.closed {
                index.closed = true;
                index.closed_at = Some(std::time::Instant::now());
            }
            drop(index);
            if item.seal {
                self.wake_sealer();
            }
            // After the blocks: a chunk only ever holds visible records.
            let mut recent = item
                .segment
                .recent
                .write()
                .unwrap_or_else(|e| e.into_inner());
            for chunk in item.chunks {
                recent.push(chunk, self.config.recent_bytes);
            }
            if item.seal {
                // Readers move on to the next segment; those still here
                // are behind, and read the file.
                recent.clear();
            }
        }
        self.entries.fetch_add(published, Ordering::Relaxed);
        self.visible.store(target, Ordering::Release);
        {
            let _guard = lock(&self.wake.0);
            self.wake.1.notify_all();
        }
        for hook in self.hooks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            hook(target);
        }
    }

    /// Deletes whole oldest segments beyond the size or age limit. Only
    /// sealed segments go; the newest one always stays.
    fn enforce_retention(&self) {
        let retention = *lock(&self.retention);
        if retention.max_bytes.is_none() && retention.max_age.is_none() {
            return;
        }
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let mut segments = self.segments.write().unwrap_or_else(|e| e.into_inner());
        while segments.len() > 1 {
            let oldest = &segments[0];
            let (sealed, max_ts, count) = {
                let index = oldest.index.read().unwrap_or_else(|e| e.into_inner());
                let max_ts = index.blocks.iter().map(|b| b.max_timestamp).max();
                (
                    index.closed,
                    max_ts,
                    index.blocks.iter().map(|b| b.count_from(None)).sum::<u64>(),
                )
            };
            let too_big = retention
                .max_bytes
                .is_some_and(|max| self.bytes.load(Ordering::Relaxed) > max);
            let too_old = retention.max_age.is_some_and(|age| {
                max_ts.is_none_or(|ts| ts < now_ns.saturating_sub(age.as_nanos() as i64))
            });
            if !sealed || !(too_big || too_old) {
                break;
            }
            let size = oldest.file.len().unwrap_or(0);
            if let Err(error) = self.config.fs.remove_file(&oldest.path) {
                tracing::warn!(path = %oldest.path.display(), %error, "Retention could not delete a segment.");
                break;
            }
            tracing::info!(path = %oldest.path.display(), bytes = size, entries = count, "Retention deleted the oldest segment.");
            self.cache.forget_segment(oldest.base_cursor);
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            self.entries.fetch_sub(count, Ordering::Relaxed);
            segments.remove(0);
        }
    }
}

/// Under `SyncPolicy::Interval`, makes sure nothing waits longer than one
/// interval for its fsync even when no further append comes to trigger it.
/// Holds only weak references, so it ends once the store is dropped: with
/// the last handle (`owner` is the directory's lock), not the last reader,
/// as a store reopened on the directory then owns its files.
fn spawn_interval_syncer(shared: Weak<Shared>, owner: Weak<Owner>, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("logtap-store-sync".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            if owner.strong_count() == 0 {
                return;
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let written = lock(&shared.writer).next_cursor - 1;
            let dirty = lock(&shared.sync).durable < written;
            if dirty {
                if let Err(error) = shared.commit(written, true) {
                    tracing::error!(%error, "The periodic fsync failed.");
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "Could not start the periodic fsync thread; appends will sync themselves.");
    }
}

/// The segment files in a data directory, oldest first: for tools (and
/// tests) that copy, inspect or damage the files themselves.
pub fn segment_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut bases = list_segments(&StdFileSystem, dir)?;
    bases.sort_unstable();
    Ok(bases
        .into_iter()
        .map(|base| dir.join(Segment::file_name(base)))
        .collect())
}

/// The base cursors of the segment files in `dir`; other files (`LOCK`)
/// are not segments and are left out.
fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>, StoreError> {
    Ok(list_files(fs, dir)?.logs)
}

/// The files of a data directory, by kind, each list sorted by base cursor.
struct Files {
    /// Record logs (`.seg`).
    logs: Vec<u64>,
    /// Sealed segments (`.sealed`).
    sealed: Vec<u64>,
    /// Seals that did not finish (`.sealed.tmp`).
    temporary: Vec<u64>,
}

impl Files {
    /// Every base cursor a segment is held under, once.
    fn bases(&self) -> Vec<u64> {
        let mut bases: Vec<u64> = self.logs.iter().chain(&self.sealed).copied().collect();
        bases.sort_unstable();
        bases.dedup();
        bases
    }
}

fn list_files(fs: &dyn FileSystem, dir: &Path) -> Result<Files, StoreError> {
    let names = fs
        .read_dir(dir)
        .map_err(|e| StoreError::io("listing the data directory", dir, e))?;
    let mut files = Files {
        logs: Vec::new(),
        sealed: Vec::new(),
        temporary: Vec::new(),
    };
    for name in names.iter().filter_map(|name| name.to_str()) {
        if let Some(base) = Segment::parse_file_name(name) {
            files.logs.push(base);
        } else if let Some(base) = sealed::parse_file_name(name) {
            files.sealed.push(base);
        } else if let Some(base) = sealed::parse_temp_name(name) {
            files.temporary.push(base);
        }
    }
    files.logs.sort_unstable();
    files.sealed.sort_unstable();
    Ok(files)
}

/// Opens the sealed segment `base`. A record log of the same name beside
/// it is a seal's leftover (the sealed file was complete before it was
/// renamed into place) and is removed. A sealed file whose footer cannot
/// be used is set aside for the record log when there is one, and rebuilt
/// from its own blocks when there is none.
fn open_sealed(
    fs: &dyn FileSystem,
    dir: &Path,
    base: u64,
    has_log: bool,
    after: u64,
    config: &StoreConfig,
    events: &mut Vec<RecoveryEvent>,
) -> Result<Option<(Segment, u64)>, StoreError> {
    let path = dir.join(sealed::file_name(base));
    match Segment::open_sealed(fs, &path, base)? {
        Ok(opened) => {
            if has_log {
                let log = dir.join(Segment::file_name(base));
                tracing::info!(path = %log.display(), "Removing a record log that was sealed before the last stop.");
                fs.remove_file(&log)
                    .map_err(|e| StoreError::io("removing a sealed record log", &log, e))?;
            }
            Ok(Some(opened))
        }
        Err(reason) if has_log => {
            tracing::warn!(path = %path.display(), reason, "A sealed segment is unusable; its record log is still there and will be sealed again.");
            fs.remove_file(&path)
                .map_err(|e| StoreError::io("removing an unusable sealed segment", &path, e))?;
            Ok(None)
        }
        Err(reason) => {
            tracing::warn!(path = %path.display(), reason, "A sealed segment's footer is unusable; rebuilding it from its blocks.");
            let (rebuilt, _) = sealed::rebuild(fs, dir, base, after, seal_settings(config))?;
            events.push(RecoveryEvent::RebuiltIndex { path, reason });
            Ok(rebuilt)
        }
    }
}

/// How sealing cuts and compresses, from the store's configuration.
fn seal_settings(config: &StoreConfig) -> SealSettings {
    SealSettings {
        block_bytes: config.seal_block_bytes,
        level: config.seal_level,
    }
}

/// Opens the record log `base`, checking every record (see
/// `segment::scan`); a torn tail of the newest is cut off. Returns the
/// segment and the file's length.
fn open_log(
    fs: &dyn FileSystem,
    dir: &Path,
    base: u64,
    after: u64,
    is_last: bool,
    config: &StoreConfig,
    events: &mut Vec<RecoveryEvent>,
) -> Result<(Segment, u64), StoreError> {
    let path = dir.join(Segment::file_name(base));
    let data = fs
        .read(&path)
        .map_err(|e| StoreError::io("reading a segment", &path, e))?;
    let scan = segment::scan(
        &path,
        &data,
        after.max(base.saturating_sub(1)),
        config.block_bytes,
    );
    events.extend(scan.events);
    let mut len = data.len() as u64;
    if scan.garbage_tail > 0 {
        if is_last {
            // A torn write at the end of the newest file: cut it off so
            // appends continue right after the last whole record.
            let file = fs
                .open_write(&path)
                .map_err(|e| StoreError::io("opening a segment to repair it", &path, e))?;
            file.set_len(scan.valid_end)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io("cutting a torn tail", &path, e))?;
            events.push(RecoveryEvent::TruncatedTail {
                path: path.clone(),
                offset: scan.valid_end,
                bytes: scan.garbage_tail,
            });
            len = scan.valid_end;
        } else {
            events.push(RecoveryEvent::SkippedCorruption {
                path: path.clone(),
                offset: scan.valid_end,
                bytes: scan.garbage_tail,
            });
        }
    }
    let file = fs
        .open_read(&path)
        .map_err(|e| StoreError::io("opening a segment", &path, e))?;
    let segment = Segment {
        path,
        file,
        base_cursor: base,
        index: RwLock::new(segment::SegmentIndex::from_blocks(scan.blocks, !is_last)),
        recent: RwLock::default(),
        sealed: None,
    };
    Ok((segment, len))
}

/// Starts the thread that seals closed segments in the background. It
/// holds the store's shared state, so the store's owner stops and joins
/// it before the directory's lock is released.
fn spawn_sealer(shared: Arc<Shared>) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("logtap-store-seal".into())
        .spawn(move || {
            let mut next = None;
            loop {
                {
                    let (wanted, condvar) = &shared.seal_wanted;
                    let mut wanted = lock(wanted);
                    while !*wanted && !shared.seal_stop.load(Ordering::Relaxed) {
                        match next {
                            None => {
                                wanted = condvar.wait(wanted).unwrap_or_else(|e| e.into_inner())
                            }
                            // A closed segment becomes old enough then.
                            Some(wait) => {
                                let (guard, timeout) = condvar
                                    .wait_timeout(wanted, wait)
                                    .unwrap_or_else(|e| e.into_inner());
                                wanted = guard;
                                if timeout.timed_out() {
                                    break;
                                }
                            }
                        }
                    }
                    *wanted = false;
                }
                if shared.seal_stop.load(Ordering::Relaxed) {
                    return;
                }
                next = match shared.seal_closed(shared.config.seal_delay) {
                    Ok(wait) => wait,
                    Err(error) => {
                        tracing::error!(%error, "Sealing a segment failed; it stays a record log and is tried again on the next roll.");
                        None
                    }
                };
            }
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::error!(%error, "Could not start the sealing thread; segments stay record logs.");
            None
        }
    }
}

/// Makes a file's creation durable: its directory entry is data too.
fn sync_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(), StoreError> {
    fs.sync_dir(dir)
        .map_err(|e| StoreError::io("syncing the data directory", dir, e))
}

/// The file in a data directory whose lock says a store has it open.
const LOCK_FILE: &str = "LOCK";

/// Takes the data directory's lock and writes this process's pid into the
/// lock file, for a refused second opener to name. The pid is only a
/// courtesy: a store whose pid cannot be written (a full disk) still holds
/// the lock and opens.
fn lock_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn FsFile>, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = match fs.lock(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
            let holder_pid = fs.read(&path).ok().and_then(|bytes| {
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
            });
            return Err(StoreError::Locked {
                dir: dir.to_path_buf(),
                holder_pid,
            });
        }
        Err(error) => return Err(StoreError::io("locking the data directory", &path, error)),
    };
    let pid = format!("{}\n", std::process::id());
    if let Err(error) = file
        .set_len(0)
        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
    {
        tracing::warn!(path = %path.display(), %error, "Could not write this process's pid into the lock file.");
    }
    Ok(file)
}

/// Locks a mutex, recovering from poisoning: the data it guards is kept
/// consistent by the code itself, not by unwinding.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

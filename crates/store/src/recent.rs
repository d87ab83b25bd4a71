//! The newest published bytes of a segment, kept in memory for the readers
//! that follow the newest entries.
//!
//! A thousand live tails woken by one commit would otherwise each read the
//! same new bytes from the file (a system call and a copy each) and check
//! every record's CRC again. Instead the writer's bytes are kept, once, in
//! [`Chunk`]s of whole records that every reader at the live edge shares.
//! The memory is fixed when the store opens ([`ChunkPool`]), whatever the
//! number of readers.

use crate::{record, EntryRef};
use logtap_core::{Derived, SharedRecords};
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// Whole records as the writer wrote them to a segment, starting at
/// `offset` in its file. Shared by every reader that takes them from
/// memory; immutable once made.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// Where the first record starts in the segment file: readers look
    /// chunks up by their own file offset.
    pub offset: u64,
    /// Shared by `Recent` and every reader holding the chunk.
    pub bytes: Arc<ChunkBytes>,
}

/// A chunk's bytes. When the last holder (`Recent` or a reader) lets go,
/// the buffer goes back to the pool it came from.
pub(crate) struct ChunkBytes {
    /// A buffer of the pool's fixed set.
    bytes: Vec<u8>,
    /// The cursor of the first record: a batch's cursors are consecutive,
    /// so a reader taking the rest of a chunk knows where it ends without
    /// reading every record (see [`logtap_core::Run`]).
    pub first_cursor: u64,
    /// How many records the chunk holds.
    pub records: usize,
    /// What users of the store derived from these records once for every
    /// reader (the server's encoded responses), one value per type, gone
    /// with the chunk.
    derived: Derived,
    /// Weak, so that a chunk a reader drops after its store is gone just
    /// frees its buffer.
    pool: Weak<ChunkPool>,
}

impl std::fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBytes")
            .field("len", &self.bytes.len())
            .field("first_cursor", &self.first_cursor)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl ChunkBytes {
    /// Bytes that belong to no pool.
    #[cfg(test)]
    pub(crate) fn unpooled(bytes: Vec<u8>) -> ChunkBytes {
        ChunkBytes::detached(bytes, 0, 0)
    }

    /// Records made elsewhere than the writer's batches (a sealed block,
    /// decoded), that go back to no pool: their cursors need not follow
    /// each other, so they are never taken as a [`logtap_core::Run`].
    pub(crate) fn detached(bytes: Vec<u8>, first_cursor: u64, records: usize) -> ChunkBytes {
        ChunkBytes {
            bytes,
            first_cursor,
            records,
            derived: Derived::default(),
            pool: Weak::new(),
        }
    }

    /// The cursor of the last record.
    pub fn last_cursor(&self) -> u64 {
        self.first_cursor + self.records.saturating_sub(1) as u64
    }
}

/// Runs (`Reader::take_run`) borrow a chunk through the core crate's
/// interface; the records are this store's, so it decodes them.
impl SharedRecords for ChunkBytes {
    fn first_cursor(&self) -> u64 {
        self.first_cursor
    }

    fn records(&self) -> usize {
        self.records
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn decode<'a>(&self, bytes: &'a [u8]) -> Option<(EntryRef<'a>, usize)> {
        // These bytes were made by this process's writer and never came
        // from the disk: there is no CRC to check, only the framing.
        record::decode_checked(bytes).ok()
    }

    fn derived(&self) -> &Derived {
        &self.derived
    }
}

impl std::ops::Deref for ChunkBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for ChunkBytes {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.put(std::mem::take(&mut self.bytes));
        }
    }
}

impl Chunk {
    /// Cuts the records of one written batch, which starts at file offset
    /// `offset` with cursor `first_cursor`, into chunks of about `CHUNK_BYTES`, in buffers from
    /// `pool`, leaving out what finds no buffer. `ends` are the offsets in
    /// `batch` where records end, in order; chunks only end there, so a
    /// reader never finds half a record in one.
    pub fn cut(
        offset: u64,
        first_cursor: u64,
        batch: &[u8],
        ends: impl IntoIterator<Item = usize>,
        pool: &Arc<ChunkPool>,
    ) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut cursor = first_cursor;
        let mut records = 0;
        for end in ends {
            records += 1;
            if end - start >= CHUNK_BYTES || end == batch.len() {
                // No buffer free, or one record too large for one: these
                // records are read from the file.
                if let Some(mut bytes) = pool.take(end - start) {
                    bytes.extend_from_slice(&batch[start..end]);
                    chunks.push(Chunk {
                        offset: offset + start as u64,
                        bytes: Arc::new(ChunkBytes {
                            bytes,
                            first_cursor: cursor,
                            records,
                            derived: Derived::default(),
                            pool: Arc::downgrade(pool),
                        }),
                    });
                }
                start = end;
                cursor += records as u64;
                records = 0;
            }
        }
        chunks
    }

    fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// About how large a chunk is: a batch is cut at the first record end at
/// or past this. A reader holding one keeps one buffer of twice this
/// alive, less than its own read buffer would.
const CHUNK_BYTES: usize = 16 * 1024;

/// The buffers chunks are made in: a fixed set, allocated once when the
/// store opens, going round between the writer, `Recent` and readers.
///
/// Why fixed: chunks made anew for every batch, on whichever blocking
/// thread appended, and freed wherever their last reader let go, would be
/// interleaved with each batch's short-lived allocations in glibc's
/// per-thread arenas, and each arena would keep a high-water mark of its
/// own, growing the server's memory well beyond what the chunks hold
/// (measured: bench/RESULTS.md, "Fourth session"). With a fixed set the
/// memory is what the set holds, and nothing else. When every buffer is in
/// use (readers holding old chunks), a batch is simply not kept in memory
/// and readers read it from the file.
#[derive(Debug, Default)]
pub(crate) struct ChunkPool {
    /// The buffers nobody holds, each with `BUFFER_BYTES` of capacity.
    spare: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl ChunkPool {
    /// Buffers beyond what `Recent` holds, for chunks readers still hold
    /// after `Recent` let them go: live tails hold the chunk they read
    /// last until the next commit wakes them.
    const SPARE: usize = 16;

    /// A buffer's size: a chunk closes at the first record end at or past
    /// `CHUNK_BYTES`, so records up to `CHUNK_BYTES` always fit.
    const BUFFER_BYTES: usize = 2 * CHUNK_BYTES;

    /// A pool with enough buffers for `recent_bytes` of chunks.
    pub fn new(recent_bytes: usize) -> ChunkPool {
        let limit = recent_chunk_limit(recent_bytes);
        let buffers = if limit == 0 {
            0
        } else {
            limit + limit / 2 + Self::SPARE
        };
        ChunkPool {
            spare: std::sync::Mutex::new(
                (0..buffers)
                    .map(|_| Vec::with_capacity(Self::BUFFER_BYTES))
                    .collect(),
            ),
        }
    }

    /// An empty buffer with room for `len` bytes, if one is free.
    fn take(&self, len: usize) -> Option<Vec<u8>> {
        if len > Self::BUFFER_BYTES {
            return None;
        }
        let mut bytes = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        bytes.clear();
        Some(bytes)
    }

    /// Takes a buffer back.
    fn put(&self, bytes: Vec<u8>) {
        self.spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bytes);
    }
}

/// How many chunks `Recent` keeps for `recent_bytes`. Small batches make
/// small chunks, each in a buffer of its own: counting chunks as well as
/// bytes keeps the pool's fixed set of buffers enough for `Recent`.
pub(crate) fn recent_chunk_limit(recent_bytes: usize) -> usize {
    recent_bytes.div_ceil(CHUNK_BYTES)
}

/// The newest published chunks of a segment, oldest first, in file order
/// and without gaps, within the store's `recent_bytes`. A reader that has
/// fallen behind the oldest reads the file as before.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    /// Oldest first; each starts where the one before ends.
    chunks: VecDeque<Chunk>,
    /// Bytes of `chunks`.
    bytes: usize,
}

impl Recent {
    /// Adds a newly published chunk and drops the oldest beyond `budget`
    /// bytes or [`recent_chunk_limit`] chunks. A chunk that does not follow
    /// the last one (the writer cut a failed write back and wrote again)
    /// replaces them all.
    pub fn push(&mut self, chunk: Chunk, budget: usize) {
        if self
            .chunks
            .back()
            .is_some_and(|last| last.end() != chunk.offset)
        {
            self.clear();
        }
        self.bytes += chunk.bytes.len();
        self.chunks.push_back(chunk);
        while self.bytes > budget || self.chunks.len() > recent_chunk_limit(budget) {
            let Some(oldest) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= oldest.bytes.len();
        }
    }

    /// The chunk holding `offset`.
    pub fn find(&self, offset: u64) -> Option<Chunk> {
        let at = self.chunks.partition_point(|chunk| chunk.end() <= offset);
        self.chunks
            .get(at)
            .filter(|chunk| chunk.offset <= offset)
            .cloned()
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, len: usize) -> Chunk {
        Chunk {
            offset,
            bytes: Arc::new(ChunkBytes::unpooled(vec![offset as u8; len])),
        }
    }

    #[test]
    fn a_batch_is_cut_into_chunks_only_where_records_end() {
        let batch = vec![7u8; 3 * CHUNK_BYTES];
        // Records of 5/8 of a chunk: a chunk closes at the first record end
        // at or past `CHUNK_BYTES` (two records), the last one at the
        // batch's end.
        let record = CHUNK_BYTES * 5 / 8;
        let ends = (1..)
            .map(|i| i * record)
            .take_while(|&end| end < batch.len());
        let ends: Vec<usize> = ends.chain([batch.len()]).collect();
        let pool = Arc::new(ChunkPool::new(1 << 20));
        let chunks = Chunk::cut(1000, 0, &batch, ends.iter().copied(), &pool);
        let starts: Vec<u64> = chunks.iter().map(|c| c.offset).collect();
        let record = record as u64;
        assert_eq!(starts, vec![1000, 1000 + 2 * record, 1000 + 4 * record]);
        assert_eq!(chunks.last().unwrap().end(), 1000 + batch.len() as u64);
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end(), pair[1].offset, "no gap, no overlap");
        }
        // One small batch is one chunk.
        let chunks = Chunk::cut(5, 0, &[1, 2, 3], [1, 3], &pool);
        assert_eq!(chunks.len(), 1);
        assert_eq!(&chunks[0].bytes[..], &[1, 2, 3]);
        // A record too large for a buffer is left to the file.
        let huge = vec![0u8; ChunkPool::BUFFER_BYTES + 1];
        assert!(Chunk::cut(0, 0, &huge, [huge.len()], &pool).is_empty());
    }

    #[test]
    fn recent_chunks_are_found_by_offset_and_kept_within_the_budget() {
        const C: usize = CHUNK_BYTES;
        let c = C as u64;
        let budget = 5 * C / 2;
        let mut recent = Recent::default();
        recent.push(chunk(0, C), budget);
        recent.push(chunk(c, C), budget);
        assert_eq!(recent.find(0).unwrap().offset, 0);
        assert_eq!(recent.find(c + 50).unwrap().offset, c);
        assert!(recent.find(2 * c).is_none(), "not written yet");
        // Over the budget: the oldest goes, the newest stays.
        recent.push(chunk(2 * c, C), budget);
        assert_eq!(recent.bytes(), 2 * C);
        assert!(recent.find(50).is_none());
        assert_eq!(recent.find(3 * c - 1).unwrap().offset, 2 * c);
        // A chunk larger than the whole budget is not kept at all.
        recent.push(chunk(3 * c, 3 * C), budget);
        assert_eq!(recent.bytes(), 0);
        assert!(recent.find(3 * c).is_none());
        // A chunk that does not follow the last (a write cut back and
        // redone) replaces what was there.
        recent.push(chunk(1300, 10), budget);
        recent.push(chunk(1200, 10), budget);
        assert!(recent.find(1300).is_none());
        assert_eq!(recent.find(1205).unwrap().offset, 1200);
        // Many small chunks: no more are kept than the budget's worth of
        // full ones, so the pool's buffers always suffice.
        let mut recent = Recent::default();
        for i in 0..100 {
            recent.push(chunk(i * 10, 10), budget);
        }
        assert_eq!(recent.chunks.len(), recent_chunk_limit(budget));
        assert_eq!(recent.find(990).unwrap().offset, 990);
    }

    #[test]
    fn chunk_buffers_are_a_fixed_set_that_goes_round() {
        let pool = Arc::new(ChunkPool::new(CHUNK_BYTES));
        let buffers = 1 + ChunkPool::SPARE;
        let batch = [1u8; 10];
        let mut held: Vec<Chunk> = (0..buffers as u64)
            .map(|i| Chunk::cut(i * 10, 0, &batch, [10], &pool).remove(0))
            .collect();
        // Every buffer in use: the next batch is not kept in memory.
        assert!(Chunk::cut(1000, 0, &batch, [10], &pool).is_empty());
        // The last holder lets go: its buffer carries the next batch.
        let address = held[0].bytes.as_ptr();
        let mut recent = Recent::default();
        recent.push(held.remove(0), 10);
        assert!(
            Chunk::cut(1000, 0, &batch, [10], &pool).is_empty(),
            "Recent holds it"
        );
        recent.push(held.remove(0), 10);
        let next = Chunk::cut(2000, 0, &[2u8; 10], [10], &pool).remove(0);
        assert_eq!(next.bytes.as_ptr(), address);
        assert_eq!(&next.bytes[..], &[2u8; 10]);
        assert!(next.bytes.bytes.capacity() == ChunkPool::BUFFER_BYTES);
        // No store, no pool: nothing is kept.
        assert!(Chunk::cut(0, 0, &batch, [10], &Arc::new(ChunkPool::new(0))).is_empty());
    }
}

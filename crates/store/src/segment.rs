//! A segment file and its in-memory index of block summaries.
//!
//! Records are grouped into blocks of about `StoreConfig::block_bytes`. Each block's
//! summary (cursor range, time range, count per level) lets readers skip it
//! without reading it, and lets counts add whole blocks up. Summaries live
//! only in memory; they are rebuilt from the file on open, so the file is
//! the single source of truth.

use crate::fs::{FileSystem, FsFile};
use crate::recent::{Chunk, Recent};
use crate::record::{self, DecodeError};
use crate::recovery::RecoveryEvent;
use crate::sealed::cache::BlockCache;
use crate::sealed::SealedParts;
use crate::{Level, StoreError};
use logtap_core::Filter;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The summary of a run of consecutive records in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// File offset of the block's first record.
    pub offset: u64,
    /// File offset just past its last record.
    pub end: u64,
    pub first_cursor: u64,
    pub last_cursor: u64,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    /// Entries per level, indexed by `Level as usize`.
    pub counts: [u32; Level::COUNT],
}

impl Block {
    pub fn new(offset: u64, entry_cursor: u64, timestamp: i64) -> Block {
        Block {
            offset,
            end: offset,
            first_cursor: entry_cursor,
            last_cursor: entry_cursor,
            min_timestamp: timestamp,
            max_timestamp: timestamp,
            counts: [0; Level::COUNT],
        }
    }

    /// Adds a record that follows the block's last one.
    pub fn add(&mut self, cursor: u64, timestamp: i64, level: Level, record_len: u64) {
        self.end += record_len;
        self.last_cursor = cursor;
        self.min_timestamp = self.min_timestamp.min(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.counts[level as usize] += 1;
    }

    /// Whether the block has reached `block_bytes` and the next record
    /// starts a new one.
    pub fn is_full(&self, block_bytes: u64) -> bool {
        self.end - self.offset >= block_bytes
    }

    /// Entries at `min_level` and above.
    pub fn count_from(&self, min_level: Option<Level>) -> u64 {
        let from = min_level.map_or(0, |level| level as usize);
        self.counts[from..].iter().map(|&n| n as u64).sum()
    }

    /// False only when no entry of the block can pass `filter`.
    pub fn may_match(&self, filter: &Filter) -> bool {
        self.count_from(filter.min_level) > 0
            && filter.since.is_none_or(|since| self.max_timestamp >= since)
            && filter.until.is_none_or(|until| self.min_timestamp < until)
    }

    /// True when every entry of the block is inside `filter`'s time range.
    pub fn within_time(&self, filter: &Filter) -> bool {
        filter.since.is_none_or(|since| self.min_timestamp >= since)
            && filter.until.is_none_or(|until| self.max_timestamp < until)
    }
}

/// What readers may see of a segment: only records made durable (under the
/// sync policy) are in here.
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    /// Summaries in file order; the last one may still grow.
    pub blocks: Vec<Block>,
    /// Set once the writer has moved to a newer segment and everything it
    /// wrote here is visible: readers may then move on to the next
    /// segment, and the sealer may seal it.
    pub closed: bool,
    /// When this process saw the segment close (`None`: closed before the
    /// store opened): the sealer leaves it a while for the live readers
    /// still catching up in it.
    pub closed_at: Option<std::time::Instant>,
    /// All the blocks summed up (cursor, time and byte range, counts per
    /// level), so that readers and counts pass over a whole segment that
    /// cannot match in one step: a rare entry costs O(segments), not
    /// O(blocks). `None` while the segment holds nothing visible.
    pub summary: Option<Block>,
}

impl SegmentIndex {
    /// The index of a segment whose blocks recovery found.
    pub fn from_blocks(blocks: Vec<Block>, closed: bool) -> SegmentIndex {
        let mut index = SegmentIndex {
            blocks: Vec::with_capacity(blocks.len()),
            closed,
            closed_at: None,
            summary: None,
        };
        for block in blocks {
            index.publish(block);
        }
        index
    }

    /// Makes `block` visible: it replaces the last block when it is that
    /// block grown (same offset), and follows it otherwise. Returns how many
    /// entries became visible.
    pub fn publish(&mut self, block: Block) -> u64 {
        let replaced = match self.blocks.last_mut() {
            Some(last) if last.offset == block.offset => Some(std::mem::replace(last, block)),
            _ => {
                self.blocks.push(block);
                None
            }
        };
        let added = block.count_from(None) - replaced.map_or(0, |old| old.count_from(None));
        let summary = self.summary.get_or_insert(Block {
            counts: [0; Level::COUNT],
            ..block
        });
        if let Some(old) = replaced {
            for (count, old) in summary.counts.iter_mut().zip(old.counts) {
                *count -= old;
            }
        }
        for (count, new) in summary.counts.iter_mut().zip(block.counts) {
            *count += new;
        }
        summary.end = summary.end.max(block.end);
        summary.last_cursor = summary.last_cursor.max(block.last_cursor);
        summary.min_timestamp = summary.min_timestamp.min(block.min_timestamp);
        summary.max_timestamp = summary.max_timestamp.max(block.max_timestamp);
        added
    }

    /// Index of the first block that may hold `cursor` or anything after it.
    pub fn block_for(&self, cursor: u64) -> usize {
        self.blocks
            .partition_point(|block| block.last_cursor < cursor)
    }
}

/// One segment file: named after the first cursor it may hold.
#[derive(Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    /// Opened for reading; readers share it through positional reads, so a
    /// thousand readers cost no file descriptors of their own. It stays
    /// readable after retention unlinks the file, until the last reader drops.
    pub file: Box<dyn FsFile>,
    /// The cursor in the file name: the first this segment may hold.
    pub base_cursor: u64,
    pub index: RwLock<SegmentIndex>,
    /// The newest published bytes of the file, kept in memory so that
    /// readers at the live edge take them from here instead of the file
    /// (see [`Recent`]). Empty for segments found on open and once sealed.
    pub recent: RwLock<Recent>,
    /// Set when the file is a sealed one (compressed blocks, filters,
    /// footer; see `sealed`), whose blocks are decoded rather than read.
    pub sealed: Option<SealedParts>,
}

impl Segment {
    pub fn file_name(base_cursor: u64) -> String {
        format!("{base_cursor:020}.seg")
    }

    /// The base cursor named by a segment file name, if it is one.
    pub fn parse_file_name(name: &str) -> Option<u64> {
        let digits = name.strip_suffix(".seg")?;
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    }

    /// Creates an empty segment file (the caller syncs the directory).
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        base_cursor: u64,
    ) -> Result<(Segment, Box<dyn FsFile>), StoreError> {
        let path = dir.join(Segment::file_name(base_cursor));
        let writer = fs
            .create(&path)
            .map_err(|e| StoreError::io("creating a segment", &path, e))?;
        let reader = fs
            .open_read(&path)
            .map_err(|e| StoreError::io("opening a segment", &path, e))?;
        let segment = Segment {
            path,
            file: reader,
            base_cursor,
            index: RwLock::new(SegmentIndex::default()),
            recent: RwLock::default(),
            sealed: None,
        };
        Ok((segment, writer))
    }

    /// Reads `len` bytes at `offset` into `buf` (replacing its contents).
    pub fn read_into(
        &self,
        buf: &mut ReadBuffer,
        offset: u64,
        len: usize,
    ) -> Result<(), StoreError> {
        buf.len = 0;
        buf.chunk = None;
        buf.checked = false;
        if buf.storage.len() < len {
            buf.storage.resize(len, 0);
        }
        self.file
            .read_exact_at(&mut buf.storage[..len], offset)
            .map_err(|e| match e.kind() {
                // Only published records are read, so a file that ends
                // before them was cut under the store: their entries are
                // lost, which is not an I/O failure worth retrying.
                std::io::ErrorKind::UnexpectedEof => StoreError::Corrupt {
                    path: self.path.clone(),
                    offset,
                    reason: "the file ends before the records published in it: it was cut short under the store",
                },
                _ => StoreError::io("reading a segment", &self.path, e),
            })?;
        buf.len = len;
        Ok(())
    }

    /// The published chunk holding the record at `offset`, if it is still
    /// in memory.
    pub fn recent_chunk(&self, offset: u64) -> Option<Chunk> {
        self.recent
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .find(offset)
    }
}

/// Bytes of a segment, read from its file or shared from memory; derefs
/// to them.
///
/// Its storage stays initialised up to the most it has ever held, so a
/// read never zeroes memory before the file overwrites it: with a thousand
/// live tails each reading every commit, zeroing before every read is a
/// visible share of the server's CPU (measured: bench/RESULTS.md, "Third
/// session").
#[derive(Debug, Default)]
pub struct ReadBuffer {
    /// Initialised bytes; the first `len` are the last read's.
    storage: Vec<u8>,
    /// How many bytes the last read put in `storage`.
    len: usize,
    /// When set, the bytes are this chunk's from the given index on, not
    /// `storage`'s.
    chunk: Option<(Chunk, usize)>,
    /// Whether the bytes need no CRC check: shared from the writer's own
    /// chunks, or copied from a sealed block whose checksum held when it
    /// was decoded.
    checked: bool,
}

impl ReadBuffer {
    /// Forgets the bytes held; keeps the storage.
    pub fn clear(&mut self) {
        self.len = 0;
        self.chunk = None;
        self.checked = false;
    }

    /// Holds `chunk`'s bytes from file offset `from` on, without copying.
    pub(crate) fn share(&mut self, chunk: Chunk, from: u64) {
        let skip = (from - chunk.offset) as usize;
        self.len = 0;
        self.chunk = Some((chunk, skip));
        self.checked = true;
    }

    /// Holds a copy of `bytes`, records of a sealed block that was checked
    /// whole when it was decoded. A copy, not a share: a reader then holds
    /// at most a read's worth of a block, however many readers there are
    /// and however far apart (the cache holds the decoded blocks).
    pub(crate) fn copy_checked(&mut self, bytes: &[u8]) {
        self.chunk = None;
        if self.storage.len() < bytes.len() {
            self.storage.resize(bytes.len(), 0);
        }
        self.storage[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
        self.checked = true;
    }

    /// Whether the bytes were shared from memory rather than read from the
    /// file.
    pub fn is_shared(&self) -> bool {
        self.chunk.is_some()
    }

    /// Whether the bytes need no CRC check: the writer made them in this
    /// process, or they were decoded from a sealed block whose checksum
    /// held.
    pub fn is_checked(&self) -> bool {
        self.checked
    }

    /// The chunk shared, and where in it the buffer's bytes start.
    pub(crate) fn shared_chunk(&self) -> Option<(&Chunk, usize)> {
        self.chunk.as_ref().map(|(chunk, skip)| (chunk, *skip))
    }

    /// The bytes of storage kept between reads.
    pub fn storage_bytes(&self) -> usize {
        self.storage.len()
    }
}

impl std::ops::Deref for ReadBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.chunk {
            Some((chunk, skip)) => &chunk.bytes[*skip..],
            None => &self.storage[..self.len],
        }
    }
}

/// What scanning a segment file found.
pub(crate) struct Scan {
    pub blocks: Vec<Block>,
    /// Offset just past the last valid record: where appends may continue.
    pub valid_end: u64,
    /// Bytes after `valid_end` that hold no valid record.
    pub garbage_tail: u64,
    pub events: Vec<RecoveryEvent>,
}

/// Scans a whole segment file, checking every record, building the block
/// summaries, and stepping over corrupt stretches to the next valid record.
/// `after` is the newest cursor of earlier segments: every record here must
/// come after it, and after the previous record.
pub(crate) fn scan(path: &Path, data: &[u8], mut after: u64, block_bytes: u64) -> Scan {
    let mut blocks: Vec<Block> = Vec::new();
    let mut events = Vec::new();
    let mut open: Option<Block> = None;
    let mut pos = 0usize;
    let mut valid_end = 0u64;
    while pos < data.len() {
        match record::decode(&data[pos..]) {
            Ok((entry, len)) if entry.cursor > after => {
                let block = open
                    .get_or_insert_with(|| Block::new(pos as u64, entry.cursor, entry.timestamp));
                block.add(entry.cursor, entry.timestamp, entry.level, len as u64);
                if block.is_full(block_bytes) {
                    blocks.extend(open.take());
                }
                after = entry.cursor;
                pos += len;
                valid_end = pos as u64;
            }
            _ => match resync(data, pos + 1, after) {
                Some(next) => {
                    events.push(RecoveryEvent::SkippedCorruption {
                        path: path.to_path_buf(),
                        offset: pos as u64,
                        bytes: (next - pos) as u64,
                    });
                    // A block covers consecutive records only: the gap closes it.
                    blocks.extend(open.take());
                    pos = next;
                }
                None => break,
            },
        }
    }
    blocks.extend(open);
    Scan {
        blocks,
        valid_end,
        garbage_tail: data.len() as u64 - valid_end,
        events,
    }
}

/// The first offset at or after `from` where a valid record with a cursor
/// after `after` starts. Cheap checks (cursor range) come before the CRC.
fn resync(data: &[u8], from: usize, after: u64) -> Option<usize> {
    (from..data.len()).find(|&pos| {
        let bytes = &data[pos..];
        let plausible = record::peek_cursor(bytes)
            .is_some_and(|cursor| cursor > after && cursor - after < (1 << 40));
        plausible && matches!(record::decode(bytes), Ok((entry, _)) if entry.cursor > after)
    })
}

/// Puts the records of `block` (index `at`) in `buf`: read from a record
/// log, or decoded (through `cache`) from a sealed file. Returns the bytes
/// read from the file.
pub(crate) fn load_block(
    segment: &Segment,
    at: usize,
    block: &Block,
    buf: &mut ReadBuffer,
    cache: &BlockCache,
) -> Result<u64, StoreError> {
    if segment.sealed.is_some() {
        let (chunk, read) = segment.decoded(at, block, cache)?;
        buf.share(chunk, block.offset);
        return Ok(read);
    }
    let len = block.end - block.offset;
    segment.read_into(buf, block.offset, len as usize)?;
    Ok(len)
}

/// Decodes every record of `block` (index `at`) into `buf` and calls
/// `visit` on each, with the record's length.
pub(crate) fn for_each_in_block(
    segment: &Segment,
    at: usize,
    block: &Block,
    buf: &mut ReadBuffer,
    cache: &BlockCache,
    mut visit: impl FnMut(crate::EntryRef<'_>, usize),
) -> Result<u64, StoreError> {
    let read = load_block(segment, at, block, buf, cache)?;
    // Decoded blocks were checked whole (their CRC) when loaded.
    let verify = !buf.is_checked();
    let mut pos = 0;
    while pos < buf.len() {
        let decoded = if verify {
            record::decode(&buf[pos..])
        } else {
            record::decode_checked(&buf[pos..])
        };
        let (entry, len) =
            decoded.map_err(|error| corrupt(segment, block.offset + pos as u64, error))?;
        visit(entry, len);
        pos += len;
    }
    Ok(read)
}

/// The error for a record that was valid at open but is not now.
pub(crate) fn corrupt(segment: &Segment, offset: u64, error: DecodeError) -> StoreError {
    StoreError::Corrupt {
        path: segment.path.clone(),
        offset,
        reason: match error {
            DecodeError::Incomplete { .. } => "record cut short",
            DecodeError::Corrupt(reason) => reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fs::StdFileSystem;
    use crate::recent::ChunkBytes;
    use std::sync::Arc;

    #[test]
    fn a_read_buffer_shares_a_chunk_without_copying_and_a_file_read_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (segment, writer) = Segment::create(&StdFileSystem, dir.path(), 1).unwrap();
        writer.write_all_at(&[9; 10], 0).unwrap();
        let shared = Chunk {
            offset: 100,
            bytes: Arc::new(ChunkBytes::unpooled(vec![1u8, 2, 3, 4])),
        };
        let mut buf = ReadBuffer::default();
        buf.share(shared.clone(), 102);
        assert_eq!(&buf[..], &[3, 4]);
        assert!(buf.is_shared());
        assert_eq!(Arc::strong_count(&shared.bytes), 2, "shared, not copied");
        segment.read_into(&mut buf, 0, 3).unwrap();
        assert_eq!(&buf[..], &[9, 9, 9]);
        assert!(!buf.is_shared());
        assert_eq!(Arc::strong_count(&shared.bytes), 1, "let go");
    }

    #[test]
    fn a_read_buffer_holds_exactly_the_last_read() {
        let dir = tempfile::tempdir().unwrap();
        let (segment, writer) = Segment::create(&StdFileSystem, dir.path(), 1).unwrap();
        let bytes: Vec<u8> = (0..=255).collect();
        writer.write_all_at(&bytes, 0).unwrap();
        let mut buf = ReadBuffer::default();
        segment.read_into(&mut buf, 0, 100).unwrap();
        assert_eq!(&buf[..], &bytes[..100]);
        // Shorter, elsewhere: none of the longer read's bytes show.
        segment.read_into(&mut buf, 200, 4).unwrap();
        assert_eq!(&buf[..], &bytes[200..204]);
        // Longer again: the storage grows; the bytes are the file's.
        segment.read_into(&mut buf, 50, 150).unwrap();
        assert_eq!(&buf[..], &bytes[50..200]);
        // A read past the end fails and leaves nothing to misread.
        assert!(segment.read_into(&mut buf, 250, 10).is_err());
        assert!(buf.is_empty());
        segment.read_into(&mut buf, 0, 1).unwrap();
        buf.clear();
        assert!(buf.is_empty());
        assert_eq!(buf.storage_bytes(), 150);
    }
}

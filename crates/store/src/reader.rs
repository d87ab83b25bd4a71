//! Readers: a cursor into the store that holds O(1) memory however far it goes.
//!
//! A reader owns a position (segment, block, byte offset, next cursor) and
//! one small buffer; it reads the shared segment files with positional
//! reads. Nothing it does makes the writer or any other reader wait beyond
//! a brief read lock on a segment's block list, and its memory does not
//! depend on how far behind the newest entry it is.

use crate::record::{self, DecodeError};
use crate::sealed::template;
use crate::sealed::tokens::{self, Scheme, SearchTokens};
use crate::segment::{self, Block, ReadBuffer, Segment};
use crate::store::Shared;
use crate::{EntryRef, StoreError};
use logtap_core::{Direction, Filter, LogReader, ReadOptions, Run, Step};
use std::sync::Arc;

/// How much a forward reader reads at once. Records larger than this grow
/// the buffer for their own sake; it shrinks back afterwards.
const READ_BYTES: usize = 64 * 1024;

/// A position in the store and a small buffer. Dropping it releases
/// everything it holds.
pub struct Reader {
    shared: Arc<Shared>,
    options: ReadOptions,
    /// Exclusive bound on cursors: `before`, and for a backward reader also
    /// the newest entry visible when it was made.
    upper: u64,
    /// The segment being read; `None` until positioned, or when a backward
    /// reader has run out of segments.
    segment: Option<Arc<Segment>>,
    /// Forward: index of the block holding `offset`. Backward: index of the
    /// next block to load, if any.
    block: Option<usize>,
    /// Forward: file offset of the next record to read.
    offset: u64,
    /// Forward: the smallest cursor not yet considered.
    next_cursor: u64,
    /// Forward: the published byte range of the block being read, as last
    /// seen. Inside it (past its start, whose summary was already checked),
    /// the next record can be read without going back to the segment's
    /// block list: the per-record fast path.
    block_range: std::ops::Range<u64>,
    /// The last cursor looked at, matching or not.
    scanned: Option<u64>,
    /// Bytes of the current segment starting at file offset `buf_start`.
    buf: ReadBuffer,
    buf_start: u64,
    /// Backward: where each record of the loaded block starts in `buf`, and
    /// how many of them are still to be yielded (from the end).
    starts: Vec<usize>,
    pending: usize,
    /// Backward: passed `after` or the oldest entry; nothing more will come.
    done: bool,
    /// The work the last step did, in the budget's units (a record read, or
    /// a block or segment passed over): lets callers charge it to their own
    /// budgets, so a long scan between two matches still yields.
    spent: usize,
    /// The tokens every block holding a match of `options.search` has in
    /// its filter, for the token scheme they were made under (made when the
    /// first sealed block is reached).
    tokens: Option<(Scheme, SearchTokens)>,
    /// The search's literal runs, which a block's templates must hold (see
    /// `template::literal_runs`); made on the first sealed block.
    runs: Option<Vec<Vec<u8>>>,
    /// Which blocks of the sealed segment being read (by base cursor) may
    /// hold a match, by their filters: read once a segment, a row per
    /// token (`sealed/bloom.rs`).
    candidates: Option<(u64, Vec<bool>)>,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, options: ReadOptions) -> Reader {
        let mut upper = options.before.unwrap_or(u64::MAX);
        if options.direction == Direction::Backward {
            let visible = shared.visible();
            upper = upper.min(visible.saturating_add(1));
        }
        let next_cursor = options.after.map_or(0, |after| after.saturating_add(1));
        let backward = options.direction == Direction::Backward;
        let mut reader = Reader {
            shared,
            options,
            upper,
            segment: None,
            block: None,
            offset: 0,
            next_cursor,
            block_range: 0..0,
            scanned: None,
            buf: ReadBuffer::default(),
            buf_start: 0,
            starts: Vec::new(),
            pending: 0,
            done: false,
            spent: 0,
            tokens: None,
            runs: None,
            candidates: None,
        };
        if backward {
            reader.position_backward();
        }
        reader
    }

    /// Scans at most `budget` records (a skipped block counts as one) and
    /// returns the first that matches, or says why it stopped.
    pub fn step(&mut self, budget: usize) -> Result<Step<'_>, StoreError> {
        let found = match self.options.direction {
            Direction::Forward => self.find_forward(budget.max(1))?,
            Direction::Backward => self.find_backward(budget.max(1))?,
        };
        match found {
            Found::At(start) => {
                let (entry, _) = record::decode_checked(&self.buf[start..])
                    .map_err(|error| self.corrupt(self.buf_start + start as u64, error))?;
                Ok(Step::Entry(entry))
            }
            Found::Pending => Ok(Step::Pending),
            Found::End => Ok(Step::End),
        }
    }

    /// The next matching entry, or `None` at [`Step::End`].
    pub fn next_entry(&mut self) -> Result<Option<EntryRef<'_>>, StoreError> {
        loop {
            let found = match self.options.direction {
                Direction::Forward => self.find_forward(usize::MAX)?,
                Direction::Backward => self.find_backward(usize::MAX)?,
            };
            match found {
                Found::At(start) => {
                    let (entry, _) = record::decode_checked(&self.buf[start..])
                        .map_err(|error| self.corrupt(self.buf_start + start as u64, error))?;
                    return Ok(Some(entry));
                }
                Found::Pending => continue,
                Found::End => return Ok(None),
            }
        }
    }

    /// Takes every record from the next one to the end of the chunk of
    /// newest records holding it, when this reader yields every record
    /// (forward, no store filter) and the next record is in memory (see
    /// `segment::Recent`). The reader moves past the run as if it had
    /// stepped through it; `None` leaves it where it was, for `step`.
    ///
    /// What is taken this way is read once for all the readers of the
    /// chunk: see [`Run`].
    pub fn take_run(&mut self) -> Option<Run<'_>> {
        if self.options.direction != Direction::Forward
            || self.options.filter != Filter::default()
            || self.options.search.is_some()
        {
            return None;
        }
        // A sealed block's records are not a batch of the writer's: their
        // cursors may have gaps, and they are not the newest.
        if self.segment.as_ref().is_some_and(|s| s.sealed.is_some()) {
            return None;
        }
        // Caught up: nothing to look for (the usual case after a run).
        if self.next_cursor > self.shared.visible() {
            return None;
        }
        let buffered_end = self.buf_start + self.buf.len() as u64;
        let in_buffer = self.offset >= self.buf_start && self.offset < buffered_end;
        if !self.buf.is_shared() && in_buffer {
            // Read from the file and not used up: `step` reads on from it.
            // Looking for a chunk only when the buffer runs out keeps a
            // history read from paying a lookup per entry.
            return None;
        }
        if !in_buffer {
            let chunk = self.segment.as_ref()?.recent_chunk(self.offset)?;
            self.buf.share(chunk, self.offset);
            self.buf_start = self.offset;
        }
        let (chunk, skip) = self.buf.shared_chunk()?;
        let start = skip + (self.offset - self.buf_start) as usize;
        let (head, _) = record::decode_head(&chunk.bytes[start..], false).ok()?;
        let last = chunk.bytes.last_cursor();
        // A record the reader has passed already, or one past its bound,
        // is for `step` to handle.
        if head.cursor != self.next_cursor || last >= self.upper {
            return None;
        }
        let skipped = (head.cursor - chunk.bytes.first_cursor) as usize;
        self.offset = chunk.offset + chunk.bytes.len() as u64;
        self.next_cursor = last + 1;
        self.scanned = Some(last);
        // The run may end in a later block: let the next step find it.
        self.block_range = 0..0;
        self.spent = chunk.bytes.records - skipped;
        let (chunk, _) = self.buf.shared_chunk()?;
        Some(Run::new(&*chunk.bytes, skipped, start))
    }

    /// The work the last `step` (or `next_entry`'s last step) did, in the
    /// budget's units: records read, plus blocks and segments passed over.
    pub fn last_step_cost(&self) -> usize {
        self.spent
    }

    /// The cursor of the last record this reader has looked at, matching or
    /// not (in a forward reader: everything up to it has been considered);
    /// `None` before the first. Resuming after it with the same filters
    /// neither repeats nor misses an entry.
    pub fn scanned_through(&self) -> Option<u64> {
        self.scanned
    }

    fn find_forward(&mut self, budget: usize) -> Result<Found, StoreError> {
        self.spent = 0;
        loop {
            if self.spent >= budget {
                return Ok(Found::Pending);
            }
            if self.next_cursor >= self.upper {
                return Ok(Found::End);
            }
            // Fast path: inside a block already checked, with the record
            // already buffered.
            let inside = self.offset > self.block_range.start && self.offset < self.block_range.end;
            if let Some(start) = inside.then(|| self.buffered_record()).flatten() {
                match self.consume(start)? {
                    Some(found) => return Ok(found),
                    None => continue,
                }
            }
            let segment = match &self.segment {
                Some(segment) => Arc::clone(segment),
                None => {
                    let Some(segment) = self.shared.segment_for(self.next_cursor) else {
                        return Ok(Found::End);
                    };
                    self.enter_forward(segment);
                    continue;
                }
            };
            let (block, is_last, sealed) = {
                let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
                let mut at = self.block.unwrap_or(0);
                // At the start of a segment that cannot match, pass over it
                // whole: its summary stands for all its blocks.
                if let (Some(summary), Some(first)) = (index.summary, index.blocks.first()) {
                    let at_start = self.offset <= first.offset;
                    let skippable = summary.last_cursor < self.next_cursor
                        || !summary.may_match(&self.options.filter);
                    if at_start && skippable && self.spent < budget && self.next_cursor < self.upper
                    {
                        self.skip_block(&summary);
                        self.spent += 1;
                        at = index.blocks.len() - 1;
                    }
                }
                // Skip every whole block that holds nothing for this reader
                // under this one lock: a rare match after millions of
                // entries then costs a few nanoseconds per block.
                while self.spent < budget && self.next_cursor < self.upper {
                    let Some(block) = index.blocks.get(at) else {
                        break;
                    };
                    let skippable = self.offset <= block.offset
                        && (block.last_cursor < self.next_cursor
                            || !block.may_match(&self.options.filter)
                            || !self.search_may_match(&segment, at));
                    if !skippable {
                        break;
                    }
                    self.skip_block(block);
                    self.spent += 1;
                    if at + 1 == index.blocks.len() {
                        break;
                    }
                    at += 1;
                }
                self.block = Some(at);
                (
                    index.blocks.get(at).copied(),
                    at + 1 >= index.blocks.len(),
                    index.closed,
                )
            };
            if self.spent >= budget {
                return Ok(Found::Pending);
            }
            let Some(block) = block else {
                if !sealed {
                    return Ok(Found::End);
                }
                self.next_segment(&segment)?;
                continue;
            };
            self.offset = self.offset.max(block.offset);
            if self.offset >= block.end {
                if is_last {
                    if !sealed {
                        return Ok(Found::End);
                    }
                    self.next_segment(&segment)?;
                } else {
                    self.block = Some(self.block.unwrap_or(0) + 1);
                }
                continue;
            }
            if self.offset == block.offset
                && (block.last_cursor < self.next_cursor
                    || !block.may_match(&self.options.filter)
                    || !self.search_may_match(&segment, self.block.unwrap_or(0)))
            {
                self.skip_block(&block);
                self.spent += 1;
                continue;
            }
            self.block_range = block.offset..block.end;
            let start = self.fill(&segment, &block)?;
            if let Some(found) = self.consume(start)? {
                return Ok(found);
            }
        }
    }

    /// Reads the record buffered at `start` (that is, at `self.offset`),
    /// moves past it, and says whether the search ends there.
    fn consume(&mut self, start: usize) -> Result<Option<Found>, StoreError> {
        // Bytes shared from memory were made by this process's writer and
        // never came from the disk: there is nothing for a CRC to catch.
        let verify = !self.buf.is_checked();
        let (head, len) = match record::decode_head(&self.buf[start..], verify) {
            Ok(decoded) => decoded,
            Err(DecodeError::Incomplete { .. }) => {
                return Err(self.corrupt(
                    self.offset,
                    DecodeError::Corrupt("record runs past its block"),
                ))
            }
            Err(error) => return Err(self.corrupt(self.offset, error)),
        };
        self.spent += 1;
        let cursor = head.cursor;
        if cursor < self.next_cursor {
            self.offset += len as u64;
            return Ok(None);
        }
        if cursor >= self.upper {
            return Ok(Some(Found::End));
        }
        let matches = self.options.filter.passes(head.level, head.timestamp);
        self.offset += len as u64;
        self.next_cursor = cursor + 1;
        self.scanned = Some(cursor);
        Ok(matches.then_some(Found::At(start)))
    }

    /// Skips a whole block that holds nothing for this reader, without
    /// reading it.
    fn skip_block(&mut self, block: &Block) {
        self.offset = block.end;
        if block.last_cursor >= self.next_cursor {
            let through = block.last_cursor.min(self.upper.saturating_sub(1));
            self.next_cursor = through + 1;
            self.scanned = Some(through);
        }
    }

    /// Where the record at `self.offset` starts in the buffer, if the whole
    /// record is there.
    fn buffered_record(&self) -> Option<usize> {
        let buffered_end = self.buf_start + self.buf.len() as u64;
        if self.offset < self.buf_start || self.offset + record::HEADER_LEN as u64 > buffered_end {
            return None;
        }
        let start = (self.offset - self.buf_start) as usize;
        let len = u32::from_le_bytes(self.buf[start..start + 4].try_into().unwrap()) as u64;
        (self.offset + record::HEADER_LEN as u64 + len <= buffered_end).then_some(start)
    }

    /// Makes sure the record at `self.offset` is in the buffer (as far as
    /// `block` reaches) and returns where it starts there.
    fn fill(&mut self, segment: &Segment, block: &Block) -> Result<usize, StoreError> {
        if let Some(start) = self.buffered_record() {
            return Ok(start);
        }
        if segment.sealed.is_some() {
            // The block is decoded once for every reader (the cache); this
            // reader copies a read's worth of it, from this record on.
            let at = self.block.unwrap_or(0);
            let (chunk, read) = segment.decoded(at, block, &self.shared.cache)?;
            self.count_file_read(read);
            let records = chunk
                .bytes
                .get((self.offset - chunk.offset) as usize..)
                .ok_or_else(|| {
                    self.corrupt(
                        self.offset,
                        DecodeError::Corrupt("a position past its decoded block"),
                    )
                })?;
            let mut window = records.len().min(READ_BYTES);
            if let Some(header) = records.get(..4) {
                let record_len =
                    record::HEADER_LEN + u32::from_le_bytes(header.try_into().unwrap()) as usize;
                window = window.max(record_len.min(records.len()));
            }
            if self.buf.storage_bytes() > 4 * READ_BYTES && window <= READ_BYTES {
                // A record larger than a read grew the buffer; give it back.
                self.buf = ReadBuffer::default();
            }
            self.buf.copy_checked(&records[..window]);
            self.buf_start = self.offset;
            return Ok(0);
        }
        // At the live edge the record is most likely still in memory,
        // shared by every reader there (see `segment::Recent`).
        if let Some(chunk) = segment.recent_chunk(self.offset) {
            self.buf.share(chunk, self.offset);
            self.buf_start = self.offset;
            return Ok(0);
        }
        // Read from this record on; never past the block's visible end, so
        // the buffer never holds bytes that were not yet published.
        let available = block.end - self.offset;
        let want = (READ_BYTES as u64).min(available);
        if self.buf.storage_bytes() > 4 * READ_BYTES {
            // A record larger than a read grew the buffer; give it back.
            self.buf = ReadBuffer::default();
        }
        segment.read_into(&mut self.buf, self.offset, want as usize)?;
        self.count_file_read(want);
        // A record larger than one read is read again, whole (as far as
        // the block reaches): one extra read for a rare record, instead of
        // reading every record's length ahead of every read.
        if let Some(header) = self.buf.get(..4) {
            let record_len =
                record::HEADER_LEN as u64 + u32::from_le_bytes(header.try_into().unwrap()) as u64;
            let whole = record_len.min(available);
            if whole > want {
                segment.read_into(&mut self.buf, self.offset, whole as usize)?;
                self.count_file_read(whole);
            }
        }
        self.buf_start = self.offset;
        Ok(0)
    }

    /// Positions a forward reader inside `segment` at `next_cursor`.
    fn enter_forward(&mut self, segment: Arc<Segment>) {
        {
            let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
            let at = index.block_for(self.next_cursor);
            if let Some(block) = index.blocks.get(at) {
                self.block = Some(at);
                self.offset = block.offset;
            } else if let Some(last) = index.blocks.last() {
                // Past everything visible: wait at the end of the last block,
                // which may still grow.
                self.block = Some(index.blocks.len() - 1);
                self.offset = last.end;
            } else {
                self.block = Some(0);
                self.offset = 0;
            }
        }
        self.buf.clear();
        self.block_range = 0..0;
        self.segment = Some(segment);
    }

    /// Moves a forward reader from a sealed segment to the one after it,
    /// unless retention deleted what it still needed.
    fn next_segment(&mut self, current: &Segment) -> Result<(), StoreError> {
        let oldest = self.shared.oldest_cursor();
        // Retention deletes whole segments from the front, so cursors can
        // only have been deleted under this reader if the segment it just
        // read is gone too. While that segment is still held, a gap before
        // the oldest entry is damage recovery skipped (and reported), not
        // deletion: going on loses nothing more, and failing would make a
        // store with a damaged oldest segment unreadable from the start.
        let still_held = self
            .shared
            .segments()
            .binary_search_by_key(&current.base_cursor, |segment| segment.base_cursor)
            .is_ok();
        if !still_held && self.next_cursor < oldest {
            // Cursors this reader has not read yet are gone: say so rather
            // than skip over them.
            return Err(StoreError::CursorDeleted {
                requested: self.next_cursor.saturating_sub(1),
                oldest,
            });
        }
        match self.shared.segment_after(current.base_cursor) {
            Some(next) => self.enter_forward(next),
            None => {
                self.segment = None;
                self.block_range = 0..0;
            }
        }
        Ok(())
    }

    /// Positions a backward reader at the newest block that may hold an
    /// entry below `upper`.
    fn position_backward(&mut self) {
        let Some(target) = self.upper.checked_sub(1) else {
            self.done = true;
            return;
        };
        let Some(segment) = self.shared.segment_for(target) else {
            self.done = true;
            return;
        };
        let index = segment.index.read().unwrap_or_else(|e| e.into_inner());
        let at = index.block_for(target);
        self.block = index.blocks.len().checked_sub(1).map(|last| at.min(last));
        drop(index);
        self.segment = Some(segment);
    }

    fn find_backward(&mut self, budget: usize) -> Result<Found, StoreError> {
        self.spent = 0;
        let after = self.options.after;
        loop {
            if self.spent >= budget {
                return Ok(Found::Pending);
            }
            if self.pending > 0 {
                self.pending -= 1;
                let start = self.starts[self.pending];
                let (entry, _) = record::decode_checked(&self.buf[start..])
                    .map_err(|error| self.corrupt(self.buf_start + start as u64, error))?;
                self.spent += 1;
                if entry.cursor >= self.upper {
                    continue;
                }
                if after.is_some_and(|after| entry.cursor <= after) {
                    self.done = true;
                    self.pending = 0;
                    return Ok(Found::End);
                }
                self.scanned = Some(entry.cursor);
                if self.options.filter.passes(entry.level, entry.timestamp) {
                    return Ok(Found::At(start));
                }
                continue;
            }
            if self.done {
                return Ok(Found::End);
            }
            let Some(segment) = self.segment.clone() else {
                return Ok(Found::End);
            };
            let Some(at) = self.block else {
                // This segment is done: go to the one before it.
                match self.shared.segment_before(segment.base_cursor) {
                    Some(previous) => {
                        let len = previous
                            .index
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .blocks
                            .len();
                        self.block = len.checked_sub(1);
                        self.segment = Some(previous);
                    }
                    None => self.done = true,
                }
                continue;
            };
            let block = segment
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .blocks[at];
            self.block = at.checked_sub(1);
            self.spent += 1;
            if block.first_cursor >= self.upper {
                continue;
            }
            if after.is_some_and(|after| block.last_cursor <= after) {
                self.done = true;
                return Ok(Found::End);
            }
            if !block.may_match(&self.options.filter) || !self.search_may_match(&segment, at) {
                self.scanned = Some(block.first_cursor.max(after.map_or(0, |a| a + 1)));
                continue;
            }
            self.load_block(&segment, at, &block)?;
        }
    }

    /// Reads a whole block into the buffer, checking every record, and
    /// notes where each starts.
    fn load_block(
        &mut self,
        segment: &Segment,
        at: usize,
        block: &Block,
    ) -> Result<(), StoreError> {
        let read = segment::load_block(segment, at, block, &mut self.buf, &self.shared.cache)?;
        self.count_file_read(read);
        self.buf_start = block.offset;
        self.starts.clear();
        // Decoded blocks were checked whole (their CRC) when loaded.
        let verify = !self.buf.is_checked();
        let mut pos = 0;
        while pos < self.buf.len() {
            let (_, len) = record::decode_head(&self.buf[pos..], verify)
                .map_err(|error| segment::corrupt(segment, block.offset + pos as u64, error))?;
            self.starts.push(pos);
            pos += len;
        }
        self.pending = self.starts.len();
        Ok(())
    }

    /// Whether block `at` of `segment` may hold an entry with what the
    /// search looks for: false only for a sealed block whose filter lacks
    /// one of the search's tokens. A filter that cannot be read rules
    /// nothing out.
    fn search_may_match(&mut self, segment: &Segment, at: usize) -> bool {
        let (Some(search), Some(parts)) = (&self.options.search, &segment.sealed) else {
            return true;
        };
        if self.tokens.as_ref().map(|(scheme, _)| *scheme) != Some(parts.scheme) {
            self.tokens = Some((parts.scheme, tokens::search_tokens(parts.scheme, search)));
        }
        if self
            .tokens
            .as_ref()
            .is_some_and(|(_, tokens)| !tokens.is_empty())
        {
            if self.candidates.as_ref().map(|(base, _)| *base) != Some(segment.base_cursor) {
                let Some((_, tokens)) = &self.tokens else {
                    return true;
                };
                let candidates = match segment.candidates(tokens) {
                    Ok((candidates, read)) => {
                        self.count_file_read(read);
                        candidates
                    }
                    Err(error) => {
                        // Once a segment: its blocks are all candidates.
                        tracing::warn!(path = %segment.path.display(), %error, "A sealed segment's filters cannot be read; its blocks are searched whole.");
                        let blocks = parts.places.len();
                        vec![true; blocks]
                    }
                };
                self.candidates = Some((segment.base_cursor, candidates));
            }
            if let Some((_, candidates)) = &self.candidates {
                if !candidates.get(at).copied().unwrap_or(true) {
                    return false;
                }
            }
        }
        self.templates_may_match(segment, at)
    }

    /// Whether some message template of block `at` holds the search's
    /// literal runs (see `template::may_contain`): a block whose templates
    /// lack them is skipped, however short the search text, for the price
    /// of reading its templates alone.
    fn templates_may_match(&mut self, segment: &Segment, at: usize) -> bool {
        let Some(search) = &self.options.search else {
            return true;
        };
        let runs = self.runs.get_or_insert_with(|| {
            search
                .substrings
                .iter()
                .flat_map(|text| template::literal_runs(text, search.ignore_case))
                .collect()
        });
        if runs.is_empty() {
            return true;
        }
        match segment.templates(at) {
            Ok((templates, read)) => {
                self.count_file_read(read);
                let runs = self.runs.as_deref().unwrap_or_default();
                template::may_contain(&templates, runs, search.ignore_case)
            }
            Err(error) => {
                tracing::warn!(path = %segment.path.display(), %error, "A sealed block's templates cannot be read; the block is searched whole.");
                true
            }
        }
    }

    fn count_file_read(&self, bytes: u64) {
        self.shared
            .file_read_bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn corrupt(&self, offset: u64, error: DecodeError) -> StoreError {
        match &self.segment {
            Some(segment) => segment::corrupt(segment, offset, error),
            None => StoreError::Corrupt {
                path: self.shared_dir(),
                offset,
                reason: "record unreadable",
            },
        }
    }

    fn shared_dir(&self) -> std::path::PathBuf {
        self.shared.dir().to_path_buf()
    }
}

/// Where a search through the store stopped.
enum Found {
    /// A matching record starts at this offset in the buffer.
    At(usize),
    Pending,
    End,
}

/// The store's reader behind the backend interface; each method is the
/// inherent one of the same name.
impl LogReader for Reader {
    fn step(&mut self, budget: usize) -> Result<Step<'_>, StoreError> {
        Reader::step(self, budget)
    }

    fn next_entry(&mut self) -> Result<Option<EntryRef<'_>>, StoreError> {
        Reader::next_entry(self)
    }

    fn take_run(&mut self) -> Option<Run<'_>> {
        Reader::take_run(self)
    }

    fn last_step_cost(&self) -> usize {
        Reader::last_step_cost(self)
    }

    fn scanned_through(&self) -> Option<u64> {
        Reader::scanned_through(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreConfig, SyncPolicy};
    use logtap_core::{Level, NewEntry};

    /// Readers spread over old data hold a read's worth each, not the
    /// decoded blocks they are in: those stay the cache's alone, so ten
    /// thousand readers of old data do not hold ten thousand blocks.
    #[test]
    fn readers_of_sealed_blocks_hold_a_copy_of_a_read_not_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.segment_bytes = 256 << 10;
        config.seal_block_bytes = 128 << 10;
        config.sync = SyncPolicy::Never;
        config.seal_in_background = false;
        let store = Store::open(config).unwrap();
        let entries: Vec<NewEntry> = (0..20_000u64)
            .map(|i| NewEntry {
                timestamp: i as i64,
                level: Level::Info,
                message: format!("request {i} served in {}ms", i % 250),
                labels: vec![("service".into(), format!("svc-{}", i % 3))],
            })
            .collect();
        for batch in entries.chunks(500) {
            store.append(batch).unwrap();
        }
        store.seal_now().unwrap();
        let mut readers: Vec<Reader> = (0..20u64)
            .map(|i| {
                let mut reader = store
                    .reader(ReadOptions {
                        after: Some(i * 900),
                        ..ReadOptions::default()
                    })
                    .unwrap();
                assert_eq!(reader.next_entry().unwrap().unwrap().cursor, i * 900 + 1);
                reader
            })
            .collect();
        let shared = &store.shared;
        let mut decoded = 0;
        for segment in shared.segments().iter().filter(|s| s.sealed.is_some()) {
            let blocks = segment.index.read().unwrap().blocks.clone();
            for (at, block) in blocks.iter().enumerate() {
                let (chunk, _) = segment.decoded(at, block, &shared.cache).unwrap();
                // This test's handle and the cache's: no reader's.
                assert_eq!(Arc::strong_count(&chunk.bytes), 2);
                decoded += 1;
            }
        }
        assert!(decoded >= 8, "{decoded} sealed blocks");
        for reader in &mut readers {
            assert!(reader.buf.storage_bytes() <= READ_BYTES);
            assert!(reader.next_entry().unwrap().is_some());
        }
    }
}

//! Sealed segments: a full segment rewritten, once the writer has moved
//! on, into compressed blocks, their search filters and a footer that
//! indexes them (`file.rs`).
//!
//! Sealing runs in the background (`Store`'s sealer thread) and never on
//! the append path. It is crash-safe at every step:
//!
//! 1. the blocks are written to `NNN.sealed.tmp` and fsynced;
//! 2. the file is renamed to `NNN.sealed` and the directory fsynced: from
//!    here the sealed file is the segment;
//! 3. the store swaps the segment in its list (readers already inside the
//!    old one finish there: their open file stays readable);
//! 4. `NNN.seg` is deleted.
//!
//! Opening a directory deletes a leftover `.tmp` (step 1 unfinished: the
//! `.seg` is whole) and a `.seg` beside a valid `.sealed` of the same
//! name (step 4 unfinished). So a crash at any point leaves each entry in
//! exactly one file that is served.

pub(crate) mod block;
pub(crate) mod bloom;
pub(crate) mod cache;
pub(crate) mod file;
pub(crate) mod labels;
pub(crate) mod template;
pub(crate) mod tokens;

use crate::fs::FileSystem;
use crate::recent::{Chunk, ChunkBytes};
use crate::record::Head;
use crate::segment::{self, Block, ReadBuffer, Segment, SegmentIndex};
use crate::{checksum, StoreError};
use cache::BlockCache;
use file::{FileWriter, Footer, Place};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokens::{Scheme, SearchTokens, Tokenizer};

/// What a sealed segment keeps in memory besides its block summaries: where
/// each block and the filters are, and how its tokens were made. A few
/// dozen bytes a block.
#[derive(Debug)]
pub(crate) struct SealedParts {
    pub scheme: Scheme,
    pub probes: bloom::Probes,
    pub places: Vec<Place>,
    /// Where the text and label filters are in the file.
    pub text: file::Filters,
    pub labels: file::Filters,
}

/// How sealing cuts and compresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealSettings {
    /// A sealed block holds about this many bytes of records once decoded.
    pub block_bytes: u64,
    /// zstd's level.
    pub level: i32,
}

pub(crate) fn file_name(base_cursor: u64) -> String {
    format!("{base_cursor:020}.sealed")
}

pub(crate) fn temp_name(base_cursor: u64) -> String {
    format!("{base_cursor:020}.sealed.tmp")
}

/// The base cursor named by a sealed file's name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".sealed")
        .and_then(|digits| Segment::parse_file_name(&format!("{digits}.seg")))
}

/// The base cursor named by a leftover temporary file's name, if it is one.
pub(crate) fn parse_temp_name(name: &str) -> Option<u64> {
    name.strip_suffix(".tmp").and_then(parse_file_name)
}

impl Segment {
    /// Opens the sealed file at `path`; `Ok(Err(why))` when its footer
    /// cannot be used (the caller falls back on the data).
    pub fn open_sealed(
        fs: &dyn FileSystem,
        path: &Path,
        base_cursor: u64,
    ) -> Result<Result<(Segment, u64), file::FooterError>, StoreError> {
        let file = fs
            .open_read(path)
            .map_err(|e| StoreError::io("opening a sealed segment", path, e))?;
        let len = file
            .len()
            .map_err(|e| StoreError::io("reading a sealed segment's size", path, e))?;
        let footer = match file::read_footer(&*file, len) {
            Ok(footer) => footer,
            Err(why) => return Ok(Err(why)),
        };
        if footer
            .blocks
            .first()
            .is_some_and(|first| first.first_cursor < base_cursor)
        {
            return Ok(Err("the file holds cursors before the one in its name"));
        }
        Ok(Ok((Segment::sealed(path, file, base_cursor, footer), len)))
    }

    fn sealed(
        path: &Path,
        file: Box<dyn crate::fs::FsFile>,
        base_cursor: u64,
        footer: Footer,
    ) -> Segment {
        let parts = SealedParts {
            scheme: footer.scheme,
            probes: footer.probes,
            text: footer.text,
            labels: footer.labels,
            places: footer.places,
        };
        Segment {
            path: path.to_path_buf(),
            file,
            base_cursor,
            index: RwLock::new(SegmentIndex::from_blocks(footer.blocks, true)),
            recent: RwLock::default(),
            sealed: Some(parts),
        }
    }

    /// The records of block `at` (`block` is its summary), decoded or
    /// shared from the cache, and the bytes read from the file for them
    /// (0 when cached).
    pub fn decoded(
        &self,
        at: usize,
        block: &Block,
        cache: &BlockCache,
    ) -> Result<(Chunk, u64), StoreError> {
        let parts = self.sealed.as_ref().expect("only sealed segments decode");
        let place = parts.places[at];
        let mut read = 0u64;
        let value = cache.get_or_load((self.base_cursor, at as u32), || {
            let corrupt = |reason| block::corrupt(&self.path, place.data_offset, reason);
            let mut data = vec![0u8; place.data_len as usize];
            self.file
                .read_exact_at(&mut data, place.data_offset)
                .map_err(|e| StoreError::io("reading a sealed block", &self.path, e))?;
            read = data.len() as u64;
            if checksum::crc32c(&data) != place.data_crc {
                return Err(corrupt("a sealed block's checksum does not match"));
            }
            let (templates, columns) = data.split_at(place.templates_len as usize);
            let templates = decompress(templates, place.templates_raw_len).map_err(corrupt)?;
            let columns = decompress(columns, place.raw_len).map_err(corrupt)?;
            let mut records = Vec::with_capacity((block.end - block.offset) as usize);
            let n =
                block::decode(&columns, &templates, Some(block), &mut records).map_err(corrupt)?;
            if records.len() as u64 != block.end - block.offset {
                return Err(corrupt(
                    "a sealed block's records are another size than its summary says",
                ));
            }
            Ok(Chunk {
                offset: block.offset,
                bytes: Arc::new(ChunkBytes::detached(records, block.first_cursor, n)),
            })
        })?;
        Ok((value, read))
    }

    /// Calls `visit` with the cursor, time and level of every entry of
    /// block `at`, decompressing only the front of its columns (see
    /// `block::heads`); returns the bytes read. Not cached: a count reads
    /// each straddling block once, and its entries are not wanted.
    pub fn heads(
        &self,
        at: usize,
        block: &Block,
        mut visit: impl FnMut(Head),
    ) -> Result<u64, StoreError> {
        let parts = self.sealed.as_ref().expect("only sealed segments decode");
        let place = parts.places[at];
        let corrupt = |reason| block::corrupt(&self.path, place.data_offset, reason);
        let mut data = vec![0u8; place.data_len as usize];
        self.file
            .read_exact_at(&mut data, place.data_offset)
            .map_err(|e| StoreError::io("reading a sealed block", &self.path, e))?;
        if checksum::crc32c(&data) != place.data_crc {
            return Err(corrupt("a sealed block's checksum does not match"));
        }
        let columns = &data[place.templates_len as usize..];
        let total = place.raw_len as usize;
        HEADS_DECODER.with(|decoder| {
            let mut decoder = decoder.borrow_mut();
            let decoder = match &mut *decoder {
                Some(decoder) => decoder,
                empty => empty.insert(
                    zstd::stream::raw::Decoder::new()
                        .map_err(|e| StoreError::io("making a zstd decoder", &self.path, e))?,
                ),
            };
            zstd::stream::raw::Operation::reinit(decoder)
                .map_err(|_| corrupt("a sealed block does not decompress"))?;
            // A few bytes an entry hold its cursor, time and level; more is
            // decompressed only if they do not.
            let mut want = (block.count_from(None) as usize * 6 + 64).min(total);
            let mut prefix = vec![0u8; want];
            let (mut consumed, mut written) = (0, 0);
            loop {
                while written < want {
                    let status = zstd::stream::raw::Operation::run_on_buffers(
                        decoder,
                        &columns[consumed..],
                        &mut prefix[written..want],
                    )
                    .map_err(|_| corrupt("a sealed block does not decompress"))?;
                    if status.bytes_read == 0 && status.bytes_written == 0 {
                        return Err(corrupt("a sealed block decompresses to another length"));
                    }
                    consumed += status.bytes_read;
                    written += status.bytes_written;
                }
                if block::heads(&prefix, want == total, &mut visit).map_err(corrupt)? {
                    return Ok(data.len() as u64);
                }
                want = (want * 2).min(total);
                prefix.resize(want, 0);
            }
        })
    }

    /// The message templates of block `at` (see `template.rs`), read and
    /// checked alone, and the bytes read for them. Not cached: a search
    /// reads each block's once, and they would push decoded blocks out.
    pub fn templates(&self, at: usize) -> Result<(Vec<u8>, u64), StoreError> {
        let parts = self
            .sealed
            .as_ref()
            .expect("only sealed segments have templates");
        let place = parts.places[at];
        let corrupt = |reason| block::corrupt(&self.path, place.data_offset, reason);
        let mut data = vec![0u8; place.templates_len as usize];
        self.file
            .read_exact_at(&mut data, place.data_offset)
            .map_err(|e| StoreError::io("reading a sealed block's templates", &self.path, e))?;
        if checksum::crc32c(&data) != place.templates_crc {
            return Err(corrupt("a sealed block's templates fail their checksum"));
        }
        let templates = decompress(&data, place.templates_raw_len).map_err(corrupt)?;
        Ok((templates, data.len() as u64))
    }

    /// Which blocks of this sealed segment may hold an entry with every
    /// one of `tokens`, from their filters (see `bloom.rs`: one row read
    /// per token), and the bytes read for them.
    pub fn candidates(&self, tokens: &SearchTokens) -> Result<(Vec<bool>, u64), StoreError> {
        let parts = self
            .sealed
            .as_ref()
            .expect("only sealed segments have filters");
        let n = parts.places.len();
        let mut candidates = vec![true; n];
        let mut read = 0u64;
        let mut row = Vec::new();
        for (filters, probes, tokens) in [
            (parts.text, parts.probes.text, &tokens.text),
            (parts.labels, parts.probes.labels, &tokens.labels),
        ] {
            for &token in tokens {
                let range = filters.row(token, n);
                row.resize((range.end - range.start) as usize, 0);
                self.file
                    .read_exact_at(&mut row, range.start)
                    .map_err(|e| {
                        StoreError::io("reading a sealed segment's filters", &self.path, e)
                    })?;
                read += row.len() as u64;
                bloom::sift(&row, token, probes, &mut candidates);
            }
        }
        Ok((candidates, read))
    }
}

/// Writes entries, in cursor order, into a new sealed file: cuts them
/// into blocks, compresses each and gathers its tokens, and ends with the
/// filters and the footer.
struct SealWriter {
    out: FileWriter,
    temp: std::path::PathBuf,
    settings: SealSettings,
    scheme: Scheme,
    writer: block::BlockWriter,
    tokenizer: Tokenizer,
    /// The block's text and label tokens so far, for its filter.
    text_tokens: Vec<u64>,
    label_tokens: Vec<u64>,
    summary: Option<Block>,
    /// Where the next entry's record starts in the segment's record
    /// offsets (as if it were a record log).
    logical: u64,
    columns: Vec<u8>,
    /// The block's message templates, apart from its other columns.
    templates: Vec<u8>,
    /// One compressor for every block: its tables are allocated once a
    /// seal, not once a block, so a seal's memory stays small and steady.
    compressor: zstd::bulk::Compressor<'static>,
}

impl SealWriter {
    fn create(
        fs: &dyn FileSystem,
        temp: &Path,
        settings: SealSettings,
    ) -> Result<SealWriter, StoreError> {
        let scheme = Scheme::CURRENT;
        Ok(SealWriter {
            out: FileWriter::create(
                fs,
                temp,
                scheme,
                bloom::Probes {
                    text: bloom::TEXT.probes,
                    labels: bloom::LABELS.probes,
                },
            )?,
            temp: temp.to_path_buf(),
            settings,
            scheme,
            writer: block::BlockWriter::default(),
            tokenizer: Tokenizer::new(),
            text_tokens: Vec::new(),
            label_tokens: Vec::new(),
            summary: None,
            logical: 0,
            columns: Vec::new(),
            templates: Vec::new(),
            compressor: zstd::bulk::Compressor::new(settings.level)
                .map_err(|e| StoreError::io("starting a sealed block's compressor", temp, e))?,
        })
    }

    /// Adds an entry whose record is `len` bytes long.
    fn push(&mut self, entry: &crate::EntryRef<'_>, len: usize) -> Result<(), StoreError> {
        self.tokenizer.entry(
            self.scheme,
            entry.message,
            entry.labels(),
            &mut self.text_tokens,
            &mut self.label_tokens,
        );
        self.writer.push(entry, len);
        self.summary
            .get_or_insert_with(|| Block::new(self.logical, entry.cursor, entry.timestamp))
            .add(entry.cursor, entry.timestamp, entry.level, len as u64);
        self.logical += len as u64;
        if self.writer.record_bytes() >= self.settings.block_bytes {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let Some(done) = self.summary.take() else {
            return Ok(());
        };
        self.writer.finish(&mut self.templates, &mut self.columns);
        let temp = &self.temp;
        let compressor = &mut self.compressor;
        let mut compress = |bytes: &[u8]| {
            compressor
                .compress(bytes)
                .map_err(|e| StoreError::io("compressing a sealed block", temp, e))
        };
        let templates = compress(&self.templates)?;
        let data = compress(&self.columns)?;
        for tokens in [&mut self.text_tokens, &mut self.label_tokens] {
            tokens.sort_unstable();
            tokens.dedup();
        }
        // Copies of exactly their size: the buffers, grown by every
        // entry's tokens before deduplication, stay here for the next
        // block instead of being kept, oversized, until the file ends.
        let tokens = (self.text_tokens.to_vec(), self.label_tokens.to_vec());
        self.text_tokens.clear();
        self.label_tokens.clear();
        tracing::trace!(
            entries = done.count_from(None),
            columns = self.columns.len(),
            compressed = data.len() + templates.len(),
            text_tokens = tokens.0.len(),
            label_tokens = tokens.1.len(),
            "Sealed a block."
        );
        self.out.block(
            &templates,
            self.templates.len(),
            &data,
            self.columns.len(),
            done,
            tokens,
            &self.temp,
        )
    }

    /// Writes what is left, the filters and the footer, and makes the file
    /// durable; returns its footer and length. `None` when no entry came.
    fn finish(mut self) -> Result<Option<(Footer, u64)>, StoreError> {
        if self.logical == 0 {
            return Ok(None);
        }
        self.flush()?;
        let temp = self.temp.clone();
        self.out.finish(&temp).map(Some)
    }
}

thread_local! {
    /// The zstd context [`Segment::heads`] decompresses with, kept per
    /// thread: making one allocates its window, which costs more than
    /// the few kilobytes of a block's heads.
    static HEADS_DECODER: std::cell::RefCell<Option<zstd::stream::raw::Decoder<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses `data`, which must come to `len` bytes.
fn decompress(data: &[u8], len: u32) -> Result<Vec<u8>, &'static str> {
    let out = zstd::bulk::decompress(data, len as usize)
        .map_err(|_| "a sealed block does not decompress")?;
    if out.len() != len as usize {
        return Err("a sealed block decompresses to another length");
    }
    Ok(out)
}

/// Rewrites the closed record-log segment `log` as a sealed file in `dir`
/// (steps 1 and 2 of the module documentation) and returns it opened, or
/// `None` when `stop` was set meanwhile (the temporary file is removed) or
/// the log holds nothing.
pub(crate) fn seal(
    fs: &dyn FileSystem,
    dir: &Path,
    log: &Segment,
    settings: SealSettings,
    cache: &BlockCache,
    stop: &AtomicBool,
) -> Result<Option<(Segment, u64)>, StoreError> {
    let temp = dir.join(temp_name(log.base_cursor));
    let blocks: Vec<Block> = log
        .index
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .blocks
        .clone();
    let mut sealer = SealWriter::create(fs, &temp, settings)?;
    let mut buf = ReadBuffer::default();
    let mut failed = None;
    for block in &blocks {
        if stop.load(Ordering::Relaxed) {
            drop(sealer);
            let _ = fs.remove_file(&temp);
            return Ok(None);
        }
        let read = segment::for_each_in_block(log, 0, block, &mut buf, cache, |entry, len| {
            if failed.is_none() {
                failed = sealer.push(&entry, len).err();
            }
        });
        if let Some(error) = read.err().or(failed.take()) {
            drop(sealer);
            let _ = fs.remove_file(&temp);
            return Err(error);
        }
    }
    finish(fs, dir, log.base_cursor, sealer)
}

/// Ends a seal: the file finished and durable, renamed into place (over a
/// damaged file of the same name, if any), the directory synced; returns
/// the file opened.
fn finish(
    fs: &dyn FileSystem,
    dir: &Path,
    base_cursor: u64,
    sealer: SealWriter,
) -> Result<Option<(Segment, u64)>, StoreError> {
    let temp = sealer.temp.clone();
    let path = dir.join(file_name(base_cursor));
    let (footer, len) = match sealer.finish() {
        Ok(Some(done)) => done,
        Ok(None) => {
            let _ = fs.remove_file(&temp);
            return Ok(None);
        }
        Err(error) => {
            let _ = fs.remove_file(&temp);
            return Err(error);
        }
    };
    fs.rename(&temp, &path)
        .map_err(|e| StoreError::io("renaming a sealed segment into place", &path, e))?;
    fs.sync_dir(dir)
        .map_err(|e| StoreError::io("syncing the data directory", dir, e))?;
    let file = fs
        .open_read(&path)
        .map_err(|e| StoreError::io("opening a sealed segment", &path, e))?;
    Ok(Some((
        Segment::sealed(&path, file, base_cursor, footer),
        len,
    )))
}

/// Rebuilds the sealed file of segment `base_cursor`, whose footer is
/// unusable, from its blocks: every block whose frame and contents check
/// out is written again, with a new footer, into a file that replaces the
/// damaged one atomically. Returns the segment (`None` when no block
/// survived) and the bytes of the old file passed over (damage, and the
/// old filters and footer).
pub(crate) fn rebuild(
    fs: &dyn FileSystem,
    dir: &Path,
    base_cursor: u64,
    after: u64,
    settings: SealSettings,
) -> Result<(Option<(Segment, u64)>, u64), StoreError> {
    let path = dir.join(file_name(base_cursor));
    let bytes = fs
        .read(&path)
        .map_err(|e| StoreError::io("reading a damaged sealed segment", &path, e))?;
    let (frames, mut skipped) = file::frames(&bytes);
    let temp = dir.join(temp_name(base_cursor));
    let mut sealer = SealWriter::create(fs, &temp, settings)?;
    let mut last = after.max(base_cursor.saturating_sub(1));
    let mut records = Vec::new();
    for frame in &frames {
        let (templates, columns) = frame.data.split_at(frame.templates_len);
        let (Ok(templates), Ok(columns)) = (
            decompress(templates, frame.templates_raw_len as u32),
            decompress(columns, frame.raw_len as u32),
        ) else {
            skipped += frame.data.len() as u64;
            continue;
        };
        records.clear();
        if block::decode(&columns, &templates, None, &mut records).is_err() {
            skipped += frame.data.len() as u64;
            continue;
        }
        let mut pos = 0;
        while pos < records.len() {
            let Ok((entry, len)) = crate::record::decode_checked(&records[pos..]) else {
                break;
            };
            // Only entries in cursor order after what came before: a frame
            // that passes its checks by chance cannot reorder them.
            if entry.cursor > last {
                last = entry.cursor;
                if let Err(error) = sealer.push(&entry, len) {
                    drop(sealer);
                    let _ = fs.remove_file(&temp);
                    return Err(error);
                }
            }
            pos += len;
        }
    }
    Ok((finish(fs, dir, base_cursor, sealer)?, skipped))
}

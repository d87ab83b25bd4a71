//! A sealed segment file: compressed blocks, their filters, and a footer
//! that indexes both.
//!
//! ```text
//! "LTSEAL03"
//! block 0 .. block n-1     "LTB3", u32 data length, u32 decoded length,
//!                          u32 data CRC-32C, u32 templates length,
//!                          u32 templates decoded length, u32 templates
//!                          CRC-32C, then the data: a zstd frame of the
//!                          block's message templates, then one of its
//!                          other columns (block.rs)
//! text filters            every block's text filter, by bucket (bloom.rs)
//! label filters            every block's label filter, by bucket
//! footer                   u8 k, u8 w, u8 text probes, u8 label probes,
//!                          u32 n, u64 text filters offset, u32 text buckets,
//!                          u64 label filters offset, u32 label buckets,
//!                          then per block:
//!                            u64 record offset, u64 record end, u64 first cursor,
//!                            u64 last cursor, i64 min time, i64 max time,
//!                            u32 × 6 entries per level,
//!                            u64 data offset, u32 data length, u32 data CRC-32C,
//!                            u32 decoded length, u32 templates length,
//!                            u32 templates decoded length, u32 templates CRC-32C
//! trailer                  u64 footer offset, u32 footer length,
//!                          u32 footer CRC-32C, "LTSEALED"
//! ```
//!
//! Opening a sealed segment reads the trailer and the footer, nothing
//! else: open time does not grow with the data. Block summaries keep the
//! record offsets the entries would have in a record log, so a reader
//! moves through sealed and unsealed segments the same way. Every part is
//! checksummed on its own: a damaged block fails the reads that need it,
//! not the whole file. The footer is derived data: each block's frame
//! says its own length and checksum, so a file whose footer is lost is
//! rebuilt from its blocks (`frames`).

use super::bloom::{self, Probes};
use super::tokens::Scheme;
use crate::fs::{FileSystem, FsFile};
use crate::segment::Block;
use crate::{checksum, Level, StoreError};
use std::path::Path;

/// The format's version is its last two digits: a file of another version
/// is not misread as this one.
const HEAD_MAGIC: &[u8; 8] = b"LTSEAL03";
const TRAILER_MAGIC: &[u8; 8] = b"LTSEALED";
const TRAILER_LEN: usize = 24;
const FOOTER_HEAD_LEN: usize = 8 + 2 * (8 + 4);
const FOOTER_BLOCK_LEN: usize = 6 * 8 + Level::COUNT * 4 + 8 + 4 + 4 + 4 + 3 * 4;
const FRAME_MAGIC: &[u8; 4] = b"LTB3";
const FRAME_HEAD_LEN: usize = 28;

/// Where a block's bytes and filter are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub data_offset: u64,
    pub data_len: u32,
    pub data_crc: u32,
    /// The columns' length once decompressed.
    pub raw_len: u32,
    /// The message templates: the first `templates_len` bytes of the
    /// data, with a checksum of their own, so a search reads them alone.
    pub templates_len: u32,
    pub templates_raw_len: u32,
    pub templates_crc: u32,
}

/// Where a sealed file's filters of one kind are: `buckets` rows of one
/// bucket per block (see `bloom.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Filters {
    pub offset: u64,
    pub buckets: u32,
}

impl Filters {
    /// The byte range of the row holding `token`'s bucket of each of
    /// `blocks` blocks.
    pub fn row(&self, token: u64, blocks: usize) -> std::ops::Range<u64> {
        let len = (blocks * bloom::BUCKET_BYTES) as u64;
        let start = self.offset + bloom::bucket_of(token, self.buckets) as u64 * len;
        start..start + len
    }

    fn end(&self, blocks: usize) -> u64 {
        self.offset + self.buckets as u64 * (blocks * bloom::BUCKET_BYTES) as u64
    }
}

/// What opening a sealed file reads: how its tokens were made, and each
/// block's summary and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Footer {
    pub scheme: Scheme,
    pub probes: Probes,
    pub text: Filters,
    pub labels: Filters,
    pub blocks: Vec<Block>,
    pub places: Vec<Place>,
}

/// Writes a sealed file front to back: the head, then blocks, then
/// filters, footer and trailer.
pub(crate) struct FileWriter {
    file: Box<dyn FsFile>,
    written: u64,
    scheme: Scheme,
    probes: Probes,
    blocks: Vec<Block>,
    places: Vec<Place>,
    /// Each block's distinct text and label tokens, for the filters
    /// written after the blocks.
    text_tokens: Vec<Vec<u64>>,
    label_tokens: Vec<Vec<u64>>,
}

impl FileWriter {
    pub fn create(
        fs: &dyn FileSystem,
        path: &Path,
        scheme: Scheme,
        probes: Probes,
    ) -> Result<FileWriter, StoreError> {
        let file = fs
            .create(path)
            .map_err(|e| StoreError::io("creating a sealed segment", path, e))?;
        let mut writer = FileWriter {
            file,
            written: 0,
            scheme,
            probes,
            blocks: Vec::new(),
            places: Vec::new(),
            text_tokens: Vec::new(),
            label_tokens: Vec::new(),
        };
        writer.write(HEAD_MAGIC, path)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8], path: &Path) -> Result<u64, StoreError> {
        let at = self.written;
        self.file
            .write_all_at(bytes, at)
            .map_err(|e| StoreError::io("writing a sealed segment", path, e))?;
        self.written += bytes.len() as u64;
        Ok(at)
    }

    /// Appends one block: its compressed templates and columns, how long
    /// each is once decompressed, its summary and its distinct tokens
    /// (filtered later, with the others).
    #[allow(clippy::too_many_arguments)]
    pub fn block(
        &mut self,
        templates: &[u8],
        templates_raw_len: usize,
        columns: &[u8],
        raw_len: usize,
        summary: Block,
        tokens: (Vec<u64>, Vec<u64>),
        path: &Path,
    ) -> Result<(), StoreError> {
        let templates_crc = checksum::crc32c(templates);
        let data_len = templates.len() + columns.len();
        let data_crc = checksum::crc32c_append(templates_crc, columns);
        let mut head = [0u8; FRAME_HEAD_LEN];
        head[..4].copy_from_slice(FRAME_MAGIC);
        for (at, value) in [
            data_len as u32,
            raw_len as u32,
            data_crc,
            templates.len() as u32,
            templates_raw_len as u32,
            templates_crc,
        ]
        .into_iter()
        .enumerate()
        {
            head[4 + 4 * at..8 + 4 * at].copy_from_slice(&value.to_le_bytes());
        }
        self.write(&head, path)?;
        let data_offset = self.write(templates, path)?;
        self.write(columns, path)?;
        self.places.push(Place {
            data_offset,
            data_len: data_len as u32,
            data_crc,
            raw_len: raw_len as u32,
            templates_len: templates.len() as u32,
            templates_raw_len: templates_raw_len as u32,
            templates_crc,
        });
        self.blocks.push(summary);
        self.text_tokens.push(tokens.0);
        self.label_tokens.push(tokens.1);
        Ok(())
    }

    /// Writes the filters, the footer and the trailer, and makes the file
    /// durable. Returns the footer and the file's length.
    pub fn finish(mut self, path: &Path) -> Result<(Footer, u64), StoreError> {
        let mut filters = [None; 2];
        for (at, (tokens, kind)) in [
            (std::mem::take(&mut self.text_tokens), bloom::TEXT),
            (std::mem::take(&mut self.label_tokens), bloom::LABELS),
        ]
        .into_iter()
        .enumerate()
        {
            let most = tokens.iter().map(Vec::len).max().unwrap_or(0);
            let buckets = bloom::buckets_for(most, kind);
            let rows = bloom::build(&tokens, buckets, kind.probes);
            let offset = self.write(&rows, path)?;
            filters[at] = Some(Filters { offset, buckets });
        }
        let [Some(text), Some(labels)] = filters else {
            unreachable!("both kinds are written")
        };
        let footer = Footer {
            scheme: self.scheme,
            probes: self.probes,
            text,
            labels,
            blocks: std::mem::take(&mut self.blocks),
            places: std::mem::take(&mut self.places),
        };
        let bytes = encode_footer(&footer);
        let footer_offset = self.write(&bytes, path)?;
        let mut trailer = Vec::with_capacity(TRAILER_LEN);
        trailer.extend_from_slice(&footer_offset.to_le_bytes());
        trailer.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        trailer.extend_from_slice(&checksum::crc32c(&bytes).to_le_bytes());
        trailer.extend_from_slice(TRAILER_MAGIC);
        self.write(&trailer, path)?;
        self.file
            .sync_all()
            .map_err(|e| StoreError::io("syncing a sealed segment", path, e))?;
        Ok((footer, self.written))
    }
}

fn encode_footer(footer: &Footer) -> Vec<u8> {
    let mut out = Vec::with_capacity(FOOTER_HEAD_LEN + footer.blocks.len() * FOOTER_BLOCK_LEN);
    out.extend_from_slice(&[
        footer.scheme.k,
        footer.scheme.w,
        footer.probes.text,
        footer.probes.labels,
    ]);
    out.extend_from_slice(&(footer.blocks.len() as u32).to_le_bytes());
    for filters in [footer.text, footer.labels] {
        out.extend_from_slice(&filters.offset.to_le_bytes());
        out.extend_from_slice(&filters.buckets.to_le_bytes());
    }
    for (block, place) in footer.blocks.iter().zip(&footer.places) {
        for value in [
            block.offset,
            block.end,
            block.first_cursor,
            block.last_cursor,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&block.min_timestamp.to_le_bytes());
        out.extend_from_slice(&block.max_timestamp.to_le_bytes());
        for count in block.counts {
            out.extend_from_slice(&count.to_le_bytes());
        }
        out.extend_from_slice(&place.data_offset.to_le_bytes());
        out.extend_from_slice(&place.data_len.to_le_bytes());
        out.extend_from_slice(&place.data_crc.to_le_bytes());
        out.extend_from_slice(&place.raw_len.to_le_bytes());
        out.extend_from_slice(&place.templates_len.to_le_bytes());
        out.extend_from_slice(&place.templates_raw_len.to_le_bytes());
        out.extend_from_slice(&place.templates_crc.to_le_bytes());
    }
    out
}

/// Why a sealed file's footer cannot be used.
pub(crate) type FooterError = &'static str;

/// Reads the trailer and footer of a sealed file `len` bytes long.
pub(crate) fn read_footer(file: &dyn FsFile, len: u64) -> Result<Footer, FooterError> {
    if len < (HEAD_MAGIC.len() + TRAILER_LEN) as u64 {
        return Err("the file is shorter than a sealed segment's head and trailer");
    }
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 0)
        .map_err(|_| "the head cannot be read")?;
    if &head != HEAD_MAGIC {
        return Err("the file does not start like a sealed segment");
    }
    let mut trailer = [0u8; TRAILER_LEN];
    file.read_exact_at(&mut trailer, len - TRAILER_LEN as u64)
        .map_err(|_| "the trailer cannot be read")?;
    if &trailer[16..] != TRAILER_MAGIC {
        return Err("the trailer is missing: the file was cut short");
    }
    let footer_offset = u64::from_le_bytes(trailer[0..8].try_into().unwrap());
    let footer_len = u32::from_le_bytes(trailer[8..12].try_into().unwrap()) as u64;
    let footer_crc = u32::from_le_bytes(trailer[12..16].try_into().unwrap());
    if footer_offset.checked_add(footer_len) != Some(len - TRAILER_LEN as u64) {
        return Err("the trailer points outside the file");
    }
    let mut bytes = vec![0u8; footer_len as usize];
    file.read_exact_at(&mut bytes, footer_offset)
        .map_err(|_| "the footer cannot be read")?;
    if checksum::crc32c(&bytes) != footer_crc {
        return Err("the footer's checksum does not match");
    }
    decode_footer(&bytes, footer_offset)
}

fn decode_footer(bytes: &[u8], footer_offset: u64) -> Result<Footer, FooterError> {
    if bytes.len() < FOOTER_HEAD_LEN {
        return Err("the footer is cut short");
    }
    let scheme = Scheme {
        k: bytes[0],
        w: bytes[1],
    };
    let probes = Probes {
        text: bytes[2],
        labels: bytes[3],
    };
    if !(1..=8).contains(&scheme.k) || scheme.w == 0 || probes.text == 0 || probes.labels == 0 {
        return Err("the footer names a token scheme this version does not know");
    }
    let n = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    if bytes.len() != FOOTER_HEAD_LEN + n * FOOTER_BLOCK_LEN {
        return Err("the footer's length does not match its block count");
    }
    let filters = |at: usize| Filters {
        offset: u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()),
        buckets: u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()),
    };
    let (text, labels) = (filters(8), filters(20));
    for filters in [text, labels] {
        if filters.buckets == 0 || filters.end(n) > footer_offset || filters.offset < 8 {
            return Err("the footer places its filters outside the file");
        }
    }
    let mut blocks = Vec::with_capacity(n);
    let mut places = Vec::with_capacity(n);
    for entry in bytes[FOOTER_HEAD_LEN..].chunks_exact(FOOTER_BLOCK_LEN) {
        let mut at = 0;
        let u64_at = |at: &mut usize| {
            let value = u64::from_le_bytes(entry[*at..*at + 8].try_into().unwrap());
            *at += 8;
            value
        };
        let offset = u64_at(&mut at);
        let end = u64_at(&mut at);
        let first_cursor = u64_at(&mut at);
        let last_cursor = u64_at(&mut at);
        let min_timestamp = u64_at(&mut at) as i64;
        let max_timestamp = u64_at(&mut at) as i64;
        let mut counts = [0u32; Level::COUNT];
        for count in &mut counts {
            *count = u32::from_le_bytes(entry[at..at + 4].try_into().unwrap());
            at += 4;
        }
        let data_offset = u64_at(&mut at);
        let u32_at = |at: &mut usize| {
            let value = u32::from_le_bytes(entry[*at..*at + 4].try_into().unwrap());
            *at += 4;
            value
        };
        let data_len = u32_at(&mut at);
        let data_crc = u32_at(&mut at);
        let raw_len = u32_at(&mut at);
        let templates_len = u32_at(&mut at);
        let templates_raw_len = u32_at(&mut at);
        let templates_crc = u32_at(&mut at);
        let block = Block {
            offset,
            end,
            first_cursor,
            last_cursor,
            min_timestamp,
            max_timestamp,
            counts,
        };
        let place = Place {
            data_offset,
            data_len,
            data_crc,
            raw_len,
            templates_len,
            templates_raw_len,
            templates_crc,
        };
        let fits = |offset: u64, len: u32| {
            offset
                .checked_add(len as u64)
                .is_some_and(|end| end <= footer_offset)
        };
        if block.count_from(None) == 0
            || first_cursor > last_cursor
            || offset > end
            || !fits(data_offset, data_len)
            || templates_len > data_len
        {
            return Err("a block's summary or place is impossible");
        }
        if let Some(previous) = blocks.last() {
            let previous: &Block = previous;
            if first_cursor <= previous.last_cursor || offset != previous.end {
                return Err("the blocks are out of order");
            }
        }
        blocks.push(block);
        places.push(place);
    }
    Ok(Footer {
        scheme,
        probes,
        text,
        labels,
        blocks,
        places,
    })
}

/// A block's data found by walking a sealed file's frames.
pub(crate) struct Frame {
    pub data: Vec<u8>,
    pub raw_len: usize,
    /// The templates: the first `templates_len` bytes of `data`.
    pub templates_len: usize,
    pub templates_raw_len: usize,
}

/// Every block frame whose checksum holds in the sealed file `bytes`, in
/// order, for rebuilding a file whose footer is lost; and the bytes
/// passed over between them (damage, then the filters and footer).
pub(crate) fn frames(bytes: &[u8]) -> (Vec<Frame>, u64) {
    let mut frames = Vec::new();
    let mut skipped = 0u64;
    let mut pos = HEAD_MAGIC.len().min(bytes.len());
    while pos < bytes.len() {
        let Some(found) = memmem(&bytes[pos..], FRAME_MAGIC) else {
            skipped += (bytes.len() - pos) as u64;
            break;
        };
        skipped += found as u64;
        pos += found;
        let frame = bytes.get(pos..pos + FRAME_HEAD_LEN).and_then(|head| {
            let field = |at: usize| {
                u32::from_le_bytes(head[4 + 4 * at..8 + 4 * at].try_into().unwrap()) as usize
            };
            let (len, raw_len, crc) = (field(0), field(1), field(2) as u32);
            let (templates_len, templates_raw_len) = (field(3), field(4));
            let data = bytes.get(pos + FRAME_HEAD_LEN..pos + FRAME_HEAD_LEN + len)?;
            (checksum::crc32c(data) == crc && templates_len <= len).then(|| Frame {
                data: data.to_vec(),
                raw_len,
                templates_len,
                templates_raw_len,
            })
        });
        match frame {
            Some(frame) => {
                pos += FRAME_HEAD_LEN + frame.data.len();
                frames.push(frame);
            }
            None => {
                skipped += 1;
                pos += 1;
            }
        }
    }
    (frames, skipped)
}

fn memmem(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

//! A sealed block's contents: its entries as columns, then compressed.
//!
//! ```text
//! varint n, varint first cursor
//! n-1 varints   cursor - previous cursor (1 unless recovery left a gap)
//! n varints     timestamp - previous timestamp, zigzag (the first from 0)
//! n bytes       levels
//! the labels, a column per name (`labels.rs`)
//! the messages as template references and values (`template.rs`)
//! ```
//!
//! The messages' templates are kept apart (`finish`'s `templates`), so a
//! search can read them alone to rule a block out.
//!
//! Each column holds one kind of value, so zstd finds its repetitions:
//! timestamps a few microseconds apart become one- or two-byte deltas,
//! levels runs, labels and messages a template reference and their values
//! in binary. Decoding gives back the very records the segment held (see
//! `record.rs`), so readers go through the same code for sealed and
//! unsealed data.

use super::labels::{LabelReader, LabelWriter};
use super::template::{MessageReader, MessageWriter};
use crate::record::{self, Head};
use crate::segment::Block;
use crate::{EntryRef, Level, StoreError};

/// Entries gathered for one block, by column.
#[derive(Default)]
pub(crate) struct BlockWriter {
    entries: usize,
    first_cursor: u64,
    previous_cursor: u64,
    previous_timestamp: i64,
    cursors: Vec<u8>,
    timestamps: Vec<u8>,
    levels: Vec<u8>,
    labels: LabelWriter,
    messages: MessageWriter,
    /// The bytes the block's entries take as records: its size once decoded.
    record_bytes: u64,
}

impl BlockWriter {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The bytes the block will take once decoded.
    pub fn record_bytes(&self) -> u64 {
        self.record_bytes
    }

    /// Adds an entry whose record was `record_len` bytes long.
    pub fn push(&mut self, entry: &EntryRef<'_>, record_len: usize) {
        if self.entries == 0 {
            self.first_cursor = entry.cursor;
        } else {
            varint(&mut self.cursors, entry.cursor - self.previous_cursor);
        }
        let delta = entry.timestamp.wrapping_sub(self.previous_timestamp);
        varint(&mut self.timestamps, zigzag(delta));
        self.levels.push(entry.level as u8);
        self.labels.push(entry.labels());
        self.messages.push(entry.message.as_bytes());
        self.previous_cursor = entry.cursor;
        self.previous_timestamp = entry.timestamp;
        self.entries += 1;
        self.record_bytes += record_len as u64;
    }

    /// The block's message templates in `templates` and its other columns
    /// in `out` (each to be compressed), and the writer emptied for the
    /// next block.
    pub fn finish(&mut self, templates: &mut Vec<u8>, out: &mut Vec<u8>) {
        templates.clear();
        out.clear();
        varint(out, self.entries as u64);
        varint(out, self.first_cursor);
        out.extend_from_slice(&self.cursors);
        out.extend_from_slice(&self.timestamps);
        out.extend_from_slice(&self.levels);
        self.labels.finish(out);
        self.messages.finish_apart(templates, out);
        self.entries = 0;
        self.previous_timestamp = 0;
        self.record_bytes = 0;
        self.cursors.clear();
        self.timestamps.clear();
        self.levels.clear();
    }
}

/// Turns a block's columns back into records, appended to `out`; checks
/// them against the block's summary when there is one (there is none when
/// a sealed file is rebuilt from its blocks). Returns how many entries
/// there were.
pub(crate) fn decode(
    columns: &[u8],
    templates: &[u8],
    summary: Option<&Block>,
    out: &mut Vec<u8>,
) -> Result<usize, &'static str> {
    let mut input = Input(columns);
    let n = input.varint()? as usize;
    if summary.is_some_and(|block| n as u64 != block.count_from(None)) {
        return Err("the block holds another number of entries than its summary says");
    }
    if n == 0 || n > columns.len() {
        return Err("impossible entry count");
    }
    let first_cursor = input.varint()?;
    // Each varint column is read in step with the others below.
    let mut cursor_column = input.column(n - 1)?;
    let mut time_column = input.column(n)?;
    let levels = input.take(n).map_err(|_| "the levels are cut short")?;
    let (mut labels, rest) = LabelReader::new(input.0, n)?;
    let mut messages = MessageReader::apart(templates, rest, n)?;
    let mut message = Vec::new();
    let mut label_bytes = Vec::new();
    let mut cursor = first_cursor;
    let mut timestamp = 0i64;
    for (i, &level) in levels.iter().enumerate() {
        if i > 0 {
            cursor = cursor
                .checked_add(cursor_column.varint()?)
                .ok_or("a cursor overflows")?;
        }
        timestamp = timestamp.wrapping_add(unzigzag(time_column.varint()?));
        let level = Level::from_byte(level).ok_or("unknown level byte")?;
        message.clear();
        messages.next(&mut message)?;
        label_bytes.clear();
        labels.next(&mut label_bytes)?;
        record::encode_parts(
            out,
            Head {
                cursor,
                timestamp,
                level,
            },
            &message,
            &label_bytes,
        )
        .map_err(|_| "an entry too large for a record")?;
    }
    if !messages.is_spent() || !labels.is_spent() {
        return Err("the block holds more values than its templates use");
    }
    if summary
        .is_some_and(|block| first_cursor != block.first_cursor || cursor != block.last_cursor)
    {
        return Err("the block's cursors are not those of its summary");
    }
    Ok(n)
}

/// Calls `visit` with the cursor, time and level of every entry of a
/// block, read from the front of its columns alone: they come before the
/// labels and messages, so a count by level and time decompresses a few
/// bytes an entry instead of the block. `prefix` is the first bytes of the
/// columns (`complete` when it is all of them); `Ok(false)` asks for more.
pub(crate) fn heads(
    prefix: &[u8],
    complete: bool,
    mut visit: impl FnMut(Head),
) -> Result<bool, &'static str> {
    let parsed = (|| {
        let mut input = Input(prefix);
        let n = input.varint()? as usize;
        if n == 0 || (complete && n > prefix.len()) {
            return Err("impossible entry count");
        }
        let first_cursor = input.varint()?;
        let cursors = input.column(n - 1)?;
        let times = input.column(n)?;
        let levels = input.take(n).map_err(|_| "the levels are cut short")?;
        Ok((first_cursor, cursors, times, levels))
    })();
    let (first_cursor, mut cursors, mut times, levels) = match parsed {
        Ok(parts) => parts,
        Err(_) if !complete => return Ok(false),
        Err(reason) => return Err(reason),
    };
    let mut cursor = first_cursor;
    let mut timestamp = 0i64;
    for (i, &level) in levels.iter().enumerate() {
        if i > 0 {
            cursor = cursor
                .checked_add(cursors.varint()?)
                .ok_or("a cursor overflows")?;
        }
        timestamp = timestamp.wrapping_add(unzigzag(times.varint()?));
        let level = Level::from_byte(level).ok_or("unknown level byte")?;
        visit(Head {
            cursor,
            timestamp,
            level,
        });
    }
    Ok(true)
}

/// A sealed block's columns could not be decoded.
pub(crate) fn corrupt(path: &std::path::Path, offset: u64, reason: &'static str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

/// Appends `value` as a LEB128 varint.
pub(super) fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

/// Bytes being read from the front.
pub(super) struct Input<'a>(pub(super) &'a [u8]);

impl<'a> Input<'a> {
    pub(super) fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= ((byte & 0x7f) as u64) << (7 * i);
            if byte < 0x80 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err("a number is cut short")
    }

    /// Takes a column of `n` varints off the front, for reading in step
    /// with other columns later.
    pub(super) fn column(&mut self, n: usize) -> Result<Input<'a>, &'static str> {
        let start = self.0;
        for _ in 0..n {
            self.varint()?;
        }
        Ok(Input(&start[..start.len() - self.0.len()]))
    }

    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let taken = self.0.get(..len).ok_or("a field is cut short")?;
        self.0 = &self.0[len..];
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;
    use logtap_core::NewEntry;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_come_back_byte_for_byte(
            entries in proptest::collection::vec(
                (1u64..4, any::<i64>(), 0u8..6, ".{0,40}", proptest::collection::vec(("[a-c]{1,3}", ".{0,5}"), 0..3)),
                1..60,
            )
        ) {
            let mut records = Vec::new();
            let mut cursor = 10u64;
            let mut writer = BlockWriter::default();
            let mut summary: Option<Block> = None;
            for (step, timestamp, level, message, labels) in entries {
                cursor += step;
                let entry = NewEntry { timestamp, level: Level::from_byte(level).unwrap(), message, labels };
                let start = records.len();
                record::encode(&mut records, cursor, &entry).unwrap();
                let (decoded, len) = record::decode(&records[start..]).unwrap();
                writer.push(&decoded, len);
                summary.get_or_insert_with(|| Block::new(0, cursor, timestamp)).add(cursor, timestamp, entry.level, len as u64);
            }
            let summary = summary.unwrap();
            prop_assert_eq!(writer.record_bytes(), records.len() as u64);
            let (mut templates, mut columns) = (Vec::new(), Vec::new());
            writer.finish(&mut templates, &mut columns);
            prop_assert!(writer.is_empty());
            let mut out = Vec::new();
            let n = decode(&columns, &templates, Some(&summary), &mut out).unwrap();
            prop_assert_eq!(n as u64, summary.count_from(None));
            // The heads alone, from the whole columns and from any prefix
            // that holds them, are the records' heads.
            let mut expected = Vec::new();
            let mut pos = 0;
            while pos < records.len() {
                let (entry, len) = record::decode(&records[pos..]).unwrap();
                expected.push((entry.cursor, entry.timestamp, entry.level));
                pos += len;
            }
            for cut in [columns.len(), columns.len() / 2, 3, 0] {
                let mut heads = Vec::new();
                let done = super::heads(&columns[..cut], cut == columns.len(), |head| {
                    heads.push((head.cursor, head.timestamp, head.level))
                })
                .unwrap();
                prop_assert!(done || cut < columns.len());
                if done {
                    prop_assert_eq!(&heads, &expected);
                } else {
                    prop_assert!(heads.is_empty());
                }
            }
            // The same records, their CRCs left out (see `encode_parts`).
            let mut pos = 0;
            while pos < records.len() {
                let (_, len) = record::decode(&records[pos..]).unwrap();
                records[pos + 4..pos + 8].fill(0);
                pos += len;
            }
            prop_assert_eq!(out, records);
        }

        #[test]
        fn damaged_columns_never_panic(cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
            let mut writer = BlockWriter::default();
            let mut records = Vec::new();
            let mut summary = None::<Block>;
            for cursor in 1..20u64 {
                let entry = NewEntry { timestamp: cursor as i64, level: Level::Info, message: format!("line {cursor}"), labels: vec![("s".into(), "a".into())] };
                let start = records.len();
                record::encode(&mut records, cursor, &entry).unwrap();
                let (decoded, len) = record::decode(&records[start..]).unwrap();
                writer.push(&decoded, len);
                summary.get_or_insert_with(|| Block::new(0, cursor, cursor as i64)).add(cursor, cursor as i64, Level::Info, len as u64);
            }
            let (mut templates, mut columns) = (Vec::new(), Vec::new());
            writer.finish(&mut templates, &mut columns);
            let at = flip.index(columns.len());
            columns[at] ^= 0x55;
            let cut = cut.index(columns.len() + 1);
            let _ = decode(&columns[..cut], &templates, summary.as_ref(), &mut Vec::new());
            let at = flip.index(templates.len());
            templates[at] ^= 0x55;
            let _ = decode(&columns, &templates, summary.as_ref(), &mut Vec::new());
        }
    }
}

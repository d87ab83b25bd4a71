//! Runs: the rest of a chunk of the newest records, taken by a live reader
//! in one step.
//!
//! A thousand live tails woken by one commit each used to read the commit's
//! records one by one, and each transport encoded every record for itself:
//! a thousand times the same work. A reader at the live edge that needs
//! every record (no store filter) can instead take the rest of the shared
//! chunk as one [`Run`], and what a transport makes of a chunk (its
//! encoded messages) can be made once and kept with the chunk
//! ([`Run::derived`]) for every other reader.

use crate::recent::ChunkBytes;
use crate::record;
use crate::{EntryRef, StoreError};
use std::any::Any;
use std::sync::Arc;

/// Consecutive records at the end of a chunk of the newest published
/// records, borrowed from a reader that has already moved past them.
#[derive(Debug)]
pub struct Run<'a> {
    /// The chunk the records are in.
    chunk: &'a ChunkBytes,
    /// How many of the chunk's records come before the run's first.
    skipped: usize,
    /// Where the run's first record starts in the chunk.
    start: usize,
}

impl<'a> Run<'a> {
    pub(crate) fn new(chunk: &'a ChunkBytes, skipped: usize, start: usize) -> Run<'a> {
        Run {
            chunk,
            skipped,
            start,
        }
    }

    /// The cursor of the run's first record.
    pub fn first_cursor(&self) -> u64 {
        self.chunk.first_cursor + self.skipped as u64
    }

    /// The cursor of the run's last record, which is its chunk's last.
    pub fn last_cursor(&self) -> u64 {
        self.chunk.last_cursor()
    }

    /// How many records the run holds.
    pub fn len(&self) -> usize {
        self.chunk.records - self.skipped
    }

    /// Whether the run holds no record (never, for a run a reader took).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of its chunk's records come before the run: the index of
    /// the run's first record in what [`Run::derived`] is made from.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The run's entries, in cursor order.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            bytes: &self.chunk[self.start..],
        }
    }

    /// The value of type `T` derived from every record of the run's chunk
    /// (those before the run too, from [`Run::skipped`]): `make` gets
    /// them and runs once per chunk, whichever reader asks first; every
    /// other reader of the chunk shares the result.
    pub fn derived<T: Any + Send + Sync>(&self, make: impl FnOnce(Entries<'a>) -> T) -> Arc<T> {
        let chunk = self.chunk;
        chunk.derived(|| make(Entries { bytes: chunk }))
    }
}

/// The entries of a run or of its chunk, decoded one by one.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    /// Whole records not yet decoded.
    bytes: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<EntryRef<'a>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        // These bytes were made by this process's writer and never came
        // from the disk: there is no CRC to check, only the framing.
        match record::decode_checked(self.bytes) {
            Ok((entry, len)) => {
                self.bytes = &self.bytes[len..];
                Some(Ok(entry))
            }
            Err(_) => {
                self.bytes = &[];
                Some(Err(StoreError::unreadable_in_memory()))
            }
        }
    }
}

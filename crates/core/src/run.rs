//! Runs: the rest of a chunk of the newest records, taken by a live reader
//! in one step.
//!
//! A thousand live tails woken by one commit would each read the commit's
//! records one by one, and each transport would encode every record for
//! itself: a thousand times the same work. A reader at the live edge that
//! needs every record (no backend filter) can instead take the rest of a
//! shared chunk as one [`Run`], and what a transport makes of a chunk (its
//! encoded messages) is made once and kept with the chunk
//! ([`Run::derived`]) for every other reader.
//!
//! Runs are a capability a backend may offer
//! ([`LogReader::take_run`](crate::LogReader::take_run)); one that does not
//! simply has its readers step entry by entry.

use crate::{EntryRef, StoreError};
use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex};

/// Whole records a backend keeps in memory, shared by every reader that
/// takes them. Implemented by the backend's chunk type; the records'
/// encoding is the backend's own, so it decodes them.
pub trait SharedRecords: Send + Sync + fmt::Debug {
    /// The cursor of the first record; a chunk's cursors are consecutive.
    fn first_cursor(&self) -> u64;
    /// How many records the chunk holds.
    fn records(&self) -> usize;
    /// The records' bytes.
    fn bytes(&self) -> &[u8];
    /// Decodes the record at the start of `bytes` (a suffix of
    /// [`bytes`](SharedRecords::bytes) starting at a record) and gives its
    /// length; `None` if it does not decode.
    fn decode<'a>(&self, bytes: &'a [u8]) -> Option<(EntryRef<'a>, usize)>;
    /// What users derived from these records, kept with them.
    fn derived(&self) -> &Derived;
}

/// Values derived from a chunk of records once for every reader (the
/// server's encoded responses), one per type, gone with the chunk.
#[derive(Default)]
pub struct Derived {
    /// Each type's value; a handful of types at most, so a list.
    values: Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
}

impl fmt::Debug for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Derived").finish_non_exhaustive()
    }
}

impl Derived {
    /// The value of type `T`, made by `make` the first time it is asked
    /// for. The lock is held while `make` runs, so a thousand readers
    /// arriving together make it once.
    pub fn get_or_make<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = TypeId::of::<T>();
        let value = match values.iter().find(|(id, _)| *id == wanted) {
            Some((_, value)) => Arc::clone(value),
            None => {
                let value: Arc<dyn Any + Send + Sync> = Arc::new(make());
                values.push((wanted, Arc::clone(&value)));
                value
            }
        };
        // The entry for `T` only ever holds a `T`.
        value
            .downcast()
            .unwrap_or_else(|_| unreachable!("derived value of another type"))
    }
}

/// Consecutive records at the end of a chunk of the newest published
/// records, borrowed from a reader that has already moved past them.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The chunk the records are in.
    chunk: &'a dyn SharedRecords,
    /// How many of the chunk's records come before the run's first.
    skipped: usize,
    /// Where the run's first record starts in the chunk's bytes.
    start: usize,
}

impl<'a> Run<'a> {
    /// The records of `chunk` from its `skipped`-th, which starts at byte
    /// `start`, to its end.
    pub fn new(chunk: &'a dyn SharedRecords, skipped: usize, start: usize) -> Run<'a> {
        Run {
            chunk,
            skipped,
            start,
        }
    }

    /// The cursor of the run's first record.
    pub fn first_cursor(&self) -> u64 {
        self.chunk.first_cursor() + self.skipped as u64
    }

    /// The cursor of the run's last record, which is its chunk's last.
    pub fn last_cursor(&self) -> u64 {
        self.chunk.first_cursor() + self.chunk.records().saturating_sub(1) as u64
    }

    /// How many records the run holds.
    pub fn len(&self) -> usize {
        self.chunk.records() - self.skipped
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
            chunk: self.chunk,
            bytes: &self.chunk.bytes()[self.start..],
        }
    }

    /// The value of type `T` derived from every record of the run's chunk
    /// (those before the run too, from [`Run::skipped`]): `make` gets
    /// them and runs once per chunk, whichever reader asks first; every
    /// other reader of the chunk shares the result.
    pub fn derived<T: Any + Send + Sync>(&self, make: impl FnOnce(Entries<'a>) -> T) -> Arc<T> {
        let chunk = self.chunk;
        chunk.derived().get_or_make(|| {
            make(Entries {
                chunk,
                bytes: chunk.bytes(),
            })
        })
    }
}

/// The entries of a run or of its chunk, decoded one by one.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    /// Who decodes the records.
    chunk: &'a dyn SharedRecords,
    /// Whole records not yet decoded.
    bytes: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<EntryRef<'a>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        match self.chunk.decode(self.bytes) {
            Some((entry, len)) => {
                self.bytes = &self.bytes[len..];
                Some(Ok(entry))
            }
            None => {
                self.bytes = &[];
                Some(Err(StoreError::unreadable_in_memory()))
            }
        }
    }
}

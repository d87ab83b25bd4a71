//! logtap's storage engine: an embedded, append-only log of entries.
//!
//! Entries live in segment files in one data directory. Every entry gets a
//! cursor (a u64, strictly increasing in arrival order, never reused). Each
//! segment keeps in memory a summary per block of records (cursor range,
//! time range, count per level), so filters on level, time and cursor skip
//! whole blocks without decoding them, and exact counts cost O(blocks).
//! The newest published bytes also stay in memory, in a fixed amount
//! ([`StoreConfig::recent_bytes`]), so readers following the newest entries
//! share them instead of each reading the file.
//!
//! The store implements [`logtap_core::Backend`]: entries, read options
//! and errors are the core crate's types. It is synchronous and knows nothing of the network or of an async
//! runtime: callers that need to wake tasks register a commit hook
//! ([`Store::on_commit`]); blocking callers can use [`Store::wait_for`].
//!
//! See ARCHITECTURE.md at the repository root for the on-disk format and
//! the invariants.

#![deny(missing_docs)]

pub mod checksum;
mod config;
pub mod fault;
mod format;
pub mod fs;
mod reader;
mod recent;
mod record;
mod recovery;
mod sealed;
mod segment;
mod store;

pub use config::{Retention, StoreConfig, SyncPolicy};
pub use format::{FORMAT_FILE, FORMAT_VERSION};
pub use fs::{FileSystem, FsFile, StdFileSystem};
pub use reader::Reader;
pub use recovery::{RecoveryEvent, RecoveryReport};
pub use store::{segment_files, Store};

// The shared types the store's modules use, from the core crate: the store
// is one implementation of `logtap_core::Backend`.
use logtap_core::{EntryRef, Level, NewEntry, StoreError};

/// Appends `entry` in the store's record form (framed, with its CRC-32C,
/// cursor 0): the form a replicated log carries an entry in, so that a node
/// applying the log checks every entry it takes, as it checks its files.
pub fn encode_entry(out: &mut Vec<u8>, entry: &NewEntry) -> Result<(), StoreError> {
    record::encode(out, 0, entry)
}

/// The entry in `bytes`, which must hold exactly one record made by
/// [`encode_entry`]; `what` names where the bytes came from, for the error.
pub fn decode_entry(bytes: &[u8], what: &str) -> Result<NewEntry, StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        path: std::path::PathBuf::from(what),
        offset: 0,
        reason,
    };
    match record::decode(bytes) {
        Ok((entry, len)) if len == bytes.len() => Ok(NewEntry {
            timestamp: entry.timestamp,
            level: entry.level,
            message: entry.message.to_string(),
            labels: entry
                .labels()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }),
        Ok(_) => Err(corrupt("bytes follow the record")),
        Err(record::DecodeError::Incomplete { .. }) => Err(corrupt("the record is cut short")),
        Err(record::DecodeError::Corrupt(reason)) => Err(corrupt(reason)),
    }
}

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

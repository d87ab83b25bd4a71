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
//! The store is synchronous and knows nothing of the network or of an async
//! runtime: callers that need to wake tasks register a commit hook
//! ([`Store::on_commit`]); blocking callers can use [`Store::wait_for`].
//!
//! See ARCHITECTURE.md at the repository root for the on-disk format and
//! the invariants.

pub mod checksum;
mod config;
mod entry;
mod error;
mod level;
mod reader;
mod recent;
mod record;
mod recovery;
mod run;
mod segment;
mod store;

pub use config::{Retention, StoreConfig, SyncPolicy};
pub use entry::{Entry, EntryRef, Labels, NewEntry};
pub use error::StoreError;
pub use level::{Level, UnknownLevel};
pub use reader::{Direction, Filter, ReadOptions, Reader, Step};
pub use recovery::{RecoveryEvent, RecoveryReport};
pub use run::{Entries, Run};
pub use store::{segment_files, AppendReceipt, Store, StoreStats};

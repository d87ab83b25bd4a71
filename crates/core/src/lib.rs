//! logtap's shared types, and the interface every backend implements.
//!
//! * Entries: [`NewEntry`] goes in, [`EntryRef`] (borrowed from a reader's
//!   buffer) and [`Entry`] (owned) come out; [`Level`] orders their
//!   severity and [`Labels`] walks their labels in the compact form every
//!   backend keeps.
//! * Reading: [`ReadOptions`] (cursor bounds, [`Direction`], the
//!   [`Filter`] a backend applies itself) and [`Step`].
//! * The backend interface: [`Backend`] and [`LogReader`], with the
//!   optional shared newest-records capability ([`Run`]), the one error
//!   type [`StoreError`], and [`EntryLimits`].
//!
//! * [`json`]: the one JSON form of an entry and the one JSON string
//!   escaper.
//!
//! The standard library only: the CLI, the ingest decoders, the query
//! planner and the server build on this crate without building a storage
//! engine or a runtime.

#![deny(missing_docs)]

mod backend;
mod entry;
mod error;
pub mod json;
mod labels;
mod level;
mod limits;
mod read;
mod run;

pub use backend::{histogram_bucket, AppendReceipt, Backend, CommitHook, LogReader, StoreStats};
pub use entry::{Entry, EntryRef, NewEntry};
pub use error::{clip_quote, StoreError};
pub use labels::{
    encode_labels, encoded_labels_len, normalize_labels, Labels, MAX_LABELS, MAX_LABEL_TEXT_BYTES,
};
pub use level::{Level, UnknownLevel};
pub use limits::{content_bytes, EntryLimits};
pub use read::{Direction, Filter, ReadOptions, Search, Step};
pub use run::{Derived, Entries, Run, SharedRecords};

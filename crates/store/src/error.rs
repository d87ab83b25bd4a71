//! The store's errors.

use std::io;
use std::path::PathBuf;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed; `context` says what the store was doing.
    #[error("{context} ({path}): {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A reader asked to resume after a cursor that retention has deleted.
    #[error(
        "cursor {requested} is older than anything kept: the oldest cursor still held is {oldest}"
    )]
    CursorDeleted { requested: u64, oldest: u64 },
    /// A record inside a sealed segment failed its checksum while being read:
    /// the file changed under the store after it was opened.
    #[error("corrupt record in {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    /// An entry too large for the record format (message over 4 GiB, a
    /// label over 64 KiB, or over 65,535 labels).
    #[error("entry too large to store: {0}")]
    EntryTooLarge(&'static str),
    /// An earlier write failed half-way and the store could not cut the file
    /// back; it refuses further appends until reopened.
    #[error("the store stopped accepting writes after an earlier failure: {0}")]
    Poisoned(String),
}

impl StoreError {
    /// A record kept in memory (see `Run`) that does not decode: only a
    /// bug in the writer could make one.
    pub fn unreadable_in_memory() -> StoreError {
        StoreError::Corrupt {
            path: PathBuf::from("(memory)"),
            offset: 0,
            reason: "a record kept in memory is unreadable",
        }
    }

    /// Whether the failure is a full disk (or quota), which clients can
    /// retry once space returns.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || source.kind() == io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

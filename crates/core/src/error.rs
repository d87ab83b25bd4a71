//! What can go wrong reading or writing log data, whatever the backend.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What can go wrong in a store (any [`Backend`](crate::Backend)).
///
/// One type for every backend, so the server maps each case to a gRPC code
/// and an HTTP status in one place whatever keeps the entries.
#[derive(Debug)]
pub enum StoreError {
    /// An I/O call failed; `context` says what the store was doing.
    Io {
        /// What the store was doing, as a phrase ("writing a batch").
        context: &'static str,
        /// The file or directory the call was on.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A reader asked to resume after a cursor that retention has deleted.
    CursorDeleted {
        /// The cursor the reader asked for.
        requested: u64,
        /// The oldest cursor still held, where the reader can resume.
        oldest: u64,
    },
    /// A record inside a sealed segment failed its checksum while being
    /// read, or the file ends before it: the file changed under the store
    /// after it was opened, and the record's entries are lost.
    Corrupt {
        /// The file the record is in.
        path: PathBuf,
        /// Where the record starts in it.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry too large for the store (see [`EntryLimits`](crate::EntryLimits)).
    EntryTooLarge(&'static str),
    /// An earlier write failed half-way and the store could not cut the file
    /// back; it refuses further appends until reopened.
    Poisoned(String),
    /// Another store, in this process or another, has the data directory
    /// open: two writers on one directory would corrupt each other's
    /// segments.
    Locked {
        /// The data directory asked for.
        dir: PathBuf,
        /// The pid the holder wrote into the lock file, if it could be read.
        holder_pid: Option<u32>,
    },
    /// An append at a given cursor (a replicated log applied into a local
    /// copy) asked for a cursor the store has already passed: applying it
    /// would reuse or reorder cursors.
    CursorBehind {
        /// The cursor the append asked to start at.
        requested: u64,
        /// The next cursor the store can take.
        next: u64,
    },
    /// The log of record (a replicated backend's cluster) did not answer or
    /// refused for now; the same request may succeed when it is retried.
    Unavailable(String),
    /// The data directory's `FORMAT` file names a layout this build cannot
    /// read: written by a newer logtap, or not a format version at all.
    Format {
        /// The `FORMAT` file.
        path: PathBuf,
        /// What the file holds, as found (trimmed).
        found: String,
        /// The newest format version this build reads and writes.
        supported: u32,
    },
}

impl StoreError {
    /// An I/O error with what the store was doing and on which path.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// A record kept in memory (see [`Run`](crate::Run)) that does not
    /// decode: only a bug in the writer could make one.
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
}

/// The first `keep` bytes of a client's `text` (cut on a character
/// boundary), with a note of the whole length when it was cut: what an error
/// message quotes back of what a client sent, so that a megabyte of
/// "level" or pattern never becomes a megabyte of error.
pub fn clip_quote(text: &str, keep: usize) -> String {
    if text.len() <= keep {
        return text.to_string();
    }
    let mut cut = keep;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..cut], text.len())
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io {
                context,
                path,
                source,
            } => write!(f, "{context} ({}): {source}", path.display()),
            StoreError::CursorDeleted { requested, oldest } => write!(
                f,
                "cursor {requested} is older than anything kept: the oldest cursor still held is {oldest}"
            ),
            StoreError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt record in {} at byte {offset}: {reason}",
                path.display()
            ),
            StoreError::EntryTooLarge(what) => write!(f, "entry too large to store: {what}"),
            StoreError::Poisoned(why) => write!(
                f,
                "the store stopped accepting writes after an earlier failure: {why}"
            ),
            StoreError::Locked { dir, holder_pid } => {
                write!(
                    f,
                    "the data directory {} is in use by another logtap process",
                    dir.display()
                )?;
                match holder_pid {
                    Some(pid) => write!(f, " (pid {pid})"),
                    None => Ok(()),
                }
            }
            StoreError::CursorBehind { requested, next } => write!(
                f,
                "cannot append at cursor {requested}: the store has already passed it (the next cursor is {next})"
            ),
            StoreError::Unavailable(why) => write!(f, "the log of record is unavailable: {why}"),
            StoreError::Format {
                path,
                found,
                supported,
            } => match found.parse::<u32>() {
                Ok(version) => write!(
                    f,
                    "the data directory is in store format {version} (as {} says), newer than format {supported}, the newest this logtap reads: run a newer logtap on it",
                    path.display()
                ),
                Err(_) => write!(
                    f,
                    "{} does not hold a store format version (found {:?}; this logtap writes format {supported})",
                    path.display(),
                    clip_quote(found, 40)
                ),
            },
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_is_clipped_on_a_character_boundary_and_says_how_long_it_was() {
        assert_eq!(clip_quote("short", 10), "short");
        let long = "é".repeat(10);
        assert_eq!(clip_quote(&long, 5), "éé... (20 bytes in all)");
    }

    #[test]
    fn messages_say_what_and_where() {
        let error = StoreError::io(
            "writing a batch",
            "/data/1.seg",
            io::Error::from_raw_os_error(28),
        );
        assert!(error.is_disk_full());
        let text = error.to_string();
        assert!(
            text.starts_with("writing a batch (/data/1.seg): "),
            "{text}"
        );
        assert!(text.contains("No space left"), "{text}");
        let deleted = StoreError::CursorDeleted {
            requested: 3,
            oldest: 10,
        };
        assert!(!deleted.is_disk_full());
        assert_eq!(
            deleted.to_string(),
            "cursor 3 is older than anything kept: the oldest cursor still held is 10"
        );
    }
}

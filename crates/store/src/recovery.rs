//! What opening a store found and repaired.

use std::path::PathBuf;

/// One thing recovery cut or skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryEvent {
    /// The newest segment ended in a torn or corrupt tail, cut off.
    TruncatedTail {
        /// The segment file.
        path: PathBuf,
        /// Where the cut tail started.
        offset: u64,
        /// How many bytes were cut.
        bytes: u64,
    },
    /// Bytes inside a segment that are not valid records, skipped over; the
    /// valid records after them are kept.
    SkippedCorruption {
        /// The segment file.
        path: PathBuf,
        /// Where the skipped bytes start.
        offset: u64,
        /// How many bytes were skipped.
        bytes: u64,
    },
    /// Cursors that belong between two segments held but are in neither:
    /// the older segment lost its end at a record boundary, or a segment
    /// file was removed by hand. There are no bytes to skip, so without this
    /// the loss would go unreported. `path` is the segment after the gap.
    MissingEntries {
        /// The segment after the gap.
        path: PathBuf,
        /// The first cursor missing.
        first_cursor: u64,
        /// The last cursor missing.
        last_cursor: u64,
    },
    /// A sealed segment's footer (its index) was unusable and was rebuilt
    /// from its blocks: every block whose checksum held is served again.
    RebuiltIndex {
        /// The sealed segment file.
        path: PathBuf,
        /// What was wrong with the footer.
        reason: &'static str,
    },
}

/// Everything recovery did on open; empty after a clean shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// What was cut or skipped, in the order found.
    pub events: Vec<RecoveryEvent>,
}

impl RecoveryReport {
    /// Total bytes cut or skipped.
    pub fn bytes_lost(&self) -> u64 {
        self.events
            .iter()
            .map(|event| match event {
                RecoveryEvent::TruncatedTail { bytes, .. }
                | RecoveryEvent::SkippedCorruption { bytes, .. } => *bytes,
                RecoveryEvent::MissingEntries { .. } | RecoveryEvent::RebuiltIndex { .. } => 0,
            })
            .sum()
    }
}

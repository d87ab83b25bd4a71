//! How large one entry may be: each backend says (see
//! [`Backend::limits`](crate::Backend::limits)), and every ingest path asks
//! before it batches, so one oversized entry is refused alone instead of
//! failing the whole batch it would have joined.

use crate::labels::{encoded_labels_len, MAX_LABELS, MAX_LABEL_TEXT_BYTES};
use crate::{NewEntry, StoreError};

/// The largest entry a backend keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLimits {
    /// The longest message, in bytes.
    pub max_message_bytes: usize,
    /// The most labels on one entry.
    pub max_labels: usize,
    /// The longest label name or value, in bytes.
    pub max_label_bytes: usize,
    /// The most bytes of one entry's content ([`content_bytes`]).
    pub max_entry_bytes: usize,
}

/// The bytes of an entry's content in its compact form: the message, and
/// each label's name and value with their two lengths. A backend's record
/// adds a fixed overhead to this; batchers use it as the entry's size.
#[inline]
pub fn content_bytes(entry: &NewEntry) -> usize {
    entry.message.len() + encoded_labels_len(&entry.labels)
}

impl EntryLimits {
    /// Whether `entry` fits; if not, the error says which limit it passes,
    /// as the backend's append would.
    #[inline]
    pub fn check(&self, entry: &NewEntry) -> Result<(), StoreError> {
        if entry.message.len() > self.max_message_bytes {
            return Err(StoreError::EntryTooLarge(
                if self.max_message_bytes == u32::MAX as usize {
                    "the message is over 4 GiB"
                } else {
                    "the message is too long"
                },
            ));
        }
        if entry.labels.len() > self.max_labels.min(MAX_LABELS) {
            return Err(StoreError::EntryTooLarge("over 65,535 labels"));
        }
        let limit = self.max_label_bytes.min(MAX_LABEL_TEXT_BYTES);
        if entry
            .labels
            .iter()
            .any(|(name, value)| name.len() > limit || value.len() > limit)
        {
            return Err(StoreError::EntryTooLarge(
                "a label name or value is over 64 KiB",
            ));
        }
        if content_bytes(entry) > self.max_entry_bytes {
            return Err(StoreError::EntryTooLarge("the record is over 1 GiB"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    const LIMITS: EntryLimits = EntryLimits {
        max_message_bytes: 100,
        max_labels: 2,
        max_label_bytes: 10,
        max_entry_bytes: 124,
    };

    fn entry(message: usize, labels: &[(usize, usize)]) -> NewEntry {
        NewEntry {
            timestamp: 0,
            level: Level::Info,
            message: "m".repeat(message),
            labels: labels
                .iter()
                .map(|&(n, v)| ("n".repeat(n), "v".repeat(v)))
                .collect(),
        }
    }

    #[test]
    fn each_limit_is_checked() {
        assert!(LIMITS.check(&entry(100, &[(10, 10)])).is_ok());
        for (bad, why) in [
            (entry(101, &[]), "message"),
            (entry(1, &[(1, 1), (1, 1), (1, 1)]), "labels"),
            (entry(1, &[(11, 1)]), "label"),
            (entry(100, &[(10, 10), (0, 1)]), "record"),
        ] {
            assert!(
                matches!(LIMITS.check(&bad), Err(StoreError::EntryTooLarge(_))),
                "{why}"
            );
        }
        assert_eq!(content_bytes(&entry(3, &[(1, 2)])), 3 + 4 + 3);
    }
}

//! The one batcher every push path fills: entries are checked against the
//! backend's limits and their labels normalised as they are added, and a
//! batch is handed to the backend once it is as large as one append should
//! be.
//!
//! One append is one write and (under the default sync policy) one fsync,
//! so entries that arrive together go in together; the bounds keep what a
//! push holds in memory small, since a push holds about two batches (the
//! one being written and the one being filled). See bench/RESULTS.md
//! ("Sixth session") for how the byte bound was chosen.

use logtap_core::{normalize_labels, EntryLimits, NewEntry, StoreError};

/// The most entries in one batch. High, so that for small entries the byte
/// bound decides: gRPC Push stops reading ahead only when a whole next
/// batch waits behind the append in flight, and frames left unread are
/// what h2 counts against a connection.
const MAX_ENTRIES: usize = 1 << 16;

/// About the most memory (entries, messages and labels) in one batch. One
/// request alone may exceed it (up to the message size limit): a request
/// is stored all or nothing.
const MAX_BYTES: usize = 1 << 20;

/// Entries read and checked but not yet stored.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// The entries added so far, in order.
    entries: Vec<NewEntry>,
    /// Roughly the memory they hold ([`entry_bytes`]).
    bytes: usize,
    /// The backend's limits on one entry, asked of it once per push.
    limits: EntryLimits,
}

impl Batcher {
    /// An empty batch for a backend with these limits.
    pub(crate) fn new(limits: EntryLimits) -> Batcher {
        Batcher {
            entries: Vec::new(),
            bytes: 0,
            limits,
        }
    }

    /// Adds one entry, or refuses it (and leaves the batch as it was) when
    /// the backend could not keep it: the backend refuses a whole append for
    /// one entry over its limits, which would also refuse the entries
    /// batched before it.
    pub(crate) fn add(&mut self, mut entry: NewEntry) -> Result<(), StoreError> {
        normalize_labels(&mut entry.labels);
        self.limits.check(&entry)?;
        self.bytes += entry_bytes(&entry);
        self.entries.push(entry);
        Ok(())
    }

    /// Adds a request's entries all or nothing: if one is refused, none is
    /// added, so a request stays all or nothing while the ones before it
    /// are stored.
    pub(crate) fn add_all(&mut self, mut entries: Vec<NewEntry>) -> Result<(), StoreError> {
        let mut bytes = 0;
        for entry in &mut entries {
            normalize_labels(&mut entry.labels);
            self.limits.check(entry)?;
            bytes += entry_bytes(entry);
        }
        self.entries.extend(entries);
        self.bytes += bytes;
        Ok(())
    }

    /// Whether the batch is as large as one append should be.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= MAX_ENTRIES || self.bytes >= MAX_BYTES
    }

    /// Roughly the memory the batch holds, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing waits to be stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the batch to append, leaving an empty one.
    pub(crate) fn take(&mut self) -> Vec<NewEntry> {
        self.bytes = 0;
        std::mem::take(&mut self.entries)
    }
}

/// Roughly the memory `entry` takes.
fn entry_bytes(entry: &NewEntry) -> usize {
    let labels: usize = entry
        .labels
        .iter()
        .map(|(name, value)| std::mem::size_of::<(String, String)>() + name.len() + value.len())
        .sum();
    std::mem::size_of::<NewEntry>() + entry.message.len() + labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtap_core::Level;

    const LIMITS: EntryLimits = EntryLimits {
        max_message_bytes: 1 << 20,
        max_labels: 4,
        max_label_bytes: 16,
        max_entry_bytes: 1 << 21,
    };

    fn entry(message: &str, labels: &[(&str, &str)]) -> NewEntry {
        NewEntry {
            timestamp: 1,
            level: Level::Info,
            message: message.to_string(),
            labels: labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn an_entry_over_the_backends_limits_is_refused_alone() {
        let mut batch = Batcher::new(LIMITS);
        batch.add(entry("a", &[])).unwrap();
        let long = "v".repeat(17);
        assert!(matches!(
            batch.add(entry("b", &[("k", &long)])),
            Err(StoreError::EntryTooLarge(_))
        ));
        batch
            .add(entry("c", &[("b", "2"), ("a", "1"), ("b", "3")]))
            .unwrap();
        let stored = batch.take();
        let messages: Vec<_> = stored.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["a", "c"]);
        // Labels come out in the one normal form.
        assert_eq!(
            stored[1].labels,
            [("a".to_string(), "1".to_string()), ("b".into(), "3".into())]
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn a_request_is_added_all_or_nothing() {
        let mut batch = Batcher::new(LIMITS);
        batch.add_all(vec![entry("a", &[])]).unwrap();
        let refused = vec![entry("b", &[]), entry("c", &[("x", &"v".repeat(100))])];
        assert!(batch.add_all(refused).is_err());
        assert_eq!(batch.take().len(), 1);
    }

    #[test]
    fn a_batch_is_full_at_its_byte_bound() {
        let mut batch = Batcher::new(LIMITS);
        let big = "m".repeat(64 << 10);
        let mut added = 0;
        while !batch.is_full() {
            batch.add(entry(&big, &[])).unwrap();
            added += 1;
        }
        assert_eq!(added, 16, "1 MiB of 64 KiB messages");
        batch.take();
        assert!(!batch.is_full());
    }
}

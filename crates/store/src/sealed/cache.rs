//! Decoded blocks, shared by every reader, in a fixed amount of memory.
//!
//! Readers of old data would otherwise each decompress (and hold) their
//! own copy of the block they are in: a thousand readers of the same hour
//! would hold a thousand copies. Here a block is decoded once and shared
//! (an `Arc`) while it is in use or recently used; past the budget the
//! least recently used go. A reader holds only the block it is reading.

use crate::recent::Chunk;
use crate::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;

/// What is cached: a segment's base cursor, and a block's index in it.
pub(crate) type Key = (u64, u32);

/// The shared cache; see the module documentation.
pub(crate) struct BlockCache {
    /// The most bytes kept for later use (what readers hold now does not
    /// count against it; it is theirs until they let go).
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, (Chunk, u64)>,
    bytes: usize,
    /// Bumped on every use: the smallest stamp is the least recently used.
    clock: u64,
}

impl BlockCache {
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The cached value for `key`, or `load`'s, kept for others. Loading
    /// happens outside the lock: two readers may both load a block the
    /// first time, and one copy is kept.
    pub fn get_or_load(
        &self,
        key: Key,
        load: impl FnOnce() -> Result<Chunk, StoreError>,
    ) -> Result<Chunk, StoreError> {
        {
            let mut inner = crate::store::lock(&self.inner);
            inner.clock += 1;
            let clock = inner.clock;
            if let Some((value, used)) = inner.entries.get_mut(&key) {
                *used = clock;
                return Ok(value.clone());
            }
        }
        let value = load()?;
        let size = value.bytes.len();
        if size > self.capacity {
            return Ok(value);
        }
        let mut inner = crate::store::lock(&self.inner);
        inner.clock += 1;
        let clock = inner.clock;
        if let Some((old, _)) = inner.entries.insert(key, (value.clone(), clock)) {
            inner.bytes -= old.bytes.len();
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            let Some((&oldest, _)) = inner.entries.iter().min_by_key(|(_, (_, used))| *used) else {
                break;
            };
            if let Some((gone, _)) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.bytes.len();
            }
        }
        Ok(value)
    }

    /// Forgets every value of a segment (sealed again, or deleted).
    pub fn forget_segment(&self, base: u64) {
        let mut inner = crate::store::lock(&self.inner);
        let keys: Vec<Key> = inner
            .entries
            .keys()
            .filter(|k| k.0 == base)
            .copied()
            .collect();
        for key in keys {
            if let Some((gone, _)) = inner.entries.remove(&key) {
                inner.bytes -= gone.bytes.len();
            }
        }
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        crate::store::lock(&self.inner).bytes
    }
}

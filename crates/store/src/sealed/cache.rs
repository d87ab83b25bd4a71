//! Decoded blocks, shared by every reader, in a fixed amount of memory.
//!
//! Readers of old data would otherwise each decompress (and hold) their
//! own copy of the block they are in: a thousand readers of the same hour
//! would hold a thousand copies. Here a block is decoded once and shared
//! (an `Arc`) while it is in use or recently used; past the budget the
//! least recently used go. A reader copies a read's worth out of the block
//! it is in (see `reader.rs`), and readers that reach a block together wait
//! for one decoding of it.

use crate::recent::Chunk;
use crate::StoreError;
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};

/// A block being loaded by this thread. If loading fails or panics, the
/// drop lets the waiting readers go (one of them loads it), so no reader
/// waits forever.
struct Loading<'a> {
    cache: &'a BlockCache,
    key: Key,
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        crate::store::lock(&self.cache.inner)
            .loading
            .remove(&self.key);
        self.cache.loaded.notify_all();
    }
}

/// What is cached: a segment's base cursor, and a block's index in it.
pub(crate) type Key = (u64, u32);

/// The shared cache; see the module documentation.
pub(crate) struct BlockCache {
    /// The most bytes kept for later use (what readers hold now does not
    /// count against it; it is theirs until they let go).
    capacity: usize,
    inner: Mutex<Inner>,
    /// Woken when a block being loaded is in (or failed to load).
    loaded: Condvar,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, (Chunk, u64)>,
    /// Blocks one reader is decoding now: others wait for its copy instead
    /// of decoding their own, so readers that reach a block together
    /// (live tails catching up) decode it once and hold one copy.
    loading: HashSet<Key>,
    bytes: usize,
    /// Bumped on every use: the smallest stamp is the least recently used.
    clock: u64,
}

impl BlockCache {
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            capacity,
            inner: Mutex::default(),
            loaded: Condvar::new(),
        }
    }

    /// The cached value for `key`, or `load`'s, kept for others. Loading
    /// happens outside the lock, by one reader at a time for a key: the
    /// others wait for its copy.
    pub fn get_or_load(
        &self,
        key: Key,
        load: impl FnOnce() -> Result<Chunk, StoreError>,
    ) -> Result<Chunk, StoreError> {
        {
            let mut inner = crate::store::lock(&self.inner);
            loop {
                inner.clock += 1;
                let clock = inner.clock;
                if let Some((value, used)) = inner.entries.get_mut(&key) {
                    *used = clock;
                    return Ok(value.clone());
                }
                if !inner.loading.contains(&key) {
                    break;
                }
                inner = self.loaded.wait(inner).unwrap_or_else(|e| e.into_inner());
            }
            inner.loading.insert(key);
        }
        let loading = Loading { cache: self, key };
        let value = load()?;
        let size = value.bytes.len();
        let mut inner = crate::store::lock(&self.inner);
        if size <= self.capacity {
            inner.clock += 1;
            let clock = inner.clock;
            if let Some((old, _)) = inner.entries.insert(key, (value.clone(), clock)) {
                inner.bytes -= old.bytes.len();
            }
            inner.bytes += size;
            while inner.bytes > self.capacity {
                let Some((&oldest, _)) = inner.entries.iter().min_by_key(|(_, (_, used))| *used)
                else {
                    break;
                };
                if let Some((gone, _)) = inner.entries.remove(&oldest) {
                    inner.bytes -= gone.bytes.len();
                }
            }
        }
        // In the cache before it stops being loading: a waiter woken now
        // finds it.
        inner.loading.remove(&key);
        drop(inner);
        self.loaded.notify_all();
        std::mem::forget(loading);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recent::ChunkBytes;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    /// Readers that reach a block together decode it once and share the
    /// copy; a failed load lets the waiters try for themselves.
    #[test]
    fn readers_that_reach_a_block_together_decode_it_once() {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let loads = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, loads, start) = (cache.clone(), loads.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    cache
                        .get_or_load((1, 0), || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(Chunk {
                                offset: 0,
                                bytes: Arc::new(ChunkBytes::detached(vec![7; 100], 1, 1)),
                            })
                        })
                        .unwrap()
                })
            })
            .collect();
        let chunks: Vec<Chunk> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(chunks
            .iter()
            .all(|c| Arc::ptr_eq(&c.bytes, &chunks[0].bytes)));
        let failed = cache.get_or_load((2, 0), || Err(StoreError::EntryTooLarge("test")));
        assert!(failed.is_err());
        let again = cache.get_or_load((2, 0), || {
            Ok(Chunk {
                offset: 0,
                bytes: Arc::new(ChunkBytes::detached(vec![1; 10], 1, 1)),
            })
        });
        assert!(again.is_ok());
    }
}

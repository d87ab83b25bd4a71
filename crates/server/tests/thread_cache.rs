//! glibc's per-thread cache of freed chunks, emptied after a burst
//! (`memory.rs`). In a test binary of its own, so that no other test
//! allocates while the bytes malloc counts as in use are compared.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use logtap_server::testing::CachedChunks;

/// Bytes malloc counts as in use, over all arenas; chunks in a thread's
/// cache count as in use.
fn in_use() -> usize {
    // SAFETY: mallinfo2 only reads malloc's statistics.
    unsafe { libc::mallinfo2() }.uordblks
}

/// Allocates and frees 7 chunks of each of the 64 cached sizes on this
/// thread, which leaves about 235 KiB in its cache.
fn fill_this_threads_cache() {
    let mut chunks = Vec::new();
    for bin in 0..64 {
        for _ in 0..7 {
            // SAFETY: freed just below.
            chunks.push(unsafe { libc::malloc(24 + 16 * bin) });
        }
    }
    for chunk in chunks {
        // SAFETY: allocated just above, freed once.
        unsafe { libc::free(chunk) };
    }
}

/// Fills a new thread's cache, then gives its chunks back with `give_back`
/// and says how many bytes left the in-use count.
fn bytes_given_back(give_back: fn(CachedChunks)) -> usize {
    std::thread::spawn(move || {
        fill_this_threads_cache();
        let before = in_use();
        give_back(CachedChunks::take());
        before.saturating_sub(in_use())
    })
    .join()
    .unwrap()
}

#[test]
fn a_threads_cached_chunks_are_given_back_to_the_arena_by_a_passing_thread() {
    // Freed on the thread that took them, they go straight back into its
    // cache: nothing is given back, which is why a trim alone is not
    // enough.
    let kept = bytes_given_back(drop);
    assert!(kept < 64 * 1024, "{kept} bytes given back");
    let freed = bytes_given_back(CachedChunks::free_on_a_passing_thread);
    assert!(freed > 200 * 1024, "only {freed} bytes given back");
}

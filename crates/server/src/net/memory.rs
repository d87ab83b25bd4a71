//! Gives memory back to the system after a burst of streams has ended.
//!
//! A burst of streams opened at once takes memory in proportion to its
//! size (HTTP/2 stream state, tasks, buffers), spread over glibc malloc's
//! per-thread arenas. When they end, that memory is free but glibc keeps
//! it: an arena only shrinks from its top, and freed chunks in the middle
//! stay resident.
//! A server that once saw a storm of browser tabs would hold that memory
//! forever. So a small task watches the active streams and open connections
//! gauges, and when either count has fallen far below its peak it asks
//! malloc to return free pages (`malloc_trim`), once per burst. Trimming
//! walks the free lists of every arena, so it runs on a blocking thread.
//!
//! Connections count on their own because HTTP/2 keeps its per-stream
//! state in a table that grows to the most streams the connection has had
//! open at once and never shrinks while the connection lives: after a
//! burst spread over a few connections, the streams' end frees little, the
//! connections' end frees the rest. Such connections are asked to go away
//! once idle (`stream_table.rs`), so their end, and this trim, follow a
//! burst by about half a second. (measured: bench/RESULTS.md, "Third
//! session" and "Figures that comments used to carry")
//!
//! A trim cannot return a page that holds one live chunk, and glibc's
//! per-thread cache (tcache) keeps up to 7 freed chunks of each small size
//! live on each thread, to hand out again without a lock. After a burst
//! those are the last chunks freed, scattered over the heap the burst had
//! spread to, each holding a page that no trim can return. glibc has no
//! call to empty a thread's cache, but a thread's cache is emptied into
//! the arenas when the thread ends. So before trimming, each connection
//! thread takes its cached chunks out (by allocating 7 of each size, which
//! its cache serves first) and a short-lived thread frees them and ends.
//! Then the arena holds only what is really live, on a handful of pages.
//! (measured: bench/RESULTS.md, "Seventh session")

use crate::ops::metrics::Metrics;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How often the gauge is looked at: a burst's memory is back well within
/// a second of its end.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// How many streams must have ended since the peak before a trim: small
/// ups and downs of ordinary traffic leave little to return, and a trim
/// for each would be wasted work.
const BURST_STREAMS: i64 = 1_000;

/// How many connections must have closed since the peak before a trim. A
/// connection that carried many streams keeps a stream table sized for the
/// most it had open at once (up to the per-connection stream limit), so a
/// few dozen leaving can free much memory; the ordinary churn of short
/// HTTP/1.1 requests stays well below this. (measured: bench/RESULTS.md,
/// "Figures that comments used to carry")
const BURST_CONNECTIONS: i64 = 16;

/// Watches the active streams and open connections and, after each burst
/// of either, empties the allocator caches of `threads` (the connection
/// threads) and trims, until `shutdown`.
pub async fn trim_after_bursts(
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    threads: Vec<Handle>,
) {
    let mut peak_streams = metrics.active_streams.get();
    let mut peak_connections = metrics.open_connections.get();
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let active = metrics.active_streams.get();
        let connections = metrics.open_connections.get();
        peak_streams = peak_streams.max(active);
        peak_connections = peak_connections.max(connections);
        if peak_streams - active < BURST_STREAMS
            && peak_connections - connections < BURST_CONNECTIONS
        {
            continue;
        }
        peak_streams = active;
        peak_connections = connections;
        let mut cached = CachedChunks::default();
        for thread in &threads {
            match thread.spawn(async { CachedChunks::take() }).await {
                Ok(chunks) => cached.extend(chunks),
                // The thread's runtime is stopping: the server is too.
                Err(error) => {
                    tracing::debug!(error = %error, "Could not empty a connection thread's allocator cache.")
                }
            }
        }
        let give_back = move || {
            cached.free_on_a_passing_thread();
            trim()
        };
        match tokio::task::spawn_blocking(give_back).await {
            Ok(true) => tracing::debug!(
                active,
                connections,
                "Returned free memory to the system after a burst of streams or connections."
            ),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error, "Could not return free memory to the system.")
            }
        }
    }
}

/// Returns free heap pages to the system; true if any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim only walks and releases malloc's own free lists;
    // it is safe to call at any time from any thread.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators give memory back by themselves, or offer no way to ask.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

/// How many size classes glibc's thread cache has (`TCACHE_MAX_BINS`): one
/// for each 16 bytes of chunk size from 32 to 1,040.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const CACHE_BINS: usize = 64;

/// How many chunks of one size the cache keeps (glibc's default
/// `glibc.malloc.tcache_count`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const CACHED_PER_BIN: usize = 7;

/// Small chunks taken out of threads' allocator caches, to be freed on
/// another thread.
#[derive(Default)]
pub struct CachedChunks {
    /// Allocated with `malloc` and owned by nothing else; freed on drop.
    chunks: Vec<NonNull<libc::c_void>>,
}

// SAFETY: the chunks are plain malloc memory that nothing else points to,
// and glibc frees a chunk correctly from any thread.
unsafe impl Send for CachedChunks {}

impl CachedChunks {
    /// Takes the calling thread's cached chunks: a thread's cache serves
    /// its own allocations first, so 7 allocations of each cached size
    /// empty it. Any it lacked come from the arena and are freed with the
    /// rest; such an allocation may move a few free chunks of the same size
    /// from the arena into the cache, where they stay, which is no worse:
    /// they sat between live chunks already, and after a storm only a few
    /// live chunks are left in each connection thread's arena (measured:
    /// bench/RESULTS.md, "Seventh session").
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub fn take() -> CachedChunks {
        let mut chunks = Vec::with_capacity(CACHE_BINS * CACHED_PER_BIN);
        for bin in 0..CACHE_BINS {
            // With its 8-byte header rounded up to 16, a request of this
            // size is a chunk of 32 + 16 * bin bytes: this bin's size.
            let request = 24 + 16 * bin;
            for _ in 0..CACHED_PER_BIN {
                // SAFETY: malloc may be called from any thread; the chunk is
                // freed exactly once, by `drop`.
                if let Some(chunk) = NonNull::new(unsafe { libc::malloc(request) }) {
                    chunks.push(chunk);
                }
            }
        }
        CachedChunks { chunks }
    }

    /// Other allocators have no such cache that we know how to empty.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn take() -> CachedChunks {
        CachedChunks::default()
    }

    /// Adds another thread's chunks.
    pub fn extend(&mut self, mut other: CachedChunks) {
        self.chunks.append(&mut other.chunks);
    }

    /// Frees the chunks on a new thread that then ends, so that none of
    /// them stays in any thread's cache: the new thread's cache keeps some,
    /// and glibc empties it into the arenas when the thread ends. If no
    /// thread can be started, they are freed here.
    pub fn free_on_a_passing_thread(self) {
        if self.chunks.is_empty() {
            return;
        }
        let passing = std::thread::Builder::new()
            .name("logtap-free".to_string())
            .spawn(move || drop(self));
        match passing {
            Ok(thread) => {
                if thread.join().is_err() {
                    tracing::warn!("The thread freeing cached memory panicked.");
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Could not start a thread to free cached memory.")
            }
        }
    }
}

impl Drop for CachedChunks {
    fn drop(&mut self) {
        for chunk in self.chunks.drain(..) {
            // SAFETY: allocated by malloc in `take` and freed only here.
            unsafe { libc::free(chunk.as_ptr()) };
        }
    }
}

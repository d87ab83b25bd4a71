//! Gives memory back to the system after a burst of streams has ended.
//!
//! Ten thousand streams opened at once take about a hundred MiB (HTTP/2
//! stream state, tasks, buffers), spread over glibc malloc's per-thread
//! arenas. When they end, that memory is free but glibc keeps it: an arena
//! only shrinks from its top, and freed chunks in the middle stay resident.
//! A server that once saw a storm of browser tabs would hold that memory
//! forever. So a small task watches the active streams and open connections
//! gauges, and when either count has fallen far below its peak it asks
//! malloc to return free pages (`malloc_trim`), once per burst. Trimming
//! walks the free lists of every arena (milliseconds for a hundred MiB) and
//! runs on a blocking thread.
//!
//! Connections count on their own because HTTP/2 keeps its per-stream
//! state in a table that grows to the most streams the connection has had
//! open at once (about 1.3 KiB each in the cancel-storm benchmark) and
//! never shrinks while the connection lives: after 10,000 streams over 16
//! connections, the streams' end frees little, the connections' end frees
//! the rest. Such connections
//! are asked to go away once idle (`stream_table.rs`), so their end, and
//! this trim, follow a burst by about half a second.

use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gauge is looked at: a burst's memory is back well within
/// a second of its end.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// How many streams must have ended since the peak before a trim: small
/// ups and downs of ordinary traffic leave little to return, and a trim
/// for each would be wasted work.
const BURST_STREAMS: i64 = 1_000;

/// How many connections must have closed since the peak before a trim. A
/// connection that carried many streams holds up to ~1.3 MiB of HTTP/2
/// state, so a few dozen leaving can free tens of MiB; the ordinary churn of
/// short HTTP/1.1 requests stays well below this.
const BURST_CONNECTIONS: i64 = 16;

/// Watches the active streams and open connections and trims after each
/// burst of either, until `shutdown`.
pub async fn trim_after_bursts(metrics: Arc<Metrics>, shutdown: CancellationToken) {
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
        match tokio::task::spawn_blocking(trim).await {
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

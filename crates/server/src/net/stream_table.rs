//! Gives back the memory of an HTTP/2 connection's stream table once a
//! burst of streams on it has ended.
//!
//! h2 keeps each connection's streams in a table that grows to the most
//! streams the connection has had open at once and never shrinks while the
//! connection lives. A client that once opened a thousand live tails on one
//! connection and closed them all, as the cancel-storm benchmark does,
//! leaves the server holding that table for as long as the client keeps its
//! idle connection, which after a storm is most of what the server holds
//! beyond a fresh server's memory. The only way to free it is to end the
//! connection. (measured: bench/RESULTS.md, "Sixth session" and "Figures
//! that comments used to carry")
//!
//! So every connection counts its open HTTP/2 streams ([`StreamTable`]),
//! and once it has had [`LARGE`] or more open at once and then none for
//! [`IDLE_FOR`], its task asks it to go away: hyper sends a graceful
//! GOAWAY, and the client opens a new connection for its next call, as
//! gRPC clients do whenever a server (grpc-go's `MaxConnectionIdle`, a
//! proxy, a restart) sends one. Connections that never had a large burst,
//! which is nearly all of them, are never touched.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How many streams open at once make a table worth giving back: a
/// table this large holds far more memory than one reconnect costs the
/// client (measured: bench/RESULTS.md, "Figures that comments used to
/// carry").
pub const LARGE: usize = 256;

/// How long a large table's connection must have had no open stream
/// before it is asked to go away: long enough that a client which cancels
/// a batch of streams and opens the next one at once keeps its connection,
/// short enough that a burst's memory is back within a second.
pub const IDLE_FOR: Duration = Duration::from_millis(500);

/// The open HTTP/2 streams of one connection, counted by the executor that
/// spawns them (`idle.rs`) and watched by the connection's task.
#[derive(Debug, Default)]
pub struct StreamTable {
    /// Streams spawned and not yet ended.
    open: AtomicUsize,
    /// The most streams open at once so far: what the h2 table has grown to.
    peak: AtomicUsize,
    /// Streams ever opened, so a wait can tell whether one came and went.
    opened: AtomicU64,
    /// Signalled when the last open stream ends. `notify_one` keeps the
    /// signal if nobody waits yet, so an end between a check and a wait is
    /// not lost.
    emptied: Notify,
}

impl StreamTable {
    /// Counts one stream open until the returned guard is dropped.
    pub fn open(self: &Arc<Self>) -> OpenStream {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
        self.opened.fetch_add(1, Ordering::Relaxed);
        OpenStream(Arc::clone(self))
    }

    /// Streams open now.
    pub fn open_now(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Resolves once the table has held [`LARGE`] streams or more and then
    /// none for [`IDLE_FOR`]; never for a connection without such a burst.
    pub async fn large_and_idle(&self) {
        loop {
            if self.peak.load(Ordering::Relaxed) >= LARGE && self.open_now() == 0 {
                let opened = self.opened.load(Ordering::Relaxed);
                tokio::time::sleep(IDLE_FOR).await;
                if self.open_now() == 0 && self.opened.load(Ordering::Relaxed) == opened {
                    return;
                }
                // Streams came meanwhile: the connection is in use.
                continue;
            }
            self.emptied.notified().await;
        }
    }
}

/// One open stream of a [`StreamTable`]; dropping it ends the stream's count.
#[derive(Debug)]
pub struct OpenStream(Arc<StreamTable>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.emptied.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_large_table_is_reported_once_idle_for_the_whole_wait() {
        let table = Arc::new(StreamTable::default());
        let streams: Vec<_> = (0..LARGE).map(|_| table.open()).collect();
        assert_eq!(table.open_now(), LARGE);
        let wait = tokio::spawn({
            let table = Arc::clone(&table);
            async move { table.large_and_idle().await }
        });
        tokio::time::sleep(IDLE_FOR * 2).await;
        assert!(!wait.is_finished(), "streams are still open");
        drop(streams);
        // A stream that comes and goes within the wait starts it again.
        tokio::time::sleep(IDLE_FOR / 2).await;
        drop(table.open());
        tokio::time::sleep(IDLE_FOR * 3 / 4).await;
        assert!(!wait.is_finished(), "a stream came during the wait");
        tokio::time::sleep(IDLE_FOR).await;
        assert!(wait.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_table_is_never_reported() {
        let table = Arc::new(StreamTable::default());
        drop((0..LARGE - 1).map(|_| table.open()).collect::<Vec<_>>());
        assert_eq!(table.open_now(), 0);
        let waited = tokio::time::timeout(IDLE_FOR * 10, table.large_and_idle()).await;
        assert!(waited.is_err());
    }
}

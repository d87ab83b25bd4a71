//! Connection threads: every accepted connection, with all of its HTTP/2
//! streams, lives on one thread for its whole life.
//!
//! Each thread runs its own single-threaded tokio runtime; the listener
//! hands connections to them in turn. Why not one work-stealing runtime for
//! everything: a stream's body task and its connection's task wake each
//! other for every frame (the body fills the send buffer, the connection
//! writes it and asks for more). With work stealing, the idle worker is
//! woken to steal one of them, so the pair ping-pongs between threads, each
//! hop a futex wake and a context switch, for every frame of a long read.
//! Pinned, the pair hands over through the thread's own run queue, and the
//! other cores serve other connections. (measured: bench/RESULTS.md,
//! "Third session")
//!
//! What it gives up: one connection's streams share one core. That is the
//! usual shape of an HTTP/2 server (one connection per client); a client
//! that multiplexes much work over one connection can open more.
//!
//! Each runtime has its own timers, I/O driver and blocking pool, so a
//! stream's `spawn_blocking` store work and its timers stay with it. Wakes
//! from elsewhere (a commit in the store, shutdown) cross threads as in any
//! tokio runtime.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

/// Blocking threads each connection thread may start for store work
/// (opening readers, appends). The store serialises writes anyway; this
/// bounds how many threads a burst of stream opens can start, each of which
/// keeps an allocator arena afterwards.
const BLOCKING_THREADS_PER_CONNECTION_THREAD: usize = 16;

/// The threads connections are served on.
pub struct ConnectionThreads {
    /// One per thread, to spawn connections on it.
    handles: Vec<Handle>,
    /// Which thread takes the next connection (round robin).
    next: AtomicUsize,
    /// Cancelled when the server has stopped: each thread then drops its
    /// runtime, which ends whatever is still spawned there.
    stop: CancellationToken,
    /// Joined on drop, so a stopped server leaves no thread behind.
    threads: Vec<JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one), named `logtap-conn-N`.
    pub fn start(count: usize) -> io::Result<ConnectionThreads> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(BLOCKING_THREADS_PER_CONNECTION_THREAD)
                .thread_name(format!("logtap-conn-{index}-blocking"))
                .build()?;
            handles.push(runtime.handle().clone());
            let stopped = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("logtap-conn-{index}"))
                .spawn(move || {
                    runtime.block_on(stopped.cancelled());
                    // Connections were drained (or given up on) before
                    // `stop`; what is left is cut without waiting.
                    runtime.shutdown_background();
                });
            match thread {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    stop.cancel();
                    return Err(error);
                }
            }
        }
        Ok(ConnectionThreads {
            handles,
            next: AtomicUsize::new(0),
            stop,
            threads,
        })
    }

    /// The threads to use by default: one per core.
    pub fn default_count() -> usize {
        std::thread::available_parallelism().map_or(2, |cores| cores.get())
    }

    /// Every thread's runtime, to run something on each of them (see
    /// `memory.rs`, which empties their allocator caches after a burst).
    pub fn handles(&self) -> Vec<Handle> {
        self.handles.clone()
    }

    /// The runtime of the thread that takes the next connection.
    pub fn next(&self) -> &Handle {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[index]
    }
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        self.stop.cancel();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::warn!("A connection thread panicked.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The name of the thread a task spawned on `runtime` runs on.
    fn thread_of(runtime: &Handle) -> String {
        let (sender, receiver) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let name = std::thread::current().name().map(str::to_string);
            sender.send(name).unwrap();
        });
        receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("the task ran")
            .expect("the thread has a name")
    }

    #[test]
    fn connections_go_to_the_threads_in_turn() {
        let threads = ConnectionThreads::start(2).unwrap();
        let names: Vec<String> = (0..4).map(|_| thread_of(threads.next())).collect();
        assert_eq!(
            names,
            [
                "logtap-conn-0",
                "logtap-conn-1",
                "logtap-conn-0",
                "logtap-conn-1"
            ]
        );
    }

    #[test]
    fn a_task_stays_on_its_thread_across_wakes() {
        let threads = ConnectionThreads::start(2).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        threads.next().spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..100 {
                seen.push(std::thread::current().name().unwrap().to_string());
                tokio::task::yield_now().await;
            }
            sender.send(seen).unwrap();
        });
        let seen = receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("the task ended");
        assert!(seen.iter().all(|name| name == "logtap-conn-0"), "{seen:?}");
    }

    #[test]
    fn dropping_ends_the_threads_even_with_tasks_still_running() {
        /// Says when the task that owns it is dropped with its runtime.
        struct Dropped(std::sync::mpsc::Sender<&'static str>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send("task dropped");
            }
        }
        let threads = ConnectionThreads::start(1).unwrap();
        let (started, wait_started) = std::sync::mpsc::channel();
        let (events, seen) = std::sync::mpsc::channel();
        let guard = Dropped(events.clone());
        threads.next().spawn(async move {
            let _guard = guard;
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        wait_started
            .recv_timeout(Duration::from_secs(10))
            .expect("the task started");
        // Dropping joins the thread; on another thread, so that a drop that
        // hangs fails the test instead of hanging it.
        std::thread::spawn(move || {
            drop(threads);
            let _ = events.send("threads joined");
        });
        let first = seen.recv_timeout(Duration::from_secs(10));
        let second = seen.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            (first, second),
            (Ok("task dropped"), Ok("threads joined")),
            "dropping the threads drops the pending task, then returns"
        );
    }

    #[test]
    fn zero_threads_means_one() {
        let threads = ConnectionThreads::start(0).unwrap();
        assert_eq!(thread_of(threads.next()), "logtap-conn-0");
    }
}

//! Ends responses whose client accepts nothing for too long.
//!
//! A stream whose client stops reading is simply not polled any more: hyper
//! polls a response body only when the peer's flow-control window (HTTP/2)
//! or the socket's write buffer (HTTP/1.1) has room. That is the
//! backpressure we want, but a client that never reads again would pin the
//! stream's reader and buffers forever, and no code inside the stream can
//! notice, because it is never run.
//!
//! So the watchdog sits outside the body, around the task that drives it:
//! hyper spawns one task per HTTP/2 stream through the executor we give it
//! ([`StreamExecutor`]), and each HTTP/1.1 connection is one task we spawn
//! ourselves. Each such task is wrapped in a [`Watched`] future, which
//! shares a small [`TaskState`] with the stream through a task-local. A
//! [`Probe`] in the stream counts its polls and says whether its last poll
//! produced an item (it could give more at once). After every poll of the
//! task, the watchdog knows:
//!
//! - the body was polled and its last poll returned `Pending`: it waits for
//!   entries, not for the client, so it is not stalled;
//! - the body was polled and last produced an item, yet the task went to
//!   sleep: hyper stopped asking for more, which it does only when the
//!   client has no room; stalled from now;
//! - the task was woken (by new entries, a timer, anything) but the body was
//!   not polled: again, only for want of room; still stalled.
//!
//! When a stream stays stalled for the idle timeout, the watchdog drops the
//! task's future. For HTTP/2 that drops the stream's handles, and h2 resets
//! the stream with `RST_STREAM(CANCEL)`; for HTTP/1.1 it closes the
//! connection. Either way the response stream is dropped, which counts it in
//! `logtap_streams_cancelled_total`. A slow client that drains its window
//! now and then is never touched: every poll of its body resets the clock.

use crate::net::stream_table::StreamTable;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

tokio::task_local! {
    /// The state of the task currently being polled, when it is watched.
    static TASK: Arc<TaskState>;
}

/// What the streams running in one task tell its watchdog. Only the task's
/// own thread of the moment touches it, so relaxed atomics suffice; they are
/// atomics only so that the state can be shared.
#[derive(Debug, Default)]
pub struct TaskState {
    /// Streams attached to this task that have not ended.
    streams: AtomicUsize,
    /// Bumped on every poll of an attached stream.
    polls: AtomicU64,
    /// Whether the last poll of an attached stream produced an item.
    wants_poll: AtomicBool,
    /// Set when the watchdog cuts the task for the idle timeout, just before
    /// the streams in it are dropped, so they can count the reset as the
    /// idle limit at work rather than as a client's cancel.
    idle_reset: AtomicBool,
}

/// A stream's side of the watchdog. Attaches itself to the task it is first
/// polled in; outside a watched task it does nothing.
#[derive(Debug, Default)]
pub struct Probe {
    /// The task's state, once attached.
    task: Option<Arc<TaskState>>,
    /// Whether attaching was tried already (it is tried once).
    tried: bool,
}

impl Probe {
    /// Call at the start of every poll of the stream.
    pub fn polled(&mut self) {
        if !self.tried {
            self.tried = true;
            self.task = TASK.try_with(Arc::clone).ok();
            if let Some(task) = &self.task {
                task.streams.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(task) = &self.task {
            task.polls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Call at the end of every poll that did not end the stream: `true`
    /// when it produced an item, `false` when it returned `Pending`.
    pub fn produced(&self, item: bool) {
        if let Some(task) = &self.task {
            task.wants_poll.store(item, Ordering::Relaxed);
        }
    }

    /// Whether the watchdog is dropping this stream's task for the idle
    /// timeout (true only while the stream is being dropped for it).
    pub fn idle_reset(&self) -> bool {
        self.task
            .as_ref()
            .is_some_and(|task| task.idle_reset.load(Ordering::Relaxed))
    }

    /// Call once the stream has ended: it no longer needs the client.
    pub fn finish(&mut self) {
        if let Some(task) = self.task.take() {
            task.wants_poll.store(false, Ordering::Relaxed);
            task.streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A task's future, watched for stalled streams and for a forced close.
pub struct Watched<F: Future> {
    /// The task's own future, run with its [`TaskState`] as task-local.
    inner: Pin<Box<TaskLocalFuture<Arc<TaskState>, F>>>,
    /// Shared with the streams polled by `inner`.
    state: Arc<TaskState>,
    /// How long a stream may stay stalled.
    idle_timeout: Duration,
    /// Since when the task's stream has been stalled.
    stalled_since: Option<Instant>,
    /// Wakes the task when a stall reaches the timeout. Made on the first
    /// stall, so tasks that never stall never touch the timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// Resolves when the server gives up draining: the task ends at once.
    force_close: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<F: Future> Watched<F> {
    /// Watches `inner`.
    pub fn new(inner: F, idle_timeout: Duration, force_close: CancellationToken) -> Self {
        let state = Arc::new(TaskState::default());
        Watched {
            inner: Box::pin(TASK.scope(Arc::clone(&state), inner)),
            state,
            idle_timeout,
            stalled_since: None,
            timer: None,
            force_close: Box::pin(force_close.cancelled_owned()),
        }
    }
}

impl<F: Future> Future for Watched<F> {
    /// `None` when the task was cut (stalled, or forced closed).
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.force_close.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let polls_before = this.state.polls.load(Ordering::Relaxed);
        if let Poll::Ready(output) = this.inner.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if this.state.streams.load(Ordering::Relaxed) == 0 {
            this.stalled_since = None;
            return Poll::Pending;
        }
        let polled = this.state.polls.load(Ordering::Relaxed) != polls_before;
        let now = Instant::now();
        let since = if polled {
            if !this.state.wants_poll.load(Ordering::Relaxed) {
                // Waiting for entries, not for the client.
                this.stalled_since = None;
                return Poll::Pending;
            }
            now
        } else {
            *this.stalled_since.get_or_insert(now)
        };
        this.stalled_since = Some(since);
        let deadline = since + this.idle_timeout;
        if now >= deadline {
            tracing::info!(
                idle_timeout = ?this.idle_timeout,
                "Reset a response whose client accepted nothing for the idle timeout."
            );
            this.state.idle_reset.store(true, Ordering::Relaxed);
            return Poll::Ready(None);
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().reset(deadline);
        if timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// The executor hyper spawns each HTTP/2 stream's task on: every task is
/// [`Watched`], and tracked so shutdown can wait for it.
#[derive(Debug, Clone)]
pub struct StreamExecutor {
    /// How long a stream may stay stalled.
    idle_timeout: Duration,
    /// Shutdown waits for every task spawned here.
    tracker: TaskTracker,
    /// Cancelled when shutdown stops waiting: every task ends at once.
    force_close: CancellationToken,
    /// The connection whose streams this executor spawns, which counts
    /// them (`stream_table.rs`); `None` for the executor of connections.
    streams: Option<Arc<StreamTable>>,
}

impl StreamExecutor {
    /// An executor for connections and their streams, all watched.
    pub fn new(
        idle_timeout: Duration,
        tracker: TaskTracker,
        force_close: CancellationToken,
    ) -> Self {
        StreamExecutor {
            idle_timeout,
            tracker,
            force_close,
            streams: None,
        }
    }

    /// The executor for the streams of one connection: each stream spawned
    /// through it is counted in `streams` while it runs.
    pub fn for_connection(&self, streams: Arc<StreamTable>) -> Self {
        StreamExecutor {
            streams: Some(streams),
            ..self.clone()
        }
    }

    /// Spawns `future`, watched, on the tracker and on `runtime`: for a
    /// connection, the connection thread it is to live on; for an HTTP/2
    /// stream, its connection's.
    pub fn spawn_on<F>(&self, future: F, runtime: &tokio::runtime::Handle)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let watched = Watched::new(future, self.idle_timeout, self.force_close.clone());
        self.tracker.spawn_on(watched, runtime);
    }
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// hyper spawns each HTTP/2 stream from its connection's task, so the
    /// current runtime is the connection's thread.
    fn execute(&self, future: F) {
        let runtime = tokio::runtime::Handle::current();
        match &self.streams {
            Some(streams) => {
                let open = streams.open();
                self.spawn_on(
                    async move {
                        let output = future.await;
                        drop(open);
                        output
                    },
                    &runtime,
                );
            }
            None => self.spawn_on(future, &runtime),
        }
    }
}

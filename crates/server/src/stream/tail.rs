//! The per-request entry stream: the tap, not the bucket.
//!
//! A [`TailStream`] reads the store directly, step by step, inside the
//! response body: each match is handed to the transport as soon as it is
//! found, and the stream is only polled when the transport can take more
//! (HTTP/2 flow control is the backpressure). Nothing is collected, no task
//! is spawned and no channel sits in between, so the memory of a stream is
//! the reader's own buffer plus one entry, and when a client goes away the
//! transport drops the stream and every bit of work stops at once.
//!
//! The stream is transport-neutral: it yields [`Item::Entry`] for each entry
//! and one final [`Item::End`] carrying what the trailers need; the gRPC
//! services and the HTTP routes turn those into their own forms.

use crate::error::ServeError;
use crate::net::idle::Probe;
use crate::net::quota::{self, Quota, StreamSlot};
use crate::ops::metrics::{Limit, Metrics};
use crate::stream::live::Live;
use crate::stream::matching::MatchThreads;
use crate::stream::metadata::{Crc, RequestId, RunCrc, Summary};
use crate::stream::state::Shared;
use futures::Stream;
use futures::StreamExt;
use logtap_core::{
    Backend, Direction, EntryRef, Labels, Level, LogReader, ReadOptions, Run, Step, StoreError,
};
use logtap_query::{Matcher, Plan, Start};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::sync::oneshot;
use tokio::task::coop;
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The work (records read, blocks or segments passed over, entries sent or
/// rejected by the text and label filters) a stream does between two pauses
/// that give its worker thread back. Small enough that a long scan never
/// holds a worker for long, large enough that the pauses cost little next
/// to the reading (measured: bench/RESULTS.md, "After this run" and
/// "Figures that comments used to carry"). The first match always pauses
/// at once, whatever the budget.
pub const READ_BUDGET: usize = 4096;

/// Message bytes a text filter looks at per unit of [`READ_BUDGET`]: a
/// substring search passes a KiB in about the time a record takes to
/// read (~0.1 µs), so a step over 60 KB messages pauses after some 70 of
/// them instead of 4,096 (0.4 ms, not 25). Costly patterns do not run
/// inline at all (see [`MATCH_BATCH_BYTES`]).
const SCAN_BYTES_PER_UNIT_SHIFT: u32 = 10;

/// The message bytes one batch on a matching thread looks at before it
/// hands the reader back (`crate::stream::matching`): large enough that
/// the hand-over (two thread wakes, ~20 µs) is lost in the matching, small
/// enough that concurrent costly searches take turns often and a cancelled
/// one stops soon.
const MATCH_BATCH_BYTES: usize = 1 << 20;

/// The reader's own work (records read, blocks passed over) one batch on a
/// matching thread may do, for scans whose entries are mostly skipped
/// before matching.
const MATCH_BATCH_WORK: usize = 8 * READ_BUDGET;

/// The bytes of matches (messages and labels) one batch may copy out
/// before it hands them over: what a stream holds, like the entries
/// encoded since its last pause.
const MATCH_BATCH_FOUND_BYTES: usize = 64 << 10;

/// Why a stream ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The history was sent in full.
    Complete,
    /// The request's limit was reached.
    Limit,
    /// The server is shutting down.
    Shutdown,
    /// The store failed; see [`End::error`].
    Failed,
}

/// The last item of every stream that ends by itself.
#[derive(Debug)]
pub struct End {
    /// What the trailers carry.
    pub summary: Summary,
    /// Why the stream ended.
    pub reason: EndReason,
    /// The error, when the stream ended because of one.
    pub error: Option<ServeError>,
}

/// One item of a [`TailStream`].
#[derive(Debug)]
pub enum Item<T> {
    /// An entry, already in the transport's form.
    Entry(T),
    /// Several entries in one item, and how many: a run of the newest
    /// entries, from an encoder that takes runs (`Encode::takes_runs`).
    Entries(T, u64),
    /// The end; nothing follows.
    End(End),
}

/// A stream ready to be returned, and the header values known up front.
pub struct Opened<T> {
    /// Exactly how many entries the stream will carry, when that is known
    /// before the first is read (history only, level/time/cursor filters
    /// only).
    pub total_count: Option<u64>,
    /// The entries.
    pub stream: TailStream<T>,
}

/// Where a stream starts and when it stops, fixed when it is opened.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Newest first.
    reverse: bool,
    /// Keep going live after catching up, instead of ending.
    follow: bool,
    /// Stop after this many entries.
    limit: Option<u64>,
    /// The cursor the stream starts after; the resume point when nothing
    /// else was considered.
    start: u64,
    /// For a history read, the newest cursor when the request came in: the
    /// stream carries exactly the entries up to it, and once it has read to
    /// the end everything up to it has been considered.
    snapshot: Option<u64>,
}

/// Turns the entries a stream reads into the transport's form.
///
/// A plain closure (`FnMut(&EntryRef) -> T`) is an encoder that sends entry
/// by entry; an encoder that also takes runs sends the newest entries of a
/// live tail a chunk at a time, encoded once for every stream (see
/// `logtap_core::Run`).
pub trait Encode: Send + Unpin + 'static {
    /// One item of the transport.
    type Out: Send + 'static;

    /// One matching entry.
    fn entry(&mut self, entry: &EntryRef<'_>) -> Self::Out;

    /// Whether the stream may hand this encoder runs. Asked before the
    /// reader takes one, since a reader that took a run has moved past it.
    fn takes_runs(&self) -> bool {
        false
    }

    /// Every entry of `run` as one item, with the trailer CRC over those
    /// entries. Called only when [`Encode::takes_runs`].
    fn run(&mut self, run: &Run<'_>) -> Result<(Self::Out, RunCrc), StoreError> {
        let _ = run;
        unreachable!("run() is only called on encoders that take runs")
    }
}

impl<T, F> Encode for F
where
    T: Send + 'static,
    F: FnMut(&EntryRef<'_>) -> T + Send + Unpin + 'static,
{
    type Out = T;

    fn entry(&mut self, entry: &EntryRef<'_>) -> T {
        self(entry)
    }
}

/// Opens a stream for `query`, turning each entry into a `T` with `map`.
/// The stream holds a slot under `max_streams` and, with the `quota` of the
/// connection the request came on, under its connection's and address's
/// caps.
///
/// Errors that can be known before the first entry (shutting down, too many
/// streams, a cursor older than retention) are returned here, so the
/// transport can answer with a plain error status instead of a stream.
pub async fn open<E: Encode>(
    shared: &Shared,
    quota: Option<&Quota>,
    request_id: RequestId,
    query: Plan,
    map: E,
) -> Result<Opened<E::Out>, ServeError> {
    if shared.shutdown.is_cancelled() {
        return Err(ServeError::ShuttingDown);
    }
    let guard = quota::open_stream(&shared.metrics, shared.max_streams, quota)?;
    let store = shared.store.clone();
    // Counting and positioning a backward reader may read segment files,
    // so they run where blocking is allowed. A forward reader that needs no
    // count only looks at summaries in memory: a storm of live tails then
    // costs no blocking thread (and its memory) per stream.
    let (prepared, query) = if query.counts() || query.reverse {
        tokio::task::spawn_blocking(move || {
            let prepared = prepare(&*store, &query);
            (prepared, query)
        })
        .await
        .map_err(ServeError::join)?
    } else {
        (prepare(&*store, &query), query)
    };
    let (reader, plan, total_count) = prepared?;
    tracing::debug!(
        request_id = %request_id,
        start = ?query.start,
        after = plan.start,
        follow = plan.follow,
        reverse = plan.reverse,
        total_count = ?total_count,
        "A reading stream opened."
    );
    let inner = read(shared.clone(), reader, plan, query.matcher, map);
    Ok(Opened {
        total_count,
        stream: TailStream {
            inner: Box::pin(inner),
            probe: Probe::default(),
            metrics: Arc::clone(&shared.metrics),
            unreported: 0,
            unreported_in_runs: 0,
            request_id,
            ended: false,
            _guard: guard,
        },
    })
}

/// A positioned reader, what it is to do, and the exact count when known.
type Prepared = (Box<dyn LogReader>, Bounds, Option<u64>);

/// Works out the read options, counts when the count will be exact, and
/// positions the reader. Blocking when it counts or reads backward.
fn prepare(store: &dyn Backend, query: &Plan) -> Result<Prepared, StoreError> {
    let after = match query.start {
        Start::Oldest => None,
        Start::After(cursor) => Some(cursor),
        Start::Newest => Some(store.last_cursor()),
    };
    let (before, snapshot) = if query.follow {
        // Live: one forward reader from the start, which keeps seeing new
        // entries as they become visible, so the hand-over from history to
        // live has no gap and no duplicate by construction.
        (None, None)
    } else {
        // History: take the newest cursor now and read up to it, so the
        // stream carries exactly what was counted even while pushes go on.
        let last = store.last_cursor();
        (last.checked_add(1), Some(last))
    };
    let filter = query.filter;
    let options = ReadOptions {
        after,
        before,
        direction: if query.reverse {
            Direction::Backward
        } else {
            Direction::Forward
        },
        filter,
        search: query.matcher.search(),
    };
    let total_count = if query.counts() {
        let count = store.count(&options)?;
        Some(query.limit.map_or(count, |limit| count.min(limit)))
    } else {
        None
    };
    let reader = store.reader(options)?;
    let plan = Bounds {
        reverse: query.reverse,
        follow: query.follow,
        limit: query.limit,
        start: after.unwrap_or(0),
        snapshot,
    };
    Ok((reader, plan, total_count))
}

/// What one step of the reader led to, decided while the entry is still
/// borrowed from the reader, acted on after.
enum Outcome<T> {
    /// A match, in the transport's form, and its cursor.
    Send(T, u64),
    /// An entry the text or label filters rejected.
    Rejected,
    /// The reader spent its budget on entries that did not match.
    Pending,
    /// Nothing more for now.
    CaughtUp,
    /// The store failed.
    Failed(StoreError),
}

/// Where the reading loop is between two polls.
enum Phase {
    /// Reading the store.
    Reading,
    /// Giving the worker thread back before reading on (see [`Pause`]).
    Paused(Pause),
    /// Caught up and following: waiting for a commit or for shutdown.
    Waiting,
    /// The reader is lent to a matching thread for a batch.
    Matching(oneshot::Receiver<Batch>),
    /// The end was sent.
    Ended,
}

/// The reading loop, by hand rather than as a generator: its state is
/// these fields, kept in the response body itself, so dropping the body
/// drops the reader and stops everything. One poll reads until a match, a
/// spent budget or the end, so a match costs no more than a function return.
struct Reading<E> {
    /// The newest visible cursor, read before every step.
    live: Live,
    /// Checked once per budget.
    shutdown: CancellationToken,
    /// Resolves at shutdown; raced against commits while waiting. Made
    /// once per stream, so a wait costs no clone of the token.
    shut_down: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Yields after every commit since it last yielded. A commit the
    /// reader has already read past wakes it once more for nothing (one
    /// step that finds the end); a commit that lands between a step and
    /// the wait is never missed.
    commits: WatchStream<u64>,
    reader: Box<dyn LogReader>,
    plan: Bounds,
    matcher: Matcher,
    /// Turns a matching entry into the transport's form.
    map: E,
    /// Whether runs of the newest entries may be taken: the encoder takes
    /// them, and the stream sends every entry (no filter, no limit).
    runs: bool,
    phase: Phase,
    /// Entries sent.
    sent: u64,
    /// Over the entries sent, for the trailers.
    crc: Crc,
    /// The cursor of the last entry sent.
    last_sent: u64,
    /// The newest cursor the reader is known to have considered
    /// everything up to, from the moments it caught up.
    caught_up: u64,
    /// Work done since the last pause.
    work: usize,
    /// Why the stream failed, once it has.
    error: Option<ServeError>,
    /// Message bytes the text filter has looked at since the stream
    /// opened or last caught up.
    scanned: u64,
    /// The most `scanned` may reach (`max_query_scan_bytes`, or
    /// `u64::MAX` for no limit).
    scan_limit: u64,
    /// For the limit's counter.
    metrics: Arc<Metrics>,
    /// For a costly matcher: the matching threads and what the last batch
    /// found there.
    offload: Option<Box<Offload>>,
}

/// What a stream with a costly matcher keeps between batches on the
/// matching threads.
struct Offload {
    /// Where batches run.
    threads: MatchThreads,
    /// The matches the last batch copied out, sent one by one; its
    /// buffers go back and forth with every batch, so they are reused.
    found: Found,
    /// How the last batch ended, acted on once its matches are sent.
    then: Option<BatchEnd>,
}

/// The matches of one batch, copied out of the reader's buffer on the
/// matching thread: the reader is back reading by the time they are sent.
#[derive(Default)]
struct Found {
    /// Every match's message, one after the other; a `String`, so no
    /// message is checked for UTF-8 again when sent.
    messages: String,
    /// Every match's labels in their compact form, one after the other.
    labels: Vec<u8>,
    /// Each match, and where its message and labels end.
    entries: Vec<FoundEntry>,
    /// The next match to send.
    next: usize,
}

/// One match of a batch.
struct FoundEntry {
    cursor: u64,
    timestamp: i64,
    level: Level,
    /// Where its message ends in `Found::messages` (it starts where the
    /// one before ends).
    message_end: usize,
    /// Where its labels end in `Found::labels`.
    labels_end: usize,
}

impl Found {
    /// Empties it for the next batch, keeping the buffers.
    fn clear(&mut self) {
        self.messages.clear();
        self.labels.clear();
        self.entries.clear();
        self.next = 0;
    }

    /// Copies `entry` in.
    fn push(&mut self, entry: &EntryRef<'_>) {
        self.messages.push_str(entry.message);
        self.labels.extend_from_slice(entry.labels().as_bytes());
        self.entries.push(FoundEntry {
            cursor: entry.cursor,
            timestamp: entry.timestamp,
            level: entry.level,
            message_end: self.messages.len(),
            labels_end: self.labels.len(),
        });
    }

    /// The bytes copied in.
    fn bytes(&self) -> usize {
        self.messages.len() + self.labels.len()
    }

    /// The next match to send, if any is left.
    fn take(&mut self) -> Option<Result<EntryRef<'_>, StoreError>> {
        let index = self.next;
        let found = self.entries.get(index)?;
        self.next += 1;
        let (message_start, labels_start) = match index.checked_sub(1) {
            Some(before) => (
                self.entries[before].message_end,
                self.entries[before].labels_end,
            ),
            None => (0, 0),
        };
        let labels = match Labels::parse(&self.labels[labels_start..found.labels_end]) {
            Ok(labels) => labels,
            Err(_) => return Some(Err(StoreError::unreadable_in_memory())),
        };
        Some(Ok(EntryRef::new(
            found.cursor,
            found.timestamp,
            found.level,
            &self.messages[message_start..found.message_end],
            labels,
        )))
    }
}

/// How a batch on a matching thread ended.
enum BatchEnd {
    /// Its budget was spent: another batch goes on.
    More,
    /// The reader caught up; everything up to this cursor (the newest
    /// visible when the batch was sent) has been considered.
    CaughtUp(u64),
    /// The store failed.
    Failed(StoreError),
}

/// A batch of scanning lent to a matching thread, and what it gives back.
struct Batch {
    reader: Box<dyn LogReader>,
    matcher: Matcher,
    found: Found,
    /// Stop after this many matches.
    max_matches: usize,
    /// Stop once the text filter has looked at this many bytes.
    max_scanned: u64,
    /// Bytes the text filter looked at.
    scanned: u64,
    /// How it ended.
    end: BatchEnd,
}

impl Batch {
    /// Reads and matches until a match limit, a budget or the end.
    fn run(mut self, visible: u64) -> Batch {
        self.found.clear();
        let max_scanned = self.max_scanned.min(MATCH_BATCH_BYTES as u64);
        let mut work = 0;
        self.end = loop {
            let end = match self.reader.step(READ_BUDGET) {
                Err(error) => Some(BatchEnd::Failed(error)),
                Ok(Step::End) => Some(BatchEnd::CaughtUp(visible)),
                Ok(Step::Pending) => None,
                Ok(Step::Entry(entry)) => {
                    let (matched, scanned) = self.matcher.check(&entry);
                    self.scanned += scanned as u64;
                    if matched && self.matcher.rewrites() {
                        let rewritten = self.matcher.rewrite(&entry);
                        self.found.push(&rewritten.entry(&entry));
                    } else if matched {
                        self.found.push(&entry);
                    }
                    None
                }
            };
            if let Some(end) = end {
                break end;
            }
            work += self.reader.last_step_cost() + 1;
            if self.found.entries.len() >= self.max_matches
                || self.found.bytes() >= MATCH_BATCH_FOUND_BYTES
                || self.scanned >= max_scanned
                || work >= MATCH_BATCH_WORK
            {
                break BatchEnd::More;
            }
        };
        self
    }
}

/// Stands in for a stream's reader while a matching thread has it: the
/// stream does not read until the batch is back, so it is never asked.
struct Lent;

impl LogReader for Lent {
    fn step(&mut self, _budget: usize) -> Result<Step<'_>, StoreError> {
        Ok(Step::End)
    }

    fn next_entry(&mut self) -> Result<Option<EntryRef<'_>>, StoreError> {
        Ok(None)
    }

    fn last_step_cost(&self) -> usize {
        0
    }

    fn scanned_through(&self) -> Option<u64> {
        None
    }
}

/// The reading loop for one stream.
fn read<E: Encode>(
    shared: Shared,
    reader: Box<dyn LogReader>,
    plan: Bounds,
    matcher: Matcher,
    map: E,
) -> Reading<E> {
    // The store's filter is the reader's to apply: `take_run` declines
    // when it has one.
    let runs = map.takes_runs() && matcher.is_empty() && plan.limit.is_none() && !plan.reverse;
    let offload = matcher.is_costly().then(|| {
        Box::new(Offload {
            threads: shared.matching.clone(),
            found: Found::default(),
            then: None,
        })
    });
    let scan_limit = match shared.max_query_scan_bytes {
        0 => u64::MAX,
        limit => limit,
    };
    Reading {
        metrics: Arc::clone(&shared.metrics),
        scan_limit,
        scanned: 0,
        offload,
        commits: WatchStream::from_changes(shared.live.subscribe()),
        live: shared.live,
        shut_down: Box::pin(shared.shutdown.clone().cancelled_owned()),
        shutdown: shared.shutdown,
        reader,
        plan,
        matcher,
        map,
        runs,
        phase: Phase::Reading,
        sent: 0,
        crc: Crc::default(),
        last_sent: 0,
        caught_up: 0,
        work: 0,
        error: None,
    }
}

impl<E: Encode> Reading<E> {
    /// One step of the reader. Returns the item to send, if the step led to
    /// one; otherwise the phase says what comes next.
    fn advance(&mut self) -> Option<Item<E::Out>> {
        if self.plan.limit.is_some_and(|limit| self.sent >= limit) {
            return Some(self.end(EndReason::Limit));
        }
        if self.offload.is_some() {
            if let Some(item) = self.after_batch() {
                return item;
            }
        }
        if self.scanned > self.scan_limit {
            self.metrics.limit_hit(Limit::QueryScanBytes);
            self.error = Some(ServeError::QueryTooCostly {
                scanned: self.scanned,
                limit: self.scan_limit,
            });
            return Some(self.end(EndReason::Failed));
        }
        // Checked when a budget of work starts, not per entry: the token
        // takes a lock that every stream shares. A shutdown is seen within
        // one budget, and at once by a stream that waits.
        if self.work == 0 && self.shutdown.is_cancelled() {
            return Some(self.end(EndReason::Shutdown));
        }
        // The newest cursor published before this step: the commit hook
        // runs after an entry is visible, so if this step catches up, the
        // reader has considered everything up to it.
        let visible = self.live.newest();
        if self.runs {
            if let Some(item) = self.take_run() {
                return Some(item);
            }
        }
        if self.offload.is_some() {
            self.lend(visible);
            return None;
        }
        let outcome = match self.reader.step(READ_BUDGET) {
            Err(error) => Outcome::Failed(error),
            Ok(Step::Pending) => Outcome::Pending,
            Ok(Step::End) => Outcome::CaughtUp,
            Ok(Step::Entry(entry)) => {
                let (matched, scanned) = self.matcher.check(&entry);
                if scanned != 0 {
                    // Matching costs by the byte: a step over big messages
                    // pauses sooner.
                    self.scanned += scanned as u64;
                    self.work += scanned >> SCAN_BYTES_PER_UNIT_SHIFT;
                }
                if matched && self.matcher.rewrites() {
                    let rewritten = self.matcher.rewrite(&entry);
                    let entry = rewritten.entry(&entry);
                    self.crc.add(entry.timestamp, entry.message);
                    Outcome::Send(self.map.entry(&entry), entry.cursor)
                } else if matched {
                    self.crc.add(entry.timestamp, entry.message);
                    Outcome::Send(self.map.entry(&entry), entry.cursor)
                } else {
                    Outcome::Rejected
                }
            }
        };
        // Charge what the reader did, not only what was sent: a scan
        // between two rare matches must pause too, or the transport, which
        // sends when the stream pauses, would hold the first match until
        // the whole scan ends (the bucket, not the tap).
        self.work += self.reader.last_step_cost();
        let item = match outcome {
            Outcome::Send(item, cursor) => {
                self.sent += 1;
                self.last_sent = cursor;
                self.work += 1;
                if self.sent == 1 {
                    // The first entry leaves at once: pause right after it
                    // so the transport sends it before the scan goes on.
                    self.work = READ_BUDGET;
                }
                Some(Item::Entry(item))
            }
            Outcome::Rejected => {
                self.work += 1;
                None
            }
            Outcome::Pending => {
                self.work = READ_BUDGET;
                None
            }
            Outcome::CaughtUp => return self.caught_up_at(visible),
            Outcome::Failed(failure) => {
                self.error = Some(ServeError::Store(failure));
                return Some(self.end(EndReason::Failed));
            }
        };
        if self.work >= READ_BUDGET {
            // Let other tasks run: a long skip or a fast client must not
            // hold this worker thread.
            self.work = 0;
            self.phase = Phase::Paused(Pause::default());
        }
        item
    }

    /// The reader has considered everything up to `visible`: the history
    /// is complete, or a follower waits for the next commit.
    fn caught_up_at(&mut self, visible: u64) -> Option<Item<E::Out>> {
        self.caught_up = self.caught_up.max(self.plan.snapshot.unwrap_or(visible));
        if !self.plan.follow {
            return Some(self.end(EndReason::Complete));
        }
        // The scan limit bounds one pass over stored history; what a
        // follower matches from here on comes as fast as pushes do.
        self.scanned = 0;
        self.phase = Phase::Waiting;
        self.work = 0;
        None
    }

    /// Lends the reader and matcher to a matching thread for one batch.
    fn lend(&mut self, visible: u64) {
        let Some(offload) = self.offload.as_mut() else {
            return;
        };
        // The first match leaves alone, at once; then as many as the
        // request's limit leaves room for.
        let max_matches = match (self.sent, self.plan.limit) {
            (0, _) => 1,
            (sent, Some(limit)) => usize::try_from(limit - sent).unwrap_or(usize::MAX),
            (_, None) => usize::MAX,
        };
        let batch = Batch {
            reader: std::mem::replace(&mut self.reader, Box::new(Lent)),
            matcher: std::mem::take(&mut self.matcher),
            found: std::mem::take(&mut offload.found),
            max_matches,
            max_scanned: (self.scan_limit - self.scanned.min(self.scan_limit)).saturating_add(1),
            scanned: 0,
            end: BatchEnd::More,
        };
        self.work = 0;
        self.phase = Phase::Matching(offload.threads.run(move || batch.run(visible)));
    }

    /// A batch is back from its matching thread: the reader and matcher
    /// come home, its matches wait to be sent.
    fn returned(&mut self, batch: Batch) {
        self.reader = batch.reader;
        self.matcher = batch.matcher;
        self.scanned = self.scanned.saturating_add(batch.scanned);
        if let Some(offload) = self.offload.as_mut() {
            offload.found = batch.found;
            offload.then = Some(batch.end);
        }
        self.phase = Phase::Reading;
    }

    /// Sends the next match of the last batch, then acts on how the batch
    /// ended. `None` when there is nothing left of it.
    fn after_batch(&mut self) -> Option<Option<Item<E::Out>>> {
        let offload = self.offload.as_mut()?;
        match offload.found.take() {
            Some(Ok(entry)) => {
                self.crc.add(entry.timestamp, entry.message);
                self.sent += 1;
                self.last_sent = entry.cursor;
                return Some(Some(Item::Entry(self.map.entry(&entry))));
            }
            Some(Err(failure)) => {
                self.error = Some(ServeError::Store(failure));
                return Some(Some(self.end(EndReason::Failed)));
            }
            None => {}
        }
        match offload.then.take()? {
            BatchEnd::More => None,
            BatchEnd::CaughtUp(visible) => Some(self.caught_up_at(visible)),
            BatchEnd::Failed(failure) => {
                self.error = Some(ServeError::Store(failure));
                Some(Some(self.end(EndReason::Failed)))
            }
        }
    }

    /// Sends the rest of the chunk of newest entries the reader is at, if
    /// it is in memory, as one item.
    fn take_run(&mut self) -> Option<Item<E::Out>> {
        let run = self.reader.take_run()?;
        let count = run.len() as u64;
        let last = run.last_cursor();
        match self.map.run(&run) {
            Ok((item, crc)) => {
                self.crc = self.crc.then(&crc);
                self.sent += count;
                self.last_sent = last;
                // Its entries count as work like entries sent one by one.
                self.work += count as usize;
                if self.work >= READ_BUDGET {
                    self.work = 0;
                    self.phase = Phase::Paused(Pause::default());
                }
                Some(Item::Entries(item, count))
            }
            Err(failure) => {
                self.error = Some(ServeError::Store(failure));
                Some(self.end(EndReason::Failed))
            }
        }
    }

    /// The last item: what the trailers need, and why the stream ended.
    fn end(&mut self, reason: EndReason) -> Item<E::Out> {
        self.phase = Phase::Ended;
        let plan = &self.plan;
        let next_cursor = if plan.reverse {
            // Newest first: everything up to the snapshot was considered or
            // lies beyond the limit, and what comes next is newer. The
            // snapshot, not the start: a start past the newest entry
            // (`after_cursor = u64::MAX`) would send the client to resume
            // after entries that do not exist yet, and it would miss them.
            plan.snapshot.unwrap_or(plan.start)
        } else {
            let scanned = self.reader.scanned_through().unwrap_or(0);
            plan.start
                .max(self.last_sent)
                .max(scanned)
                .max(self.caught_up)
        };
        Item::End(End {
            summary: Summary {
                sent: self.sent,
                next_cursor,
                crc: self.crc,
            },
            reason,
            error: self.error.take(),
        })
    }
}

impl<E: Encode> Stream for Reading<E> {
    type Item = Item<E::Out>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Ended => return Poll::Ready(None),
                Phase::Reading => {
                    if let Some(item) = this.advance() {
                        return Poll::Ready(Some(item));
                    }
                }
                Phase::Paused(pause) => {
                    ready!(pause.poll(cx));
                    this.phase = Phase::Reading;
                }
                Phase::Matching(batch) => match ready!(Pin::new(batch).poll(cx)) {
                    Ok(batch) => this.returned(batch),
                    Err(_) => {
                        this.error = Some(ServeError::Internal(
                            "a matching thread failed while scanning".into(),
                        ));
                        return Poll::Ready(Some(this.end(EndReason::Failed)));
                    }
                },
                Phase::Waiting => {
                    if this.shut_down.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(this.end(EndReason::Shutdown)));
                    }
                    match ready!(this.commits.poll_next_unpin(cx)) {
                        Some(_) => this.phase = Phase::Reading,
                        // The store's hook is gone, so the store is:
                        // nothing more will come.
                        None => return Poll::Ready(Some(this.end(EndReason::Shutdown))),
                    }
                }
            }
        }
    }
}

/// Gives the worker thread back to the scheduler, for real.
///
/// Returning `Pending` after waking oneself is not enough here: hyper polls
/// a response body again in the same task poll right after sending what it
/// returned, so the stream would go on scanning without the task ever
/// ending its poll, and the connection task that writes to the socket
/// (waiting in the same worker's LIFO slot) would not run until the scan
/// ended: the first match would reach the client with the last. The task's
/// coop budget, once spent, stays spent until the scheduler polls the task
/// anew, so spending it ends the poll.
#[derive(Debug, Default)]
struct Pause {
    /// Whether the budget has been spent; then the pause ends as soon as
    /// the task has a fresh budget.
    spent: bool,
}

impl Pause {
    /// The most budget units a pause spends before giving up: tokio's
    /// budget is 128, and outside a budgeted task there is none to spend.
    const MAX_UNITS: usize = 1024;

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.spent {
            // Pending until the scheduler polls this task again.
            ready!(coop::poll_proceed(cx)).made_progress();
            return Poll::Ready(());
        }
        for _ in 0..Self::MAX_UNITS {
            match coop::poll_proceed(cx) {
                Poll::Ready(unit) => unit.made_progress(),
                Poll::Pending => {
                    self.spent = true;
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(())
    }
}

/// A reading stream, with the accounting every transport needs: the active
/// streams gauge, the sent and cancelled counters, and the idle probe.
pub struct TailStream<T> {
    /// The reading loop.
    inner: Pin<Box<dyn Stream<Item = Item<T>> + Send>>,
    /// Tells the idle watchdog when this stream is polled (see
    /// [`crate::net::idle`]).
    probe: Probe,
    /// For the sent and cancelled counters.
    metrics: Arc<Metrics>,
    /// Entries sent but not yet added to the sent counter: it is shared by
    /// every stream, so it is added to when the stream pauses or ends, not
    /// once per entry.
    unreported: u64,
    /// Of those, the entries sent in runs.
    unreported_in_runs: u64,
    /// For the log lines about this stream.
    request_id: RequestId,
    /// Whether the stream ended by itself; if it is dropped before, the
    /// client cancelled (or was reset for being idle).
    ended: bool,
    /// Holds one unit of the active streams gauge until the stream is gone.
    _guard: StreamSlot,
}

impl<T> Stream for TailStream<T> {
    type Item = Item<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item<T>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        this.probe.polled();
        let poll = this.inner.as_mut().poll_next(cx);
        match &poll {
            Poll::Ready(Some(Item::Entry(_))) => {
                this.unreported += 1;
                this.probe.produced(true);
            }
            Poll::Ready(Some(Item::Entries(_, count))) => {
                this.unreported += count;
                this.unreported_in_runs += count;
                this.probe.produced(true);
            }
            Poll::Ready(Some(Item::End(end))) => {
                this.ended = true;
                this.report_sent();
                this.probe.finish();
                tracing::debug!(
                    request_id = %this.request_id,
                    reason = ?end.reason,
                    sent = end.summary.sent,
                    next_cursor = end.summary.next_cursor,
                    "A reading stream ended."
                );
                if let Some(error) = &end.error {
                    tracing::warn!(request_id = %this.request_id, error = %error, detail = ?error, "A reading stream failed.");
                }
            }
            Poll::Ready(None) => {
                this.ended = true;
                this.probe.finish();
            }
            Poll::Pending => {
                this.report_sent();
                this.probe.produced(false);
            }
        }
        poll
    }
}

impl<T> TailStream<T> {
    /// Adds the entries sent since the last report to the sent counter.
    fn report_sent(&mut self) {
        if self.unreported > 0 {
            self.metrics.entries_sent.inc_by(self.unreported);
            self.unreported = 0;
        }
        if self.unreported_in_runs > 0 {
            self.metrics
                .entries_sent_in_runs
                .inc_by(self.unreported_in_runs);
            self.unreported_in_runs = 0;
        }
    }
}

impl<T> Drop for TailStream<T> {
    fn drop(&mut self) {
        self.report_sent();
        if !self.ended {
            self.metrics.streams_cancelled.inc();
            if self.probe.idle_reset() {
                self.metrics.limit_hit(Limit::IdleTimeout);
            }
            tracing::debug!(
                request_id = %self.request_id,
                "A reading stream was dropped before it ended: the client cancelled or went away."
            );
        }
    }
}

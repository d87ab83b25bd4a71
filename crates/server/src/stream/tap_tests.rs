//! The tap, not the bucket: a reading stream hands each match to its
//! transport before scanning on. Transports (tonic's encoder, hyper) send
//! what they hold when the stream pauses, so a stream that found its first
//! match and then kept scanning without pausing would deliver nothing until
//! the scan ended: "Show Errors" on a big store would wait for the last
//! error before showing the first.

use crate::ops::metrics::Metrics;
use crate::stream::live::Live;
use crate::stream::matching::MatchThreads;
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use crate::stream::tail::{self, Item, READ_BUDGET};
use futures::StreamExt;
use logtap_core::{EntryRef, Level, NewEntry};
use logtap_query::{Mode, Plan, RawQuery};
use logtap_store::{Store, StoreConfig, SyncPolicy};
use std::sync::Arc;
use std::task::Poll;
use tokio_util::sync::CancellationToken;

/// An error every `gap` entries, in one big block so that nothing is
/// skipped by summaries: every entry between two errors is read.
fn store_with_errors_every(gap: u64, errors: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path());
    config.sync = SyncPolicy::Never;
    config.block_bytes = 64 << 20;
    let store = Store::open(config).expect("store");
    let entries: Vec<NewEntry> = (0..gap * errors)
        .map(|i| NewEntry {
            timestamp: i as i64,
            level: if i % gap == 0 {
                Level::Error
            } else {
                Level::Info
            },
            message: format!("entry {i}"),
            labels: Vec::new(),
        })
        .collect();
    store.append(&entries).expect("append");
    (dir, store)
}

/// Polls until the stream yields an item, counting the pauses (Pending)
/// before it. After a pause the test task itself yields to the scheduler,
/// as a transport's task does, so that the pause can end.
async fn next_with_pauses<T>(stream: &mut tail::TailStream<T>) -> (Option<Item<T>>, usize) {
    let mut pauses = 0;
    loop {
        match std::future::poll_fn(|cx| Poll::Ready(stream.poll_next_unpin(cx))).await {
            Poll::Ready(item) => return (item, pauses),
            Poll::Pending => {
                pauses += 1;
                tokio::task::yield_now().await;
            }
        }
    }
}

/// A pause must end the task's poll: polled again at once, within the same
/// task poll (as hyper does with a response body after sending a frame),
/// the stream must still be pending rather than go on scanning.
#[tokio::test]
async fn a_pause_holds_until_the_scheduler_polls_the_task_again() {
    let (_dir, store) = store_with_errors_every(400, 20);
    let shared = shared(store);
    let query = Plan::from_level(Mode::History, "error").expect("query");
    let mut stream = tail::open(
        &shared,
        None,
        RequestId::generate(),
        query,
        |entry: &EntryRef<'_>| entry.cursor,
    )
    .await
    .expect("open")
    .stream;
    let (first, _) = next_with_pauses(&mut stream).await;
    assert!(matches!(first, Some(Item::Entry(1))));
    // The pause after the first match: every poll within this one task poll
    // stays pending.
    std::future::poll_fn(|cx| {
        for attempt in 0..100 {
            assert!(
                stream.poll_next_unpin(cx).is_pending(),
                "the stream went on at attempt {attempt} without the task yielding"
            );
        }
        Poll::Ready(())
    })
    .await;
    tokio::task::yield_now().await;
    let (second, _) = next_with_pauses(&mut stream).await;
    assert!(matches!(second, Some(Item::Entry(401))));
}

fn shared(store: Store) -> Shared {
    Shared {
        live: Live::attach(&store),
        store: Arc::new(store),
        shutdown: CancellationToken::new(),
        metrics: Arc::new(Metrics::new()),
        max_streams: 10,
        matching: MatchThreads::start(1).expect("matching threads"),
        max_query_scan_bytes: 0,
    }
}

#[tokio::test]
async fn a_stream_pauses_after_its_first_match_and_whenever_a_budget_of_reading_is_spent() {
    // 400 entries between errors: each error is found within one reader
    // step, so only counting what the reader read makes the stream pause.
    let gap = 400;
    let (_dir, store) = store_with_errors_every(gap, 20);
    let shared = shared(store);
    let query = Plan::from_level(Mode::History, "error").expect("query");
    let opened = tail::open(
        &shared,
        None,
        RequestId::generate(),
        query,
        |entry: &EntryRef<'_>| entry.cursor,
    )
    .await
    .expect("open");
    assert_eq!(opened.total_count, Some(20));
    let mut stream = opened.stream;

    let mut cursors = Vec::new();
    let mut pauses_before = Vec::new();
    loop {
        match next_with_pauses(&mut stream).await {
            (Some(Item::Entry(cursor)), pauses) => {
                cursors.push(cursor);
                pauses_before.push(pauses);
            }
            (Some(Item::End(end)), _) => {
                assert_eq!(end.summary.sent, 20);
                break;
            }
            (Some(Item::Entries(..)), _) => panic!("a closure encoder takes no runs"),
            (None, _) => panic!("the stream ended without its summary"),
        }
    }
    assert_eq!(cursors, (0..20).map(|i| i * gap + 1).collect::<Vec<u64>>());
    // The first match is handed over before anything else is read.
    assert!(
        pauses_before[1] >= 1,
        "no pause after the first match: {pauses_before:?}"
    );
    // After that, a pause at least every READ_BUDGET records read: with
    // `gap` records read per match, within every run of
    // READ_BUDGET / gap + 1 matches.
    let run = (READ_BUDGET as u64 / gap + 1) as usize;
    for window in pauses_before[1..].windows(run) {
        assert!(
            window.iter().any(|&p| p > 0),
            "a run of {run} matches without a pause: {pauses_before:?}"
        );
    }
}

/// A text filter is charged by the bytes it looks at: over 16 KiB
/// messages, 300 entries between two matches are 4.7 MiB of searching, and
/// the stream pauses between every two matches. Counting entries only, it
/// read 600 units per match and paused once in seven.
#[tokio::test]
async fn a_text_filter_over_big_messages_pauses_by_the_bytes_it_searches() {
    let gap = 300;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path());
    config.sync = SyncPolicy::Never;
    config.block_bytes = 64 << 20;
    config.segment_bytes = 1 << 30;
    let store = Store::open(config).expect("store");
    let big = "x".repeat(16 << 10);
    let entries: Vec<NewEntry> = (0..gap * 10)
        .map(|i| NewEntry {
            timestamp: i as i64,
            level: Level::Info,
            message: if i % gap == 0 {
                format!("needle {big}")
            } else {
                big.clone()
            },
            labels: Vec::new(),
        })
        .collect();
    store.append(&entries).expect("append");
    let shared = shared(store);
    let query = Plan::parse(
        Mode::History,
        RawQuery {
            grep: "needle".into(),
            ..RawQuery::default()
        },
    )
    .expect("query");
    let mut stream = tail::open(
        &shared,
        None,
        RequestId::generate(),
        query,
        |entry: &EntryRef<'_>| entry.cursor,
    )
    .await
    .expect("open")
    .stream;
    let mut pauses_before = Vec::new();
    loop {
        match next_with_pauses(&mut stream).await {
            (Some(Item::Entry(_)), pauses) => pauses_before.push(pauses),
            (Some(Item::End(end)), _) => {
                assert_eq!(end.summary.sent, 10);
                break;
            }
            (other, _) => panic!("unexpected {:?}", other.is_some()),
        }
    }
    assert!(
        pauses_before[1..].iter().all(|&pauses| pauses > 0),
        "matches 300 entries of 16 KiB apart without a pause between: {pauses_before:?}"
    );
}

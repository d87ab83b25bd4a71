//! Retention, waking, concurrency, budgets: the store as the server uses it.

mod common;

use common::{entry, read_all, small_config};
use logtap_core::{Filter, Level, NewEntry, ReadOptions, Step, StoreError};
use logtap_store::{Retention, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn retention_by_size_deletes_whole_oldest_segments_and_readers_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.retention = Retention {
        max_bytes: Some(8 * 1024),
        max_age: None,
    };
    let store = Store::open(config.clone()).unwrap();
    for i in 0..500 {
        store.append(&[entry(i)]).unwrap();
    }
    let stats = store.stats();
    assert!(
        stats.bytes <= 8 * 1024 + config.segment_bytes + 200,
        "bytes {}",
        stats.bytes
    );
    let oldest = store.oldest_cursor();
    assert!(oldest > 1);
    // What is held is exactly oldest..=500.
    let all = read_all(&store, ReadOptions::default());
    assert_eq!(all.first().unwrap().cursor, oldest);
    assert_eq!(all.len() as u64, 500 - oldest + 1);
    assert_eq!(stats.entries, all.len() as u64);
    // Resuming after a deleted cursor names the oldest still held.
    match store.reader(ReadOptions {
        after: Some(1),
        ..Default::default()
    }) {
        Err(StoreError::CursorDeleted {
            requested: 1,
            oldest: o,
        }) => assert_eq!(o, oldest),
        other => panic!("expected CursorDeleted, got {:?}", other.map(|_| ())),
    }
    let error = store
        .count(&ReadOptions {
            after: Some(0),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("oldest cursor still held is {oldest}")),
        "{error}"
    );
    // Resuming right before the oldest loses nothing.
    assert_eq!(
        read_all(
            &store,
            ReadOptions {
                after: Some(oldest - 1),
                ..Default::default()
            }
        ),
        all
    );
    // Retention holds across a restart.
    drop(store);
    let store = Store::open(config).unwrap();
    assert_eq!(store.oldest_cursor(), oldest);
}

#[test]
fn retention_by_age_deletes_segments_whose_newest_entry_is_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.retention = Retention {
        max_bytes: None,
        max_age: Some(Duration::from_secs(3600)),
    };
    let store = Store::open(config).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let old = |i: u64| NewEntry {
        timestamp: 1_000 + i as i64,
        ..entry(i)
    };
    for i in 0..100 {
        store.append(&[old(i)]).unwrap();
    }
    for i in 100..200 {
        store
            .append(&[NewEntry {
                timestamp: now,
                ..entry(i)
            }])
            .unwrap();
    }
    let all = read_all(&store, ReadOptions::default());
    assert!(
        all.iter().all(|e| e.cursor > 50),
        "old segments were not deleted"
    );
    assert!(
        all.iter().filter(|e| e.timestamp == now).count() == 100,
        "recent entries must stay"
    );
}

#[test]
fn a_forward_reader_sees_new_entries_after_catching_up_and_waiters_wake() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    let hook_saw = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&hook_saw);
    store.on_commit(move |cursor| seen.store(cursor, Ordering::SeqCst));
    let mut reader = store.reader(ReadOptions::default()).unwrap();
    assert!(matches!(reader.step(10).unwrap(), Step::End));

    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            store.append(&[entry(0), entry(1)]).unwrap();
        })
    };
    assert_eq!(store.wait_for(0, Duration::from_secs(10)), 2);
    writer.join().unwrap();
    assert_eq!(hook_saw.load(Ordering::SeqCst), 2);
    let mut got = Vec::new();
    while let Some(e) = reader.next_entry().unwrap() {
        got.push(e.cursor);
    }
    assert_eq!(got, vec![1, 2]);
    assert_eq!(reader.scanned_through(), Some(2));
    // Waiting past the newest entry times out with the newest cursor.
    assert_eq!(store.wait_for(2, Duration::from_millis(10)), 2);
}

#[test]
fn live_readers_take_new_entries_from_memory_and_readers_behind_it_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.segment_bytes = 1 << 20;
    config.recent_bytes = 4096;
    let store = Store::open(config.clone()).unwrap();
    let batch: Vec<_> = (0..20).map(entry).collect();
    store.append(&batch).unwrap();
    let live = || {
        store
            .reader(ReadOptions {
                after: Some(store.last_cursor()),
                ..ReadOptions::default()
            })
            .unwrap()
    };
    let mut tails: Vec<_> = (0..3).map(|_| live()).collect();
    store.append(&batch).unwrap();
    for tail in &mut tails {
        let mut got = Vec::new();
        while let Some(e) = tail.next_entry().unwrap() {
            got.push(e.to_entry());
        }
        assert_eq!(got.len(), 20);
        assert_eq!(got[0].cursor, 21);
        assert_eq!(got[19].message, entry(19).message);
    }
    let stats = store.stats();
    assert_eq!(stats.file_read_bytes, 0, "every live tail read memory");
    assert!(stats.recent_bytes > 0 && stats.recent_bytes <= 4096);

    // Far more than is kept: what is kept stays within its budget, and a
    // reader from the start reads the file, correctly.
    for _ in 0..20 {
        store.append(&batch).unwrap();
    }
    assert!(store.stats().recent_bytes <= 4096);
    let all = read_all(&store, ReadOptions::default());
    assert_eq!(all.len(), 22 * 20);
    assert!(all.windows(2).all(|w| w[1].cursor == w[0].cursor + 1));
    assert!(store.stats().file_read_bytes > 0);
    // Newly opened, the store keeps nothing in memory: every read is a
    // file read, checked.
    drop(store);
    let store = Store::open(config).unwrap();
    assert_eq!(store.stats().recent_bytes, 0);
    assert_eq!(read_all(&store, ReadOptions::default()), all);
}

#[test]
fn concurrent_appenders_and_a_live_reader_see_every_entry_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.sync = logtap_store::SyncPolicy::EveryBatch;
    let store = Store::open(config).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let batch: Vec<NewEntry> =
                        (0..5).map(|k| entry(t * 1000 + i * 5 + k)).collect();
                    let receipt = store.append(&batch).unwrap();
                    assert_eq!(receipt.last_cursor - receipt.first_cursor, 4);
                }
            })
        })
        .collect();
    let mut reader = store.reader(ReadOptions::default()).unwrap();
    let mut cursors = Vec::new();
    while cursors.len() < 1000 {
        match reader.step(64).unwrap() {
            Step::Entry(e) => cursors.push(e.cursor),
            Step::Pending => {}
            Step::End => {
                store.wait_for(
                    cursors.last().copied().unwrap_or(0),
                    Duration::from_millis(50),
                );
            }
        }
    }
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(cursors, (1..=1000).collect::<Vec<u64>>());
    assert_eq!(store.last_cursor(), 1000);
}

#[test]
fn a_rare_match_is_found_by_skipping_blocks_and_the_budget_yields() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    let info = |i: u64| NewEntry {
        level: Level::Info,
        ..entry(i)
    };
    // Small batches, so the info entries fill many segments (segments roll
    // between batches) as well as many blocks.
    for start in (0..3000).step_by(10) {
        let batch: Vec<NewEntry> = (start..start + 10).map(info).collect();
        store.append(&batch).unwrap();
    }
    store
        .append(&[NewEntry {
            level: Level::Error,
            ..entry(3000)
        }])
        .unwrap();
    let options = ReadOptions {
        filter: Filter {
            min_level: Some(Level::Error),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.count(&options).unwrap(), 1);
    let mut reader = store.reader(options).unwrap();
    let mut steps = 0;
    let found = loop {
        steps += 1;
        match reader.step(4).unwrap() {
            Step::Entry(e) => break e.cursor,
            Step::Pending => continue,
            Step::End => panic!("the error was not found"),
        }
    };
    assert_eq!(found, 3001);
    // 3000 info entries in ~60-byte records fill about a hundred segments:
    // skipping a segment (or a block) costs one budget unit, so far fewer
    // steps than entries, but more than one (the budget did yield).
    assert!(steps > 1 && steps < 3000 / 4, "steps {steps}");
    assert!(matches!(reader.step(100).unwrap(), Step::End));
}

#[test]
fn entries_too_large_for_the_format_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    let big_label = NewEntry {
        labels: vec![("k".into(), "v".repeat(70_000))],
        ..entry(1)
    };
    let error = store.append(&[entry(0), big_label]).unwrap_err();
    assert!(matches!(error, StoreError::EntryTooLarge(_)), "{error}");
    assert_eq!(store.last_cursor(), 0);
    assert_eq!(store.append(&[entry(0)]).unwrap().first_cursor, 1);
}

#[test]
fn interval_sync_acknowledges_at_once_and_shutdown_sync_makes_it_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.sync = logtap_store::SyncPolicy::Interval(Duration::from_millis(50));
    let store = Store::open(config.clone()).unwrap();
    for i in 0..20 {
        store.append(&[entry(i)]).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    let store = Store::open(config).unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()).len(), 20);
}

#[test]
fn records_larger_than_one_read_are_read_whole_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    // Between small records, messages of 1.5, 3 and 5 times the reader's
    // 64 KiB read: each needs a second, larger read of its own.
    let sizes = [10, 96 * 1024, 10, 192 * 1024, 320 * 1024, 10];
    let entries: Vec<NewEntry> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| NewEntry {
            message: char::from(b'a' + i as u8).to_string().repeat(size),
            ..entry(i as u64)
        })
        .collect();
    store.append(&entries).unwrap();
    let forward: Vec<String> = read_all(&store, ReadOptions::default())
        .into_iter()
        .map(|entry| entry.message)
        .collect();
    let written: Vec<String> = entries.iter().map(|entry| entry.message.clone()).collect();
    assert_eq!(forward, written);
    let backward: Vec<String> = read_all(
        &store,
        ReadOptions {
            direction: logtap_core::Direction::Backward,
            ..ReadOptions::default()
        },
    )
    .into_iter()
    .map(|entry| entry.message)
    .collect();
    assert_eq!(backward, written.into_iter().rev().collect::<Vec<_>>());
}

//! The whole store against a simple in-memory model: append, read from any
//! cursor in both directions with every filter, count, follow the newest
//! entries with one long-lived reader, and reopen; with none, a little or
//! all of the newest bytes kept in memory for live readers; and with the
//! disk failing an append now and then (full, or a failed fsync); with
//! closed segments sealed (compressed, filtered) at random moments, and
//! reads that give the store a search hint (text, label) to skip by.

mod common;

use common::read_all;
use logtap_core::{
    Direction, Entry, Filter, Level, NewEntry, ReadOptions, Search, Step, StoreError,
};
use logtap_store::fault::{Fault, FaultyFs};
use logtap_store::{Reader, Store, StoreConfig, SyncPolicy};
use proptest::prelude::*;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<NewEntry>),
    /// An append during which the disk fails; the fault is cleared after it.
    FaultyAppend {
        batch: Vec<NewEntry>,
        fault: InjectedFault,
    },
    Reopen,
    /// Every closed segment is sealed now.
    Seal,
    /// The long-lived forward reader reads everything new.
    Follow,
    Read {
        after: Option<u16>,
        before: Option<u16>,
        backward: bool,
        min_level: Option<u8>,
        since: Option<i64>,
        until: Option<i64>,
        /// Look for a piece of one entry's message (which entry, where in
        /// its message, how long), so that searches find something.
        text: Option<(u16, u8, u8)>,
        /// Look for entries with this label value.
        label: Option<String>,
    },
}

#[derive(Debug, Clone, Copy)]
enum InjectedFault {
    /// The disk fills after this many more bytes (often past the batch,
    /// which then succeeds).
    NoSpace(u16),
    /// The next fsync fails (none comes without fsync, and the append
    /// succeeds).
    FailedSync,
}

fn arb_entry() -> impl Strategy<Value = NewEntry> {
    (
        0u8..6,
        0i64..100,
        "[a-z ]{0,60}",
        proptest::option::of("[a-z]{1,5}"),
    )
        .prop_map(|(level, timestamp, message, label)| NewEntry {
            timestamp,
            level: Level::from_byte(level).unwrap(),
            message,
            labels: label.into_iter().map(|v| ("k".to_string(), v)).collect(),
        })
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(arb_entry(), 0..40).prop_map(Op::Append),
        1 => (
            proptest::collection::vec(arb_entry(), 0..40),
            prop_oneof![
                (0u16..3000).prop_map(InjectedFault::NoSpace),
                Just(InjectedFault::FailedSync),
            ],
        )
            .prop_map(|(batch, fault)| Op::FaultyAppend { batch, fault }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Seal),
        2 => Just(Op::Follow),
        4 => (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>()),
            any::<bool>(),
            proptest::option::of(0u8..6),
            proptest::option::of(0i64..100),
            proptest::option::of(0i64..100),
            proptest::option::of((any::<u16>(), any::<u8>(), 10u8..30)),
            proptest::option::of("[a-z]{1,2}"),
        )
            .prop_map(|(after, before, backward, min_level, since, until, text, label)| Op::Read { after, before, backward, min_level, since, until, text, label }),
    ]
}

fn config(
    dir: &std::path::Path,
    sync: SyncPolicy,
    recent_bytes: usize,
    fs: &Arc<FaultyFs>,
) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.fs = fs.clone();
    config.segment_bytes = 1500;
    config.block_bytes = 200;
    config.sync = sync;
    config.recent_bytes = recent_bytes;
    // Sealed when the test says (`Op::Seal`), so that faults armed for an
    // append hit that append and not a seal running meanwhile.
    config.seal_in_background = false;
    config.seal_block_bytes = 700;
    config
}

/// None, a few small batches' worth, or more than a segment.
fn arb_recent_bytes() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(300), Just(4 << 20)]
}

fn follower(store: &Store, followed: &[Entry]) -> Reader {
    store
        .reader(ReadOptions {
            after: followed.last().map(|entry| entry.cursor),
            ..ReadOptions::default()
        })
        .unwrap()
}

fn run(ops: Vec<Op>, sync: SyncPolicy, recent_bytes: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultyFs::new());
    let config = |dir: &std::path::Path| config(dir, sync, recent_bytes, &fs);
    let mut store = Store::open(config(dir.path())).unwrap();
    let mut model: Vec<Entry> = Vec::new();
    // A batch written whose fsync failed: not acknowledged, so not in the
    // model, but in the file, so served once the store is reopened. Until
    // then the store refuses appends.
    let mut in_doubt: Vec<Entry> = Vec::new();
    let mut poisoned = false;
    let mut followed: Vec<Entry> = Vec::new();
    let mut follower = follower(&store, &followed);
    for op in ops {
        match op {
            Op::Append(batch) if poisoned && !batch.is_empty() => {
                let result = store.append(&batch);
                prop_assert!(
                    matches!(result, Err(StoreError::Poisoned(_))),
                    "{:?}",
                    result
                );
                prop_assert_eq!(store.last_cursor(), model.len() as u64);
            }
            Op::FaultyAppend { batch, fault } => {
                match fault {
                    InjectedFault::NoSpace(bytes) => {
                        fs.fail_writes_after_bytes(bytes.into(), Fault::NoSpace)
                    }
                    InjectedFault::FailedSync => fs.fail_next_sync(),
                }
                let fired = fs.faults_fired();
                let bytes = store.stats().bytes;
                let result = store.append(&batch);
                fs.clear();
                match result {
                    Ok(receipt) => {
                        prop_assert!(!poisoned || batch.is_empty());
                        if !batch.is_empty() {
                            prop_assert_eq!(receipt.first_cursor, model.len() as u64 + 1);
                        }
                        record(&mut model, &batch, receipt.first_cursor);
                    }
                    Err(StoreError::Poisoned(_)) => prop_assert!(poisoned),
                    Err(error) => {
                        prop_assert!(!poisoned);
                        prop_assert!(fs.faults_fired() > fired, "{}", error);
                        if let InjectedFault::NoSpace(_) = fault {
                            prop_assert!(error.is_disk_full(), "{}", error);
                        }
                        // Written, then the fsync failed: in doubt. (A
                        // fsync failing before a roll comes before the
                        // write, which then never happens.)
                        if store.stats().bytes > bytes {
                            let first = model.len() as u64 + 1;
                            let mut doubt = Vec::new();
                            record(&mut doubt, &batch, first);
                            in_doubt = doubt;
                            poisoned = true;
                        }
                    }
                }
                prop_assert_eq!(store.last_cursor(), model.len() as u64);
            }
            Op::Append(batch) => {
                let receipt = store.append(&batch).unwrap();
                prop_assert_eq!(receipt.count, batch.len() as u64);
                for (i, new) in batch.into_iter().enumerate() {
                    let cursor = model.len() as u64 + 1;
                    prop_assert_eq!(receipt.first_cursor + i as u64, cursor);
                    model.push(Entry {
                        cursor,
                        timestamp: new.timestamp,
                        level: new.level,
                        message: new.message,
                        labels: new.labels,
                    });
                }
                prop_assert_eq!(store.last_cursor(), model.len() as u64);
            }
            Op::Reopen => {
                drop(follower);
                drop(store);
                store = Store::open(config(dir.path())).unwrap();
                follower = self::follower(&store, &followed);
                prop_assert!(store.recovery_report().events.is_empty());
                model.append(&mut in_doubt);
                poisoned = false;
                prop_assert_eq!(store.last_cursor(), model.len() as u64);
            }
            Op::Seal => {
                let result = store.seal_now();
                prop_assert!(result.is_ok(), "{:?}", result);
                // Only the segment being written is left unsealed, and the
                // one before it when the append that rolled failed (its
                // closing is published with the next append that succeeds).
                prop_assert!(store.stats().unsealed_segments <= 2);
                prop_assert_eq!(store.last_cursor(), model.len() as u64);
            }
            Op::Follow => {
                // A live tail takes what memory holds as runs, and steps
                // through the rest; either way it sees every entry once.
                loop {
                    if let Some(run) = follower.take_run() {
                        let cursors: Vec<u64> = run
                            .entries()
                            .map(|entry| {
                                let entry = entry.unwrap();
                                followed.push(entry.to_entry());
                                entry.cursor
                            })
                            .collect();
                        let expected: Vec<u64> = (run.first_cursor()..=run.last_cursor()).collect();
                        prop_assert_eq!(&cursors, &expected);
                        prop_assert_eq!(cursors.len(), run.len());
                        // Derived from the whole chunk, once: the run is its tail.
                        let chunk: Arc<Vec<u64>> =
                            run.derived(|entries| entries.map(|e| e.unwrap().cursor).collect());
                        prop_assert_eq!(&chunk[run.skipped()..], &cursors[..]);
                        continue;
                    }
                    match follower.step(usize::MAX).unwrap() {
                        Step::Entry(entry) => followed.push(entry.to_entry()),
                        Step::Pending => {}
                        Step::End => break,
                    }
                }
                prop_assert_eq!(&followed, &model);
            }
            Op::Read {
                after,
                before,
                backward,
                min_level,
                since,
                until,
                text,
                label,
            } => {
                // Cursors are drawn around the model's range so that both
                // ends and the middle are hit.
                let span = model.len() as u64 + 3;
                let after = after.map(|a| a as u64 % span);
                let before = before.map(|b| b as u64 % span);
                let filter = Filter {
                    min_level: min_level.and_then(Level::from_byte),
                    since,
                    until,
                };
                let options = ReadOptions {
                    after,
                    before,
                    direction: if backward {
                        Direction::Backward
                    } else {
                        Direction::Forward
                    },
                    filter,
                    search: None,
                };
                let text = text.and_then(|(which, from, len)| {
                    let message = &model.get(which as usize % model.len().max(1))?.message;
                    let from = from as usize % (message.len() + 1);
                    let to = (from + len as usize).min(message.len());
                    Some(message[from..to].to_string())
                });
                let wanted = |e: &Entry| {
                    text.as_ref().is_none_or(|t| e.message.contains(t.as_str()))
                        && label
                            .as_ref()
                            .is_none_or(|l| e.labels.iter().any(|(n, v)| n == "k" && v == l))
                };
                let search = Search {
                    substrings: text.iter().cloned().collect(),
                    ignore_case: false,
                    labels: label.iter().map(|l| ("k".to_string(), l.clone())).collect(),
                };
                let searched = ReadOptions {
                    search: Some(Arc::new(search)),
                    ..options.clone()
                };
                let mut expected: Vec<Entry> = model
                    .iter()
                    .filter(|e| after.is_none_or(|a| e.cursor > a))
                    .filter(|e| before.is_none_or(|b| e.cursor < b))
                    .filter(|e| filter.min_level.is_none_or(|l| e.level >= l))
                    .filter(|e| since.is_none_or(|s| e.timestamp >= s))
                    .filter(|e| until.is_none_or(|u| e.timestamp < u))
                    .cloned()
                    .collect();
                if backward {
                    expected.reverse();
                }
                let got = read_all(&store, options.clone());
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(store.count(&options).unwrap(), expected.len() as u64);
                // A search hint may skip only what does not match.
                let found: Vec<Entry> = read_all(&store, searched)
                    .into_iter()
                    .filter(&wanted)
                    .collect();
                let expected: Vec<Entry> = expected.into_iter().filter(&wanted).collect();
                prop_assert_eq!(&found, &expected);
            }
        }
    }
    Ok(())
}

/// Adds `batch`, stored from `first_cursor` on, to `model`.
fn record(model: &mut Vec<Entry>, batch: &[NewEntry], first_cursor: u64) {
    for (new, cursor) in batch.iter().zip(first_cursor..) {
        model.push(Entry {
            cursor,
            timestamp: new.timestamp,
            level: new.level,
            message: new.message.clone(),
            labels: new.labels.clone(),
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_matches_model_without_fsync(
        ops in proptest::collection::vec(arb_op(), 1..40),
        recent_bytes in arb_recent_bytes(),
    ) {
        run(ops, SyncPolicy::Never, recent_bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn store_matches_model_with_fsync_per_batch(
        ops in proptest::collection::vec(arb_op(), 1..20),
        recent_bytes in arb_recent_bytes(),
    ) {
        run(ops, SyncPolicy::EveryBatch, recent_bytes)?;
    }
}

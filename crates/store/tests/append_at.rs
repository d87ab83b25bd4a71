//! `Store::append_at`: a local copy of a replicated log keeps the log's own
//! sequence numbers as cursors, gaps included, and never goes backwards.

mod common;

use common::{entry, read_all, read_all_backward, small_config};
use logtap_core::{ReadOptions, StoreError};
use logtap_store::{Store, StoreConfig, SyncPolicy};

fn cursors(store: &Store, after: Option<u64>) -> Vec<u64> {
    read_all(
        store,
        ReadOptions {
            after,
            ..ReadOptions::default()
        },
    )
    .iter()
    .map(|e| e.cursor)
    .collect()
}

#[test]
fn entries_take_the_given_cursors_and_a_jump_leaves_a_gap_readers_step_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    // A copy that starts where the log's retention left it: cursor 100.
    let receipt = store
        .append_at(100, &(0..3).map(entry).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((receipt.first_cursor, receipt.last_cursor), (100, 102));
    // The next one in sequence continues the segment.
    store.append_at(103, &[entry(3)]).unwrap();
    // The log dropped 104..=199 before this copy saw them.
    let receipt = store
        .append_at(200, &(4..40).map(entry).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((receipt.first_cursor, receipt.last_cursor), (200, 235));
    let expected: Vec<u64> = (100..=103).chain(200..=235).collect();
    assert_eq!(cursors(&store, None), expected);
    assert_eq!(
        read_all_backward(&store)
            .iter()
            .map(|e| e.cursor)
            .collect::<Vec<_>>(),
        expected
    );
    // Resuming inside the gap gives exactly what follows it.
    assert_eq!(cursors(&store, Some(150)), (200..=235).collect::<Vec<_>>());
    assert_eq!(store.last_cursor(), 235);
    assert_eq!(store.oldest_cursor(), 100);
    // A plain append continues after the newest.
    assert_eq!(store.append(&[entry(99)]).unwrap().first_cursor, 236);
}

#[test]
fn a_cursor_the_store_has_passed_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    store.append_at(1, &[entry(0), entry(1)]).unwrap();
    for requested in [1, 2] {
        match store.append_at(requested, &[entry(5)]) {
            Err(StoreError::CursorBehind { requested: r, next }) => {
                assert_eq!((r, next), (requested, 3));
            }
            other => panic!("expected CursorBehind, got {other:?}"),
        }
    }
    assert_eq!(cursors(&store, None), vec![1, 2]);
    assert_eq!(store.append_at(3, &[]).unwrap().count, 0);
}

#[test]
fn cursors_and_the_gap_survive_a_reopen_and_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.segment_bytes = 2048;
    config.block_bytes = 256;
    config.sync = SyncPolicy::EveryBatch;
    config.seal_delay = std::time::Duration::ZERO;
    {
        let store = Store::open(config.clone()).unwrap();
        store
            .append_at(10, &(0..50).map(entry).collect::<Vec<_>>())
            .unwrap();
        store
            .append_at(1_000, &(50..100).map(entry).collect::<Vec<_>>())
            .unwrap();
        store.seal_now().unwrap();
    }
    let store = Store::open(config).unwrap();
    let expected: Vec<u64> = (10..60).chain(1_000..1_050).collect();
    assert_eq!(cursors(&store, None), expected);
    assert_eq!(store.last_cursor(), 1_049);
    // A reopened copy goes on from its last cursor, and still refuses the past.
    assert!(matches!(
        store.append_at(1_049, &[entry(1)]),
        Err(StoreError::CursorBehind { next: 1_050, .. })
    ));
    assert_eq!(
        store.append_at(1_050, &[entry(1)]).unwrap().last_cursor,
        1_050
    );
}

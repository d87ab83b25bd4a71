//! Damage the fuzzer (tests/fuzz.rs) and the fault tests found mishandled,
//! each as a plain test that failed before its fix.

mod common;

use common::{entry, read_all, read_all_backward, segments, small_config};
use logtap_core::ReadOptions;
use logtap_store::{RecoveryEvent, Store};
use std::fs;
use std::path::Path;

fn base_of(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// A store of `n` entries over several small segments, closed.
fn build(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    for i in 0..n {
        store.append(&[entry(i)]).unwrap();
    }
    drop(store);
    assert!(segments(dir.path()).len() >= 4);
    dir
}

/// Found by the fuzzer: when every record of the oldest segment was
/// damaged, a reader from the very start crossed into the next segment with
/// its position still before the oldest entry held, took that for
/// retention having deleted what it needed, and failed with
/// `CursorDeleted`; the server answered every GetLogs without a cursor with
/// DATA_LOSS. Damage is not deletion: the reader goes on.
#[test]
fn a_wholly_damaged_oldest_segment_does_not_make_reads_from_the_start_fail() {
    let dir = build(200);
    let files = segments(dir.path());
    let first = &files[0];
    let len = fs::metadata(first).unwrap().len() as usize;
    fs::write(first, vec![0x5a; len]).unwrap();

    let store = Store::open(small_config(dir.path())).unwrap();
    let served = read_all(&store, ReadOptions::default());
    assert_eq!(served.first().unwrap().cursor, base_of(&files[1]));
    assert_eq!(served.last().unwrap().cursor, 200);
    let backward = read_all_backward(&store);
    assert_eq!(backward, served);
    assert_eq!(
        store.count(&ReadOptions::default()).unwrap(),
        served.len() as u64
    );
    // Resuming after a cursor inside the damaged stretch is fine too: the
    // segment is held, its entries are not deleted, only unreadable.
    let resumed = read_all(
        &store,
        ReadOptions {
            after: Some(2),
            ..ReadOptions::default()
        },
    );
    assert_eq!(resumed, served);
    assert!(!store.recovery_report().events.is_empty());
}

/// Found by the fault tests: an older segment cut exactly at a record
/// boundary (a lost write-back of a sealed file, or a hand-made copy cut
/// short) loses entries with no torn bytes to notice, so recovery reported
/// nothing. The gap between its last cursor and the next segment's first is
/// now reported.
#[test]
fn entries_missing_between_segments_are_reported() {
    let dir = build(200);
    let files = segments(dir.path());
    let victim = &files[1];
    let all_before = {
        let store = Store::open(small_config(dir.path())).unwrap();
        read_all(&store, ReadOptions::default())
    };
    // Cut the second segment after its first record, at a record boundary.
    let first_in_victim = all_before
        .iter()
        .position(|e| e.cursor == base_of(victim))
        .unwrap();
    let record_len = {
        let bytes = fs::read(victim).unwrap();
        8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as u64
    };
    fs::OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(record_len)
        .unwrap();

    let store = Store::open(small_config(dir.path())).unwrap();
    let served = read_all(&store, ReadOptions::default());
    let missing_first = all_before[first_in_victim].cursor + 1;
    let missing_last = base_of(&files[2]) - 1;
    assert_eq!(
        served.len() as u64,
        all_before.len() as u64 - (missing_last - missing_first + 1)
    );
    assert_eq!(
        store.recovery_report().events,
        vec![RecoveryEvent::MissingEntries {
            path: files[2].clone(),
            first_cursor: missing_first,
            last_cursor: missing_last,
        }]
    );
    // A whole segment file gone (deleted by hand) is reported the same way.
    drop(store);
    fs::remove_file(&files[2]).unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    assert_eq!(
        store.recovery_report().events,
        vec![RecoveryEvent::MissingEntries {
            path: files[3].clone(),
            first_cursor: missing_first,
            last_cursor: base_of(&files[3]) - 1,
        }]
    );
}

/// What retention deletes is not damage: a store whose oldest segments
/// were deleted reports nothing.
#[test]
fn segments_deleted_by_retention_are_not_reported_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.retention.max_bytes = Some(4096);
    let store = Store::open(config.clone()).unwrap();
    for i in 0..100 {
        store.append(&[entry(i)]).unwrap();
    }
    assert!(store.oldest_cursor() > 1, "retention deleted nothing");
    drop(store);
    let store = Store::open(config).unwrap();
    assert!(
        store.recovery_report().events.is_empty(),
        "{:?}",
        store.recovery_report()
    );
}

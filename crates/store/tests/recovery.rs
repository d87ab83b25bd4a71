//! Crash recovery: torn tails cut at every byte, flipped bytes anywhere,
//! and what recovery keeps and reports.

mod common;

use common::{copy_dir, entry, read_all, segments, small_config};
use logtap_core::{Entry, ReadOptions};
use logtap_store::{RecoveryEvent, Store};
use std::fs;

/// A store of `n` entries, one per batch, and everything it holds.
fn build(n: u64) -> (tempfile::TempDir, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    for i in 0..n {
        store.append(&[entry(i)]).unwrap();
    }
    let all = read_all(&store, ReadOptions::default());
    assert_eq!(all.len() as u64, n);
    (dir, all)
}

/// Bytes of the record of the newest entry: the file's length minus the
/// length before that entry was appended.
fn last_record_len(all: &[Entry]) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    let last = all.last().unwrap();
    let new = logtap_core::NewEntry {
        timestamp: last.timestamp,
        level: last.level,
        message: last.message.clone(),
        labels: last.labels.clone(),
    };
    store.append(&[new]).unwrap();
    store.stats().bytes
}

#[test]
fn a_tail_torn_at_every_byte_of_the_last_record_is_cut_back_to_the_record_before() {
    let (dir, all) = build(40);
    let newest = segments(dir.path()).pop().unwrap();
    let full_len = fs::metadata(&newest).unwrap().len();
    let record_len = last_record_len(&all);
    let record_start = full_len - record_len;
    for cut in record_start..full_len {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let torn = copy.path().join(newest.file_name().unwrap());
        fs::OpenOptions::new()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let store = Store::open(small_config(copy.path())).unwrap();
        assert_eq!(
            read_all(&store, ReadOptions::default()),
            all[..all.len() - 1],
            "cut at {cut}"
        );
        let report = store.recovery_report();
        if cut == record_start {
            assert!(report.events.is_empty(), "a clean cut needs no repair");
        } else {
            assert_eq!(
                report.events,
                vec![RecoveryEvent::TruncatedTail {
                    path: torn.clone(),
                    offset: record_start,
                    bytes: cut - record_start
                }]
            );
        }
        // Appends continue right after the last whole record, and the
        // repaired store reopens cleanly.
        let receipt = store.append(&[entry(999)]).unwrap();
        assert_eq!(receipt.first_cursor, all.len() as u64);
        drop(store);
        let store = Store::open(small_config(copy.path())).unwrap();
        assert!(store.recovery_report().events.is_empty());
        assert_eq!(store.last_cursor(), all.len() as u64);
    }
}

#[test]
fn a_flipped_byte_anywhere_loses_only_its_own_record() {
    let (dir, all) = build(120);
    let files = segments(dir.path());
    assert!(
        files.len() >= 3,
        "the test needs an older and a newest segment"
    );
    // An older segment and the newest one.
    for victim in [&files[0], files.last().unwrap()] {
        let len = fs::metadata(victim).unwrap().len();
        for at in 0..len {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(dir.path(), copy.path());
            let path = copy.path().join(victim.file_name().unwrap());
            let mut bytes = fs::read(&path).unwrap();
            bytes[at as usize] ^= 0x5a;
            fs::write(&path, &bytes).unwrap();

            let store = Store::open(small_config(copy.path())).unwrap();
            let served = read_all(&store, ReadOptions::default());
            // Never a corrupt entry: whatever is served is an original, in order.
            let mut originals = all.iter();
            for entry in &served {
                assert!(
                    originals.any(|o| o == entry),
                    "byte {at}: served something that was never stored: {entry:?}"
                );
            }
            let lost = all.len() - served.len();
            let report = store.recovery_report();
            assert!(
                !report.events.is_empty(),
                "byte {at} of {}: nothing reported",
                victim.display()
            );
            let is_newest = victim == files.last().unwrap();
            if is_newest && at >= len - last_record_len(&all) {
                // The last record of the newest file is indistinguishable
                // from a torn write: it is cut.
                assert_eq!(lost, 1);
            } else {
                assert_eq!(
                    lost,
                    1,
                    "byte {at} of {}: lost {lost}, report {report:?}",
                    victim.display()
                );
            }
        }
    }
}

#[test]
fn unrelated_files_in_the_data_directory_are_left_alone() {
    let (dir, all) = build(5);
    fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    fs::write(dir.path().join("123.seg"), "not a segment name").unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()), all);
}

//! One store at a time owns a data directory: a second open is refused at
//! once, naming the holder, until the first store is dropped.

mod common;

use common::{entry, read_all, segments, small_config};
use logtap_core::{ReadOptions, StoreError};
use logtap_store::Store;

#[test]
fn a_second_open_of_a_directory_in_use_fails_naming_the_directory_and_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    store.append(&[entry(0)]).unwrap();

    let error = Store::open(small_config(dir.path()))
        .err()
        .expect("refused");
    match &error {
        StoreError::Locked {
            dir: locked,
            holder_pid,
        } => {
            assert_eq!(locked, dir.path());
            assert_eq!(*holder_pid, Some(std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "the data directory {} is in use by another logtap process (pid {})",
            dir.path().display(),
            std::process::id()
        )
    );
    // The refused open touched nothing: the first store goes on.
    store.append(&[entry(1)]).unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()).len(), 2);
}

#[test]
fn the_directory_is_released_with_the_last_clone_of_the_store_but_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    store.append(&[entry(0)]).unwrap();
    let clone = store.clone();
    drop(store);
    assert!(matches!(
        Store::open(small_config(dir.path())),
        Err(StoreError::Locked { .. })
    ));
    // A reader only reads: it does not hold the directory.
    let mut reader = clone.reader(ReadOptions::default()).unwrap();
    drop(clone);
    let reopened = Store::open(small_config(dir.path())).unwrap();
    assert_eq!(reader.next_entry().unwrap().unwrap().cursor, 1);
    assert_eq!(read_all(&reopened, ReadOptions::default()).len(), 1);
}

#[test]
fn the_lock_file_is_neither_a_segment_nor_damage_to_recover_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    for i in 0..100 {
        store.append(&[entry(i)]).unwrap();
    }
    let lock = dir.path().join("LOCK");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        std::process::id().to_string()
    );
    let files = segments(dir.path());
    assert!(files.len() > 1);
    assert!(files
        .iter()
        .all(|path| path.extension().is_some_and(|ext| ext == "seg")));
    drop(store);
    // The file stays after the store closes (the lock, not the file, says
    // a store is open), holding a pid that is no one's once that process
    // ends; neither counts against the next open.
    assert!(lock.exists());
    let store = Store::open(small_config(dir.path())).unwrap();
    assert_eq!(store.recovery_report().events, vec![]);
    assert_eq!(read_all(&store, ReadOptions::default()).len(), 100);
}

#[test]
fn the_periodic_fsync_stops_with_the_last_clone_even_while_a_reader_lives() {
    let dir = tempfile::tempdir().unwrap();
    let fs = std::sync::Arc::new(logtap_store::fault::FaultyFs::new());
    let mut config = small_config(dir.path());
    config.sync = logtap_store::SyncPolicy::Interval(std::time::Duration::from_millis(20));
    config.fs = fs.clone();
    let store = Store::open(config).unwrap();
    // Published, not yet synced: the syncer has work.
    store.append(&[entry(0)]).unwrap();
    let reader = store.reader(ReadOptions::default()).unwrap();
    let syncs = fs.syncs();
    drop(store);
    // The old store's syncer would otherwise go on touching files that a
    // store reopened on the directory now owns.
    let reopened = Store::open(small_config(dir.path())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(fs.syncs(), syncs);
    assert_eq!(read_all(&reopened, ReadOptions::default()).len(), 1);
    drop(reader);
}

//! The data directory's FORMAT file: written when a store is created,
//! written into a directory of the layout before it (the migration), and a
//! newer or unreadable version refused with both versions named, before
//! anything in the directory is touched.

mod common;

use common::{entry, read_all, small_config};
use logtap_core::{ReadOptions, StoreError};
use logtap_store::{Retention, Store, FORMAT_FILE, FORMAT_VERSION};
use std::fs;

#[test]
fn a_new_store_writes_its_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    drop(store);
    let written = fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap();
    assert_eq!(written, format!("{FORMAT_VERSION}\n"));
    // Reopening accepts it and leaves it as it was.
    Store::open(small_config(dir.path())).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
        written
    );
}

#[test]
fn a_directory_from_before_the_format_file_is_migrated_and_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(small_config(dir.path())).unwrap();
        store.append(&[entry(0), entry(1)]).unwrap();
    }
    // Today's layout without the file: what every earlier logtap left.
    fs::remove_file(dir.path().join(FORMAT_FILE)).unwrap();

    let store = Store::open(small_config(dir.path())).unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()).len(), 2);
    assert_eq!(
        fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
        format!("{FORMAT_VERSION}\n")
    );
    assert!(!dir.path().join("FORMAT.tmp").exists());
}

#[test]
fn a_newer_format_is_refused_naming_both_versions_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(small_config(dir.path())).unwrap();
        store.append(&[entry(0)]).unwrap();
    }
    let newer = FORMAT_VERSION + 1;
    fs::write(dir.path().join(FORMAT_FILE), format!("{newer}\n")).unwrap();
    let before = listing(dir.path());

    let error = Store::open(small_config(dir.path()))
        .err()
        .expect("refused");
    assert!(matches!(error, StoreError::Format { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("store format {newer}"))
            && message.contains(&format!(
                "format {FORMAT_VERSION}, the newest this logtap reads"
            )),
        "{message}"
    );
    assert!(message.contains(FORMAT_FILE), "{message}");
    assert_eq!(listing(dir.path()), before);
    assert_eq!(
        fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
        format!("{newer}\n")
    );
}

#[test]
fn a_format_file_that_holds_no_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(FORMAT_FILE), "logtap\n").unwrap();
    let message = Store::open(small_config(dir.path()))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        message.contains("does not hold a store format version")
            && message.contains("\"logtap\"")
            && message.contains(&format!("writes format {FORMAT_VERSION}")),
        "{message}"
    );
}

#[test]
fn retention_set_on_an_open_store_applies_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    for i in 0..2_000 {
        store.append(&[entry(i)]).unwrap();
    }
    store.seal_now().unwrap();
    let held_before = read_all(&store, ReadOptions::default()).len();
    assert_eq!(held_before, 2_000);
    let limits = Retention {
        max_bytes: Some(1),
        max_age: None,
    };
    store.set_retention(limits);
    assert_eq!(store.retention(), limits);
    // Only the segment being written is left.
    let held_after = read_all(&store, ReadOptions::default());
    assert!(held_after.len() < 100, "{} entries left", held_after.len());
    assert_eq!(held_after.last().unwrap().cursor, 2_000);
    assert!(store.oldest_cursor() > 1);
}

/// The names in `dir`, sorted, with their sizes.
fn listing(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().unwrap().len(),
            )
        })
        .collect();
    names.sort();
    names
}

//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use logtap_core::{Entry, Level, NewEntry, ReadOptions};
use logtap_store::{Store, StoreConfig, SyncPolicy};
use std::path::{Path, PathBuf};

/// A config with tiny segments and blocks, so a few hundred entries span
/// many of both. Segments stay record logs (no background sealing), for
/// tests of the record log's own recovery; `sealed.rs` tests sealing.
pub fn small_config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.segment_bytes = 2048;
    config.block_bytes = 256;
    config.sync = SyncPolicy::Never;
    config.seal_in_background = false;
    config
}

pub fn entry(i: u64) -> NewEntry {
    NewEntry {
        timestamp: 1_000 + i as i64,
        level: Level::ALL[(i % 6) as usize],
        message: format!("message number {i}"),
        labels: vec![("host".into(), format!("h{}", i % 3))],
    }
}

/// Everything a reader with `options` yields, owned.
pub fn read_all(store: &Store, options: ReadOptions) -> Vec<Entry> {
    let mut reader = store.reader(options).expect("reader");
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry().expect("read") {
        out.push(entry.to_entry());
    }
    out
}

/// Everything a backward reader yields, put back oldest first: what a
/// forward read of the same store must equal.
pub fn read_all_backward(store: &Store) -> Vec<Entry> {
    let mut backward = read_all(
        store,
        ReadOptions {
            direction: logtap_core::Direction::Backward,
            ..ReadOptions::default()
        },
    );
    backward.reverse();
    backward
}

/// Segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    logtap_store::segment_files(dir).expect("listing segments")
}

/// Copies every segment file of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for file in segments(from) {
        std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
    }
}

//! Sealed segments: byte for byte the entries the record log held, the
//! search filters skipping only what cannot match, footers that open
//! without the data, old directories converted, damage handled, and a
//! crash at every step of a seal.

mod common;

use common::{read_all, read_all_backward};
use logtap_core::{Direction, Entry, Level, NewEntry, ReadOptions, Search, StoreError};
use logtap_store::fault::FaultyFs;
use logtap_store::{RecoveryEvent, Store, StoreConfig, SyncPolicy};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Segments of 64 KiB and sealed blocks of 8 KiB: a few thousand entries
/// make several of each. Sealing only when a test asks.
fn config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.segment_bytes = 64 << 10;
    config.block_bytes = 1024;
    config.seal_block_bytes = 8 << 10;
    config.sync = SyncPolicy::Never;
    config.seal_in_background = false;
    config
}

/// A pseudo-random hexadecimal id, the same for the same `i`.
fn id(i: u64) -> String {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", x ^ (x >> 31))
}

fn entry(i: u64) -> NewEntry {
    NewEntry {
        timestamp: 1_700_000_000_000_000_000 + i as i64 * 1_000,
        level: if i.is_multiple_of(97) {
            Level::Error
        } else {
            Level::Info
        },
        message: format!(
            "GET /api/items/{} status=200 trace_id={} Ünïcode",
            i % 500,
            id(i)
        ),
        labels: vec![
            ("service".into(), format!("svc-{}", i % 5)),
            ("host".into(), format!("host-{}", i % 7)),
        ],
    }
}

fn fill(store: &Store, n: u64) -> Vec<Entry> {
    let batch: Vec<NewEntry> = (0..n).map(entry).collect();
    for chunk in batch.chunks(100) {
        store.append(chunk).unwrap();
    }
    read_all(store, ReadOptions::default())
}

fn file_names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

fn searching(text: &str) -> ReadOptions {
    ReadOptions {
        search: Some(Arc::new(Search {
            substrings: vec![text.to_string()],
            ..Search::default()
        })),
        ..ReadOptions::default()
    }
}

#[test]
fn sealing_keeps_every_entry_byte_for_byte_and_every_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let written = fill(&store, 3_000);
    assert!(store.stats().unsealed_segments >= 3);
    let bytes_before = store.stats().bytes;
    store.seal_now().unwrap();
    assert_eq!(
        store.stats().unsealed_segments,
        1,
        "all but the newest sealed"
    );
    assert_eq!(file_names(dir.path(), ".seg").len(), 1);
    assert!(file_names(dir.path(), ".sealed").len() >= 2);
    assert!(
        store.stats().bytes * 2 < bytes_before,
        "sealed data takes half the record log or less: {} of {bytes_before}",
        store.stats().bytes
    );
    assert_eq!(read_all(&store, ReadOptions::default()), written);
    assert_eq!(read_all_backward(&store), written);
    let errors = ReadOptions {
        filter: logtap_core::Filter {
            min_level: Some(Level::Error),
            ..Default::default()
        },
        ..ReadOptions::default()
    };
    let expected: Vec<Entry> = written
        .iter()
        .filter(|e| e.level == Level::Error)
        .cloned()
        .collect();
    assert_eq!(read_all(&store, errors.clone()), expected);
    assert_eq!(store.count(&errors).unwrap(), expected.len() as u64);
    // A cursor bound inside a sealed block counts exactly too.
    let middle = ReadOptions {
        after: Some(1_234),
        before: Some(2_345),
        ..ReadOptions::default()
    };
    assert_eq!(store.count(&middle).unwrap(), 2_345 - 1_234 - 1);
    // Appends go on after the sealed segments, and a reopen sees it all.
    store.append(&[entry(3_000)]).unwrap();
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert!(store.recovery_report().events.is_empty());
    let all = read_all(&store, ReadOptions::default());
    assert_eq!(all.len(), 3_001);
    assert_eq!(&all[..3_000], &written[..]);
    assert_eq!(all[3_000].cursor, 3_001);
}

#[test]
fn a_search_skips_sealed_blocks_that_cannot_hold_the_text_or_label() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let written = fill(&store, 6_000);
    store.seal_now().unwrap();
    let sealed_end = written
        .iter()
        .rev()
        .find(|e| e.cursor < 5_000)
        .unwrap()
        .cursor;
    // The trace id of one entry, in a sealed segment.
    let wanted = &written[2_500];
    let needle = id(2_500);
    let before = store.stats().file_read_bytes;
    let found: Vec<Entry> = read_all(&store, searching(&needle))
        .into_iter()
        .filter(|e| e.message.contains(&needle))
        .collect();
    let read = store.stats().file_read_bytes - before;
    assert_eq!(found, vec![wanted.clone()]);
    // Everything read without skipping: the unsealed newest segment plus
    // every sealed block.
    let before = store.stats().file_read_bytes;
    let _ = read_all(&store, ReadOptions::default());
    let whole = store.stats().file_read_bytes - before;
    assert!(
        read * 4 < whole,
        "the search read {read} bytes, a whole read {whole}"
    );
    // In any case: the text folded (the filter is case-blind).
    let mut upper = searching(&needle.to_uppercase());
    upper.search = Some(Arc::new(Search {
        substrings: vec![needle.to_uppercase()],
        ignore_case: true,
        ..Search::default()
    }));
    let upper = read_all(&store, upper);
    assert!(upper.iter().any(|e| e.cursor == wanted.cursor));
    // A label only some blocks hold.
    let label = ReadOptions {
        search: Some(Arc::new(Search {
            labels: vec![("service".into(), "svc-3".into())],
            ..Search::default()
        })),
        ..ReadOptions::default()
    };
    let with_label: Vec<Entry> = read_all(&store, label)
        .into_iter()
        .filter(|e| e.labels.iter().any(|(n, v)| n == "service" && v == "svc-3"))
        .collect();
    assert_eq!(
        with_label,
        written
            .iter()
            .filter(|e| e.labels.iter().any(|(n, v)| n == "service" && v == "svc-3"))
            .cloned()
            .collect::<Vec<_>>()
    );
    // Backward, the same.
    let mut backward = searching(&needle);
    backward.direction = Direction::Backward;
    let found: Vec<Entry> = read_all(&store, backward)
        .into_iter()
        .filter(|e| e.message.contains(&needle))
        .collect();
    assert_eq!(found, vec![wanted.clone()]);
    assert!(sealed_end > wanted.cursor);
}

#[test]
fn a_short_text_skips_the_blocks_whose_templates_cannot_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let mut batch: Vec<NewEntry> = (0..6_000).map(entry).collect();
    batch[2_000].message = "disk FULL on /var/lib after 3 retries".into();
    for chunk in batch.chunks(100) {
        store.append(chunk).unwrap();
    }
    store.seal_now().unwrap();
    let before = store.stats().file_read_bytes;
    let _ = read_all(&store, ReadOptions::default());
    let whole = store.stats().file_read_bytes - before;
    // Too short for the filters (fewer bytes than a window), and every
    // block but one lacks it in its templates.
    for (text, ignore_case) in [("FULL", false), ("full on", true), ("isk FULL", false)] {
        let options = ReadOptions {
            search: Some(Arc::new(Search {
                substrings: vec![text.to_string()],
                ignore_case,
                ..Search::default()
            })),
            ..ReadOptions::default()
        };
        let before = store.stats().file_read_bytes;
        let found: Vec<u64> = read_all(&store, options)
            .into_iter()
            .filter(|e| e.message.to_lowercase().contains(&text.to_lowercase()))
            .map(|e| e.cursor)
            .collect();
        let read = store.stats().file_read_bytes - before;
        assert_eq!(found, vec![2_001], "{text}");
        assert!(
            read * 3 < whole,
            "{text}: read {read} bytes, a whole read {whole}"
        );
    }
    // A text no template holds and that no value can make: nothing
    // sealed is decoded.
    let options = searching("EMPTY");
    assert!(read_all(&store, options)
        .iter()
        .all(|e| !e.message.contains("EMPTY")));
}

#[test]
fn opening_reads_footers_not_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let written = fill(&store, 3_000);
    store.seal_now().unwrap();
    drop(store);
    // Damage the first block of the oldest sealed file: opening does not
    // notice, because it does not read blocks; reading it does.
    let oldest = dir.path().join(&file_names(dir.path(), ".sealed")[0]);
    let mut bytes = std::fs::read(&oldest).unwrap();
    bytes[40] ^= 0xff; // inside the first block's data
    std::fs::write(&oldest, &bytes).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert!(store.recovery_report().events.is_empty());
    assert_eq!(store.stats().entries, written.len() as u64);
    let mut reader = store.reader(ReadOptions::default()).unwrap();
    let error = reader.next_entry().unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    // Entries after the damaged block are still served.
    let later = ReadOptions {
        after: Some(2_000),
        ..ReadOptions::default()
    };
    assert_eq!(read_all(&store, later), written[2_000..].to_vec());
}

#[test]
fn an_old_data_directory_is_read_as_it_is_and_converted_by_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let written = fill(&store, 3_000);
    drop(store);
    assert!(file_names(dir.path(), ".sealed").is_empty());
    let mut background = config(dir.path());
    background.seal_in_background = true;
    let store = Store::open(background).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().unsealed_segments > 1 {
        assert!(Instant::now() < deadline, "the sealer did not catch up");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(file_names(dir.path(), ".seg").len(), 1);
    assert_eq!(read_all(&store, ReadOptions::default()), written);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()), written);
}

#[test]
fn a_damaged_footer_falls_back_on_the_record_log_or_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let written = fill(&store, 3_000);
    let logs = file_names(dir.path(), ".seg");
    let kept = std::fs::read(dir.path().join(&logs[0])).unwrap();
    store.seal_now().unwrap();
    drop(store);
    let sealed = dir.path().join(&file_names(dir.path(), ".sealed")[0]);
    let mut bytes = std::fs::read(&sealed).unwrap();
    let len = bytes.len();
    bytes[len - 30] ^= 0xff; // the footer's last bytes
    std::fs::write(&sealed, &bytes).unwrap();

    // With the record log back beside it, the log is the segment again.
    let with_log = tempfile::tempdir().unwrap();
    for name in file_names(dir.path(), "") {
        if name != "LOCK" {
            std::fs::copy(dir.path().join(&name), with_log.path().join(&name)).unwrap();
        }
    }
    std::fs::write(with_log.path().join(&logs[0]), &kept).unwrap();
    let store = Store::open(config(with_log.path())).unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()), written);
    assert!(!with_log.path().join(sealed.file_name().unwrap()).exists());
    store.seal_now().unwrap();
    assert_eq!(read_all(&store, ReadOptions::default()), written);
    drop(store);

    // Without it, the footer is rebuilt from the blocks, with a warning
    // in the report, and every entry is served again.
    let store = Store::open(config(dir.path())).unwrap();
    let events = &store.recovery_report().events;
    assert!(
        matches!(&events[..], [RecoveryEvent::RebuiltIndex { path, .. }] if *path == sealed),
        "{events:?}"
    );
    assert_eq!(read_all(&store, ReadOptions::default()), written);
    assert_eq!(read_all_backward(&store), written);
    assert!(!read_all(&store, searching(&id(10))).is_empty());
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert!(
        store.recovery_report().events.is_empty(),
        "rebuilt for good"
    );
    assert_eq!(read_all(&store, ReadOptions::default()), written);
    drop(store);

    // A damaged block besides: the blocks around it are served.
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[40] ^= 0xff; // inside the first block's data
    let len = bytes.len();
    bytes[len - 30] ^= 0xff;
    std::fs::write(&sealed, &bytes).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let served = read_all(&store, ReadOptions::default());
    assert!(served.len() < written.len());
    assert!(served.len() > written.len() / 2);
    assert!(served.iter().all(|e| written.contains(e)));
    assert!(served.windows(2).all(|w| w[0].cursor < w[1].cursor));
}

/// Kills the seal at every one of its steps in turn (each write, fsync,
/// creation, rename and removal), restarts, and checks that every entry is
/// served exactly once, unchanged, and that sealing then finishes.
#[test]
fn a_crash_at_every_step_of_a_seal_loses_nothing_and_serves_nothing_twice() {
    let original = tempfile::tempdir().unwrap();
    let mut small = config(original.path());
    small.segment_bytes = 16 << 10;
    small.seal_block_bytes = 4 << 10;
    let store = Store::open(small.clone()).unwrap();
    let written = fill(&store, 400);
    drop(store);
    let copy = |to: &Path| {
        for name in file_names(original.path(), ".seg") {
            std::fs::copy(original.path().join(&name), to.join(&name)).unwrap();
        }
    };
    let faulty = |dir: &Path, fs: &Arc<FaultyFs>| {
        let mut config = small.clone();
        config.dir = dir.to_path_buf();
        config.fs = fs.clone();
        config
    };
    // How many steps a whole seal takes.
    let steps = {
        let dir = tempfile::tempdir().unwrap();
        copy(dir.path());
        let fs = Arc::new(FaultyFs::new());
        let store = Store::open(faulty(dir.path(), &fs)).unwrap();
        let before = fs.operations();
        store.seal_now().unwrap();
        fs.operations() - before
    };
    assert!(steps > 10, "{steps} steps");
    for step in 0..=steps {
        let dir = tempfile::tempdir().unwrap();
        copy(dir.path());
        let fs = Arc::new(FaultyFs::new());
        let store = Store::open(faulty(dir.path(), &fs)).unwrap();
        fs.crash_after_operations(step);
        let result = store.seal_now();
        // The last step, removing the last record log, may fail without
        // failing the seal: the next open removes it.
        assert!(
            result.is_err() || step + 1 >= steps,
            "step {step}: {result:?}"
        );
        drop(store);
        let mut restarted = small.clone();
        restarted.dir = dir.path().to_path_buf();
        let store = Store::open(restarted).unwrap();
        let served = read_all(&store, ReadOptions::default());
        assert_eq!(served, written, "after a crash at step {step}");
        assert!(file_names(dir.path(), ".tmp").is_empty(), "step {step}");
        store.seal_now().unwrap();
        assert_eq!(
            read_all(&store, ReadOptions::default()),
            written,
            "step {step}"
        );
        assert_eq!(store.stats().unsealed_segments, 1, "step {step}");
    }
}

#[test]
fn many_readers_of_old_data_share_decoded_blocks_in_a_bounded_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut bounded = config(dir.path());
    bounded.block_cache_bytes = 64 << 10;
    let store = Store::open(bounded).unwrap();
    fill(&store, 6_000);
    store.seal_now().unwrap();
    let mut readers: Vec<_> = (0..200)
        .map(|i| {
            store
                .reader(ReadOptions {
                    after: Some(i * 25),
                    ..ReadOptions::default()
                })
                .unwrap()
        })
        .collect();
    for reader in &mut readers {
        assert!(reader.next_entry().unwrap().is_some());
    }
    assert!(store.cached_bytes() <= 64 << 10, "{}", store.cached_bytes());
}

/// The background sealer leaves a closed segment as written for
/// `seal_delay`, then seals it; segments closed before the store opened
/// are sealed at once.
#[test]
fn the_background_sealer_waits_for_the_seal_delay() {
    let dir = tempfile::tempdir().unwrap();
    let mut delayed = config(dir.path());
    delayed.seal_in_background = true;
    delayed.seal_delay = Duration::from_secs(3600);
    let written = {
        let store = Store::open(delayed.clone()).unwrap();
        let written = fill(&store, 3_000);
        std::thread::sleep(Duration::from_millis(200));
        let stats = store.stats();
        assert!(stats.segments > 2, "{stats:?}");
        assert_eq!(stats.unsealed_segments, stats.segments, "sealed too soon");
        written
    };
    // Reopened: closed before the store opened, so no delay.
    let store = Store::open(delayed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().unsealed_segments > 1 {
        assert!(Instant::now() < deadline, "not sealed: {:?}", store.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read_all(&store, ReadOptions::default()), written);
}

#[test]
fn a_histogram_counts_what_a_reader_reads_by_level_and_bucket() {
    use logtap_core::{histogram_bucket, Filter};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let written = fill(&store, 3_000);
    // Sealed segments and the record log being written, both.
    store.seal_now().unwrap();
    fill(&store, 500);
    let all = read_all(&store, ReadOptions::default());
    assert_eq!(all.len(), written.len() + 500);
    let first = all[0].timestamp;
    // Edges that cut blocks and edges wider than segments; a cursor range
    // and a filter that cut them too.
    for (width, options) in [
        (7_000, ReadOptions::default()),
        (1_000_000, ReadOptions::default()),
        (
            333_333,
            ReadOptions {
                after: Some(100),
                before: Some(3_300),
                filter: Filter {
                    min_level: Some(Level::Error),
                    since: Some(first + 50_000),
                    until: Some(first + 3_000_000),
                },
                ..ReadOptions::default()
            },
        ),
    ] {
        let edges: Vec<i64> = (0..=12).map(|k| first + 10_000 + k * width).collect();
        let got = store.histogram(&options, &edges).unwrap();
        let mut wanted = vec![[0u64; Level::COUNT]; edges.len() - 1];
        for entry in read_all(&store, options.clone()) {
            if let Some(bucket) = histogram_bucket(&edges, entry.timestamp) {
                wanted[bucket][entry.level as usize] += 1;
            }
        }
        assert_eq!(got, wanted, "width {width}");
        assert!(got.iter().flatten().sum::<u64>() > 0);
    }
}

//! Fuzzing the segment decoder through the public API (the decoder itself,
//! `record::decode`, is crate-private): arbitrary bytes, and real segments
//! with arbitrary damage, are written as segment files and the store is
//! opened on them. Whatever the bytes, opening never panics or fails, and
//! what the store serves is consistent (cursors strictly increase, forward
//! and backward reads and counts agree) and, when the bytes came from a
//! real store, is only ever records that store wrote, unchanged.
//!
//! cargo-fuzz needs a nightly toolchain, which this project does not use, so
//! the fuzzing is proptest's: random and mutated inputs, shrunk to a minimal
//! case on failure. Each run replays the seed corpus in
//! `fuzz/corpus/store_segment/` and the saved failures in
//! `fuzz/regressions/store_*.txt`, then runs `LOGTAP_FUZZ_CASES` new cases
//! per target (default 256, a few seconds). A long pass:
//! `LOGTAP_FUZZ_CASES=20000 cargo test -p logtap-store --test fuzz`.

mod common;
#[path = "../../../fuzz/harness.rs"]
mod harness;

use common::{read_all, read_all_backward};
use harness::{fuzz, fuzz_dir, Settings};
use logtap_core::{Entry, Filter, Level, NewEntry, ReadOptions};
use logtap_store::{Store, StoreConfig, SyncPolicy};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::path::Path;

/// Fewer cases than the other crates' targets: each case writes files and
/// opens a store, and shrinking a failure further than this is rarely
/// worth the wait.
const STORE: Settings = Settings {
    cases: 256,
    max_shrink_iters: 2048,
};

/// Small segments and blocks, so a few dozen entries span several of both.
fn config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.segment_bytes = 1024;
    config.block_bytes = 128;
    config.sync = SyncPolicy::Never;
    // The record log's recovery is under test here.
    config.seal_in_background = false;
    config
}

/// Writes `files` (base cursor, bytes) as the segments of a new data
/// directory, opens a store there and checks everything it serves. With
/// `written`, every entry served must be one of those, unchanged.
fn open_and_check(
    files: &[(u64, Vec<u8>)],
    written: Option<&[Entry]>,
) -> Result<Vec<Entry>, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    for (base, bytes) in files {
        std::fs::write(dir.path().join(format!("{base:020}.seg")), bytes).unwrap();
    }
    let store = Store::open(config(dir.path()))
        .map_err(|e| TestCaseError::fail(format!("open failed: {e}")))?;
    let served = read_all(&store, ReadOptions::default());
    let mut last = 0;
    for entry in &served {
        prop_assert!(entry.cursor > last, "cursor {} after {last}", entry.cursor);
        last = entry.cursor;
    }
    if let Some(written) = written {
        let mut originals = written.iter();
        for entry in &served {
            prop_assert!(
                originals.any(|o| o == entry),
                "served an entry that was never written: {entry:?}"
            );
        }
    }
    // Backward reads, counts and block summaries agree with the forward read.
    let backward = read_all_backward(&store);
    prop_assert_eq!(&backward, &served);
    prop_assert_eq!(
        store.count(&ReadOptions::default()).unwrap(),
        served.len() as u64
    );
    prop_assert_eq!(store.stats().entries, served.len() as u64);
    // The newest cursor may be past the newest entry served: an empty or
    // wholly damaged newest segment still names the cursor it starts at,
    // and cursors are never reused.
    prop_assert!(store.last_cursor() >= last);
    let warn = ReadOptions {
        filter: Filter {
            min_level: Some(Level::Warn),
            ..Filter::default()
        },
        ..ReadOptions::default()
    };
    let warn_served = served.iter().filter(|e| e.level >= Level::Warn).count();
    prop_assert_eq!(read_all(&store, warn.clone()).len(), warn_served);
    prop_assert_eq!(store.count(&warn).unwrap(), warn_served as u64);
    // The repaired store appends after everything it holds, and a reopen
    // serves the same entries plus that one.
    let receipt = store
        .append(&[NewEntry {
            timestamp: 1,
            level: Level::Info,
            message: "after recovery".into(),
            labels: Vec::new(),
        }])
        .map_err(|e| TestCaseError::fail(format!("append after recovery failed: {e}")))?;
    prop_assert!(receipt.first_cursor > last);
    drop(store);
    let reopened = Store::open(config(dir.path())).unwrap();
    let again = read_all(&reopened, ReadOptions::default());
    prop_assert_eq!(&again[..again.len() - 1], &served[..]);
    prop_assert_eq!(again.last().unwrap().cursor, receipt.first_cursor);
    Ok(served)
}

fn arb_entry() -> impl Strategy<Value = NewEntry> {
    (
        any::<i64>(),
        prop::sample::select(Level::ALL.to_vec()),
        ".{0,60}",
        prop::collection::vec(("[a-z]{0,6}", ".{0,10}"), 0..3),
    )
        .prop_map(|(timestamp, level, message, labels)| NewEntry {
            timestamp,
            level,
            message,
            labels,
        })
}

/// A real store's segment files (base cursor, bytes) and its entries.
fn real_segments(batches: &[Vec<NewEntry>]) -> (Vec<(u64, Vec<u8>)>, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    for batch in batches {
        store.append(batch).unwrap();
    }
    let written = read_all(&store, ReadOptions::default());
    drop(store);
    let mut files: Vec<(u64, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let base = path.file_stem()?.to_str()?.parse().ok()?;
            Some((base, std::fs::read(&path).ok()?))
        })
        .collect();
    files.sort();
    (files, written)
}

/// One act of damage to a file.
#[derive(Debug, Clone)]
enum Damage {
    Flip {
        at: prop::sample::Index,
        mask: u8,
    },
    Truncate {
        at: prop::sample::Index,
    },
    Insert {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
    Zero {
        at: prop::sample::Index,
        len: usize,
    },
    /// Copies a stretch of the file elsewhere in it: old records again,
    /// valid CRCs and all.
    Duplicate {
        from: prop::sample::Index,
        len: usize,
        to: prop::sample::Index,
    },
    /// Bytes copied from another segment of the same store.
    Splice {
        from_file: prop::sample::Index,
        at: prop::sample::Index,
        len: usize,
    },
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        2 => any::<prop::sample::Index>().prop_map(|at| Damage::Truncate { at }),
        2 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
        1 => (any::<prop::sample::Index>(), 1usize..200).prop_map(|(at, len)| Damage::Zero { at, len }),
        2 => (any::<prop::sample::Index>(), 1usize..300, any::<prop::sample::Index>())
            .prop_map(|(from, len, to)| Damage::Duplicate { from, len, to }),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1usize..300)
            .prop_map(|(from_file, at, len)| Damage::Splice { from_file, at, len }),
    ]
}

fn apply(files: &mut [(u64, Vec<u8>)], victim: usize, damage: &Damage) {
    let others: Vec<Vec<u8>> = files.iter().map(|(_, bytes)| bytes.clone()).collect();
    let bytes = &mut files[victim].1;
    if bytes.is_empty() {
        return;
    }
    match damage {
        Damage::Flip { at, mask } => {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        Damage::Truncate { at } => bytes.truncate(at.index(bytes.len())),
        Damage::Insert { at, bytes: new } => {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Damage::Zero { at, len } => {
            let at = at.index(bytes.len());
            let end = (at + len).min(bytes.len());
            bytes[at..end].fill(0);
        }
        Damage::Duplicate { from, len, to } => {
            let from = from.index(bytes.len());
            let end = (from + len).min(bytes.len());
            let copy = bytes[from..end].to_vec();
            let to = to.index(bytes.len() + 1);
            bytes.splice(to..to, copy);
        }
        Damage::Splice { from_file, at, len } => {
            let source = &others[from_file.index(others.len())];
            if source.is_empty() {
                return;
            }
            let from = at.index(source.len());
            let end = (from + len).min(source.len());
            let to = at.index(bytes.len() + 1);
            bytes.splice(to..to, source[from..end].iter().copied());
        }
    }
}

/// Reads the seed corpus: every file in `fuzz/corpus/store_segment/`.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus/store_segment");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the seed corpus is empty");
    files
}

#[test]
fn the_seed_corpus_opens_and_serves_consistently() {
    for (name, bytes) in corpus() {
        let base = name
            .strip_suffix(".seg")
            .and_then(|stem| stem.parse().ok())
            .unwrap_or(1);
        open_and_check(&[(base, bytes)], None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn arbitrary_bytes_as_segments_never_panic_and_serve_consistently() {
    let strategy = prop::collection::vec(
        (
            prop_oneof![Just(1u64), 1u64..100, any::<u64>()],
            prop::collection::vec(any::<u8>(), 0..2048),
        ),
        1..3,
    );
    fuzz("store_arbitrary", STORE, &strategy, |files| {
        open_and_check(&files, None).map(|_| ())
    });
}

#[test]
fn damaged_real_segments_serve_only_what_was_written() {
    let strategy = (
        prop::collection::vec(prop::collection::vec(arb_entry(), 1..8), 1..12),
        prop::collection::vec((any::<prop::sample::Index>(), arb_damage()), 1..4),
    );
    fuzz("store_damaged", STORE, &strategy, |(batches, damages)| {
        let (mut files, written) = real_segments(&batches);
        for (victim, damage) in &damages {
            let victim = victim.index(files.len());
            apply(&mut files, victim, damage);
        }
        open_and_check(&files, Some(&written)).map(|_| ())
    });
}

#[test]
fn damaged_corpus_segments_serve_only_what_they_held() {
    let corpus = corpus();
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec(arb_damage(), 1..4),
    );
    // What was written: the corpus' segments opened together are the store
    // they came from. A torn or flipped seed serves less than was written,
    // and damage can bring a record back whole (bytes duplicated onto a torn
    // tail can restore exactly the missing ones), so the oracle is the whole
    // store's entries, not what the damaged seed alone serves.
    let segments: Vec<(u64, Vec<u8>)> = corpus
        .iter()
        .filter_map(|(name, bytes)| {
            let base = name.strip_suffix(".seg")?.parse().ok()?;
            Some((base, bytes.clone()))
        })
        .collect();
    let store_entries = open_and_check(&segments, None).unwrap();
    fuzz(
        "store_corpus_damaged",
        STORE,
        &strategy,
        |(pick, damages)| {
            let (name, bytes) = &corpus[pick.index(corpus.len())];
            let base = name
                .strip_suffix(".seg")
                .and_then(|stem| stem.parse().ok())
                .unwrap_or(1);
            let mut written = open_and_check(&[(base, bytes.clone())], None)?;
            written.extend(store_entries.iter().cloned());
            written.sort_by_key(|entry| entry.cursor);
            written.dedup();
            let mut files = vec![(base, bytes.clone())];
            for damage in &damages {
                apply(&mut files, 0, damage);
            }
            open_and_check(&files, Some(&written)).map(|_| ())
        },
    );
}

/// Writes the seed corpus from a real store: run by hand when the format
/// changes (`cargo test -p logtap-store --test fuzz -- --ignored`).
#[test]
#[ignore]
fn write_the_seed_corpus() {
    let dir = fuzz_dir().join("corpus/store_segment");
    std::fs::create_dir_all(&dir).unwrap();
    let entry = |i: usize, message: &str| NewEntry {
        timestamp: 1_714_564_800_000_000_000 + i as i64 * 1_000_000,
        level: Level::ALL[i % 6],
        message: message.to_string(),
        labels: if i.is_multiple_of(2) {
            vec![
                ("host".into(), format!("h{i}")),
                ("app".into(), "api".into()),
            ]
        } else {
            Vec::new()
        },
    };
    let messages = [
        "",
        "started",
        "ERROR database unreachable",
        "ünïcödé ✓ 日本語",
        "a line with\ttabs and \"quotes\"",
        &"long ".repeat(60),
    ];
    let batches: Vec<Vec<NewEntry>> = (0..12)
        .map(|b| {
            (0..1 + b % 4)
                .map(|i| entry(b * 4 + i, messages[(b + i) % messages.len()]))
                .collect()
        })
        .collect();
    let (files, _) = real_segments(&batches);
    for (base, bytes) in &files {
        std::fs::write(dir.join(format!("{base:020}.seg")), bytes).unwrap();
    }
    // A torn tail and a flipped byte, as recovery meets them.
    let (base, first) = &files[0];
    std::fs::write(
        dir.join(format!("torn-{base:020}.bin")),
        &first[..first.len() - 5],
    )
    .unwrap();
    let mut flipped = first.clone();
    flipped[first.len() / 2] ^= 0x40;
    std::fs::write(dir.join(format!("flipped-{base:020}.bin")), flipped).unwrap();
    std::fs::write(dir.join("empty.bin"), b"").unwrap();
    std::fs::write(dir.join("zeros.bin"), [0u8; 300]).unwrap();
}

//! Store benchmarks: `cargo bench -p logtap-store`.
//!
//! A bench binary rather than criterion because each scenario is a large
//! workload (a million entries, fsync per batch) measured a few times: it
//! reports min / median / max over the runs after a warm-up run.
//! `LOGTAP_BENCH_ENTRIES` scales the workload (default 1,000,000).

use logtap_core::{Filter, Level, NewEntry, ReadOptions, Step};
use logtap_store::{Store, StoreConfig, SyncPolicy};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn entries() -> u64 {
    std::env::var("LOGTAP_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A 100-byte message; one entry in `error_every` is an error.
fn make(i: u64, error_every: u64) -> NewEntry {
    let mut message = format!(
        "GET /api/v1/items/{i:010} 200 OK user=alice latency_ms=12 region=eu-west-1 trace="
    );
    while message.len() < 100 {
        message.push('x');
    }
    NewEntry {
        timestamp: 1_700_000_000_000_000_000 + i as i64 * 1000,
        level: if i % error_every == error_every - 1 {
            Level::Error
        } else {
            Level::Info
        },
        message,
        labels: Vec::new(),
    }
}

fn fill(store: &Store, n: u64, error_every: u64) {
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        batch.push(make(i, error_every));
        if batch.len() == 1000 {
            store.append(&batch).unwrap();
            batch.clear();
        }
    }
    store.append(&batch).unwrap();
}

fn report(name: &str, unit: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = values[values.len() / 2];
    println!(
        "{name:<44} min {:>12.1}  median {:>12.1}  max {:>12.1}  {unit}",
        values[0],
        median,
        values[values.len() - 1]
    );
    println!(
        "{{\"bench\":\"{name}\",\"unit\":\"{unit}\",\"min\":{:.1},\"median\":{median:.1},\"max\":{:.1}}}",
        values[0],
        values[values.len() - 1]
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = entries();
    // Append: batches of 1,000 100-byte messages, fsync per batch.
    let mut rates = Vec::new();
    for run in 0..=RUNS {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.sync = SyncPolicy::EveryBatch;
        let store = Store::open(config).unwrap();
        let batches: Vec<Vec<NewEntry>> = (0..n / 1000)
            .map(|b| {
                (b * 1000..(b + 1) * 1000)
                    .map(|i| make(i, 10_000))
                    .collect()
            })
            .collect();
        let start = Instant::now();
        for batch in &batches {
            store.append(batch).unwrap();
        }
        if run > 0 {
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
    }
    report("append (batch 1000, fsync per batch)", "entries/s", rates);

    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.sync = SyncPolicy::Never;
    let store = Store::open(config).unwrap();
    fill(&store, n, 10_000);

    // Forward scan of everything, decoding every entry.
    let mut rates = Vec::new();
    for run in 0..=RUNS {
        let start = Instant::now();
        let mut reader = store.reader(ReadOptions::default()).unwrap();
        let mut count = 0u64;
        let mut bytes = 0usize;
        while let Some(entry) = reader.next_entry().unwrap() {
            count += 1;
            bytes += entry.message.len();
        }
        assert_eq!(count, n);
        std::hint::black_box(bytes);
        if run > 0 {
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
    }
    report("forward scan, all entries", "entries/s", rates);

    // The first error after 90% of the store: rare errors, none earlier.
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.sync = SyncPolicy::Never;
    let rare = Store::open(config).unwrap();
    let quiet = n * 9 / 10;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        let mut entry = make(i, u64::MAX);
        if i >= quiet && i % 10_000 == 0 {
            entry.level = Level::Error;
        }
        batch.push(entry);
        if batch.len() == 1000 {
            rare.append(&batch).unwrap();
            batch.clear();
        }
    }
    let errors = ReadOptions {
        filter: Filter {
            min_level: Some(Level::Error),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut micros = Vec::new();
    for _ in 0..=RUNS * 4 {
        let start = Instant::now();
        let mut reader = rare.reader(errors.clone()).unwrap();
        let cursor = loop {
            match reader.step(1024).unwrap() {
                Step::Entry(e) => break e.cursor,
                Step::Pending => continue,
                Step::End => panic!("no error found"),
            }
        };
        assert!(cursor > quiet);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    report("first error after 90% info (time to entry)", "µs", micros);

    let mut micros = Vec::new();
    for _ in 0..=RUNS * 4 {
        let start = Instant::now();
        let count = rare.count(&errors).unwrap();
        std::hint::black_box(count);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    report("exact count of errors (summaries)", "µs", micros);

    let stats = store.stats();
    println!(
        "storage: {} bytes for {} entries: {:.1} bytes/entry for 100-byte messages",
        stats.bytes,
        stats.entries,
        stats.bytes as f64 / stats.entries as f64
    );
    let _ = Duration::ZERO;
}

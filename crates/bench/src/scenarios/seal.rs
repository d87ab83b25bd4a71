//! seal: how fast the store seals (compresses and indexes) closed segments
//! of the realistic data set: entries and record-log megabytes sealed per
//! second, on one thread, as the server's background sealer does it.
//!
//! Measured through the store library, not the server: the server seals in
//! the background while it is filled and has no switch to hold back, so
//! its sealing cannot be timed from outside without also timing the
//! ingest. Here a store is filled with sealing off, copied afresh for each
//! run, opened, and `Store::seal_now` is timed, with the server's store
//! defaults (16 MiB segments, 1 MiB blocks, zstd level 9).
//!
//! Always 1M entries (20,000 with --smoke), --large or not: the rate does
//! not depend on how many segments there are, and 10M would only make each
//! run ten times longer.

use crate::realistic::{segment_bases, Realistic};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_core::normalize_labels;
use logtap_store::{Store, StoreConfig, SyncPolicy};
use std::path::Path;
use std::time::Instant;

const SCENARIO: &str = "seal";

/// Entries per append, as a Push request carries them.
const BATCH: u64 = 1_000;

/// One seal.
struct Sample {
    entries_per_s: f64,
    mb_per_s: f64,
    ratio: f64,
}

/// The server's store settings, with background sealing off so that the
/// closed segments wait for `seal_now`, and segments of `segment_bytes`.
fn config(dir: &Path, segment_bytes: u64) -> StoreConfig {
    StoreConfig {
        sync: SyncPolicy::Never,
        seal_in_background: false,
        segment_bytes,
        ..StoreConfig::new(dir)
    }
}

/// A figure made of the samples: its metric, its unit, its value in one.
type Figure = crate::report::PerSample<Sample>;

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = ctx.size(1_000_000, 20_000);
    let data = Realistic::new(n);
    // A smoke run's few MB fit in one default segment, which would leave
    // nothing closed to seal.
    let segment_bytes = ctx.size(StoreConfig::new("").segment_bytes, 1 << 20);
    let master = ctx.tempdir("seal-master")?;
    let copies: Vec<tempfile::TempDir> = (0..=ctx.runs)
        .map(|_| ctx.tempdir("seal"))
        .collect::<anyhow::Result<_>>()?;
    let master_path = master.path().to_path_buf();
    let copy_paths: Vec<_> = copies.iter().map(|dir| dir.path().to_path_buf()).collect();
    eprintln!("  filling a store with {n} realistic entries, sealing off");
    let samples = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Sample>> {
        fill(&master_path, segment_bytes, &data)?;
        let mut samples = Vec::new();
        for (run, copy) in copy_paths.iter().enumerate() {
            let sample = seal_copy(&master_path, copy, segment_bytes)?;
            // Each copy is sealed once and then only takes disk space.
            std::fs::remove_dir_all(copy)?;
            // Run 0 is the warm-up.
            if run > 0 {
                samples.push(sample);
            }
        }
        Ok(samples)
    })
    .await??;
    drop(copies);

    let subject = format!("logtap {}", crate::scenarios::search::size_name(n));
    let figures: [Figure; 3] = [
        ("entries sealed per second", "entries/s", |s| {
            s.entries_per_s
        }),
        ("record log sealed per second", "MB/s", |s| s.mb_per_s),
        ("record log / sealed bytes", "x", |s| s.ratio),
    ];
    ctx.report
        .add_each(SCENARIO, &subject, &samples, &figures)?;
    ctx.report.note(format!(
        "seal: Store::seal_now on a fresh copy of {n} realistic entries' record logs (all closed segments; the newest stays a log), one thread, page cache warm, after one warm-up seal; MB are 10^6 bytes of record log"
    ));
    Ok(())
}

/// Appends `data` to a new store in `dir`, nothing sealed.
fn fill(dir: &Path, segment_bytes: u64, data: &Realistic) -> anyhow::Result<()> {
    let store = Store::open(config(dir, segment_bytes)).context("opening the store to fill")?;
    let mut seq = 0;
    while seq < data.len() {
        let end = (seq + BATCH).min(data.len());
        let batch: Vec<_> = (seq..end)
            .map(|seq| {
                let mut entry = data.generate(seq).into_new_entry();
                normalize_labels(&mut entry.labels);
                entry
            })
            .collect();
        store.append(&batch)?;
        seq = end;
    }
    Ok(())
}

/// Copies the store in `master` into `copy`, opens it and times sealing
/// every closed segment.
fn seal_copy(master: &Path, copy: &Path, segment_bytes: u64) -> anyhow::Result<Sample> {
    let (_, logs) = segment_bases(master)?;
    let Some((&newest, closed)) = logs.split_last() else {
        bail!("the store to seal has no segment");
    };
    if closed.is_empty() {
        bail!("the store to seal has one segment only: nothing closed to seal");
    }
    let mut log_bytes = 0;
    for entry in std::fs::read_dir(master)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".seg") {
            let len = std::fs::copy(entry.path(), copy.join(&name))?;
            let base: u64 = name.to_string_lossy().trim_end_matches(".seg").parse()?;
            if base != newest {
                log_bytes += len;
            }
        }
    }
    let entries = newest - closed[0];
    let store = Store::open(config(copy, segment_bytes)).context("opening the copy")?;
    let started = Instant::now();
    store.seal_now()?;
    let seconds = started.elapsed().as_secs_f64();
    drop(store);
    let (sealed, logs) = segment_bases(copy)?;
    if sealed != closed || logs != [newest] {
        bail!(
            "after seal_now: sealed {sealed:?}, record logs {logs:?}; expected {closed:?} sealed and {newest} a log"
        );
    }
    let sealed_bytes: u64 = sealed
        .iter()
        .map(|base| std::fs::metadata(copy.join(format!("{base:020}.sealed"))).map(|m| m.len()))
        .sum::<Result<_, _>>()?;
    Ok(Sample {
        entries_per_s: entries as f64 / seconds,
        mb_per_s: log_bytes as f64 / 1e6 / seconds,
        ratio: log_bytes as f64 / sealed_bytes as f64,
    })
}

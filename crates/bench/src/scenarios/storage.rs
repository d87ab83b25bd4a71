//! storage: bytes on disk per entry against the raw text (the message bytes
//! alone), for the stream scenario's 1M entries of 80-byte messages.
//! Reuses that scenario's store when it ran; otherwise fills the same data.

use crate::client::{self, MESSAGE_BYTES};
use crate::report::Target;
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use std::path::Path;

const SCENARIO: &str = "storage";

/// A filled store kept for measuring.
pub struct Dataset {
    pub dir: tempfile::TempDir,
    pub entries: u64,
    /// The sum of the entries' message lengths.
    pub message_bytes: u64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let dataset = match ctx.stream_store.take() {
        Some(dataset) => dataset,
        None => {
            let n: u64 = ctx.size(1_000_000, 20_000);
            let dir = ctx.tempdir("storage")?;
            let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Never)?;
            client::fill(&server.channel().await?, 0..n, 4, |seq| {
                client::entry(seq, false)
            })
            .await?;
            server.stop()?;
            Dataset {
                dir,
                entries: n,
                message_bytes: n * MESSAGE_BYTES as u64,
            }
        }
    };
    let on_disk = dir_bytes(dataset.dir.path())?;
    let per_entry = on_disk as f64 / dataset.entries as f64;
    let raw_per_entry = dataset.message_bytes as f64 / dataset.entries as f64;
    let report = &mut ctx.report;
    report.add(
        SCENARIO,
        "logtap",
        "on disk per entry",
        "bytes",
        vec![per_entry],
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "message text per entry",
        "bytes",
        vec![raw_per_entry],
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "on disk / message text",
        "x",
        vec![per_entry / raw_per_entry],
        Target::None,
    )?;
    report.note(format!(
        "storage: {} entries take {on_disk} bytes on disk: full segments sealed (compressed columns, see ARCHITECTURE.md), the newest a record log (the message plus 33 bytes of framing a record)",
        dataset.entries
    ));
    Ok(())
}

/// The size of every file under `dir`.
fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

//! slow-reader: one client reading 10 entries/s while 1M entries are pushed
//! and 10 others read at full speed (all live tails, StreamLogs). The slow
//! client must throttle only itself: the server's memory must not grow with
//! what it has not taken (RSS growth < 16 MiB), and the fast readers' rate
//! must not change (< 5%) against the same run without it.
//!
//! Runs with and without the slow reader alternate, each on a fresh server,
//! so that the comparison is made within the same stretch of machine time.
//! Each reader has its own HTTP/2 connection, as separate clients would.

use crate::client::{self, lean_call, message_seq, push_parts, LeanEntry, STREAM_LOGS};
use crate::report::{median, Target};
use crate::server::{RssSampler, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::bail;
use logtap_proto::v1::PushRequest;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Streaming;

const SCENARIO: &str = "slow-reader";

const MIB: f64 = (1 << 20) as f64;

/// Concurrent Push calls.
const CALLS: usize = 2;

/// Entries per second the slow client takes.
const SLOW_RATE: u64 = 10;

struct Sample {
    /// Entries per second per fast reader (their mean), from the first push
    /// to the reader's last entry.
    fast_rate: f64,
    rss_base_mib: f64,
    rss_growth_mib: f64,
    /// Entries the slow reader took, per second of the run.
    slow_rate: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = ctx.size(1_000_000, 20_000);
    let fast: usize = ctx.size(10, 3);
    once(ctx, n, fast, false).await?;
    let mut with = Vec::new();
    let mut without = Vec::new();
    for run in 0..ctx.runs {
        if run % 2 == 0 {
            with.push(once(ctx, n, fast, true).await?);
            without.push(once(ctx, n, fast, false).await?);
        } else {
            without.push(once(ctx, n, fast, false).await?);
            with.push(once(ctx, n, fast, true).await?);
        }
    }
    let pick =
        |samples: &[Sample], f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    let report = &mut ctx.report;
    report.add(
        SCENARIO,
        "with slow",
        "fast readers' rate",
        "entries/s",
        pick(&with, |s| s.fast_rate),
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "without slow",
        "fast readers' rate",
        "entries/s",
        pick(&without, |s| s.fast_rate),
        Target::None,
    )?;
    // Pairs from the same run: positive means slower with the slow reader.
    let slowdown: Vec<f64> = with
        .iter()
        .zip(&without)
        .map(|(w, wo)| (1.0 - w.fast_rate / wo.fast_rate) * 100.0)
        .collect();
    report.add(
        SCENARIO,
        "with/without",
        "fast readers' slowdown",
        "%",
        slowdown,
        Target::AtMost(5.0),
    )?;
    report.add(
        SCENARIO,
        "with slow",
        "server RSS growth",
        "MiB",
        pick(&with, |s| s.rss_growth_mib),
        Target::AtMost(16.0),
    )?;
    report.add(
        SCENARIO,
        "without slow",
        "server RSS growth",
        "MiB",
        pick(&without, |s| s.rss_growth_mib),
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "with slow",
        "server RSS before the push",
        "MiB",
        pick(&with, |s| s.rss_base_mib),
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "with slow",
        "slow reader's rate",
        "entries/s",
        pick(&with, |s| s.slow_rate),
        Target::None,
    )?;
    let slow = median(&pick(&with, |s| s.slow_rate));
    report.note(format!(
        "slow-reader: {n} entries pushed on {CALLS} calls (sync batch), {fast} fast live readers; the slow reader took {slow:.1} entries/s; RSS growth is the peak during the run less the RSS with every stream open before the push"
    ));
    Ok(())
}

/// Reads `n` entries, checking that each came once (the pushes run on
/// concurrent calls, so arrival order is not number order); the time from
/// `start` to the last.
async fn fast_reader(
    mut stream: Streaming<LeanEntry>,
    n: u64,
    start: Instant,
) -> anyhow::Result<f64> {
    let mut seen = vec![0u64; n.div_ceil(64) as usize];
    let mut count = 0;
    while count < n {
        let Some(entry) = stream.message().await? else {
            bail!("a fast reader's stream ended after {count} entries");
        };
        let seq = message_seq(&entry.message).filter(|&seq| seq < n);
        let Some(seq) = seq else {
            bail!("a fast reader got an entry that was not pushed");
        };
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if seen[word] & bit != 0 {
            bail!("a fast reader got entry {seq} twice");
        }
        seen[word] |= bit;
        count += 1;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// One run on a fresh server.
async fn once(ctx: &Ctx, n: u64, fast: usize, slow: bool) -> anyhow::Result<Sample> {
    let dir = ctx.tempdir("slow-reader")?;
    let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Batch)?;
    // The connections are kept for the whole run: the streams use them.
    let mut connections = Vec::new();
    let mut fast_streams = Vec::new();
    for _ in 0..fast {
        let channel = server.channel().await?;
        fast_streams.push(lean_call(&channel, STREAM_LOGS, "").await?);
        connections.push(channel);
    }
    let slow_stream = if slow {
        let channel = server.channel().await?;
        let stream = lean_call(&channel, STREAM_LOGS, "").await?;
        connections.push(channel);
        Some(stream)
    } else {
        None
    };
    let mut parts: Vec<Vec<PushRequest>> = (0..CALLS).map(|_| Vec::new()).collect();
    for (index, batch) in client::batches(0..n, |seq| client::entry(seq, false)).enumerate() {
        parts[index % CALLS].push(batch);
    }
    let parts = parts.into_iter().map(futures::stream::iter).collect();
    let push_channel = server.channel().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_base = server.rss()?;
    let sampler = RssSampler::start(server.pid());

    let start = Instant::now();
    let readers: Vec<_> = fast_streams
        .into_iter()
        .map(|stream| tokio::spawn(fast_reader(stream, n, start)))
        .collect();
    // The slow reader counts into a shared counter, since it is stopped by
    // aborting its task once the fast readers are done.
    let slow_count = Arc::new(AtomicU64::new(0));
    let slow_task = slow_stream.map(|mut stream| {
        let slow_count = Arc::clone(&slow_count);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(1000 / SLOW_RATE));
            loop {
                ticker.tick().await;
                match stream.message().await {
                    Ok(Some(_)) => slow_count.fetch_add(1, Ordering::Relaxed),
                    _ => return,
                };
            }
        })
    });
    let stored = push_parts(&push_channel, parts).await?;
    if stored != n {
        bail!("the server stored {stored} of {n} entries");
    }
    let mut rates = Vec::new();
    for reader in readers {
        rates.push(n as f64 / reader.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let peak = sampler.finish();
    if let Some(task) = slow_task {
        // Dropping its stream cancels the call, as a client going away would.
        task.abort();
        let _ = task.await;
    }
    drop(connections);
    server.stop()?;
    Ok(Sample {
        fast_rate: rates.iter().sum::<f64>() / rates.len() as f64,
        rss_base_mib: rss_base as f64 / MIB,
        rss_growth_mib: (peak.saturating_sub(rss_base)) as f64 / MIB,
        slow_rate: if slow {
            slow_count.load(Ordering::Relaxed) as f64 / elapsed
        } else {
            f64::NAN
        },
    })
}

//! cancel-storm: 10,000 live streams opened, then all cancelled at once (the
//! client resets every HTTP/2 stream, as closing 10,000 browser tabs would).
//! `logtap_active_streams` on /metrics must be back to 0 within 1 s, and
//! the server's RSS back within 10% of what it was before the storm.
//!
//! The storms hit the same server one after the other, so a leak would show
//! as RSS creeping up from run to run; RSS is also compared with the fresh
//! server's.

use crate::client::{lean_call, STREAM_LOGS};
use crate::report::{median, Target};
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::bail;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const SCENARIO: &str = "cancel-storm";

const MIB: f64 = (1 << 20) as f64;

/// How long after the storm RSS is read.
const SETTLE: Duration = Duration::from_secs(1);

struct Sample {
    to_zero_ms: f64,
    rss_before_mib: f64,
    rss_open_mib: f64,
    rss_after_mib: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let streams: usize = ctx.size(10_000, 200);
    // The server takes at most 1,024 streams per connection.
    let connections: usize = ctx.size(16, 2);
    let dir = ctx.tempdir("cancel-storm")?;
    let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Batch)?;
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(server.wide_channel().await?);
    }
    let rss_fresh = server.rss()? as f64 / MIB;
    // The first storm is also the warm-up; what it leaves behind on a fresh
    // server is its own figure: memory the allocator kept shows there.
    let first = storm(&server, &channels, streams).await?;
    let mut samples = Vec::new();
    for _ in 0..ctx.runs {
        samples.push(storm(&server, &channels, streams).await?);
    }
    // tokio's blocking threads, which open the streams, linger for 10 s
    // after their last task: RSS once they are gone tells a leak from a
    // pool that is still warm.
    tokio::time::sleep(Duration::from_secs(ctx.size(11, 1))).await;
    let rss_end = server.rss()? as f64 / MIB;
    // HTTP/2 keeps per-stream state in a table that grows to the most
    // streams a connection has had open and never shrinks; it goes with
    // the connection. RSS once the clients hang up tells that apart from
    // memory the server itself kept.
    drop(channels);
    tokio::time::sleep(SETTLE).await;
    let rss_closed = server.rss()? as f64 / MIB;
    let cancelled = server.metric("logtap_streams_cancelled_total").await?;
    let expected = (streams * (ctx.runs + 1)) as f64;
    if cancelled < expected {
        bail!("logtap_streams_cancelled_total is {cancelled}, not at least {expected}");
    }

    let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    let report = &mut ctx.report;
    report.add(
        SCENARIO,
        "logtap",
        "active streams back to 0",
        "ms",
        pick(|s| s.to_zero_ms),
        Target::AtMost(1000.0),
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "RSS before the storm",
        "MiB",
        pick(|s| s.rss_before_mib),
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "logtap",
        &format!("RSS with {streams} streams open"),
        "MiB",
        pick(|s| s.rss_open_mib),
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "RSS 1 s after",
        "MiB",
        pick(|s| s.rss_after_mib),
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "RSS 1 s after / before the storm",
        "x",
        pick(|s| s.rss_after_mib / s.rss_before_mib),
        Target::AtMost(1.10),
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "RSS 1 s after the first storm / fresh",
        "x",
        vec![first.rss_after_mib / rss_fresh],
        Target::AtMost(1.10),
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "RSS 11 s after the last / fresh",
        "x",
        vec![rss_end / rss_fresh],
        Target::None,
    )?;
    report.add(
        SCENARIO,
        "logtap",
        "RSS 1 s after the connections close / fresh",
        "x",
        vec![rss_closed / rss_fresh],
        Target::None,
    )?;
    let open = median(&pick(|s| s.rss_open_mib));
    report.note(format!(
        "cancel-storm: {streams} StreamLogs over {connections} connections, {} storms on one server after a warm-up storm; fresh server {rss_fresh:.1} MiB, {:.1} KiB a stream while open, {rss_end:.1} MiB 11 s after the last storm",
        ctx.runs,
        (open - median(&pick(|s| s.rss_before_mib))) * 1024.0 / streams as f64,
    ));
    server.stop()?;
    Ok(())
}

/// Opens `streams` live tails, waits until the server counts them all,
/// cancels them all at once and times the gauge's way back to 0.
async fn storm(
    server: &ServerProcess,
    channels: &[Channel],
    streams: usize,
) -> anyhow::Result<Sample> {
    let rss_before = server.rss()?;
    let open = futures::future::try_join_all(
        (0..streams).map(|i| lean_call(&channels[i % channels.len()], STREAM_LOGS, "")),
    )
    .await?;
    wait_for_gauge(
        server,
        |active| active >= streams as f64,
        Duration::from_secs(30),
    )
    .await?;
    let rss_open = server.rss()?;
    let start = Instant::now();
    // Dropping a response stream resets its HTTP/2 stream (RST_STREAM
    // CANCEL): the server sees a cancellation, not a closed connection.
    drop(open);
    wait_for_gauge(server, |active| active == 0.0, Duration::from_secs(30)).await?;
    let to_zero = start.elapsed();
    tokio::time::sleep(SETTLE.saturating_sub(start.elapsed())).await;
    let rss_after = server.rss()?;
    Ok(Sample {
        to_zero_ms: to_zero.as_secs_f64() * 1e3,
        rss_before_mib: rss_before as f64 / MIB,
        rss_open_mib: rss_open as f64 / MIB,
        rss_after_mib: rss_after as f64 / MIB,
    })
}

/// Polls `logtap_active_streams` every 5 ms until `done` says so.
async fn wait_for_gauge(
    server: &ServerProcess,
    done: impl Fn(f64) -> bool,
    limit: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let active = server.metric("logtap_active_streams").await?;
        if done(active) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("logtap_active_streams stayed at {active} for {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

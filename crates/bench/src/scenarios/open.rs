//! open: how long a server takes to open the realistic data set's store
//! (1M entries, 10M with --large; sealed) and answer, and how much memory
//! it holds once open, before and after searching it. Issue 18 asks for an
//! open time that does not grow with the data and an RSS at 100M near the
//! one at 1M: comparing a run with --large against one without says
//! whether they grow.
//!
//! Each run spawns `logtap serve` on the store and times, from the spawn:
//! the log line saying it listens, and the first answer to a request (a
//! GetLogs of the oldest entry, read to the end of its stream). The page
//! cache is warm: this is the server's work on open, not the disk's.

use crate::client::v1_client;
use crate::realistic;
use crate::scenarios::search::{queries, size_name, time_query};
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::v1::LogRequest;
use std::time::Instant;

const SCENARIO: &str = "open";

/// One open.
struct Sample {
    listening_ms: f64,
    answer_ms: f64,
    rss_open_mib: f64,
    rss_searched_mib: f64,
}

/// A figure made of the samples: its metric, its unit, its value in one.
type Figure = crate::report::PerSample<Sample>;

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (data, dir) = realistic::filled(ctx).await?;
    {
        // Whatever the filling left to seal is sealed before the first
        // timed open, so that every open finds the same files.
        let server = ServerProcess::logtap(&ctx.logtap, &dir, SyncPolicy::Never)?;
        realistic::wait_sealed(&server).await?;
        server.stop()?;
    }
    let searches: Vec<_> = queries(&data)
        .into_iter()
        .filter(|query| query.name == "rare token" || query.name == "rare label")
        .collect();

    let mut samples = Vec::new();
    for run in 0..=ctx.runs {
        let started = Instant::now();
        let server = ServerProcess::logtap(&ctx.logtap, &dir, SyncPolicy::Never)?;
        let listening_ms = started.elapsed().as_secs_f64() * 1e3;
        let channel = server.channel().await?;
        let mut stream = v1_client(channel.clone())
            .get_logs(LogRequest {
                limit: 1,
                ..Default::default()
            })
            .await
            .context("GetLogs of the oldest entry")?
            .into_inner();
        let mut count = 0;
        while stream.message().await?.is_some() {
            count += 1;
        }
        let answer_ms = started.elapsed().as_secs_f64() * 1e3;
        if count != 1 {
            bail!("GetLogs limit=1 sent {count} entries");
        }
        let rss_open = server.rss()?;
        for query in &searches {
            time_query(&channel, &data, query).await?;
        }
        let rss_searched = server.rss()?;
        server.stop()?;
        // Run 0 is the warm-up.
        if run > 0 {
            samples.push(Sample {
                listening_ms,
                answer_ms,
                rss_open_mib: rss_open as f64 / f64::from(1 << 20),
                rss_searched_mib: rss_searched as f64 / f64::from(1 << 20),
            });
        }
    }

    let subject = format!("logtap {}", size_name(data.len()));
    let figures: [Figure; 4] = [
        ("spawn to listening", "ms", |s| s.listening_ms),
        ("spawn to first answer", "ms", |s| s.answer_ms),
        ("RSS after open", "MiB", |s| s.rss_open_mib),
        ("RSS after rare token + rare label", "MiB", |s| {
            s.rss_searched_mib
        }),
    ];
    ctx.report
        .add_each(SCENARIO, &subject, &samples, &figures)?;
    ctx.report.note(format!(
        "open: logtap serve on the sealed store of {} realistic entries, page cache warm, after one warm-up open; the first answer is a GetLogs limit=1 (the oldest entry) on a new connection; compare runs with and without --large for growth",
        data.len()
    ));
    Ok(())
}

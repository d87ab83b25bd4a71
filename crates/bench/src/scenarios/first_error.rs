//! first-error: "Show Errors" (GetLogs level=error) on stores of 1M and
//! 10M entries where one entry in 10,000 is an error and none comes before
//! the last 10%: the time from the call's start to its first entry, as the
//! client sees it. The block summaries should let the server skip the 90%
//! without reading it, so the time should not grow with the store.
//!
//! The Go peer has no filter (its GetLogs sends everything), so its time to
//! a first entry is shown as the floor of a gRPC call on this machine, not
//! as a like-for-like comparison.

use crate::client::{self, lean_call, message_seq};
use crate::report::Target;
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use std::time::Instant;
use tonic::transport::Channel;

const SCENARIO: &str = "first-error";

/// One in this many entries of the last 10% is an error.
const ERROR_EVERY: u64 = 10_000;

/// `example.LogService/GetLogs`.
const GET_LOGS: &str = "/example.LogService/GetLogs";

/// A store being asked.
struct Subject {
    name: String,
    server: ServerProcess,
    channel: Channel,
    /// Entries stored, and the errors among them (0 for the peer).
    entries: u64,
    errors: u64,
    logtap: bool,
}

/// One "Show Errors".
struct Sample {
    first_ms: f64,
    all_ms: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Smoke sizes still put a few errors in the last 10%.
    let sizes: Vec<u64> = ctx.size(vec![1_000_000, 10_000_000], vec![100_000, 200_000]);
    let calls = ctx.size(20 * ctx.runs, 5);
    let mut dirs = Vec::new();
    let mut subjects = Vec::new();
    for &n in &sizes {
        let dir = ctx.tempdir("first-error")?;
        // Filling 10M entries with an fsync per batch would take minutes and
        // measure nothing this scenario is about.
        let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Never)?;
        let channel = server.channel().await?;
        let quiet = n - n / 10;
        let started = Instant::now();
        // The first 90% (no error) is stored completely before the rest is
        // pushed, so concurrent calls cannot move an error into it.
        client::fill(&channel, 0..quiet, 4, |seq| client::entry(seq, false)).await?;
        client::fill(&channel, quiet..n, 4, |seq| {
            client::entry(seq, seq.is_multiple_of(ERROR_EVERY))
        })
        .await?;
        eprintln!(
            "  filled {n} entries in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // Searched once sealed, as stored history is: the sealer's work
        // after a fill is not the search's.
        crate::realistic::wait_sealed(&server).await?;
        let errors = (quiet..n)
            .filter(|seq| seq.is_multiple_of(ERROR_EVERY))
            .count() as u64;
        subjects.push(Subject {
            name: format!("logtap {}", millions(n)),
            server,
            channel,
            entries: n,
            errors,
            logtap: true,
        });
        dirs.push(dir);
    }
    if let Some(bin) = &ctx.peer {
        let server = ServerProcess::peer(bin, 1_000)?;
        let channel = server.channel().await?;
        subjects.push(Subject {
            name: "peer (floor)".to_string(),
            server,
            channel,
            entries: 1_000,
            errors: 0,
            logtap: false,
        });
    }

    for subject in &subjects {
        for _ in 0..3 {
            show_errors(subject).await?;
        }
    }
    let mut samples: Vec<Vec<Sample>> = subjects.iter().map(|_| Vec::new()).collect();
    for call in 0..calls {
        for k in 0..subjects.len() {
            let index = (call + k) % subjects.len();
            samples[index].push(show_errors(&subjects[index]).await?);
        }
    }

    for (subject, samples) in subjects.iter().zip(&samples) {
        let first: Vec<f64> = samples.iter().map(|s| s.first_ms).collect();
        let target = if subject.logtap {
            Target::AtMost(5.0)
        } else {
            Target::None
        };
        ctx.report.add(
            SCENARIO,
            &subject.name,
            "time to first entry",
            "ms",
            first,
            target,
        )?;
        if subject.logtap {
            let all: Vec<f64> = samples.iter().map(|s| s.all_ms).collect();
            ctx.report.add(
                SCENARIO,
                &subject.name,
                &format!("time to all {} errors", subject.errors),
                "ms",
                all,
                Target::None,
            )?;
        }
    }
    let logtap: Vec<usize> = (0..subjects.len())
        .filter(|&i| subjects[i].logtap)
        .collect();
    if let [small, large] = logtap[..] {
        let ratio: Vec<f64> = samples[large]
            .iter()
            .zip(&samples[small])
            .map(|(l, s)| l.first_ms / s.first_ms)
            .collect();
        let who = format!(
            "{}/{}",
            millions(subjects[large].entries),
            millions(subjects[small].entries)
        );
        ctx.report.add(
            SCENARIO,
            &who,
            "time to first entry ratio",
            "x",
            ratio,
            // "About the same at 1M and 10M", read as: within 1.5x.
            Target::AtMost(1.5),
        )?;
    }
    ctx.report.note(format!(
        "first-error: {calls} calls a store after 3 warm-up calls, on one open connection, page cache warm; the peer row is an unfiltered GetLogs, the floor of a call here"
    ));
    for subject in subjects {
        subject.server.stop()?;
    }
    drop(dirs);
    Ok(())
}

fn millions(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1_000)
    }
}

/// GetLogs level=error: time to the first entry, then to the end; checks
/// that every error came and nothing else.
async fn show_errors(subject: &Subject) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let level = if subject.logtap { "error" } else { "" };
    let mut stream = lean_call(&subject.channel, GET_LOGS, level)
        .await
        .with_context(|| format!("GetLogs on {}", subject.name))?;
    let first = stream.message().await?;
    let first_ms = start.elapsed().as_secs_f64() * 1e3;
    let Some(first) = first else {
        bail!("{} sent no entry", subject.name);
    };
    if !subject.logtap {
        // The floor only needs the first entry; the rest is dropped
        // (cancelled), as a viewer closing the tab would.
        return Ok(Sample {
            first_ms,
            all_ms: f64::NAN,
        });
    }
    let quiet = subject.entries - subject.entries / 10;
    let mut count = 0u64;
    let mut next = Some(first);
    while let Some(entry) = next {
        let seq = message_seq(&entry.message).unwrap_or(u64::MAX);
        if seq < quiet || !seq.is_multiple_of(ERROR_EVERY) {
            bail!("{}: entry {seq} is not one of the errors", subject.name);
        }
        count += 1;
        next = stream.message().await?;
    }
    let all_ms = start.elapsed().as_secs_f64() * 1e3;
    if count != subject.errors {
        bail!(
            "{}: {count} errors came, not {}",
            subject.name,
            subject.errors
        );
    }
    Ok(Sample { first_ms, all_ms })
}

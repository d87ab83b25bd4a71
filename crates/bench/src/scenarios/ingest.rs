//! ingest: how fast entries go in under the default sync policy (an fsync
//! per batch, shared by concurrent batches), two ways:
//!
//! - gRPC Push from this process: 1,000 entries per PushRequest on 4
//!   concurrent Push calls; the clock stops when every call has its reply,
//!   that is, when every entry is durable.
//! - `logtap push FILE` of a JSON-lines file: the command as a user runs
//!   it, parsing included; the clock covers the whole process.
//!
//! Each run starts a fresh server on an empty data directory, so runs do
//! not measure a growing store. The Go peer has no Push: no counterpart.

use crate::client::{self, push_parts, MESSAGE_BYTES};
use crate::report::Target;
use crate::server::{self, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::v1::PushRequest;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const SCENARIO: &str = "ingest";

/// Concurrent Push calls.
const CALLS: usize = 4;

/// One ingest run's figures; shared with `ingest-protocols`.
pub struct Sample {
    entries_per_s: f64,
    server_cpu_per_m: f64,
    client_cpu_per_m: f64,
}

impl Sample {
    /// The figures of `n` entries stored in `elapsed` seconds, for these
    /// CPU-seconds of the server and of the client.
    pub fn new(n: u64, elapsed: f64, server_cpu: f64, client_cpu: f64) -> Sample {
        let millions = n as f64 / 1e6;
        Sample {
            entries_per_s: n as f64 / elapsed,
            server_cpu_per_m: server_cpu / millions,
            client_cpu_per_m: client_cpu / millions,
        }
    }
}

/// Adds the rate, server CPU and client CPU of `samples` to the report.
pub fn report(
    ctx: &mut Ctx,
    scenario: &str,
    subject: &str,
    samples: &[Sample],
    rate_target: Target,
    cpu_target: Target,
) -> anyhow::Result<()> {
    let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    ctx.report.add(
        scenario,
        subject,
        "rate",
        "entries/s",
        pick(|s| s.entries_per_s),
        rate_target,
    )?;
    ctx.report.add(
        scenario,
        subject,
        "server CPU per 1M entries",
        "CPU-s",
        pick(|s| s.server_cpu_per_m),
        cpu_target,
    )?;
    ctx.report.add(
        scenario,
        subject,
        "client CPU per 1M entries",
        "CPU-s",
        pick(|s| s.client_cpu_per_m),
        Target::None,
    )
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = ctx.size(1_000_000, 20_000);
    let files = ctx.tempdir("ingest-input")?;
    let input = files.path().join("input.jsonl");
    write_input(&input, n)?;

    // Warm-up: one of each.
    grpc_push(ctx, n).await?;
    file_push(ctx, &input, n).await?;
    let mut grpc = Vec::new();
    let mut file = Vec::new();
    for run in 0..ctx.runs {
        if run % 2 == 0 {
            grpc.push(grpc_push(ctx, n).await?);
            file.push(file_push(ctx, &input, n).await?);
        } else {
            file.push(file_push(ctx, &input, n).await?);
            grpc.push(grpc_push(ctx, n).await?);
        }
    }
    for (subject, samples, target) in [
        ("gRPC Push", &grpc, Target::AtLeast(1_000_000.0)),
        ("logtap push", &file, Target::None),
    ] {
        report(ctx, SCENARIO, subject, samples, target, Target::None)?;
    }
    ctx.report.note(format!(
        "ingest: {n} entries of {MESSAGE_BYTES}-byte messages a run, sync policy batch (an fsync per batch, shared by concurrent batches), fresh store each run; gRPC Push: {CALLS} concurrent calls of 1,000-entry batches; logtap push: one JSON-lines file, client CPU is the logtap push process"
    ));
    Ok(())
}

/// One JSON object a line, as an application's structured log would be.
fn write_input(path: &Path, n: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for seq in 0..n {
        writeln!(
            out,
            r#"{{"ts":{},"level":"info","message":"{}"}}"#,
            client::history_timestamp(seq),
            client::message(seq)
        )?;
    }
    out.flush()?;
    Ok(())
}

/// gRPC Push of `n` entries into a fresh server.
async fn grpc_push(ctx: &Ctx, n: u64) -> anyhow::Result<Sample> {
    let dir = ctx.tempdir("ingest")?;
    let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Batch)?;
    let channel = server.channel().await?;
    // Built before the clock starts: making the entries is not ingesting.
    let mut parts: Vec<Vec<PushRequest>> = (0..CALLS).map(|_| Vec::new()).collect();
    for (index, batch) in client::batches(0..n, |seq| client::entry(seq, false)).enumerate() {
        parts[index % CALLS].push(batch);
    }
    let parts = parts.into_iter().map(futures::stream::iter).collect();
    let server_cpu = server.cpu_seconds()?;
    let client_cpu = server::self_cpu_seconds();
    let start = Instant::now();
    let stored = push_parts(&channel, parts).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = server.cpu_seconds()? - server_cpu;
    let client_cpu = server::self_cpu_seconds() - client_cpu;
    if stored != n {
        bail!("the server stored {stored} of {n} entries");
    }
    server.stop()?;
    Ok(Sample::new(n, elapsed, server_cpu, client_cpu))
}

/// `logtap push --server URL FILE` into a fresh server.
async fn file_push(ctx: &Ctx, input: &Path, n: u64) -> anyhow::Result<Sample> {
    let dir = ctx.tempdir("ingest")?;
    let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Batch)?;
    let server_cpu = server.cpu_seconds()?;
    let children_cpu = children_cpu_seconds();
    let start = Instant::now();
    let output = tokio::process::Command::new(&ctx.logtap)
        .arg("push")
        .arg("--server")
        .arg(server.url())
        .arg(input)
        .output()
        .await
        .context("could not run logtap push")?;
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = server.cpu_seconds()? - server_cpu;
    // The push process has been waited for, so its CPU is in RUSAGE_CHILDREN;
    // nothing else was reaped in between.
    let client_cpu = children_cpu_seconds() - children_cpu;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "logtap push failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if !stdout.contains(&format!("stored {n} entries")) {
        bail!("logtap push said {stdout:?}, not that it stored {n} entries");
    }
    server.stop()?;
    Ok(Sample::new(n, elapsed, server_cpu, client_cpu))
}

/// CPU seconds of every child process waited for so far.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid
    // starting value for it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

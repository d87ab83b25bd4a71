//! `logtap-bench`: every speed claim a figure, side by side with the peer.
//!
//! Starts a real release `logtap serve` (and the seed's Go server where the
//! scenario has a counterpart), drives it over gRPC from this process, and
//! reports min / median / max over several runs after a warm-up, as a table
//! and as JSON lines. The repository README's "Benchmarks" section lists
//! the scenarios and how to read the figures; bench/RESULTS.md the last
//! full run and its profiles.
//!
//! Run: `cargo run --release -p logtap-bench -- [--scenario NAME] [--runs N]
//! [--json FILE] [--smoke] [--large]`.

mod client;
mod grpc_stream;
mod realistic;
mod report;
mod scenarios;
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use report::Report;
use std::path::{Path, PathBuf};

/// The scenarios, in the order a full run takes them.
const SCENARIOS: [&str; 16] = [
    "stream",
    "storage",
    "first-error",
    "ingest",
    "ingest-protocols",
    "fan-out",
    "slow-reader",
    "cancel-storm",
    "search",
    "open",
    "store-size",
    "seal",
    "query",
    "loki-query-range",
    "viewer",
    "cluster",
];

/// End-to-end benchmarks of a real logtap server, side by side with the
/// seed's Go server.
#[derive(Debug, Parser)]
#[command(name = "logtap-bench")]
struct Args {
    /// Run only these scenarios (repeat or separate with commas): stream,
    /// storage, first-error, ingest, ingest-protocols, fan-out,
    /// slow-reader, cancel-storm, search, open, store-size, seal, query,
    /// loki-query-range, viewer, cluster.
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    scenario: Vec<String>,

    /// Measured runs per scenario, after the warm-up.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,

    /// Also write one JSON object per figure to FILE (truncated first).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Every scenario tiny (seconds in all), one measured run: checks that
    /// the harness works, for CI. The figures mean nothing.
    #[arg(long)]
    smoke: bool,

    /// search, open, store-size: 10M realistic entries instead of 1M.
    #[arg(long)]
    large: bool,

    /// The logtap binary to measure; by default `cargo build --release -p
    /// logtap` is run and its binary used.
    #[arg(long, value_name = "PATH", env = "LOGTAP_BIN")]
    logtap_bin: Option<PathBuf>,

    /// ingest-protocols: also measure this logtap binary, interleaved with
    /// the one measured in every run (a before/after in one run).
    #[arg(long, value_name = "PATH", env = "LOGTAP_BASELINE_BIN")]
    baseline_bin: Option<PathBuf>,

    /// The seed's Go server (shared/peers/seed-go). By default
    /// target/seed-go-server, built with shared/peers/seed-go/build.sh if
    /// missing (not with --smoke, which leaves the peer out unless given).
    #[arg(long, value_name = "PATH", env = "LOGTAP_PEER_BIN")]
    peer_bin: Option<PathBuf>,

    /// Leave the Go peer out.
    #[arg(long, conflicts_with = "peer_bin")]
    no_peer: bool,

    /// Where temporary data directories go (the full run needs about 3 GB).
    #[arg(long, value_name = "DIR")]
    tmp: Option<PathBuf>,

    /// fan-out: live clients (default 1,000; with --smoke 20).
    #[arg(long, value_name = "N")]
    fan_out_clients: Option<usize>,

    /// fan-out: entries pushed per second (default 10,000; with --smoke 500).
    #[arg(long, value_name = "N")]
    fan_out_rate: Option<u64>,

    /// fan-out: seconds of pushing (default 10; with --smoke 1).
    #[arg(long, value_name = "N")]
    fan_out_seconds: Option<u64>,

    /// Write the final Markdown table to FILE as well.
    #[arg(long, value_name = "FILE")]
    table: Option<PathBuf>,
}

/// What every scenario gets.
pub struct Ctx {
    /// The release logtap binary.
    pub logtap: PathBuf,
    /// The Go peer, when it is part of the run.
    pub peer: Option<PathBuf>,
    /// Another logtap binary to compare with, where a scenario does.
    pub baseline: Option<PathBuf>,
    /// Measured runs (1 with --smoke).
    pub runs: usize,
    /// Tiny sizes.
    pub smoke: bool,
    /// The realistic data set at 10M entries instead of 1M.
    pub large: bool,
    /// Base for temporary directories.
    tmp: PathBuf,
    /// Where figures go.
    pub report: Report,
    /// The stream scenario's store, kept for the storage scenario.
    pub stream_store: Option<scenarios::storage::Dataset>,
    /// The realistic data set's store, filled by the first scenario that
    /// reads it and kept for the others.
    pub realistic: Option<realistic::Filled>,
    /// The same data set with JSON messages, for the query scenario's
    /// `| json` query.
    pub realistic_json: Option<realistic::Filled>,
    /// fan-out's shape as given on the command line: clients, rate,
    /// seconds.
    pub fan_out: (Option<usize>, Option<u64>, Option<u64>),
}

impl Ctx {
    /// A new temporary directory, removed when dropped.
    pub fn tempdir(&self, name: &str) -> anyhow::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("logtap-bench-{name}-"))
            .tempdir_in(&self.tmp)
            .with_context(|| format!("could not make a directory in {}", self.tmp.display()))
    }

    /// `full` normally, `smoke` with --smoke.
    pub fn size<T>(&self, full: T, smoke: T) -> T {
        if self.smoke {
            smoke
        } else {
            full
        }
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let chosen: Vec<String> = if args.scenario.is_empty() {
        SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenario.clone()
    };
    for name in &chosen {
        if !SCENARIOS.contains(&name.as_str()) {
            bail!(
                "unknown scenario {name:?}: choose from {}",
                SCENARIOS.join(", ")
            );
        }
    }
    let logtap = match &args.logtap_bin {
        Some(path) => path.clone(),
        None => server::build_logtap()?,
    };
    if !logtap.exists() {
        bail!("{} does not exist", logtap.display());
    }
    if let Some(baseline) = &args.baseline_bin {
        if !baseline.exists() {
            bail!("{} does not exist", baseline.display());
        }
    }
    let peer = find_peer(&args);
    let tmp = args.tmp.clone().unwrap_or_else(std::env::temp_dir);
    let report = Report::new(args.json.as_deref(), args.smoke)?;
    let mut ctx = Ctx {
        logtap,
        peer,
        baseline: args.baseline_bin.clone(),
        runs: if args.smoke { 1 } else { args.runs as usize },
        smoke: args.smoke,
        large: args.large,
        tmp,
        report,
        stream_store: None,
        realistic: None,
        realistic_json: None,
        fan_out: (
            args.fan_out_clients,
            args.fan_out_rate,
            args.fan_out_seconds,
        ),
    };
    let machine = ctx.report.machine().clone();
    eprintln!(
        "logtap-bench: {} runs after a warm-up; {} cores, {}; logtap {}; peer {}",
        ctx.runs,
        machine.nproc,
        machine.model,
        ctx.logtap.display(),
        ctx.peer
            .as_deref()
            .map_or("left out".to_string(), |p| p.display().to_string())
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        for name in &chosen {
            eprintln!("\n== {name}");
            let outcome = match name.as_str() {
                "stream" => scenarios::stream::run(&mut ctx).await,
                "storage" => scenarios::storage::run(&mut ctx).await,
                "first-error" => scenarios::first_error::run(&mut ctx).await,
                "ingest" => scenarios::ingest::run(&mut ctx).await,
                "ingest-protocols" => scenarios::ingest_protocols::run(&mut ctx).await,
                "fan-out" => scenarios::fan_out::run(&mut ctx).await,
                "slow-reader" => scenarios::slow_reader::run(&mut ctx).await,
                "cancel-storm" => scenarios::cancel_storm::run(&mut ctx).await,
                "search" => scenarios::search::run(&mut ctx).await,
                "open" => scenarios::open::run(&mut ctx).await,
                "store-size" => scenarios::store_size::run(&mut ctx).await,
                "seal" => scenarios::seal::run(&mut ctx).await,
                "query" => scenarios::query::run(&mut ctx).await,
                "loki-query-range" => scenarios::loki_query_range::run(&mut ctx).await,
                "viewer" => scenarios::viewer::run(&mut ctx).await,
                "cluster" => scenarios::cluster::run(&mut ctx).await,
                _ => unreachable!("names were checked"),
            };
            outcome.with_context(|| format!("scenario {name} failed"))?;
        }
        anyhow::Ok(())
    });
    // Streams left open by a failed scenario must not hold the exit.
    runtime.shutdown_background();

    let table = ctx.report.table();
    println!("\n{table}");
    if let Some(path) = &args.table {
        std::fs::write(path, &table)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    result
}

/// The peer binary: as given; else target/seed-go-server, built if
/// missing. A smoke run leaves it out unless given, since building it may
/// install Go from Debian.
fn find_peer(args: &Args) -> Option<PathBuf> {
    if args.no_peer {
        return None;
    }
    if let Some(path) = &args.peer_bin {
        return Some(path.clone());
    }
    if args.smoke {
        return None;
    }
    let built = server::workspace_root().join("target/seed-go-server");
    if Path::new(&built).exists() {
        return Some(built);
    }
    match server::build_peer() {
        Ok(path) => Some(path),
        Err(error) => {
            eprintln!("warning: the Go peer is left out: {error:#}");
            None
        }
    }
}

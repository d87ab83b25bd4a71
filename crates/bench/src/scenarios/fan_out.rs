//! fan-out: 1,000 concurrent StreamLogs clients while 10,000 entries/s are
//! pushed for 10 s. Every client must get every entry, in order, with no gap
//! and no duplicate; each entry carries its send time as its timestamp, so
//! the push-to-receipt latency of every delivery is measured on one clock.
//! Server RSS is sampled throughout.
//!
//! All clients live in this process, multiplexed over a few HTTP/2
//! connections. On a 2-core machine they share the CPU with the server, so
//! they read the lean way (`grpc_stream`): straight on `h2`, each entry
//! parsed in place in the DATA frame that brought it, the clock read once
//! per frame (its entries arrived together) and one timeout for the whole
//! read rather than one per entry. The client's own CPU use is still
//! reported next to the server's, and a note says when the client was what
//! set the pace. A stream that fails, or ends before its last entry,
//! counts as a failed client.
//!
//! Entries are pushed in batches of rate/100 every 10 ms on one Push call,
//! with the default sync policy (an fsync per batch), as a shipper would.

use crate::client::{self, message_seq, now_nanos, STREAM_LOGS};
use crate::grpc_stream::{Connection, SeedEntry, ServerStream};
use crate::report::{median, Histogram, Target};
use crate::server::{self, RssSampler, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::bail;
use logtap_proto::example::LogRequest;
use logtap_proto::v1::{LogEntry, PushRequest};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const SCENARIO: &str = "fan-out";

const MIB: f64 = (1 << 20) as f64;

/// The shape of one fan-out run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub clients: usize,
    /// HTTP/2 connections the clients share.
    pub connections: usize,
    /// Entries pushed per second.
    pub rate: u64,
    pub seconds: u64,
    /// How long after the last push the clients may take to catch up
    /// before the run counts as incomplete.
    pub drain: Duration,
}

/// What one run measured.
struct Sample {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Clients that got every entry, in order.
    complete: usize,
    /// Clients that got an entry out of order, twice, or after a gap.
    disordered: usize,
    /// Clients whose stream failed, or ended before its last entry.
    failed: usize,
    /// Why the first failed client failed, to put in a note.
    first_failure: Option<String>,
    /// Clients still catching up when the run's time was up.
    late: usize,
    /// Entries delivered per second over all clients, from the first push
    /// to the last receipt.
    deliveries_per_s: f64,
    /// The push rate actually reached.
    pushed_per_s: f64,
    rss_open_mib: f64,
    rss_peak_mib: f64,
    server_cores: f64,
    client_cores: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut target = ctx.size(
        Params {
            clients: 1000,
            connections: 8,
            rate: 10_000,
            seconds: 10,
            drain: Duration::from_secs(120),
        },
        Params {
            clients: 20,
            connections: 2,
            rate: 500,
            seconds: 1,
            drain: Duration::from_secs(10),
        },
    );
    let (clients, rate, seconds) = ctx.fan_out;
    target.clients = clients.unwrap_or(target.clients);
    target.rate = rate.unwrap_or(target.rate);
    target.seconds = seconds.unwrap_or(target.seconds);
    // Warm-up: a short run of the same shape.
    once(
        ctx,
        Params {
            seconds: 2.min(target.seconds),
            ..target
        },
    )
    .await?;
    // At the target shape a run lasts over a minute on 2 cores (the
    // clients catch up long after the pushing stops), so at most 3.
    let mut samples = Vec::new();
    for _ in 0..ctx.runs.min(3) {
        samples.push(once(ctx, target).await?);
    }
    add_figures(ctx, "logtap", &samples, target, true)?;

    Ok(())
}

/// One figure to add: its metric, its unit, its value in a sample, and its
/// target.
type FigureSpec<'a> = (&'a str, &'a str, fn(&Sample) -> f64, Target);

/// Adds one set of figures; `targets` puts the targets on them.
fn add_figures(
    ctx: &mut Ctx,
    subject: &str,
    samples: &[Sample],
    params: Params,
    targets: bool,
) -> anyhow::Result<()> {
    let target = |t: Target| if targets { t } else { Target::None };
    let of_clients = format!("of {}", params.clients);
    let all_clients = target(Target::AtLeast(params.clients as f64));
    let no_client = target(Target::AtMost(0.0));
    let none = Target::None;
    // A table, one figure a line, in the order they are reported.
    #[rustfmt::skip]
    let figures: [FigureSpec; 14] = [
        ("clients that got every entry", &of_clients, |s| s.complete as f64, all_clients),
        ("clients with a gap, duplicate or disorder", "clients", |s| s.disordered as f64, no_client),
        ("clients whose stream failed or ended early", "clients", |s| s.failed as f64, no_client),
        ("clients still behind at the deadline", "clients", |s| s.late as f64, none),
        ("latency p50", "ms", |s| s.p50_ms, none),
        ("latency p99", "ms", |s| s.p99_ms, target(Target::AtMost(50.0))),
        ("latency max", "ms", |s| s.max_ms, none),
        ("push rate reached", "entries/s", |s| s.pushed_per_s, none),
        ("deliveries", "entries/s", |s| s.deliveries_per_s, none),
        ("server RSS, streams open, idle", "MiB", |s| s.rss_open_mib, none),
        ("server RSS peak", "MiB", |s| s.rss_peak_mib, target(Target::AtMost(256.0))),
        ("server CPU", "cores", |s| s.server_cores, none),
        ("server CPU per delivery", "µs", |s| s.server_cores / s.deliveries_per_s * 1e6, none),
        ("client CPU", "cores", |s| s.client_cores, none),
    ];
    let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    let report = &mut ctx.report;
    for (metric, unit, value, target) in figures {
        report.add(SCENARIO, subject, metric, unit, pick(value), target)?;
    }
    if let Some(failure) = samples.iter().find_map(|s| s.first_failure.as_ref()) {
        report.note(format!("fan-out ({subject}): a stream failed: {failure}"));
    }
    let client_cores = median(&pick(|s| s.client_cores));
    let server_cores = median(&pick(|s| s.server_cores));
    report.note(format!(
        "fan-out ({subject}): {} clients over {} connections, {} entries/s for {} s ({} deliveries/s asked); server used {server_cores:.2} cores, this client {client_cores:.2}, of {}{}",
        params.clients,
        params.connections,
        params.rate,
        params.seconds,
        params.rate * params.clients as u64,
        report.machine().nproc,
        if client_cores + server_cores > 0.9 * report.machine().nproc as f64 {
            ": the machine was saturated, so the client's own share of the CPU limited what the server could do"
        } else {
            ""
        }
    ));
    Ok(())
}

/// One receiver's findings.
struct Received {
    /// Push-to-receipt latency of every entry received, in µs.
    histogram: Histogram,
    /// Entries received.
    count: u64,
    /// Whether every entry came with the number that was due next.
    in_order: bool,
    /// Why the stream failed or ended early, if it did.
    failure: Option<String>,
    /// When the receiver stopped: done, failed or out of time.
    last: Instant,
}

/// Reads until `total` entries came or `deadline` passed, checking order,
/// recording latency.
async fn receive(mut stream: ServerStream, total: u64, deadline: tokio::time::Instant) -> Received {
    let mut received = Received {
        histogram: Histogram::default(),
        count: 0,
        in_order: true,
        failure: None,
        last: Instant::now(),
    };
    // One timeout for the whole read; what was read before it struck is
    // in `received`, and the count tells how far the stream got.
    let read = read(&mut stream, total, &mut received);
    if let Ok(Err(error)) = tokio::time::timeout_at(deadline, read).await {
        received.failure = Some(format!("{error:#}"));
    }
    received.last = Instant::now();
    received
}

/// Reads until `total` entries came, frame by frame, into `received`.
async fn read(
    stream: &mut ServerStream,
    total: u64,
    received: &mut Received,
) -> anyhow::Result<()> {
    while received.count < total {
        let more = stream
            .next_frame(|message, received_at| {
                let entry = SeedEntry::decode(message)?;
                let latency_us = (received_at - entry.timestamp).max(0) as u64 / 1000;
                received.histogram.record(latency_us);
                if message_seq(entry.message) != Some(received.count) {
                    received.in_order = false;
                }
                received.count += 1;
                Ok(())
            })
            .await?;
        if !more {
            bail!(
                "the stream ended after {} of {total} entries",
                received.count
            );
        }
    }
    Ok(())
}

/// Pushes `ticks` batches of `per_tick` entries, one batch every 10 ms on
/// one Push call, each entry stamped with its batch's send time, and
/// returns how many entries the server says it stored.
///
/// The shipper is another client: it has its own connection, and a thread
/// and runtime of its own, so that a batch leaves when it is stamped rather
/// than when the thousand busy receivers on the bench's runtime leave room
/// for it, which would count the client's own queueing as the server's
/// latency.
fn ship(url: String, ticks: u64, per_tick: u64) -> std::thread::JoinHandle<anyhow::Result<u64>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let (batches, outgoing) = mpsc::channel::<PushRequest>(1024);
            let mut push_client = client::v1_client(server::connect(url).await?);
            let push =
                tokio::spawn(async move { push_client.push(ReceiverStream::new(outgoing)).await });
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            for tick in 0..ticks {
                ticker.tick().await;
                let sent_at = now_nanos();
                let first = tick * per_tick;
                let entries = (first..first + per_tick)
                    .map(|seq| LogEntry {
                        message: client::message(seq),
                        timestamp: sent_at,
                        level: "info".to_string(),
                        cursor: 0,
                        labels: Default::default(),
                    })
                    .collect();
                if batches.send(PushRequest { entries }).await.is_err() {
                    break;
                }
            }
            drop(batches);
            Ok(push.await??.into_inner().stored)
        })
    })
}

/// One run on a fresh server.
async fn once(ctx: &Ctx, params: Params) -> anyhow::Result<Sample> {
    let dir = ctx.tempdir("fan-out")?;
    let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Batch)?;
    let mut connections = Vec::new();
    for _ in 0..params.connections {
        connections.push(Connection::open(server.addr).await?);
    }
    let request = LogRequest {
        level: String::new(),
    };
    let streams = futures::future::try_join_all(
        (0..params.clients).map(|i| connections[i % connections.len()].call(STREAM_LOGS, &request)),
    )
    .await?;
    // Let the server finish setting up every stream before the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_open = server.rss()?;

    let per_tick = (params.rate / 100).max(1);
    let ticks = params.rate * params.seconds / per_tick;
    let total = ticks * per_tick;
    let sampler = RssSampler::start(server.pid());
    let server_cpu = server.cpu_seconds()?;
    let client_cpu = server::self_cpu_seconds();
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(params.seconds) + params.drain;
    let receivers: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(receive(stream, total, deadline)))
        .collect();

    let shipper = ship(server.url(), ticks, per_tick);
    let stored = tokio::task::spawn_blocking(move || shipper.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the shipper's thread panicked"))??;
    let push_seconds = start.elapsed().as_secs_f64();
    if stored != total {
        bail!("the server stored {stored} of {total} pushed entries");
    }

    let mut histogram = Histogram::default();
    let mut complete = 0;
    let mut disordered = 0;
    let mut failed = 0;
    let mut first_failure = None;
    let mut late = 0;
    let mut delivered = 0;
    let mut last = start;
    for receiver in receivers {
        let received = receiver.await?;
        histogram.merge(&received.histogram);
        delivered += received.count;
        if !received.in_order {
            disordered += 1;
        } else if let Some(failure) = received.failure {
            failed += 1;
            first_failure.get_or_insert(failure);
        } else if received.count < total {
            late += 1;
        } else {
            complete += 1;
        }
        last = last.max(received.last);
    }
    if histogram.count() != delivered {
        bail!("{delivered} deliveries but {} latencies", histogram.count());
    }
    let elapsed = last.duration_since(start).as_secs_f64();
    let server_cpu = server.cpu_seconds()? - server_cpu;
    let client_cpu = server::self_cpu_seconds() - client_cpu;
    let peak = sampler.finish();
    server.stop()?;
    Ok(Sample {
        p50_ms: histogram.quantile(0.5) as f64 / 1e3,
        p99_ms: histogram.quantile(0.99) as f64 / 1e3,
        max_ms: histogram.max() as f64 / 1e3,
        complete,
        disordered,
        failed,
        first_failure,
        late,
        deliveries_per_s: delivered as f64 / elapsed,
        pushed_per_s: total as f64 / push_seconds,
        rss_open_mib: rss_open as f64 / MIB,
        rss_peak_mib: peak as f64 / MIB,
        server_cores: server_cpu / elapsed,
        client_cores: client_cpu / elapsed,
    })
}

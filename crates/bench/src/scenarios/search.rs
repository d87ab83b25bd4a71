//! search: the searches of issue 18 on the realistic data set (1M entries,
//! 10M with --large), once the store is sealed: a rare token, a trace id,
//! a rare label, a regex with a literal part, and the first error. Each is
//! a logtap.v1 GetLogs without follow, timed from the call to the end of
//! its stream, and its answer is checked (how many entries, and which).
//!
//! The store is filled through the server, the server restarted and given
//! time to seal every closed segment; so what is searched is what a server
//! holds some time after its logs were written: sealed segments and the
//! newest record log. The page cache is warm (the data was just written
//! and sealed): these are the server's own costs, not the disk's.

use crate::client::v1_client;
use crate::realistic::{self, Realistic, NEEDLE, NEEDLE_REGEX, RARE_SERVICE};
use crate::report::Target;
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::v1::{LogEntry, LogRequest};
use std::time::Instant;
use tonic::transport::Channel;

const SCENARIO: &str = "search";

/// The counter of bytes the store read from its files.
const FILE_READ_BYTES: &str = "logtap_store_file_read_bytes_total";

/// One search and what its answer must be.
pub struct Query {
    pub name: &'static str,
    pub request: LogRequest,
    /// The entries it must return.
    pub expect: u64,
    /// The time the issue asks for, in ms: VictoriaLogs' on the same data at
    /// 10M where logtap is to match it, logtap's own where it leads.
    pub target_ms: f64,
    /// Checks one returned entry.
    check: fn(&Realistic, &LogEntry) -> bool,
}

/// The five searches, for the data set `data`.
pub fn queries(data: &Realistic) -> Vec<Query> {
    let middle = data.trace_id(data.middle_seq());
    vec![
        Query {
            name: "rare token",
            request: LogRequest {
                grep: NEEDLE.to_string(),
                ..Default::default()
            },
            expect: 1,
            target_ms: 16.0,
            check: |data, entry| entry.message == data.generate(data.needle_seq()).message,
        },
        Query {
            name: "trace id",
            request: LogRequest {
                grep: middle,
                ..Default::default()
            },
            expect: 1,
            target_ms: 16.0,
            check: |data, entry| entry.message == data.generate(data.middle_seq()).message,
        },
        Query {
            name: "rare label",
            request: LogRequest {
                labels: [("service".to_string(), RARE_SERVICE.to_string())].into(),
                ..Default::default()
            },
            expect: data.rare_count(),
            target_ms: 21.0,
            check: |_, entry| entry.labels.get("service").map(String::as_str) == Some(RARE_SERVICE),
        },
        Query {
            name: "regex",
            request: LogRequest {
                grep: NEEDLE_REGEX.to_string(),
                regex: true,
                ..Default::default()
            },
            expect: 1,
            target_ms: 528.0,
            check: |data, entry| entry.message == data.generate(data.needle_seq()).message,
        },
        Query {
            name: "first error",
            request: LogRequest {
                level: "error".to_string(),
                limit: 1,
                ..Default::default()
            },
            expect: 1,
            target_ms: 5.0,
            check: |_, entry| entry.level == "error",
        },
    ]
}

/// Runs `query` to the end of its stream: the milliseconds it took.
/// Fails unless the answer is the expected one.
pub async fn time_query(channel: &Channel, data: &Realistic, query: &Query) -> anyhow::Result<f64> {
    let mut client = v1_client(channel.clone());
    let started = Instant::now();
    let mut stream = client
        .get_logs(query.request.clone())
        .await
        .with_context(|| format!("GetLogs ({})", query.name))?
        .into_inner();
    let mut count = 0u64;
    let mut wrong = None;
    while let Some(entry) = stream
        .message()
        .await
        .with_context(|| format!("reading the answer to {}", query.name))?
    {
        count += 1;
        if wrong.is_none() && !(query.check)(data, &entry) {
            wrong = Some(entry);
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(entry) = wrong {
        bail!("{}: an entry that does not belong: {entry:?}", query.name);
    }
    if count != query.expect {
        bail!("{}: {count} entries came, not {}", query.name, query.expect);
    }
    Ok(ms)
}

/// "1M", "10M", "20k".
pub fn size_name(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1_000)
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (data, dir) = realistic::filled(ctx).await?;
    let server = ServerProcess::logtap(&ctx.logtap, &dir, SyncPolicy::Never)?;
    realistic::wait_sealed(&server).await?;
    let channel = server.channel().await?;
    let queries = queries(&data);

    // A warm-up call each: the first touches the files and the filters.
    for query in &queries {
        time_query(&channel, &data, query).await?;
    }
    let mut times: Vec<Vec<f64>> = queries.iter().map(|_| Vec::new()).collect();
    let mut read: Vec<Vec<f64>> = queries.iter().map(|_| Vec::new()).collect();
    for round in 0..ctx.runs {
        // Each round starts with another query, so none is always the one
        // that follows a particular other.
        for k in 0..queries.len() {
            let index = (round + k) % queries.len();
            let before = server.metric(FILE_READ_BYTES).await?;
            times[index].push(time_query(&channel, &data, &queries[index]).await?);
            let after = server.metric(FILE_READ_BYTES).await?;
            read[index].push((after - before) / 1e6);
        }
    }

    let subject = format!("logtap {}", size_name(data.len()));
    for ((query, times), read) in queries.iter().zip(times).zip(read) {
        ctx.report.add(
            SCENARIO,
            &subject,
            &format!("{} ({} entries)", query.name, query.expect),
            "ms",
            times,
            Target::AtMost(query.target_ms),
        )?;
        ctx.report.add(
            SCENARIO,
            &subject,
            &format!("{}: read from files", query.name),
            "MB",
            read,
            Target::None,
        )?;
    }
    ctx.report.note(format!(
        "search: {} realistic entries (issue 18's data set), sealed, page cache warm; each search is a GetLogs timed from the call to the end of its stream, after a warm-up call; targets are VictoriaLogs' times at 10M from issue 18 (first error: logtap's own 5 ms)",
        data.len()
    ));
    server.stop()?;
    Ok(())
}

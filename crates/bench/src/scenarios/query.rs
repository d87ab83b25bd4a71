//! query: LogQL on the realistic data set (1M entries, 10M with --large),
//! sealed, as issue 20 measures it:
//!
//! * errors over the whole range, `sum(count_over_time({level="error"}[R]))`
//!   at one point (VictoriaLogs answers `level:error | stats count()` in
//!   14 ms at 10M);
//! * entries by level in 100 steps over the whole range,
//!   `sum by (level) (count_over_time({}[R/100]))`;
//! * a log query with a selector, a line filter, a parser and a label
//!   filter, to its first entry and to its end: with `| logfmt` on the
//!   data set's text messages, and with `| json` on the same data set
//!   written as JSON messages (a second store).
//!
//! The metric answers are checked (the number of errors, the number of
//! entries), and every entry of the log query against its filter.

use crate::client::v1_client;
use crate::realistic::{self, Form, Realistic, BASE_TIMESTAMP, STEP_NANOS};
use crate::report::Target;
use crate::scenarios::search::size_name;
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use logtap_proto::v1::{LogRequest, MetricRequest};
use std::time::Instant;
use tonic::transport::Channel;

const SCENARIO: &str = "query";

/// VictoriaLogs' `level:error | stats count()` at 10M, from issue 20.
const METRIC_TARGET_MS: f64 = 14.0;

/// The log query: warnings about consumer lag over 80,000 messages.
const LOG_QUERY: &str = r#"{level="warn"} |= "kafka consumer lag" | logfmt | lag > 80000"#;

/// The same question of the JSON messages.
const JSON_LOG_QUERY: &str = r#"{level="warn"} |= "kafka consumer lag" | json | lag > 80000"#;

/// A log query and how to tell an entry it may answer.
struct LogQuery {
    query: &'static str,
    /// The entry's lag, if the message is one of the lag warnings.
    lag: fn(&str) -> Option<u64>,
}

const TEXT: LogQuery = LogQuery {
    query: LOG_QUERY,
    lag: |message| {
        message
            .split(' ')
            .find_map(|pair| pair.strip_prefix("lag="))
            .and_then(|lag| lag.parse::<u64>().ok())
    },
};

const JSON: LogQuery = LogQuery {
    query: JSON_LOG_QUERY,
    lag: |message| {
        let object: serde_json::Value = serde_json::from_str(message).ok()?;
        object.get("lag")?.as_str()?.parse().ok()
    },
};

/// One metric query, timed to the end of its stream: the milliseconds,
/// and the sum of every value of every step.
async fn metric(channel: &Channel, request: MetricRequest) -> anyhow::Result<(f64, f64)> {
    let mut client = v1_client(channel.clone());
    let started = Instant::now();
    let mut stream = client
        .query_metrics(request.clone())
        .await
        .with_context(|| format!("QueryMetrics {}", request.query))?
        .into_inner();
    let mut total = 0.0;
    while let Some(step) = stream.message().await.context("a metric step")? {
        total += step.samples.iter().map(|s| s.value).sum::<f64>();
    }
    Ok((started.elapsed().as_secs_f64() * 1e3, total))
}

/// A log query to its first entry and its end (ms), and its entries.
async fn log_query(channel: &Channel, query: &LogQuery) -> anyhow::Result<(f64, f64, u64)> {
    let mut client = v1_client(channel.clone());
    let started = Instant::now();
    let mut stream = client
        .get_logs(LogRequest {
            query: query.query.to_string(),
            ..Default::default()
        })
        .await
        .context("GetLogs with a LogQL query")?
        .into_inner();
    let mut first = None;
    let mut count = 0;
    while let Some(entry) = stream.message().await.context("an entry")? {
        first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1e3);
        let lag = (query.lag)(&entry.message);
        if entry.level != "warn"
            || !entry.message.contains("kafka consumer lag")
            || lag.is_none_or(|lag| lag <= 80_000)
        {
            bail!("the log query returned an entry it does not select: {entry:?}");
        }
        count += 1;
    }
    let end = started.elapsed().as_secs_f64() * 1e3;
    Ok((first.unwrap_or(end), end, count))
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (data, dir) = realistic::filled(ctx).await?;
    let server = ServerProcess::logtap(&ctx.logtap, &dir, SyncPolicy::Never)?;
    realistic::wait_sealed(&server).await?;
    let channel = server.channel().await?;
    let requests = requests(&data);
    let errors = data.errors() as f64;
    let entries = data.len() as f64;

    // A warm-up each, checking the answers.
    let (_, total) = metric(&channel, requests.0.clone()).await?;
    if total != errors {
        bail!("errors over the whole range: {total}, not {errors}");
    }
    let (_, total) = metric(&channel, requests.1.clone()).await?;
    if total != entries {
        bail!("entries by level in 100 steps add up to {total}, not {entries}");
    }
    let (_, _, found) = log_query(&channel, &TEXT).await?;
    if found == 0 {
        bail!("the log query found nothing: the data set has lagging consumers");
    }

    let (mut errors_ms, mut by_level_ms, mut first_ms, mut end_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        errors_ms.push(metric(&channel, requests.0.clone()).await?.0);
        by_level_ms.push(metric(&channel, requests.1.clone()).await?.0);
        let (first, end, _) = log_query(&channel, &TEXT).await?;
        first_ms.push(first);
        end_ms.push(end);
    }
    let subject = format!("logtap {}", size_name(data.len()));
    ctx.report.add(
        SCENARIO,
        &subject,
        "errors over the whole range (metric, 1 point)",
        "ms",
        errors_ms,
        Target::AtMost(METRIC_TARGET_MS),
    )?;
    ctx.report.add(
        SCENARIO,
        &subject,
        "entries by level, 100 steps (metric)",
        "ms",
        by_level_ms,
        Target::AtMost(METRIC_TARGET_MS),
    )?;
    report_log_query(ctx, &subject, "log query", found, first_ms, end_ms)?;
    ctx.report.note(format!(
        "query: {} realistic entries, sealed, page cache warm; metric queries through gRPC QueryMetrics timed to the end of their stream; the log query is `{LOG_QUERY}` through GetLogs; target: VictoriaLogs' `level:error | stats count()` at 10M (issue 20)",
        data.len()
    ));
    server.stop()?;

    // The `| json` query, on the same entries written as JSON.
    let (_, dir) = realistic::filled_as(ctx, Form::Json).await?;
    let server = ServerProcess::logtap(&ctx.logtap, &dir, SyncPolicy::Never)?;
    realistic::wait_sealed(&server).await?;
    let channel = server.channel().await?;
    let (_, _, json_found) = log_query(&channel, &JSON).await?;
    if json_found != found {
        bail!("the json query found {json_found} entries, the logfmt one {found}");
    }
    let (mut first_ms, mut end_ms) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        let (first, end, _) = log_query(&channel, &JSON).await?;
        first_ms.push(first);
        end_ms.push(end);
    }
    report_log_query(ctx, &subject, "json log query", found, first_ms, end_ms)?;
    ctx.report.note(format!(
        "query: the json log query is `{JSON_LOG_QUERY}` through GetLogs, on a second store of the same entries with JSON messages (`msg`, each key=value field, `trace_id`)"
    ));
    server.stop()?;
    Ok(())
}

/// A log query's times to its first entry and to its end.
fn report_log_query(
    ctx: &mut Ctx,
    subject: &str,
    name: &str,
    found: u64,
    first_ms: Vec<f64>,
    end_ms: Vec<f64>,
) -> anyhow::Result<()> {
    ctx.report.add(
        SCENARIO,
        subject,
        &format!("{name} to its first entry ({found} entries)"),
        "ms",
        first_ms,
        Target::None,
    )?;
    ctx.report.add(
        SCENARIO,
        subject,
        &format!("{name} to its end"),
        "ms",
        end_ms,
        Target::None,
    )
}

/// The two metric queries over the data set's whole time range.
fn requests(data: &Realistic) -> (MetricRequest, MetricRequest) {
    let first = BASE_TIMESTAMP;
    // Past the last entry's jitter.
    let end = BASE_TIMESTAMP + data.len() as i64 * STEP_NANOS + STEP_NANOS;
    let seconds = (end - first) / 1_000_000_000 + 1;
    let errors = MetricRequest {
        query: format!(r#"sum(count_over_time({{level="error"}}[{seconds}s]))"#),
        start: end,
        end,
        step: 1_000_000_000,
    };
    let step_seconds = seconds / 100 + 1;
    // Windows are open on the left: start a nanosecond before the first
    // entry can be.
    let origin = first - 1;
    let by_level = MetricRequest {
        query: format!("sum by (level) (count_over_time({{}}[{step_seconds}s]))"),
        start: origin + step_seconds * 1_000_000_000,
        end: origin + 100 * step_seconds * 1_000_000_000,
        step: step_seconds * 1_000_000_000,
    };
    (errors, by_level)
}

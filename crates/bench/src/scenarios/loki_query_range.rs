//! loki-query-range: Grafana's Loki data source's reads, through the Loki
//! HTTP API (`GET /loki/api/v1/query_range`, one HTTP/1.1 request each,
//! timed to the end of the JSON answer), on the realistic data set (1M
//! entries, 10M with --large, 20,000 with --smoke), sealed, as issue 20
//! measures it:
//!
//! * an Explore logs query: a selector, a line filter, a parser and a label
//!   filter, newest first, `limit=1000`, over the whole range;
//! * the volume histogram of everything, as Grafana sends it
//!   (`sum by (level, detected_level) (count_over_time({...} | drop
//!   __error__ [R]))`, 100 steps), over a level selector: counted from the
//!   blocks' summaries;
//! * the same histogram with a line filter that passes every line
//!   (`|= ""`), which makes the store read every entry: what the first
//!   histogram cost before `| drop __error__` was known to leave counts by
//!   level alone;
//! * the volume histogram of one service: the `service` label is not in
//!   the summaries, so its blocks are read.
//!
//! Every answer is checked: each line of the logs query against its
//! filter, the first histogram's total against the data set's size, the
//! service's against the entries it holds.

use crate::realistic::{self, Realistic, BASE_TIMESTAMP, SERVICES, STEP_NANOS};
use crate::report::Target;
use crate::scenarios::search::size_name;
use crate::server::{http_get, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, Context};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Instant;

const SCENARIO: &str = "loki-query-range";

/// The logs query: warnings about consumer lag over 80,000 messages (the
/// query scenario's, through Loki's API).
const LOG_QUERY: &str = r#"{level="warn"} |= "kafka consumer lag" | logfmt | lag > 80000"#;

/// The answer's `data`, and the milliseconds to its end.
async fn query_range(addr: SocketAddr, params: &[(&str, String)]) -> anyhow::Result<(Value, f64)> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let path = format!("/loki/api/v1/query_range?{}", query.finish());
    let started = Instant::now();
    let body = http_get(addr, &path).await?;
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    let answer: Value = serde_json::from_str(&body).context("a query_range answer")?;
    if answer["status"] != "success" {
        bail!("query_range answered {answer}");
    }
    Ok((answer["data"].clone(), elapsed))
}

/// The lines of a `streams` result, checked against the logs query.
fn checked_lines(data: &Value) -> anyhow::Result<u64> {
    let mut count = 0;
    for stream in data["result"].as_array().context("streams")? {
        if stream["stream"]["level"] != "warn" {
            bail!(
                "a stream the logs query does not select: {}",
                stream["stream"]
            );
        }
        for value in stream["values"].as_array().context("values")? {
            let line = value[1].as_str().context("a line")?;
            let lag = line
                .split(' ')
                .find_map(|pair| pair.strip_prefix("lag="))
                .and_then(|lag| lag.parse::<u64>().ok());
            if !line.contains("kafka consumer lag") || lag.is_none_or(|lag| lag <= 80_000) {
                bail!("the logs query returned a line it does not select: {line}");
            }
            count += 1;
        }
    }
    Ok(count)
}

/// The sum of every value of a `matrix` result.
fn matrix_total(data: &Value) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for series in data["result"].as_array().context("a matrix")? {
        for point in series["values"].as_array().context("values")? {
            total += point[1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .context("a value")?;
        }
    }
    Ok(total)
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (data, dir) = realistic::filled(ctx).await?;
    let server = ServerProcess::logtap(&ctx.logtap, &dir, SyncPolicy::Never)?;
    realistic::wait_sealed(&server).await?;
    let addr = server.addr;
    let queries = Queries::of(&data);

    // A warm-up each, checking the answers.
    let (answer, _) = query_range(addr, &queries.logs).await?;
    let found = checked_lines(&answer)?;
    if found == 0 {
        bail!("the logs query found nothing: the data set has lagging consumers");
    }
    let (answer, _) = query_range(addr, &queries.volume_all).await?;
    let total = matrix_total(&answer)?;
    if total != data.len() as f64 {
        bail!(
            "the volume histogram adds up to {total}, not {}",
            data.len()
        );
    }
    let (answer, _) = query_range(addr, &queries.volume_read).await?;
    if matrix_total(&answer)? != total {
        bail!("the histogram read entry by entry differs from the one from summaries");
    }
    let (answer, _) = query_range(addr, &queries.volume_service).await?;
    let service_total = matrix_total(&answer)?;
    if service_total == 0.0 || service_total >= total {
        bail!("the service's volume histogram adds up to {service_total} of {total}");
    }

    let (mut logs_ms, mut all_ms, mut read_ms, mut service_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        logs_ms.push(query_range(addr, &queries.logs).await?.1);
        all_ms.push(query_range(addr, &queries.volume_all).await?.1);
        read_ms.push(query_range(addr, &queries.volume_read).await?.1);
        service_ms.push(query_range(addr, &queries.volume_service).await?.1);
    }
    let subject = format!("logtap {}", size_name(data.len()));
    ctx.report.add(
        SCENARIO,
        &subject,
        &format!("logs query, backward, limit 1000 ({found} lines)"),
        "ms",
        logs_ms,
        Target::None,
    )?;
    ctx.report.add(
        SCENARIO,
        &subject,
        "volume histogram of every level, 100 steps (summaries)",
        "ms",
        all_ms,
        Target::None,
    )?;
    ctx.report.add(
        SCENARIO,
        &subject,
        "volume histogram of every level, 100 steps (every entry read)",
        "ms",
        read_ms,
        Target::None,
    )?;
    ctx.report.add(
        SCENARIO,
        &subject,
        &format!("volume histogram of one service, 100 steps ({service_total} entries)"),
        "ms",
        service_ms,
        Target::None,
    )?;
    ctx.report.note(format!(
        "loki-query-range: {} realistic entries, sealed, page cache warm; each GET /loki/api/v1/query_range on a new HTTP/1.1 connection, timed to the end of its JSON answer; the logs query is `{LOG_QUERY}`",
        data.len()
    ));
    server.stop()?;
    Ok(())
}

/// The three requests, as Grafana's data source words them (ns times, a
/// step in ms).
struct Queries {
    logs: Vec<(&'static str, String)>,
    volume_all: Vec<(&'static str, String)>,
    volume_read: Vec<(&'static str, String)>,
    volume_service: Vec<(&'static str, String)>,
}

impl Queries {
    fn of(data: &Realistic) -> Queries {
        // Windows are open on the left: the origin is a nanosecond before
        // the first entry can be, and 100 steps reach past the last
        // entry's jitter.
        let origin = BASE_TIMESTAMP - 1;
        let last = BASE_TIMESTAMP + data.len() as i64 * STEP_NANOS + STEP_NANOS;
        let step_ms = (last - origin) / 1_000_000 / 100 + 1;
        let step = step_ms * 1_000_000;
        let end = origin + 100 * step;
        let params = |query: String, start: i64| {
            vec![
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("step", format!("{step_ms}ms")),
                ("direction", "backward".to_string()),
                ("query", query),
            ]
        };
        let volume = |selector: &str| {
            format!(
                "sum by (level, detected_level) (count_over_time({selector} | drop __error__ [{step_ms}ms]))"
            )
        };
        let mut logs = params(LOG_QUERY.to_string(), origin);
        logs.push(("limit", "1000".to_string()));
        Queries {
            logs,
            // The first point's window starts at the origin.
            volume_all: params(volume(r#"{level=~".+"}"#), origin + step),
            volume_read: params(volume(r#"{level=~".+"} |= """#), origin + step),
            volume_service: params(
                volume(&format!(r#"{{service="{}"}}"#, SERVICES[4])),
                origin + step,
            ),
        }
    }
}

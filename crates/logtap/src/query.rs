//! `logtap query`: one QueryMetrics call, printed as a table per series
//! (with bars on a terminal) or as one JSON object a point.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use logtap_core::json;
use logtap_proto::v1::MetricRequest;

use crate::client::{self, RpcError, ServerArgs};
use crate::logs::parse_when;
use crate::output::Format;

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// A LogQL metric query, e.g. 'sum by (level) (count_over_time({}[5m]))'.
    #[arg(value_name = "METRIC QUERY")]
    pub query: String,

    /// The first point (same forms as `logs --since`); an hour before
    /// --until by default.
    #[arg(long, value_parser = parse_when, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<i64>,

    /// The last point at most; now by default.
    #[arg(long, value_parser = parse_when, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<i64>,

    /// Between points (30s, 5m, 1h); a hundredth of the range by default.
    #[arg(long, value_parser = parse_step, value_name = "DURATION")]
    pub step: Option<i64>,

    /// How to print the series.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub output: Format,
}

fn parse_step(text: &str) -> Result<i64, String> {
    let step = logtap_ingest::parse_duration(text).map_err(|error| error.to_string())?;
    i64::try_from(step.as_nanos())
        .ok()
        .filter(|nanos| *nanos > 0)
        .ok_or_else(|| format!("{text:?} is not a positive duration"))
}

/// A series' labels, sorted by name.
type Labels = Vec<(String, String)>;

/// The widest bar, in characters.
const BAR_WIDTH: f64 = 40.0;

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let request = MetricRequest {
        query: args.query.clone(),
        start: args.since.unwrap_or(0),
        end: args.until.unwrap_or(0),
        step: args.step.unwrap_or(0),
    };
    let mut client = client::connect(&args.server).await?;
    let mut stream = client
        .query_metrics(request)
        .await
        .map_err(RpcError)?
        .into_inner();
    let mut out = io::BufWriter::new(io::stdout().lock());
    // Text groups points by series, so it waits for the end; JSON goes
    // out a point at a time.
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    while let Some(step) = stream.message().await.map_err(RpcError)? {
        match args.output {
            Format::Json => {
                let mut line = format!("{{\"timestamp\":{},\"samples\":[", step.timestamp);
                for (index, sample) in step.samples.iter().enumerate() {
                    if index > 0 {
                        line.push(',');
                    }
                    let mut labels: Vec<(&String, &String)> = sample.labels.iter().collect();
                    labels.sort();
                    line.push_str("{\"labels\":{");
                    for (at, (name, value)) in labels.into_iter().enumerate() {
                        if at > 0 {
                            line.push(',');
                        }
                        json::write_string(&mut line, name);
                        line.push(':');
                        json::write_string(&mut line, value);
                    }
                    line.push_str("},\"value\":");
                    line.push_str(&json_number(sample.value));
                    line.push('}');
                }
                line.push_str("]}");
                if write_line(&mut out, &line)? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Format::Text => {
                for sample in step.samples {
                    let mut labels: Vec<(String, String)> = sample.labels.into_iter().collect();
                    labels.sort();
                    series
                        .entry(labels)
                        .or_default()
                        .push((step.timestamp, sample.value));
                }
            }
        }
    }
    if args.output == Format::Text {
        let bars = io::stdout().is_terminal();
        let max = series
            .values()
            .flatten()
            .map(|(_, v)| v.abs())
            .fold(0.0, f64::max);
        for (labels, points) in &series {
            if write_line(&mut out, &render_labels(labels))? {
                return Ok(ExitCode::SUCCESS);
            }
            for (timestamp, value) in points {
                let time = chrono::DateTime::from_timestamp_nanos(*timestamp)
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S");
                let line = if bars && max > 0.0 {
                    let width = (value.abs() / max * BAR_WIDTH).round() as usize;
                    format!("  {time}  {:<40}  {}", "█".repeat(width), number(*value))
                } else {
                    format!("  {time}  {}", number(*value))
                };
                if write_line(&mut out, &line)? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        if series.is_empty() && write_line(&mut out, "(no series: nothing matched)")? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    out.flush().or_else(ignore_closed)?;
    Ok(ExitCode::SUCCESS)
}

/// `{name="value", ...}` as LogQL writes a label set.
fn render_labels(labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let mut quoted = String::new();
            json::write_string(&mut quoted, value);
            format!("{name}={quoted}")
        })
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A value as JSON has numbers: infinities and NaN, which JSON lacks, as
/// null.
fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        "null".to_string()
    }
}

/// A value without a needless `.0`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.4}")
    }
}

/// Writes a line; `Ok(true)` when the reader has gone away (`| head`),
/// which ends the command without an error.
fn write_line(out: &mut impl Write, line: &str) -> io::Result<bool> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(error) => Err(error),
    }
}

fn ignore_closed(error: io::Error) -> io::Result<()> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(error)
    }
}

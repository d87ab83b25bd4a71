//! ingest-protocols: how fast the shippers' protocols take entries in,
//! durable under the default sync policy (an fsync per batch, shared by
//! concurrent batches), beside logtap's own gRPC Push on the same data.
//!
//! Every wire carries the same realistic entries ([`crate::realistic`]),
//! in requests of [`BATCH`] entries encoded before the clock starts, as a
//! shipper would have them ready: the client is a thin loop over bytes so
//! that it is the server's decoding and storing that is timed, not the
//! client's encoding. Requests go out on [`CONNECTIONS`] concurrent
//! connections, one request in flight on each, request `i` on connection
//! `i % CONNECTIONS`, and the clock stops when every request has its
//! answer, that is, when every entry is durable:
//!
//! - gRPC Push (`logtap.v1.LogService/Push`), the baseline;
//! - OTLP gRPC (`LogsService/Export`) and OTLP HTTP protobuf
//!   (`POST /v1/logs`): records grouped by resource (`service.name`,
//!   `host.name`), as a Collector's batch groups them;
//! - Loki protobuf + snappy (`POST /loki/api/v1/push`): one stream per
//!   `{host, level, service}`, as Promtail labels them;
//! - Elasticsearch bulk (`POST /logs/_bulk`): `create` actions and
//!   documents as Filebeat writes them (`@timestamp`, `message`,
//!   `log.level`, `service.name`, `host.name`);
//! - syslog TCP, RFC 5424 with octet counting (rsyslog's `omfwd`): each
//!   connection writes its share in one go; syslog has no answer, so the
//!   clock stops when `logtap_entries_stored_total` on `/metrics` (polled
//!   every 10 ms) reaches the count. The server stores a partial batch
//!   200 ms after its first entry, so the last batch may wait up to that.
//!
//! The HTTP/2 wires are sent with raw h2 (every wire but syslog): one
//! request is one `send_data` of bytes made before the clock. Each run
//! starts a fresh server on an empty data directory; at its end the
//! server's own count of what it holds (GetLogs' `logtap-total-count`)
//! must be exactly the entries sent. With `--baseline-bin`, the same runs
//! are made against that binary too, interleaved with the measured one
//! and taking turns at going first: a before/after in one run, whose
//! machine noise falls on both.

use crate::client;
use crate::grpc_stream::{self, Connection, Posted};
use crate::realistic::{Generated, Realistic};
use crate::report::Target;
use crate::scenarios::ingest::{self, Sample};
use crate::server::{self, ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat};
use logtap_core::Level;
use logtap_ingest::{loki, otlp};
use logtap_proto::v1::{LogRequest, PushRequest, PushResponse};
use prost::Message;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const SCENARIO: &str = "ingest-protocols";

/// Entries per request: what `logtap push` sends, near a Collector's
/// default batch, and well under every route's body limit.
const BATCH: usize = 1000;

/// Concurrent connections, one request in flight on each.
const CONNECTIONS: usize = 8;

/// How long syslog's entries may take to be stored after the last byte is
/// written before the run fails.
const SYSLOG_DEADLINE: Duration = Duration::from_secs(120);

/// The wires measured, in the order a run takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Push,
    OtlpGrpc,
    OtlpHttp,
    Loki,
    Bulk,
    Syslog,
}

const WIRES: [Wire; 6] = [
    Wire::Push,
    Wire::OtlpGrpc,
    Wire::OtlpHttp,
    Wire::Loki,
    Wire::Bulk,
    Wire::Syslog,
];

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Push => "gRPC Push",
            Wire::OtlpGrpc => "OTLP gRPC",
            Wire::OtlpHttp => "OTLP HTTP protobuf",
            Wire::Loki => "Loki protobuf+snappy",
            Wire::Bulk => "Elasticsearch bulk",
            Wire::Syslog => "syslog TCP",
        }
    }

    /// The issue's target holds for the binary protocols.
    fn rate_target(self) -> Target {
        match self {
            Wire::Push | Wire::OtlpGrpc | Wire::OtlpHttp | Wire::Loki => {
                Target::AtLeast(1_000_000.0)
            }
            Wire::Bulk | Wire::Syslog => Target::None,
        }
    }

    /// Path and headers of an HTTP/2 request; None for syslog.
    fn request_head(self) -> Option<(&'static str, &'static [(&'static str, &'static str)])> {
        const GRPC: &[(&str, &str)] = &[("content-type", "application/grpc"), ("te", "trailers")];
        match self {
            Wire::Push => Some(("/logtap.v1.LogService/Push", GRPC)),
            Wire::OtlpGrpc => Some((
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                GRPC,
            )),
            Wire::OtlpHttp => Some(("/v1/logs", &[("content-type", "application/x-protobuf")])),
            Wire::Loki => Some((
                "/loki/api/v1/push",
                &[("content-type", "application/x-protobuf")],
            )),
            Wire::Bulk => Some(("/logs/_bulk", &[("content-type", "application/x-ndjson")])),
            Wire::Syslog => None,
        }
    }

    /// One request's body carrying `entries`.
    fn encode(self, entries: &[Generated]) -> Bytes {
        match self {
            Wire::Push => {
                let request = PushRequest {
                    entries: entries.iter().map(|e| e.clone().into_proto()).collect(),
                };
                grpc_stream::frame(&request)
            }
            Wire::OtlpGrpc => grpc_stream::frame(&otlp_request(entries)),
            Wire::OtlpHttp => otlp_request(entries).encode_to_vec().into(),
            Wire::Loki => loki::encode_protobuf(&loki_request(entries)).into(),
            Wire::Bulk => bulk_body(entries).into(),
            Wire::Syslog => syslog_frames(entries).into(),
        }
    }

    /// Checks the answer to a request of `count` entries.
    fn check(self, posted: &Posted, count: usize) -> anyhow::Result<()> {
        match self {
            Wire::Push => {
                posted.check_grpc()?;
                let reply = PushResponse::decode(posted.grpc_message()?)?;
                ensure!(
                    reply.stored == count as u64,
                    "Push stored {} of {count}",
                    reply.stored
                );
            }
            Wire::OtlpGrpc => {
                posted.check_grpc()?;
                let reply = otlp::ExportLogsServiceResponse::decode(posted.grpc_message()?)?;
                ensure!(
                    reply.partial_success.is_none(),
                    "Export refused records: {:?}",
                    reply.partial_success
                );
            }
            Wire::OtlpHttp => {
                ensure!(
                    posted.status == 200,
                    "HTTP status {}: {}",
                    posted.status,
                    String::from_utf8_lossy(&posted.body)
                );
                let reply = otlp::ExportLogsServiceResponse::decode(posted.body.as_slice())?;
                ensure!(
                    reply.partial_success.is_none(),
                    "the export refused records: {:?}",
                    reply.partial_success
                );
            }
            Wire::Loki => ensure!(
                posted.status == 204,
                "HTTP status {}: {}",
                posted.status,
                String::from_utf8_lossy(&posted.body)
            ),
            Wire::Bulk => {
                let prefix = &posted.body[..posted.body.len().min(200)];
                ensure!(
                    posted.status == 200
                        && String::from_utf8_lossy(prefix).contains("\"errors\":false"),
                    "HTTP status {}: {}",
                    posted.status,
                    String::from_utf8_lossy(prefix)
                );
            }
            Wire::Syslog => bail!("syslog has no answer to check"),
        }
        Ok(())
    }
}

/// The binaries compared: the one measured, and the baseline if given.
fn binaries(ctx: &Ctx) -> Vec<(PathBuf, &'static str)> {
    let mut binaries = vec![(ctx.logtap.clone(), "")];
    if let Some(baseline) = &ctx.baseline {
        binaries.push((baseline.clone(), ", baseline"));
    }
    binaries
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = ctx.size(1_000_000, 20_000);
    let data = Realistic::new(n);
    let generated: Vec<Generated> = (0..n).map(|seq| data.generate(seq)).collect();
    let binaries = binaries(ctx);
    for wire in WIRES {
        // Encoded once, before any clock, and shared by every run.
        let requests: Vec<(Bytes, usize)> = generated
            .chunks(BATCH)
            .map(|chunk| (wire.encode(chunk), chunk.len()))
            .collect();
        let bytes: usize = requests.iter().map(|(body, _)| body.len()).sum();
        eprintln!(
            "{}: {} requests, {:.1} MB",
            wire.name(),
            requests.len(),
            bytes as f64 / 1e6
        );
        let mut samples: Vec<Vec<Sample>> = binaries.iter().map(|_| Vec::new()).collect();
        // Warm-up: one of each binary.
        for (bin, _) in &binaries {
            once(ctx, bin, wire, &requests, n).await?;
        }
        for run in 0..ctx.runs {
            let mut order: Vec<usize> = (0..binaries.len()).collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for index in order {
                let sample = once(ctx, &binaries[index].0, wire, &requests, n).await?;
                samples[index].push(sample);
            }
        }
        for ((_, suffix), samples) in binaries.iter().zip(&samples) {
            let subject = format!("{}{suffix}", wire.name());
            ingest::report(
                ctx,
                SCENARIO,
                &subject,
                samples,
                wire.rate_target(),
                Target::AtMost(1.5),
            )?;
        }
        ctx.report.add(
            SCENARIO,
            wire.name(),
            "bytes sent per entry",
            "B",
            vec![bytes as f64 / n as f64],
            Target::None,
        )?;
    }
    ctx.report.note(format!(
        "ingest-protocols: {n} realistic entries a run, requests of {BATCH} entries encoded before the clock, {CONNECTIONS} connections with one request in flight each, sync policy batch, fresh store each run; the clock stops at the last answer (syslog: when /metrics counts every entry stored, polled every 10 ms); the store's count checked after each run{}",
        if ctx.baseline.is_some() { "; the baseline binary interleaved in every run, taking turns at going first" } else { "" }
    ));
    Ok(())
}

/// One run of `wire` against a fresh server of `bin`.
async fn once(
    ctx: &Ctx,
    bin: &Path,
    wire: Wire,
    requests: &[(Bytes, usize)],
    n: u64,
) -> anyhow::Result<Sample> {
    let dir = ctx.tempdir("ingest-protocols")?;
    let syslog_port = server::free_port()?;
    let syslog_addr = format!("127.0.0.1:{syslog_port}");
    let extra: &[&str] = match wire {
        Wire::Syslog => &["--syslog-tcp", &syslog_addr],
        _ => &[],
    };
    let server = ServerProcess::logtap_with(bin, dir.path(), SyncPolicy::Batch, extra)?;
    let (elapsed, server_cpu, client_cpu) = match wire.request_head() {
        Some((path, headers)) => {
            let mut connections = Vec::new();
            for _ in 0..CONNECTIONS {
                connections.push(Connection::open(server.addr).await?);
            }
            let mut parts: Vec<Vec<(Bytes, usize)>> = vec![Vec::new(); CONNECTIONS];
            for (index, request) in requests.iter().enumerate() {
                parts[index % CONNECTIONS].push(request.clone());
            }
            let server_cpu = server.cpu_seconds()?;
            let client_cpu = server::self_cpu_seconds();
            let start = Instant::now();
            let tasks: Vec<_> = connections
                .into_iter()
                .zip(parts)
                .map(|(connection, part)| {
                    tokio::spawn(async move {
                        for (body, count) in part {
                            let posted = connection.post(path, headers, body).await?;
                            wire.check(&posted, count)
                                .with_context(|| format!("{} was refused", wire.name()))?;
                        }
                        anyhow::Ok(())
                    })
                })
                .collect();
            for task in tasks {
                task.await??;
            }
            (
                start.elapsed().as_secs_f64(),
                server.cpu_seconds()? - server_cpu,
                server::self_cpu_seconds() - client_cpu,
            )
        }
        None => {
            let mut sockets = Vec::new();
            for _ in 0..CONNECTIONS {
                let socket = tokio::net::TcpStream::connect(&syslog_addr)
                    .await
                    .with_context(|| format!("could not connect to syslog at {syslog_addr}"))?;
                socket.set_nodelay(true)?;
                sockets.push(socket);
            }
            // Each connection's share as one buffer: octet-counted frames
            // need no separator, so the requests' bytes concatenate.
            let mut parts: Vec<Vec<u8>> = vec![Vec::new(); CONNECTIONS];
            for (index, (body, _)) in requests.iter().enumerate() {
                parts[index % CONNECTIONS].extend_from_slice(body);
            }
            let server_cpu = server.cpu_seconds()?;
            let client_cpu = server::self_cpu_seconds();
            let start = Instant::now();
            let tasks: Vec<_> = sockets
                .into_iter()
                .zip(parts)
                .map(|(mut socket, part)| {
                    tokio::spawn(async move {
                        socket.write_all(&part).await?;
                        socket.shutdown().await?;
                        anyhow::Ok(())
                    })
                })
                .collect();
            for task in tasks {
                task.await??;
            }
            let deadline = Instant::now() + SYSLOG_DEADLINE;
            loop {
                let stored = server.metric("logtap_entries_stored_total").await?;
                if stored as u64 >= n {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("syslog: the server stored {stored} of {n} entries");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (
                start.elapsed().as_secs_f64(),
                server.cpu_seconds()? - server_cpu,
                server::self_cpu_seconds() - client_cpu,
            )
        }
    };
    let held = stored_count(&server).await?;
    if held != n {
        bail!(
            "{}: the server holds {held} of the {n} entries sent",
            wire.name()
        );
    }
    server.stop()?;
    Ok(Sample::new(n, elapsed, server_cpu, client_cpu))
}

/// How many entries the server holds, as it counts them: GetLogs with no
/// filter announces its exact count in `logtap-total-count`.
async fn stored_count(server: &ServerProcess) -> anyhow::Result<u64> {
    let mut client = client::v1_client(server.channel().await?);
    let response = client
        .get_logs(LogRequest::default())
        .await
        .context("GetLogs failed")?;
    let count = response
        .metadata()
        .get("logtap-total-count")
        .context("GetLogs answered without logtap-total-count")?
        .to_str()?
        .parse()?;
    Ok(count)
}

/// `SeverityNumber` of a level: the lowest of its range.
fn severity_number(level: Level) -> i32 {
    match level {
        Level::Trace => 1,
        Level::Debug => 5,
        Level::Info => 9,
        Level::Warn => 13,
        Level::Error => 17,
        Level::Fatal => 21,
    }
}

fn string_attribute(key: &str, value: &str) -> otlp::KeyValue {
    otlp::KeyValue {
        key: key.to_string(),
        value: Some(otlp::AnyValue {
            value: Some(otlp::Value::StringValue(value.to_string())),
        }),
    }
}

/// An OTLP export of `entries`, one `ResourceLogs` per service and host.
fn otlp_request(entries: &[Generated]) -> otlp::ExportLogsServiceRequest {
    let mut by_resource: BTreeMap<(&str, &str), Vec<otlp::LogRecord>> = BTreeMap::new();
    for entry in entries {
        by_resource
            .entry((entry.service, &entry.host))
            .or_default()
            .push(otlp::LogRecord {
                time_unix_nano: entry.timestamp as u64,
                observed_time_unix_nano: entry.timestamp as u64,
                severity_number: severity_number(entry.level),
                severity_text: entry.level.as_str().to_ascii_uppercase(),
                body: Some(otlp::AnyValue {
                    value: Some(otlp::Value::StringValue(entry.message.clone())),
                }),
                ..Default::default()
            });
    }
    otlp::ExportLogsServiceRequest {
        resource_logs: by_resource
            .into_iter()
            .map(|((service, host), records)| otlp::ResourceLogs {
                resource: Some(otlp::Resource {
                    attributes: vec![
                        string_attribute("service.name", service),
                        string_attribute("host.name", host),
                    ],
                }),
                scope_logs: vec![otlp::ScopeLogs {
                    scope: Some(otlp::InstrumentationScope {
                        name: "app".to_string(),
                        version: String::new(),
                    }),
                    log_records: records,
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// A Loki push of `entries`, one stream per label set.
fn loki_request(entries: &[Generated]) -> loki::PushRequest {
    let mut by_stream: BTreeMap<(&str, Level, &str), Vec<loki::EntryAdapter>> = BTreeMap::new();
    for entry in entries {
        by_stream
            .entry((&entry.host, entry.level, entry.service))
            .or_default()
            .push(loki::EntryAdapter {
                timestamp: Some(loki::Timestamp {
                    seconds: entry.timestamp.div_euclid(1_000_000_000),
                    nanos: entry.timestamp.rem_euclid(1_000_000_000) as i32,
                }),
                line: entry.message.clone(),
                structured_metadata: Vec::new(),
            });
    }
    loki::PushRequest {
        streams: by_stream
            .into_iter()
            .map(|((host, level, service), entries)| loki::StreamAdapter {
                labels: format!(
                    r#"{{host="{host}", level="{}", service="{service}"}}"#,
                    level.as_str()
                ),
                entries,
            })
            .collect(),
    }
}

/// The time as RFC 3339 in UTC with `format`'s fraction.
fn rfc3339(nanos: i64, format: SecondsFormat) -> String {
    DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(format, true)
}

/// A bulk body of `entries`: a `create` action and a document each.
fn bulk_body(entries: &[Generated]) -> String {
    let mut body = String::new();
    for entry in entries {
        let document = serde_json::json!({
            "@timestamp": rfc3339(entry.timestamp, SecondsFormat::Millis),
            "message": entry.message,
            "log": {"level": entry.level.as_str()},
            "service": {"name": entry.service},
            "host": {"name": entry.host},
        });
        body.push_str("{\"create\":{}}\n");
        body.push_str(&document.to_string());
        body.push('\n');
    }
    body
}

/// RFC 5424 messages of `entries`, octet-counted (RFC 6587), facility
/// user.
fn syslog_frames(entries: &[Generated]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut message = String::new();
    for entry in entries {
        let severity = match entry.level {
            Level::Fatal => 2,
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        message.clear();
        write!(
            message,
            "<{}>1 {} {} {} - - - {}",
            8 + severity,
            rfc3339(entry.timestamp, SecondsFormat::Micros),
            entry.host,
            entry.service,
            entry.message
        )
        .expect("writing to a String cannot fail");
        out.extend_from_slice(format!("{} ", message.len()).as_bytes());
        out.extend_from_slice(message.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each wire's body decodes, with the ingest crate's own decoders, to
    /// the entries it was made from: the bench measures real requests.
    #[test]
    fn every_wire_carries_the_entries() {
        let data = Realistic::new(300);
        let entries: Vec<Generated> = (0..300).map(|seq| data.generate(seq)).collect();
        let messages = |decoded: Vec<logtap_core::NewEntry>| {
            let mut got: Vec<_> = decoded
                .into_iter()
                .map(|e| (e.timestamp, e.level, e.message))
                .collect();
            got.sort();
            got
        };
        let mut want: Vec<_> = entries
            .iter()
            .map(|e| (e.timestamp, e.level, e.message.clone()))
            .collect();
        want.sort();

        let body = Wire::OtlpHttp.encode(&entries);
        let decoded = otlp::decode_protobuf(&body, 0).unwrap();
        assert_eq!(messages(decoded.entries.clone()), want);
        assert!(decoded.entries[0]
            .labels
            .iter()
            .any(|(name, _)| name == "host.name"));

        let body = Wire::Loki.encode(&entries);
        assert_eq!(
            messages(loki::decode_protobuf(&body, 1 << 30).unwrap()),
            want
        );

        let body = Wire::Bulk.encode(&entries);
        let items = logtap_ingest::elasticsearch::decode(&body, Some("logs"), 0).unwrap();
        let decoded = items
            .into_iter()
            .map(|item| item.outcome.unwrap())
            .collect();
        // Filebeat's times are milliseconds: compare messages and levels.
        let strip = |list: Vec<(i64, Level, String)>| {
            let mut list: Vec<_> = list.into_iter().map(|(_, l, m)| (l, m)).collect();
            list.sort();
            list
        };
        assert_eq!(strip(messages(decoded)), strip(want.clone()));

        let frames = Wire::Syslog.encode(&entries);
        let mut decoded = Vec::new();
        let mut at = 0;
        while let Some((frame, used)) = logtap_ingest::syslog::next_frame(
            &frames[at..],
            logtap_ingest::syslog::Framing::OctetCounting,
            1 << 20,
        )
        .unwrap()
        {
            decoded.push(logtap_ingest::syslog::decode(frame, 0).unwrap());
            at += used;
        }
        // RFC 5424 times are microseconds here.
        let micros = |list: Vec<(i64, Level, String)>| {
            let mut list: Vec<_> = list.into_iter().map(|(t, l, m)| (t / 1000, l, m)).collect();
            list.sort();
            list
        };
        assert_eq!(micros(messages(decoded)), micros(want.clone()));
    }
}

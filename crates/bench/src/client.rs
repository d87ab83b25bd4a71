//! The client side every scenario shares: the entries pushed, pushing them,
//! and a lean reader of the seed's `LogEntry`.

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use logtap_proto::example::LogRequest as SeedRequest;
use logtap_proto::v1::log_service_client::LogServiceClient as V1Client;
use logtap_proto::v1::{LogEntry, PushRequest};
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Streaming;

/// Entries per PushRequest: what `logtap push` sends, and well under the
/// server's 4 MiB message limit with 80-byte messages.
pub const BATCH: u64 = 1000;

/// Length of every generated message.
pub const MESSAGE_BYTES: usize = 80;

/// A realistic 80-byte access-log message. It starts with the entry's
/// number in 10 digits, so a reader can check order, gaps and duplicates
/// without a full parse.
pub fn message(seq: u64) -> String {
    let mut message = format!(
        "{seq:010} GET /api/v1/items 200 OK user=alice latency_ms={:03} region=eu-west-1 ",
        seq % 1000
    );
    message.truncate(MESSAGE_BYTES);
    while message.len() < MESSAGE_BYTES {
        message.push('x');
    }
    message
}

/// The number a [`message`] starts with.
pub fn message_seq(message: &[u8]) -> Option<u64> {
    let digits = message.get(..10)?;
    let mut seq = 0u64;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        seq = seq * 10 + u64::from(digit - b'0');
    }
    Some(seq)
}

/// A fixed base time for stored history (2023-11-14), one µs apart.
pub fn history_timestamp(seq: u64) -> i64 {
    1_700_000_000_000_000_000 + seq as i64 * 1000
}

/// Now, in Unix epoch nanoseconds: the send time put in live entries so the
/// receiver can compute push-to-receipt latency on the same clock.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i64)
}

/// A history entry: `info` unless `error`.
pub fn entry(seq: u64, error: bool) -> LogEntry {
    LogEntry {
        message: message(seq),
        timestamp: history_timestamp(seq),
        level: if error { "error" } else { "info" }.to_string(),
        cursor: 0,
        labels: Default::default(),
    }
}

/// Entries `seqs` as PushRequests of [`BATCH`] entries, made by `make`.
pub fn batches(
    seqs: std::ops::Range<u64>,
    make: impl Fn(u64) -> LogEntry,
) -> impl Iterator<Item = PushRequest> {
    let end = seqs.end;
    (seqs.start..end)
        .step_by(BATCH as usize)
        .map(move |start| PushRequest {
            entries: (start..(start + BATCH).min(end)).map(&make).collect(),
        })
}

/// A logtap.v1 client that accepts large batches.
pub fn v1_client(channel: Channel) -> V1Client<Channel> {
    V1Client::new(channel)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20)
}

/// Pushes each part on its own concurrent Push call (all on `channel`,
/// multiplexed) and returns the total the server says it stored, once every
/// call has its reply: that is, once every entry is durable.
pub async fn push_parts<S>(channel: &Channel, parts: Vec<S>) -> anyhow::Result<u64>
where
    S: Stream<Item = PushRequest> + Send + 'static,
{
    let calls = parts.into_iter().map(|part| {
        let mut client = v1_client(channel.clone());
        async move { client.push(part).await }
    });
    let mut stored = 0;
    for reply in futures::future::join_all(calls).await {
        stored += reply.context("Push failed")?.into_inner().stored;
    }
    Ok(stored)
}

/// Pushes entries `seqs` (made by `make`) on `concurrency` calls. Batch `b`
/// goes to call `b % concurrency`, so the calls advance through the range
/// side by side and arrival order stays close to `seqs` order. Batches are
/// made as they are sent, so filling 10M entries does not hold 10M in
/// memory first.
pub async fn fill<F>(
    channel: &Channel,
    seqs: std::ops::Range<u64>,
    concurrency: u64,
    make: F,
) -> anyhow::Result<()>
where
    F: Fn(u64) -> LogEntry + Clone + Send + Sync + 'static,
{
    let step = BATCH * concurrency;
    let parts = (0..concurrency)
        .map(|call| {
            let make = make.clone();
            let first = seqs.start + call * BATCH;
            let end = seqs.end;
            futures::stream::iter((first..end).step_by(step as usize)).map(move |start| {
                PushRequest {
                    entries: (start..(start + BATCH).min(end)).map(&make).collect(),
                }
            })
        })
        .collect();
    let stored = push_parts(channel, parts).await?;
    let wanted = seqs.end - seqs.start;
    if stored != wanted {
        bail!("the server stored {stored} entries of {wanted}");
    }
    Ok(())
}

/// The seed's `LogEntry` read without a copy or UTF-8 check of the message:
/// the same wire format (field 1 message, field 2 timestamp), decoded into
/// a `Bytes` that shares tonic's buffer. Used where one client process
/// reads for hundreds of streams, so that the client's own decoding is not
/// what is measured.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeanEntry {
    #[prost(bytes = "bytes", tag = "1")]
    pub message: Bytes,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Opens `example.LogService/METHOD` with `level`, decoding entries as
/// [`LeanEntry`]. Returns once the server's headers are in.
pub async fn lean_call(
    channel: &Channel,
    method: &'static str,
    level: &str,
) -> Result<Streaming<LeanEntry>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(format!("connection not ready: {error}")))?;
    let codec = tonic_prost::ProstCodec::<SeedRequest, LeanEntry>::default();
    let path = PathAndQuery::from_static(method);
    let request = tonic::Request::new(SeedRequest {
        level: level.to_string(),
    });
    Ok(grpc
        .server_streaming(request, path, codec)
        .await?
        .into_inner())
}

/// `example.LogService/StreamLogs`: the live tail.
pub const STREAM_LOGS: &str = "/example.LogService/StreamLogs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_80_bytes_and_carry_their_number() {
        for seq in [0, 7, 999_999, 9_999_999_999] {
            let text = message(seq);
            assert_eq!(text.len(), MESSAGE_BYTES, "{text}");
            assert_eq!(message_seq(text.as_bytes()), Some(seq));
        }
        assert_eq!(message_seq(b"Error 12"), None);
    }

    #[test]
    fn batches_cover_the_range_once() {
        let all: Vec<u64> = batches(5..2_505, |seq| entry(seq, false))
            .flat_map(|batch| batch.entries)
            .map(|entry| message_seq(entry.message.as_bytes()).unwrap())
            .collect();
        assert_eq!(all, (5..2_505).collect::<Vec<_>>());
    }

    #[test]
    fn lean_entries_read_the_seed_wire_format() {
        use prost::Message;
        let seed = logtap_proto::example::LogEntry {
            message: message(42),
            timestamp: 1234,
        };
        let lean = LeanEntry::decode(seed.encode_to_vec().as_slice()).unwrap();
        assert_eq!(lean.timestamp, 1234);
        assert_eq!(message_seq(&lean.message), Some(42));
    }
}

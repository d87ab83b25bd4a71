//! A lean receiver for server-streaming gRPC calls, straight on `h2`.
//!
//! The fan-out scenario runs a thousand live clients in this process, on the
//! same two cores as the server it measures, so the measuring client must
//! cost far less per delivered entry than the server does, or it is the
//! client that sets the pace. tonic's `Streaming` buffers every message into
//! its own buffer, decodes it into a struct, and the caller wraps every
//! message in a timeout; here the messages are parsed in place inside the
//! DATA frames h2 hands over, and only the part of a message that straddles
//! two frames is copied. Every entry is still decoded fully enough to check
//! order, gaps, duplicates and latency.

use anyhow::{anyhow, bail, ensure, Context};
use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use http::{HeaderMap, Method, Request, StatusCode};
use std::net::SocketAddr;
use tokio::io::BufReader;
use tokio::net::TcpStream;

/// The connection-level receive window: as the bench's `wide_channel`, so
/// that hundreds of streams sharing a connection are not throttled by a
/// limit that separate clients would each have.
const CONNECTION_WINDOW: u32 = 64 << 20;

/// The stream-level receive window: hyper's default, which tonic's clients
/// (and so the other scenarios) use, so that the server sees the same flow
/// control as before.
const STREAM_WINDOW: u32 = 2 << 20;

/// How much one read of the socket may take. h2 reads into what is left of
/// its frame buffer, a few KiB at a time: at the fan-out's 800 MB/s that
/// was 150,000 `recvfrom` calls a second, a good share of the client's CPU
/// on the cores it shares with the server. Reading through a buffer this
/// size takes whatever the socket holds in one call.
const READ_BUFFER: usize = 256 << 10;

/// The largest message accepted: tonic's default decoding limit.
const MAX_MESSAGE: usize = 4 << 20;

/// Length of the gRPC message header: a compression flag and a u32
/// big-endian length.
const HEADER: usize = 5;

/// One HTTP/2 connection that many streams share.
pub struct Connection {
    /// Opens new streams on the connection; each call works on a clone.
    send: SendRequest<Bytes>,
    /// The server's address: the `:authority` of every request.
    authority: String,
}

impl Connection {
    /// Connects to `addr` and spawns the task that drives the connection.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("could not connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(BufReader::with_capacity(READ_BUFFER, tcp))
            .await
            .with_context(|| format!("HTTP/2 handshake with {addr} failed"))?;
        // When the connection fails, every stream on it sees the error.
        tokio::spawn(connection);
        Ok(Connection {
            send,
            authority: addr.to_string(),
        })
    }

    /// Calls `path` with `request` and returns the response stream once the
    /// server's headers are in and say the call was accepted.
    pub async fn call(
        &self,
        path: &str,
        request: &impl prost::Message,
    ) -> anyhow::Result<ServerStream> {
        let headers = [("content-type", "application/grpc"), ("te", "trailers")];
        let response = self.send(path, &headers, frame(request)).await?;
        ensure!(
            response.status() == StatusCode::OK,
            "{path} answered HTTP status {}",
            response.status()
        );
        // A trailers-only response carries its error in the headers.
        check_grpc_status(response.headers()).with_context(|| format!("{path} was refused"))?;
        Ok(ServerStream {
            body: response.into_body(),
            deframer: Deframer::default(),
        })
    }
}

/// The answer to one [`Connection::post`]: read whole.
pub struct Posted {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Vec<u8>,
    /// The trailers, when the server sent any (gRPC does).
    pub trailers: HeaderMap,
}

impl Posted {
    /// Fails unless the call ended with HTTP 200 and `grpc-status` 0, which
    /// a trailers-only answer carries in its headers.
    pub fn check_grpc(&self) -> anyhow::Result<()> {
        ensure!(self.status == StatusCode::OK, "HTTP status {}", self.status);
        check_grpc_status(&self.headers)?;
        check_grpc_status(&self.trailers)?;
        ensure!(
            self.headers.contains_key("grpc-status") || self.trailers.contains_key("grpc-status"),
            "the call ended without a grpc-status"
        );
        Ok(())
    }

    /// The first gRPC message of the body, without its header.
    pub fn grpc_message(&self) -> anyhow::Result<&[u8]> {
        ensure!(
            self.body.len() >= HEADER,
            "the answer holds no gRPC message"
        );
        let len = body_len(&self.body)?;
        self.body
            .get(HEADER..HEADER + len)
            .ok_or_else(|| anyhow!("the answer's gRPC message is cut short"))
    }
}

impl Connection {
    /// POSTs `body` to `path` with `headers` (name, value) and reads the
    /// whole answer: one request of a unary call (gRPC or plain HTTP over
    /// HTTP/2). The body is handed to h2 in one piece, which sends it as
    /// the server's flow-control windows open.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Posted> {
        let response = self.send(path, headers, body).await?;
        let (parts, mut received) = response.into_parts();
        let mut body = Vec::new();
        while let Some(data) = received.data().await {
            let data = data.with_context(|| format!("the answer to {path} broke"))?;
            received.flow_control().release_capacity(data.len())?;
            body.extend_from_slice(&data);
        }
        let trailers = received
            .trailers()
            .await
            .context("reading the trailers")?
            .unwrap_or_default();
        Ok(Posted {
            status: parts.status,
            headers: parts.headers,
            body,
            trailers,
        })
    }
}

impl Connection {
    /// Opens a stream, sends a POST to `path` with `headers` and `body`,
    /// and waits for the response's headers.
    async fn send(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<http::Response<RecvStream>> {
        let mut head = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}{path}", self.authority));
        for (name, value) in headers {
            head = head.header(*name, *value);
        }
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .context("the connection cannot open a stream")?;
        let (response, mut stream) = send.send_request(head.body(())?, false)?;
        stream.send_data(body, true)?;
        response.await.with_context(|| format!("{path} failed"))
    }
}

/// `message` as one gRPC message: uncompressed, length first.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut framed = Vec::with_capacity(HEADER + len);
    framed.push(0);
    framed.extend_from_slice(&(len as u32).to_be_bytes());
    message
        .encode(&mut framed)
        .expect("a Vec grows to fit any message");
    framed.into()
}

/// Fails if `headers` carry a `grpc-status` other than 0 (OK).
fn check_grpc_status(headers: &HeaderMap) -> anyhow::Result<()> {
    let Some(status) = headers.get("grpc-status") else {
        return Ok(());
    };
    if status == "0" {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .map(|message| percent_decode(message.as_bytes()))
        .unwrap_or_default();
    bail!(
        "grpc-status {}: {message}",
        String::from_utf8_lossy(status.as_bytes())
    )
}

/// `grpc-message` as the server wrote it before percent-encoding it.
fn percent_decode(encoded: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&byte, after)) = rest.split_first() {
        let hex = after
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, hex) {
            (b'%', Some(value)) => {
                decoded.push(value);
                rest = &after[2..];
            }
            _ => {
                decoded.push(byte);
                rest = after;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The response side of one server-streaming call.
pub struct ServerStream {
    /// The response body: DATA frames, then the trailers.
    body: RecvStream,
    /// Holds the part of a message that straddles DATA frames.
    deframer: Deframer,
}

impl ServerStream {
    /// Waits for the next DATA frame and calls `each` with every message it
    /// completes and the time the frame arrived (Unix epoch nanoseconds,
    /// read once for the frame: its messages arrived together). Returns
    /// false once the stream has ended with an OK status and no message left
    /// half read; an error status, a broken stream or a bad message is an
    /// error.
    pub async fn next_frame(
        &mut self,
        mut each: impl FnMut(&[u8], i64) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let Some(data) = self.body.data().await else {
            let trailers = self.body.trailers().await.context("reading the trailers")?;
            check_grpc_status(&trailers.unwrap_or_default())?;
            ensure!(
                self.deframer.is_empty(),
                "the stream ended inside a message"
            );
            return Ok(false);
        };
        let data = data.context("the stream broke")?;
        let received_at = crate::client::now_nanos();
        // Without this the server stops once a window's worth is unread.
        self.body.flow_control().release_capacity(data.len())?;
        self.deframer
            .feed(&data, |message| each(message, received_at))?;
        Ok(true)
    }
}

/// Splits a stream of DATA frames into gRPC messages. Messages wholly inside
/// a frame are handed over in place; only a message that straddles frames
/// is copied, into `carry`.
#[derive(Debug, Default)]
struct Deframer {
    /// The start of a message that began in an earlier frame: its header,
    /// or part of it, and as much of its body as has come.
    carry: Vec<u8>,
}

impl Deframer {
    /// Whether no message is half read.
    fn is_empty(&self) -> bool {
        self.carry.is_empty()
    }

    /// Calls `each` with the body of every message `frame` completes.
    fn feed(
        &mut self,
        frame: &[u8],
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut rest = frame;
        if !self.carry.is_empty() {
            // Complete the header first, then the body.
            let take = HEADER.saturating_sub(self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.carry.len() < HEADER {
                return Ok(());
            }
            let whole = HEADER + body_len(&self.carry)?;
            let take = (whole - self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.carry.len() < whole {
                return Ok(());
            }
            each(&self.carry[HEADER..])?;
            self.carry.clear();
        }
        while !rest.is_empty() {
            if rest.len() < HEADER {
                self.carry.extend_from_slice(rest);
                break;
            }
            let whole = HEADER + body_len(rest)?;
            if rest.len() < whole {
                self.carry.reserve(whole);
                self.carry.extend_from_slice(rest);
                break;
            }
            each(&rest[HEADER..whole])?;
            rest = &rest[whole..];
        }
        Ok(())
    }
}

/// The body length a message header (the first [`HEADER`] bytes of
/// `header`) announces.
fn body_len(header: &[u8]) -> anyhow::Result<usize> {
    match header[0] {
        0 => {}
        1 => bail!("a compressed message, though none was asked for"),
        flag => bail!("a message with flag {flag}"),
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    ensure!(
        len <= MAX_MESSAGE,
        "a message of {len} bytes, over the {MAX_MESSAGE} limit"
    );
    Ok(len)
}

/// The seed's `LogEntry` (field 1: string message, field 2: int64
/// timestamp), read in place: the message is not copied or checked as
/// UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedEntry<'a> {
    /// The message's bytes, which start with the entry's number.
    pub message: &'a [u8],
    /// The entry's timestamp, Unix epoch nanoseconds.
    pub timestamp: i64,
}

impl<'a> SeedEntry<'a> {
    /// Decodes `bytes` as protobuf, skipping fields other than the two.
    pub fn decode(mut bytes: &'a [u8]) -> anyhow::Result<SeedEntry<'a>> {
        let mut entry = SeedEntry {
            message: &[],
            timestamp: 0,
        };
        while !bytes.is_empty() {
            let key = varint(&mut bytes)?;
            let (field, wire) = (key >> 3, key & 7);
            ensure!(field != 0, "field number 0");
            match (field, wire) {
                (1, 2) => entry.message = delimited(&mut bytes)?,
                (2, 0) => entry.timestamp = varint(&mut bytes)? as i64,
                (1 | 2, _) => bail!("field {field} with wire type {wire}"),
                (_, 0) => {
                    varint(&mut bytes)?;
                }
                (_, 1) => {
                    take(&mut bytes, 8)?;
                }
                (_, 2) => {
                    delimited(&mut bytes)?;
                }
                (_, 5) => {
                    take(&mut bytes, 4)?;
                }
                _ => bail!("field {field} with unsupported wire type {wire}"),
            }
        }
        Ok(entry)
    }
}

/// Reads a base-128 varint off the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> anyhow::Result<u64> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            ensure!(index < 9 || byte <= 1, "a varint over 64 bits");
            *bytes = &bytes[index + 1..];
            return Ok(value);
        }
    }
    Err(anyhow!("a truncated or over-long varint"))
}

/// Takes a length-delimited field's value (a varint length, then that many
/// bytes) off the front of `bytes`.
fn delimited<'a>(bytes: &mut &'a [u8]) -> anyhow::Result<&'a [u8]> {
    let len = usize::try_from(varint(bytes)?).context("a length over the address space")?;
    take(bytes, len)
}

/// Takes `n` bytes off the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
    ensure!(
        n <= bytes.len(),
        "a field of {n} bytes with {} left",
        bytes.len()
    );
    let (taken, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{message, message_seq};
    use logtap_proto::example::LogEntry as Seed;
    use prost::Message;

    /// Entries `seqs` as the server sends them: gRPC messages back to back.
    fn wire(seqs: std::ops::Range<u64>) -> Vec<u8> {
        seqs.flat_map(|seq| {
            frame(&Seed {
                message: message(seq),
                timestamp: seq as i64 * 1000 - 5000,
            })
        })
        .collect()
    }

    /// Feeds `frames` and returns every entry's (number, timestamp).
    fn entries(frames: &[&[u8]]) -> anyhow::Result<Vec<(u64, i64)>> {
        let mut deframer = Deframer::default();
        let mut got = Vec::new();
        for frame in frames {
            deframer.feed(frame, |message| {
                let entry = SeedEntry::decode(message)?;
                got.push((message_seq(entry.message).unwrap(), entry.timestamp));
                Ok(())
            })?;
        }
        ensure!(deframer.is_empty(), "a message left half read");
        Ok(got)
    }

    #[test]
    fn a_split_at_any_byte_gives_the_same_entries() {
        let bytes = wire(0..3);
        let whole = entries(&[&bytes]).unwrap();
        assert_eq!(whole, vec![(0, -5000), (1, -4000), (2, -3000)]);
        for at in 0..=bytes.len() {
            let (first, second) = bytes.split_at(at);
            assert_eq!(entries(&[first, second]).unwrap(), whole, "split at {at}");
        }
    }

    #[test]
    fn one_byte_frames_give_the_same_entries() {
        let bytes = wire(7..10);
        let frames: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(entries(&frames).unwrap(), entries(&[&bytes]).unwrap());
    }

    #[test]
    fn a_frame_ending_inside_a_message_leaves_it_half_read() {
        let bytes = wire(0..1);
        for at in 1..bytes.len() {
            assert!(entries(&[&bytes[..at]]).is_err(), "cut at {at}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // The seed's two fields among unknown ones of every wire type,
        // with field 2 before field 1, and field numbers of several bytes.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[3 << 3, 0xff, 0xff, 0x03]); // 3: varint
        bytes.extend_from_slice(&[(4 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]); // 4: fixed64
        bytes.extend_from_slice(
            &Seed {
                message: String::new(),
                timestamp: -7,
            }
            .encode_to_vec(),
        );
        bytes.extend_from_slice(&[(5 << 3) | 2, 3, 1, 0x80, 2]); // 5: bytes
        bytes.extend_from_slice(&[(6 << 3) | 5, 9, 9, 9, 9]); // 6: fixed32
        bytes.extend_from_slice(&[0x80 | (2 << 3) | 2, 0x10, 1, 0x80]); // 258: bytes
        bytes.extend_from_slice(
            &Seed {
                message: message(12),
                timestamp: 0,
            }
            .encode_to_vec(),
        );
        let entry = SeedEntry::decode(&bytes).unwrap();
        assert_eq!(message_seq(entry.message), Some(12));
        assert_eq!(entry.timestamp, -7);
    }

    #[test]
    fn the_seed_encoding_reads_back() {
        for timestamp in [0, 1, -1, i64::MIN, i64::MAX, 1_700_000_000_000_000_000] {
            let seed = Seed {
                message: message(99),
                timestamp,
            };
            let bytes = seed.encode_to_vec();
            let entry = SeedEntry::decode(&bytes).unwrap();
            assert_eq!(entry.message, seed.message.as_bytes());
            assert_eq!(entry.timestamp, timestamp);
        }
    }

    #[test]
    fn a_compressed_message_is_an_error() {
        let mut bytes = wire(0..1);
        bytes[0] = 1;
        let error = entries(&[&bytes]).unwrap_err();
        assert!(error.to_string().contains("compressed"), "{error}");
        // Also when the flag arrives in a frame of its own.
        let (flag, rest) = bytes.split_at(1);
        assert!(entries(&[flag, rest]).is_err());
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode(b"no%20such%20method:%20/x%C3%A9%2"),
            "no such method: /x\u{e9}%2"
        );
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "0".parse().unwrap());
        assert!(check_grpc_status(&headers).is_ok());
        headers.insert("grpc-status", "12".parse().unwrap());
        headers.insert("grpc-message", "no%20such%20method".parse().unwrap());
        let error = check_grpc_status(&headers).unwrap_err();
        assert_eq!(error.to_string(), "grpc-status 12: no such method");
    }

    #[test]
    fn a_truncated_varint_is_an_error() {
        // The timestamp's varint stops with its continuation bit set.
        assert!(SeedEntry::decode(&[2 << 3, 0x80, 0x80]).is_err());
        // So does a key.
        assert!(SeedEntry::decode(&[0x88]).is_err());
        // Eleven bytes is too long for any varint.
        let mut long = vec![2 << 3];
        long.extend_from_slice(&[0x80; 10]);
        long.push(1);
        assert!(SeedEntry::decode(&long).is_err());
    }

    #[test]
    fn a_field_longer_than_the_message_is_an_error() {
        assert!(SeedEntry::decode(&[(1 << 3) | 2, 5, b'a']).is_err());
        assert!(SeedEntry::decode(&[(1 << 3) | 5, 1, 2, 3, 4]).is_err());
    }
}

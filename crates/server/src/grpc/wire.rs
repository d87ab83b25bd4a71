//! Response messages encoded straight from the store's records.
//!
//! Every entry a gRPC stream sends is read from the reader's buffer as an
//! [`EntryRef`] and goes out as protobuf bytes. Building a prost `LogEntry`
//! first would allocate a `String` per field (and a map for the labels) only
//! to copy them once more into a frame and drop them; here the entry is
//! written once, framed as a gRPC message, into a per-stream [`Arena`], and
//! the response body copies those bytes into its DATA frame. The bytes are
//! exactly what prost would write for the same `LogEntry` (fields in number
//! order, defaults left out), which the tests check against prost itself.
//!
//! Live tails that have caught up send the newest entries as runs instead
//! ([`GrpcEncoder::run`]): a chunk of the newest records is encoded once
//! per form, and every stream at the live edge sends the same bytes.

use crate::stream::metadata::{Crc, RunCrc};
use crate::stream::tail::Encode;
use bytes::{BufMut, Bytes, BytesMut};
use logtap_core::{EntryRef, Run, StoreError};
use prost::encoding::{encoded_len_varint, WireType};
use std::sync::Arc;

/// The bytes an [`Arena`] allocates at a time. Small, because a stream
/// keeps its current chunk for as long as it lives (a thousand live tails
/// hold a thousand chunks), and large enough that a chunk serves dozens of
/// ordinary entries.
const ARENA_CHUNK: usize = 8 * 1024;

/// Where one stream encodes its entries: each message is a slice of a
/// shared chunk, so encoding an entry costs no allocation of its own.
#[derive(Debug, Default)]
pub struct Arena {
    /// The rest of the current chunk; each message is split off its front.
    chunk: BytesMut,
}

impl Arena {
    /// `entry` in logtap.v1's `LogEntry` form, framed.
    pub fn v1(&mut self, entry: &EntryRef<'_>) -> Bytes {
        self.encode(v1_len(entry), |buf| put_v1(entry, buf))
    }

    /// `entry` in the seed's `LogEntry` form (message and timestamp),
    /// framed.
    pub fn seed(&mut self, entry: &EntryRef<'_>) -> Bytes {
        self.encode(seed_len(entry), |buf| put_seed(entry, buf))
    }

    /// Writes a framed message whose body is exactly `len` bytes.
    fn encode(&mut self, len: usize, put: impl FnOnce(&mut BytesMut)) -> Bytes {
        let framed = FRAME_HEADER + len;
        if self.chunk.capacity() < framed {
            // The old chunk lives on in the messages already split off it
            // until the response body has copied them.
            self.chunk = BytesMut::with_capacity(framed.max(ARENA_CHUNK));
        }
        put_framed(len, &mut self.chunk, put);
        self.chunk.split().freeze()
    }
}

/// The gRPC message header: a compression flag (0: none) and the body's
/// length, big-endian.
pub const FRAME_HEADER: usize = 5;

/// Writes one gRPC message: its header, then a body of exactly `len`
/// bytes written by `put`.
fn put_framed(len: usize, buf: &mut BytesMut, put: impl FnOnce(&mut BytesMut)) {
    buf.reserve(FRAME_HEADER + len);
    let start = buf.len();
    buf.put_u8(0);
    buf.put_u32(len as u32);
    put(buf);
    debug_assert_eq!(
        buf.len() - start,
        FRAME_HEADER + len,
        "the length computed ahead"
    );
}

/// The encoded length of a length-delimited field `tag` holding `len` bytes.
fn delimited_len(len: usize) -> usize {
    // Every tag here is below 16, so its key is one byte.
    1 + encoded_len_varint(len as u64) + len
}

/// The encoded length of a varint field with value `value`.
fn varint_len(value: u64) -> usize {
    1 + encoded_len_varint(value)
}

/// Writes a field's key and a varint (the value, or a length) with one
/// copy. prost's `encode_key` and `encode_varint` write byte by byte, each
/// byte a capacity check on the buffer: a 9-byte timestamp costs ten of
/// them, for every entry a stream sends (measured: bench/RESULTS.md,
/// "Third session").
fn put_key_and_varint(tag: u32, wire_type: WireType, mut value: u64, buf: &mut BytesMut) {
    debug_assert!(tag < 16, "every tag here has a one-byte key");
    let mut bytes = [0u8; 11];
    bytes[0] = ((tag << 3) | wire_type as u32) as u8;
    let mut len = 1;
    while value >= 0x80 {
        bytes[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    bytes[len] = value as u8;
    buf.put_slice(&bytes[..=len]);
}

/// Writes a string field, left out when empty as proto3 does.
fn put_str(tag: u32, text: &str, buf: &mut BytesMut) {
    if !text.is_empty() {
        put_key_and_varint(tag, WireType::LengthDelimited, text.len() as u64, buf);
        buf.put_slice(text.as_bytes());
    }
}

/// Writes a varint field, left out when zero as proto3 does.
fn put_varint(tag: u32, value: u64, buf: &mut BytesMut) {
    if value != 0 {
        put_key_and_varint(tag, WireType::Varint, value, buf);
    }
}

/// The length of a string field, zero when it is left out.
fn str_len(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        delimited_len(text.len())
    }
}

/// The length of a varint field, zero when it is left out.
fn opt_varint_len(value: u64) -> usize {
    if value == 0 {
        0
    } else {
        varint_len(value)
    }
}

/// The length of one `labels` map entry's body (key = 1, value = 2).
fn label_body_len(name: &str, value: &str) -> usize {
    str_len(name) + str_len(value)
}

/// The seed's `LogEntry`: message = 1, timestamp = 2.
fn seed_len(entry: &EntryRef<'_>) -> usize {
    str_len(entry.message) + opt_varint_len(entry.timestamp as u64)
}

fn put_seed(entry: &EntryRef<'_>, buf: &mut BytesMut) {
    put_str(1, entry.message, buf);
    // int64 goes on the wire as its two's complement, like prost writes it.
    put_varint(2, entry.timestamp as u64, buf);
}

/// logtap.v1's `LogEntry`: message = 1, timestamp = 2, level = 3,
/// cursor = 4, labels = 5 (a map: one length-delimited entry per label).
fn v1_len(entry: &EntryRef<'_>) -> usize {
    let labels: usize = entry
        .labels()
        .map(|(name, value)| delimited_len(label_body_len(name, value)))
        .sum();
    seed_len(entry) + str_len(entry.level.as_str()) + opt_varint_len(entry.cursor) + labels
}

fn put_v1(entry: &EntryRef<'_>, buf: &mut BytesMut) {
    put_seed(entry, buf);
    put_str(3, entry.level.as_str(), buf);
    put_varint(4, entry.cursor, buf);
    for (name, value) in entry.labels() {
        put_key_and_varint(
            5,
            WireType::LengthDelimited,
            label_body_len(name, value) as u64,
            buf,
        );
        put_str(1, name, buf);
        put_str(2, value, buf);
    }
}

/// The encoder of a gRPC reading stream: each entry as one framed
/// message, and runs of the newest entries as the messages of their chunk,
/// encoded once for every stream that sends them (see `logtap_core::Run`).
#[derive(Debug, Default)]
pub struct GrpcEncoder<const V1: bool> {
    /// Where entries sent one by one are encoded.
    arena: Arena,
}

/// Entries in the seed's form.
pub type SeedEncoder = GrpcEncoder<false>;

/// Entries in logtap.v1's form.
pub type V1Encoder = GrpcEncoder<true>;

/// The framed messages of every entry of a chunk, as one encoder form
/// sends them; `None` if a record could not be read.
type EncodedChunk<const V1: bool> = Option<Encoded<V1>>;

/// A chunk's entries as framed messages, made once per chunk and form.
#[derive(Debug)]
pub struct Encoded<const V1: bool> {
    /// Every entry's message, framed, in cursor order.
    bytes: Bytes,
    /// Where each entry's message ends in `bytes`.
    ends: Vec<usize>,
    /// The trailer CRC over all the entries.
    crc: RunCrc,
}

impl<const V1: bool> GrpcEncoder<V1> {
    fn put(entry: &EntryRef<'_>, buf: &mut BytesMut) {
        if V1 {
            put_framed(v1_len(entry), buf, |buf| put_v1(entry, buf));
        } else {
            put_framed(seed_len(entry), buf, |buf| put_seed(entry, buf));
        }
    }

    fn encode_chunk(entries: logtap_core::Entries<'_>) -> EncodedChunk<V1> {
        let mut bytes = BytesMut::new();
        let mut ends = Vec::new();
        for entry in entries.clone() {
            Self::put(&entry.ok()?, &mut bytes);
            ends.push(bytes.len());
        }
        Some(Encoded {
            bytes: bytes.freeze(),
            ends,
            crc: run_crc(entries).ok()?,
        })
    }
}

/// The trailer CRC over `entries`, ready to join a stream's.
fn run_crc(entries: logtap_core::Entries<'_>) -> Result<RunCrc, StoreError> {
    let mut crc = Crc::default();
    let mut len = 0;
    for entry in entries {
        let entry = entry?;
        crc.add(entry.timestamp, entry.message);
        len += 8 + entry.message.len() as u64;
    }
    Ok(RunCrc::new(crc, len))
}

impl<const V1: bool> Encode for GrpcEncoder<V1> {
    type Out = Bytes;

    fn entry(&mut self, entry: &EntryRef<'_>) -> Bytes {
        if V1 {
            self.arena.v1(entry)
        } else {
            self.arena.seed(entry)
        }
    }

    fn takes_runs(&self) -> bool {
        true
    }

    fn run(&mut self, run: &Run<'_>) -> Result<(Bytes, RunCrc), StoreError> {
        let chunk: Arc<EncodedChunk<V1>> = run.derived(Self::encode_chunk);
        let Some(chunk) = chunk.as_ref() else {
            return Err(StoreError::unreadable_in_memory());
        };
        if run.skipped() == 0 {
            return Ok((chunk.bytes.clone(), chunk.crc));
        }
        // The run starts inside the chunk (the stream had read its first
        // records one by one): its own CRC, entry by entry.
        let from = chunk.ends[run.skipped() - 1];
        Ok((chunk.bytes.slice(from..), run_crc(run.entries())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtap_core::{Level, NewEntry};
    use logtap_proto::v1::LogEntry;
    use logtap_store::{Store, StoreConfig, SyncPolicy};
    use proptest::prelude::*;
    use prost::Message;

    /// The same entry built as a prost message: the model the encoding is
    /// checked against.
    fn prost_v1(entry: &EntryRef<'_>) -> LogEntry {
        LogEntry {
            message: entry.message.to_string(),
            timestamp: entry.timestamp,
            level: entry.level.as_str().to_string(),
            cursor: entry.cursor,
            labels: entry
                .labels()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// The body of one framed message, after checking its header.
    fn unframed(framed: Bytes) -> Bytes {
        assert_eq!(framed[0], 0, "not compressed");
        let len = u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize;
        assert_eq!(framed.len(), FRAME_HEADER + len, "one whole message");
        framed.slice(FRAME_HEADER..)
    }

    fn level() -> impl Strategy<Value = Level> {
        prop::sample::select(Level::ALL.to_vec())
    }

    /// A store in a fresh directory holding `entries`.
    fn store_with(entries: &[NewEntry]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.sync = SyncPolicy::Never;
        let store = Store::open(config).unwrap();
        store.append(entries).unwrap();
        (dir, store)
    }

    fn new_entry() -> impl Strategy<Value = NewEntry> {
        (
            any::<i64>(),
            level(),
            // Empty strings too, which proto3 leaves out.
            ".{0,40}",
            prop::collection::btree_map(".{0,8}", ".{0,8}", 0..4),
        )
            .prop_map(|(timestamp, level, message, labels)| NewEntry {
                timestamp,
                level,
                message,
                labels: labels.into_iter().collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the store holds, a prost client decodes exactly the
        /// entry prost itself would have sent; without labels (whose map
        /// prost writes in hash order) the bytes are prost's, byte for byte.
        #[test]
        fn entries_encode_as_prost_would(entries in prop::collection::vec(new_entry(), 1..20)) {
            let (_dir, store) = store_with(&entries);
            let mut reader = store.reader(Default::default()).unwrap();
            let mut arena = Arena::default();
            loop {
                let entry = match reader.step(usize::MAX).unwrap() {
                    logtap_core::Step::Entry(entry) => entry,
                    logtap_core::Step::End => break,
                    logtap_core::Step::Pending => continue,
                };
                let model = prost_v1(&entry);
                let v1 = unframed(arena.v1(&entry));
                prop_assert_eq!(LogEntry::decode(v1.clone()).unwrap(), model.clone());
                if model.labels.len() <= 1 {
                    prop_assert_eq!(&v1[..], &model.encode_to_vec()[..]);
                }
                let seed = logtap_proto::example::LogEntry {
                    message: model.message.clone(),
                    timestamp: model.timestamp,
                };
                prop_assert_eq!(&unframed(arena.seed(&entry))[..], &seed.encode_to_vec()[..]);
            }
        }
    }

    #[test]
    fn an_entry_larger_than_a_chunk_gets_a_chunk_of_its_own() {
        let message = "x".repeat(3 * ARENA_CHUNK);
        let (_dir, store) = store_with(&[NewEntry {
            timestamp: 1,
            level: Level::Error,
            message: message.clone(),
            labels: vec![],
        }]);
        let mut reader = store.reader(Default::default()).unwrap();
        let Ok(logtap_core::Step::Entry(entry)) = reader.step(usize::MAX) else {
            panic!("the entry is read back");
        };
        let mut arena = Arena::default();
        let small = unframed(arena.seed(&entry));
        let decoded = LogEntry::decode(unframed(arena.v1(&entry))).unwrap();
        assert_eq!(decoded.message, message);
        assert_eq!(small.len(), delimited_len(message.len()) + 2);
    }
}

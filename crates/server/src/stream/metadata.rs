//! Header and trailer names (part of the contract), request ids, and the
//! CRC a client checks the stream against.

use logtap_store::checksum;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

/// Header and trailer: the client's request id, echoed, or a new one.
pub const REQUEST_ID: &str = "x-request-id";
/// Header on GetLogs without follow, when the filter is level/time/cursor
/// only: exactly how many entries the stream will carry.
pub const TOTAL_COUNT: &str = "logtap-total-count";
/// Trailer: how many entries the stream carried.
pub const SENT: &str = "logtap-sent";
/// Trailer: the cursor to resume after.
pub const NEXT_CURSOR: &str = "logtap-next-cursor";
/// Trailer: CRC-32C over every entry sent; see [`Crc`].
pub const CRC32C: &str = "logtap-crc32c";
/// On a failed Push: how many entries the earlier batches stored.
pub const STORED: &str = "logtap-stored";
/// On a failed Push: the cursor of the last entry stored.
pub const LAST_CURSOR: &str = "logtap-last-cursor";

/// The longest client request id echoed; a longer one is replaced, so a
/// client cannot make every log line and trailer arbitrarily large.
const MAX_REQUEST_ID: usize = 128;

/// A request's id, safe to put in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's `x-request-id` when it is short printable ASCII, else a
    /// new UUID v4.
    pub fn from_headers(headers: &http::HeaderMap) -> RequestId {
        headers
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .and_then(RequestId::accept)
            .unwrap_or_else(RequestId::generate)
    }

    /// Like [`RequestId::from_headers`], for gRPC request metadata.
    pub fn from_metadata(metadata: &MetadataMap) -> RequestId {
        metadata
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .and_then(RequestId::accept)
            .unwrap_or_else(RequestId::generate)
    }

    /// A new random id.
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    fn accept(id: &str) -> Option<RequestId> {
        let printable = id.bytes().all(|b| b.is_ascii_graphic());
        (!id.is_empty() && id.len() <= MAX_REQUEST_ID && printable)
            .then(|| RequestId(id.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Adds the id to `metadata` (headers, trailers, or an error status').
    pub fn insert_into(&self, metadata: &mut MetadataMap) {
        // The id was checked to be printable ASCII, so this cannot fail; if
        // it ever did, the answer goes out without the id rather than not
        // at all.
        if let Ok(value) = AsciiMetadataValue::try_from(self.0.as_str()) {
            metadata.insert(REQUEST_ID, value);
        }
    }

    /// Adds the id to an HTTP answer's headers, as [`Self::insert_into`]
    /// does to gRPC metadata.
    pub fn insert_into_headers(&self, headers: &mut http::HeaderMap) {
        if let Ok(value) = http::HeaderValue::from_str(&self.0) {
            headers.insert(REQUEST_ID, value);
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// CRC-32C (Castagnoli) over the entries of one stream, in the order sent,
/// each as its timestamp's 8 bytes (little-endian two's complement) followed
/// by its message's UTF-8 bytes. Only timestamp and message count, so a
/// client that speaks only the seed's contract can check it too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Crc(u32);

/// The CRC of a run of entries sent as one (see `crate::grpc::wire`), made once
/// for every stream that sends it, and what joining it to a stream's CRC
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCrc {
    /// Over the run's entries alone, from zero.
    crc: Crc,
    /// x^(8·bytes) mod P, bytes being what `crc` covers.
    shift: u32,
}

impl RunCrc {
    /// The CRC of `crc` over `len` bytes, ready to be joined.
    pub fn new(crc: Crc, len: u64) -> RunCrc {
        RunCrc {
            crc,
            shift: x_to_the_8n(len),
        }
    }
}

/// CRC-32C's polynomial, bit-reflected.
const POLY: u32 = 0x82f6_3b78;

/// a·b mod P, in the bit-reflected form CRC-32C uses (x^0 is the top bit).
fn multiply_mod_p(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 1u32 << 31;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        bit >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

/// x^(8n) mod P: by squaring, x^(2^k) for each bit k of 8n.
fn x_to_the_8n(n: u64) -> u32 {
    // x^1 in reflected form, then x^8.
    let mut power = 1u32 << 30;
    for _ in 0..3 {
        power = multiply_mod_p(power, power);
    }
    let mut result = 1u32 << 31;
    let mut n = n;
    while n != 0 {
        if n & 1 != 0 {
            result = multiply_mod_p(power, result);
        }
        power = multiply_mod_p(power, power);
        n >>= 1;
    }
    result
}

impl Crc {
    /// Adds one entry.
    pub fn add(&mut self, timestamp: i64, message: &str) {
        // The timestamp goes in as one 8-byte step: casting to u64 keeps its
        // two's complement bytes, and the step appends them little-endian.
        let crc = checksum::crc32c_append_u64(self.0, timestamp as u64);
        self.0 = checksum::crc32c_append(crc, message.as_bytes());
    }

    /// This CRC followed by the entries of `run`: what adding them one by
    /// one would give.
    pub fn then(self, run: &RunCrc) -> Crc {
        // For CRC-32C (initial and final XOR all ones), appending bytes B
        // to a CRC c gives c·x^(8|B|) mod P, XOR the CRC of B alone: one
        // multiplication by a constant the run computed once.
        Crc(multiply_mod_p(run.shift, self.0) ^ run.crc.0)
    }

    /// The CRC so far.
    #[cfg(test)]
    pub fn value(self) -> u32 {
        self.0
    }

    /// The trailer form: 8 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:08x}", self.0)
    }
}

/// Puts a number in metadata; digits are always valid ASCII.
fn insert_number(metadata: &mut MetadataMap, name: &'static str, value: u64) {
    metadata.insert(name, AsciiMetadataValue::from(value));
}

/// The response headers of a reading stream.
pub fn stream_headers(request_id: &RequestId, total_count: Option<u64>) -> MetadataMap {
    let mut headers = MetadataMap::new();
    request_id.insert_into(&mut headers);
    if let Some(count) = total_count {
        insert_number(&mut headers, TOTAL_COUNT, count);
    }
    headers
}

/// What the trailers report when a stream ends: the stream (`tail.rs`)
/// fills it in, the transports write it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Entries sent.
    pub sent: u64,
    /// The cursor to resume after: everything up to it was either sent or
    /// considered and rejected by the filters.
    pub next_cursor: u64,
    /// CRC-32C over the entries sent.
    pub crc: Crc,
}

/// The trailers of a reading stream.
pub fn stream_trailers(request_id: &RequestId, summary: &Summary) -> MetadataMap {
    let mut trailers = MetadataMap::new();
    request_id.insert_into(&mut trailers);
    insert_number(&mut trailers, SENT, summary.sent);
    insert_number(&mut trailers, NEXT_CURSOR, summary.next_cursor);
    if let Ok(value) = AsciiMetadataValue::try_from(summary.crc.to_hex()) {
        trailers.insert(CRC32C, value);
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_joins_a_crc_as_its_entries_one_by_one_would() {
        let entries: Vec<(i64, String)> = (0..50)
            .map(|i| (i * 7 - 100, "m".repeat(i as usize * 3)))
            .collect();
        for split in [0, 1, 17, 50] {
            let mut one_by_one = Crc::default();
            for (timestamp, message) in &entries {
                one_by_one.add(*timestamp, message);
            }
            let mut head = Crc::default();
            for (timestamp, message) in &entries[..split] {
                head.add(*timestamp, message);
            }
            let mut run = Crc::default();
            let mut len = 0;
            for (timestamp, message) in &entries[split..] {
                run.add(*timestamp, message);
                len += 8 + message.len() as u64;
            }
            assert_eq!(
                head.then(&RunCrc::new(run, len)),
                one_by_one,
                "split at {split}"
            );
            assert_eq!(
                crc32c::crc32c_combine(head.value(), run.value(), len as usize),
                one_by_one.value()
            );
        }
    }

    #[test]
    fn crc_is_castagnoli_over_timestamp_then_message() {
        // The check value of CRC-32C over "123456789" is e3069283.
        let direct = Crc(crc32c::crc32c_append(0, b"123456789"));
        assert_eq!(direct.to_hex(), "e3069283");
        let mut crc = Crc::default();
        crc.add(1, "a");
        let mut bytes = 1i64.to_le_bytes().to_vec();
        bytes.push(b'a');
        assert_eq!(crc.value(), crc32c::crc32c(&bytes));
        // A negative timestamp and a message long enough for 8-byte steps
        // and a tail, against the crate over the same bytes.
        let message = "GET /api/v1/items/0000000042 200 OK user=élodie latency_ms=12";
        crc.add(-1_700_000_000_000_000_000, message);
        bytes.extend_from_slice(&(-1_700_000_000_000_000_000i64).to_le_bytes());
        bytes.extend_from_slice(message.as_bytes());
        assert_eq!(crc.value(), crc32c::crc32c(&bytes));
        assert_eq!(Crc::default().to_hex(), "00000000");
    }

    #[test]
    fn client_request_ids_are_echoed_only_when_safe() {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID, http::HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::from_headers(&headers).as_str(), "abc-123");
        headers.insert(REQUEST_ID, http::HeaderValue::from_static("has space"));
        assert_ne!(RequestId::from_headers(&headers).as_str(), "has space");
        let long = "x".repeat(MAX_REQUEST_ID + 1);
        headers.insert(
            REQUEST_ID,
            http::HeaderValue::from_str(&long).expect("ascii"),
        );
        assert_eq!(RequestId::from_headers(&headers).as_str().len(), 36);
    }
}

//! CRC-32C on short inputs: `logtap_store::checksum` against the `crc32c`
//! crate it falls back to. `cargo bench -p logtap-store --bench checksum`.
//!
//! The 8-, 80- and 100-byte cases are the per-entry inputs (a timestamp, a
//! typical message, a record payload). Each runs from an 8-byte-aligned
//! start and from an odd one, since records sit at any offset in a read
//! buffer and the crate's cost depends on the alignment. The longer cases
//! bracket `SHORT_MAX`, the length past which the module hands over to the
//! crate's parallel loop.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use logtap_store::checksum;
use std::hint::black_box;
use std::time::Duration;

/// Bytes that look like log text; the CRC cost does not depend on them.
fn text(len: usize) -> Vec<u8> {
    b"GET /api/v1/items/0000000042 200 OK user=alice latency_ms=12 region=eu-west-1 "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32c");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let cases = [8, 80, 100]
        .into_iter()
        .flat_map(|len| [(len, 0), (len, 3)])
        .chain([256, 512, 768, 1024].into_iter().map(|len| (len, 3)));
    for (len, offset) in cases {
        // A Vec's buffer is at least 8-byte aligned, so `offset` sets the
        // alignment of the slice.
        let buffer = text(len + offset);
        let bytes = &buffer[offset..];
        let id = format!("{len}B+{offset}");
        group.bench_with_input(BenchmarkId::new("crate", &id), bytes, |b, bytes| {
            b.iter(|| crc32c::crc32c_append(black_box(0x1234_5678), black_box(bytes)))
        });
        group.bench_with_input(BenchmarkId::new("checksum", &id), bytes, |b, bytes| {
            b.iter(|| checksum::crc32c_append(black_box(0x1234_5678), black_box(bytes)))
        });
    }

    // The server's trailer CRC per entry: a timestamp, then an 80-byte
    // message, as two crate calls or as one 8-byte step and one call.
    let message = text(80);
    let timestamp = 1_700_000_000_000_000_000i64;
    group.bench_function("trailer entry/crate", |b| {
        b.iter(|| {
            let crc = crc32c::crc32c_append(black_box(0), &black_box(timestamp).to_le_bytes());
            crc32c::crc32c_append(crc, black_box(&message))
        })
    });
    group.bench_function("trailer entry/checksum", |b| {
        b.iter(|| {
            let crc = checksum::crc32c_append_u64(black_box(0), black_box(timestamp) as u64);
            checksum::crc32c_append(crc, black_box(&message))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

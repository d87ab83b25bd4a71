//! CRC-32C (Castagnoli) tuned for the short inputs logtap checksums per
//! entry: a record's payload (about a hundred bytes) and the stream
//! trailer's timestamp and message.
//!
//! The `crc32c` crate is fast on long buffers, but every call splits its
//! input at 8-byte alignment, feeds the unaligned head and tail to the CPU
//! one byte at a time (3 cycles of latency each), and goes through its
//! parallel path even when that path has nothing to do. For a hundred bytes
//! that fixed cost is most of the work. Here, short inputs are read as
//! unaligned little-endian 8-byte words (which x86_64 loads at full speed)
//! and the tail as at most one 4-, one 2- and one 1-byte step. Long inputs,
//! where the crate's three-way parallel loop pays off, and CPUs without
//! SSE4.2 go to the crate.
//!
//! Every function returns exactly what `crc32c::crc32c_append` returns for
//! the same bytes: the server's `logtap-crc32c` trailer is a wire contract.

/// The longest input taken by the short path. Below about 768 bytes the
/// crate too runs one serial chain of 8-byte steps, so the short path is
/// never slower there; past that the crate's three independent chains are
/// faster. The gain is in the crate's fixed cost, which the chain's
/// latency hides on longer inputs, so 256 keeps the gain with a margin
/// below the crate's parallel path (measured: bench/RESULTS.md, "Third
/// session" and "Figures that comments used to carry").
const SHORT_MAX: usize = 256;

/// The CRC-32C of `bytes`; the same as `crc32c_append(0, bytes)`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c_append(0, bytes)
}

/// Extends `crc`, the CRC-32C of some bytes, with `bytes`: the result is
/// the CRC-32C of the concatenation. Starting from 0 gives the CRC of
/// `bytes` alone.
#[inline]
pub fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() <= SHORT_MAX && has_sse42() {
        // SAFETY: `has_sse42` has just confirmed that this CPU supports
        // SSE4.2, the only requirement of `x86::append`.
        return unsafe { x86::append(crc, bytes) };
    }
    crc32c::crc32c_append(crc, bytes)
}

/// Extends `crc` with the 8 little-endian bytes of `value`, in one hardware
/// step where available: the same result as
/// `crc32c_append(crc, &value.to_le_bytes())`. A signed value cast with
/// `as u64` keeps its two's complement bytes.
#[inline]
pub fn crc32c_append_u64(crc: u32, value: u64) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if has_sse42() {
        // SAFETY: `has_sse42` has just confirmed that this CPU supports
        // SSE4.2, the only requirement of `x86::append_u64`.
        return unsafe { x86::append_u64(crc, value) };
    }
    crc32c::crc32c_append(crc, &value.to_le_bytes())
}

/// Whether the CPU has the SSE4.2 CRC32 instruction. std caches the CPUID
/// answer in a static after the first call, so this is one relaxed atomic
/// load and a bit test; a build with `-C target-feature=+sse4.2` makes it
/// a constant `true`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_sse42() -> bool {
    std::arch::is_x86_feature_detected!("sse4.2")
}

/// The SSE4.2 code path. The intrinsics work on the CRC register without
/// the pre- and post-inversion of the CRC-32C definition, so both functions
/// invert on the way in and out, exactly as the crate does.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{_mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};

    /// [`super::crc32c_append`] with the CRC32 instruction on 8-byte words,
    /// then on the remaining 4, 2 and 1 bytes. The instruction consumes its
    /// operand least significant byte first, so a little-endian word gives
    /// the same result as its bytes in order.
    ///
    /// # Safety
    ///
    /// The CPU must support SSE4.2.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn append(crc: u32, bytes: &[u8]) -> u32 {
        let mut words = bytes.chunks_exact(8);
        let mut state = u64::from(!crc);
        for word in &mut words {
            state = _mm_crc32_u64(state, u64::from_le_bytes(word.try_into().unwrap()));
        }
        // The 64-bit instruction leaves the upper half of its result zero,
        // so the cast drops nothing.
        let mut state = state as u32;
        let mut tail = words.remainder();
        if let Some((four, rest)) = tail.split_first_chunk::<4>() {
            state = _mm_crc32_u32(state, u32::from_le_bytes(*four));
            tail = rest;
        }
        if let Some((two, rest)) = tail.split_first_chunk::<2>() {
            state = _mm_crc32_u16(state, u16::from_le_bytes(*two));
            tail = rest;
        }
        if let Some(&byte) = tail.first() {
            state = _mm_crc32_u8(state, byte);
        }
        !state
    }

    /// [`super::crc32c_append_u64`] as a single CRC32 instruction.
    ///
    /// # Safety
    ///
    /// The CPU must support SSE4.2.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn append_u64(crc: u32, value: u64) -> u32 {
        !(_mm_crc32_u64(u64::from(!crc), value) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c_append(0x1234_5678, b""), 0x1234_5678);
    }

    #[test]
    fn both_sides_of_the_threshold() {
        let bytes: Vec<u8> = (0..2 * SHORT_MAX as u32 + 9).map(|i| i as u8).collect();
        for len in [SHORT_MAX - 1, SHORT_MAX, SHORT_MAX + 1, bytes.len()] {
            let bytes = &bytes[..len];
            assert_eq!(crc32c(bytes), crc32c::crc32c(bytes), "length {len}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Both paths, every tail length and any start offset (so any
        /// alignment) agree with the crate.
        #[test]
        fn append_matches_the_crate(
            crc in any::<u32>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            skip in 0usize..8,
        ) {
            let bytes = &bytes[skip.min(bytes.len())..];
            prop_assert_eq!(crc32c_append(crc, bytes), crc32c::crc32c_append(crc, bytes));
            prop_assert_eq!(crc32c(bytes), crc32c::crc32c(bytes));
        }

        #[test]
        fn append_u64_matches_the_crate(crc in any::<u32>(), value in any::<u64>()) {
            prop_assert_eq!(
                crc32c_append_u64(crc, value),
                crc32c::crc32c_append(crc, &value.to_le_bytes())
            );
        }
    }
}

//! A sealed segment's filters: for each block, a Bloom filter of its text
//! tokens and one of its label tokens (see `tokens.rs`), cut into buckets
//! and stored by bucket, so a search reads a few hundred bytes a segment,
//! not every filter.
//!
//! A token lives in one bucket of 64 bytes: 60 bytes of bits, then a
//! CRC-32C of them. Every block of a segment has the same number of
//! buckets, and the file keeps each bucket index's buckets together, one
//! per block:
//!
//! ```text
//! row 0:  block 0's bucket 0, block 1's bucket 0, ..., block n-1's bucket 0
//! row 1:  block 0's bucket 1, ...
//! ```
//!
//! A search token falls in the same bucket index in every block, so it
//! costs one read of one row (`n` × 64 bytes) per segment, whatever the
//! size of the store; the segment's filters are never loaded whole, and
//! nothing is kept in memory between searches.
//!
//! A text search needs several tokens and a block passes only if it holds
//! all of them, so a few bits per text token keep false passes rare while
//! the filters stay a small part of the block's bytes. A label match is
//! one token, so label tokens get many more bits: they are few (a block's
//! services and hosts), and a label filter that let a twentieth of the
//! blocks through would cost a rare-label search a twentieth of the store.

use crate::checksum;

/// The bytes of a bucket: its bits, then their CRC-32C.
pub(crate) const BUCKET_BYTES: usize = 64;
/// The bits of a bucket.
const BUCKET_BITS: usize = (BUCKET_BYTES - 4) * 8;

/// How one kind of token is filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kind {
    /// Bits per distinct token.
    pub bits_per_token: usize,
    /// Bits set (and tested) per token.
    pub probes: u8,
}

/// Text tokens: a lone token passes by chance about 6% of the time, a
/// pattern of three tokens about 0.02%.
pub(crate) const TEXT: Kind = Kind {
    bits_per_token: 6,
    probes: 4,
};

/// Label tokens: a lone token passes by chance about 0.05% of the time.
pub(crate) const LABELS: Kind = Kind {
    bits_per_token: 16,
    probes: 11,
};

/// How a sealed file's filters were made, from its footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probes {
    pub text: u8,
    pub labels: u8,
}

/// The buckets each block gets when the fullest block of the segment holds
/// `most_tokens` distinct tokens of `kind`.
pub(crate) fn buckets_for(most_tokens: usize, kind: Kind) -> u32 {
    (most_tokens * kind.bits_per_token)
        .div_ceil(BUCKET_BITS)
        .max(1) as u32
}

/// The rows of a segment's filter of one kind: `blocks[i]` holds block
/// `i`'s distinct tokens.
pub(crate) fn build(blocks: &[Vec<u64>], buckets: u32, probes: u8) -> Vec<u8> {
    let n = blocks.len();
    let mut rows = vec![0u8; buckets as usize * n * BUCKET_BYTES];
    for (block, tokens) in blocks.iter().enumerate() {
        for &token in tokens {
            let at = (bucket_of(token, buckets) * n + block) * BUCKET_BYTES;
            for bit in positions(token, probes) {
                rows[at + bit / 8] |= 1 << (bit % 8);
            }
        }
    }
    for bucket in rows.chunks_exact_mut(BUCKET_BYTES) {
        let crc = checksum::crc32c(&bucket[..BUCKET_BYTES - 4]);
        bucket[BUCKET_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    rows
}

/// Which row of a segment's filter `token` is in.
pub(crate) fn bucket_of(token: u64, buckets: u32) -> usize {
    let spread = token.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    ((spread * buckets as u64) >> 32) as usize
}

/// Clears `candidates[i]` for every block `i` whose bucket in `row` (the
/// row of `token`) does not hold `token`. A bucket that fails its
/// checksum rules nothing out: damage never hides entries.
pub(crate) fn sift(row: &[u8], token: u64, probes: u8, candidates: &mut [bool]) {
    for (bucket, candidate) in row.chunks_exact(BUCKET_BYTES).zip(candidates) {
        if !*candidate {
            continue;
        }
        let (bits, crc) = bucket.split_at(BUCKET_BYTES - 4);
        if checksum::crc32c(bits) != u32::from_le_bytes(crc.try_into().unwrap()) {
            continue;
        }
        *candidate = positions(token, probes).all(|bit| bits[bit / 8] & (1 << (bit % 8)) != 0);
    }
}

/// The bits of `token` in its bucket: double hashing on its two halves,
/// each reduced to `0..BUCKET_BITS` by multiplication.
fn positions(token: u64, probes: u8) -> impl Iterator<Item = usize> {
    let low = token as u32;
    let high = (token >> 32) as u32 | 1;
    (0..probes as u32).map(move |i| {
        let mixed = low.wrapping_add(i.wrapping_mul(high));
        ((mixed as u64 * BUCKET_BITS as u64) >> 32) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_tokens(seed: u64, n: usize) -> Vec<u64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect()
    }

    /// The blocks whose filter may hold `token`.
    fn passing(blocks: &[Vec<u64>], kind: Kind, token: u64) -> Vec<bool> {
        let most = blocks.iter().map(Vec::len).max().unwrap_or(0);
        let buckets = buckets_for(most, kind);
        let rows = build(blocks, buckets, kind.probes);
        let row_len = blocks.len() * BUCKET_BYTES;
        let at = bucket_of(token, buckets) * row_len;
        let mut candidates = vec![true; blocks.len()];
        sift(&rows[at..at + row_len], token, kind.probes, &mut candidates);
        candidates
    }

    #[test]
    fn every_token_put_in_is_found_and_most_others_are_not() {
        for (kind, n, limit) in [(TEXT, 10_000, 750), (LABELS, 300, 30)] {
            let blocks = vec![
                random_tokens(0x1234_5678_9abc_def0, n),
                random_tokens(0x0fed_cba9_8765_4321, n / 2),
            ];
            for (i, tokens) in blocks.iter().enumerate() {
                for &token in tokens {
                    assert!(passing(&blocks, kind, token)[i]);
                }
            }
            let strangers = random_tokens(0x5555_aaaa_5555_aaaa, 10_000);
            let passes = strangers
                .iter()
                .filter(|&&t| passing(&blocks, kind, t)[0])
                .count();
            assert!(passes < limit, "{kind:?}: {passes} of 10,000 passed");
        }
    }

    #[test]
    fn a_block_without_tokens_holds_none_and_a_damaged_bucket_rules_nothing_out() {
        let blocks = vec![vec![1, 2, 3], vec![]];
        assert_eq!(passing(&blocks, LABELS, 2), [true, false]);
        let buckets = buckets_for(3, TEXT);
        let mut rows = build(&blocks, buckets, TEXT.probes);
        let row = bucket_of(77, buckets) * 2 * BUCKET_BYTES;
        rows[row + BUCKET_BYTES + 3] ^= 0x10;
        let mut candidates = vec![true, true];
        sift(
            &rows[row..row + 2 * BUCKET_BYTES],
            77,
            TEXT.probes,
            &mut candidates,
        );
        assert!(candidates[1], "the damaged bucket passes");
    }
}

//! A block's filter: a Bloom filter over its tokens (see `tokens.rs`).
//!
//! Sized per block from the number of distinct tokens it holds, so a block
//! of repetitive lines costs a few bytes and one of random identifiers
//! pays for each. A search needs several tokens and a block passes only if
//! it holds all of them, so a few bits per token keep false passes rare
//! while the filter stays a small part of the block's bytes.

/// Bits per distinct token. With [`PROBES`] probes a lone token passes by
/// chance about 5.6% of the time; a pattern with three tokens about 0.02%.
pub(crate) const BITS_PER_TOKEN: usize = 6;
/// Bits set (and tested) per token: the best number for 6 bits a token.
pub(crate) const PROBES: u8 = 4;

/// Builds the filter for `tokens` (sorted, no duplicates).
pub(crate) fn build(tokens: &[u64]) -> Vec<u8> {
    let bits = (tokens.len() * BITS_PER_TOKEN).max(64).next_multiple_of(64);
    let mut filter = vec![0u8; bits / 8];
    for &token in tokens {
        for bit in positions(token, bits, PROBES) {
            filter[bit / 8] |= 1 << (bit % 8);
        }
    }
    filter
}

/// Whether `filter` (made with `probes` probes per token) may hold every
/// one of `tokens`; false means none of its entries holds them all.
pub(crate) fn may_hold_all(filter: &[u8], probes: u8, tokens: &[u64]) -> bool {
    let bits = filter.len() * 8;
    if bits == 0 {
        return true;
    }
    tokens.iter().all(|&token| {
        positions(token, bits, probes).all(|bit| filter[bit / 8] & (1 << (bit % 8)) != 0)
    })
}

/// The bits of `token`: double hashing on its two halves, each reduced to
/// `0..bits` by multiplication rather than division.
fn positions(token: u64, bits: usize, probes: u8) -> impl Iterator<Item = usize> {
    let low = token as u32;
    let high = (token >> 32) as u32 | 1;
    (0..probes as u32).map(move |i| {
        let mixed = low.wrapping_add(i.wrapping_mul(high));
        ((mixed as u64 * bits as u64) >> 32) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_put_in_is_found_and_most_others_are_not() {
        // Tokens are hashes: any 64 bits alike.
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tokens: Vec<u64> = (0..10_000).map(|_| random()).collect();
        let mut sorted = tokens.clone();
        sorted.sort_unstable();
        let filter = build(&sorted);
        assert!(tokens.iter().all(|&t| may_hold_all(&filter, PROBES, &[t])));
        let strangers = (0..10_000)
            .map(|_| random())
            .filter(|&t| may_hold_all(&filter, PROBES, &[t]))
            .count();
        // About 5.6% by chance (see `BITS_PER_TOKEN`).
        assert!(strangers < 750, "{strangers} of 10,000 passed");
        assert!(may_hold_all(&filter, PROBES, &[]));
    }
}

//! A block's filter: Bloom filters over its tokens (see `tokens.rs`), one
//! for the text and one for the labels.
//!
//! ```text
//! u32 text filter length | text filter | label filter
//! ```
//!
//! Each is sized from the number of distinct tokens it holds, so a block
//! of repetitive lines costs a few bytes and one of random identifiers
//! pays for each. A text search needs several tokens and a block passes
//! only if it holds all of them, so a few bits per text token keep false
//! passes rare while the filter stays a small part of the block's bytes.
//! A label match is one token, so label tokens get many more bits: they
//! are few (a block's services and hosts), and a label filter that let a
//! twentieth of the blocks through would cost a rare-label search a
//! twentieth of the store.

/// Bits per distinct text token. With [`TEXT_PROBES`] probes a lone token
/// passes by chance about 5.6% of the time; a pattern with three tokens
/// about 0.02%.
pub(crate) const TEXT_BITS_PER_TOKEN: usize = 6;
/// Bits set (and tested) per text token: the best number for 6 bits.
pub(crate) const TEXT_PROBES: u8 = 4;
/// Bits per distinct label token: a lone token passes by chance about
/// 0.05% of the time.
pub(crate) const LABEL_BITS_PER_TOKEN: usize = 16;
/// Bits set (and tested) per label token: the best number for 16 bits.
pub(crate) const LABEL_PROBES: u8 = 11;

/// Builds a block's filter from its text and label tokens (each sorted,
/// no duplicates).
pub(crate) fn build(text: &[u64], labels: &[u64]) -> Vec<u8> {
    let text = bits(text, TEXT_BITS_PER_TOKEN, TEXT_PROBES);
    let labels = bits(labels, LABEL_BITS_PER_TOKEN, LABEL_PROBES);
    let mut filter = Vec::with_capacity(4 + text.len() + labels.len());
    filter.extend_from_slice(&(text.len() as u32).to_le_bytes());
    filter.extend_from_slice(&text);
    filter.extend_from_slice(&labels);
    filter
}

/// How a block's filter was made, from its file's footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probes {
    pub text: u8,
    pub labels: u8,
}

/// Whether `filter` may hold every one of `text` and `labels`; false means
/// none of its block's entries holds them all. A filter whose parts do
/// not add up rules nothing out.
pub(crate) fn may_hold_all(filter: &[u8], probes: Probes, text: &[u64], labels: &[u64]) -> bool {
    let Some(len) = filter.get(..4) else {
        return true;
    };
    let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
    let Some((text_bits, label_bits)) = filter[4..].split_at_checked(len) else {
        return true;
    };
    holds(text_bits, probes.text, text) && holds(label_bits, probes.labels, labels)
}

/// One Bloom filter's bits for `tokens`.
fn bits(tokens: &[u64], bits_per_token: usize, probes: u8) -> Vec<u8> {
    if tokens.is_empty() {
        return Vec::new();
    }
    let bits = (tokens.len() * bits_per_token).max(64).next_multiple_of(64);
    let mut filter = vec![0u8; bits / 8];
    for &token in tokens {
        for bit in positions(token, bits, probes) {
            filter[bit / 8] |= 1 << (bit % 8);
        }
    }
    filter
}

/// Whether one Bloom filter may hold every one of `tokens`. An empty
/// filter holds nothing (its block had no such tokens).
fn holds(filter: &[u8], probes: u8, tokens: &[u64]) -> bool {
    let bits = filter.len() * 8;
    if tokens.is_empty() {
        return true;
    }
    if bits == 0 {
        return false;
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

    const PROBES: Probes = Probes {
        text: TEXT_PROBES,
        labels: LABEL_PROBES,
    };

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

    #[test]
    fn every_token_put_in_is_found_and_most_others_are_not() {
        // Tokens are hashes: any 64 bits alike.
        let text = random_tokens(0x1234_5678_9abc_def0, 10_000);
        let labels = random_tokens(0x0fed_cba9_8765_4321, 300);
        let mut sorted_text = text.clone();
        sorted_text.sort_unstable();
        let mut sorted_labels = labels.clone();
        sorted_labels.sort_unstable();
        let filter = build(&sorted_text, &sorted_labels);
        assert!(text
            .iter()
            .all(|&t| may_hold_all(&filter, PROBES, &[t], &[])));
        assert!(labels
            .iter()
            .all(|&t| may_hold_all(&filter, PROBES, &[], &[t])));
        let strangers = random_tokens(0x5555_aaaa_5555_aaaa, 10_000);
        let text_passes = strangers
            .iter()
            .filter(|&&t| may_hold_all(&filter, PROBES, &[t], &[]))
            .count();
        // About 5.6% by chance (see `TEXT_BITS_PER_TOKEN`).
        assert!(text_passes < 750, "{text_passes} of 10,000 passed");
        let label_passes = strangers
            .iter()
            .filter(|&&t| may_hold_all(&filter, PROBES, &[], &[t]))
            .count();
        // About 0.05% by chance (see `LABEL_BITS_PER_TOKEN`).
        assert!(label_passes < 30, "{label_passes} of 10,000 passed");
        assert!(may_hold_all(&filter, PROBES, &[], &[]));
    }

    #[test]
    fn a_block_without_labels_holds_no_label_and_a_torn_filter_rules_nothing_out() {
        let filter = build(&[1, 2, 3], &[]);
        assert!(!may_hold_all(&filter, PROBES, &[], &[42]));
        assert!(may_hold_all(&filter, PROBES, &[2], &[]));
        assert!(may_hold_all(&filter[..3], PROBES, &[99], &[42]));
        let mut wrong = filter.clone();
        wrong[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(may_hold_all(&wrong, PROBES, &[99], &[42]));
    }
}

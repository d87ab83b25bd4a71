//! The tokens a sealed block's filter holds, and the tokens a search needs.
//!
//! A text search is a substring search, so a filter of whole words cannot
//! rule a block out: the pattern's first and last words may be parts of
//! longer words in a line. Instead the filter holds the line's
//! *minimizers*: slide a window of `w` consecutive `k`-byte substrings
//! (k-mers) over the line's folded text and keep, from each window, the
//! k-mer with the smallest hash. A pattern of at least `k + w - 1` bytes
//! holds whole windows of its own, and a line containing the pattern holds
//! the same windows, whose minimizers are picked the same way: every
//! minimizer of the pattern is a minimizer of the line. So a block whose
//! filter lacks one of them holds no line containing the pattern, and
//! skipping it is exact. Consecutive windows mostly share their minimizer,
//! so a line adds about `2 / (w + 1)` tokens per byte, and text that
//! repeats across lines (the words of a message template) adds nothing
//! new to a block.
//!
//! Text is folded first: every character lowercased on its own
//! (`char::to_lowercase`), which keeps a substring a substring, so one
//! filter serves case-sensitive and case-insensitive searches alike.
//!
//! Labels add one token per `(name, value)` pair.

use logtap_core::Search;

/// How lines are cut into tokens; written into every sealed file, so the
/// scheme can change without misreading older files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scheme {
    /// Bytes per k-mer (at most 8).
    pub k: u8,
    /// K-mers per window.
    pub w: u8,
}

impl Scheme {
    /// The scheme new files are written with. 6-byte k-mers: with fewer,
    /// the k-mers of hexadecimal ids and of numbers are so few in kind
    /// (16^5, 10^5) that a block's other ids and numbers hold a search's
    /// k-mers by coincidence, and a trace id search passes blocks that
    /// cannot match. Windows of 5: a 16-digit trace id has at least two
    /// minimizers, each of which a block must hold, and texts of 10 bytes
    /// and more are searchable (bench/RESULTS.md, "Store v2").
    pub const CURRENT: Scheme = Scheme { k: 6, w: 5 };

    /// The shortest text a search can skip blocks by.
    pub fn min_len(self) -> usize {
        self.k as usize + self.w as usize - 1
    }

    /// Calls `emit` with the token of every minimizer of `folded` (each
    /// position once; the same k-mer at two positions twice).
    pub fn minimizers(self, folded: &[u8], hashes: &mut Vec<u64>, mut emit: impl FnMut(u64)) {
        let (k, w) = (self.k as usize, self.w as usize);
        if folded.len() < self.min_len() {
            return;
        }
        hashes.clear();
        hashes.extend(folded.windows(k).map(kmer_token));
        // The smallest of each window, leftmost on ties, found again only
        // when the current one slides out: linear in the text.
        let mut best = usize::MAX;
        for start in 0..=hashes.len() - w {
            let end = start + w;
            if best == usize::MAX || best < start {
                best = start;
                for i in start + 1..end {
                    if hashes[i] < hashes[best] {
                        best = i;
                    }
                }
                emit(hashes[best]);
            } else if hashes[end - 1] < hashes[best] {
                best = end - 1;
                emit(hashes[best]);
            }
        }
    }
}

/// Lowercases every character of `text` on its own into `out` (replacing
/// its contents).
pub(crate) fn fold(text: &str, out: &mut Vec<u8>) {
    out.clear();
    if text.is_ascii() {
        out.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
        return;
    }
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        for lower in c.to_lowercase() {
            out.extend_from_slice(lower.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// The token of a k-mer: its bytes mixed into 64 bits.
fn kmer_token(kmer: &[u8]) -> u64 {
    let mut value = 0u64;
    for &byte in kmer {
        value = value << 8 | byte as u64;
    }
    mix(value ^ (kmer.len() as u64) << 56)
}

/// The token of a label pair: FNV-1a over name, a separator no UTF-8 text
/// holds, and value, then mixed; distinct from every k-mer token but by
/// chance.
pub(crate) fn label_token(name: &str, value: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in name
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(value.as_bytes())
    {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(hash ^ 0x6c61_6265_6c73_0000)
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Every token of one entry: its text's minimizers and its labels.
pub(crate) struct Tokenizer {
    folded: Vec<u8>,
    hashes: Vec<u64>,
}

impl Tokenizer {
    pub fn new() -> Tokenizer {
        Tokenizer {
            folded: Vec::new(),
            hashes: Vec::new(),
        }
    }

    /// Appends the entry's text tokens to `text` and its label tokens to
    /// `labels`.
    pub fn entry<'a>(
        &mut self,
        scheme: Scheme,
        message: &str,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
        text: &mut Vec<u64>,
        label_tokens: &mut Vec<u64>,
    ) {
        fold(message, &mut self.folded);
        scheme.minimizers(&self.folded, &mut self.hashes, |token| text.push(token));
        label_tokens.extend(labels.map(|(name, value)| label_token(name, value)));
    }
}

/// The tokens every block holding a match of a search has in its filter.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SearchTokens {
    pub text: Vec<u64>,
    pub labels: Vec<u64>,
}

impl SearchTokens {
    /// Whether there is nothing to skip by (no labels, and texts shorter
    /// than the scheme's windows).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.labels.is_empty()
    }
}

/// The tokens every block holding a match of `search` has in its filter
/// under `scheme`.
pub(crate) fn search_tokens(scheme: Scheme, search: &Search) -> SearchTokens {
    let mut tokens = SearchTokens::default();
    let mut folded = Vec::new();
    let mut hashes = Vec::new();
    for text in &search.substrings {
        fold(text, &mut folded);
        scheme.minimizers(&folded, &mut hashes, |token| tokens.text.push(token));
    }
    for (name, value) in &search.labels {
        tokens.labels.push(label_token(name, value));
    }
    for list in [&mut tokens.text, &mut tokens.labels] {
        list.sort_unstable();
        list.dedup();
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn line_tokens(scheme: Scheme, line: &str) -> HashSet<u64> {
        let mut text = Vec::new();
        Tokenizer::new().entry(scheme, line, std::iter::empty(), &mut text, &mut Vec::new());
        text.into_iter().collect::<HashSet<u64>>()
    }

    fn search(text: &str) -> Search {
        Search {
            substrings: vec![text.to_string()],
            ..Search::default()
        }
    }

    proptest! {
        /// The property skipping rests on: a line that contains a pattern
        /// (in any case) holds every token the pattern needs.
        #[test]
        fn a_line_holding_a_pattern_holds_its_tokens(
            before in "[a-zA-Z0-9 =_-]{0,40}",
            pattern in "[a-fA-F0-9 =_É-]{0,30}",
            after in "[a-zA-Z0-9 =_ς-]{0,40}",
            upper in any::<bool>(),
        ) {
            let scheme = Scheme::CURRENT;
            let line = format!("{before}{pattern}{after}");
            let line = if upper { line.to_uppercase() } else { line };
            let have = line_tokens(scheme, &line);
            for token in search_tokens(scheme, &search(&pattern)).text {
                prop_assert!(have.contains(&token), "{pattern:?} in {line:?}");
            }
        }

        #[test]
        fn small_schemes_keep_the_property_too(
            line in "[ab]{0,60}",
            from in any::<prop::sample::Index>(),
            len in 0usize..30,
            k in 1u8..6,
            w in 1u8..6,
        ) {
            let scheme = Scheme { k, w };
            let from = from.index(line.len() + 1);
            let pattern = &line[from..(from + len).min(line.len())];
            let have = line_tokens(scheme, &line);
            for token in search_tokens(scheme, &search(pattern)).text {
                prop_assert!(have.contains(&token));
            }
        }
    }

    #[test]
    fn short_patterns_give_nothing_to_skip_by_and_labels_always_do() {
        let scheme = Scheme::CURRENT;
        assert!(search_tokens(scheme, &search("short")).is_empty());
        assert!(!search_tokens(scheme, &search("NEEDLE-7f3a9c")).is_empty());
        let labels = Search {
            labels: vec![("service".into(), "api".into())],
            ..Search::default()
        };
        assert_eq!(
            search_tokens(scheme, &labels),
            SearchTokens {
                text: vec![],
                labels: vec![label_token("service", "api")]
            }
        );
        assert_ne!(label_token("a", "bc"), label_token("ab", "c"));
    }

    #[test]
    fn folding_is_per_character() {
        let mut out = Vec::new();
        fold("ÉCOLE Σ", &mut out);
        assert_eq!(out, "école σ".as_bytes());
        fold("MiXeD", &mut out);
        assert_eq!(out, b"mixed");
    }
}

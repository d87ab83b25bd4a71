//! Case-insensitive plain text: a message holds the pattern when, with
//! every character of both lowercased on its own ([`fold`]), the folded
//! message contains the folded pattern.
//!
//! Character by character, not `str::to_lowercase`: that one lowercases a
//! final sigma by its context, so the fold of a string would not always
//! contain the fold of its substrings. This is the meaning
//! [`logtap_core::Search`] gives `ignore_case`, so a backend and the
//! matcher agree on what matches.

use memchr::memmem;
use std::cell::RefCell;

/// `text` with every character lowercased on its own.
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    fold_into(text, &mut folded);
    folded
}

/// Appends the fold of `text` to `out`. Runs of ASCII, most of any log
/// line, are copied and lowercased in bulk; only the other characters go
/// through `char::to_lowercase` one by one.
fn fold_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        // Checked a word at a time, far faster than the search for the
        // first byte that is not ASCII below.
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
        return;
    }
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = rest
            .bytes()
            .position(|byte| !byte.is_ascii())
            .unwrap_or(rest.len());
        let start = out.len();
        out.push_str(&rest[..ascii]);
        out[start..].make_ascii_lowercase();
        let mut chars = rest[ascii..].chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_lowercase());
        }
        rest = chars.as_str();
    }
}

/// A folded message buffer kept above this capacity is freed after use, so
/// one huge message does not pin its size on a thread for good.
const KEEP_BUFFER_BYTES: usize = 64 << 10;

thread_local! {
    /// The fold of the message being matched: one per thread, reused from
    /// message to message, so matching allocates nothing in the steady state.
    static FOLDED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A case-insensitive plain-text search for one pattern.
#[derive(Debug, Clone)]
pub struct FoldedFinder {
    /// The folded pattern, searched for in the folded message.
    finder: memmem::Finder<'static>,
}

impl FoldedFinder {
    /// A search for `pattern`, whatever its case.
    pub fn new(pattern: &str) -> FoldedFinder {
        FoldedFinder {
            finder: memmem::Finder::new(fold(pattern).as_bytes()).into_owned(),
        }
    }

    /// Whether the fold of `message` contains the fold of the pattern.
    ///
    /// The message is folded into a per-thread buffer and searched with the
    /// same SIMD substring search as case-sensitive text: about half its
    /// speed on ASCII lines, whatever the pattern. Searching for the first
    /// byte's two cases and comparing candidates, without a copy, was
    /// measured three times slower when that letter is common (`e`), and
    /// it could not see non-ASCII text that folds to ASCII (the Kelvin
    /// sign is a "k"). Figures: bench/RESULTS.md, "Case-insensitive grep".
    pub fn is_match(&self, message: &str) -> bool {
        FOLDED.with(|cell| match cell.try_borrow_mut() {
            Ok(mut folded) => {
                folded.clear();
                fold_into(message, &mut folded);
                let found = self.finder.find(folded.as_bytes()).is_some();
                if folded.capacity() > KEEP_BUFFER_BYTES {
                    *folded = String::new();
                }
                found
            }
            // Only reentrant use could find it borrowed; a fresh buffer
            // keeps the answer right there.
            Err(_) => self.finder.find(fold(message).as_bytes()).is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_non_ascii_text_match_whatever_the_case() {
        let finder = FoldedFinder::new("disk full");
        assert!(finder.is_match("ERROR disk FULL on /var"));
        assert!(finder.is_match("Disk Full"));
        assert!(!finder.is_match("disk is full"));
        assert!(FoldedFinder::new("ÉCOLE").is_match("une école"));
        assert!(FoldedFinder::new("école").is_match("UNE ÉCOLE"));
        assert!(!FoldedFinder::new("école").is_match("ECOLE"));
        // The Kelvin sign lowercases to an ASCII "k": an ASCII pattern
        // still finds it in a message that is not ASCII.
        assert!(FoldedFinder::new("KB").is_match("5 \u{212A}b"));
        // A capital I with a dot lowercases to two characters.
        assert!(FoldedFinder::new("i\u{307}s").is_match("\u{130}STANBUL"));
        assert!(FoldedFinder::new("").is_match("anything"));
        // ASCII runs between other characters fold in bulk.
        assert_eq!(fold("ÀB \u{212A}c DÉF"), "àb kc déf");
    }

    #[test]
    fn sigma_folds_character_by_character() {
        // Σ lowercases to σ on its own, wherever it stands; str::to_lowercase
        // would make the final one ς, and "ΟΔΟΣ" would not hold "ΟΣ"'s fold.
        assert_eq!(fold("ΟΔΟΣ"), "οδοσ");
        assert!(FoldedFinder::new("ΟΣ").is_match("ΟΔΟΣ"));
        assert!(FoldedFinder::new("οσ").is_match("ΟΔΟΣ ΚΑΙ"));
        // A final sigma typed as such is another letter.
        assert!(!FoldedFinder::new("οσ").is_match("οδος"));
    }

    #[test]
    fn a_huge_message_does_not_keep_its_buffer() {
        let finder = FoldedFinder::new("NEEDLE");
        let message = format!("{}needle", "x".repeat(1 << 20));
        assert!(finder.is_match(&message));
        FOLDED.with(|cell| assert!(cell.borrow().capacity() <= KEEP_BUFFER_BYTES));
    }

    #[test]
    fn folding_twice_changes_nothing() {
        // Search keeps folded substrings, which a backend folds again.
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let once: String = c.to_lowercase().collect();
            assert_eq!(fold(&once), once, "{c:?}");
        }
    }
}

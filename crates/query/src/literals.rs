//! The literal text every match of a regular expression contains, for the
//! backend to skip blocks by (`Search::substrings`).
//!
//! Exact or nothing: a literal here that some match lacks would make the
//! backend skip entries that match, so the walk takes only what it can
//! prove. A concatenation's runs of plain literals are required (merged
//! into one string), a capture group is what it holds, a repetition that
//! occurs at least once requires what its body requires; alternation,
//! optional parts and anything else require nothing.

use crate::fold::fold;
use regex_syntax::hir::{Class, Hir, HirKind};

/// The most characters a case-insensitive class may hold and still be read
/// as one letter: `(?i)k` is `[Kk\u{212A}]`, three; anything larger is a
/// real class, and enumerating it would be the cost of a Unicode table.
const MAX_CASE_CLASS_CHARS: u32 = 8;

/// `pattern` as the regex crate reads it, compiled case-insensitive with
/// `ignore_case`; `None` for a pattern that does not parse (the regex
/// crate has refused it already).
pub fn parse(pattern: &str, ignore_case: bool) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(ignore_case)
        .build()
        .parse(pattern)
        .ok()
}

/// The strings every match of `hir` contains.
///
/// With `folded`, what is returned holds in folded text ([`fold`]): each
/// string occurs in the fold of every match. That is the only way
/// literals come out of a case-insensitive pattern, whose letters are
/// classes (`[Dd]`): a class counts as a letter when all its characters
/// fold to the same text. Without `folded`, the strings occur in every
/// match byte for byte, and a class ends a run.
pub fn required(hir: &Hir, folded: bool) -> Vec<String> {
    let mut out = Vec::new();
    walk(hir, folded, &mut out);
    out.sort();
    out.dedup();
    out
}

/// Adds what every match of `hir` contains to `out`.
fn walk(hir: &Hir, folded: bool, out: &mut Vec<String>) {
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => {
            if let Some(text) = piece(hir, folded) {
                push(out, text);
            }
        }
        HirKind::Capture(capture) => walk(&capture.sub, folded, out),
        HirKind::Repetition(repetition) if repetition.min >= 1 => {
            walk(&repetition.sub, folded, out)
        }
        HirKind::Concat(items) => {
            let mut run = String::new();
            for item in items {
                match piece(item, folded) {
                    Some(text) => run.push_str(&text),
                    None => {
                        // Whatever stands between two runs may match text
                        // of any length, so the runs stay apart.
                        push(out, std::mem::take(&mut run));
                        walk(item, folded, out);
                    }
                }
            }
            push(out, run);
        }
        // Alternation: no one branch is required. Repetition with min 0:
        // may match nothing. Empty and Look match no text.
        _ => {}
    }
}

fn push(out: &mut Vec<String>, text: String) {
    if !text.is_empty() {
        out.push(text);
    }
}

/// The text `hir` matches, when that is one fixed text (in folded form with
/// `folded`): a literal, a class of one letter's cases, or a capture of
/// either.
fn piece(hir: &Hir, folded: bool) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(literal) => {
            let text = std::str::from_utf8(&literal.0).ok()?;
            // The literal occurs in every match, and fold works character
            // by character on whole characters, so its fold occurs in the
            // fold of every match.
            Some(if folded { fold(text) } else { text.to_string() })
        }
        HirKind::Class(Class::Unicode(class)) if folded => {
            let mut size = 0u32;
            let mut common: Option<String> = None;
            for range in class.ranges() {
                size += u32::from(range.end()) - u32::from(range.start()) + 1;
                if size > MAX_CASE_CLASS_CHARS {
                    return None;
                }
                for c in range.start()..=range.end() {
                    let one: String = c.to_lowercase().collect();
                    match &common {
                        None => common = Some(one),
                        // `(?i)s` is [Ssſ], and ſ folds to itself: no one
                        // text stands for that class.
                        Some(seen) if *seen != one => return None,
                        Some(_) => {}
                    }
                }
            }
            common
        }
        HirKind::Capture(capture) => piece(&capture.sub, folded),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required(pattern: &str, ignore_case: bool, folded: bool) -> Vec<String> {
        parse(pattern, ignore_case)
            .map(|hir| super::required(&hir, folded))
            .unwrap_or_default()
    }

    fn exact(pattern: &str) -> Vec<String> {
        required(pattern, false, false)
    }

    #[test]
    fn concatenations_give_their_literal_runs() {
        assert_eq!(exact("NEEDLE-[0-9a-f]{6}"), ["NEEDLE-"]);
        assert_eq!(exact("disk full"), ["disk full"]);
        assert_eq!(exact("foo.*bar"), ["bar", "foo"]);
        // A capture of a literal is that literal, and joins its neighbours.
        assert_eq!(exact("foo(bar)baz"), ["foobarbaz"]);
        // A repetition that occurs requires its body once, on its own.
        assert_eq!(exact("foo(bar)+baz"), ["bar", "baz", "foo"]);
        assert_eq!(exact("x(ab[0-9]cd){2,}y"), ["ab", "cd", "x", "y"]);
        assert_eq!(exact("^error: (?P<what>disk) full$"), ["error: disk full"]);
    }

    #[test]
    fn optional_and_alternative_parts_give_nothing() {
        assert!(exact("foo|bar").is_empty());
        assert!(exact("(foo)?").is_empty());
        assert!(exact("(foo)*").is_empty());
        assert!(exact("[a-z]+").is_empty());
        assert_eq!(exact("time(out)?s"), ["s", "time"]);
        assert_eq!(exact("a(b|c)d"), ["a", "d"]);
        assert!(exact("(").is_empty(), "a bad pattern gives nothing");
    }

    #[test]
    fn case_insensitive_patterns_give_folded_letters_only_where_exact() {
        // Classes end runs unless folding.
        assert!(required("disk", true, false).is_empty());
        assert_eq!(exact("ERROR (?i)disk"), ["ERROR "]);
        // "k" stands for [Kk\u{212A}], all of which fold to "k"; "s" stands
        // for [Ssſ], and ſ folds to itself, so no text stands for it.
        assert_eq!(required("disk", true, true), ["di", "k"]);
        assert_eq!(required("ÉCOLE 42", true, true), ["école 42"]);
        assert_eq!(required("(?i)Full", false, true), ["full"]);
        // Σ, σ and ς are one class: no one text stands for it.
        assert_eq!(required("ΟΔΟΣ", true, true), ["οδο"]);
        // Folding takes the case-sensitive parts too, folded.
        assert_eq!(required("ERROR (?i)disk", false, true), ["error di", "k"]);
    }
}

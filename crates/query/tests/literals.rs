//! The search hint never names text that a match lacks: for random small
//! patterns and random text each one matches, every substring the plan
//! hands the backend occurs in that text (in its fold, with `ignore_case`).

use logtap_core::{EntryRef, Labels, Level};
use logtap_query::{fold, Mode, Plan, RawQuery};
use proptest::prelude::*;

/// Small patterns over the pieces that decide what is required: literals
/// with letters whose cases are awkward (the Kelvin sign, long s, final
/// sigma, a dotted capital I), classes, groups, alternation, every kind of
/// repetition, and inline case flags.
fn pattern() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("ab".to_string()),
        Just("K".to_string()),
        Just("k".to_string()),
        Just("\u{212A}".to_string()),
        Just("s".to_string()),
        Just("ſ".to_string()),
        Just("Σ".to_string()),
        Just("ς".to_string()),
        Just("\u{130}".to_string()),
        Just("É".to_string()),
        Just("x1-".to_string()),
        Just("[0-9]".to_string()),
        Just("[a-c]".to_string()),
        Just(".".to_string()),
        Just("\\s".to_string()),
    ];
    atom.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| parts.concat()),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("(?:{a}|{b})")),
            inner.clone().prop_map(|a| format!("({a})")),
            (
                inner.clone(),
                prop_oneof![
                    Just("*"),
                    Just("+"),
                    Just("?"),
                    Just("{2}"),
                    Just("{0,2}"),
                    Just("{1,3}")
                ]
            )
                .prop_map(|(a, op)| format!("(?:{a}){op}")),
            inner.clone().prop_map(|a| format!("(?i:{a})")),
            inner.prop_map(|a| format!("(?-i:{a})")),
        ]
    })
}

/// A pattern, whether it is case-insensitive, and a text it matches whole.
fn case() -> impl Strategy<Value = (String, bool, String)> {
    (pattern(), any::<bool>()).prop_flat_map(|(pattern, ignore_case)| {
        let whole = if ignore_case {
            format!("(?i:{pattern})")
        } else {
            pattern.clone()
        };
        let text = proptest::string::string_regex(&whole).expect("generable");
        (Just(pattern), Just(ignore_case), text)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_required_literal_is_in_every_match((pattern, ignore_case, text) in case()) {
        let plan = Plan::parse(
            Mode::History,
            RawQuery {
                grep: pattern.clone(),
                regex: true,
                ignore_case,
                ..RawQuery::default()
            },
        )
        .expect("the pattern compiles");
        let entry = EntryRef::new(1, 0, Level::Info, &text, Labels::empty());
        prop_assert!(plan.matcher.matches(&entry), "{pattern:?} does not match {text:?}");
        if let Some(search) = plan.matcher.search() {
            let folded = fold(&text);
            for literal in &search.substrings {
                if search.ignore_case {
                    prop_assert!(
                        folded.contains(&fold(literal)),
                        "{pattern:?} (ignore_case {ignore_case}): {literal:?} is not in the fold of {text:?}"
                    );
                } else {
                    prop_assert!(
                        text.contains(literal.as_str()),
                        "{pattern:?}: {literal:?} is not in {text:?}"
                    );
                }
            }
        }
    }
}

/// The property above holds for empty hints too; this makes sure the
/// patterns it draws do give literals, so it tests something.
#[test]
fn the_drawn_patterns_give_literals() {
    for (pattern, ignore_case) in [
        ("abx1-", false),
        ("(?:ab)+[0-9]K", true),
        ("(?i:É)ab", false),
    ] {
        let plan = Plan::parse(
            Mode::History,
            RawQuery {
                grep: pattern.into(),
                regex: true,
                ignore_case,
                ..RawQuery::default()
            },
        )
        .expect("valid");
        let search = plan.matcher.search().expect("a hint");
        assert!(!search.substrings.is_empty(), "{pattern}");
    }
}

//! Fuzzing the query parameters: arbitrary gRPC request fields through
//! `Query::parse`, and arbitrary HTTP query strings through the fallbacks'
//! `parse_params` and then `Query::parse`, for every endpoint. They never
//! panic; every refusal is INVALID_ARGUMENT with a message short enough for
//! a header; every accepted query makes sense (a non-empty time range, no
//! reverse on a live stream). Seeds: `fuzz/corpus/query/`, one query string
//! a line. Saved failures: `fuzz/regressions/query_*.txt`. New cases per
//! target: `LOGTAP_FUZZ_CASES` (default 512).

#[path = "../../../fuzz/harness.rs"]
mod harness;
use harness::{fuzz, fuzz_dir, Settings};
use logtap_query::{Mode, Plan, QueryError, RawQuery};
use logtap_server::testing::{parse_params, Endpoint};
use logtap_server::ServeError;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tonic::Code;

const NOW: i64 = 1_714_564_800_000_000_000;

/// A refusal is the client's fault, says so with INVALID_ARGUMENT, and its
/// message fits in a status header.
fn check_refusal(error: QueryError) -> Result<(), TestCaseError> {
    let error = ServeError::Query(error);
    prop_assert_eq!(error.code(), Code::InvalidArgument, "{}", error);
    let status = error.to_status();
    prop_assert!(!status.message().is_empty());
    prop_assert!(
        status.message().len() <= 1100,
        "a {}-byte message",
        status.message().len()
    );
    Ok(())
}

fn check_query(mode: Mode, raw: RawQuery) -> Result<(), TestCaseError> {
    match Plan::parse(mode, raw.clone()) {
        Err(error) => check_refusal(error),
        Ok(query) => {
            if let (Some(since), Some(until)) = (query.filter.since, query.filter.until) {
                prop_assert!(since < until);
            }
            prop_assert!(!(query.reverse && query.follow));
            prop_assert_eq!(query.follow, mode == Mode::Tail || raw.follow);
            prop_assert_eq!(query.limit, (raw.limit != 0).then_some(raw.limit));
            Ok(())
        }
    }
}

fn check_query_string(text: &str) -> Result<(), TestCaseError> {
    for endpoint in [Endpoint::Logs, Endpoint::Sse, Endpoint::Poll] {
        match parse_params(Some(text), endpoint, NOW) {
            Err(error) => check_refusal(error)?,
            Ok(params) => check_query(Mode::History, params.raw)?,
        }
    }
    Ok(())
}

/// Level names as clients write them, and anything else.
fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "", "trace", "DEBUG", "Info", " warn ", "warning", "err", "ERROR", "fatal", "crit",
            "critical", "panic", "loud",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

/// Text that looks like regular expressions, mostly, and anything else.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-c()\\[\\]{}*+?|\\\\^$.0-9,:\\-pPwWdDsS]{0,40}",
        1 => any::<String>(),
        1 => Just("(a+)+$".to_string()),
    ]
}

/// Text that looks like LogQL, mostly, and anything else: the parser
/// must refuse what it cannot read, never panic.
fn logql() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[{}a-c=!~|\"`() ,0-9.<>_jsonlgfmtrexpa]{0,60}",
        1 => any::<String>(),
        1 => Just(r#"{a=~"b.*"} |= "x" | json | n >= 1.5KiB or (d < 2h and e!="")"#.to_string()),
    ]
}

fn raw_query() -> impl Strategy<Value = RawQuery> {
    (
        level(),
        prop_oneof![Just(0i64), any::<i64>()],
        prop_oneof![Just(0i64), any::<i64>()],
        pattern(),
        any::<bool>(),
        prop::collection::vec((".{0,8}", ".{0,8}"), 0..4),
        any::<Option<u64>>(),
        prop_oneof![Just(0u64), any::<u64>()],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        logql(),
    )
        .prop_map(
            |(
                level,
                since,
                until,
                grep,
                regex,
                labels,
                after_cursor,
                limit,
                reverse,
                follow,
                ignore_case,
                query,
            )| {
                RawQuery {
                    level,
                    since,
                    until,
                    grep,
                    regex,
                    ignore_case,
                    labels,
                    after_cursor,
                    limit,
                    reverse,
                    follow,
                    query,
                }
            },
        )
}

/// `name=value&...` from the parameter names the endpoints know, values
/// of the kinds they parse, percent-escapes and stray separators.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => prop::sample::select(vec![
            "level", "grep", "regex", "ignore_case", "label", "since", "until", "after", "limit",
            "reverse", "follow", "wait", "_", "",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_%0-9]{0,6}",
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9=:. +%-]{0,20}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "1h",
            "now",
            "2024-05-01T12:00:00Z",
            "2024-05-01",
            "25s",
            "true",
            "0",
            "app=db",
            "%28",
            "%FF%FE",
            "(a%2B)%2B%24",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ];
    prop::collection::vec(
        (
            name,
            prop::option::of(value),
            prop::sample::select(vec!["&", "&&", ";"]),
        ),
        0..6,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value, sep)| match value {
                Some(value) => format!("{name}={value}{sep}"),
                None => format!("{name}{sep}"),
            })
            .collect()
    })
}

fn corpus() -> Vec<String> {
    let dir = fuzz_dir().join("corpus/query");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    assert!(!lines.is_empty(), "the seed corpus is empty");
    lines
}

#[test]
fn the_seed_corpus_is_parsed_or_refused_cleanly() {
    for line in corpus() {
        check_query_string(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    }
}

#[test]
fn arbitrary_grpc_requests_are_parsed_or_invalid_argument() {
    fuzz(
        "query_grpc",
        Settings::default(),
        &(raw_query(), any::<bool>()),
        |(raw, live)| {
            let kind = if live { Mode::Tail } else { Mode::History };
            check_query(kind, raw)
        },
    );
}

#[test]
fn arbitrary_http_query_strings_are_parsed_or_invalid_argument() {
    fuzz("query_http", Settings::default(), &query_string(), |text| {
        check_query_string(&text)
    });
    fuzz(
        "query_http_bytes",
        Settings::default(),
        &any::<String>(),
        |text| check_query_string(&text),
    );
}

#[test]
fn mutated_seed_query_strings_are_parsed_or_invalid_argument() {
    let strategy = (
        prop::sample::select(corpus()),
        prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..5),
    );
    fuzz(
        "query_corpus_mutated",
        Settings::default(),
        &strategy,
        |(line, edits)| {
            let mut chars: Vec<char> = line.chars().collect();
            for (at, c) in edits {
                let at = at.index(chars.len() + 1);
                chars.insert(at, c);
            }
            check_query_string(&chars.into_iter().collect::<String>())
        },
    );
}

//! The language against examples, its errors, and a property test against
//! a reference evaluator written the plain way.

use super::*;
use logtap_core::{encode_labels, EntryRef, Labels, Level};
use proptest::prelude::*;

/// An entry's parts, owned, so a test can make an `EntryRef` of it.
struct Owned {
    level: Level,
    message: String,
    labels: Vec<u8>,
}

impl Owned {
    fn new(level: Level, message: &str, labels: &[(&str, &str)]) -> Owned {
        let pairs: Vec<(String, String)> = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut encoded = Vec::new();
        encode_labels(&pairs, &mut encoded).expect("labels encode");
        Owned {
            level,
            message: message.to_string(),
            labels: encoded,
        }
    }

    fn entry(&self) -> EntryRef<'_> {
        EntryRef::new(
            1,
            1,
            self.level,
            &self.message,
            Labels::parse(&self.labels).expect("labels"),
        )
    }
}

fn matches(query: &str, owned: &Owned) -> bool {
    parse(query)
        .unwrap_or_else(|error| panic!("{query}: {error}"))
        .matches(&owned.entry(), &mut Scratch::default())
}

#[test]
fn selectors_and_line_filters() {
    let api = Owned::new(
        Level::Error,
        "GET /orders timeout after 30s",
        &[("service", "api"), ("host", "web-2")],
    );
    assert!(matches("{}", &api));
    assert!(matches(r#"{service="api"}"#, &api));
    assert!(matches(r#"{service="api", host=~"web-.*"}"#, &api));
    assert!(!matches(r#"{host=~"web"}"#, &api), "regexes are anchored");
    assert!(matches(r#"{env!="dev"}"#, &api), "a missing label is empty");
    assert!(!matches(r#"{env=~".+"}"#, &api));
    assert!(matches(r#"{level="error"}"#, &api));
    assert!(matches(r#"{detected_level=~"error|fatal"}"#, &api));
    assert!(!matches(r#"{level="warn"}"#, &api));
    assert!(matches(r#"{} |= "timeout" != "retry""#, &api));
    assert!(!matches(r#"{} |= "timeout" |= "retry""#, &api));
    assert!(matches(r#"{} |~ "after \\d+s""#, &api));
    assert!(matches(r#"{} |~ `after \d+s`"#, &api));
    assert!(matches(r#"{} |~ "(?i)TIMEOUT""#, &api));
    assert!(!matches(r#"{} !~ "orders""#, &api));
}

#[test]
fn parsers_and_label_filters() {
    let json = Owned::new(
        Level::Info,
        r#"{"status":503,"took":"1.5s","size":"2KB","user":{"id":"u7"},"tags":["a"],"level":"warn"}"#,
        &[("service", "api")],
    );
    assert!(matches(r#"{} | json | status >= 500"#, &json));
    assert!(!matches(r#"{} | json | status < 500"#, &json));
    assert!(matches(r#"{} | json | status == 503 and took > 1s"#, &json));
    assert!(matches(r#"{} | json | took > 250ms, size >= 2KB"#, &json));
    assert!(matches(r#"{} | json | size < 2KiB"#, &json));
    assert!(matches(r#"{} | json | user_id="u7""#, &json));
    assert!(matches(
        r#"{} | json | status = 200 or user_id =~ "u[0-9]""#,
        &json
    ));
    assert!(!matches(
        r#"{} | json | (status = 200 or user_id = "x") and took > 1s"#,
        &json
    ));
    // The line's `level` does not hide the entry's own.
    assert!(matches(
        r#"{} | json | level="info" and level_extracted="warn""#,
        &json
    ));
    assert!(matches(
        r#"{} | json u="user.id", t="tags[0]" | u="u7" and t="a""#,
        &json
    ));
    assert!(matches(r#"{} | json | __error__="""#, &json));
    let text = Owned::new(Level::Info, "not json", &[]);
    assert!(matches(r#"{} | json | __error__="JSONParserErr""#, &text));
    assert!(!matches(r#"{} | json | __error__="""#, &text));
    assert!(
        !matches(r#"{} | json | status > 1"#, &text),
        "missing is false"
    );

    let logfmt = Owned::new(
        Level::Warn,
        r#"at=info method=GET path="/a b" status=404 duration=12ms debug"#,
        &[],
    );
    assert!(matches(
        r#"{} | logfmt | path="/a b" and status=404"#,
        &logfmt
    ));
    assert!(matches(
        r#"{} | logfmt | duration < 1s and debug="""#,
        &logfmt
    ));
    assert!(matches(r#"{} | logfmt | status != 200"#, &logfmt));

    let access = Owned::new(
        Level::Info,
        r#"10.0.0.1 - - [05/Dec/2026] "GET /x" 502 123"#,
        &[],
    );
    assert!(matches(
        r#"{} | pattern `<ip> - - [<_>] "<method> <path>" <status> <bytes>` | ip="10.0.0.1" and status >= 500 and method="GET""#,
        &access
    ));
    assert!(matches(
        r#"{} | regexp `"(?P<verb>\w+) (?P<path>\S+)"` | verb="GET" and path="/x""#,
        &access
    ));
}

#[test]
fn errors_say_where_and_what_was_expected() {
    for (query, position, expected) in [
        ("", 0, "\"{\""),
        (r#"{app="a""#, 8, "\",\" or \"}\""),
        (r#"{app=="a"}"#, 4, "matcher operator"),
        (r#"{app="a"} |= x"#, 13, "quoted text"),
        (r#"{} | status >= fast"#, 15, "number, a duration"),
        (r#"{app=~"("}"#, 6, "valid regular expression"),
        (r#"{} | unpack"#, 5, "unpack (not supported)"),
        (r#"{} | line_format "{{ if .x }}""#, 18, "template function"),
        (r#"{} | label_format a"#, 19, "expected \"=\""),
        (r#"{} | label_format a=5"#, 20, "label name to rename"),
        (r#"{} | keep"#, 9, "a label name"),
        (r#"{} | label_format a=b, a="c""#, 23, "each label once"),
        (r#"{} | drop a="#, 12, "a quoted value"),
        (r#"{} | regexp "no groups""#, 12, "named group"),
        (r#"{} | pattern "no captures""#, 13, "<name> capture"),
        (r#"{} @"#, 3, "label, a string"),
    ] {
        let error = parse(query).expect_err(query);
        assert_eq!(error.position, position, "{query}: {error}");
        assert!(
            error.to_string().contains(expected),
            "{query}: {error} (wanted {expected})"
        );
    }
}

#[test]
fn pushdown_takes_what_the_store_can_answer() {
    let query = parse(
        r#"{service="api", level="warn", host=~"web.*", env!="dev"} |= "timeout" |~ "code=5\\d\\d" != "retry" | json | x="y""#,
    )
    .unwrap();
    let pushdown = query.pushdown();
    assert_eq!(pushdown.labels, [("service".into(), "api".into())]);
    assert_eq!(pushdown.min_level, Some(Level::Warn));
    assert_eq!(pushdown.substrings, ["timeout", "code=5"]);
    assert!(query.is_costly());
    assert!(!parse(r#"{service="api"} |= "x""#).unwrap().is_costly());
}

/// What a rewriting query sends for `owned`, if it matches: the line and
/// every label.
fn sent(query: &str, owned: &Owned) -> Option<(String, Vec<(String, String)>)> {
    let query = parse(query).unwrap_or_else(|error| panic!("{query}: {error}"));
    assert!(query.rewrites());
    let mut scratch = Scratch::default();
    let entry = owned.entry();
    if !query.matches(&entry, &mut scratch) {
        return None;
    }
    let rewritten = scratch.rewrite(&entry);
    let sent = rewritten.entry(&entry);
    let labels = sent
        .labels()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    Some((sent.message.to_string(), labels))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn format_stages_rewrite_the_line_and_the_labels() {
    let json = Owned::new(
        Level::Error,
        r#"{"status":503,"path":"/api","msg":"upstream timeout"}"#,
        &[("service", "api"), ("host", "web-1")],
    );
    // line_format renders labels, parsed and stored, and the entry's level.
    assert_eq!(
        sent(
            r#"{} | json | line_format "{{.level}} {{.status}} {{.path | ToUpper}} on {{.host}}""#,
            &json
        )
        .unwrap()
        .0,
        "error 503 /API on web-1"
    );
    // Later line filters and parsers see the new line.
    assert!(sent(r#"{} | json | line_format "{{.msg}}" |= "upstream""#, &json).is_some());
    assert!(sent(r#"{} | json | line_format "{{.msg}}" |= "status""#, &json).is_none());
    assert_eq!(
        sent(
            r#"{} | json | line_format "n={{.status}}" | logfmt | n > 500 | keep n"#,
            &json
        )
        .unwrap(),
        ("n=503".to_string(), pairs(&[("n", "503")]))
    );
    // label_format renames (the old name goes) and sets from templates.
    let (_, labels) = sent(
        r#"{} | label_format node=host, where="{{.service}}@{{.host}}" | keep node, where"#,
        &json,
    )
    .unwrap();
    assert_eq!(labels, pairs(&[("node", "web-1"), ("where", "api@web-1")]));
    assert!(sent(r#"{} | label_format node=host | host="web-1""#, &json).is_none());
    assert!(sent(r#"{} | label_format service="x" | service="x""#, &json).is_some());
    // keep and drop, by name or by a matcher on the value; parsed labels
    // are sent beside the stored ones.
    let (_, labels) = sent(r#"{} | json | drop msg, path, host=~"web-.*""#, &json).unwrap();
    assert_eq!(labels, pairs(&[("service", "api"), ("status", "503")]));
    let (_, labels) = sent(r#"{} | keep host="db", service"#, &json).unwrap();
    assert_eq!(labels, pairs(&[("service", "api")]));
    // A line no parser reads carries __error__ until dropped.
    let plain = Owned::new(Level::Info, "not json", &[("service", "api")]);
    let (_, labels) = sent(r#"{} | json | drop nothing"#, &plain).unwrap();
    assert_eq!(
        labels,
        pairs(&[("__error__", "JSONParserErr"), ("service", "api")])
    );
    let (line, labels) = sent(r#"{} | json | drop __error__"#, &plain).unwrap();
    assert_eq!(
        (line.as_str(), labels),
        ("not json", pairs(&[("service", "api")]))
    );
    // A line filter after line_format holds the store to nothing.
    let query = parse(r#"{} |= "a" | line_format "{{.x}}" |= "b""#).unwrap();
    assert_eq!(query.pushdown().substrings, ["a"]);
    assert!(!parse(r#"{} | json"#).unwrap().rewrites());
}

/// A query in the generated subset, as data, so the reference below can
/// evaluate it without the parser.
#[derive(Debug, Clone)]
enum Sel {
    Eq(&'static str, &'static str),
    Ne(&'static str, &'static str),
    /// `=~ "a|b"`: one of these values.
    OneOf(&'static str, Vec<&'static str>),
}

#[derive(Debug, Clone)]
enum Step {
    Contains(&'static str),
    NotContains(&'static str),
    /// `| logfmt | n > k` on the line's `n=` field.
    LogfmtGreater(i64),
    /// `| line_format "{{.app}} {{__line__}}"`.
    PrefixApp,
    /// `| drop app`.
    DropApp,
    /// `| label_format owner=app`.
    RenameAppToOwner,
    /// `| keep owner, host`.
    KeepOwnerAndHost,
    /// `| name="value"` on a label as the stages before left it.
    LabelIs(&'static str, &'static str),
}

const LABELS: [&str; 3] = ["app", "host", "level"];
const VALUES: [&str; 4] = ["a", "b", "error", "info"];
const WORDS: [&str; 4] = ["disk", "full", "net", "ok"];

fn sel() -> impl Strategy<Value = Sel> {
    let label = prop::sample::select(&LABELS[..]);
    let value = prop::sample::select(&VALUES[..]);
    prop_oneof![
        (label.clone(), value.clone()).prop_map(|(l, v)| Sel::Eq(l, v)),
        (label.clone(), value.clone()).prop_map(|(l, v)| Sel::Ne(l, v)),
        (label, prop::collection::vec(value, 1..3)).prop_map(|(l, v)| Sel::OneOf(l, v)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let word = prop::sample::select(&WORDS[..]);
    let label = prop::sample::select(&["app", "host", "owner"][..]);
    prop_oneof![
        word.clone().prop_map(Step::Contains),
        word.prop_map(Step::NotContains),
        (0i64..6).prop_map(Step::LogfmtGreater),
        Just(Step::PrefixApp),
        Just(Step::DropApp),
        Just(Step::RenameAppToOwner),
        Just(Step::KeepOwnerAndHost),
        (label, prop::sample::select(&VALUES[..])).prop_map(|(l, v)| Step::LabelIs(l, v)),
    ]
}

fn render(selector: &[Sel], steps: &[Step]) -> String {
    let matchers: Vec<String> = selector
        .iter()
        .map(|s| match s {
            Sel::Eq(l, v) => format!("{l}=\"{v}\""),
            Sel::Ne(l, v) => format!("{l}!=\"{v}\""),
            Sel::OneOf(l, vs) => format!("{l}=~\"{}\"", vs.join("|")),
        })
        .collect();
    let mut query = format!("{{{}}}", matchers.join(", "));
    let mut after_label_list = false;
    for step in steps {
        query.push_str(&match step {
            Step::Contains(w) => format!(" |= \"{w}\""),
            // After `| drop a` or `| keep a`, `!= "w"` is read as a matcher
            // of the list (as Loki reads it); `|= ""` passes every line and
            // ends the list.
            Step::NotContains(w) if after_label_list => format!(" |= \"\" != \"{w}\""),
            Step::NotContains(w) => format!(" != \"{w}\""),
            Step::LogfmtGreater(k) => format!(" | logfmt | n > {k}"),
            Step::PrefixApp => " | line_format \"{{.app}} {{__line__}}\"".to_string(),
            Step::DropApp => " | drop app".to_string(),
            Step::RenameAppToOwner => " | label_format owner=app".to_string(),
            Step::KeepOwnerAndHost => " | keep owner, host".to_string(),
            Step::LabelIs(l, v) => format!(" | {l}=\"{v}\""),
        });
        after_label_list = matches!(step, Step::DropApp | Step::KeepOwnerAndHost);
    }
    query
}

/// What the reference makes of an entry it selects: the line and the
/// stored labels as the stages left them (parsed labels aside).
#[derive(Debug, PartialEq, Eq)]
struct Made {
    line: String,
    labels: Vec<(String, String)>,
}

/// The reference: each construct by its definition, on plain values.
fn reference(
    selector: &[Sel],
    steps: &[Step],
    level: Level,
    message: &str,
    stored: &[(&str, &str)],
) -> Option<Made> {
    let mut labels: Vec<(String, String)> = stored
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let get = |labels: &[(String, String)], name: &str| -> String {
        if name == "level" {
            return level.as_str().to_string();
        }
        labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let selected = selector.iter().all(|s| match s {
        Sel::Eq(l, v) => get(&labels, l) == *v,
        Sel::Ne(l, v) => get(&labels, l) != *v,
        Sel::OneOf(l, vs) => vs.contains(&get(&labels, l).as_str()),
    });
    if !selected {
        return None;
    }
    let mut line = message.to_string();
    for step in steps {
        let pass = match step {
            Step::Contains(w) => line.contains(w),
            Step::NotContains(w) => !line.contains(w),
            Step::LogfmtGreater(k) => line
                .split(' ')
                .filter_map(|pair| pair.strip_prefix("n="))
                .next_back()
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|n| n > *k),
            Step::PrefixApp => {
                line = format!("{} {line}", get(&labels, "app"));
                true
            }
            Step::DropApp => {
                labels.retain(|(n, _)| n != "app");
                true
            }
            Step::RenameAppToOwner => {
                if let Some(app) = labels.iter().position(|(n, _)| n == "app") {
                    let (_, value) = labels.remove(app);
                    labels.retain(|(n, _)| n != "owner");
                    labels.push(("owner".to_string(), value));
                }
                true
            }
            Step::KeepOwnerAndHost => {
                labels.retain(|(n, _)| n == "owner" || n == "host");
                true
            }
            Step::LabelIs(l, v) => get(&labels, l) == *v,
        };
        if !pass {
            return None;
        }
    }
    labels.sort();
    Some(Made { line, labels })
}

proptest! {
    #[test]
    fn queries_select_and_rewrite_what_the_reference_does(
        selector in prop::collection::vec(sel(), 0..3),
        steps in prop::collection::vec(step(), 0..4),
        entries in prop::collection::vec(
            (
                prop::sample::select(&[Level::Info, Level::Error][..]),
                prop::collection::vec(prop::sample::select(&WORDS[..]), 0..4),
                0i64..8,
                prop::option::of(prop::sample::select(&VALUES[..])),
                prop::option::of(prop::sample::select(&VALUES[..])),
            ),
            1..12,
        ),
    ) {
        let text = render(&selector, &steps);
        let query = parse(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
        let mut scratch = Scratch::default();
        for (level, words, n, app, host) in entries {
            let message = format!("{} n={n}", words.join(" "));
            let mut labels = Vec::new();
            if let Some(app) = app { labels.push(("app", app)); }
            if let Some(host) = host { labels.push(("host", host)); }
            let owned = Owned::new(level, &message, &labels);
            let entry = owned.entry();
            let matched = query.matches(&entry, &mut scratch);
            let expected = reference(&selector, &steps, level, &message, &labels);
            prop_assert_eq!(
                matched,
                expected.is_some(),
                "{} on {:?} {:?} {:?}", text, level, message, labels
            );
            if let (true, Some(expected)) = (matched && query.rewrites(), expected) {
                let rewritten = scratch.rewrite(&entry);
                let sent = rewritten.entry(&entry);
                let stored_kind: Vec<(String, String)> = sent
                    .labels()
                    .filter(|(name, _)| matches!(*name, "app" | "host" | "owner"))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                prop_assert_eq!(
                    Made { line: sent.message.to_string(), labels: stored_kind },
                    expected,
                    "{} on {:?} {:?}", text, message, labels
                );
            }
        }
    }
}

mod metrics {
    use super::super::metric::{MetricExpr, Points, RangeEval, Series, Value};
    use super::super::{parse_query, Query};
    use super::*;

    const S: i64 = 1_000_000_000;

    fn metric(text: &str) -> MetricExpr {
        match parse_query(text).unwrap_or_else(|error| panic!("{text}: {error}")) {
            Query::Metric(expr) => expr,
            Query::Log(_) => panic!("{text}: a log query"),
        }
    }

    /// Evaluates `text` over `entries` (time, level, message, labels).
    /// An entry as a test writes it: time, level, message, labels.
    type Written<'a> = (i64, Level, &'a str, &'a [(&'a str, &'a str)]);

    fn run(text: &str, points: Points, entries: &[Written<'_>]) -> Value {
        let expr = metric(text);
        let owned: Vec<(i64, Owned)> = entries
            .iter()
            .map(|(t, level, message, labels)| (*t, Owned::new(*level, message, labels)))
            .collect();
        let mut results = Vec::new();
        for range in expr.ranges() {
            let mut eval = RangeEval::new(range, points).expect("range");
            for (t, entry) in &owned {
                let parts = entry.entry();
                let at = EntryRef::new(1, *t, parts.level, parts.message, parts.labels());
                eval.add(&at);
            }
            results.push(eval.finish());
        }
        expr.evaluate(points, &mut results.into_iter())
    }

    fn series(value: Value) -> Vec<Series> {
        match value {
            Value::Vector(series) => series,
            Value::Scalar(n) => panic!("a scalar {n}"),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn counts_rates_and_aggregations_over_windows() {
        let api: &[(&str, &str)] = &[("service", "api")];
        let web: &[(&str, &str)] = &[("service", "web")];
        let entries = [
            (S, Level::Error, "a", api),
            (2 * S, Level::Info, "bb", api),
            (3 * S, Level::Error, "ccc", web),
            (11 * S, Level::Error, "dddd", api),
        ];
        let points = Points::new(10 * S, 20 * S, 10 * S).unwrap();
        let by_level = series(run(
            r#"sum by (level) (count_over_time({}[10s]))"#,
            points,
            &entries,
        ));
        assert_eq!(
            by_level,
            [
                Series {
                    labels: labels(&[("level", "error")]),
                    points: vec![(10 * S, 2.0), (20 * S, 1.0)],
                },
                Series {
                    labels: labels(&[("level", "info")]),
                    points: vec![(10 * S, 1.0)],
                },
            ]
        );
        let rate = series(run(r#"rate({service="api"}[10s])"#, points, &entries));
        assert_eq!(rate.len(), 2, "one series per label set: {rate:?}");
        let bytes = series(run(
            r#"sum(bytes_over_time({} |= "c" [10s]))"#,
            points,
            &entries,
        ));
        assert_eq!(bytes[0].points, [(10 * S, 3.0)]);
        let top = series(run(
            r#"topk(1, sum by (service) (count_over_time({}[10s])))"#,
            points,
            &entries,
        ));
        assert_eq!(top[0].labels, labels(&[("service", "api")]));
        assert_eq!(top[0].points, [(10 * S, 2.0), (20 * S, 1.0)]);
        let health = series(run("vector(1)+vector(1)", points, &entries));
        assert_eq!(health[0].points, [(10 * S, 2.0), (20 * S, 2.0)]);
        assert_eq!(run("1 + 2 * 3", points, &entries), Value::Scalar(7.0));
        let halved = series(run(
            r#"count_over_time({service="web"}[10s]) / 2"#,
            points,
            &entries,
        ));
        assert_eq!(halved[0].points, [(10 * S, 0.5)]);
    }

    #[test]
    fn only_ranges_whose_other_labels_are_summed_away_count_by_level() {
        let only = |text: &str| metric(text).ranges_by_level_only();
        assert_eq!(only("sum(count_over_time({}[1m]))"), [true]);
        assert_eq!(only("sum by (level) (rate({level=\"error\"}[1m]))"), [true]);
        assert_eq!(only("count_over_time({}[1m])"), [false]);
        assert_eq!(only("sum by (service) (count_over_time({}[1m]))"), [false]);
        assert_eq!(only("count by (level) (count_over_time({}[1m]))"), [false]);
        let points = Points::new(60 * S, 120 * S, 60 * S).unwrap();
        let edges = |text: &str| {
            let expr = metric(text);
            let range = expr.ranges()[0];
            RangeEval::new(range, points)
                .unwrap()
                .histogram_edges(true)
                .is_some()
        };
        assert!(edges(r#"count_over_time({level=~"warn|error"}[1m])"#));
        assert!(
            !edges(r#"count_over_time({service="api"}[1m])"#),
            "labels are not in summaries"
        );
        assert!(
            !edges(r#"count_over_time({} |= "x" [1m])"#),
            "nor is the text"
        );
        assert!(!edges(r#"bytes_over_time({}[1m])"#), "nor are bytes");
        // Grafana's volume histogram: its drop removes what only parsers set.
        let volume = r#"sum by (level, detected_level) (count_over_time({} | drop __error__, __error_details__ [1m]))"#;
        assert_eq!(only(volume), [true]);
        assert!(edges(volume));
        assert!(!edges(r#"count_over_time({} | drop service [1m])"#));
        assert!(!edges(
            r#"count_over_time({} | json | drop __error__ [1m])"#
        ));
    }

    #[test]
    fn unwrapped_values() {
        let none: &[(&str, &str)] = &[];
        let entries = [
            (S, Level::Info, "took=100ms size=1KB n=1", none),
            (2 * S, Level::Info, "took=300ms size=3KB n=3", none),
            (3 * S, Level::Info, "took=2s size=oops n=x", none),
        ];
        let points = Points::new(5 * S, 5 * S, S).unwrap();
        let value = |text: &str| series(run(text, points, &entries))[0].points[0].1;
        // Extracted labels make series: one label each keeps one series.
        let n = r#"{} | regexp "n=(?P<n>\\S+)" | unwrap n [5s]"#;
        assert_eq!(value(&format!("sum_over_time({n})")), 4.0);
        assert_eq!(value(&format!("avg_over_time({n})")), 2.0);
        assert_eq!(value(&format!("quantile_over_time(0.5, {n})")), 2.0);
        assert_eq!(value(&format!("rate({n})")), 0.8);
        let took = r#"{} | regexp "took=(?P<took>\\S+)" | unwrap duration(took) [5s]"#;
        assert_eq!(value(&format!("max_over_time({took})")), 2.0);
        let size = r#"{} | regexp "size=(?P<size>\\S+)" | unwrap bytes(size) [5s]"#;
        assert_eq!(value(&format!("min_over_time({size})")), 1000.0);
        // Every field of logfmt is a label: three series, summed.
        assert_eq!(
            value(r#"sum(sum_over_time({} | logfmt | unwrap n [5s]))"#),
            4.0
        );
        // Dropping the other fields leaves one series.
        let one = series(run(
            r#"sum_over_time({} | logfmt | drop took, size | unwrap n [5s])"#,
            points,
            &entries,
        ));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].labels, labels(&[("level", "info")]));
        assert_eq!(one[0].points[0].1, 4.0);
    }

    #[test]
    fn series_carry_labels_as_label_format_and_drop_left_them() {
        let entries = [
            (S, Level::Info, "a", &[("host", "web-1"), ("pod", "p1")][..]),
            (
                2 * S,
                Level::Info,
                "b",
                &[("host", "web-1"), ("pod", "p2")][..],
            ),
            (
                3 * S,
                Level::Info,
                "c",
                &[("host", "web-2"), ("pod", "p3")][..],
            ),
        ];
        let points = Points::new(5 * S, 5 * S, S).unwrap();
        let found = series(run(
            r#"sum by (node) (count_over_time({} | label_format node=host [5s]))"#,
            points,
            &entries,
        ));
        let by_node: Vec<_> = found
            .iter()
            .map(|s| (s.labels.clone(), s.points[0].1))
            .collect();
        assert_eq!(
            by_node,
            [
                (labels(&[("node", "web-1")]), 2.0),
                (labels(&[("node", "web-2")]), 1.0)
            ]
        );
        let found = series(run(
            r#"count_over_time({} | drop pod [5s])"#,
            points,
            &entries,
        ));
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn metric_errors_say_where_and_what() {
        for (query, expected) in [
            (r#"count_over_time({})"#, "a range"),
            (r#"sum_over_time({}[5m])"#, "| unwrap"),
            (
                r#"count_over_time({} | logfmt | unwrap n [5m])"#,
                "no | unwrap",
            ),
            (
                r#"sum by (level count_over_time({}[1m]))"#,
                "\",\" or \")\"",
            ),
            (r#"topk(0, count_over_time({}[1m]))"#, "at least 1"),
            (r#"count_over_time({}[0s])"#, "positive duration"),
            (r#"nothing({}[1m])"#, "a metric query"),
            (r#"{app="a"} | json [5m]"#, "line filter"),
        ] {
            let error = parse_query(query).expect_err(query);
            assert!(
                error.to_string().contains(expected),
                "{query}: {error} (wanted {expected})"
            );
        }
        assert!(super::super::parse("count_over_time({}[1m])")
            .unwrap_err()
            .to_string()
            .contains("a log query"));
        assert!(Points::new(0, 20_000 * S, S).is_err(), "too many points");
    }

    proptest! {
        #[test]
        fn count_over_time_by_level_counts_each_window(
            times in prop::collection::vec((0i64..60, prop::bool::ANY), 0..40),
            step in 1i64..7,
            range in 1i64..13,
        ) {
            let none: &[(&str, &str)] = &[];
            let entries: Vec<Written<'_>> = times
                .iter()
                .map(|(t, error)| (*t * S, if *error { Level::Error } else { Level::Info }, "x", none))
                .collect();
            let points = Points::new(20 * S, 50 * S, step * S).unwrap();
            let text = format!("sum by (level) (count_over_time({{}}[{range}s]))");
            let got = series(run(&text, points, &entries));
            // Counted by level from a histogram, as from the store's
            // summaries, it is the same.
            let expr = metric(&text);
            assert_eq!(expr.ranges_by_level_only(), [true]);
            let mut eval = RangeEval::new(expr.ranges()[0], points).unwrap();
            let edges = eval.histogram_edges(true).expect("countable by level");
            let mut counts = vec![[0u64; Level::COUNT]; edges.len() - 1];
            for (t, level, _, _) in &entries {
                if let Some(bucket) = logtap_core::histogram_bucket(&edges, *t) {
                    counts[bucket][*level as usize] += 1;
                }
            }
            eval.add_histogram(&counts);
            let summed = expr.evaluate(points, &mut vec![eval.finish()].into_iter());
            prop_assert_eq!(series(summed), got.clone());
            // Grafana's form of the same question has the same answer.
            let volume = format!(
                "sum by (level, detected_level) (count_over_time({{}} | drop __error__ [{range}s]))"
            );
            prop_assert_eq!(series(run(&volume, points, &entries)), got.clone());
            for level in [Level::Error, Level::Info] {
                let mut wanted = Vec::new();
                for k in 0..points.count() {
                    let t = points.at(k);
                    let n = entries
                        .iter()
                        .filter(|(at, l, _, _)| *l == level && *at > t - range * S && *at <= t)
                        .count();
                    if n > 0 {
                        wanted.push((t, n as f64));
                    }
                }
                let found = got
                    .iter()
                    .find(|s| s.labels == labels(&[("level", level.as_str())]))
                    .map(|s| s.points.clone())
                    .unwrap_or_default();
                prop_assert_eq!(found, wanted, "{} level {}", text, level.as_str());
            }
        }
    }
}

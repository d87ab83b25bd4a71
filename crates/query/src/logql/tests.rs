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
        (
            r#"{} | line_format "{{.x}}""#,
            5,
            "entries are sent as stored",
        ),
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
    prop_oneof![
        word.clone().prop_map(Step::Contains),
        word.prop_map(Step::NotContains),
        (0i64..6).prop_map(Step::LogfmtGreater),
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
    for step in steps {
        query.push_str(&match step {
            Step::Contains(w) => format!(" |= \"{w}\""),
            Step::NotContains(w) => format!(" != \"{w}\""),
            Step::LogfmtGreater(k) => format!(" | logfmt | n > {k}"),
        });
    }
    query
}

/// The reference: each construct by its definition, on plain values.
fn reference(
    selector: &[Sel],
    steps: &[Step],
    level: Level,
    message: &str,
    labels: &[(&str, &str)],
) -> bool {
    let get = |name: &str| -> String {
        if name == "level" {
            return level.as_str().to_string();
        }
        labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let selected = selector.iter().all(|s| match s {
        Sel::Eq(l, v) => get(l) == *v,
        Sel::Ne(l, v) => get(l) != *v,
        Sel::OneOf(l, vs) => vs.contains(&get(l).as_str()),
    });
    selected
        && steps.iter().all(|step| match step {
            Step::Contains(w) => message.contains(w),
            Step::NotContains(w) => !message.contains(w),
            Step::LogfmtGreater(k) => message
                .split(' ')
                .filter_map(|pair| pair.strip_prefix("n="))
                .next_back()
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|n| n > *k),
        })
}

proptest! {
    #[test]
    fn queries_select_what_the_reference_selects(
        selector in prop::collection::vec(sel(), 0..3),
        steps in prop::collection::vec(step(), 0..3),
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
            prop_assert_eq!(
                query.matches(&owned.entry(), &mut scratch),
                reference(&selector, &steps, level, &message, &labels),
                "{} on {:?} {:?} {:?}", text, level, message, labels
            );
        }
    }
}

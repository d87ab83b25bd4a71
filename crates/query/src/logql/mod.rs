//! LogQL, the query language of Grafana Loki, as logtap speaks it: a
//! stream selector over labels, then a pipeline of line filters, parsers
//! and label filters, evaluated on each entry.
//!
//! ```text
//! {service="api", host=~"web-.*", level!="debug"} |= "timeout" != "retry"
//!     | json | status >= 500 and duration > 250ms
//! ```
//!
//! * The selector's labels are the entry's stored labels plus `level` (and
//!   `detected_level`, its name in Grafana). `{}` selects every entry.
//! * Line filters: `|=` (contains), `!=` (does not), `|~` (matches the
//!   regular expression), `!~` (does not). A regex starting with `(?i)` is
//!   case-insensitive.
//! * Parsers add labels from the line: `| json` (every field, nested ones
//!   joined with `_`, or only `| json name="a.b[0]"`), `| logfmt`,
//!   `| regexp "(?P<name>...)"`, `| pattern "<ip> - <_> <status>"`. A line
//!   a parser cannot read gets the label `__error__` (`JSONParserErr`,
//!   `LogfmtParserErr`) and is kept, as in Loki.
//! * Label filters on stored or parsed labels: `=`, `!=`, `=~`, `!~` on
//!   strings; `==`, `!=`, `>`, `>=`, `<`, `<=` on numbers, durations
//!   (`250ms`, `1h30m`) and byte sizes (`10KB`, `1.5MiB`), read in the
//!   literal's form; `and` (or `,`), `or`, parentheses. A comparison on a
//!   label that is missing or does not read as the literal's kind is false.
//!
//! * Stages that rewrite what is shown ([`format`]): `| line_format
//!   "{{.status}} {{__line__}}"` (later filters and parsers see the new
//!   line), `| label_format dst=src, dst="{{.a}}-{{.b}}"`, `| keep a, b`
//!   and `| drop a, b="v", __error__`. A query without them sends each
//!   entry as stored; a query with them sends the rewritten line and, as
//!   Loki does, the labels parsers extracted beside the stored ones (see
//!   [`Scratch::rewrite`]).
//!
//! Metric queries ([`metric`]) count what a log query selects over time.
//!
//! What the store can answer itself is taken out ([`LogQuery::pushdown`]):
//! the selector's exact matchers become the label hint that skips blocks
//! by their filters, a `level` matcher a lowest level, and the text every
//! match must hold (from `|=` and the required literals of `|~` before any
//! parser) the substring hint.

mod eval;
pub mod format;
mod lexer;
pub mod metric;
mod parser;
#[cfg(test)]
mod tests;

pub use eval::{Rewritten, Scratch};

use logtap_core::Level;
use regex::Regex;

/// Why a query does not parse: where, what was expected there, and what
/// was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad query at {position}: expected {expected}, found {found}")]
pub struct LogqlError {
    /// The byte offset in the query.
    pub position: usize,
    /// What the grammar allows there.
    pub expected: String,
    /// What the query has there.
    pub found: String,
}

impl LogqlError {
    /// An error at `position`.
    pub(crate) fn at(position: usize, expected: &str, found: &str) -> LogqlError {
        LogqlError {
            position,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// How a label matcher or string label filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal (a missing label is "", as in Loki).
    Ne,
    /// `=~`: the whole value matches the regex.
    Re,
    /// `!~`: the whole value does not match the regex.
    NotRe,
}

/// `name op "value"`, in a selector or as a string label filter.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// The label's name.
    pub name: String,
    /// How it compares.
    pub op: MatchOp,
    /// The value or pattern, as written.
    pub value: String,
    /// The pattern compiled anchored (`^(?:value)$`), for `=~` and `!~`.
    regex: Option<Regex>,
}

impl LabelMatcher {
    /// Whether a label's value (`""` when the entry lacks it) passes.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::Ne, _) => value != self.value,
            (MatchOp::Re, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRe, Some(regex)) => !regex.is_match(value),
            (_, None) => false,
        }
    }
}

/// How a line filter tests the line.
#[derive(Debug, Clone)]
pub enum LineFilter {
    /// `|= "text"`.
    Contains(String),
    /// `!= "text"`.
    NotContains(String),
    /// `|~ "re"`.
    Matches(Regex),
    /// `!~ "re"`.
    NotMatches(Regex),
}

/// A numeric comparison's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` (also `=` before a number).
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

/// The kind a numeric literal is written in, which is how a label's value
/// is read to compare with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number.
    Number,
    /// A duration, compared in seconds.
    Duration,
    /// A byte size, compared in bytes.
    Bytes,
}

/// A label filter expression.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// A string comparison.
    Match(LabelMatcher),
    /// `name op literal`, the literal read as `unit`.
    Compare {
        /// The label's name.
        name: String,
        /// How it compares.
        op: CmpOp,
        /// The literal, in the unit's base (seconds, bytes).
        value: f64,
        /// How the label's value is read.
        unit: Unit,
    },
    /// Both.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either.
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// A parser stage.
#[derive(Debug, Clone)]
pub enum Parser {
    /// `| json`, or `| json name="path", ...` for only those.
    Json(Vec<(String, Vec<PathStep>)>),
    /// `| logfmt`.
    Logfmt,
    /// `| regexp "..."`: each named group a label.
    Regexp(Regex),
    /// `| pattern "..."`: literal text between `<name>` captures.
    Pattern(Vec<PatternPart>),
}

/// One step of a `| json name="a.b[0]"` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object's field.
    Field(String),
    /// An array's element.
    Index(usize),
}

/// A piece of a `| pattern` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    /// Text the line has there.
    Literal(String),
    /// `<name>`: what stands there becomes the label; `<_>` skips it.
    Capture(Option<String>),
}

/// One stage of the pipeline.
#[derive(Debug, Clone)]
pub enum Stage {
    /// A line filter.
    Line(LineFilter),
    /// A parser, adding labels.
    Parse(Parser),
    /// A label filter.
    Labels(LabelFilter),
    /// A stage that rewrites the line or the labels.
    Format(format::Format),
}

/// A parsed log query: which entries it selects.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// The stream selector; empty selects everything.
    pub selector: Vec<LabelMatcher>,
    /// The pipeline, in order.
    pub stages: Vec<Stage>,
}

/// What the store can use of a query to skip what cannot match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushdown {
    /// Stored labels every match carries with exactly these values.
    pub labels: Vec<(String, String)>,
    /// The lowest level any match has.
    pub min_level: Option<Level>,
    /// Text every match's message holds, exactly.
    pub substrings: Vec<String>,
}

/// Parses a log query.
pub fn parse(text: &str) -> Result<LogQuery, LogqlError> {
    parser::parse(text)
}

/// A parsed query of either kind.
#[derive(Debug, Clone)]
pub enum Query {
    /// Entries: `{...} | ...`.
    Log(LogQuery),
    /// Numbers over time: `count_over_time({...}[5m])` and the rest.
    Metric(metric::MetricExpr),
}

/// Parses a log query or a metric query.
pub fn parse_query(text: &str) -> Result<Query, LogqlError> {
    parser::parse_query(text)
}

/// The label names that stand for the entry's level.
pub(crate) fn is_level_label(name: &str) -> bool {
    name == "level" || name == "detected_level"
}

impl LogQuery {
    /// What the store can filter by itself (see [`Pushdown`]).
    pub fn pushdown(&self) -> Pushdown {
        let mut pushdown = Pushdown::default();
        for matcher in &self.selector {
            if matcher.op != MatchOp::Eq {
                continue;
            }
            if is_level_label(&matcher.name) {
                // Exactly this level is at least this level.
                pushdown.min_level = Level::parse(&matcher.value).ok();
            } else if !matcher.value.is_empty() {
                pushdown
                    .labels
                    .push((matcher.name.clone(), matcher.value.clone()));
            }
        }
        for stage in &self.stages {
            match stage {
                Stage::Line(LineFilter::Contains(text)) if !text.is_empty() => {
                    pushdown.substrings.push(text.clone());
                }
                Stage::Line(LineFilter::Matches(regex)) => {
                    if let Some(hir) = crate::literals::parse(regex.as_str(), false) {
                        pushdown
                            .substrings
                            .extend(crate::literals::required(&hir, false));
                    }
                }
                Stage::Line(_) => {}
                // Later filters look at labels only; the line is the same.
                Stage::Parse(_) | Stage::Labels(_) => {}
                // Later line filters see a line the store never held.
                Stage::Format(format::Format::Line(_)) => break,
                Stage::Format(_) => {}
            }
        }
        pushdown.labels.sort();
        pushdown.labels.dedup();
        pushdown
    }

    /// Whether the query changes the entries it sends (`line_format`,
    /// `label_format`, `keep`, `drop`): a caller then sends
    /// [`Scratch::rewrite`]'s entry in place of the stored one.
    pub fn rewrites(&self) -> bool {
        self.stages
            .iter()
            .any(|stage| matches!(stage, Stage::Format(_)))
    }

    /// Whether any stage looks at more than the message and the stored
    /// labels, or runs a regular expression: matching may then cost far
    /// more per byte than reading.
    pub fn is_costly(&self) -> bool {
        self.stages.iter().any(|stage| {
            matches!(
                stage,
                Stage::Parse(_)
                    | Stage::Format(_)
                    | Stage::Line(LineFilter::Matches(_) | LineFilter::NotMatches(_))
            )
        }) || self
            .selector
            .iter()
            .any(|m| matches!(m.op, MatchOp::Re | MatchOp::NotRe))
    }
}

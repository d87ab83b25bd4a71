//! Turns a request into a [`Plan`]: what the backend filters itself
//! (level, time, cursor: whole blocks are skipped on their summaries),
//! what is checked per entry (text and labels), where the stream starts,
//! and whether it ends or goes on live.
//!
//! Every protocol builds a [`RawQuery`] from its own request form (a gRPC
//! message, HTTP query parameters) and calls [`Plan::parse`] with the
//! [`Mode`] its call has, so they all accept and refuse exactly the same
//! things. Nothing here knows a wire format: the protocols own the
//! conversion from theirs. A query in LogQL ([`logql`]) combines with the
//! older fields: an entry must pass both.

#![deny(missing_docs)]

mod fold;
mod literals;
pub mod logql;

pub use fold::fold;

use fold::FoldedFinder;
use logtap_core::{EntryRef, Filter, Level, Search, UnknownLevel};
use memchr::memmem;
use regex::{Regex, RegexBuilder};
use std::sync::Arc;

/// How much memory a compiled pattern may take. A pattern like `a{1000}{1000}`
/// would otherwise compile into gigabytes; over the limit it is refused.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The longest regular expression accepted, in bytes. The size limit
/// above bounds what a pattern compiles into, but only after the whole
/// pattern is parsed, and parsing a pattern of megabytes holds a runtime
/// worker thread for a long time before it is refused (measured:
/// bench/RESULTS.md, "Figures that comments used to carry"). Nobody types
/// a 64 KiB pattern.
const MAX_PATTERN_BYTES: usize = 64 << 10;

/// How much of a client's own text an error message quotes back.
const QUOTE_BYTES: usize = 120;

/// The first [`QUOTE_BYTES`] of `text`, as every error message quotes a
/// client's text.
fn clip_quote(text: &str) -> String {
    logtap_core::clip_quote(text, QUOTE_BYTES)
}

/// A regex error, short: the regex crate quotes the whole pattern with a
/// caret under the fault, then `error: what`; for a long pattern only that
/// last line is worth sending.
fn clip_reason(reason: String) -> String {
    if reason.len() <= 4 * QUOTE_BYTES {
        return reason;
    }
    let last = reason.lines().last().unwrap_or_default();
    clip_quote(last)
}

/// What a call asks for in general: protocols differ in where a stream
/// starts and whether it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The stored history, then the end (or live with `follow`): gRPC
    /// GetLogs, the HTTP routes.
    History,
    /// A live tail from now (or from a cursor or a time) until cancelled:
    /// gRPC StreamLogs.
    Tail,
}

/// Where a stream starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the oldest entry held (the time filter narrows it further).
    Oldest,
    /// Just after this cursor.
    After(u64),
    /// Just after the newest entry visible when the stream opens.
    Newest,
}

/// A request's filters as the client wrote them, before any checking. The
/// field meanings are those of `logtap.v1.LogRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawQuery {
    /// This level and above; empty means all.
    pub level: String,
    /// `timestamp >= since` (ns); 0 leaves it open.
    pub since: i64,
    /// `timestamp < until` (ns); 0 leaves it open.
    pub until: i64,
    /// Message text to look for; empty means any message.
    pub grep: String,
    /// Whether `grep` is a regular expression rather than plain text.
    pub regex: bool,
    /// Whether `grep` matches whatever the case: plain text when the
    /// message holds it with every character of both lowercased on its
    /// own ([`fold`]), a regular expression compiled case-insensitive.
    pub ignore_case: bool,
    /// Labels every entry must carry, with these exact values.
    pub labels: Vec<(String, String)>,
    /// Only entries after this cursor.
    pub after_cursor: Option<u64>,
    /// At most this many entries; 0 means no limit.
    pub limit: u64,
    /// Newest first (GetLogs without follow only).
    pub reverse: bool,
    /// GetLogs: go on live after the history.
    pub follow: bool,
    /// A LogQL log query (see [`logql`]); empty means none.
    pub query: String,
}

/// Why a query was refused. Every message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The level is none of the names or aliases; the message lists them.
    #[error(transparent)]
    UnknownLevel(#[from] UnknownLevel),
    /// `since` is not before `until`, so nothing could ever match.
    #[error("empty time range: since ({since}) must be before until ({until}); both are Unix epoch nanoseconds, 0 leaves a side open")]
    EmptyTimeRange {
        /// The range's start, as given.
        since: i64,
        /// The range's end, as given.
        until: i64,
    },
    /// The regular expression does not compile (or is too large).
    #[error("bad pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern, clipped.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Newest-first and live cannot be combined: a live stream has no end to
    /// start from.
    #[error("reverse cannot be combined with follow: a live stream goes oldest first")]
    ReverseWithFollow,
    /// StreamLogs is live, so it cannot go newest first.
    #[error("reverse is not allowed on StreamLogs, a live tail goes oldest first; use GetLogs with reverse")]
    ReverseOnLive,
    /// An HTTP query parameter (or header) whose value cannot be read; the
    /// reason says what is accepted.
    #[error("bad {name}: {reason}")]
    BadParameter {
        /// The parameter as the client wrote it (`since`, `Last-Event-ID`).
        name: String,
        /// What is wrong with the value, and what would be right.
        reason: String,
    },
    /// A LogQL query that does not parse; the message says where and
    /// what was expected.
    #[error(transparent)]
    Logql(#[from] logql::LogqlError),
    /// An HTTP query parameter the endpoint does not know, refused rather
    /// than ignored so that a typo (`levle=error`) does not silently return
    /// everything.
    #[error("unknown query parameter {name:?}; this endpoint takes {known}")]
    UnknownParameter {
        /// The parameter as the client wrote it.
        name: String,
        /// The parameters the endpoint takes, for the message.
        known: &'static str,
    },
}

/// The text an entry's message must contain or match.
#[derive(Debug, Clone)]
enum TextPattern {
    /// Plain text, found with a precomputed substring searcher (SIMD where
    /// the CPU has it), because most greps are plain words.
    Substring(Box<memmem::Finder<'static>>),
    /// Plain text whatever the case (`ignore_case`).
    Folded(Box<FoldedFinder>),
    /// A regular expression, when the client asked for one.
    Regex(Regex),
}

/// The filters the store cannot apply itself: checked per entry, in the
/// stream, on entries the store already matched by level, time and cursor.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// The message filter, if any.
    text: Option<TextPattern>,
    /// Every one of these `(name, value)` pairs must be on the entry.
    labels: Vec<(String, String)>,
    /// What the backend may skip blocks by: the text every match holds and
    /// the labels (`None` when the filters give nothing to skip by).
    search: Option<Arc<Search>>,
    /// The LogQL query every entry must also pass.
    query: Option<Arc<logql::LogQuery>>,
}

thread_local! {
    /// What a query's parsers extract from the entry being matched, kept
    /// per thread so matching allocates only when a label first grows.
    static SCRATCH: std::cell::RefCell<logql::Scratch> = std::cell::RefCell::default();
}

impl Matcher {
    /// Whether every entry passes, so the store's own count is exact.
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.labels.is_empty() && self.query.is_none()
    }

    /// Whether matching may cost far more per byte than reading: a regular
    /// expression. The regex crate is linear in the text, but its factor
    /// depends on the pattern: a substring search passes gigabytes a
    /// second, a pattern like `[a-z ]*[aeiou][a-z ]{40}[0-9]{3}` that
    /// defeats the lazy DFA passes a few megabytes, so one 60 KB message
    /// can take milliseconds. Such matching belongs off the threads that
    /// serve connections.
    pub fn is_costly(&self) -> bool {
        matches!(self.text, Some(TextPattern::Regex(_)))
            || self.query.as_ref().is_some_and(|query| query.is_costly())
    }

    /// What every matching entry holds, for the backend to pass over whole
    /// blocks that cannot hold it (see [`Search`]).
    pub fn search(&self) -> Option<Arc<Search>> {
        self.search.clone()
    }

    /// Whether the query changes the entries it sends: each entry
    /// [`Matcher::check`] passes is then sent as [`Matcher::rewrite`]
    /// makes it.
    pub fn rewrites(&self) -> bool {
        self.query.as_ref().is_some_and(|query| query.rewrites())
    }

    /// The entry to send for `entry`, which [`Matcher::check`] has just
    /// passed on this thread (the pipeline's work is kept per thread).
    pub fn rewrite(&self, entry: &EntryRef<'_>) -> logql::Rewritten {
        SCRATCH.with(|scratch| scratch.borrow().rewrite(entry))
    }

    /// Whether `entry` passes the text and label filters.
    pub fn matches(&self, entry: &EntryRef<'_>) -> bool {
        self.check(entry).0
    }

    /// Whether `entry` passes the text and label filters, and how many
    /// message bytes the text filter was given to look at (its whole
    /// message, 0 without a text filter): the cost a caller charges.
    #[inline]
    pub fn check(&self, entry: &EntryRef<'_>) -> (bool, usize) {
        let (text_ok, scanned) = match &self.text {
            None => (true, 0),
            Some(TextPattern::Substring(finder)) => (
                finder.find(entry.message.as_bytes()).is_some(),
                entry.message.len(),
            ),
            Some(TextPattern::Folded(finder)) => {
                (finder.is_match(entry.message), entry.message.len())
            }
            Some(TextPattern::Regex(regex)) => (regex.is_match(entry.message), entry.message.len()),
        };
        let ok = text_ok
            && self
                .labels
                .iter()
                .all(|(name, value)| entry.has_label(name, value));
        let Some(query) = self.query.as_ref().filter(|_| ok) else {
            return (ok, scanned);
        };
        let passes = SCRATCH.with(|scratch| query.matches(entry, &mut scratch.borrow_mut()));
        // A query reads the message at least once, like a text filter.
        (passes, scanned.max(entry.message.len()))
    }
}

impl Matcher {
    fn new(
        text: Option<TextPattern>,
        labels: Vec<(String, String)>,
        (mut substrings, ignore_case): (Vec<String>, bool),
        query: Option<logql::LogQuery>,
    ) -> Matcher {
        let mut hint_labels = labels.clone();
        if let Some(pushdown) = query.as_ref().map(logql::LogQuery::pushdown) {
            // A message holding the text exactly holds it folded too, so
            // the query's text joins a folded hint folded.
            substrings.extend(pushdown.substrings.into_iter().map(|text| {
                if ignore_case {
                    fold(&text)
                } else {
                    text
                }
            }));
            hint_labels.extend(pushdown.labels);
            hint_labels.sort();
            hint_labels.dedup();
        }
        let search = Search {
            substrings,
            ignore_case,
            labels: hint_labels,
        };
        Matcher {
            text,
            labels,
            search: (!search.is_empty()).then(|| Arc::new(search)),
            query: query.map(Arc::new),
        }
    }
}

/// What every message `raw.grep` matches contains, and whether that holds
/// only once folded (`Search::substrings` and `Search::ignore_case`).
fn search_text(raw: &RawQuery) -> (Vec<String>, bool) {
    match (raw.grep.as_str(), raw.regex, raw.ignore_case) {
        ("", _, _) => (Vec::new(), false),
        (grep, false, false) => (vec![grep.to_string()], false),
        (grep, false, true) => (vec![fold(grep)], true),
        (grep, true, ignore_case) => {
            let Some(hir) = literals::parse(grep, ignore_case) else {
                return (Vec::new(), false);
            };
            if !ignore_case {
                let exact = literals::required(&hir, false);
                if !exact.is_empty() {
                    return (exact, false);
                }
            }
            // Without `ignore_case`, `(?i)error` is how many people write
            // a case-insensitive search: its letters give literals only
            // folded.
            let folded = literals::required(&hir, true);
            let ignore_case = !folded.is_empty();
            (folded, ignore_case)
        }
    }
}

/// A checked query: what the backend filters, what is checked per entry,
/// where the stream starts, and whether it ends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Level and time: what the backend filters itself.
    pub filter: Filter,
    /// Where reading starts.
    pub start: Start,
    /// At most this many entries.
    pub limit: Option<u64>,
    /// Newest first.
    pub reverse: bool,
    /// Whether the stream goes on live once the history is sent (always, in
    /// [`Mode::Tail`]); without it the stream ends at the newest entry
    /// visible when it opens.
    pub follow: bool,
    /// The text and label filters, checked per entry.
    pub matcher: Matcher,
}

impl Plan {
    /// Whether the stream's exact length is known up front (history only,
    /// with no text or label filter), so it can be counted from the
    /// backend's summaries and announced before the first entry.
    pub fn counts(&self) -> bool {
        !self.follow && self.matcher.is_empty()
    }

    /// Checks `raw` for a call of `mode`, refusing anything that cannot
    /// make sense.
    pub fn parse(mode: Mode, raw: RawQuery) -> Result<Plan, QueryError> {
        let mut min_level = match raw.level.trim() {
            "" => None,
            name => Some(Level::parse(name)?),
        };
        let query = match raw.query.trim() {
            "" => None,
            text => Some(logql::parse(text)?),
        };
        if let Some(level) = query.as_ref().and_then(|q| q.pushdown().min_level) {
            // Both must hold: the higher bound.
            min_level = Some(min_level.map_or(level, |given| given.max(level)));
        }
        let since = (raw.since != 0).then_some(raw.since);
        let until = (raw.until != 0).then_some(raw.until);
        if let (Some(since), Some(until)) = (since, until) {
            if since >= until {
                return Err(QueryError::EmptyTimeRange { since, until });
            }
        }
        let text = if raw.grep.is_empty() {
            None
        } else if raw.regex {
            if raw.grep.len() > MAX_PATTERN_BYTES {
                return Err(QueryError::BadPattern {
                    pattern: clip_quote(&raw.grep),
                    reason: format!(
                        "the pattern is {} bytes, over the limit of {MAX_PATTERN_BYTES}",
                        raw.grep.len()
                    ),
                });
            }
            let regex = RegexBuilder::new(&raw.grep)
                .case_insensitive(raw.ignore_case)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| QueryError::BadPattern {
                    // Quoted clipped: the whole message must fit in a
                    // status header, reason included (see
                    // `error::clip_message`).
                    pattern: clip_quote(&raw.grep),
                    reason: clip_reason(error.to_string()),
                })?;
            Some(TextPattern::Regex(regex))
        } else if raw.ignore_case {
            Some(TextPattern::Folded(Box::new(FoldedFinder::new(&raw.grep))))
        } else {
            Some(TextPattern::Substring(Box::new(
                memmem::Finder::new(raw.grep.as_bytes()).into_owned(),
            )))
        };
        let follow = match mode {
            Mode::History => raw.follow,
            Mode::Tail => true,
        };
        if raw.reverse {
            match mode {
                Mode::Tail => return Err(QueryError::ReverseOnLive),
                Mode::History if follow => return Err(QueryError::ReverseWithFollow),
                Mode::History => {}
            }
        }
        let start = match (mode, raw.after_cursor, since) {
            (_, Some(cursor), _) => Start::After(cursor),
            (Mode::History, None, _) => Start::Oldest,
            // A live tail from a time reads from the oldest entry on, the
            // time filter skipping what is older.
            (Mode::Tail, None, Some(_)) => Start::Oldest,
            (Mode::Tail, None, None) => Start::Newest,
        };
        let search_text = search_text(&raw);
        let mut labels = raw.labels;
        // Sorted so that logs and tests show the same filter whatever order a
        // client's map iterated in; matching does not depend on it.
        labels.sort();
        Ok(Plan {
            filter: Filter {
                min_level,
                since,
                until,
            },
            start,
            limit: (raw.limit != 0).then_some(raw.limit),
            reverse: raw.reverse,
            follow,
            matcher: Matcher::new(text, labels, search_text, query),
        })
    }

    /// The seed's request: a level and nothing else.
    pub fn from_level(mode: Mode, level: &str) -> Result<Plan, QueryError> {
        Plan::parse(
            mode,
            RawQuery {
                level: level.to_string(),
                ..RawQuery::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(raw: RawQuery) -> Result<Plan, QueryError> {
        Plan::parse(Mode::History, raw)
    }

    #[test]
    fn levels_and_aliases_parse_and_unknown_ones_list_the_valid_names() {
        let query = Plan::from_level(Mode::History, "ERR").expect("alias");
        assert_eq!(query.filter.min_level, Some(Level::Error));
        assert_eq!(
            Plan::from_level(Mode::History, "")
                .expect("empty")
                .filter
                .min_level,
            None
        );
        let error = Plan::from_level(Mode::History, "loud").expect_err("unknown");
        assert!(error
            .to_string()
            .contains("trace, debug, info, warn, error, fatal"));
    }

    #[test]
    fn empty_time_ranges_are_refused_and_zero_leaves_a_side_open() {
        let raw = |since, until| RawQuery {
            since,
            until,
            ..RawQuery::default()
        };
        assert!(matches!(
            get(raw(5, 5)),
            Err(QueryError::EmptyTimeRange { .. })
        ));
        assert!(matches!(
            get(raw(6, 5)),
            Err(QueryError::EmptyTimeRange { .. })
        ));
        let open = get(raw(5, 0)).expect("open until");
        assert_eq!((open.filter.since, open.filter.until), (Some(5), None));
        assert!(get(raw(-10, 5)).is_ok());
    }

    #[test]
    fn bad_and_huge_patterns_are_refused() {
        let raw = |grep: &str| RawQuery {
            grep: grep.into(),
            regex: true,
            ..RawQuery::default()
        };
        assert!(matches!(get(raw("(")), Err(QueryError::BadPattern { .. })));
        assert!(matches!(
            get(raw("a{1000}{1000}")),
            Err(QueryError::BadPattern { .. })
        ));
        assert!(get(raw("time(out)?")).is_ok());
        // Refused before parsing, so it costs nothing; quoted clipped.
        let started = std::time::Instant::now();
        let error = get(raw(&"x".repeat(4 << 20))).expect_err("too long");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        assert!(error.to_string().len() < 400, "{}", error.to_string().len());
        // Plain text is never compiled, so any text is fine.
        assert!(get(RawQuery {
            grep: "(".into(),
            ..RawQuery::default()
        })
        .is_ok());
    }

    #[test]
    fn a_tail_starts_at_the_newest_entry_unless_given_a_cursor_or_a_time() {
        let tail = |raw| Plan::parse(Mode::Tail, raw).expect("tail");
        let now = tail(RawQuery::default());
        assert_eq!((now.start, now.follow), (Start::Newest, true));
        let cursor = tail(RawQuery {
            after_cursor: Some(7),
            since: 5,
            ..RawQuery::default()
        });
        assert_eq!(cursor.start, Start::After(7));
        let time = tail(RawQuery {
            since: 5,
            ..RawQuery::default()
        });
        assert_eq!(time.start, Start::Oldest);
        let history = get(RawQuery::default()).expect("history");
        assert_eq!((history.start, history.follow), (Start::Oldest, false));
        assert!(history.counts());
        let live = get(RawQuery {
            follow: true,
            after_cursor: Some(3),
            ..RawQuery::default()
        })
        .expect("history then live");
        assert_eq!((live.start, live.follow), (Start::After(3), true));
        assert!(!live.counts());
    }

    #[test]
    fn reverse_is_refused_where_it_cannot_work() {
        let reverse = RawQuery {
            reverse: true,
            ..RawQuery::default()
        };
        assert!(get(reverse.clone()).is_ok());
        let follow = RawQuery {
            follow: true,
            ..reverse.clone()
        };
        assert_eq!(
            get(follow).expect_err("follow"),
            QueryError::ReverseWithFollow
        );
        assert_eq!(
            Plan::parse(Mode::Tail, reverse).expect_err("live"),
            QueryError::ReverseOnLive
        );
    }

    fn entry(message: &str) -> EntryRef<'_> {
        EntryRef::new(1, 0, Level::Info, message, logtap_core::Labels::empty())
    }

    fn grep(pattern: &str, regex: bool, ignore_case: bool) -> Plan {
        get(RawQuery {
            grep: pattern.into(),
            regex,
            ignore_case,
            ..RawQuery::default()
        })
        .expect("valid")
    }

    fn search(plan: &Plan) -> Option<(Vec<String>, bool)> {
        plan.matcher
            .search()
            .map(|search| (search.substrings.clone(), search.ignore_case))
    }

    #[test]
    fn ignore_case_grep_matches_whatever_the_case_and_only_then() {
        let text = grep("disk full", false, true);
        assert!(text.matcher.matches(&entry("ERROR disk FULL")));
        assert!(!text.matcher.matches(&entry("disk is full")));
        assert!(!grep("disk full", false, false)
            .matcher
            .matches(&entry("ERROR disk FULL")));
        assert!(grep("ÉCOLE", false, true)
            .matcher
            .matches(&entry("une école")));
        // Character by character: Σ is σ wherever it stands.
        assert!(grep("ΟΣ", false, true).matcher.matches(&entry("ΟΔΟΣ")));
        let regex = grep("disk\\s+full", true, true);
        assert!(regex.matcher.matches(&entry("ERROR Disk   FULL")));
        assert!(!grep("disk\\s+full", true, false)
            .matcher
            .matches(&entry("ERROR Disk FULL")));
        assert!(!text.counts() && !text.matcher.is_costly() && regex.matcher.is_costly());
    }

    #[test]
    fn the_search_hint_carries_the_text_every_match_holds() {
        assert_eq!(
            search(&grep("Disk FULL", false, false)),
            Some((vec!["Disk FULL".into()], false))
        );
        assert_eq!(
            search(&grep("Disk FULL", false, true)),
            Some((vec!["disk full".into()], true))
        );
        assert_eq!(
            search(&grep("NEEDLE-[0-9a-f]{6}", true, false)),
            Some((vec!["NEEDLE-".into()], false))
        );
        assert_eq!(
            search(&grep("(?i)ERROR", true, false)),
            Some((vec!["error".into()], true))
        );
        assert_eq!(
            search(&grep("Err(or)?", true, true)),
            Some((vec!["err".into()], true))
        );
        assert_eq!(search(&grep("foo|bar", true, false)), None);
        assert_eq!(search(&get(RawQuery::default()).expect("all")), None);
    }
}

//! A recursive-descent parser for the log query subset (see the module
//! above for the grammar in words).

use super::format::{Format, LabelChoice, LabelSource, Template};
use super::lexer::{tokens, Token};
use super::metric::{AggOp, BinOp, Grouping, MetricExpr, RangeFunc, Unwrap};
use super::{
    CmpOp, LabelFilter, LabelMatcher, LineFilter, LogQuery, LogqlError, MatchOp, Parser, PathStep,
    PatternPart, Query, Stage, Unit,
};
use regex::{Regex, RegexBuilder};

/// How much memory one compiled pattern of a query may take.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The longest query accepted, in bytes: nobody types more, and parsing
/// costs by the byte.
const MAX_QUERY_BYTES: usize = 64 << 10;

/// The tokens and where the parser stands in them.
struct Cursor {
    /// Every token with its offset.
    tokens: Vec<(usize, Token)>,
    /// The next token's index.
    at: usize,
    /// The query's length, the offset errors at the end name.
    end: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, token)| token)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end, |(offset, _)| *offset)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(_, token)| token.clone());
        self.at += 1;
        token
    }

    /// An error at the next token: `expected` there, and what is there.
    fn error(&self, expected: &str) -> LogqlError {
        let found = self
            .peek()
            .map_or_else(|| "the end of the query".to_string(), Token::describe);
        LogqlError::at(self.position(), expected, &found)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(found)) if *found == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &'static str) -> Result<(), LogqlError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.error(&format!("{op:?}")))
        }
    }

    fn eat_ident(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(name)) if name == word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, LogqlError> {
        match self.peek() {
            Some(Token::Ident(name)) => {
                let name = name.clone();
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.error(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<(usize, String), LogqlError> {
        let position = self.position();
        match self.peek() {
            Some(Token::Str(text)) => {
                let text = text.clone();
                self.at += 1;
                Ok((position, text))
            }
            _ => Err(self.error(what)),
        }
    }
}

/// Parses a whole log query.
pub(crate) fn parse(text: &str) -> Result<LogQuery, LogqlError> {
    let mut cursor = start(text)?;
    if cursor.peek() != Some(&Token::Op("{")) {
        let metric = matches!(cursor.peek(), Some(Token::Ident(word))
            if RangeFunc::by_name(word).is_some() || agg_op(word).is_some() || word == "vector");
        if metric {
            return Err(LogqlError::at(
                0,
                "a log query, {...} and its pipeline (a metric query goes to `logtap query`, QueryMetrics or the Loki API)",
                "a metric query",
            ));
        }
        return Err(cursor.error("\"{\""));
    }
    let query = log_query(&mut cursor)?;
    if cursor.peek().is_some() {
        return Err(cursor.error("a line filter (|=, !=, |~, !~) or \"|\""));
    }
    Ok(query)
}

/// Parses a log query or a metric query.
pub(crate) fn parse_query(text: &str) -> Result<Query, LogqlError> {
    let mut cursor = start(text)?;
    let query = if cursor.peek() == Some(&Token::Op("{")) {
        Query::Log(parse(text)?)
    } else {
        let expr = additive(&mut cursor)?;
        if cursor.peek().is_some() {
            return Err(cursor.error("an operator (+, -, *, /, %) or the end of the query"));
        }
        Query::Metric(expr)
    };
    Ok(query)
}

/// The tokens of a query, checked for length.
fn start(text: &str) -> Result<Cursor, LogqlError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(LogqlError::at(
            0,
            &format!("a query of at most {MAX_QUERY_BYTES} bytes"),
            &format!("{} bytes", text.len()),
        ));
    }
    Ok(Cursor {
        tokens: tokens(text)?,
        at: 0,
        end: text.len(),
    })
}

/// A selector and its pipeline, up to the end, a `[range]`, `| unwrap`
/// or a `)`.
fn log_query(cursor: &mut Cursor) -> Result<LogQuery, LogqlError> {
    let selector = selector(cursor)?;
    let mut stages = Vec::new();
    while let Some(token) = cursor.peek() {
        if matches!(token, Token::Op("[") | Token::Op(")")) || unwrap_follows(cursor) {
            break;
        }
        stages.push(stage(cursor)?);
    }
    Ok(LogQuery { selector, stages })
}

/// Whether `| unwrap` is next.
fn unwrap_follows(cursor: &Cursor) -> bool {
    cursor.peek() == Some(&Token::Op("|"))
        && matches!(cursor.tokens.get(cursor.at + 1), Some((_, Token::Ident(word))) if word == "unwrap")
}

/// `a + b - c`: the loosest binding.
fn additive(cursor: &mut Cursor) -> Result<MetricExpr, LogqlError> {
    let mut left = multiplicative(cursor)?;
    loop {
        let op = match cursor.peek() {
            Some(Token::Op("+")) => BinOp::Add,
            Some(Token::Op("-")) => BinOp::Sub,
            _ => return Ok(left),
        };
        cursor.at += 1;
        let right = multiplicative(cursor)?;
        left = MetricExpr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        };
    }
}

/// `a * b / c % d`.
fn multiplicative(cursor: &mut Cursor) -> Result<MetricExpr, LogqlError> {
    let mut left = metric_primary(cursor)?;
    loop {
        let op = match cursor.peek() {
            Some(Token::Op("*")) => BinOp::Mul,
            Some(Token::Op("/")) => BinOp::Div,
            Some(Token::Op("%")) => BinOp::Mod,
            _ => return Ok(left),
        };
        cursor.at += 1;
        let right = metric_primary(cursor)?;
        left = MetricExpr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        };
    }
}

/// A number, `vector(n)`, a range or vector aggregation, or `( expr )`.
fn metric_primary(cursor: &mut Cursor) -> Result<MetricExpr, LogqlError> {
    const EXPECTED: &str =
        "a metric query: count_over_time, rate, sum by (...) (...), vector(n) or a number";
    let position = cursor.position();
    match cursor.peek().cloned() {
        Some(Token::Op("(")) => {
            cursor.at += 1;
            let inner = additive(cursor)?;
            cursor.expect_op(")")?;
            Ok(inner)
        }
        Some(Token::Op("-")) => {
            cursor.at += 1;
            let inner = metric_primary(cursor)?;
            Ok(MetricExpr::Binary {
                op: BinOp::Sub,
                left: Box::new(MetricExpr::Number(0.0)),
                right: Box::new(inner),
            })
        }
        Some(Token::Number(text)) => {
            cursor.at += 1;
            text.parse()
                .map(MetricExpr::Number)
                .map_err(|_| LogqlError::at(position, "a number", &format!("{text:?}")))
        }
        Some(Token::Ident(word)) if word == "vector" => {
            cursor.at += 1;
            cursor.expect_op("(")?;
            let value = number(cursor)?;
            cursor.expect_op(")")?;
            Ok(MetricExpr::Vector(value))
        }
        Some(Token::Ident(word)) => {
            if let Some(func) = RangeFunc::by_name(&word) {
                cursor.at += 1;
                return range_aggregation(cursor, func);
            }
            if let Some(op) = agg_op(&word) {
                cursor.at += 1;
                return vector_aggregation(cursor, op);
            }
            Err(cursor.error(EXPECTED))
        }
        Some(Token::Op("{")) => Err(LogqlError::at(
            position,
            "a metric function around the log query, e.g. count_over_time({...}[5m])",
            "a log query",
        )),
        _ => Err(cursor.error(EXPECTED)),
    }
}

/// A number literal (possibly negative).
fn number(cursor: &mut Cursor) -> Result<f64, LogqlError> {
    let negative = cursor.eat_op("-");
    let position = cursor.position();
    match cursor.next() {
        Some(Token::Number(text)) => text
            .parse::<f64>()
            .map(|n| if negative { -n } else { n })
            .map_err(|_| LogqlError::at(position, "a number", &format!("{text:?}"))),
        _ => {
            cursor.at -= 1;
            Err(cursor.error("a number"))
        }
    }
}

/// `func([param,] {selector} pipeline [range] [| unwrap label])`.
fn range_aggregation(cursor: &mut Cursor, func: RangeFunc) -> Result<MetricExpr, LogqlError> {
    cursor.expect_op("(")?;
    let func = match func {
        RangeFunc::QuantileOverTime(_) => {
            let phi = number(cursor)?;
            cursor.expect_op(",")?;
            RangeFunc::QuantileOverTime(phi)
        }
        other => other,
    };
    if cursor.peek() != Some(&Token::Op("{")) {
        return Err(cursor.error("a log query, {...}"));
    }
    let query = log_query(cursor)?;
    let mut range = None;
    if cursor.peek() == Some(&Token::Op("[")) {
        range = Some(range_literal(cursor)?);
    }
    // Loki takes the range right after the selector too: the pipeline
    // then follows it.
    let mut query = query;
    if range.is_some() && !matches!(cursor.peek(), Some(Token::Op(")"))) && !unwrap_follows(cursor)
    {
        while let Some(token) = cursor.peek() {
            if matches!(token, Token::Op(")")) || unwrap_follows(cursor) {
                break;
            }
            query.stages.push(stage(cursor)?);
        }
    }
    let mut unwrap = None;
    if unwrap_follows(cursor) {
        cursor.at += 2;
        unwrap = Some(unwrap_target(cursor)?);
    }
    if range.is_none() {
        if cursor.peek() != Some(&Token::Op("[")) {
            return Err(cursor.error("a range, e.g. [5m]"));
        }
        range = Some(range_literal(cursor)?);
    }
    let position = cursor.position();
    match (func.unwraps(), &unwrap) {
        (Some(true), None) => {
            return Err(LogqlError::at(
                position,
                "| unwrap label before the range: this function works on values",
                "none",
            ))
        }
        (Some(false), Some(_)) => {
            return Err(LogqlError::at(
                position,
                "no | unwrap: this function counts entries or bytes",
                "| unwrap",
            ))
        }
        _ => {}
    }
    cursor.expect_op(")")?;
    Ok(MetricExpr::Range {
        func,
        query,
        range: range.unwrap_or(0),
        unwrap,
    })
}

/// `label`, `duration(label)` or `bytes(label)` after `| unwrap`.
fn unwrap_target(cursor: &mut Cursor) -> Result<Unwrap, LogqlError> {
    let name = cursor.ident("a label to unwrap")?;
    let unit = match name.as_str() {
        "duration" | "duration_seconds" => Some(Unit::Duration),
        "bytes" => Some(Unit::Bytes),
        _ => None,
    };
    match unit {
        Some(unit) if cursor.eat_op("(") => {
            let label = cursor.ident("a label to unwrap")?;
            cursor.expect_op(")")?;
            Ok(Unwrap { label, unit })
        }
        _ => Ok(Unwrap {
            label: name,
            unit: Unit::Number,
        }),
    }
}

/// `[5m]`, in nanoseconds.
fn range_literal(cursor: &mut Cursor) -> Result<i64, LogqlError> {
    cursor.expect_op("[")?;
    let position = cursor.position();
    let Some(Token::Number(text)) = cursor.next() else {
        cursor.at -= 1;
        return Err(cursor.error("a duration, e.g. 5m"));
    };
    let seconds = read_duration(&text)
        .filter(|seconds| *seconds > 0.0)
        .ok_or_else(|| {
            LogqlError::at(
                position,
                "a positive duration, e.g. 5m",
                &format!("{text:?}"),
            )
        })?;
    cursor.expect_op("]")?;
    Ok((seconds * 1e9) as i64)
}

/// The vector aggregation named `word`, without its parameter.
fn agg_op(word: &str) -> Option<AggOp> {
    Some(match word {
        "sum" => AggOp::Sum,
        "count" => AggOp::Count,
        "avg" => AggOp::Avg,
        "min" => AggOp::Min,
        "max" => AggOp::Max,
        "topk" => AggOp::Topk(0),
        "bottomk" => AggOp::Bottomk(0),
        _ => return None,
    })
}

/// `op [by|without (labels)] ([k,] expr) [by|without (labels)]`.
fn vector_aggregation(cursor: &mut Cursor, op: AggOp) -> Result<MetricExpr, LogqlError> {
    let mut grouping = grouping(cursor)?;
    cursor.expect_op("(")?;
    let op = match op {
        AggOp::Topk(_) | AggOp::Bottomk(_) => {
            let position = cursor.position();
            let k = number(cursor)?;
            if k < 1.0 || k.fract() != 0.0 {
                return Err(LogqlError::at(
                    position,
                    "a whole number k of at least 1",
                    &k.to_string(),
                ));
            }
            cursor.expect_op(",")?;
            if matches!(op, AggOp::Topk(_)) {
                AggOp::Topk(k as usize)
            } else {
                AggOp::Bottomk(k as usize)
            }
        }
        other => other,
    };
    let inner = additive(cursor)?;
    cursor.expect_op(")")?;
    if grouping.is_none() {
        grouping = self::grouping(cursor)?;
    }
    Ok(MetricExpr::Aggregate {
        op,
        grouping,
        inner: Box::new(inner),
    })
}

/// `by (a, b)` or `without (a)`, if next.
fn grouping(cursor: &mut Cursor) -> Result<Option<Grouping>, LogqlError> {
    let by = if cursor.eat_ident("by") {
        true
    } else if cursor.eat_ident("without") {
        false
    } else {
        return Ok(None);
    };
    cursor.expect_op("(")?;
    let mut names = Vec::new();
    if !cursor.eat_op(")") {
        loop {
            names.push(cursor.ident("a label name")?);
            if cursor.eat_op(")") {
                break;
            }
            if !cursor.eat_op(",") {
                return Err(cursor.error("\",\" or \")\""));
            }
        }
    }
    Ok(Some(if by {
        Grouping::By(names)
    } else {
        Grouping::Without(names)
    }))
}

/// `{ matcher, ... }`.
fn selector(cursor: &mut Cursor) -> Result<Vec<LabelMatcher>, LogqlError> {
    cursor.expect_op("{")?;
    let mut matchers = Vec::new();
    if cursor.eat_op("}") {
        return Ok(matchers);
    }
    loop {
        let name = cursor.ident("a label name")?;
        matchers.push(matcher(cursor, name)?);
        if cursor.eat_op("}") {
            return Ok(matchers);
        }
        if !cursor.eat_op(",") {
            return Err(cursor.error("\",\" or \"}\""));
        }
    }
}

/// The operator and value of a string matcher on `name`.
fn matcher(cursor: &mut Cursor, name: String) -> Result<LabelMatcher, LogqlError> {
    let op = match cursor.peek() {
        Some(Token::Op("=")) => MatchOp::Eq,
        Some(Token::Op("!=")) => MatchOp::Ne,
        Some(Token::Op("=~")) => MatchOp::Re,
        Some(Token::Op("!~")) => MatchOp::NotRe,
        _ => return Err(cursor.error("a matcher operator (=, !=, =~ or !~)")),
    };
    cursor.at += 1;
    let (position, value) = cursor.string("a quoted value")?;
    let regex = match op {
        MatchOp::Re | MatchOp::NotRe => Some(compile(&format!("^(?:{value})$"), position)?),
        MatchOp::Eq | MatchOp::Ne => None,
    };
    Ok(LabelMatcher {
        name,
        op,
        value,
        regex,
    })
}

/// Compiles a query's regex, bounded in size; an error names its place.
fn compile(pattern: &str, position: usize) -> Result<Regex, LogqlError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| {
            let reason = error.to_string();
            let last = reason.lines().last().unwrap_or_default().to_string();
            LogqlError::at(
                position,
                "a valid regular expression",
                &logtap_core::clip_quote(&last, 120),
            )
        })
}

/// One pipeline stage: a line filter, or `|` and a parser or label filter.
fn stage(cursor: &mut Cursor) -> Result<Stage, LogqlError> {
    let line = |filter: fn(String) -> LineFilter, cursor: &mut Cursor| {
        cursor.at += 1;
        let (_, text) = cursor.string("a quoted text to filter lines by")?;
        Ok(Stage::Line(filter(text)))
    };
    match cursor.peek() {
        Some(Token::Op("|=")) => line(LineFilter::Contains, cursor),
        Some(Token::Op("!=")) => line(LineFilter::NotContains, cursor),
        Some(Token::Op("|~")) | Some(Token::Op("!~")) => {
            let negated = cursor.peek() == Some(&Token::Op("!~"));
            cursor.at += 1;
            let (position, pattern) = cursor.string("a quoted regular expression")?;
            let regex = compile(&pattern, position)?;
            Ok(Stage::Line(if negated {
                LineFilter::NotMatches(regex)
            } else {
                LineFilter::Matches(regex)
            }))
        }
        Some(Token::Op("|")) => {
            cursor.at += 1;
            after_pipe(cursor)
        }
        _ => Err(cursor.error("a line filter (|=, !=, |~, !~) or \"|\"")),
    }
}

/// What follows a `|`.
fn after_pipe(cursor: &mut Cursor) -> Result<Stage, LogqlError> {
    let position = cursor.position();
    let Some(Token::Ident(word)) = cursor.peek().cloned() else {
        if cursor.peek() == Some(&Token::Op("(")) {
            return Ok(Stage::Labels(label_or(cursor)?));
        }
        return Err(cursor.error("a parser (json, logfmt, regexp, pattern) or a label filter"));
    };
    // `| json > 5` filters on a label called json; `| json` parses.
    let followed_by_op = matches!(
        cursor.tokens.get(cursor.at + 1),
        Some((_, Token::Op(op)))
            if matches!(*op, "=" | "!=" | "=~" | "!~" | "==" | ">" | ">=" | "<" | "<=")
    );
    match word.as_str() {
        "json" if !followed_by_op => {
            cursor.at += 1;
            Ok(Stage::Parse(Parser::Json(json_params(cursor)?)))
        }
        "logfmt" if !followed_by_op => {
            cursor.at += 1;
            Ok(Stage::Parse(Parser::Logfmt))
        }
        "regexp" if !followed_by_op => {
            cursor.at += 1;
            let (position, pattern) = cursor.string("a quoted regular expression")?;
            let regex = compile(&pattern, position)?;
            if regex.capture_names().flatten().next().is_none() {
                return Err(LogqlError::at(
                    position,
                    "a regular expression with a named group, (?P<name>...)",
                    "none",
                ));
            }
            Ok(Stage::Parse(Parser::Regexp(regex)))
        }
        "pattern" if !followed_by_op => {
            cursor.at += 1;
            let (position, text) = cursor.string("a quoted pattern")?;
            Ok(Stage::Parse(Parser::Pattern(pattern(&text, position)?)))
        }
        "line_format" if !followed_by_op => {
            cursor.at += 1;
            let (position, text) = cursor.string("a quoted template")?;
            // Errors point inside the string, past its opening quote.
            Ok(Stage::Format(Format::Line(Template::parse(
                &text,
                position + 1,
            )?)))
        }
        "label_format" if !followed_by_op => {
            cursor.at += 1;
            Ok(Stage::Format(Format::Labels(label_format(cursor)?)))
        }
        "keep" if !followed_by_op => {
            cursor.at += 1;
            Ok(Stage::Format(Format::Keep(label_choices(cursor)?)))
        }
        "drop" if !followed_by_op => {
            cursor.at += 1;
            Ok(Stage::Format(Format::Drop(label_choices(cursor)?)))
        }
        "unpack" | "decolorize" | "unwrap" if !followed_by_op => Err(LogqlError::at(
            position,
            "a stage logtap evaluates (json, logfmt, regexp, pattern, line_format, label_format, keep, drop, a label filter)",
            &format!("{word} (not supported)"),
        )),
        _ => Ok(Stage::Labels(label_or(cursor)?)),
    }
}

/// `dst=src, dst="template", ...` after `label_format`: at least one.
fn label_format(cursor: &mut Cursor) -> Result<Vec<(String, LabelSource)>, LogqlError> {
    let mut labels = Vec::new();
    loop {
        let position = cursor.position();
        let name = cursor.ident("a label name to set")?;
        if labels.iter().any(|(have, _)| *have == name) {
            return Err(LogqlError::at(
                position,
                "each label once in a label_format",
                &format!("{name:?} again"),
            ));
        }
        cursor.expect_op("=")?;
        let position = cursor.position();
        let source = match cursor.next() {
            Some(Token::Ident(source)) => LabelSource::Rename(source),
            Some(Token::Str(text)) => LabelSource::Template(Template::parse(&text, position + 1)?),
            _ => {
                cursor.at -= 1;
                return Err(cursor.error("a label name to rename or a quoted template"));
            }
        };
        labels.push((name, source));
        if !cursor.eat_op(",") {
            return Ok(labels);
        }
    }
}

/// `name, name="value", ...` after `keep` or `drop`: at least one.
fn label_choices(cursor: &mut Cursor) -> Result<Vec<LabelChoice>, LogqlError> {
    let mut choices = Vec::new();
    loop {
        let name = cursor.ident("a label name")?;
        let has_op = matches!(cursor.peek(), Some(Token::Op("=" | "!=" | "=~" | "!~")));
        choices.push(if has_op {
            LabelChoice::Matching(matcher(cursor, name)?)
        } else {
            LabelChoice::Name(name)
        });
        if !cursor.eat_op(",") {
            return Ok(choices);
        }
    }
}

/// `name="path", ...` after `json`, if any.
fn json_params(cursor: &mut Cursor) -> Result<Vec<(String, Vec<PathStep>)>, LogqlError> {
    let mut params = Vec::new();
    while matches!(cursor.peek(), Some(Token::Ident(_)))
        && cursor.tokens.get(cursor.at + 1).map(|(_, t)| t) == Some(&Token::Op("="))
    {
        let name = cursor.ident("a label name")?;
        cursor.expect_op("=")?;
        let (position, path) = cursor.string("a quoted JSON path")?;
        params.push((name, json_path(&path, position)?));
        if !cursor.eat_op(",") {
            break;
        }
    }
    Ok(params)
}

/// `a.b[0]["c d"]` into steps.
fn json_path(path: &str, position: usize) -> Result<Vec<PathStep>, LogqlError> {
    let bad = || LogqlError::at(position, "a JSON path like a.b[0]", &format!("{path:?}"));
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or_else(bad)?;
            let inside = &after[..close];
            if let Some(name) = inside
                .strip_prefix('"')
                .and_then(|name| name.strip_suffix('"'))
            {
                steps.push(PathStep::Field(name.to_string()));
            } else {
                steps.push(PathStep::Index(inside.parse().map_err(|_| bad())?));
            }
            rest = &after[close + 1..];
        } else {
            let rest_trimmed = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trimmed.find(['.', '[']).unwrap_or(rest_trimmed.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(PathStep::Field(rest_trimmed[..end].to_string()));
            rest = &rest_trimmed[end..];
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

/// `literal <name> literal <_> ...` into parts.
fn pattern(text: &str, position: usize) -> Result<Vec<PatternPart>, LogqlError> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(open) => {
                let close = rest[open..].find('>').map(|close| open + close);
                let name = close.map(|close| &rest[open + 1..close]);
                match (close, name) {
                    (Some(close), Some(name))
                        if !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        if open > 0 {
                            parts.push(PatternPart::Literal(rest[..open].to_string()));
                        }
                        if matches!(parts.last(), Some(PatternPart::Capture(_))) && open == 0 {
                            return Err(LogqlError::at(
                                position,
                                "text between two captures in a pattern",
                                &format!("{text:?}"),
                            ));
                        }
                        parts.push(PatternPart::Capture(
                            (name != "_").then(|| name.to_string()),
                        ));
                        rest = &rest[close + 1..];
                    }
                    _ => {
                        // A `<` that opens no capture is text.
                        parts.push(PatternPart::Literal(rest[..=open].to_string()));
                        rest = &rest[open + 1..];
                    }
                }
            }
            None => {
                parts.push(PatternPart::Literal(rest.to_string()));
                rest = "";
            }
        }
    }
    if !parts
        .iter()
        .any(|part| matches!(part, PatternPart::Capture(Some(_))))
    {
        return Err(LogqlError::at(
            position,
            "a pattern with at least one <name> capture",
            &format!("{text:?}"),
        ));
    }
    Ok(parts)
}

/// `a or b or ...`: `or` binds looser than `and`.
fn label_or(cursor: &mut Cursor) -> Result<LabelFilter, LogqlError> {
    let mut left = label_and(cursor)?;
    while cursor.eat_ident("or") {
        let right = label_and(cursor)?;
        left = LabelFilter::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

/// `a and b`, `a, b` or `a b`.
fn label_and(cursor: &mut Cursor) -> Result<LabelFilter, LogqlError> {
    let mut left = label_primary(cursor)?;
    loop {
        if cursor.eat_ident("and") || cursor.eat_op(",") {
            let right = label_primary(cursor)?;
            left = LabelFilter::And(Box::new(left), Box::new(right));
        } else {
            return Ok(left);
        }
    }
}

/// One comparison, or a parenthesised expression.
fn label_primary(cursor: &mut Cursor) -> Result<LabelFilter, LogqlError> {
    if cursor.eat_op("(") {
        let inner = label_or(cursor)?;
        cursor.expect_op(")")?;
        return Ok(inner);
    }
    let name = cursor.ident("a label name to filter on")?;
    let op = match cursor.peek() {
        Some(Token::Op("==")) => Some(CmpOp::Eq),
        Some(Token::Op(">")) => Some(CmpOp::Gt),
        Some(Token::Op(">=")) => Some(CmpOp::Ge),
        Some(Token::Op("<")) => Some(CmpOp::Lt),
        Some(Token::Op("<=")) => Some(CmpOp::Le),
        Some(Token::Op("=")) | Some(Token::Op("!=")) => {
            // A string comparison unless a number follows.
            match cursor.tokens.get(cursor.at + 1).map(|(_, t)| t) {
                Some(Token::Number(_)) | Some(Token::Op("-")) => {
                    Some(if cursor.peek() == Some(&Token::Op("=")) {
                        CmpOp::Eq
                    } else {
                        CmpOp::Ne
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    let Some(op) = op else {
        return Ok(LabelFilter::Match(matcher(cursor, name).map_err(|_| {
            cursor.error("a comparison (=, !=, =~, !~, ==, >, >=, <, <=) and a value")
        })?));
    };
    cursor.at += 1;
    let position = cursor.position();
    let negative = cursor.eat_op("-");
    let Some(Token::Number(literal)) = cursor.next() else {
        cursor.at -= 1;
        return Err(cursor.error("a number, a duration (250ms) or a byte size (10KB)"));
    };
    let (value, unit) = read_literal(&literal).ok_or_else(|| {
        LogqlError::at(
            position,
            "a number, a duration (250ms) or a byte size (10KB)",
            &format!("{literal:?}"),
        )
    })?;
    Ok(LabelFilter::Compare {
        name,
        op,
        value: if negative { -value } else { value },
        unit,
    })
}

/// A literal as a number, a duration (seconds) or a byte size (bytes).
pub(crate) fn read_literal(text: &str) -> Option<(f64, Unit)> {
    if let Ok(number) = text.parse::<f64>() {
        return Some((number, Unit::Number));
    }
    if let Some(seconds) = read_duration(text) {
        return Some((seconds, Unit::Duration));
    }
    read_bytes(text).map(|bytes| (bytes, Unit::Bytes))
}

/// A Go duration (`1h30m`, `250ms`, `1.5s`, `10us`) in seconds.
pub(crate) fn read_duration(text: &str) -> Option<f64> {
    const UNITS: [(&str, f64); 8] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86_400.0),
    ];
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let (_, scale) = UNITS.iter().find(|(name, _)| *name == unit)?;
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A byte size (`10KB`, `1.5MiB`, `512B`) in bytes.
pub(crate) fn read_bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..digits].parse().ok()?;
    let scale = match text[digits..].to_ascii_uppercase().as_str() {
        "B" | "" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        "TIB" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(number * scale)
}

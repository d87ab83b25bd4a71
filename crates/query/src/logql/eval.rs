//! Evaluating a log query on one entry: the selector, then each stage in
//! order, parsers adding labels that later label filters see.

use super::parser::{read_bytes, read_duration};
use super::{
    is_level_label, CmpOp, LabelFilter, LineFilter, LogQuery, Parser, PathStep, PatternPart, Stage,
    Unit,
};
use logtap_core::EntryRef;

/// The labels parsers extracted from one entry; kept between entries so
/// their buffers are reused.
#[derive(Debug, Default)]
pub struct Scratch {
    /// `(name, value)` in the order extracted; a later one of the same
    /// name replaces an earlier one.
    labels: Vec<(String, String)>,
}

impl Scratch {
    /// Adds (or replaces) an extracted label. A name the entry already has
    /// as a stored label (or `level`) is suffixed `_extracted`, as Loki
    /// does, so a filter can still reach both.
    fn set(&mut self, entry: &EntryRef<'_>, name: &str, value: &str) {
        let mut name = sanitize(name);
        if is_level_label(&name) || entry.labels().any(|(stored, _)| stored == name) {
            name.push_str("_extracted");
        }
        match self.labels.iter_mut().find(|(have, _)| *have == name) {
            Some((_, old)) => {
                old.clear();
                old.push_str(value);
            }
            None => self.labels.push((name, value.to_string())),
        }
    }
}

impl Scratch {
    /// A label's value as filters see it (see [`label`]).
    pub(crate) fn get<'a>(&'a self, entry: &'a EntryRef<'_>, name: &str) -> Option<&'a str> {
        label(entry, self, name)
    }

    /// What parsers extracted from the entry last matched.
    pub(crate) fn extracted(&self) -> &[(String, String)] {
        &self.labels
    }
}

/// A label name as Loki makes one from a field: characters other than
/// letters, digits and `_` become `_`, and a leading digit gets a `_`.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A label's value as filters see it: extracted, then stored, then the
/// entry's level; `None` when the entry has no such label.
fn label<'a>(entry: &'a EntryRef<'_>, scratch: &'a Scratch, name: &str) -> Option<&'a str> {
    if let Some((_, value)) = scratch.labels.iter().rev().find(|(n, _)| n == name) {
        return Some(value);
    }
    if let Some((_, value)) = entry.labels().find(|(n, _)| *n == name) {
        return Some(value);
    }
    is_level_label(name).then(|| entry.level.as_str())
}

impl LogQuery {
    /// Whether `entry` is selected; `scratch` holds what parsers extract.
    pub fn matches(&self, entry: &EntryRef<'_>, scratch: &mut Scratch) -> bool {
        scratch.labels.clear();
        let selected = self
            .selector
            .iter()
            .all(|matcher| matcher.matches(label(entry, scratch, &matcher.name).unwrap_or("")));
        if !selected {
            return false;
        }
        for stage in &self.stages {
            let pass = match stage {
                Stage::Line(filter) => line(filter, entry.message),
                Stage::Parse(parser) => {
                    parse(parser, entry, scratch);
                    true
                }
                Stage::Labels(filter) => labels(filter, entry, scratch),
            };
            if !pass {
                return false;
            }
        }
        true
    }
}

/// Whether the line passes a line filter.
fn line(filter: &LineFilter, message: &str) -> bool {
    match filter {
        LineFilter::Contains(text) => message.contains(text.as_str()),
        LineFilter::NotContains(text) => !message.contains(text.as_str()),
        LineFilter::Matches(regex) => regex.is_match(message),
        LineFilter::NotMatches(regex) => !regex.is_match(message),
    }
}

/// Whether the labels pass a label filter.
fn labels(filter: &LabelFilter, entry: &EntryRef<'_>, scratch: &Scratch) -> bool {
    match filter {
        LabelFilter::Match(matcher) => {
            matcher.matches(label(entry, scratch, &matcher.name).unwrap_or(""))
        }
        LabelFilter::Compare {
            name,
            op,
            value,
            unit,
        } => {
            let Some(text) = label(entry, scratch, name) else {
                return false;
            };
            let found = match unit {
                Unit::Number => text.trim().parse::<f64>().ok(),
                Unit::Duration => read_duration(text),
                Unit::Bytes => read_bytes(text),
            };
            let Some(found) = found else {
                return false;
            };
            match op {
                CmpOp::Eq => found == *value,
                CmpOp::Ne => found != *value,
                CmpOp::Gt => found > *value,
                CmpOp::Ge => found >= *value,
                CmpOp::Lt => found < *value,
                CmpOp::Le => found <= *value,
            }
        }
        LabelFilter::And(left, right) => {
            labels(left, entry, scratch) && labels(right, entry, scratch)
        }
        LabelFilter::Or(left, right) => {
            labels(left, entry, scratch) || labels(right, entry, scratch)
        }
    }
}

/// Runs a parser, adding what it extracts (or `__error__`) to `scratch`.
fn parse(parser: &Parser, entry: &EntryRef<'_>, scratch: &mut Scratch) {
    let message = entry.message;
    match parser {
        Parser::Json(params) => {
            let Ok(serde_json::Value::Object(object)) =
                serde_json::from_str::<serde_json::Value>(message)
            else {
                scratch.set(entry, "__error__", "JSONParserErr");
                return;
            };
            if params.is_empty() {
                flatten(entry, scratch, "", &object);
            } else {
                let root = serde_json::Value::Object(object);
                for (name, path) in params {
                    let value = path.iter().try_fold(&root, |value, step| match step {
                        PathStep::Field(field) => value.get(field),
                        PathStep::Index(index) => value.get(*index),
                    });
                    let text = value.map(json_text).unwrap_or_default();
                    scratch.set(entry, name, &text);
                }
            }
        }
        Parser::Logfmt => {
            if !logfmt(message, |key, value| scratch.set(entry, key, value)) {
                scratch.set(entry, "__error__", "LogfmtParserErr");
            }
        }
        Parser::Regexp(regex) => {
            if let Some(captures) = regex.captures(message) {
                for name in regex.capture_names().flatten() {
                    if let Some(found) = captures.name(name) {
                        scratch.set(entry, name, found.as_str());
                    }
                }
            }
        }
        Parser::Pattern(parts) => {
            let mut found = Vec::new();
            if pattern(parts, message, &mut found) {
                for (name, value) in found {
                    scratch.set(entry, name, value);
                }
            }
        }
    }
}

/// A JSON value as a label's text: strings as they are, other scalars as
/// JSON writes them, `null` as "", objects and arrays as their JSON.
fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every scalar field of `object`, nested names joined with `_`; arrays
/// are skipped, as Loki's `| json` does without parameters.
fn flatten(
    entry: &EntryRef<'_>,
    scratch: &mut Scratch,
    prefix: &str,
    object: &serde_json::Map<String, serde_json::Value>,
) {
    for (key, value) in object {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}_{key}")
        };
        match value {
            serde_json::Value::Object(inner) => flatten(entry, scratch, &name, inner),
            serde_json::Value::Array(_) => {}
            scalar => scratch.set(entry, &name, &json_text(scalar)),
        }
    }
}

/// Reads `key=value key2="quoted value" flag` pairs, calling `found` for
/// each; false when the line is not logfmt (a quote that does not close,
/// a pair without a key).
fn logfmt(line: &str, mut found: impl FnMut(&str, &str)) -> bool {
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() {
            return false;
        }
        rest = &rest[key_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            // A bare key: a flag, with an empty value.
            found(key, "");
            rest = rest.trim_start();
            continue;
        };
        if let Some(quoted) = after_eq.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, other)) => value.push(other),
                        None => return false,
                    },
                    '"' => {
                        end = Some(at);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let Some(end) = end else {
                return false;
            };
            found(key, &value);
            rest = quoted[end + 1..].trim_start();
        } else {
            let value_end = after_eq.find(' ').unwrap_or(after_eq.len());
            found(key, &after_eq[..value_end]);
            rest = after_eq[value_end..].trim_start();
        }
    }
    true
}

/// Matches a `| pattern` against the line, collecting its captures; false
/// when the line does not fit.
fn pattern<'a, 'p>(
    parts: &'p [PatternPart],
    line: &'a str,
    found: &mut Vec<(&'p str, &'a str)>,
) -> bool {
    let mut rest = line;
    let mut index = 0;
    while index < parts.len() {
        match &parts[index] {
            PatternPart::Literal(text) => {
                let Some(after) = rest.strip_prefix(text.as_str()) else {
                    return false;
                };
                rest = after;
            }
            PatternPart::Capture(name) => {
                // A capture runs to the next literal, or to the end.
                let (value, after) = match parts.get(index + 1) {
                    Some(PatternPart::Literal(next)) => match rest.find(next.as_str()) {
                        Some(at) => (&rest[..at], &rest[at..]),
                        None => return false,
                    },
                    _ => (rest, ""),
                };
                if let Some(name) = name {
                    found.push((name, value));
                }
                rest = after;
            }
        }
        index += 1;
    }
    true
}

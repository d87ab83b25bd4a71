//! Evaluating a log query on one entry: the selector, then each stage in
//! order, parsers adding labels that later label filters see.

use super::format::{Format, LabelSource, Values};
use super::parser::{read_bytes, read_duration};
use super::{
    is_level_label, CmpOp, LabelFilter, LineFilter, LogQuery, Parser, PathStep, PatternPart, Stage,
    Unit,
};
use logtap_core::{encode_labels, normalize_labels, EntryRef, Labels};

/// What the pipeline made of one entry: the labels parsers extracted or
/// stages set, the stored labels stages removed, and the line as
/// `line_format` left it. Kept between entries so buffers are reused.
#[derive(Debug, Default)]
pub struct Scratch {
    /// `(name, value)` in the order extracted or set; a later one of the
    /// same name replaces an earlier one, and one of a stored label's name
    /// (set by `label_format`) stands in for the stored one.
    labels: Vec<(String, String)>,
    /// Stored labels `drop`, `keep` or a rename took away: filters no
    /// longer see them and a rewritten entry leaves them out.
    hidden: Vec<String>,
    /// The line as the last `line_format` rendered it; `None` while it is
    /// the stored message.
    line: Option<String>,
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
        self.set_exact(name, value);
    }

    /// Sets a label by exactly this name, over a stored one of that name.
    fn set_exact(&mut self, name: String, value: &str) {
        self.hidden.retain(|hidden| *hidden != name);
        match self.labels.iter_mut().find(|(have, _)| *have == name) {
            Some((_, old)) => {
                old.clear();
                old.push_str(value);
            }
            None => self.labels.push((name, value.to_string())),
        }
    }

    /// Takes a label away, extracted or stored.
    fn remove(&mut self, entry: &EntryRef<'_>, name: &str) {
        self.labels.retain(|(have, _)| have != name);
        if entry.labels().any(|(stored, _)| stored == name)
            && !self.hidden.iter().any(|hidden| hidden == name)
        {
            self.hidden.push(name.to_string());
        }
    }

    /// Every label the entry shows now, extracted or set first, then the
    /// stored ones no stage took away or replaced.
    pub(crate) fn visible<'a>(&'a self, entry: &'a EntryRef<'_>) -> Vec<(&'a str, &'a str)> {
        let mut visible: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        for (name, value) in entry.labels() {
            let shadowed = self.labels.iter().any(|(have, _)| have == name)
                || self.hidden.iter().any(|hidden| hidden == name);
            if !shadowed {
                visible.push((name, value));
            }
        }
        visible
    }
}

impl Scratch {
    /// A label's value as filters see it (see [`label`]).
    pub(crate) fn get<'a>(&'a self, entry: &'a EntryRef<'_>, name: &str) -> Option<&'a str> {
        label(entry, self, name)
    }

    /// The line as the pipeline left it.
    pub(crate) fn line<'a>(&'a self, entry: &EntryRef<'a>) -> &'a str {
        self.line.as_deref().unwrap_or(entry.message)
    }

    /// The entry a query that [`LogQuery::rewrites`] sends in place of
    /// `entry`, which it has just matched with this scratch: the line as
    /// the pipeline left it, and every label it shows, the extracted ones
    /// included (as Loki's streams carry them).
    pub fn rewrite(&self, entry: &EntryRef<'_>) -> Rewritten {
        let mut labels: Vec<(String, String)> = self
            .visible(entry)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        normalize_labels(&mut labels);
        let mut encoded = Vec::new();
        if encode_labels(&labels, &mut encoded).is_err() {
            // A label too long to encode: the stored labels go instead,
            // which every reader can take.
            encoded.clear();
            encoded.extend_from_slice(entry.labels().as_bytes());
        }
        Rewritten {
            message: self.line(entry).to_string(),
            labels: encoded,
        }
    }
}

/// An entry as a query's `line_format`, `label_format`, `keep` and `drop`
/// made it, owned because it is no longer the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// The line to send.
    message: String,
    /// The labels to send, in the store's compact form.
    labels: Vec<u8>,
}

impl Rewritten {
    /// The rewritten entry, with the stored one's cursor, time and level.
    pub fn entry(&self, stored: &EntryRef<'_>) -> EntryRef<'_> {
        let labels = Labels::parse(&self.labels).unwrap_or_else(|_| Labels::empty());
        EntryRef::new(
            stored.cursor,
            stored.timestamp,
            stored.level,
            &self.message,
            labels,
        )
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
    if scratch.hidden.iter().any(|hidden| hidden == name) {
        return None;
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
        scratch.hidden.clear();
        scratch.line = None;
        let selected = self
            .selector
            .iter()
            .all(|matcher| matcher.matches(label(entry, scratch, &matcher.name).unwrap_or("")));
        if !selected {
            return false;
        }
        for stage in &self.stages {
            let pass = match stage {
                Stage::Line(filter) => line(filter, scratch.line(entry)),
                Stage::Parse(parser) => {
                    let rendered = scratch.line.take();
                    parse(
                        parser,
                        entry,
                        rendered.as_deref().unwrap_or(entry.message),
                        scratch,
                    );
                    scratch.line = rendered;
                    true
                }
                Stage::Labels(filter) => labels(filter, entry, scratch),
                Stage::Format(stage) => {
                    format(stage, entry, scratch);
                    true
                }
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

/// Runs a rewriting stage on what the pipeline has made so far.
fn format(stage: &Format, entry: &EntryRef<'_>, scratch: &mut Scratch) {
    match stage {
        Format::Line(template) => {
            let mut out = String::new();
            template.render(&View { entry, scratch }, &mut out);
            scratch.line = Some(out);
        }
        Format::Labels(assignments) => {
            // Every value is read from the labels as they were before the
            // stage, as Loki does, so the order of the list does not matter.
            let values: Vec<Option<String>> = assignments
                .iter()
                .map(|(_, source)| match source {
                    LabelSource::Rename(from) => label(entry, scratch, from).map(str::to_string),
                    LabelSource::Template(template) => {
                        let mut out = String::new();
                        template.render(&View { entry, scratch }, &mut out);
                        Some(out)
                    }
                })
                .collect();
            for ((_, source), value) in assignments.iter().zip(&values) {
                if let (LabelSource::Rename(from), Some(_)) = (source, value) {
                    scratch.remove(entry, from);
                }
            }
            for ((name, _), value) in assignments.iter().zip(values) {
                if let Some(value) = value {
                    scratch.set_exact(name.clone(), &value);
                }
            }
        }
        Format::Keep(choices) | Format::Drop(choices) => {
            let keep = matches!(stage, Format::Keep(_));
            let chosen: Vec<String> = scratch
                .visible(entry)
                .into_iter()
                .filter(|(name, value)| {
                    let named = choices
                        .iter()
                        .any(|choice| choice.name() == *name && choice.chooses(value));
                    named != keep
                })
                .map(|(name, _)| name.to_string())
                .collect();
            for name in chosen {
                scratch.remove(entry, &name);
            }
        }
    }
}

/// What a template sees: the labels and line as the pipeline left them.
struct View<'s, 'e> {
    /// The entry being matched.
    entry: &'s EntryRef<'e>,
    /// What the stages before made of it.
    scratch: &'s Scratch,
}

impl Values for View<'_, '_> {
    fn label(&self, name: &str) -> Option<&str> {
        label(self.entry, self.scratch, name)
    }

    fn line(&self) -> &str {
        self.scratch.line.as_deref().unwrap_or(self.entry.message)
    }

    fn timestamp(&self) -> i64 {
        self.entry.timestamp
    }
}

/// Runs a parser on the line as it stands, adding what it extracts (or
/// `__error__`) to `scratch`.
fn parse(parser: &Parser, entry: &EntryRef<'_>, message: &str, scratch: &mut Scratch) {
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

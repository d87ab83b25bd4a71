//! The stages that rewrite what an entry shows: `| line_format "..."`,
//! `| label_format`, `| keep` and `| drop`, and the templates the first two
//! take.
//!
//! Templates are the part of Go's `text/template` that LogQL queries use:
//! text, `{{.name}}` (a label's value, "" when missing), `{{__line__}}` and
//! `{{__timestamp__}}`, functions called as `{{ToUpper .name}}` or through
//! pipes (`{{.name | lower | default "none"}}`), and the `{{-` / `-}}`
//! markers that trim the white space beside an action. Anything else
//! (`if`, `range`, variables) is refused where it stands, because a
//! template that half works prints wrong lines without saying so.

use super::{LabelMatcher, LogqlError};

/// A stage that changes the entry a query sends.
#[derive(Debug, Clone)]
pub enum Format {
    /// `| line_format "template"`: the line becomes the rendered template;
    /// later filters and parsers see the new line.
    Line(Template),
    /// `| label_format dst=src, dst="template"`: renames or sets labels.
    Labels(Vec<(String, LabelSource)>),
    /// `| keep a, b="v"`: only these labels stay (a matcher keeps its
    /// label only when the value passes).
    Keep(Vec<LabelChoice>),
    /// `| drop a, b="v", __error__`: these labels go.
    Drop(Vec<LabelChoice>),
}

/// Where `label_format` takes a label's new value from.
#[derive(Debug, Clone)]
pub enum LabelSource {
    /// `dst=src`: the value of `src`, which is removed (a rename).
    Rename(String),
    /// `dst="template"`: the rendered template.
    Template(Template),
}

/// A label named in `keep` or `drop`.
#[derive(Debug, Clone)]
pub enum LabelChoice {
    /// The label whatever its value.
    Name(String),
    /// The label when its value passes the matcher.
    Matching(LabelMatcher),
}

impl LabelChoice {
    /// The label's name.
    pub fn name(&self) -> &str {
        match self {
            LabelChoice::Name(name) => name,
            LabelChoice::Matching(matcher) => &matcher.name,
        }
    }

    /// Whether a label of this name and value is the one chosen.
    pub fn chooses(&self, value: &str) -> bool {
        match self {
            LabelChoice::Name(_) => true,
            LabelChoice::Matching(matcher) => matcher.matches(value),
        }
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Text and actions, in order.
    parts: Vec<Part>,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Text copied as it is.
    Text(String),
    /// `{{ ... }}`: a value through zero or more functions.
    Action(Pipeline),
}

/// `operand | func arg | func`, or `func arg... operand`.
#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    /// The first command's value.
    first: Command,
    /// Each later command, given the value so far as its last argument.
    then: Vec<Command>,
}

/// One command of a pipeline.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// A value alone.
    Value(Operand),
    /// A function and its arguments.
    Call(Func, Vec<Operand>),
}

/// A value a template names.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.name`: the label's value.
    Label(String),
    /// `__line__`: the line as it stands.
    Line,
    /// `__timestamp__`: the entry's time, RFC 3339 with nanoseconds.
    Timestamp,
    /// `"text"` or a number, as written.
    Literal(String),
}

/// The functions templates may call; each takes the piped value last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    /// `ToUpper` / `upper`.
    Upper,
    /// `ToLower` / `lower`.
    Lower,
    /// `Title` / `title`: each word's first letter upper case.
    Title,
    /// `TrimSpace` / `trim`.
    Trim,
    /// `default "d" v`: `v`, or `d` when `v` is empty.
    Default,
    /// `replace "old" "new" v`.
    Replace,
    /// `trunc n v`: the first `n` characters (the last `-n` when negative).
    Trunc,
}

impl Func {
    /// The function a template names, if logtap has it.
    fn named(name: &str) -> Option<Func> {
        Some(match name {
            "ToUpper" | "upper" => Func::Upper,
            "ToLower" | "lower" => Func::Lower,
            "Title" | "title" => Func::Title,
            "TrimSpace" | "trim" => Func::Trim,
            "default" => Func::Default,
            "replace" => Func::Replace,
            "trunc" => Func::Trunc,
            _ => return None,
        })
    }

    /// How many arguments it takes, the piped value included.
    fn arity(self) -> usize {
        match self {
            Func::Upper | Func::Lower | Func::Title | Func::Trim => 1,
            Func::Default | Func::Trunc => 2,
            Func::Replace => 3,
        }
    }

    fn apply(self, args: &[String]) -> String {
        match (self, args) {
            (Func::Upper, [value]) => value.to_uppercase(),
            (Func::Lower, [value]) => value.to_lowercase(),
            (Func::Title, [value]) => title(value),
            (Func::Trim, [value]) => value.trim().to_string(),
            (Func::Default, [default, value]) => {
                if value.is_empty() {
                    default.clone()
                } else {
                    value.clone()
                }
            }
            (Func::Replace, [old, new, value]) => value.replace(old.as_str(), new),
            (Func::Trunc, [count, value]) => {
                let count: i64 = count.trim().parse().unwrap_or(0);
                let chars = value.chars().count() as i64;
                if count >= 0 {
                    value.chars().take(count as usize).collect()
                } else {
                    value
                        .chars()
                        .skip((chars + count).max(0) as usize)
                        .collect()
                }
            }
            // The parser checks arity, so no other shape arrives.
            _ => String::new(),
        }
    }
}

/// Each word's first letter in upper case.
fn title(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut start = true;
    for c in value.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// What a template reads while it renders.
pub(crate) trait Values {
    /// A label's value as filters see it.
    fn label(&self, name: &str) -> Option<&str>;
    /// The line as it stands.
    fn line(&self) -> &str;
    /// The entry's time, Unix epoch nanoseconds.
    fn timestamp(&self) -> i64;
}

impl Template {
    /// Parses a template; `position` is where its string starts in the
    /// query, so errors point into the query.
    pub fn parse(text: &str, position: usize) -> Result<Template, LogqlError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut trim_next = false;
        while !rest.is_empty() {
            let Some(open) = rest.find("{{") else {
                push_text(&mut parts, rest, trim_next, false);
                break;
            };
            let after_open = &rest[open + 2..];
            let trim_before = after_open.starts_with('-')
                && after_open[1..].starts_with(|c: char| c.is_whitespace());
            push_text(&mut parts, &rest[..open], trim_next, trim_before);
            let at = position + (text.len() - rest.len()) + open;
            let Some(close) = after_open.find("}}") else {
                return Err(LogqlError::at(at, "\"}}\" closing the action", "none"));
            };
            let mut inside = &after_open[..close];
            if trim_before {
                inside = &inside[1..];
            }
            trim_next = inside.ends_with('-')
                && inside[..inside.len() - 1].ends_with(|c: char| c.is_whitespace());
            if trim_next {
                inside = &inside[..inside.len() - 1];
            }
            parts.push(Part::Action(pipeline(inside, at)?));
            rest = &after_open[close + 2..];
        }
        Ok(Template { parts })
    }

    /// Renders the template into `out` (cleared first).
    pub(crate) fn render(&self, values: &dyn Values, out: &mut String) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Action(pipeline) => out.push_str(&pipeline.evaluate(values)),
            }
        }
    }
}

/// Adds text between actions, trimmed where a `-` marker asks.
fn push_text(parts: &mut Vec<Part>, text: &str, trim_start: bool, trim_end: bool) {
    let mut text = text;
    if trim_start {
        text = text.trim_start();
    }
    if trim_end {
        text = text.trim_end();
    }
    if !text.is_empty() {
        parts.push(Part::Text(text.to_string()));
    }
}

/// Parses the inside of `{{ ... }}`.
fn pipeline(inside: &str, at: usize) -> Result<Pipeline, LogqlError> {
    let words = words(inside, at)?;
    let mut commands = words.split(|word| word == "|");
    let first = commands.next().unwrap_or(&[]);
    let first = command(first, false, inside, at)?;
    let then = commands
        .map(|words| command(words, true, inside, at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pipeline { first, then })
}

/// One command: `operand`, or `func args...` (the piped value, if
/// `piped`, counting as the last argument).
fn command(words: &[String], piped: bool, inside: &str, at: usize) -> Result<Command, LogqlError> {
    let action = || format!("{{{{{inside}}}}}");
    let Some((head, args)) = words.split_first() else {
        return Err(LogqlError::at(
            at,
            "a value or a function in the action",
            &action(),
        ));
    };
    if let Some(func) = Func::named(head) {
        let args = args
            .iter()
            .map(|word| operand(word, inside, at))
            .collect::<Result<Vec<_>, _>>()?;
        if args.len() + usize::from(piped) != func.arity() {
            return Err(LogqlError::at(
                at,
                &format!("{head} with {} argument(s)", func.arity()),
                &action(),
            ));
        }
        return Ok(Command::Call(func, args));
    }
    if piped || !args.is_empty() {
        return Err(LogqlError::at(
            at,
            "a template function (ToUpper, ToLower, Title, TrimSpace, default, replace, trunc)",
            &format!("{head:?} in {}", action()),
        ));
    }
    Ok(Command::Value(operand(head, inside, at)?))
}

/// A value: `.name`, `__line__`, `__timestamp__`, a string or a number.
fn operand(word: &str, inside: &str, at: usize) -> Result<Operand, LogqlError> {
    if let Some(name) = word.strip_prefix('.') {
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(Operand::Label(name.to_string()));
        }
    } else if word == "__line__" {
        return Ok(Operand::Line);
    } else if word == "__timestamp__" {
        return Ok(Operand::Timestamp);
    } else if let Some(text) = word.strip_prefix('\u{0}') {
        return Ok(Operand::Literal(text.to_string()));
    } else if word.parse::<f64>().is_ok() {
        return Ok(Operand::Literal(word.to_string()));
    }
    Err(LogqlError::at(
        at,
        "a label (.name), __line__, __timestamp__, a quoted text or a number",
        &format!("{word:?} in {{{{{inside}}}}}"),
    ))
}

/// Splits an action into words: `|`, quoted strings (marked by a leading
/// NUL, which no label or number starts with) and the rest by spaces.
fn words(inside: &str, at: usize) -> Result<Vec<String>, LogqlError> {
    let mut words = Vec::new();
    let mut chars = inside.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            chars.next();
            words.push("|".to_string());
        } else if c == '"' || c == '`' {
            chars.next();
            let mut text = String::from('\u{0}');
            let mut closed = false;
            while let Some(next) = chars.next() {
                match next {
                    '\\' if c == '"' => match chars.next() {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some(other) => text.push(other),
                        None => break,
                    },
                    quote if quote == c => {
                        closed = true;
                        break;
                    }
                    other => text.push(other),
                }
            }
            if !closed {
                return Err(LogqlError::at(
                    at,
                    "a closing quote in the action",
                    &format!("{{{{{inside}}}}}"),
                ));
            }
            words.push(text);
        } else {
            let mut word = String::new();
            while let Some(&next) = chars.peek() {
                if next.is_whitespace() || next == '|' || next == '"' {
                    break;
                }
                word.push(next);
                chars.next();
            }
            words.push(word);
        }
    }
    Ok(words)
}

impl Pipeline {
    fn evaluate(&self, values: &dyn Values) -> String {
        let mut value = self.first.evaluate(values, None);
        for command in &self.then {
            value = command.evaluate(values, Some(value));
        }
        value
    }
}

impl Command {
    fn evaluate(&self, values: &dyn Values, piped: Option<String>) -> String {
        match self {
            Command::Value(operand) => operand.evaluate(values),
            Command::Call(func, args) => {
                let mut args: Vec<String> = args.iter().map(|arg| arg.evaluate(values)).collect();
                args.extend(piped);
                func.apply(&args)
            }
        }
    }
}

impl Operand {
    fn evaluate(&self, values: &dyn Values) -> String {
        match self {
            Operand::Label(name) => values.label(name).unwrap_or_default().to_string(),
            Operand::Line => values.line().to_string(),
            Operand::Timestamp => chrono::DateTime::from_timestamp_nanos(values.timestamp())
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            Operand::Literal(text) => text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Values for Fixed {
        fn label(&self, name: &str) -> Option<&str> {
            match name {
                "status" => Some("500"),
                "method" => Some("get"),
                "empty" => Some(""),
                _ => None,
            }
        }
        fn line(&self) -> &str {
            "the line"
        }
        fn timestamp(&self) -> i64 {
            1_700_000_000_123_456_789
        }
    }

    fn render(template: &str) -> String {
        let mut out = String::new();
        Template::parse(template, 0)
            .unwrap()
            .render(&Fixed, &mut out);
        out
    }

    #[test]
    fn templates_render_labels_the_line_and_functions() {
        assert_eq!(render("{{.method}} {{ .status }}"), "get 500");
        assert_eq!(render("{{.missing}}!"), "!");
        assert_eq!(render("{{ .method | ToUpper }}"), "GET");
        assert_eq!(render("{{ToUpper .method}}"), "GET");
        assert_eq!(render("{{ .empty | default \"none\" }}"), "none");
        assert_eq!(render("{{ .method | default \"none\" }}"), "get");
        assert_eq!(
            render("{{ __line__ | replace \"line\" \"end\" }}"),
            "the end"
        );
        assert_eq!(render("{{ trunc 3 __line__ }}"), "the");
        assert_eq!(render("{{ __line__ | trunc -4 }}"), "line");
        assert_eq!(render("{{ __line__ | Title }}"), "The Line");
        assert_eq!(render("a  {{- .status -}}  b"), "a500b");
        assert_eq!(
            render("{{__timestamp__}}"),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(render("no actions"), "no actions");
    }

    #[test]
    fn template_errors_say_where_and_what() {
        let error = Template::parse("ok {{ if .a }}", 10).unwrap_err();
        assert_eq!(error.position, 13);
        assert!(error.expected.contains("template function"), "{error}");
        let error = Template::parse("{{ $x }}", 0).unwrap_err();
        assert!(error.expected.contains("label (.name)"), "{error}");
        let error = Template::parse("{{ .a | shout }}", 0).unwrap_err();
        assert!(error.expected.contains("template function"), "{error}");
        let error = Template::parse("{{ .a", 0).unwrap_err();
        assert!(error.expected.contains("}}"), "{error}");
        let error = Template::parse("{{ default .a }}", 0).unwrap_err();
        assert!(error.expected.contains("default with 2"), "{error}");
        let error = Template::parse("{{ \"open }}", 0).unwrap_err();
        assert!(error.expected.contains("closing quote"), "{error}");
    }
}

//! The configuration file of `logtap serve --config FILE`, and `logtap
//! config check|example`.
//!
//! The file is TOML, one key per `serve` flag, named as the flag without
//! its dashes (`segment-mb = 32`, `cors-origin = ["https://a.example"]`,
//! `metrics-public = true`). Nothing about the keys is written down twice:
//! each key is looked up among the clap definitions of `serve`
//! (`serve.rs`), its value checked by the flag's own parser, and the
//! settings are then parsed by clap as the file's flags followed by the
//! command line's, so the two can never read a value differently. A flag
//! given on the command line wins over its key in the file (for a list,
//! the command line's list replaces the file's).
//!
//! Every problem names the file, the line and the key; `config check`
//! reports all of them at once.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use crate::serve::ServeArgs;

/// The `serve` flag that names the file; it is no key of the file itself.
const CONFIG_ID: &str = "config";

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The line it is on, when it is about one place.
    pub line: Option<usize>,
    /// The key it is about, when it is about one.
    pub key: Option<String>,
    /// What is wrong, as a phrase.
    pub message: String,
}

/// A configuration file that cannot be used, and why: every problem found.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, in the order of the file.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    fn one(path: &Path, line: Option<usize>, key: Option<&str>, message: String) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line,
                key: key.map(str::to_string),
                message,
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.path.display())?;
            if let Some(line) = problem.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
            if let Some(key) = &problem.key {
                write!(f, "key `{key}`: ")?;
            }
            write!(f, "{}", problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// `serve`'s clap definition, as `logtap serve` parses it.
fn serve_command() -> clap::Command {
    crate::Cli::command()
        .find_subcommand("serve")
        .cloned()
        .unwrap_or_else(|| <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve")))
        .no_binary_name(true)
}

/// The arguments of `serve` a file may set: every flag with a long name
/// but `--config` and `--help`.
fn keys(command: &clap::Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|arg| {
        arg.get_long().is_some()
            && arg.get_id() != CONFIG_ID
            && !arg.is_hide_set()
            && !matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpLong | ArgAction::HelpShort | ArgAction::Version
            )
    })
}

/// Where `serve`'s settings come from: its command-line words and the file
/// they name. Kept by the server, to read the file again on `SIGHUP`.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The words after `serve`.
    cli: Vec<OsString>,
}

/// Settings resolved from the sources: the parsed flags, and every flag's
/// words as parsed, by key (what a reload compares).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The parsed flags.
    pub args: ServeArgs,
    /// Each key's values as words, defaults included.
    pub words: BTreeMap<String, Vec<OsString>>,
}

impl Sources {
    /// The words after the `serve` subcommand in `argv` (the program name
    /// first). `serve` is the first word equal to it: `logtap` takes no
    /// option with a value before its subcommand.
    pub fn from_argv(argv: impl IntoIterator<Item = OsString>) -> Sources {
        let cli = argv
            .into_iter()
            .skip(1)
            .skip_while(|word| word != "serve")
            .skip(1)
            .collect();
        Sources { cli }
    }

    /// The settings of a file alone, as `config check` sees them.
    pub fn file_only(path: &Path) -> Sources {
        Sources {
            cli: vec!["--config".into(), path.as_os_str().to_owned()],
        }
    }

    /// Reads the file (when `--config` names one) and merges it under the
    /// command line.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let command = serve_command();
        let from_cli = command.clone().try_get_matches_from(&self.cli)?;
        let given: HashSet<&str> = command
            .get_arguments()
            .map(|arg| arg.get_id().as_str())
            .filter(|id| from_cli.value_source(id) == Some(ValueSource::CommandLine))
            .collect();
        let mut words: Vec<OsString> = Vec::new();
        let file = from_cli.get_one::<PathBuf>(CONFIG_ID).cloned();
        if let Some(path) = &file {
            for (id, flag_words) in read_file(path, &command)? {
                if !given.contains(id.as_str()) {
                    words.extend(flag_words);
                }
            }
        }
        words.extend(self.cli.iter().cloned());
        let matches = command
            .clone()
            .try_get_matches_from(&words)
            .map_err(|error| {
                // Both sources parse alone, so what is left is how they
                // combine (a TLS certificate without its key, say).
                match &file {
                    Some(path) => {
                        anyhow::Error::new(ConfigError::one(path, None, None, clap_message(&error)))
                    }
                    None => error.into(),
                }
            })?;
        let args = ServeArgs::from_arg_matches(&matches)?;
        let words = keys(&command)
            .filter_map(|arg| {
                let long = arg.get_long()?.to_string();
                let values = matches
                    .get_raw(arg.get_id().as_str())
                    .map(|raw| raw.map(OsStr::to_owned).collect())
                    .unwrap_or_default();
                Some((long, values))
            })
            .collect();
        Ok(Resolved { args, words })
    }
}

/// clap's message on one line, without its `error: `, usage and hint.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let message = text.split("\n\n").next().unwrap_or_default();
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The line of byte `offset` in `text`, from 1.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The file's settings as command-line words, by argument id, in the
/// file's order; every problem at once.
fn read_file(
    path: &Path,
    command: &clap::Command,
) -> Result<Vec<(String, Vec<OsString>)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::one(path, None, None, format!("cannot read the file: {error}"))
    })?;
    let document = toml_edit::Document::parse(text.as_str()).map_err(|error| {
        let line = error.span().map(|span| line_of(&text, span.start));
        let message = error.message().trim().to_string();
        ConfigError::one(path, line, None, format!("not valid TOML: {message}"))
    })?;
    let mut settings = Vec::new();
    let mut problems = Vec::new();
    for (name, item) in document.as_table().iter() {
        let line = document
            .as_table()
            .key(name)
            .and_then(toml_edit::Key::span)
            .map(|span| line_of(&text, span.start));
        let mut problem = |message: String| {
            problems.push(Problem {
                line,
                key: Some(name.to_string()),
                message,
            })
        };
        let Some(arg) = keys(command).find(|arg| arg.get_long() == Some(name)) else {
            let dashed = name.replace('_', "-");
            let hint = if keys(command).any(|arg| arg.get_long() == Some(dashed.as_str())) {
                format!(" (did you mean `{dashed}`?)")
            } else {
                String::new()
            };
            problem(format!(
                "unknown key{hint}; the keys are `logtap serve`'s flags without their dashes (see `logtap config example`)"
            ));
            continue;
        };
        match flag_words(arg, item) {
            Ok(words) => settings.push((arg.get_id().to_string(), words)),
            Err(message) => problem(message),
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigError {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// A key's value as the words of its flag, each checked by the flag's own
/// parser.
fn flag_words(arg: &Arg, item: &toml_edit::Item) -> Result<Vec<OsString>, String> {
    let long = arg.get_long().unwrap_or_default();
    let Some(value) = item.as_value() else {
        return Err("expects a value, not a table".to_string());
    };
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match value.as_bool() {
            Some(true) => Ok(vec![format!("--{long}").into()]),
            Some(false) => Ok(Vec::new()),
            None => Err("expects true or false".to_string()),
        };
    }
    let texts = match (value.as_array(), arg.get_action()) {
        (Some(array), ArgAction::Append) => {
            array.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
        }
        (Some(_), _) => return Err("expects one value, not a list".to_string()),
        (None, _) => vec![scalar(value)?],
    };
    // The flag alone, with its own parser: its relations to other flags
    // (--tls-cert needs --tls-key) are checked once the file is whole.
    let alone = clap::Command::new("serve").no_binary_name(true).arg(
        arg.clone()
            .requires(clap::builder::Resettable::<clap::Id>::Reset),
    );
    let words: Vec<OsString> = texts
        .iter()
        .map(|text| format!("--{long}={text}").into())
        .collect();
    alone
        .try_get_matches_from(&words)
        .map_err(|error| clap_message(&error))?;
    Ok(words)
}

/// A single TOML value as the text a flag would be given.
fn scalar(value: &toml_edit::Value) -> Result<String, String> {
    use toml_edit::Value;
    match value {
        Value::String(text) => Ok(text.value().clone()),
        Value::Integer(number) => Ok(number.value().to_string()),
        Value::Float(number) => Ok(number.value().to_string()),
        Value::Boolean(flag) => Ok(flag.value().to_string()),
        Value::Datetime(_) => Err("expects a string or a number, not a date".to_string()),
        Value::Array(_) | Value::InlineTable(_) => {
            Err("expects a string or a number, not a list or a table".to_string())
        }
    }
}

/// `logtap config example`: a file with every key, its description and
/// its default, generated from the clap definitions so it cannot drift.
/// Keys without a default are commented out, showing the kind of value.
pub fn example() -> String {
    let command = serve_command();
    let mut out = String::from(
        "# logtap serve --config FILE\n\
         #\n\
         # Every key is a `logtap serve` flag without its dashes, set here to its\n\
         # default; a flag given on the command line wins over the file. Keys\n\
         # that are commented out are off (or computed) unless set. SIGHUP\n\
         # reloads the file: tokens, retention, connection and stream caps and\n\
         # the log level change at once; the server logs what else needs a\n\
         # restart. Check a file with `logtap config check FILE`.\n",
    );
    for arg in keys(&command) {
        let long = arg.get_long().unwrap_or_default();
        out.push('\n');
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        // clap drops the closing period of a one-paragraph help.
        let help = if help.ends_with(|c: char| c.is_alphanumeric() || c == ')') {
            format!("{help}.")
        } else {
            help
        };
        for line in wrap(&help, 76) {
            out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        let line = match arg.get_action() {
            ArgAction::SetTrue => format!("{long} = false"),
            ArgAction::Append => format!("{long} = []"),
            _ => match defaults.first() {
                Some(default) => format!("{long} = {}", toml_value(default)),
                None => {
                    let name = arg
                        .get_value_names()
                        .and_then(|names| names.first())
                        .map_or("VALUE".to_string(), ToString::to_string);
                    format!("# {long} = {}", toml_value(&name))
                }
            },
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `text` as a TOML value: a bare integer when it is one, else a string.
fn toml_value(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.to_string()
    } else {
        toml_edit::Value::from(text).to_string().trim().to_string()
    }
}

/// Paragraphs of `text` cut into lines of at most `width` characters
/// (a longer word stays whole); blank lines between paragraphs kept.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split("\n\n") {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// `logtap config check FILE`: prints what is wrong, or that it is fine.
pub fn check(path: &Path) -> anyhow::Result<std::process::ExitCode> {
    let resolved = Sources::file_only(path).resolve()?;
    let set = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml_edit::Document::parse(text).ok())
        .map_or(0, |document| document.as_table().len());
    println!(
        "{}: OK ({set} keys set; data in {})",
        path.display(),
        resolved.args.data.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }

    #[test]
    fn wrapping_keeps_paragraphs_and_long_words() {
        assert_eq!(
            wrap("one two three\n\nfour", 7),
            vec!["one two", "three", "", "four"]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcdefghij"]);
    }

    #[test]
    fn values_are_bare_numbers_or_quoted_strings() {
        assert_eq!(toml_value("16"), "16");
        assert_eq!(toml_value("5s"), "\"5s\"");
        assert_eq!(toml_value("./logtap-data"), "\"./logtap-data\"");
    }
}

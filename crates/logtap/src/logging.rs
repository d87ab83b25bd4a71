//! The command's own diagnostics, on standard error so they never mix with
//! `logs` output.
//!
//! The clients only speak up about problems (`warn`, short lines). The
//! server says what it does at `info`, as text (times, sources) or, with
//! `--log-format json`, one JSON object a line with every field its own
//! key, which log shippers keep structured. When standard error is the
//! journal (`$JOURNAL_STREAM`), each line starts with its syslog priority
//! (`<3>` ... `<7>`), which journald keeps as the entry's priority, and a
//! text line leaves the time to journald. Its level comes
//! from `--log-level` (the flag or the configuration file's key), else from
//! `RUST_LOG`, else `info`: the setting written for this server wins over
//! the environment it happens to run in. A reload (`SIGHUP`) changes it.
//!
//! h2 writes a WARN line each time it sends a misbehaving peer away (rapid
//! resets, say), which an attacker repeats at will; the server logs those
//! itself, at most once per interval with a count, so h2's own are off
//! below ERROR unless the level names h2.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// The form of the server's own log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines: time, level, source, message, fields.
    Text,
    /// One JSON object a line: timestamp, level, target, message and every
    /// field as its own key.
    Json,
}

/// Changes the server's log level while it runs.
#[derive(Debug, Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    /// Makes `level` (or, when `None`, `RUST_LOG` or `info`) the filter.
    pub fn set_level(&self, level: Option<&str>) -> anyhow::Result<()> {
        let filter = server_filter(level)?;
        self.handle
            .reload(filter)
            .context("could not change the log level")
    }
}

/// The default filter of the server, and what a `--log-level` is extended
/// with unless it says something about h2 itself.
const SERVER_DEFAULT: &str = "info";
const H2_QUIET: &str = "h2=error";

/// The server's filter for `level`.
fn server_filter(level: Option<&str>) -> anyhow::Result<EnvFilter> {
    let directives = match level {
        Some(level) => level.to_string(),
        None => match std::env::var("RUST_LOG") {
            Ok(env) if !env.trim().is_empty() => return Ok(EnvFilter::new(env)),
            _ => SERVER_DEFAULT.to_string(),
        },
    };
    let directives = if directives.contains("h2") {
        directives
    } else {
        format!("{directives},{H2_QUIET}")
    };
    parse_level(&directives).map_err(anyhow::Error::msg)
}

/// Checks a `--log-level` value: a level (`debug`) or `RUST_LOG`
/// directives (`info,logtap_server=debug`).
pub fn parse_level(text: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(text)
        .map_err(|error| format!("{text:?} is not a log level or filter ({error}); use trace, debug, info, warn, error, or RUST_LOG directives such as info,logtap_server=debug"))
}

/// The server's subscriber; the handle changes its level later.
pub fn init_server(format: LogFormat, level: Option<&str>) -> anyhow::Result<LogControl> {
    use tracing_subscriber::fmt::{self, format::JsonFields};
    let (filter, handle) = reload::Layer::new(server_filter(level)?);
    let journal = stderr_is_journal();
    let output = match (format, journal) {
        (LogFormat::Text, false) => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        // journald stamps each line itself.
        (LogFormat::Text, true) => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(Prioritized(fmt::format().without_time()))
            .boxed(),
        (LogFormat::Json, false) => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
        (LogFormat::Json, true) => fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(Prioritized(fmt::format().json().flatten_event(true)))
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .context("could not set up logging")?;
    Ok(LogControl { handle })
}

/// A line format behind the `<N>` prefix of sd-daemon(3): journald reads
/// the syslog priority from it (and strips it), so `journalctl -p warning`
/// and the colours of `journalctl` follow the server's levels.
struct Prioritized<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for Prioritized<F>
where
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(context, writer, event)
    }
}

/// Whether standard error is a stream to journald: systemd then sets
/// `$JOURNAL_STREAM` to its device and inode numbers (systemd.exec(5)).
/// Compared with standard error itself, since a child of the service
/// inherits the variable with another standard error.
#[cfg(unix)]
fn stderr_is_journal() -> bool {
    let Some((device, inode)) = std::env::var("JOURNAL_STREAM").ok().and_then(|value| {
        let (device, inode) = value.split_once(':')?;
        Some((device.parse::<u64>().ok()?, inode.parse::<u64>().ok()?))
    }) else {
        return false;
    };
    // SAFETY: fstat fills a stat the call owns; fd 2 may be closed, which
    // it reports as an error.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(libc::STDERR_FILENO, &mut stat) } != 0 {
        return false;
    }
    stat.st_dev as u64 == device && stat.st_ino as u64 == inode
}

#[cfg(not(unix))]
fn stderr_is_journal() -> bool {
    false
}

/// The clients' subscriber: problems only, short lines ("WARN stdin:3:
/// ..."); `RUST_LOG` overrides the level.
pub fn init_client() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init();
}

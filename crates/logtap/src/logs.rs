//! `logtap logs`: one GetLogs call, printed as the entries arrive.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use futures::FutureExt;
use logtap_core::Level;
use logtap_proto::v1::LogRequest;

use crate::client::{self, RpcError, ServerArgs};
use crate::output::{Format, Printer};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// A LogQL query, e.g. '{service="api"} |= "timeout" | json | status >=
    /// 500'; the flags below combine with it.
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,

    /// This level and above: trace, debug, info, warn, error, fatal (or
    /// warning, err, critical, crit, panic).
    #[arg(long, value_parser = parse_level, value_name = "LEVEL")]
    pub level: Option<Level>,

    /// Only entries whose message contains this text (case-sensitive
    /// unless --ignore-case).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,

    /// Read --grep as a regular expression.
    #[arg(long, requires = "grep")]
    pub regex: bool,

    /// Match --grep whatever the case ("disk full" finds "Disk FULL").
    #[arg(short = 'i', long, requires = "grep")]
    pub ignore_case: bool,

    /// Only entries with this label; repeat for several (all must match).
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Entries from this time on: RFC 3339, a date, epoch seconds/ms/µs/ns,
    /// a duration back from now (15m, 2h30m, 7d), or "now".
    #[arg(long, value_parser = parse_when, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<i64>,

    /// Entries before this time (same forms as --since).
    #[arg(long, value_parser = parse_when, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<i64>,

    /// Only entries after this cursor (as printed by `push` or `--output json`).
    #[arg(long, value_name = "CURSOR")]
    pub after_cursor: Option<u64>,

    /// At most this many entries.
    #[arg(long, value_name = "N", conflicts_with = "follow")]
    pub limit: Option<u64>,

    /// Newest first.
    #[arg(long, conflicts_with = "follow")]
    pub reverse: bool,

    /// After the history, go on printing new entries as they arrive.
    #[arg(short, long)]
    pub follow: bool,

    /// How to print entries.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub output: Format,
}

fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text).map_err(|error| error.to_string())
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// Times are read against the clock when the command line is parsed, so
/// `--since 15m` means fifteen minutes before the command ran.
pub(crate) fn parse_when(text: &str) -> Result<i64, String> {
    logtap_ingest::parse_time(text, now_ns()).map_err(|error| error.to_string())
}

pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since >= until {
            // The same mistake the server would refuse, caught before connecting.
            return Err(RpcError(tonic::Status::invalid_argument(
                "--since must be before --until",
            ))
            .into());
        }
    }
    let request = LogRequest {
        level: args
            .level
            .map(|l| l.as_str().to_string())
            .unwrap_or_default(),
        since: args.since.unwrap_or(0),
        until: args.until.unwrap_or(0),
        grep: args.grep.clone().unwrap_or_default(),
        regex: args.regex,
        ignore_case: args.ignore_case,
        labels: args.labels.iter().cloned().collect(),
        after_cursor: args.after_cursor,
        limit: args.limit.unwrap_or(0),
        reverse: args.reverse,
        follow: args.follow,
        query: args.query.clone().unwrap_or_default(),
    };

    let mut client = client::connect(&args.server).await?;
    let color = args.output == Format::Text
        && io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut printer = Printer::new(io::BufWriter::new(io::stdout().lock()), args.output, color);

    let print_all = async {
        let mut stream = client
            .get_logs(request)
            .await
            .map_err(RpcError)?
            .into_inner();
        loop {
            // Output is flushed whenever the next entry is not already
            // here: a burst of history is written in big chunks, and a
            // lone entry is seen at once.
            let next = match stream.message().now_or_never() {
                Some(next) => next,
                None => {
                    printer.flush()?;
                    stream.message().await
                }
            };
            match next.map_err(RpcError)? {
                Some(entry) => printer.entry(&entry)?,
                None => break,
            }
        }
        printer.flush()?;
        anyhow::Ok(())
    };

    let result = tokio::select! {
        result = print_all => result,
        interrupted = tokio::signal::ctrl_c() => {
            interrupted.context("could not listen for Ctrl-C")?;
            // Ctrl-C is how one stops following, so it is success there;
            // a one-off listing that was cut short is not.
            return Ok(if args.follow { ExitCode::SUCCESS } else { ExitCode::from(130) });
        }
    };
    match result {
        Ok(()) => {
            if args.follow {
                // A followed stream only ends when the server does (it is
                // shutting down); the reader should know the tail stopped.
                let _ = writeln!(io::stderr(), "logtap: the server ended the stream");
            }
            Ok(ExitCode::SUCCESS)
        }
        // A reader that went away (`logtap logs | head`) is not a failure.
        Err(error) if is_broken_pipe(&error) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

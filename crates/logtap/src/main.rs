//! `logtap`: one binary for the server and its command-line clients.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line, sets up logging and the runtime, and turns errors into
//! messages and exit codes:
//! * 0: done (also after Ctrl-C ends `logs -f` or a live `push`);
//! * 1: failed (server unreachable, server error, unreadable file, ...);
//! * 2: the request was wrong: a bad command line (clap's own code), or
//!   the server answered `INVALID_ARGUMENT` (a bad pattern, say);
//! * 130: `logs` without `-f` interrupted by Ctrl-C.

mod client;
mod logs;
mod output;
mod push;
mod query;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// logtap: a log server whose every answer is a stream.
#[derive(Debug, Parser)]
#[command(name = "logtap", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: gRPC, gRPC-Web and HTTP on one port. (Boxed: its
    /// many flags would make every command as large.)
    Serve(Box<serve::ServeArgs>),
    /// Send log lines from files or standard input to a server.
    Push(push::PushArgs),
    /// Read log entries from a server, and follow new ones with -f.
    Logs(logs::LogsArgs),
    /// Run a LogQL metric query: numbers over time, a table per series.
    Query(query::QueryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve(_)));

    // For `serve`, this runtime accepts connections and runs the housekeeping
    // (opening and syncing the store, retention, memory trims); connections
    // themselves run on the server's connection threads, which have their
    // own blocking pools (crates/server/src/threads.rs). A few dozen
    // blocking threads are plenty for work the store serialises anyway.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::anyhow!("could not start the runtime: {error}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Push(args) => push::run(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Query(args) => query::run(args).await,
        }
    });
    // A reader thread may still be blocked on standard input; the process
    // ends without waiting for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(error) => fail(&error),
    }
}

/// Prints the error as one sentence, its causes joined with colons, and
/// picks the exit code.
fn fail(error: &anyhow::Error) -> ExitCode {
    // Libraries often repeat their cause's text in their own ("tcp connect
    // error: tcp connect error: ..."); saying it once reads better.
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    // Standard error may be closed too; there is nowhere left to complain.
    let _ = writeln!(std::io::stderr(), "error: {}", parts.join(": "));
    let invalid = error
        .downcast_ref::<client::RpcError>()
        .is_some_and(|rpc| rpc.0.code() == tonic::Code::InvalidArgument);
    ExitCode::from(if invalid { 2 } else { 1 })
}

/// Diagnostics go to standard error, so they never mix with `logs` output.
/// The server says what it does at `info`; the clients only speak up about
/// problems. `RUST_LOG` overrides either.
///
/// h2 writes a WARN line each time it sends a misbehaving peer away (rapid
/// resets, say), which an attacker repeats at will; the server logs those
/// itself, at most once per interval with a count, so h2's own are off
/// below ERROR by default.
fn init_tracing(serving: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;

    let default = if serving { "info,h2=error" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A server's log wants times and sources; a command's warnings read
    // better as short lines ("WARN stdin:3: ...").
    let _ = if serving {
        builder.try_init()
    } else {
        builder.without_time().with_target(false).try_init()
    };
}

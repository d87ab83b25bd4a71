//! `logtap`: one binary for the server and its command-line clients.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line, sets up logging and the runtime, and turns errors into
//! messages and exit codes:
//! * 0: done (also after Ctrl-C ends `logs -f` or a live `push`);
//! * 1: failed (server unreachable, server error, unreadable file, ...);
//! * 2: the request was wrong: a bad command line (clap's own code), or
//!   the server answered `INVALID_ARGUMENT` (a bad pattern, say);
//!   A configuration file with a problem (`serve --config`, `config
//!   check`) is a wrong request too: 2.
//! * 130: `logs` without `-f` interrupted by Ctrl-C.

mod client;
mod config;
mod logging;
mod logs;
mod notify;
mod output;
mod push;
mod query;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// `logtap --version`: the version and the commit it was built from
/// (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LOGTAP_GIT_COMMIT"),
    ")"
);

/// logtap: a log server whose every answer is a stream.
#[derive(Debug, Parser)]
#[command(name = "logtap", version = VERSION, propagate_version = true)]
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
    /// Check a configuration file for `serve --config`, or print an
    /// example with every key.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell's completion script (bash: `source <(logtap
    /// completions bash)`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `logtap man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check FILE as `serve --config FILE` would read it: exit 0 when it
    /// is fine, 2 with every problem (file, line, key) when not.
    Check {
        /// The configuration file.
        file: std::path::PathBuf,
    },
    /// Print a configuration file with every key, its description and its
    /// default.
    Example,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut serving = None;
    match cli.command {
        Command::Serve(_) => {
            // The file and the command line together; the parse above
            // only checked the command line.
            let sources = config::Sources::from_argv(std::env::args_os());
            match sources.resolve() {
                Ok(resolved) => serving = Some((resolved, sources)),
                Err(error) => return fail(&error),
            }
        }
        Command::Config(ConfigCommand::Example) => {
            return print(&config::example());
        }
        Command::Config(ConfigCommand::Check { file }) => {
            return config::check(&file).unwrap_or_else(|error| fail(&error));
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "logtap", &mut out);
            return print(&String::from_utf8_lossy(&out));
        }
        Command::Man => {
            let mut out = Vec::new();
            if let Err(error) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
                return fail(&anyhow::anyhow!("could not write the man page: {error}"));
            }
            return print(&String::from_utf8_lossy(&out));
        }
        _ => {}
    }
    let log = match &serving {
        Some((resolved, _)) => {
            match logging::init_server(resolved.args.log_format, resolved.args.log_level.as_deref())
            {
                Ok(log) => Some(log),
                Err(error) => return fail(&error),
            }
        }
        None => {
            logging::init_client();
            None
        }
    };

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
            Command::Serve(_) => match (serving, log) {
                (Some((resolved, sources)), Some(log)) => serve::run(resolved, sources, log).await,
                _ => Err(anyhow::anyhow!("serve started without its settings")),
            },
            Command::Push(args) => push::run(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Query(args) => query::run(args).await,
            Command::Config(_) | Command::Completions { .. } | Command::Man => {
                Ok(ExitCode::SUCCESS)
            }
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
        .is_some_and(|rpc| rpc.0.code() == tonic::Code::InvalidArgument)
        || error.downcast_ref::<config::ConfigError>().is_some()
        || error.downcast_ref::<clap::Error>().is_some();
    ExitCode::from(if invalid { 2 } else { 1 })
}

/// Writes `text` to standard output; a closed pipe (`| head`) is no error.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => fail(&anyhow::anyhow!(
            "could not write to standard output: {error}"
        )),
    }
}

//! `logtap serve`: the server library behind command-line options, until
//! SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use logtap_server::{Server, ServerConfig};
use logtap_store::{Retention, SyncPolicy};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The data directory; created if missing.
    #[arg(long, default_value = "./logtap-data", value_name = "DIR")]
    pub data: PathBuf,

    /// The address to listen on (port 0 picks a free port; the address
    /// taken is logged).
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// When stored entries are forced to disk: `batch` (every push batch;
    /// nothing acknowledged is lost on power failure), `interval:MS` (at
    /// most every MS milliseconds), or `never` (the OS decides).
    #[arg(long, default_value = "batch", value_name = "POLICY")]
    pub sync: Sync,

    /// Start a new segment file once one reaches this many MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub segment_mb: u64,

    /// Delete the oldest segments to keep the data at or below this many MiB.
    #[arg(long, value_name = "MIB")]
    pub retention_mb: Option<u64>,

    /// Delete segments whose newest entry is older than this (7d, 12h, ...).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub retention_age: Option<Duration>,
}

/// The `--sync` policy as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sync(pub SyncPolicy);

impl FromStr for Sync {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let policy = match text.trim().to_ascii_lowercase().as_str() {
            "batch" => SyncPolicy::EveryBatch,
            "never" => SyncPolicy::Never,
            other => match other.strip_prefix("interval:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => SyncPolicy::Interval(Duration::from_millis(ms)),
                _ => {
                    return Err(format!(
                        "{text:?} is not a sync policy: use batch, interval:MS (such as interval:100) or never"
                    ))
                }
            },
        };
        Ok(Sync(policy))
    }
}

fn parse_age(text: &str) -> Result<Duration, String> {
    logtap_lines::parse_duration(text).map_err(|error| error.to_string())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = ServerConfig::new(args.listen, args.data.clone());
    config.store.sync = args.sync.0;
    config.store.segment_bytes = args.segment_mb << 20;
    config.store.retention = Retention {
        max_bytes: args.retention_mb.map(|mb| mb << 20),
        max_age: args.retention_age,
    };

    let server = Server::bind(config).await.with_context(|| {
        format!(
            "could not start the server on {} with data in {}",
            args.listen,
            args.data.display()
        )
    })?;
    tracing::info!("logtap is listening on http://{}", server.local_addr());
    server
        .run(shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    tracing::info!("logtap has shut down");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on the first SIGINT or SIGTERM, which starts a clean shutdown.
/// A second signal during the shutdown ends the process at once, for when
/// a client holds it up.
async fn shutdown_signal() {
    let name = wait_for_signal().await;
    tracing::info!("{name} received: shutting down (send it again to stop at once)");
    tokio::spawn(async {
        let name = wait_for_signal().await;
        tracing::warn!("{name} received again: stopping now");
        std::process::exit(130);
    });
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        Err(error) => {
            tracing::warn!("cannot listen for SIGTERM ({error}); only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies() {
        assert_eq!("batch".parse(), Ok(Sync(SyncPolicy::EveryBatch)));
        assert_eq!("Never".parse(), Ok(Sync(SyncPolicy::Never)));
        assert_eq!(
            "interval:250".parse(),
            Ok(Sync(SyncPolicy::Interval(Duration::from_millis(250))))
        );
        for bad in ["", "always", "interval:", "interval:0", "interval:x"] {
            let error = bad.parse::<Sync>().unwrap_err();
            assert!(error.contains("interval:MS"), "{error}");
        }
    }
}

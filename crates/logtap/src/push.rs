//! `logtap push`: lines from files or standard input, parsed by
//! logtap-ingest, streamed to the server in batches over one client-streaming
//! `Push` call.
//!
//! A thread reads and parses; batches go to the gRPC call through a small
//! bounded channel, so a slow server slows the reading and memory stays
//! bounded whatever the input's size. A batch is sent when it holds 1,000
//! entries or about 1 MiB, and, for standard input, also whenever the
//! input has nothing more ready, so `app | logtap push` ships each line
//! as it is written instead of holding it for a full batch.
//!
//! Entries without a timestamp of their own go out with timestamp 0, which
//! the server replaces with its receive time (as the contract says). A JSON
//! line that logtap-ingest rejects (a timestamp that is not a time) is
//! stored as plain text, with a warning naming the file and line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use logtap_core::NewEntry;
use logtap_proto::v1::{LogEntry, PushRequest};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{self, RpcError, ServerArgs};
use crate::output::print_line;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Files to read, in order; `-` or none at all means standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// A batch is sent once it holds this many entries...
const BATCH_ENTRIES: usize = 1000;
/// ... or about this many bytes (well under the server's 4 MiB message limit).
const BATCH_BYTES: usize = 1 << 20;
/// Warnings about single lines stop after this many; the rest are counted.
const MAX_LINE_WARNINGS: u64 = 10;

/// One input, opened before connecting so a missing file fails fast.
enum Source {
    File { name: String, file: File },
    Stdin,
}

impl Source {
    fn name(&self) -> &str {
        match self {
            Source::File { name, .. } => name,
            Source::Stdin => "stdin",
        }
    }
}

/// What the reader thread did.
#[derive(Debug, Default)]
struct ReadSummary {
    lines: u64,
    rejected: u64,
}

pub async fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    let sources = open_sources(&args.files)?;
    let mut client = client::connect(&args.server).await?;

    let progress = progress_bar(&sources);
    let (batches, receiver) = mpsc::channel::<PushRequest>(4);
    let (done, read_result) = oneshot::channel();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let progress = progress.clone();
        let stop = stop.clone();
        // A plain thread, not spawn_blocking: on Ctrl-C it may be blocked
        // reading standard input, and the process must not wait for it.
        std::thread::spawn(move || {
            let result = read_sources(sources, &batches, &progress, &stop);
            let _ = done.send(result);
        });
    }

    // Ctrl-C ends the request stream: what was read is stored and
    // acknowledged, then the command reports and exits normally.
    let interrupted = Arc::new(AtomicBool::new(false));
    let requests = {
        let interrupted = interrupted.clone();
        let stop = stop.clone();
        futures::StreamExt::take_until(ReceiverStream::new(receiver), async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
            } else {
                std::future::pending::<()>().await;
            }
        })
    };

    let response = client.push(requests).await;
    progress.finish_and_clear();
    let response = response.map_err(RpcError)?.into_inner();
    let stored = format!(
        "stored {} {}, last cursor {}",
        response.stored,
        if response.stored == 1 {
            "entry"
        } else {
            "entries"
        },
        response.last_cursor
    );

    if interrupted.load(Ordering::Relaxed) {
        print_line(&stored)?;
        return Ok(ExitCode::SUCCESS);
    }
    // The request stream ended, so the reader has finished (or failed).
    let summary = match read_result.await {
        Ok(Ok(summary)) => summary,
        // What was read before the failure is stored; say so.
        Ok(Err(error)) => anyhow::bail!("{error:#} ({stored} before that)"),
        Err(_) => anyhow::bail!("the reader stopped unexpectedly; {stored}"),
    };
    if summary.rejected > MAX_LINE_WARNINGS {
        tracing::warn!(
            "{} lines in all were stored as plain text (warnings after the first {MAX_LINE_WARNINGS} were left out)",
            summary.rejected
        );
    }
    tracing::debug!("read {} lines", summary.lines);
    print_line(&stored)?;
    Ok(ExitCode::SUCCESS)
}

fn open_sources(files: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    if files.is_empty() {
        return Ok(vec![Source::Stdin]);
    }
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return Ok(Source::Stdin);
            }
            let name = path.display().to_string();
            let file = File::open(path).with_context(|| format!("could not open {name}"))?;
            Ok(Source::File { name, file })
        })
        .collect()
}

/// A byte-count bar over all the files, on standard error, only when that
/// is a terminal (a bar in a log file or a pipe is noise) and only for
/// files (standard input has no known length).
fn progress_bar(sources: &[Source]) -> ProgressBar {
    let files_only = sources.iter().all(|s| matches!(s, Source::File { .. }));
    if !files_only || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total: u64 = sources
        .iter()
        .filter_map(|s| match s {
            Source::File { file, .. } => file.metadata().ok().map(|m| m.len()),
            Source::Stdin => None,
        })
        .sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Reads every source in order, sending batches. Returns early (with what
/// it has counted) if the call has ended on the other side.
fn read_sources(
    sources: Vec<Source>,
    batches: &mpsc::Sender<PushRequest>,
    progress: &ProgressBar,
    stop: &AtomicBool,
) -> anyhow::Result<ReadSummary> {
    let mut summary = ReadSummary::default();
    let mut batch = Batch::default();
    for source in sources {
        let name = source.name().to_string();
        let mut input = Input {
            name: &name,
            batch: &mut batch,
            batches,
            progress,
            stop,
            summary: &mut summary,
        };
        let ok = match source {
            Source::File { file, .. } => {
                input.read(BufReader::with_capacity(256 << 10, file), false)
            }
            Source::Stdin => input.read(BufReader::with_capacity(1 << 20, io::stdin()), true),
        }
        .with_context(|| format!("could not read {name}"))?;
        if !ok {
            return Ok(summary);
        }
    }
    batch.send(batches);
    Ok(summary)
}

/// Where one source's lines go.
struct Input<'a> {
    name: &'a str,
    batch: &'a mut Batch,
    batches: &'a mpsc::Sender<PushRequest>,
    progress: &'a ProgressBar,
    stop: &'a AtomicBool,
    summary: &'a mut ReadSummary,
}

impl Input<'_> {
    /// Reads one source to its end; `Ok(false)` means the call is over and
    /// reading should stop. With `flush_when_idle`, the batch is sent
    /// whenever the reader's buffer is empty, that is, before a read that
    /// may wait for the producer.
    fn read<R: Read>(
        &mut self,
        mut reader: BufReader<R>,
        flush_when_idle: bool,
    ) -> io::Result<bool> {
        let mut buffer = Vec::new();
        let mut line_number: u64 = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            buffer.clear();
            let read = reader.read_until(b'\n', &mut buffer)?;
            if read == 0 {
                return Ok(true);
            }
            line_number += 1;
            self.summary.lines += 1;
            self.progress.inc(read as u64);
            // Bytes that are not UTF-8 become U+FFFD rather than costing the line.
            let line = String::from_utf8_lossy(&buffer);
            let entry = match logtap_ingest::parse_line(&line, 0) {
                Ok(entry) => entry,
                Err(error) => {
                    self.summary.rejected += 1;
                    if self.summary.rejected <= MAX_LINE_WARNINGS {
                        let name = self.name;
                        self.progress.suspend(|| {
                            tracing::warn!("{name}:{line_number}: {error}; stored as plain text")
                        });
                    }
                    logtap_ingest::parse_plain(&line, 0)
                }
            };
            if let Some(entry) = entry {
                self.batch.push(entry);
            }
            let idle = flush_when_idle && reader.buffer().is_empty();
            if (self.batch.is_full() || (idle && !self.batch.is_empty()))
                && !self.batch.send(self.batches)
            {
                return Ok(false);
            }
        }
    }
}

/// Entries waiting to be sent, with their approximate encoded size.
#[derive(Default)]
struct Batch {
    entries: Vec<LogEntry>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, entry: NewEntry) {
        let labels_bytes: usize = entry
            .labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum();
        self.bytes += entry.message.len() + labels_bytes + 24;
        self.entries.push(LogEntry {
            message: entry.message,
            timestamp: entry.timestamp,
            level: entry.level.as_str().to_string(),
            cursor: 0,
            labels: entry.labels.into_iter().collect(),
        });
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= BATCH_ENTRIES || self.bytes >= BATCH_BYTES
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sends what there is; false when the call has ended on the other side.
    fn send(&mut self, batches: &mpsc::Sender<PushRequest>) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        self.bytes = 0;
        let entries = std::mem::take(&mut self.entries);
        batches.blocking_send(PushRequest { entries }).is_ok()
    }
}

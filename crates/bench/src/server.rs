//! The servers under test as real processes, and what is measured about
//! them from the outside.
//!
//! Every figure here comes from a separate process, never an in-process
//! server: a benchmark that shares the client's runtime and allocator with
//! the server would flatter both. CPU is read from `/proc/<pid>/stat`
//! (utime + stime, every thread of the process), memory from
//! `/proc/<pid>/status` (`VmRSS`), so logtap and the Go peer are measured
//! the same way.

use anyhow::{anyhow, bail, Context};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// How long a server may take to say it listens. Opening a 10M-entry store
/// checks every record's CRC, which takes seconds, not minutes.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root: this crate lives in `crates/bench`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds `target/release/logtap` with cargo and returns the executable's
/// path as cargo reports it, so a custom target directory works too.
pub fn build_logtap() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release server: cargo build --release -p logtap");
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "logtap",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("could not run cargo")?;
    if !output.status.success() {
        bail!("cargo build --release -p logtap failed");
    }
    // cargo prints one JSON object a line; the binary's artifact names it.
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" && message["target"]["name"] == "logtap" {
            if let Some(path) = message["executable"].as_str() {
                return Ok(PathBuf::from(path));
            }
        }
    }
    bail!("cargo built logtap but did not say where the binary is")
}

/// Builds the seed's Go server with the build script in `shared/`, beside
/// the repository, into `target/seed-go-server`.
pub fn build_peer() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let script = root.join("../shared/peers/seed-go/build.sh");
    if !script.exists() {
        bail!("{} not found", script.display());
    }
    let out = root.join("target/seed-go-server");
    eprintln!("building the Go peer: bash {}", script.display());
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .status()
        .context("could not run bash")?;
    if !status.success() {
        bail!("{} failed", script.display());
    }
    Ok(out)
}

/// A free port on 127.0.0.1, for the peer, which cannot be told to take
/// port 0 and report it. Another process could take it before the peer
/// does; on a benchmark machine that is rare enough to retry by hand.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// logtap's `--sync` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// The default: fsync every push batch.
    Batch,
    /// The OS decides; for filling stores whose write speed is not measured.
    Never,
}

impl SyncPolicy {
    fn arg(self) -> &'static str {
        match self {
            SyncPolicy::Batch => "batch",
            SyncPolicy::Never => "never",
        }
    }
}

/// A server process under test. Dropping it kills the process.
pub struct ServerProcess {
    /// For messages: "logtap" or "peer".
    pub name: String,
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The last lines of its standard error, for failure messages.
    stderr_tail: Arc<Mutex<Vec<String>>>,
    /// Set once stopped, so dropping it after `stop` does nothing.
    stopped: bool,
}

/// A new HTTP/2 connection to the server at `url` (`http://ADDR`), made on
/// the runtime this is called on: tonic spawns the channel's worker there.
pub async fn connect(url: String) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.clone())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("could not connect to {url}"))
}

impl ServerProcess {
    /// Starts `logtap serve` on a free loopback port with its data in `data`
    /// (port 0: the server picks and logs it, so there is no race).
    pub fn logtap(bin: &Path, data: &Path, sync: SyncPolicy) -> anyhow::Result<ServerProcess> {
        Self::logtap_with(bin, data, sync, &[])
    }

    /// [`ServerProcess::logtap`] with more options for `logtap serve`.
    pub fn logtap_with(
        bin: &Path,
        data: &Path,
        sync: SyncPolicy,
        extra: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--sync", sync.arg()])
            .arg("--data")
            .arg(data)
            // Every client of a run comes from 127.0.0.1, and the cancel
            // storm holds 10,000 streams at once: the per-address share
            // (a quarter of the slots by default) would refuse most.
            .args(["--max-streams-per-peer", "10000"])
            .args(extra)
            // The info level says where it listens; nothing per request.
            .env("RUST_LOG", "info");
        Self::spawn("logtap", command, "listening on http://")
    }

    /// Starts the seed's Go server, whose GetLogs sends `entries` made-up
    /// entries.
    pub fn peer(bin: &Path, entries: u64) -> anyhow::Result<ServerProcess> {
        let port = free_port()?;
        let mut command = Command::new(bin);
        command.args([
            "-n",
            &entries.to_string(),
            "-addr",
            &format!("127.0.0.1:{port}"),
        ]);
        Self::spawn("peer", command, "server listening on ")
    }

    /// Starts nats-server `bin` with the configuration file `config`.
    pub fn nats(bin: &Path, config: &Path) -> anyhow::Result<ServerProcess> {
        let mut command = Command::new(bin);
        command.arg("-c").arg(config);
        Self::spawn(
            "nats-server",
            command,
            "Listening for client connections on ",
        )
    }

    /// Spawns `command` and waits for the line of its standard error that
    /// holds `marker` followed by the address.
    fn spawn(name: &str, mut command: Command, marker: &str) -> anyhow::Result<ServerProcess> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {name} ({command:?})"))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = mpsc::channel();
        {
            let tail = Arc::clone(&tail);
            let marker = marker.to_string();
            // Keeps draining standard error for the server's whole life: a
            // full pipe would block the server's logging, and so the server.
            std::thread::spawn(move || {
                let mut found = Some(found);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find(&marker) {
                        if let Some(sender) = found.take() {
                            let rest = &line[at + marker.len()..];
                            let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                            let _ = sender.send(addr);
                        }
                    }
                    let mut tail = tail.lock().unwrap();
                    if tail.len() == 40 {
                        tail.remove(0);
                    }
                    tail.push(line);
                }
            });
        }
        let addr = match address.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{name} did not say it was listening:\n{}",
                    tail.lock().unwrap().join("\n")
                );
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| anyhow!("{name} logged an address that is not one: {addr:?}"))?;
        Ok(ServerProcess {
            name: name.to_string(),
            child,
            addr,
            stderr_tail: tail,
            stopped: false,
        })
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system, all threads) used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid())
    }

    /// Resident memory now, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss_bytes(self.pid())
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new HTTP/2 connection to the server. Each call is one TCP
    /// connection: tonic multiplexes every call made on a channel over it.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        connect(self.url())
            .await
            .with_context(|| format!("could not connect to {}", self.name))
    }

    /// A connection for many streams at once: its connection-level window
    /// is raised from hyper's 5 MiB, so that hundreds of streams sharing it
    /// are not throttled by a limit that separate clients would each have.
    pub async fn wide_channel(&self) -> anyhow::Result<Channel> {
        Endpoint::from_shared(self.url())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .initial_connection_window_size(64 << 20)
            .connect()
            .await
            .with_context(|| format!("could not connect to {} at {}", self.name, self.addr))
    }

    /// A gauge or counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = scrape_metrics(self.addr).await?;
        metric_value(&text, name).ok_or_else(|| anyhow!("/metrics has no {name}"))
    }

    /// Asks the server to stop (SIGTERM: logtap ends its streams and syncs
    /// the store) and waits for it, killing it after a grace period.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.stopped = true;
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if let Some(status) = self.child.try_wait()? {
            // Nobody asked it to stop: it crashed or failed, and its last
            // words say why.
            bail!(
                "{} exited by itself ({status}):\n{}",
                self.name,
                self.stderr_tail.lock().unwrap().join("\n")
            );
        }
        let pid = libc::pid_t::try_from(self.pid())?;
        // SAFETY: kill(2) with a pid of our own child and a valid signal.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("{} did not stop within 20 s of SIGTERM; killed", self.name)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Err(error) = self.terminate() {
            eprintln!("warning: {error:#}");
        }
    }
}

/// Clock ticks per second, the unit of utime and stime.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU seconds (utime + stime) of process `pid`, all its threads.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("could not read /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / clock_ticks())
        .ok_or_else(|| anyhow!("/proc/{pid}/stat has no utime/stime"))
}

/// This benchmark's own CPU seconds: when it is close to one core per
/// second of wall time, the client and not the server set the pace.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// utime + stime in ticks. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its closing parenthesis:
/// utime and stime are fields 14 and 15, the 12th and 13th after it.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of process `pid`, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("could not read /proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| anyhow!("/proc/{pid}/status has no VmRSS"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Samples a process's RSS on a thread until stopped: the peak of a run is
/// what a memory limit has to allow, and a single reading at the end would
/// miss it.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Samples every 20 ms.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid).unwrap_or(0)));
        let thread = {
            let stop = Arc::clone(&stop);
            let peak = Arc::clone(&peak);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = rss_bytes(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the peak seen, in bytes.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// GET /metrics over plain HTTP/1.1 (see [`http_get`]).
pub async fn scrape_metrics(addr: SocketAddr) -> anyhow::Result<String> {
    http_get(addr, "/metrics").await
}

/// GET `path` over plain HTTP/1.1: the body of a 200 answer. A
/// hand-written request keeps an HTTP client crate out of the benchmark;
/// the server answers these routes with a Content-Length body.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let path = path.to_string();
    // A blocking socket on the blocking pool: one short request, and the
    // async runtime stays free for the streams being measured.
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let mut socket = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        socket.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = Vec::new();
        socket.read_to_end(&mut response)?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow!("{path} answered without headers"))?;
        if !head.starts_with("HTTP/1.1 200") {
            bail!(
                "{path} answered {}: {body}",
                head.lines().next().unwrap_or_default()
            );
        }
        let chunked = head.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("transfer-encoding") && value.trim() == "chunked"
            })
        });
        if chunked {
            dechunk(body).with_context(|| format!("{path} answered a malformed chunked body"))
        } else {
            Ok(body.to_string())
        }
    })
    .await?
}

/// The body of a chunked HTTP/1.1 answer (nats-server's monitoring
/// endpoint sends larger answers this way).
fn dechunk(mut rest: &str) -> anyhow::Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| anyhow!("a chunk has no size line"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("a chunk size is not hexadecimal: {size:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| anyhow!("a chunk is shorter than its size"))?;
        body.push_str(chunk);
        rest = after[size..]
            .strip_prefix("\r\n")
            .ok_or_else(|| anyhow!("a chunk does not end with CRLF"))?;
    }
}

/// The value of an unlabelled sample `name` in a Prometheus/OpenMetrics
/// exposition.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_fields_after_the_command_name() {
        let stat = "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn vm_rss_is_in_kib() {
        let status = "Name:\tlogtap\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_vm_rss(status), Some(2 << 20));
    }

    #[test]
    fn metric_values_match_whole_names() {
        let text = "# TYPE logtap_active_streams gauge\nlogtap_active_streams_x 5\nlogtap_active_streams 3\n";
        assert_eq!(metric_value(text, "logtap_active_streams"), Some(3.0));
        assert_eq!(metric_value(text, "logtap_missing"), None);
    }

    #[test]
    fn chunked_bodies_are_joined_and_bad_ones_refused() {
        let body = "4\r\n{\"a\"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), "{\"a\": 1}");
        assert!(dechunk("zz\r\nab\r\n0\r\n\r\n").is_err());
        assert!(dechunk("9\r\nshort\r\n0\r\n\r\n").is_err());
        assert!(dechunk("2\r\nab").is_err());
    }

    #[test]
    fn own_process_is_measurable() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }
}

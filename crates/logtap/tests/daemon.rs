//! The real `logtap` binary run as a daemon: the configuration file
//! (`serve --config`, `config check`, `config example`), SIGHUP reloads,
//! the systemd notification protocol over a socket the test binds, JSON
//! logs, completions, the man page and the version.
#![cfg(target_os = "linux")]

mod common;

use common::{run, BIN, DEADLINE};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const OLD_TOKEN: &str = "daemon-old-token-0123456789abcdef";
const NEW_TOKEN: &str = "daemon-new-token-0123456789abcdef";

/// A running `logtap serve` whose standard error lines the test reads.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
    /// Every line seen so far, for failure messages.
    seen: Vec<String>,
}

impl Daemon {
    /// `logtap serve ARGS` with `env` set; `RUST_LOG` cleared.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start logtap serve");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[serve] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text` and returns it.
    fn wait_for(&mut self, text: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no line with {text:?}; saw:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// The URL from the line the server logs once it listens.
    fn url(&mut self) -> String {
        let line = self.wait_for("logtap is listening on ");
        let rest = line.split("logtap is listening on ").nth(1).unwrap();
        rest.split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap()
            .to_string()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child this test started.
        let done = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(done, 0, "kill failed");
    }

    /// SIGTERM, then the exit status and the lines not read yet.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal(libc::SIGTERM);
        let status = common::wait_with_deadline(&mut self.child, "logtap serve");
        let rest = self.lines.iter().collect();
        (status, rest)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(path: &Path, contents: &str) -> PathBuf {
    std::fs::write(path, contents).unwrap();
    path.to_path_buf()
}

/// `logtap push` of one line with `token`.
fn push(url: &str, token: &str) -> Output {
    run(
        &["push", "--server", url, "--token", token],
        &[],
        "ERROR pushed\n",
    )
}

#[test]
fn the_file_sets_serve_flags_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let from_cli = dir.path().join("from-cli");
    let config = write(
        &dir.path().join("logtap.toml"),
        &format!(
            "# A comment.\ndata = {:?}\nlisten = \"127.0.0.1:0\"\nsegment-mb = 8\nlog-format = \"json\"\nallowed-host = [\"logs.internal\", \"logs.example\"]\n",
            from_file.to_str().unwrap()
        ),
    );

    // The file alone: its data directory, and its log format (every line
    // one JSON object with the fields as keys).
    let mut daemon = Daemon::start(&["--config", config.to_str().unwrap()], &[]);
    daemon.url();
    let (status, rest) = daemon.stop();
    assert!(status.success());
    assert!(from_file.join("FORMAT").exists());
    let stopped = rest
        .iter()
        .find(|line| line.contains("Stopped; the store is synced."))
        .expect("the last words");
    let stopped: serde_json::Value = serde_json::from_str(stopped).expect("a JSON line");
    assert_eq!(stopped["level"], "INFO");
    assert_eq!(stopped["target"], "logtap_server::server");
    for line in &rest {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(value["message"].is_string(), "{line}");
    }

    // A flag on the command line wins over its key; the rest of the file
    // still applies (text logs from --log-format on the command line).
    let mut daemon = Daemon::start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--data",
            from_cli.to_str().unwrap(),
            "--log-format",
            "text",
        ],
        &[],
    );
    let line = daemon.wait_for("Listening for gRPC");
    assert!(!line.starts_with('{'), "{line}");
    assert!(line.contains("from-cli"), "{line}");
    let (status, _) = daemon.stop();
    assert!(status.success());
    assert!(from_cli.join("FORMAT").exists());
}

#[test]
fn unknown_keys_and_bad_values_are_refused_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write(
        &dir.path().join("bad.toml"),
        &format!(
            "data = {:?}\n\n# tuned\nsegment_mb = 8\nmax-connections = 0\nsync = \"sometimes\"\nmetrics-public = \"yes\"\ncors-origin = 3\n",
            data.to_str().unwrap()
        ),
    );
    let expected = [
        "bad.toml:4: key `segment_mb`: unknown key (did you mean `segment-mb`?)",
        "bad.toml:5: key `max-connections`: invalid value '0'",
        "bad.toml:6: key `sync`: invalid value 'sometimes'",
        "bad.toml:7: key `metrics-public`: expects true or false",
    ];

    let output = run(&["serve", "--config", config.to_str().unwrap()], &[], "");
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    for problem in expected {
        assert!(error.contains(problem), "{problem:?} in {error}");
    }
    assert!(!data.exists(), "nothing is created from a refused file");

    let error = check_refuses(&config);
    for problem in expected {
        assert!(error.contains(problem), "{problem:?} in {error}");
    }
    // A list key takes a single value too (one word).
    assert!(!error.contains("cors-origin"), "{error}");

    for (name, contents, said) in [
        // Broken TOML is named with its line.
        (
            "broken.toml",
            "data = \"x\"\nlisten = \n",
            "broken.toml:2: not valid TOML",
        ),
        // Flags that need each other are checked once the file is whole.
        ("half.toml", "tls-cert = \"cert.pem\"\n", "--tls-key"),
    ] {
        let error = check_refuses(&write(&dir.path().join(name), contents));
        assert!(error.contains(said), "{said:?} in {error}");
    }
    let error = check_refuses(Path::new("/nonexistent/logtap.toml"));
    assert!(error.contains("cannot read the file"), "{error}");
}

/// `logtap config check FILE`, which must refuse it; what it said.
fn check_refuses(path: &Path) -> String {
    let output = run(&["config", "check", path.to_str().unwrap()], &[], "");
    assert_eq!(output.status.code(), Some(2));
    text(&output.stderr)
}

#[test]
fn the_example_has_every_serve_flag_and_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["config", "example"], &[], "");
    assert!(output.status.success());
    let example = text(&output.stdout);
    let path = write(&dir.path().join("example.toml"), &example);
    let output = run(&["config", "check", path.to_str().unwrap()], &[], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("OK"));

    // Every long flag of `serve --help` is a key, set or commented out.
    let help = text(&run(&["serve", "--help"], &[], "").stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .map(|flag| flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .map(|flag| flag.split(['=', '<']).next().unwrap())
        .filter(|flag| !flag.is_empty() && !["help", "config", "version"].contains(flag))
        .collect();
    assert!(flags.len() > 20, "{flags:?}");
    for flag in flags {
        if !help.contains(&format!("  --{flag}")) && !help.contains(&format!(", --{flag}")) {
            continue; // mentioned in a description, not a flag of its own
        }
        assert!(
            example.contains(&format!("\n{flag} = "))
                || example.contains(&format!("\n# {flag} = ")),
            "no key for --{flag}"
        );
    }
    // Defaults as clap has them.
    assert!(example.contains("\nsegment-mb = 16\n"), "{example}");
    assert!(example.contains("\nsync = \"batch\"\n"), "{example}");
    assert!(example.contains("\nmetrics-public = false\n"), "{example}");
}

#[test]
fn sighup_reloads_the_token_file_and_a_bad_file_keeps_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write(
        &dir.path().join("tokens.txt"),
        &format!("{OLD_TOKEN} read,write\n"),
    );
    let (config, plain) = plain_config(dir.path());
    let config_text = format!("{plain}auth-token-file = {:?}\n", tokens.to_str().unwrap());
    write(&config, &config_text);
    let mut daemon = Daemon::start(&["--config", config.to_str().unwrap()], &[]);
    let url = daemon.url();
    assert!(push(&url, OLD_TOKEN).status.success());
    assert!(!push(&url, NEW_TOKEN).status.success());

    // Rotate: the new token gets in, the old one no longer does.
    write(&tokens, &format!("{NEW_TOKEN} read,write\n"));
    daemon.signal(libc::SIGHUP);
    daemon.wait_for("Reloaded the token file.");
    daemon.wait_for("Reloaded the configuration.");
    assert!(push(&url, NEW_TOKEN).status.success());
    let refused = push(&url, OLD_TOKEN);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("token"));

    // A token file with a mistake: the tokens in force stay.
    write(&tokens, &format!("{OLD_TOKEN} everything\n"));
    daemon.signal(libc::SIGHUP);
    let line = daemon.wait_for("The token file has a problem");
    assert!(line.contains("running configuration is kept"), "{line}");
    assert!(push(&url, NEW_TOKEN).status.success());
    assert!(!push(&url, OLD_TOKEN).status.success());

    // A configuration file with a mistake: nothing changes.
    write(&tokens, &format!("{OLD_TOKEN} read,write\n"));
    write(&config, &format!("{config_text}no-such-key = 1\n"));
    daemon.signal(libc::SIGHUP);
    let line = daemon.wait_for("The configuration has a problem");
    assert!(line.contains("logtap.toml:4: key `no-such-key`"), "{line}");
    assert!(push(&url, NEW_TOKEN).status.success());

    // What cannot change live is named; what can is applied.
    write(
        &config,
        &(config_text.replace("127.0.0.1:0", "127.0.0.1:1")
            + "retention-mb = 100\nlog-level = \"debug\"\n"),
    );
    daemon.signal(libc::SIGHUP);
    let line = daemon.wait_for("take effect only after a restart");
    assert!(line.contains("listen"), "{line}");
    assert!(!line.contains("retention"), "{line}");
    daemon.wait_for("Reloaded the configuration.");
    // The old address still serves, and the reloaded tokens are in force.
    assert!(push(&url, OLD_TOKEN).status.success());
    let (status, _) = daemon.stop();
    assert!(status.success());
}

/// `GET path` over a new HTTP/1.1 connection; the whole response.
fn http_get(address: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// `DIR/logtap.toml` with a data directory in `dir` and a free port, and
/// its text, for a test to add to.
fn plain_config(dir: &Path) -> (PathBuf, String) {
    let text = format!(
        "data = {:?}\nlisten = \"127.0.0.1:0\"\n",
        dir.join("data").to_str().unwrap()
    );
    (write(&dir.join("logtap.toml"), &text), text)
}

#[test]
fn a_reload_changes_the_connection_cap_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (config, config_text) = plain_config(dir.path());
    // RUST_LOG asks for errors only; the file's log-level wins over it.
    let mut daemon = Daemon::start(
        &["--config", config.to_str().unwrap(), "--log-level", "info"],
        &[("RUST_LOG", "error")],
    );
    let url = daemon.url();
    let address = url.trim_start_matches("http://").to_string();
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    assert!(http_get(&address, "/healthz")
        .unwrap()
        .starts_with("HTTP/1.1 200"));

    // Tokens turned on by a reload would change every route: that one
    // waits for a restart.
    write(
        &config,
        &format!("{config_text}max-connections = 1\nretention-age = \"30d\"\nauth-token-file = \"tokens.txt\"\n"),
    );
    daemon.signal(libc::SIGHUP);
    let line = daemon.wait_for("take effect only after a restart");
    assert!(line.contains("auth-token-file"), "{line}");
    let line = daemon.wait_for("Reloaded the configuration.");
    assert!(line.contains("changed=3 needs_restart=1"), "{line}");
    for key in ["max-connections", "retention-age"] {
        assert!(
            daemon
                .seen
                .iter()
                .any(|line| line.contains("A setting changed and is in force.")
                    && line.contains(&format!("key=\"{key}\""))),
            "no change logged for {key}"
        );
    }
    // Two connections are open, over the new cap of one: the next is
    // closed as soon as it is accepted.
    let refused = http_get(&address, "/healthz");
    assert!(
        refused.as_ref().map_or(true, String::is_empty),
        "{refused:?}"
    );
    drop(held);
    // Once they are gone, one fits again; the refusal was counted.
    let start = Instant::now();
    let metrics = loop {
        match http_get(&address, "/metrics") {
            Ok(response) if response.starts_with("HTTP/1.1 200") => break response,
            _ if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("{other:?}"),
        }
    };
    // At least the one above: tries of this loop made before the held
    // connections were gone count too.
    let refusals: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("logtap_limit_rejections_total{limit=\"connections\"} "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(refusals >= 1, "{metrics}");

    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn without_a_log_level_rust_log_decides_until_a_reload_sets_one() {
    let dir = tempfile::tempdir().unwrap();
    let (config, config_text) = plain_config(dir.path());
    let address = dir.path().join("notify.sock");
    let socket = notify_socket(address.to_str().unwrap());
    let mut daemon = Daemon::start(
        &["--config", config.to_str().unwrap()],
        &[
            ("RUST_LOG", "warn"),
            ("NOTIFY_SOCKET", address.to_str().unwrap()),
        ],
    );
    assert!(receive(&socket).starts_with("READY=1"));
    write(&config, &format!("{config_text}log-level = \"info\"\n"));
    daemon.signal(libc::SIGHUP);
    // The reload's own last line is at info: the new level is in force.
    daemon.wait_for("Reloaded the configuration.");
    assert!(
        !daemon
            .seen
            .iter()
            .any(|line| line.contains("logtap is listening")),
        "RUST_LOG=warn kept the start quiet: {:?}",
        daemon.seen
    );
    let (status, _) = daemon.stop();
    assert!(status.success());
}

/// A socket in the role of systemd's, at `address` (a path, or `@name`).
fn notify_socket(address: &str) -> UnixDatagram {
    let socket = match address.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
            UnixDatagram::bind_addr(&address).unwrap()
        }
        None => UnixDatagram::bind(address).unwrap(),
    };
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 4096];
    loop {
        match socket.recv(&mut buffer) {
            Ok(size) => return String::from_utf8_lossy(&buffer[..size]).into_owned(),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => panic!("no notification in time: {error} ({:?})", error.kind()),
        }
    }
}

/// The next message other than a watchdog ping.
fn receive_state(socket: &UnixDatagram) -> String {
    loop {
        let message = receive(socket);
        if message != "WATCHDOG=1" {
            return message;
        }
    }
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let address = dir.path().join("notify.sock");
    let socket = notify_socket(address.to_str().unwrap());
    let mut daemon = Daemon::start(
        &["--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()],
        &[
            ("NOTIFY_SOCKET", address.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );

    let ready = receive(&socket);
    assert!(
        ready.starts_with("READY=1\nSTATUS=Listening on http://127.0.0.1:"),
        "{ready}"
    );
    // Ready means the store is open and the port answers.
    assert!(data.join("FORMAT").exists());
    let url = daemon.url();
    assert!(
        ready.ends_with(url.trim_start_matches("http://")),
        "{ready} {url}"
    );
    let port = url.rsplit(':').next().unwrap();
    std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();

    // Pings at half of WATCHDOG_USEC, one after another, and nothing else
    // between READY and a reload. How often is not timed here: a loaded
    // machine may delay any of them.
    for _ in 0..3 {
        assert_eq!(receive(&socket), "WATCHDOG=1");
    }

    daemon.signal(libc::SIGHUP);
    let reloading = receive_state(&socket);
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let monotonic = lines
        .next()
        .unwrap()
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap();
    assert!(monotonic.parse::<u64>().unwrap() > 0);
    assert_eq!(receive_state(&socket), "READY=1");

    daemon.signal(libc::SIGTERM);
    assert_eq!(receive_state(&socket), "STOPPING=1");
    let (status, _) = daemon.stop_after_signal();
    assert!(status.success());
}

#[test]
fn an_abstract_notify_socket_is_reached_too() {
    let name = format!("@logtap-daemon-test-{}", std::process::id());
    let socket = notify_socket(&name);
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data",
            dir.path().to_str().unwrap(),
        ],
        &[("NOTIFY_SOCKET", &name)],
    );
    assert!(receive(&socket).starts_with("READY=1\n"));
    daemon.url();
    let (status, _) = daemon.stop();
    assert!(status.success());
    assert_eq!(receive(&socket), "STOPPING=1");
}

impl Daemon {
    /// Waits for an exit the test already asked for.
    fn stop_after_signal(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = common::wait_with_deadline(&mut self.child, "logtap serve");
        let rest = self.lines.iter().collect();
        (status, rest)
    }
}

#[test]
fn bash_loads_the_completion_script_and_the_others_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["completions", "bash"], &[], "");
    assert!(output.status.success());
    let script = write(&dir.path().join("logtap.bash"), &text(&output.stdout));
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p logtap && COMP_WORDS=(logtap se); COMP_CWORD=1; _logtap logtap se logtap && echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash");
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let said = text(&loaded.stdout);
    assert!(said.contains("-F _logtap logtap"), "{said}");
    assert!(
        said.lines()
            .last()
            .unwrap()
            .split_whitespace()
            .any(|word| word == "serve"),
        "{said}"
    );

    for (shell, mark) in [("zsh", "#compdef logtap"), ("fish", "complete -c logtap")] {
        let output = run(&["completions", shell], &[], "");
        assert!(output.status.success());
        let script = text(&output.stdout);
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(script.contains("segment-mb"), "{shell}");
    }
    let output = run(&["completions", "tcsh"], &[], "");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_that_man_reads() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["man"], &[], "");
    assert!(output.status.success());
    let page = text(&output.stdout);
    assert!(page.contains(".TH logtap 1"), "{page}");
    assert!(page.contains("serve"), "{page}");
    let path = write(&dir.path().join("logtap.1"), &page);
    if let Ok(rendered) = Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        assert!(rendered.status.success(), "{}", text(&rendered.stderr));
        let shown = text(&rendered.stdout);
        assert!(shown.contains("NAME"), "{shown}");
        assert!(shown.contains("logtap"), "{shown}");
    }
}

#[test]
fn the_version_names_the_commit() {
    let output = run(&["--version"], &[], "");
    assert!(output.status.success());
    let version = text(&output.stdout);
    let prefix = format!("logtap {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&prefix), "{version}");
    let commit = version[prefix.len()..].trim_end().trim_end_matches(')');
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(head) if head.status.success() => {
            assert_eq!(commit, text(&head.stdout).trim(), "{version}");
        }
        _ => assert_eq!(commit, "unknown", "{version}"),
    }
}

/// The workspace's root, where `contrib/` is.
fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let unit = std::fs::read_to_string(repo_file("contrib/logtap.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/logtap",
        "DynamicUser=yes",
        "ExecStart=/usr/local/bin/logtap serve --config /etc/logtap/logtap.toml",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
    // systemd's own check, with the binary under test in ExecStart (verify
    // wants it to exist), where systemd is installed.
    let dir = tempfile::tempdir().unwrap();
    let copy = write(
        &dir.path().join("logtap.service"),
        &unit.replace("/usr/local/bin/logtap", BIN),
    );
    if let Ok(verified) = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
    {
        assert!(
            verified.status.success() && verified.stderr.is_empty(),
            "{}",
            text(&verified.stderr)
        );
    }
}

#[test]
fn the_container_configuration_passes_the_check() {
    let path = repo_file("contrib/container.toml");
    let output = run(&["config", "check", path.to_str().unwrap()], &[], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("data in /var/lib/logtap"));
    let dockerfile = std::fs::read_to_string(repo_file("Dockerfile")).unwrap();
    for line in [
        "COPY contrib/container.toml /etc/logtap/logtap.toml",
        "USER logtap",
        "VOLUME [\"/var/lib/logtap\"]",
        "HEALTHCHECK",
        "/healthz",
    ] {
        assert!(dockerfile.contains(line), "the Dockerfile lacks {line}");
    }
}

#[test]
fn lines_to_the_journal_carry_their_priority() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = tempfile::tempdir().unwrap();
    // A pipe in the role of journald's stream, named by JOURNAL_STREAM as
    // systemd names it: its device and inode numbers.
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which the OwnedFds own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let stat = std::fs::File::from(write.try_clone().unwrap())
        .metadata()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let stream = format!("{}:{}", stat.dev(), stat.ino());
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", &stream)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(std::fs::File::from(read)).lines();
    let listening = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("logtap is listening on"))
        .expect("the listening line");
    // Info, with no time of its own (journald stamps the entry).
    assert!(
        listening.starts_with("<6> INFO logtap::serve: "),
        "{listening}"
    );
    // SAFETY: kill(2) on the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = common::wait_with_deadline(&mut child, "logtap serve");
    assert!(status.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(rest.iter().all(|line| line.starts_with('<')), "{rest:#?}");
}

//! What the CLI test files share: running the real `logtap` binary to the
//! end, with a deadline, and showing what it printed when a test fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_logtap");

/// How long any one command may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Waits for `child` to exit, killing it and failing after [`DEADLINE`].
pub fn wait_with_deadline(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{what} did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `logtap ARGS` to the end with `env` set (and the client variables
/// otherwise cleared), `stdin` as its standard input.
pub fn run(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("LOGTAP_SERVER")
        .env_remove("LOGTAP_TOKEN")
        .env_remove("LOGTAP_CA_CERT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start logtap");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stdout.read_to_end(&mut buffer);
        buffer
    });
    let err = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stderr.read_to_end(&mut buffer);
        buffer
    });
    let status = wait_with_deadline(&mut child, &format!("logtap {}", args.join(" ")));
    writer.join().unwrap();
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    eprintln!(
        "$ logtap {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `logtap serve --listen 127.0.0.1:0 --data DIR EXTRA...`, with its
/// default log level and standard error piped: the server logs the address
/// it took there.
pub fn serve_command(data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts [`serve_command`] and reads the address it took from the line it
/// logs. Returns the child and its URL.
pub fn start_serve(data: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = serve_command(data, extra)
        .spawn()
        .expect("start logtap serve");
    let stderr = child.stderr.take().unwrap();
    let (found, url) = mpsc::channel();
    // Keeps draining standard error after the address line, so the server
    // never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            if let Some((_, rest)) = line.split_once("logtap is listening on ") {
                let url = rest.split_whitespace().next().unwrap_or("").to_string();
                if let Some(found) = found.take() {
                    let _ = found.send(url);
                }
            }
        }
    });
    match url.recv_timeout(DEADLINE) {
        Ok(url) => (child, url),
        Err(_) => {
            let _ = child.kill();
            panic!("logtap serve did not say where it listens");
        }
    }
}

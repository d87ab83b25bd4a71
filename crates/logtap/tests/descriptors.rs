//! The real `logtap serve` out of file descriptors: started under a low
//! open-file limit (soft and hard, so it cannot raise it), held there by
//! clients that connect and say nothing, it keeps the connections it has,
//! logs the failing accepts a bounded number of times instead of ten a
//! second, and serves new clients again as soon as descriptors are free.
//! And clients that can make it log at will (HTTP/2 rapid resets) get one
//! line per interval, not one per connection.

mod common;

use common::BIN;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `GET /healthz` on a new connection: the status line, or `None` when no
/// answer came within `wait`.
fn healthz(addr: SocketAddr, wait: Duration) -> Option<String> {
    let mut tcp = TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(wait)).ok()?;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().map(str::to_string)
}

#[test]
fn out_of_descriptors_the_server_backs_off_quietly_and_recovers() {
    let data = tempfile::tempdir().unwrap();
    let script = "ulimit -n 64 && exec \"$0\" serve --listen 127.0.0.1:0 --header-read-timeout 120s --data \"$1\"";
    let mut child = Command::new("bash")
        .args(["-c", script, BIN])
        .arg(data.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logtap serve under bash");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            collected.lock().unwrap().push(line);
        }
    });
    let wait_for = |needle: &str| -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if start.elapsed() > common::DEADLINE {
                panic!("the server never logged {needle:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let listening = wait_for("logtap is listening on http://");
    let addr: SocketAddr = listening
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .expect("the address");
    assert_eq!(
        healthz(addr, Duration::from_secs(20)).as_deref(),
        Some("HTTP/1.1 200 OK")
    );

    // More silent clients than the server has descriptors for: the rest
    // wait in the listen backlog, and accepting fails.
    let silent: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    wait_for("Could not accept a connection");
    // Out of descriptors for a while: a spinning accept loop would log
    // ten lines a second here.
    std::thread::sleep(Duration::from_secs(3));
    let failures = |lines: &Mutex<Vec<String>>| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("Could not accept a connection"))
            .count()
    };
    let logged = failures(&lines);
    assert!(logged <= 2, "{logged} lines about failing accepts");

    // Descriptors come back: a new client is served again.
    drop(silent);
    let start = Instant::now();
    loop {
        if healthz(addr, Duration::from_secs(5)).as_deref() == Some("HTTP/1.1 200 OK") {
            break;
        }
        assert!(
            start.elapsed() < common::DEADLINE,
            "/healthz never answered again"
        );
    }
    assert!(failures(&lines) <= 2);
    let _ = child.kill();
    let _ = child.wait();
}

/// Opens streams on one HTTP/2 connection and resets each at once, until
/// the server sends the connection away (or `streams` have been sent).
async fn rapid_resets(addr: SocketAddr, streams: usize) {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let Ok((mut client, connection)) = h2::client::handshake(tcp).await else {
        return;
    };
    let driver = tokio::spawn(connection);
    for _ in 0..streams {
        let request = http::Request::post(format!("http://{addr}/logtap.v1.LogService/Push"))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let Ok(ready) = client.clone().ready().await else {
            break;
        };
        client = ready;
        let Ok((_, mut stream)) = client.send_request(request, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
}

#[test]
fn rapid_resets_are_logged_once_per_interval_not_once_per_connection() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, lines) = {
        let mut child = common::serve_command(data.path(), &[])
            .spawn()
            .expect("start logtap serve");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().unwrap();
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[serve] {line}");
                collected.lock().unwrap().push(line);
            }
        });
        (child, lines)
    };
    let start = Instant::now();
    let addr: SocketAddr = loop {
        let found = lines.lock().unwrap().iter().find_map(|line| {
            let rest = line.split("logtap is listening on http://").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        });
        if let Some(addr) = found {
            break addr;
        }
        assert!(start.elapsed() < common::DEADLINE, "no address logged");
        std::thread::sleep(Duration::from_millis(20));
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for _ in 0..5 {
            rapid_resets(addr, 500).await;
        }
    });
    let about_resets = |lines: &Mutex<Vec<String>>| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("ENHANCE_YOUR_CALM") || l.contains("reached limit"))
            .count()
    };
    // The server noticed (one line), and said so once, not five times.
    let start = Instant::now();
    while about_resets(&lines) == 0 {
        assert!(start.elapsed() < common::DEADLINE, "no line about resets");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(about_resets(&lines), 1);
    assert_eq!(
        healthz(addr, Duration::from_secs(20)).as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    let _ = child.kill();
    let _ = child.wait();
}

//! The real `logtap` binary, end to end: a server on a free port with its
//! data in a temporary directory, and the client commands against it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;

use serde_json::Value;

mod common;

use common::{wait_with_deadline, BIN, DEADLINE};

/// A `logtap serve` child, killed when dropped if still running.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts a server on a port the system picks, and reads the address it
    /// took from the line it logs.
    fn start(data: &Path) -> Server {
        let (child, url) = common::start_serve(data, &[]);
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    /// Sends a signal by name (TERM, INT) and waits for the exit.
    fn stop(mut self, signal: &str) -> ExitStatus {
        send_signal(&self.child, signal);
        wait_with_deadline(&mut self.child, "logtap serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Runs `logtap ARGS` to the end, with `stdin` as its standard input.
fn logtap(args: &[&str], stdin: &str) -> Output {
    common::run(args, &[], stdin)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `--output json` lines, each checked to be the HTTP API's form.
fn json_lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON line");
            let object = value.as_object().expect("a JSON object");
            let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(keys, ["cursor", "labels", "level", "message", "timestamp"]);
            assert!(value["cursor"].is_u64() && value["timestamp"].is_i64());
            assert!(value["level"].is_string() && value["message"].is_string());
            assert!(value["labels"].is_object());
            value
        })
        .collect()
}

fn messages(values: &[Value]) -> Vec<&str> {
    values
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect()
}

/// "stored N entries, last cursor C" as (N, C).
fn stored(output: &Output) -> (u64, u64) {
    assert!(output.status.success(), "{}", stderr(output));
    let text = stdout(output);
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["stored", n, _entries, "last", "cursor", c] => (n.parse().unwrap(), c.parse().unwrap()),
        _ => panic!("unexpected push output {text:?}"),
    }
}

const MIXED: &str = r#"{"level":"info","msg":"service started","ts":"2024-05-01T12:00:00Z","app":"api"}
ERROR database unreachable

[warn] disk 91% full
{"level":"fatal","message":"out of memory","timestamp":1714564805000,"app":"api"}
plain line without a level
2024-05-01T12:00:06Z error queue overflowed
level=error msg="retry failed"
"#;

#[test]
fn push_a_mixed_file_then_query_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let file = dir.path().join("app.log");
    std::fs::write(&file, MIXED).unwrap();
    let url = server.url.as_str();

    let (count, last) = stored(&logtap(
        &["push", "--server", url, file.to_str().unwrap()],
        "",
    ));
    assert_eq!(count, 7);

    let all = json_lines(&logtap(&["logs", "--server", url, "--output", "json"], ""));
    assert_eq!(
        messages(&all),
        [
            "service started",
            "ERROR database unreachable",
            "[warn] disk 91% full",
            "out of memory",
            "plain line without a level",
            "2024-05-01T12:00:06Z error queue overflowed",
            "level=error msg=\"retry failed\"",
        ]
    );
    let cursors: Vec<u64> = all.iter().map(|v| v["cursor"].as_u64().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    assert_eq!(*cursors.last().unwrap(), last);
    assert_eq!(
        all[0]["timestamp"].as_i64(),
        Some(1_714_564_800_000_000_000)
    );
    assert_eq!(all[0]["labels"], serde_json::json!({"app": "api"}));
    assert_eq!(
        all[3]["timestamp"].as_i64(),
        Some(1_714_564_805_000_000_000)
    );
    // Plain lines get the server's receive time: recent, not zero; unless
    // they start with a time of their own.
    assert!(all[1]["timestamp"].as_i64().unwrap() > 1_714_564_805_000_000_000);
    assert_eq!(
        all[5]["timestamp"].as_i64(),
        Some(1_714_564_806_000_000_000)
    );
    let levels: Vec<&str> = all.iter().map(|v| v["level"].as_str().unwrap()).collect();
    assert_eq!(
        levels,
        ["info", "error", "warn", "fatal", "info", "error", "error"]
    );

    // "Show Errors": error and above, in order.
    let errors = json_lines(&logtap(
        &[
            "logs", "--server", url, "--level", "error", "--output", "json",
        ],
        "",
    ));
    assert_eq!(
        messages(&errors),
        [
            "ERROR database unreachable",
            "out of memory",
            "2024-05-01T12:00:06Z error queue overflowed",
            "level=error msg=\"retry failed\""
        ]
    );

    let grep = logtap(&["logs", "--server", url, "--grep", "disk"], "");
    assert!(grep.status.success());
    let text = stdout(&grep);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("WARN") && text.contains("[warn] disk 91% full"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour into a pipe: {text:?}");

    // Case-insensitive, by the long flag and the short one.
    for flag in ["--ignore-case", "-i"] {
        let found = json_lines(&logtap(
            &[
                "logs", "--server", url, "--grep", "DATABASE", flag, "--output", "json",
            ],
            "",
        ));
        assert_eq!(messages(&found), ["ERROR database unreachable"], "{flag}");
    }
    let exact = json_lines(&logtap(
        &[
            "logs", "--server", url, "--grep", "DATABASE", "--output", "json",
        ],
        "",
    ));
    assert!(exact.is_empty(), "case-sensitive without the flag");

    // A LogQL query as the positional argument, with flags beside it.
    let queried = json_lines(&logtap(
        &[
            "logs",
            "--server",
            url,
            r#"{level=~"error|fatal"} |~ "(?i)database|retry" | logfmt | msg!="x""#,
            "--output",
            "json",
        ],
        "",
    ));
    assert_eq!(
        messages(&queried),
        [
            "ERROR database unreachable",
            "level=error msg=\"retry failed\""
        ]
    );
    let bad = logtap(&["logs", "--server", url, "{level=}"], "");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("bad query at 7: expected a quoted value"),
        "{}",
        stderr(&bad)
    );

    let limited = json_lines(&logtap(
        &["logs", "--server", url, "--limit", "2", "--output", "json"],
        "",
    ));
    assert_eq!(
        messages(&limited),
        ["service started", "ERROR database unreachable"]
    );

    let newest = json_lines(&logtap(
        &[
            "logs",
            "--server",
            url,
            "--reverse",
            "--limit",
            "1",
            "--output",
            "json",
        ],
        "",
    ));
    assert_eq!(messages(&newest), ["level=error msg=\"retry failed\""]);

    let labelled = json_lines(&logtap(
        &[
            "logs", "--server", url, "--label", "app=api", "--output", "json",
        ],
        "",
    ));
    assert_eq!(messages(&labelled), ["service started", "out of memory"]);

    let after = json_lines(&logtap(
        &[
            "logs",
            "--server",
            url,
            "--after-cursor",
            &cursors[3].to_string(),
            "--output",
            "json",
        ],
        "",
    ));
    assert_eq!(
        messages(&after),
        [
            "plain line without a level",
            "2024-05-01T12:00:06Z error queue overflowed",
            "level=error msg=\"retry failed\""
        ]
    );

    let since = json_lines(&logtap(
        &[
            "logs",
            "--server",
            url,
            "--since",
            "2024-05-01T12:00:01Z",
            "--until",
            "2024-05-01T12:00:06Z",
            "--output",
            "json",
        ],
        "",
    ));
    assert_eq!(messages(&since), ["out of memory"]);

    // Standard input, with `-`, and the JSON form read back as itself.
    let exported = stdout(&logtap(
        &[
            "logs", "--server", url, "--level", "fatal", "--output", "json",
        ],
        "",
    ));
    let (count, _) = stored(&logtap(&["push", "--server", url, "-"], &exported));
    assert_eq!(count, 1);
    let fatal = json_lines(&logtap(
        &[
            "logs", "--server", url, "--level", "fatal", "--output", "json",
        ],
        "",
    ));
    assert_eq!(fatal.len(), 2);
    for key in ["timestamp", "level", "message", "labels"] {
        assert_eq!(fatal[0][key], fatal[1][key], "{key}");
    }
}

#[test]
fn query_prints_a_table_per_series_or_json_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let url = server.url.as_str();
    let lines = [
        r#"{"time":"2024-05-01T12:00:01Z","level":"error","msg":"a"}"#,
        r#"{"time":"2024-05-01T12:00:02Z","level":"error","msg":"b"}"#,
        r#"{"time":"2024-05-01T12:00:03Z","level":"info","msg":"c"}"#,
        r#"{"time":"2024-05-01T12:01:30Z","level":"error","msg":"d"}"#,
    ];
    let (count, _) = stored(&logtap(&["push", "--server", url], &lines.join("\n")));
    assert_eq!(count, 4);
    let args = |output: &str| {
        vec![
            "query".to_string(),
            "--server".into(),
            url.to_string(),
            "sum by (level) (count_over_time({}[1m]))".into(),
            "--since".into(),
            "2024-05-01T12:01:00Z".into(),
            "--until".into(),
            "2024-05-01T12:02:00Z".into(),
            "--step".into(),
            "1m".into(),
            "--output".into(),
            output.into(),
        ]
    };
    let run = |output: &str| {
        let args = args(output);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        logtap(&args, "")
    };
    let json = run("json");
    assert!(json.status.success(), "{}", stderr(&json));
    let points: Vec<Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON point"))
        .collect();
    assert_eq!(points.len(), 2, "{points:?}");
    let at = |k: usize, level: &str| {
        points[k]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["labels"]["level"] == level)
            .map(|s| s["value"].as_f64().unwrap())
    };
    assert_eq!((at(0, "error"), at(0, "info")), (Some(2.0), Some(1.0)));
    assert_eq!((at(1, "error"), at(1, "info")), (Some(1.0), None));
    let text = run("text");
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(text.contains(r#"{level="error"}"#), "{text}");
    assert!(text.contains(r#"{level="info"}"#), "{text}");
    assert_eq!(text.lines().count(), 5, "two series, three points: {text}");
    assert!(!text.contains('█'), "no bars into a pipe: {text}");
    let bad = logtap(&["query", "--server", url, "{}"], "");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("a log query selects entries"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_bad_level_names_the_valid_ones() {
    let output = logtap(&["logs", "--level", "loud"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("trace, debug, info, warn, error, fatal"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_seal_delay_says_what_is_accepted() {
    let output = logtap(&["serve", "--seal-after", "later"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--seal-after <DURATION|never>")
            && stderr(&output).contains("90s"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_time_lists_the_accepted_forms() {
    let output = logtap(&["logs", "--since", "yesterday"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("RFC 3339"), "{}", stderr(&output));
}

#[test]
fn an_unreachable_server_is_a_sentence_and_a_failure() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["logs", "--server", &url],
        vec!["push", "--server", &url],
    ] {
        let output = logtap(&args, "a line\n");
        assert_eq!(output.status.code(), Some(1));
        let text = stderr(&output);
        assert!(
            text.starts_with(&format!("error: could not connect to {url}: ")),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}

#[test]
fn a_missing_file_fails_before_anything_is_sent() {
    let output = logtap(
        &[
            "push",
            "--server",
            "http://127.0.0.1:9",
            "/no/such/file.log",
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: could not open /no/such/file.log: "),
        "{}",
        stderr(&output)
    );
}

/// Reads standard output lines on a thread, so the test can wait for one
/// with a deadline.
fn line_reader(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

#[test]
fn follow_receives_what_is_pushed_after_it_started_and_ctrl_c_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let url = server.url.as_str();
    stored(&logtap(&["push", "--server", url], "before\n"));

    let mut follower = Command::new(BIN)
        .args(["logs", "--server", url, "-f", "--output", "json"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = line_reader(follower.stdout.take().unwrap());
    let first = lines.recv_timeout(DEADLINE).expect("the history");
    assert!(first.contains("\"before\""), "{first}");

    // The follower has its history, so it is attached: this one is live.
    stored(&logtap(&["push", "--server", url], "ERROR after\n"));
    let second = lines.recv_timeout(DEADLINE).expect("the live entry");
    let value: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(value["message"], "ERROR after");
    assert_eq!(value["level"], "error");

    send_signal(&follower, "INT");
    let status = wait_with_deadline(&mut follower, "logtap logs -f");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_stops_the_server_cleanly_and_a_restart_serves_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let lines: String = (0..2500).map(|i| format!("line {i}\n")).collect();
    let (count, last) = stored(&logtap(&["push", "--server", &server.url], &lines));
    assert_eq!(count, 2500);
    let before = stdout(&logtap(
        &["logs", "--server", &server.url, "--output", "json"],
        "",
    ));
    assert_eq!(before.lines().count(), 2500);

    let status = server.stop("TERM");
    assert!(status.success(), "{status:?}");

    let server = Server::start(&data);
    let after = stdout(&logtap(
        &["logs", "--server", &server.url, "--output", "json"],
        "",
    ));
    assert_eq!(before, after);
    let (_, next) = stored(&logtap(&["push", "--server", &server.url], "one more\n"));
    assert!(
        next > last,
        "cursors go on after a restart: {next} after {last}"
    );
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let lines: String = (0..20_000).map(|i| format!("entry number {i}\n")).collect();
    stored(&logtap(&["push", "--server", &server.url], &lines));

    // `logtap logs | head -1`.
    let mut reader = Command::new(BIN)
        .args(["logs", "--server", &server.url])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(reader.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("entry number 0"), "{first}");
    drop(stdout);
    let status = wait_with_deadline(&mut reader, "logtap logs | head -1");
    let mut errors = String::new();
    reader
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    assert!(status.success(), "{status:?}: {errors}");
    assert_eq!(errors, "");
}

#[test]
fn a_bad_pattern_is_invalid_argument_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let output = logtap(
        &["logs", "--server", &server.url, "--grep", "(", "--regex"],
        "",
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("error: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_second_server_on_a_data_directory_in_use_exits_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(&data);
    let (count, _) = stored(&logtap(&["push", "--server", &first.url], "kept\n"));
    assert_eq!(count, 1);

    let mut second = common::serve_command(&data, &[]).spawn().unwrap();
    let status = wait_with_deadline(&mut second, "the second logtap serve");
    let mut message = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut message)
        .unwrap();
    assert!(!status.success(), "the second server must not start");
    assert!(
        message.contains("is in use by another logtap process")
            && message.contains(&format!("(pid {})", first.child.id())),
        "the message names the directory's holder: {message}"
    );

    // The first server was not disturbed, and keeps what it acknowledged.
    let after = stdout(&logtap(
        &["logs", "--server", &first.url, "--output", "json"],
        "",
    ));
    assert_eq!(after.lines().count(), 1);
    assert!(first.stop("TERM").success());
    // Once it is gone, the directory can be opened again.
    let again = Server::start(&data);
    let (count, _) = stored(&logtap(&["push", "--server", &again.url], "more\n"));
    assert_eq!(count, 1);
}

#[test]
fn text_output_shows_control_characters_instead_of_sending_them_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    // A title change, a bell, a carriage return over the line, a cursor
    // move, a forged second line, and a label name that sets bold.
    let line = r#"{"level":"error","message":"\u001b]0;owned\u0007x\rfake\u001b[2A\nERROR forged","k\u001b[1m":"v"}"#;
    let output = logtap(&["push", "--server", &server.url], &format!("{line}\n"));
    assert!(output.status.success(), "{}", stderr(&output));

    let output = logtap(&["logs", "--server", &server.url, "--output", "text"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        !text.contains(|c: char| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(
        text.contains(r"\x1b]0;owned\x07x\rfake\x1b[2A\nERROR forged k\x1b[1m=v"),
        "{text:?}"
    );
}

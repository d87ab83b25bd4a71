//! The gRPC API at the boundary a user touches: real server, real clients.

mod common;

use common::*;
use logtap_proto::example;
use logtap_proto::v1::LogRequest;
use prost::Message;
use std::time::Duration;
use tonic::{Code, Request};

/// One entry of each level, oldest first, timestamps 1..=6.
async fn push_each_level(server: &TestServer) {
    let mut client = server.client().await;
    let entries = ["trace", "debug", "info", "warn", "error", "fatal"]
        .iter()
        .enumerate()
        .map(|(i, level)| entry(level, &format!("{level} message"), i as i64 + 1))
        .collect();
    push(&mut client, vec![entries]).await;
}

fn levels(entries: &[logtap_proto::v1::LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.level.as_str()).collect()
}

fn cursors(entries: &[logtap_proto::v1::LogEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.cursor).collect()
}

fn level(name: &str) -> LogRequest {
    LogRequest {
        level: name.into(),
        ..LogRequest::default()
    }
}

#[tokio::test]
async fn pushed_entries_come_back_in_order_with_cursors_headers_and_trailers() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut labeled = entry("warn", "disk almost full", 1_000);
    labeled.labels.insert("host".into(), "a".into());
    let before_push = common::now_nanos();
    let reply = push(
        &mut client,
        vec![
            vec![
                entry("info", "started", 100),
                entry("", "no level given", 200),
            ],
            vec![labeled, entry("ERROR", "boom", 0)],
        ],
    )
    .await;
    assert_eq!((reply.stored, reply.last_cursor), (4, 4));

    let mut request = Request::new(LogRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "test-123".parse().expect("ascii"));
    let response = client.get_logs(request).await.expect("get_logs");
    assert_eq!(text(response.metadata(), "x-request-id"), "test-123");
    assert_eq!(number(response.metadata(), "logtap-total-count"), 4);
    let (entries, trailers) = drain(&mut response.into_inner()).await;

    assert_eq!(cursors(&entries), vec![1, 2, 3, 4]);
    assert_eq!(levels(&entries), vec!["info", "info", "warn", "error"]);
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec!["started", "no level given", "disk almost full", "boom"]
    );
    assert_eq!(entries[0].timestamp, 100);
    assert_eq!(entries[2].labels.get("host").map(String::as_str), Some("a"));
    assert!(
        entries[3].timestamp >= before_push,
        "a zero timestamp becomes the receive time"
    );

    assert_eq!(text(&trailers, "x-request-id"), "test-123");
    assert_eq!(number(&trailers, "logtap-sent"), 4);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 4);
    let crc = expected_crc(entries.iter().map(|e| (e.timestamp, e.message.as_str())));
    assert_eq!(text(&trailers, "logtap-crc32c"), crc);

    // Without a client id, the server makes one (a UUID) and uses it twice.
    let (_, headers, trailers) = get_all(&mut client, LogRequest::default()).await;
    let id = text(&headers, "x-request-id");
    assert_eq!(id.len(), 36);
    assert_eq!(text(&trailers, "x-request-id"), id);
}

#[tokio::test]
async fn a_level_filter_means_this_level_and_above_with_aliases() {
    let server = TestServer::start().await;
    push_each_level(&server).await;
    let mut client = server.client().await;
    for (name, expected) in [
        ("error", vec!["error", "fatal"]),
        ("ERR", vec!["error", "fatal"]),
        ("warning", vec!["warn", "error", "fatal"]),
        ("crit", vec!["fatal"]),
        ("panic", vec!["fatal"]),
        ("critical", vec!["fatal"]),
        ("", vec!["trace", "debug", "info", "warn", "error", "fatal"]),
    ] {
        let (entries, headers, trailers) = get_all(&mut client, level(name)).await;
        assert_eq!(levels(&entries), expected, "level {name:?}");
        assert_eq!(
            number(&headers, "logtap-total-count"),
            expected.len() as u64
        );
        assert_eq!(number(&trailers, "logtap-sent"), expected.len() as u64);
        // Everything up to the newest entry was considered, matching or not.
        assert_eq!(number(&trailers, "logtap-next-cursor"), 6, "level {name:?}");
    }
}

#[tokio::test]
async fn requests_that_cannot_make_sense_are_invalid_arguments() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut seed = server.seed_client().await;

    let error = client.get_logs(level("loud")).await.expect_err("bad level");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error
            .message()
            .contains("trace, debug, info, warn, error, fatal"),
        "{}",
        error.message()
    );
    assert!(error.metadata().get("x-request-id").is_some());
    let error = client
        .stream_logs(level("loud"))
        .await
        .expect_err("bad level");
    assert_eq!(error.code(), Code::InvalidArgument);
    let error = seed
        .get_logs(example::LogRequest {
            level: "loud".into(),
        })
        .await
        .expect_err("bad level");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("fatal"));

    let bad_regex = LogRequest {
        grep: "(unclosed".into(),
        regex: true,
        ..LogRequest::default()
    };
    let error = client.get_logs(bad_regex).await.expect_err("bad regex");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("bad pattern"),
        "{}",
        error.message()
    );

    for (since, until) in [(10, 10), (20, 10)] {
        let request = LogRequest {
            since,
            until,
            ..LogRequest::default()
        };
        let error = client.get_logs(request).await.expect_err("empty range");
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(error.message().contains("since"));
    }

    let reverse_follow = LogRequest {
        reverse: true,
        follow: true,
        ..LogRequest::default()
    };
    let error = client
        .get_logs(reverse_follow)
        .await
        .expect_err("reverse+follow");
    assert_eq!(error.code(), Code::InvalidArgument);
    let reverse_live = LogRequest {
        reverse: true,
        ..LogRequest::default()
    };
    let error = client
        .stream_logs(reverse_live)
        .await
        .expect_err("reverse live");
    assert_eq!(error.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn grep_regex_and_labels_filter_on_the_server() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let with_labels = |message: &str, host: &str, env: &str| {
        let mut e = entry("info", message, 1);
        e.labels.insert("host".into(), host.into());
        e.labels.insert("env".into(), env.into());
        e
    };
    push(
        &mut client,
        vec![vec![
            with_labels("connection timeout", "a", "prod"),
            with_labels("timed out waiting", "b", "prod"),
            with_labels("all good", "a", "dev"),
            with_labels("Timeout in caps", "a", "prod"),
        ]],
    )
    .await;
    let messages = |entries: Vec<logtap_proto::v1::LogEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.message).collect()
    };

    let (entries, headers, trailers) = get_all(
        &mut client,
        LogRequest {
            grep: "timeout".into(),
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(messages(entries), vec!["connection timeout"]);
    assert!(
        headers.get("logtap-total-count").is_none(),
        "no exact count with a text filter"
    );
    assert_eq!(number(&trailers, "logtap-next-cursor"), 4);

    let (entries, _, _) = get_all(
        &mut client,
        LogRequest {
            grep: "(?i)time(d)? ?out".into(),
            regex: true,
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(
        messages(entries),
        vec!["connection timeout", "timed out waiting", "Timeout in caps"]
    );

    let (entries, headers, _) = get_all(
        &mut client,
        LogRequest {
            labels: [("host".to_string(), "a".to_string())].into(),
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(
        messages(entries),
        vec!["connection timeout", "all good", "Timeout in caps"]
    );
    assert!(headers.get("logtap-total-count").is_none());

    let (entries, _, _) = get_all(
        &mut client,
        LogRequest {
            labels: [
                ("host".to_string(), "a".to_string()),
                ("env".to_string(), "prod".to_string()),
            ]
            .into(),
            grep: "caps".into(),
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(messages(entries), vec!["Timeout in caps"]);
}

#[tokio::test]
async fn a_logql_query_selects_on_the_server_over_grpc_and_http_and_combines_with_the_fields() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let labeled = |level: &str, message: &str, service: &str| {
        let mut e = entry(level, message, 1);
        e.labels.insert("service".into(), service.into());
        e
    };
    push(
        &mut client,
        vec![vec![
            labeled(
                "error",
                r#"{"status":503,"path":"/orders","took":"1.2s"}"#,
                "api",
            ),
            labeled(
                "info",
                r#"{"status":200,"path":"/orders","took":"20ms"}"#,
                "api",
            ),
            labeled(
                "error",
                r#"{"status":500,"path":"/health","took":"3s"}"#,
                "web",
            ),
            labeled("warn", "at=warn status=504 path=/pay", "api"),
        ]],
    )
    .await;
    let query = |query: &str| LogRequest {
        query: query.into(),
        ..LogRequest::default()
    };
    let messages = |entries: Vec<logtap_proto::v1::LogEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.message).collect()
    };
    let (entries, headers, _) = get_all(
        &mut client,
        query(r#"{service="api"} |= "orders" | json | status >= 500 and took > 1s"#),
    )
    .await;
    assert_eq!(
        messages(entries),
        [r#"{"status":503,"path":"/orders","took":"1.2s"}"#]
    );
    assert!(headers.get("logtap-total-count").is_none());
    let (entries, _, _) = get_all(
        &mut client,
        query(r#"{level=~"warn|error", service!="web"} | logfmt | status="504""#),
    )
    .await;
    assert_eq!(messages(entries), ["at=warn status=504 path=/pay"]);
    // The older fields combine with the query: both must hold.
    let (entries, _, _) = get_all(
        &mut client,
        LogRequest {
            level: "error".into(),
            ..query(r#"{} |~ "status.?.?50[0-9]""#)
        },
    )
    .await;
    assert_eq!(messages(entries).len(), 2);
    // HTTP takes the same query as `query=`.
    let (status, body) = server
        .http_get(
            "/api/v1/logs?query=%7Bservice%3D%22web%22%7D%20%7C%20json%20%7C%20path%3D%22%2Fhealth%22",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(body.contains("/health"), "{body}");
    // A query that does not parse names the position, on both.
    let status = client
        .get_logs(query(r#"{service="api"} | status >= fast"#))
        .await
        .expect_err("bad query");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("bad query at 28: expected a number"),
        "{}",
        status.message()
    );
    let (status, body) = server.http_get("/api/v1/logs?query=%7Bservice%3D").await;
    assert_eq!(status, 400);
    assert!(body.contains("bad query at 9"), "{body}");
}

#[tokio::test]
async fn line_format_label_format_keep_and_drop_rewrite_what_is_sent_not_what_is_stored() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut stored = entry("error", r#"{"status":503,"path":"/orders"}"#, 1);
    stored.labels.insert("service".into(), "api".into());
    stored.labels.insert("host".into(), "web-1".into());
    push(&mut client, vec![vec![stored.clone()]]).await;
    let query = |query: &str| LogRequest {
        query: query.into(),
        ..LogRequest::default()
    };
    let (entries, _, trailers) = get_all(
        &mut client,
        query(
            r#"{service="api"} | json | line_format "{{.status}} {{.path | ToUpper}}" | label_format node=host | drop path"#,
        ),
    )
    .await;
    assert_eq!(entries.len(), 1);
    let sent = &entries[0];
    assert_eq!(sent.message, "503 /ORDERS");
    assert_eq!((sent.level.as_str(), sent.cursor), ("error", 1));
    let labels: Vec<(&str, &str)> = sent
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    assert_eq!(
        labels,
        [("node", "web-1"), ("service", "api"), ("status", "503")]
    );
    assert!(trailers.get("logtap-next-cursor").is_some());
    // A filter after line_format sees the new line.
    let (entries, _, _) = get_all(
        &mut client,
        query(r#"{} | json | line_format "code {{.status}}" |= "code 503""#),
    )
    .await;
    assert_eq!(entries.len(), 1);
    // The store still holds the entry as pushed.
    let (entries, _, _) = get_all(&mut client, query("{}")).await;
    assert_eq!(entries[0].message, stored.message);
    assert_eq!(entries[0].labels, stored.labels);
    // HTTP sends the rewritten entry in the one JSON form.
    let (status, body) = server
        .http_get("/api/v1/logs?query=%7B%7D%20%7C%20keep%20host%20%7C%20line_format%20%22%7B%7B.host%7D%7D%22")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""message":"web-1","labels":{"host":"web-1"}"#),
        "{body}"
    );
    // A template that does not parse names where.
    let status = client
        .get_logs(query(r#"{} | line_format "{{ if .a }}""#))
        .await
        .expect_err("bad template");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("bad query at 18"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn query_metrics_streams_one_step_per_point_with_each_series() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    const S: i64 = 1_000_000_000;
    let at = |level: &str, message: &str, seconds: i64, service: &str| {
        let mut e = entry(level, message, seconds * S);
        e.labels.insert("service".into(), service.into());
        e
    };
    push(
        &mut client,
        vec![vec![
            at("error", "status=500", 1, "api"),
            at("info", "status=200", 2, "api"),
            at("error", "status=503", 3, "web"),
            at("error", "status=502", 11, "api"),
        ]],
    )
    .await;
    let query = |query: &str| logtap_proto::v1::MetricRequest {
        query: query.into(),
        start: 10 * S,
        end: 20 * S,
        step: 10 * S,
    };
    let steps = |query| async {
        let mut stream = server
            .client()
            .await
            .query_metrics(query)
            .await
            .expect("query_metrics")
            .into_inner();
        let mut steps = Vec::new();
        while let Some(step) = stream.message().await.expect("a step") {
            let mut samples: Vec<(String, f64)> = step
                .samples
                .into_iter()
                .map(|s| (format!("{:?}", s.labels), s.value))
                .collect();
            samples.sort_by(|a, b| a.0.cmp(&b.0));
            steps.push((step.timestamp / S, samples));
        }
        steps
    };
    assert_eq!(
        steps(query(r#"sum by (level) (count_over_time({}[10s]))"#)).await,
        [
            (
                10,
                vec![
                    (r#"{"level": "error"}"#.to_string(), 2.0),
                    (r#"{"level": "info"}"#.to_string(), 1.0)
                ]
            ),
            (20, vec![(r#"{"level": "error"}"#.to_string(), 1.0)]),
        ]
    );
    assert_eq!(
        steps(query(
            r#"sum(count_over_time({service="api"} | logfmt | status >= 500 [10s]))"#
        ))
        .await,
        [
            (10, vec![("{}".to_string(), 1.0)]),
            (20, vec![("{}".to_string(), 1.0)])
        ]
    );
    // Grafana's health check.
    assert_eq!(
        steps(query("vector(1)+vector(1)")).await,
        [
            (10, vec![("{}".to_string(), 2.0)]),
            (20, vec![("{}".to_string(), 2.0)])
        ]
    );
    for (bad, says) in [
        (query("{}"), "a log query selects entries"),
        (
            query("sum(count_over_time({}))"),
            "bad query at 22: expected a range",
        ),
        (
            logtap_proto::v1::MetricRequest {
                step: 1,
                ..query("vector(1)")
            },
            "at most 11000",
        ),
    ] {
        let status = client.query_metrics(bad).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(says), "{}", status.message());
    }
}

#[tokio::test]
async fn ignore_case_finds_grep_text_whatever_its_case() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    push(
        &mut client,
        vec![vec![
            entry("error", "ERROR disk FULL", 1),
            entry("info", "disk is full", 2),
            entry("warn", "Disk   Full again", 3),
            entry("info", "UNE ÉCOLE", 4),
        ]],
    )
    .await;
    let grep = |grep: &str, regex: bool, ignore_case: bool| LogRequest {
        grep: grep.into(),
        regex,
        ignore_case,
        ..LogRequest::default()
    };
    let messages = |entries: Vec<logtap_proto::v1::LogEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.message).collect()
    };

    let (entries, headers, trailers) = get_all(&mut client, grep("disk full", false, true)).await;
    assert_eq!(messages(entries), ["ERROR disk FULL"]);
    assert!(headers.get("logtap-total-count").is_none());
    assert_eq!(number(&trailers, "logtap-sent"), 1);
    // Case-sensitive unless asked.
    let (entries, _, _) = get_all(&mut client, grep("disk full", false, false)).await;
    assert!(entries.is_empty(), "{entries:?}");
    // Every character is lowercased, not only ASCII.
    let (entries, _, _) = get_all(&mut client, grep("école", false, true)).await;
    assert_eq!(messages(entries), ["UNE ÉCOLE"]);
    // A regular expression is compiled case-insensitive.
    let (entries, _, _) = get_all(&mut client, grep("disk\\s+full", true, true)).await;
    assert_eq!(messages(entries), ["ERROR disk FULL", "Disk   Full again"]);
    let (entries, _, _) = get_all(&mut client, grep("disk\\s+full", true, false)).await;
    assert!(entries.is_empty(), "{entries:?}");
}

#[tokio::test]
async fn limit_and_reverse() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let batch = (1..=10)
        .map(|i| {
            entry(
                if i % 2 == 0 { "error" } else { "info" },
                &format!("m{i}"),
                i,
            )
        })
        .collect();
    push(&mut client, vec![batch]).await;

    let (entries, headers, trailers) = get_all(
        &mut client,
        LogRequest {
            limit: 3,
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(cursors(&entries), vec![1, 2, 3]);
    assert_eq!(number(&headers, "logtap-total-count"), 3);
    assert_eq!(number(&trailers, "logtap-sent"), 3);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 3);

    let (entries, headers, trailers) = get_all(
        &mut client,
        LogRequest {
            reverse: true,
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(cursors(&entries), (1..=10).rev().collect::<Vec<_>>());
    assert_eq!(number(&headers, "logtap-total-count"), 10);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 10);
    let crc = expected_crc(entries.iter().map(|e| (e.timestamp, e.message.as_str())));
    assert_eq!(
        text(&trailers, "logtap-crc32c"),
        crc,
        "the CRC follows the order sent"
    );

    let (entries, headers, _) = get_all(
        &mut client,
        LogRequest {
            reverse: true,
            limit: 3,
            level: "error".into(),
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(cursors(&entries), vec![10, 8, 6]);
    assert_eq!(number(&headers, "logtap-total-count"), 3);
}

#[tokio::test]
async fn resuming_after_the_next_cursor_has_no_gap_and_no_duplicate() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let batch = (1..=20)
        .map(|i| {
            entry(
                if i % 3 == 0 { "error" } else { "info" },
                &format!("m{i}"),
                i,
            )
        })
        .collect();
    push(&mut client, vec![batch]).await;

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (entries, _, trailers) = get_all(
            &mut client,
            LogRequest {
                level: "error".into(),
                limit: 2,
                after_cursor: after,
                ..LogRequest::default()
            },
        )
        .await;
        let next = number(&trailers, "logtap-next-cursor");
        if entries.is_empty() {
            assert_eq!(next, 20, "an empty page still moves to the end");
            break;
        }
        seen.extend(cursors(&entries));
        after = Some(next);
    }
    assert_eq!(seen, vec![3, 6, 9, 12, 15, 18]);

    // A cursor beyond everything gives nothing and keeps the cursor.
    let (entries, headers, trailers) = get_all(
        &mut client,
        LogRequest {
            after_cursor: Some(50),
            ..LogRequest::default()
        },
    )
    .await;
    assert!(entries.is_empty());
    assert_eq!(number(&headers, "logtap-total-count"), 0);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 50);
}

#[tokio::test]
async fn headers_arrive_before_any_entry_exists() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    // A live tail on an empty store: the call returns with its headers while
    // there is nothing to send.
    let response = tokio::time::timeout(Duration::from_secs(3), client.stream_logs(level("")))
        .await
        .expect("headers without waiting for an entry")
        .expect("stream_logs");
    assert!(response.metadata().get("x-request-id").is_some());
    assert!(response.metadata().get("logtap-total-count").is_none());

    // The same for a follow whose filter matches nothing yet.
    let follow = LogRequest {
        follow: true,
        grep: "never".into(),
        ..LogRequest::default()
    };
    let response = tokio::time::timeout(Duration::from_secs(3), client.get_logs(follow))
        .await
        .expect("headers without waiting for an entry")
        .expect("get_logs");
    assert!(response.metadata().get("x-request-id").is_some());

    // And a history read of an empty store: count 0, then a clean end.
    let (entries, headers, trailers) = get_all(&mut client, level("")).await;
    assert!(entries.is_empty());
    assert_eq!(number(&headers, "logtap-total-count"), 0);
    assert_eq!(number(&trailers, "logtap-sent"), 0);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 0);
    assert_eq!(text(&trailers, "logtap-crc32c"), "00000000");
}

#[tokio::test]
async fn follow_hands_over_from_history_to_live_without_gap_or_duplicate() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let history = (1..=50)
        .map(|i| entry("info", &format!("h{i}"), i))
        .collect();
    push(&mut client, vec![history]).await;

    let follow = LogRequest {
        follow: true,
        ..LogRequest::default()
    };
    let response = client.get_logs(follow).await.expect("get_logs");
    assert!(response.metadata().get("logtap-total-count").is_none());
    let mut stream = response.into_inner();
    // Push while the history is being read: the hand-over happens mid-push.
    let mut pusher = server.client().await;
    let pushing = tokio::spawn(async move {
        for batch in 0..10 {
            let entries = (0..5)
                .map(|i| entry("info", &format!("l{batch}-{i}"), 100 + batch * 5 + i))
                .collect();
            push(&mut pusher, vec![entries]).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 100 {
        seen.push(next(&mut stream).await.cursor);
    }
    pushing.await.expect("pusher");
    assert_eq!(seen, (1..=100).collect::<Vec<_>>());
    // Nothing more arrives: no duplicate after the last.
    let extra = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(extra.is_err(), "no entry beyond the 100 pushed: {extra:?}");
}

#[tokio::test]
async fn stream_logs_is_a_live_tail_from_now_a_cursor_or_a_time() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    push(
        &mut client,
        vec![vec![
            entry("info", "old1", 10),
            entry("info", "old2", 20),
            entry("info", "old3", 30),
        ]],
    )
    .await;

    let mut from_now = client
        .stream_logs(level(""))
        .await
        .expect("stream")
        .into_inner();
    let mut after_one = client
        .stream_logs(LogRequest {
            after_cursor: Some(1),
            ..LogRequest::default()
        })
        .await
        .expect("stream")
        .into_inner();
    let mut since_20 = client
        .stream_logs(LogRequest {
            since: 20,
            ..LogRequest::default()
        })
        .await
        .expect("stream")
        .into_inner();
    let mut errors_only = client
        .stream_logs(level("error"))
        .await
        .expect("stream")
        .into_inner();

    push(
        &mut client,
        vec![vec![entry("info", "new4", 40), entry("error", "new5", 50)]],
    )
    .await;

    let new4 = next(&mut from_now).await;
    assert_eq!((new4.cursor, new4.message.as_str()), (4, "new4"));
    assert_eq!(next(&mut from_now).await.cursor, 5);

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut after_one).await.cursor);
    }
    assert_eq!(got, vec![2, 3, 4, 5]);

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut since_20).await.message);
    }
    assert_eq!(got, vec!["old2", "old3", "new4", "new5"]);

    assert_eq!(next(&mut errors_only).await.message, "new5");
}

#[tokio::test]
async fn the_seed_client_works_with_headers_and_trailers() {
    let server = TestServer::start().await;
    push_each_level(&server).await;
    let mut seed = server.seed_client().await;

    let mut request = Request::new(example::LogRequest {
        level: "error".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "seed-1".parse().expect("ascii"));
    let response = seed.get_logs(request).await.expect("seed get_logs");
    assert_eq!(text(response.metadata(), "x-request-id"), "seed-1");
    assert_eq!(number(response.metadata(), "logtap-total-count"), 2);
    let (entries, trailers) = drain(&mut response.into_inner()).await;
    let got: Vec<(&str, i64)> = entries
        .iter()
        .map(|e| (e.message.as_str(), e.timestamp))
        .collect();
    assert_eq!(got, vec![("error message", 5), ("fatal message", 6)]);
    assert_eq!(text(&trailers, "x-request-id"), "seed-1");
    assert_eq!(number(&trailers, "logtap-sent"), 2);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 6);
    let crc = expected_crc(entries.iter().map(|e| (e.timestamp, e.message.as_str())));
    assert_eq!(text(&trailers, "logtap-crc32c"), crc);

    let live = seed
        .stream_logs(example::LogRequest { level: "".into() })
        .await
        .expect("seed stream_logs");
    assert!(live.metadata().get("x-request-id").is_some());
    let mut live = live.into_inner();
    let mut client = server.client().await;
    push(&mut client, vec![vec![entry("info", "live one", 77)]]).await;
    let got = next(&mut live).await;
    assert_eq!((got.message.as_str(), got.timestamp), ("live one", 77));
}

#[tokio::test]
async fn unknown_methods_are_unimplemented_and_unknown_pages_404() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for path in ["/made.up.Service/Nope", "/logtap.v1.LogService/Nope"] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let status = grpc
            .unary(
                Request::new(()),
                tonic::codegen::http::uri::PathAndQuery::from_static(path),
                codec,
            )
            .await
            .expect_err("unknown method");
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }
    let (status, _) = server.http_get("/no/such/page").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_bad_batch_stores_nothing_of_itself_and_says_what_was_stored() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = try_push(
        &mut client,
        vec![
            vec![entry("info", "kept", 1)],
            vec![entry("info", "dropped", 2), entry("loud", "bad", 3)],
        ],
    )
    .await
    .expect_err("bad level");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("valid levels are"),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .contains("1 entries were stored before this batch"),
        "{}",
        status.message()
    );
    assert_eq!(text(status.metadata(), "logtap-stored"), "1");
    assert_eq!(text(status.metadata(), "logtap-last-cursor"), "1");
    let (entries, _, _) = get_all(&mut client, level("")).await;
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, vec!["kept"]);
    assert_eq!(server.metric("logtap_entries_stored_total").await, 1);
}

#[tokio::test]
async fn health_reflection_healthz_and_metrics_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "logtap.v1.LogService", "example.LogService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(reply.status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let reply = next(&mut replies).await;
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a service list: {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "logtap.v1.LogService",
        "example.LogService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }

    let (status, body) = server.http_get("/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = server.http_get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "logtap_active_streams",
        "logtap_entries_stored_total",
        "logtap_entries_sent_total",
        "logtap_streams_cancelled_total",
    ] {
        assert!(
            metric_value(&body, name).is_some(),
            "{name} missing from:\n{body}"
        );
    }
}

#[tokio::test]
async fn grpc_web_over_http1_streams_entries_and_trailers_on_the_same_port() {
    let server = TestServer::start().await;
    push_each_level(&server).await;
    let message = level("error").encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let mut request = format!(
        "POST /logtap.v1.LogService/GetLogs HTTP/1.1\r\nHost: {}\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nx-request-id: web-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        frame.len()
    )
    .into_bytes();
    request.extend_from_slice(&frame);
    let (status, headers, body) = http1(server.addr, &request).await;
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(header("content-type").starts_with("application/grpc-web"));
    assert_eq!(header("x-request-id"), "web-1");

    let mut rest = &body[..];
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = &rest[5..5 + len];
        if flag & 0x80 == 0 {
            let entry = logtap_proto::v1::LogEntry::decode(payload).expect("entry");
            messages.push(entry.message);
        } else {
            trailers = String::from_utf8_lossy(payload).to_lowercase();
        }
        rest = &rest[5 + len..];
    }
    assert_eq!(messages, vec!["error message", "fatal message"]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    assert!(trailers.contains("logtap-sent:2"), "{trailers}");
    assert!(trailers.contains("logtap-next-cursor:6"), "{trailers}");
}

/// h2 keeps a connection's stream table at the most streams it has had open
/// at once, so a connection that had a burst of streams and then none for
/// a while is asked to go away (GOAWAY), which frees the table. The
/// client's next call opens a new connection and works; a connection that
/// never had a burst is left alone.
#[tokio::test]
async fn a_connection_idle_after_a_burst_of_streams_is_asked_to_go_away_and_the_client_reconnects()
{
    use logtap_server::testing::{IDLE_FOR, LARGE};
    let server = TestServer::start().await;
    let mut burst = server.client().await;
    let mut calm = server.client().await;
    calm.get_logs(LogRequest::default())
        .await
        .expect("get_logs");
    let mut open = Vec::new();
    for _ in 0..LARGE {
        open.push(burst.stream_logs(level("")).await.expect("stream_logs"));
    }
    server
        .wait_for_metric("logtap_active_streams", |n| n == LARGE as u64)
        .await;
    // The scrape's own connection counts too. Waited for, not read once:
    // the previous scrape's connection may still be closing on the server.
    server
        .wait_for_metric("logtap_open_connections", |n| n == 3)
        .await;
    drop(open);
    server
        .wait_for_metric("logtap_open_connections", |n| n == 2)
        .await;
    tokio::time::sleep(IDLE_FOR * 2).await;
    // The calm connection is still there (a lingering scrape can only
    // make the gauge higher, never lower, so this waits it out).
    server
        .wait_for_metric("logtap_open_connections", |n| n == 2)
        .await;
    calm.get_logs(LogRequest::default())
        .await
        .expect("the calm connection still works");
    burst
        .get_logs(LogRequest::default())
        .await
        .expect("a call after the GOAWAY, on a new connection");
    server
        .wait_for_metric("logtap_open_connections", |n| n == 3)
        .await;
}

/// `logtap_open_connections` counts connections from accept to close. The
/// scrape's own HTTP/1.1 connection is open while the gauge is read, so it
/// counts itself: one more than the clients.
#[tokio::test]
async fn open_connections_are_counted_until_they_close() {
    let server = TestServer::start().await;
    server
        .wait_for_metric("logtap_open_connections", |n| n == 1)
        .await;
    let mut first = server.client().await;
    let mut second = server.client().await;
    // Channels connect lazily: a call each makes the connections real.
    for client in [&mut first, &mut second] {
        client
            .get_logs(LogRequest::default())
            .await
            .expect("get_logs");
    }
    server
        .wait_for_metric("logtap_open_connections", |n| n == 3)
        .await;
    drop(first);
    server
        .wait_for_metric("logtap_open_connections", |n| n == 2)
        .await;
    drop(second);
    server
        .wait_for_metric("logtap_open_connections", |n| n == 1)
        .await;
}

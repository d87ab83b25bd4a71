//! Grafana's Loki data source against a real server on 127.0.0.1:0: the
//! exact requests it makes (pkg/tsdb/loki and
//! public/app/plugins/datasource/loki in Grafana's source) for save and
//! test, an Explore logs query, the volume histogram, the label browser
//! and live tail (a real WebSocket client), each answer checked against the
//! shapes Grafana parses; bad inputs each get their status; tokens are
//! asked for as on every reading route, Bearer or Basic.

mod common;

use base64::Engine;
use common::{header, http_request, now_nanos, TestServer, DEADLINE};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const S: i64 = 1_000_000_000;

/// Percent-encodes a query parameter's value.
fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// GETs `path` with `headers`: the status, the headers, and the body.
async fn get(
    server: &TestServer,
    path: &str,
    headers: &[&str],
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = http_request(server.addr, "GET", path, headers, b"").await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// GETs `path` and reads a JSON answer, which must be 200.
async fn get_json(server: &TestServer, path: &str, headers: &[&str]) -> Value {
    let (status, response_headers, body) = get(server, path, headers).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(header(&response_headers, "content-type").starts_with("application/json"));
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
}

/// Pushes `(service, level, line, time)` entries through Loki's push API.
async fn push(server: &TestServer, entries: &[(&str, &str, &str, i64)]) {
    let streams: Vec<Value> = entries
        .iter()
        .map(|(service, level, line, time)| {
            json!({
                "stream": {"service": service, "host": "web-1", "level": level},
                "values": [[time.to_string(), line]],
            })
        })
        .collect();
    let body = json!({ "streams": streams }).to_string();
    let (status, _, text) = http_request(
        server.addr,
        "POST",
        "/loki/api/v1/push",
        &["Content-Type: application/json"],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&text));
}

/// A server holding ten minutes of entries ending a minute ago, and the
/// time range Grafana would ask for around them.
async fn with_entries() -> (TestServer, i64, i64) {
    let server = TestServer::start().await;
    let base = now_nanos() - 11 * 60 * S;
    let entries = [
        ("api", "info", "GET /users 200 12ms", base),
        (
            "api",
            "error",
            "GET /orders 500 timeout after 30s",
            base + 60 * S,
        ),
        ("web", "info", "rendered home", base + 120 * S),
        ("api", "warn", "GET /users 200 slow 900ms", base + 180 * S),
        (
            "api",
            "error",
            "POST /pay 502 upstream timeout",
            base + 240 * S,
        ),
        ("web", "debug", "cache hit", base + 300 * S),
        ("api", "info", "GET /health 200 1ms", base + 600 * S),
    ];
    push(&server, &entries).await;
    (server, base - 60 * S, base + 660 * S)
}

/// The `stats.summary` Grafana reads, checked for its shape.
fn check_stats(data: &Value, returned: u64) {
    let summary = &data["stats"]["summary"];
    for field in [
        "bytesProcessedPerSecond",
        "linesProcessedPerSecond",
        "totalBytesProcessed",
        "totalLinesProcessed",
        "queueTime",
        "subqueries",
        "totalEntriesReturned",
    ] {
        assert!(summary[field].is_u64(), "{field} in {summary}");
    }
    assert!(summary["execTime"].is_number());
    assert_eq!(summary["totalEntriesReturned"], returned);
}

#[tokio::test]
async fn save_and_test_and_buildinfo_answer_as_grafana_expects() {
    let server = TestServer::start().await;
    // pkg/tsdb/loki/healthcheck.go: an instant `vector(1)+vector(1)` at
    // 4 s, backward; it wants one frame, one value, 2.
    let path = format!(
        "/loki/api/v1/query?direction=backward&query={}&time=4000000000",
        encode("vector(1)+vector(1)")
    );
    let answer = get_json(&server, &path, &[]).await;
    assert_eq!(answer["status"], "success");
    let data = &answer["data"];
    assert_eq!(data["resultType"], "vector");
    let result = data["result"].as_array().expect("result");
    assert_eq!(result.len(), 1, "{data}");
    assert_eq!(result[0]["metric"], json!({}));
    assert!(result[0]["value"][0].is_number());
    assert_eq!(result[0]["value"][1], "2");
    check_stats(data, 0);
    let build = get_json(&server, "/loki/api/v1/status/buildinfo", &[]).await;
    assert!(build["version"]
        .as_str()
        .is_some_and(|v| v.starts_with('3')));
    let (status, _, body) = get(&server, "/ready", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ready"));
}

#[tokio::test]
async fn an_explore_logs_query_answers_streams_newest_first_within_the_limit() {
    let (server, start, end) = with_entries().await;
    // pkg/tsdb/loki/api.go makeDataRequest: direction, limit, start and end
    // in ns, step in ms.
    let query = r#"{service="api"} |= "timeout""#;
    let path = format!(
        "/loki/api/v1/query_range?direction=backward&end={end}&limit=1000&query={}&start={start}&step=2000ms",
        encode(query)
    );
    let answer = get_json(&server, &path, &[]).await;
    let data = &answer["data"];
    assert_eq!(data["resultType"], "streams");
    let streams = data["result"].as_array().expect("streams");
    let mut lines = Vec::new();
    for stream in streams {
        let labels = stream["stream"].as_object().expect("labels");
        assert_eq!(labels["service"], "api");
        assert_eq!(labels["host"], "web-1");
        assert_eq!(labels["level"], "error");
        for value in stream["values"].as_array().expect("values") {
            let time: i64 = value[0].as_str().expect("ns as a string").parse().unwrap();
            lines.push((time, value[1].as_str().expect("line").to_string()));
        }
    }
    assert_eq!(
        lines
            .iter()
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>(),
        [
            "POST /pay 502 upstream timeout",
            "GET /orders 500 timeout after 30s"
        ]
    );
    assert!(lines[0].0 > lines[1].0, "newest first");
    check_stats(data, 2);

    // The limit takes the newest; forward takes the oldest.
    let all = encode(r#"{service="api"}"#);
    let newest = get_json(
        &server,
        &format!("/loki/api/v1/query_range?direction=backward&limit=1&query={all}&start={start}&end={end}"),
        &[],
    )
    .await;
    assert_eq!(
        newest["data"]["result"][0]["values"][0][1],
        "GET /health 200 1ms"
    );
    let oldest = get_json(
        &server,
        &format!("/loki/api/v1/query_range?direction=forward&limit=1&query={all}&start={start}&end={end}"),
        &[],
    )
    .await;
    assert_eq!(
        oldest["data"]["result"][0]["values"][0][1],
        "GET /users 200 12ms"
    );

    // A POST form, RFC 3339 times and a parser with a label filter.
    let form = format!(
        "query={}&limit=10&direction=forward&start={}&end={}",
        encode(r#"{service="api"} | pattern "<method> <path> <status> <_>" | status >= 500"#),
        start / S,
        end / S + 1
    );
    let (status, _, body) = http_request(
        server.addr,
        "POST",
        "/loki/api/v1/query_range",
        &["Content-Type: application/x-www-form-urlencoded"],
        form.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let posted: Value = serde_json::from_slice(&body).unwrap();
    let count: usize = posted["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, 2, "{posted}");
}

#[tokio::test]
async fn the_volume_histogram_and_metric_queries_answer_matrices() {
    let (server, start, end) = with_entries().await;
    // public/app/plugins/datasource/loki: the logs volume supplementary
    // query, `$__auto` resolved, with its tag.
    let query =
        r#"sum by (level, detected_level) (count_over_time({service=~".+"} | drop __error__[1m]))"#;
    let path = format!(
        "/loki/api/v1/query_range?direction=backward&end={end}&query={}&start={start}&step=60000ms",
        encode(query)
    );
    let answer = get_json(&server, &path, &["X-Query-Tags: Source=logvolhist"]).await;
    let data = &answer["data"];
    assert_eq!(data["resultType"], "matrix");
    let mut by_level = std::collections::BTreeMap::new();
    for series in data["result"].as_array().unwrap() {
        let level = series["metric"]["level"]
            .as_str()
            .expect("level")
            .to_string();
        let mut total = 0.0;
        for point in series["values"].as_array().unwrap() {
            assert!(point[0].is_number(), "time in seconds");
            total += point[1].as_str().unwrap().parse::<f64>().unwrap();
        }
        by_level.insert(level, total);
    }
    let expected: std::collections::BTreeMap<String, f64> =
        [("debug", 1.0), ("error", 2.0), ("info", 3.0), ("warn", 1.0)]
            .into_iter()
            .map(|(level, n)| (level.to_string(), n))
            .collect();
    assert_eq!(by_level, expected);
    check_stats(data, 0);

    // The level-only form is counted from summaries; same answer.
    let summaries = format!(
        "/loki/api/v1/query_range?end={end}&query={}&start={start}&step=60s",
        encode("sum by (level) (count_over_time({level=~\".+\"}[1m]))")
    );
    let counted = get_json(&server, &summaries, &[]).await;
    assert_eq!(counted["data"]["result"].as_array().unwrap().len(), 4);

    // An instant metric query: a vector.
    let instant = format!(
        "/loki/api/v1/query?query={}&time={end}",
        encode(r#"sum by (service) (count_over_time({host="web-1"}[1h]))"#)
    );
    let vector = get_json(&server, &instant, &[]).await;
    assert_eq!(vector["data"]["resultType"], "vector");
    let mut counts: Vec<(String, String)> = vector["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["service"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [("api".into(), "5".into()), ("web".into(), "2".into())]
    );
}

#[tokio::test]
async fn the_label_browser_lists_names_values_series_and_stats() {
    let (server, start, end) = with_entries().await;
    let range = format!("start={start}&end={end}");
    let names = get_json(&server, &format!("/loki/api/v1/labels?{range}"), &[]).await;
    assert_eq!(names["status"], "success");
    assert_eq!(names["data"], json!(["host", "level", "service"]));
    let values = get_json(
        &server,
        &format!("/loki/api/v1/label/service/values?{range}"),
        &[],
    )
    .await;
    assert_eq!(values["data"], json!(["api", "web"]));
    let errors = get_json(
        &server,
        &format!(
            "/loki/api/v1/label/service/values?{range}&query={}",
            encode(r#"{level="debug"}"#)
        ),
        &[],
    )
    .await;
    assert_eq!(errors["data"], json!(["web"]));
    let series = get_json(
        &server,
        &format!(
            "/loki/api/v1/series?{range}&match[]={}&match[]={}",
            encode(r#"{service="web", level="info"}"#),
            encode(r#"{level="warn"}"#)
        ),
        &[],
    )
    .await;
    assert_eq!(
        series["data"],
        json!([
            {"host": "web-1", "level": "info", "service": "web"},
            {"host": "web-1", "level": "warn", "service": "api"},
        ])
    );
    let stats = get_json(
        &server,
        &format!(
            "/loki/api/v1/index/stats?{range}&query={}",
            encode(r#"{service="api"}"#)
        ),
        &[],
    )
    .await;
    assert_eq!(stats["streams"], 3, "{stats}");
    assert_eq!(stats["entries"], 5);
    assert!(stats["bytes"].as_u64().unwrap() > 50);
    assert!(stats["chunks"].is_u64());
}

#[tokio::test]
async fn live_tail_sends_the_history_then_new_entries_over_a_websocket() {
    let (server, start, _) = with_entries().await;
    // Grafana first asks whether v2alpha exists (400 means yes): 404.
    let (status, _, body) = get(&server, "/loki/api/v2alpha/tail", &[]).await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    let url = format!(
        "ws://{}/loki/api/v1/tail?query={}&limit=2&start={start}",
        server.addr,
        encode(r#"{service="api"}"#)
    );
    let (mut socket, response) =
        tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("upgrade within the deadline")
            .expect("upgrade");
    assert_eq!(response.status(), 101);
    let mut next_frame = async || -> Value {
        loop {
            let message = tokio::time::timeout(DEADLINE, socket.next())
                .await
                .expect("a frame within the deadline")
                .expect("open")
                .expect("a message");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).expect("JSON frame");
            }
        }
    };
    let lines = |frame: &Value| -> Vec<String> {
        frame["streams"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().clone())
            .map(|v| v[1].as_str().unwrap().to_string())
            .collect()
    };
    let history = next_frame().await;
    assert_eq!(history["dropped_entries"], json!([]));
    let mut got = lines(&history);
    got.sort();
    assert_eq!(
        got,
        ["GET /health 200 1ms", "POST /pay 502 upstream timeout"]
    );
    let now = now_nanos();
    push(
        &server,
        &[
            ("web", "info", "not tailed", now),
            ("api", "error", "live one", now + 1),
        ],
    )
    .await;
    let live = next_frame().await;
    assert_eq!(lines(&live), ["live one"]);
    assert_eq!(live["streams"][0]["stream"]["level"], "error");
    assert_eq!(live["dropped_entries"], json!([]));
    socket.send(Message::Close(None)).await.expect("close");
    drop(socket);
    // The stream's slot is given back once the socket is gone.
    server
        .wait_for_metric("logtap_active_streams", |n| n == 0)
        .await;
}

#[tokio::test]
async fn bad_inputs_get_loki_statuses_and_plain_text_reasons() {
    let (server, start, end) = with_entries().await;
    let range = format!("start={start}&end={end}");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!(
                "/loki/api/v1/query_range?{range}&query={}",
                encode(r#"{service="api" |= "x""#)
            ),
            400,
            "expected",
        ),
        (
            format!("/loki/api/v1/query_range?{range}"),
            400,
            "bad query",
        ),
        (
            format!(
                "/loki/api/v1/query_range?start=yesterday&query={}",
                encode("{}")
            ),
            400,
            "bad start",
        ),
        (
            format!(
                "/loki/api/v1/query_range?{range}&limit=0&query={}",
                encode("{}")
            ),
            400,
            "bad limit",
        ),
        (
            format!(
                "/loki/api/v1/query_range?{range}&limit=many&query={}",
                encode("{}")
            ),
            400,
            "bad limit",
        ),
        (
            format!(
                "/loki/api/v1/query_range?{range}&limit=5001&query={}",
                encode("{}")
            ),
            400,
            "5000",
        ),
        (
            format!(
                "/loki/api/v1/query_range?{range}&step=0&query={}",
                encode("count_over_time({}[1m])")
            ),
            400,
            "bad step",
        ),
        (
            format!(
                "/loki/api/v1/query_range?start=0&end={end}&step=1ms&query={}",
                encode("count_over_time({}[1m])")
            ),
            400,
            "points",
        ),
        (
            format!(
                "/loki/api/v1/query_range?start={end}&end={start}&query={}",
                encode("{}")
            ),
            400,
            "bad end",
        ),
        (
            format!(
                "/loki/api/v1/query_range?{range}&direction=sideways&query={}",
                encode("{}")
            ),
            400,
            "bad direction",
        ),
        (
            format!("/loki/api/v1/query?query={}", encode(r#"{service="api"}"#)),
            400,
            "instant",
        ),
        (
            "/loki/api/v1/labels?start=soon".to_string(),
            400,
            "bad start",
        ),
        (
            format!("/loki/api/v1/series?match[]={}", encode("{service=")),
            400,
            "expected",
        ),
        (
            "/loki/api/v1/detected_fields?query=%7B%7D".into(),
            404,
            "404 page not found",
        ),
        ("/loki/api/v1/patterns".into(), 404, "404 page not found"),
        (
            "/loki/api/v1/detected_labels".into(),
            404,
            "404 page not found",
        ),
    ];
    for (path, want, says) in cases {
        let (status, headers, body) = get(&server, &path, &[]).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body:?} should say {says:?}");
        assert!(
            header(&headers, "content-type").starts_with("text/plain"),
            "{path}"
        );
    }
    // The tail's parameters are checked before the upgrade: a WebSocket
    // client sees the status and the reason.
    for (query, says) in [
        (
            format!("query={}&delay_for=9", encode("{}")),
            "bad delay_for",
        ),
        (format!("query={}", encode("{service=")), "expected"),
        ("limit=10".to_string(), "bad query"),
    ] {
        let url = format!("ws://{}/loki/api/v1/tail?{query}", server.addr);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{query}");
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned();
                assert!(body.contains(says), "{query}: {body}");
            }
            other => panic!(
                "{query}: {:?}",
                other.map(|(_, response)| response.status())
            ),
        }
    }
    // The parse error names the position and what was expected.
    let (_, _, body) = get(
        &server,
        &format!(
            "/loki/api/v1/query_range?{range}&query={}",
            encode(r#"{service="api"} | json |"#)
        ),
        &[],
    )
    .await;
    assert!(body.contains("at ") && body.contains("expected"), "{body}");
    // Nothing was lost: every entry is still there.
    let all = get_json(
        &server,
        &format!(
            "/loki/api/v1/query_range?{range}&query={}",
            encode(r#"{host="web-1"}"#)
        ),
        &[],
    )
    .await;
    check_stats(&all["data"], 7);
}

#[tokio::test]
async fn a_listing_over_the_scan_limit_is_429_and_says_why() {
    let server = TestServer::start_with(|config| config.max_query_scan_bytes = 64).await;
    let now = now_nanos();
    let entries: Vec<(&str, &str, &str, i64)> = (0..20)
        .map(|i| ("api", "info", "a line long enough to count", now - 1000 + i))
        .collect();
    push(&server, &entries).await;
    let (status, headers, body) = get(&server, "/loki/api/v1/labels", &[]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("scanned"), "{body}");
    assert_eq!(header(&headers, "retry-after"), "1");
}

#[tokio::test]
async fn tokens_are_asked_for_bearer_or_basic_with_read_scope() {
    let tokens = tempfile::tempdir().expect("token dir");
    let file = tokens.path().join("tokens.txt");
    std::fs::write(
        &file,
        "reader-token-0123456789 read\nwriter-token-0123456789 write\n",
    )
    .unwrap();
    let server = TestServer::start_with(|config| config.auth_token_file = Some(file)).await;
    let path = format!("/loki/api/v1/query?query={}", encode("vector(1)+vector(1)"));
    let (status, _, _) = get(&server, &path, &[]).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(
        &server,
        &path,
        &["Authorization: Bearer writer-token-0123456789"],
    )
    .await;
    assert_eq!(status, 403);
    let answer = get_json(
        &server,
        &path,
        &["Authorization: Bearer reader-token-0123456789"],
    )
    .await;
    assert_eq!(answer["data"]["result"][0]["value"][1], "2");
    // Grafana's basic auth: any user, the token as the password.
    let basic = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode("grafana:reader-token-0123456789")
    );
    let answer = get_json(&server, "/loki/api/v1/labels", &[basic.as_str()]).await;
    assert_eq!(answer["status"], "success");
    // Loki's own 404 for what Grafana probes, even with tokens on.
    let (status, _, _) = get(&server, "/loki/api/v1/detected_fields", &[basic.as_str()]).await;
    assert_eq!(status, 404);
}

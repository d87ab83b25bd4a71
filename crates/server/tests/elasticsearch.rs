//! Elasticsearch's bulk API against a real server on 127.0.0.1:0: bulk
//! bodies (plain and gzip) read back through GetLogs with their message,
//! level, time and labels, and answered item by item in the shape shippers
//! check; bad inputs each get their answer (the whole request, or their own
//! item) and store nothing but the good items; a full disk is 429 with
//! `Retry-After`; the probes shippers make at startup are answered, with
//! `X-Elastic-Product` on every answer; tokens come as Bearer, Basic or
//! ApiKey, and a read token cannot push.

mod common;

use base64::Engine;
use common::{gzip, header, http_request, sorted_labels, stored, stored_messages, TestServer};
use logtap_proto::v1::LogRequest;
use serde_json::Value;

/// NDJSON, as the shippers label a bulk body.
const NDJSON: &str = "Content-Type: application/x-ndjson";

/// Sends `method path` with `headers` (`Name: value` lines) and `body`: the
/// status, headers and body as text.
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = http_request(server.addr, method, path, headers, body).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// POSTs a bulk body to `path`: the status, headers and the answer as JSON.
async fn bulk(
    server: &TestServer,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Value) {
    let (status, headers, text) = send(server, "POST", path, headers, body).await;
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, headers, json)
}

/// Each item of an answer as (action, status, error type or "").
fn outcomes(answer: &Value) -> Vec<(String, u64, String)> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let (action, body) = item.as_object().unwrap().iter().next().unwrap();
            (
                action.clone(),
                body["status"].as_u64().unwrap(),
                body["error"]["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn documents_are_stored_and_read_back_with_level_time_and_labels() {
    let server = TestServer::start().await;
    let body = br#"{"index":{}}
{"@timestamp":"2024-05-01T12:00:00.123Z","message":"disk full","log":{"level":"error"},"host":{"name":"web-1"},"tags":["a","b"]}
{"create":{"_index":"audit","_id":"given-1"}}
{"@timestamp":1714564800000,"message":"user logged in","level":"warning","user":{"id":7}}
{"index":{}}
{"note":"no message, no time"}
"#;
    let before = common::now_nanos();
    let (status, headers, text) = send(&server, "POST", "/logs/_bulk", &[NDJSON], body).await;
    assert_eq!(status, 200, "{text}");
    // Elasticsearch's order: Fluent Bit reads a long answer's start as text.
    assert!(text.starts_with(r#"{"took":"#), "{text}");
    assert!(text.contains(r#","errors":false,"items":[{"#), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(header(&headers, "x-elastic-product"), "Elasticsearch");
    assert!(header(&headers, "content-type").starts_with("application/json"));
    assert_eq!(answer["errors"], false);
    assert!(answer["took"].is_u64());
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let first = &items[0]["index"];
    assert_eq!(first["status"], 201);
    assert_eq!(first["result"], "created");
    assert_eq!(first["_index"], "logs");
    assert_eq!(items[1]["create"]["_index"], "audit");
    assert_eq!(items[1]["create"]["_id"], "given-1");

    let entries = stored(&server).await;
    assert_eq!(entries.len(), 3);
    // Without an `_id`, the id is the entry's cursor.
    assert_eq!(first["_id"], entries[0].cursor.to_string());
    assert_eq!(items[2]["index"]["_id"], entries[2].cursor.to_string());
    assert_eq!(entries[0].message, "disk full");
    assert_eq!(entries[0].level, "error");
    assert_eq!(entries[0].timestamp, 1_714_564_800_123_000_000);
    assert_eq!(
        sorted_labels(&entries[0]),
        [
            ("host.name", "web-1"),
            ("index", "logs"),
            ("tags", r#"["a","b"]"#)
        ]
    );
    assert_eq!(entries[1].message, "user logged in");
    assert_eq!(entries[1].level, "warn");
    assert_eq!(entries[1].timestamp, 1_714_564_800_000_000_000);
    assert_eq!(
        sorted_labels(&entries[1]),
        [("index", "audit"), ("user.id", "7")]
    );
    assert_eq!(entries[2].message, r#"{"note":"no message, no time"}"#);
    assert_eq!(entries[2].level, "info");
    assert!(entries[2].timestamp >= before, "the time of receipt");
    assert_eq!(
        server
            .metric("logtap_ingest_entries_total{protocol=\"elasticsearch\"}")
            .await,
        3
    );
}

#[tokio::test]
async fn gzip_put_and_the_bare_route_are_taken() {
    let server = TestServer::start().await;
    let body = b"{\"index\":{\"_index\":\"zipped\"}}\n{\"message\":\"one\"}\n";
    let (status, _, answer) = bulk(
        &server,
        "/_bulk",
        &[
            "Content-Type: application/vnd.elasticsearch+x-ndjson; compatible-with=9",
            "Content-Encoding: gzip",
        ],
        &gzip(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, text) = send(
        &server,
        "PUT",
        "/put-index/_bulk",
        &["Content-Type: application/json"],
        b"{\"create\":{}}\n{\"message\":\"two\"}\n",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let entries = stored(&server).await;
    let got: Vec<_> = entries
        .iter()
        .map(|e| (e.message.as_str(), sorted_labels(e)))
        .collect();
    assert_eq!(
        got,
        [
            ("one", vec![("index", "zipped")]),
            ("two", vec![("index", "put-index")])
        ]
    );
}

/// A bad input: its name, its headers, its body, the HTTP status, and what
/// the answer says: for a request refused whole, a part of its reason;
/// for one answered item by item, each item's (status, error type).
type Case<'a> = (&'a str, Vec<&'a str>, Vec<u8>, u16, Expect);

/// What a bad input's answer holds.
enum Expect {
    /// Refused whole: the error's type and a part of its reason.
    Whole(&'static str, &'static str),
    /// Answered item by item: each item's status and error type ("" for a
    /// stored one), and a part of the first error's reason.
    Items(Vec<(u64, &'static str)>, &'static str),
}

#[tokio::test]
async fn bad_inputs_get_their_answer_and_only_good_items_are_stored() {
    let limit = 1 << 20;
    let server = TestServer::start_with(|config| config.max_push_body_bytes = limit).await;
    let good = "{\"index\":{}}\n{\"message\":\"good\"}\n";
    let with_good = |bad: &str| format!("{good}{bad}").into_bytes();
    let bomb = gzip(&vec![b' '; limit as usize + 1]);
    let too_big = format!(
        "{good}{{\"index\":{{}}}}\n{{\"message\":\"{}\"}}\n",
        "x".repeat(limit as usize)
    );
    let many_fields: Vec<String> = (0..70_000).map(|n| format!("\"f{n}\":1")).collect();
    let too_many_labels = with_good(&format!(
        "{{\"index\":{{}}}}\n{{{}}}\n",
        many_fields.join(",")
    ));
    let huge_label = with_good(&format!(
        "{{\"index\":{{}}}}\n{{\"k\":\"{}\"}}\n",
        "v".repeat(70_000)
    ));
    let parsing = "document_parsing_exception";
    let cases: Vec<Case> = vec![
        (
            "malformed action JSON",
            vec![NDJSON],
            with_good("{\"index\":\n{}\n"),
            400,
            Expect::Whole("illegal_argument_exception", "line [3]"),
        ),
        (
            "an action line of two actions",
            vec![NDJSON],
            with_good("{\"index\":{},\"create\":{}}\n{}\n"),
            400,
            Expect::Whole("illegal_argument_exception", "exactly one action"),
        ),
        (
            "an unknown action",
            vec![NDJSON],
            with_good("{\"upsert\":{}}\n{}\n"),
            400,
            Expect::Whole("illegal_argument_exception", "found [upsert]"),
        ),
        (
            "invalid UTF-8 in an action line",
            vec![NDJSON],
            with_good("{\"index\":{\"_index\":\"\u{1}\"}}\n{}\n")
                .into_iter()
                .map(|byte| if byte == 1 { 0xff } else { byte })
                .collect(),
            400,
            Expect::Whole("illegal_argument_exception", "line [3]"),
        ),
        (
            "an empty body",
            vec![NDJSON],
            b"\n".to_vec(),
            400,
            Expect::Whole("illegal_argument_exception", "holds no action"),
        ),
        (
            "a document that is not JSON",
            vec![NDJSON],
            with_good("{\"index\":{}}\nplain text\n"),
            200,
            Expect::Items(
                vec![(201, ""), (400, parsing)],
                "line 4 is not a JSON object",
            ),
        ),
        (
            "a document that is not an object",
            vec![NDJSON],
            with_good("{\"index\":{}}\n[1,2]\n"),
            200,
            Expect::Items(vec![(201, ""), (400, parsing)], "it is [1,2]"),
        ),
        (
            "invalid UTF-8 in a document",
            vec![NDJSON],
            with_good("{\"index\":{}}\n{\"message\":\"caf\u{1}\"}\n")
                .into_iter()
                .map(|byte| if byte == 1 { 0xff } else { byte })
                .collect(),
            200,
            Expect::Items(vec![(201, ""), (400, parsing)], "line 4"),
        ),
        (
            "a missing document line",
            vec![NDJSON],
            with_good("{\"create\":{}}\n"),
            200,
            Expect::Items(
                vec![(201, ""), (400, "action_request_validation_exception")],
                "no document line",
            ),
        ),
        (
            "update and delete",
            vec![NDJSON],
            with_good("{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{}}\n{\"delete\":{\"_id\":\"1\"}}\n"),
            200,
            Expect::Items(
                vec![
                    (201, ""),
                    (400, "illegal_argument_exception"),
                    (400, "illegal_argument_exception"),
                ],
                "not supported",
            ),
        ),
        (
            "a timestamp that is no time",
            vec![NDJSON],
            with_good("{\"index\":{}}\n{\"@timestamp\":\"yesterday\"}\n"),
            200,
            Expect::Items(vec![(201, ""), (400, parsing)], "[@timestamp]"),
        ),
        (
            "a timestamp past 2262",
            vec![NDJSON],
            with_good("{\"index\":{}}\n{\"@timestamp\":\"3000-01-01T00:00:00Z\"}\n"),
            200,
            Expect::Items(vec![(201, ""), (400, parsing)], "[@timestamp]"),
        ),
        (
            "too many labels",
            vec![NDJSON],
            too_many_labels,
            200,
            Expect::Items(vec![(201, ""), (400, parsing)], "labels"),
        ),
        (
            "a label over 64 KiB",
            vec![NDJSON],
            huge_label,
            200,
            Expect::Items(vec![(201, ""), (400, parsing)], "over 64 KiB"),
        ),
        (
            "bad gzip",
            vec![NDJSON, "Content-Encoding: gzip"],
            b"not gzip".to_vec(),
            400,
            Expect::Whole("parse_exception", "gzip"),
        ),
        (
            "a gzip bomb",
            vec![NDJSON, "Content-Encoding: gzip"],
            bomb,
            413,
            Expect::Whole("content_too_long_exception", "decompresses to more than"),
        ),
        (
            "a body over the limit",
            vec![NDJSON],
            too_big.into_bytes(),
            413,
            Expect::Whole("content_too_long_exception", "over the limit"),
        ),
        (
            "a form body",
            vec!["Content-Type: application/x-www-form-urlencoded"],
            good.as_bytes().to_vec(),
            415,
            Expect::Whole("content_type_header_exception", "application/x-ndjson"),
        ),
        (
            "brotli",
            vec![NDJSON, "Content-Encoding: br"],
            good.as_bytes().to_vec(),
            415,
            Expect::Whole("content_type_header_exception", "br-encoded"),
        ),
    ];
    let mut stored_goods = 0;
    for (name, headers, body, wanted, expect) in cases {
        let (status, reply_headers, answer) = bulk(&server, "/_bulk", &headers, &body).await;
        println!("| {name} | {status} | {answer} |");
        assert_eq!(status, wanted, "{name}: {answer}");
        assert_eq!(
            header(&reply_headers, "x-elastic-product"),
            "Elasticsearch",
            "{name}"
        );
        match expect {
            Expect::Whole(kind, says) => {
                assert_eq!(answer["status"], wanted, "{name}: {answer}");
                assert_eq!(answer["error"]["type"], kind, "{name}: {answer}");
                let reason = answer["error"]["reason"].as_str().unwrap();
                assert!(reason.contains(says), "{name}: {reason}");
            }
            Expect::Items(items, says) => {
                stored_goods += 1;
                assert_eq!(answer["errors"], true, "{name}: {answer}");
                let got: Vec<(u64, String)> = outcomes(&answer)
                    .into_iter()
                    .map(|(_, status, kind)| (status, kind))
                    .collect();
                let items: Vec<(u64, String)> = items
                    .into_iter()
                    .map(|(status, kind)| (status, kind.to_string()))
                    .collect();
                assert_eq!(got, items, "{name}: {answer}");
                let reason = answer["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find_map(|item| {
                        let body = item.as_object()?.values().next()?;
                        body["error"]["reason"].as_str()
                    })
                    .unwrap();
                assert!(reason.contains(says), "{name}: {reason}");
            }
        }
    }
    let entries = stored(&server).await;
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec!["good"; stored_goods],
        "only the good items are stored"
    );
    assert!(
        server
            .metric("logtap_ingest_refusals_total{protocol=\"elasticsearch\",reason=\"bad_input\"}")
            .await
            >= 12
    );
    let (status, _) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_disk_is_429_with_retry_after_and_the_request_is_stored_once_space_returns() {
    use logtap_store::fault::{Fault, FaultyFs};
    let fs = std::sync::Arc::new(FaultyFs::new());
    let server = TestServer::start_with(|config| config.store.fs = fs.clone()).await;
    let body = b"{\"index\":{\"_index\":\"w\"}}\n{\"message\":\"retried\"}\n";
    fs.fail_writes_after_bytes(0, Fault::NoSpace);
    let (status, headers, answer) = bulk(&server, "/_bulk", &[NDJSON], body).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["type"], "es_rejected_execution_exception");
    assert!(
        answer["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{answer}"
    );
    assert_eq!(header(&headers, "retry-after"), "1");
    assert!(stored(&server).await.is_empty());
    fs.clear();
    let (status, _, answer) = bulk(&server, "/_bulk", &[NDJSON], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored_messages(&server).await, ["retried"]);
}

#[tokio::test]
async fn the_probes_shippers_make_are_answered() {
    let server = TestServer::start().await;
    // The root: JSON with a version for shippers (no Accept, or JSON)...
    for accept in [
        vec![],
        vec!["Accept: application/json"],
        vec!["Accept: application/vnd.elasticsearch+json; compatible-with=9"],
    ] {
        let (status, headers, text) = send(&server, "GET", "/", &accept, b"").await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(header(&headers, "x-elastic-product"), "Elasticsearch");
        let root: Value = serde_json::from_str(&text).unwrap();
        let version = root["version"]["number"].as_str().unwrap();
        assert!(version.starts_with("9."), "{version}");
        assert_eq!(root["version"]["build_flavor"], "default");
        assert_eq!(root["tagline"], "You Know, for Search");
    }
    let (status, headers, text) = send(&server, "HEAD", "/", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-elastic-product"), "Elasticsearch");
    assert!(text.is_empty());
    // ...and the viewer for a browser.
    let (status, headers, text) = send(
        &server,
        "GET",
        "/",
        &["Accept: text/html,application/xhtml+xml,*/*;q=0.8"],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert!(text.contains("assets/app.js"), "{text}");

    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let (status, _, text) = send(&server, "GET", "/_license?human=false", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(json(&text)["license"]["status"], "active");
    assert_eq!(json(&text)["license"]["mode"], "basic");
    let (status, _, text) = send(&server, "GET", "/_xpack", &[], b"").await;
    assert_eq!(
        (status, json(&text)["license"]["type"].clone()),
        (200, "basic".into())
    );
    let (status, _, text) = send(&server, "GET", "/_cluster/health", &[], b"").await;
    assert_eq!(
        (status, json(&text)["status"].clone()),
        (200, "green".into())
    );
    for path in [
        "/_index_template/filebeat-9.1.0",
        "/_template/logstash",
        "/_ilm/policy/filebeat",
        "/_ingest/pipeline/p",
        "/_data_stream/logs-generic-default",
    ] {
        let (status, headers, text) = send(&server, "GET", path, &[], b"").await;
        assert_eq!(status, 404, "{path}: {text}");
        assert_eq!(json(&text)["error"]["type"], "resource_not_found_exception");
        assert_eq!(header(&headers, "x-elastic-product"), "Elasticsearch");
        let (status, _, _) = send(&server, "HEAD", path, &[], b"").await;
        assert_eq!(status, 404, "{path}");
        let (status, _, text) = send(
            &server,
            "PUT",
            path,
            &["Content-Type: application/json"],
            br#"{"index_patterns":["x-*"]}"#,
        )
        .await;
        assert_eq!(status, 200, "{path}: {text}");
        assert_eq!(json(&text)["acknowledged"], true);
    }
    let (status, _, text) = send(&server, "GET", "/_cat/indices?format=json", &[], b"").await;
    assert_eq!((status, text.as_str()), (200, "[]"));
    // Nothing of the probes is stored.
    assert!(stored(&server).await.is_empty());
}

#[tokio::test]
async fn tokens_come_as_bearer_basic_or_api_key_and_a_read_token_cannot_push() {
    const READ: &str = "read-token-0123456789abcdef";
    const WRITE: &str = "write-token-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.txt");
    std::fs::write(&path, format!("{READ} read\n{WRITE} write\n")).unwrap();
    let server = TestServer::start_with(|config| config.auth_token_file = Some(path)).await;
    let base64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let body = |n: usize| format!("{{\"index\":{{}}}}\n{{\"message\":\"pushed {n}\"}}\n");
    let bearer = format!("Authorization: Bearer {WRITE}");
    let basic = format!(
        "Authorization: Basic {}",
        base64(&format!("logtap:{WRITE}"))
    );
    let raw_key = format!("Authorization: ApiKey {WRITE}");
    let id_key = format!(
        "Authorization: ApiKey {}",
        base64(&format!("some-id:{WRITE}"))
    );
    for (n, auth) in [bearer, basic, raw_key, id_key].iter().enumerate() {
        let (status, _, text) = send(
            &server,
            "POST",
            "/_bulk",
            &[NDJSON, auth],
            body(n).as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{auth}: {text}");
    }
    let read_basic = format!("Authorization: Basic {}", base64(&format!("u:{READ}")));
    for auth in [format!("Authorization: Bearer {READ}"), read_basic] {
        let (status, _, text) = send(
            &server,
            "POST",
            "/logs/_bulk",
            &[NDJSON, &auth],
            body(9).as_bytes(),
        )
        .await;
        assert_eq!(status, 403, "{auth}: {text}");
        assert!(text.contains("scope write"), "{text}");
        // The probes want the write token too.
        let (status, _, _) = send(&server, "GET", "/_license", &[&auth], b"").await;
        assert_eq!(status, 403, "{auth}");
    }
    for auth in [
        "Authorization: Bearer nope".to_string(),
        format!("Authorization: ApiKey {}", base64("id:nope")),
        "Authorization: Basic !!".to_string(),
    ] {
        let (status, _, text) = send(
            &server,
            "POST",
            "/_bulk",
            &[NDJSON, &auth],
            body(9).as_bytes(),
        )
        .await;
        assert_eq!(status, 401, "{auth}: {text}");
    }
    let (status, _, _) = send(&server, "POST", "/_bulk", &[NDJSON], body(9).as_bytes()).await;
    assert_eq!(status, 401);
    // The root tells nothing and stays open, as the viewer's page does.
    let (status, _, text) = send(&server, "GET", "/", &[], b"").await;
    assert_eq!(status, 200, "{text}");

    let mut client = server.client().await;
    let mut request = tonic::Request::new(LogRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {READ}").parse().unwrap());
    let response = client.get_logs(request).await.expect("get_logs");
    let (entries, _) = common::drain(&mut response.into_inner()).await;
    let messages: Vec<String> = entries.into_iter().map(|e| e.message).collect();
    assert_eq!(messages, ["pushed 0", "pushed 1", "pushed 2", "pushed 3"]);
}

//! Queries that cost far more than they send: costly regular expressions
//! over big messages must not hold anyone else's requests, headers go out
//! before the scan, one query's scan is bounded, and the odd ends of a read
//! (a cursor past the newest, a file cut under the server) answer what the
//! contract says.

mod common;

use common::{entry, get_all, number, push, TestServer, DEADLINE};
use logtap_proto::v1::log_service_client::LogServiceClient;
use logtap_proto::v1::{LogEntry, LogRequest, MetricRequest};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

/// A pattern the regex crate's lazy DFA cannot keep up with (it must track
/// where each vowel of the last ~80 characters was), so it costs
/// milliseconds per 60 KB message.
const COSTLY: &str = "[a-z0-9 ]*[aeiou][a-z0-9 ]{40}[aeiou][a-z0-9 ]{40}[0-9]{3}";

/// How long a request that should not wait for anyone may take: generous,
/// for a loaded 2-core machine, and far below what a costly scan held
/// requests for (15.9 s in release; far longer in a debug build).
const PROMPT: Duration = Duration::from_secs(2);

/// A 60 KB line of lowercase words and spaces, varied by `seed`, with no
/// three digits in a row: `COSTLY` never matches it, so a search reads
/// every byte.
fn costly_line(seed: u64) -> String {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut line = String::with_capacity(60_000);
    while line.len() < 60_000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pick = (state >> 33) % 28;
        line.push(match pick {
            26 => ' ',
            27 => '7',
            letter => char::from(b'a' + letter as u8),
        });
    }
    line
}

/// Stores 1,000 costly lines, in batches that fit one Push message.
async fn store_costly_lines(client: &mut LogServiceClient<Channel>) {
    for batch in 0..20u64 {
        let entries: Vec<LogEntry> = (0..50)
            .map(|i| {
                let n = batch * 50 + i;
                entry("info", &costly_line(n), n as i64 + 1)
            })
            .collect();
        push(client, vec![entries]).await;
    }
}

fn costly_search() -> LogRequest {
    LogRequest {
        grep: COSTLY.into(),
        regex: true,
        ..LogRequest::default()
    }
}

/// A server whose costly matching has one thread, like a 2-core default.
async fn server() -> TestServer {
    TestServer::start_with(|config| config.match_threads = 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_searches_leave_healthz_and_other_streams_prompt() {
    let server = server().await;
    let mut client = server.client().await;
    store_costly_lines(&mut client).await;
    // Four costly searches, each on its own connection, spread over the
    // connection threads; each reads its stream as a client would.
    let mut searches = Vec::new();
    for _ in 0..4 {
        let mut search = server.client().await;
        searches.push(tokio::spawn(async move {
            let response = search.get_logs(costly_search()).await?;
            let mut stream = response.into_inner();
            while stream.message().await?.is_some() {}
            Ok::<_, tonic::Status>(())
        }));
    }
    // Let them get going.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 0..3 {
        let (status, body) = tokio::time::timeout(PROMPT, server.http_get("/healthz"))
            .await
            .unwrap_or_else(|_| panic!("/healthz answered within {PROMPT:?} (round {round})"));
        assert_eq!((status, body.trim()), (200, "ok"));
        // A plain read on a connection of its own: headers, entries and
        // trailers, all within the deadline.
        let mut plain = server.client().await;
        let request = LogRequest {
            limit: 3,
            ..LogRequest::default()
        };
        let (entries, headers, trailers) =
            tokio::time::timeout(PROMPT, get_all(&mut plain, request))
                .await
                .unwrap_or_else(|_| panic!("a plain GetLogs ended within {PROMPT:?}"));
        assert_eq!(entries.len(), 3);
        assert_eq!(number(&headers, "logtap-total-count"), 3);
        assert_eq!(number(&trailers, "logtap-sent"), 3);
    }
    for search in &searches {
        assert!(
            !search.is_finished(),
            "the costly searches were still running"
        );
    }
    for search in searches {
        search.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_search_sends_its_headers_before_its_first_entry() {
    let server = server().await;
    let mut client = server.client().await;
    store_costly_lines(&mut client).await;
    // The only match is the newest entry, behind 60 MB of costly lines.
    let matching = format!("{} 123", "ab ".repeat(40).replace("ab", "a"));
    push(&mut client, vec![vec![entry("info", &matching, 5_000)]]).await;
    let response = tokio::time::timeout(PROMPT, client.get_logs(costly_search()))
        .await
        .unwrap_or_else(|_| panic!("the headers came within {PROMPT:?}"))
        .expect("get_logs");
    assert!(
        response.metadata().get("x-request-id").is_some(),
        "{:?}",
        response.metadata()
    );
    // No count is promised for a text filter: it would need the scan.
    assert!(response.metadata().get("logtap-total-count").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_limit_ends_a_query_with_a_clear_error() {
    let server = TestServer::start_with(|config| {
        config.match_threads = 1;
        config.max_query_scan_bytes = 1 << 20;
    })
    .await;
    let mut client = server.client().await;
    let big = "x".repeat(64 << 10);
    for _ in 0..4 {
        let batch = (0..16).map(|i| entry("info", &big, i + 1)).collect();
        push(&mut client, vec![batch]).await;
    }
    // A plain word (matched inline) and a regular expression (matched on
    // the matching threads) meet the same limit.
    for regex in [false, true] {
        let request = LogRequest {
            grep: "needle".into(),
            regex,
            ..LogRequest::default()
        };
        let mut stream = client
            .get_logs(request)
            .await
            .expect("get_logs")
            .into_inner();
        let status = match tokio::time::timeout(DEADLINE, stream.message())
            .await
            .expect("the stream ends within the deadline")
        {
            Ok(Some(entry)) => panic!("nothing matches, yet {entry:?} came"),
            Ok(None) => panic!("the stream ended with OK after 4 MiB scanned"),
            Err(status) => status,
        };
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let message = status.message();
        assert!(message.contains("max_query_scan_bytes"), "{message}");
        assert!(message.contains("narrow it"), "{message}");
        assert!(message.contains("over the limit of 1048576"), "{message}");
    }
    assert_eq!(
        server
            .metric("logtap_limit_rejections_total{limit=\"query_scan_bytes\"}")
            .await,
        2
    );
    // A level that rules the entries out costs no scanning: it is
    // answered from block summaries, whatever the limit.
    let request = LogRequest {
        grep: "needle".into(),
        level: "error".into(),
        ..LogRequest::default()
    };
    let (entries, _, trailers) = get_all(&mut client, request).await;
    assert!(entries.is_empty());
    assert_eq!(number(&trailers, "logtap-next-cursor"), 64);
}

#[tokio::test]
async fn a_reverse_read_after_the_largest_cursor_resumes_at_the_snapshot() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let batch = (0..5).map(|i| entry("info", "hello", i + 1)).collect();
    push(&mut client, vec![batch]).await;
    for after_cursor in [u64::MAX, 1_000] {
        let request = LogRequest {
            reverse: true,
            after_cursor: Some(after_cursor),
            ..LogRequest::default()
        };
        let (entries, _, trailers) = get_all(&mut client, request).await;
        assert!(entries.is_empty());
        assert_eq!(
            number(&trailers, "logtap-next-cursor"),
            5,
            "after {after_cursor}"
        );
    }
    // Resuming forward from there misses nothing that comes next.
    push(&mut client, vec![vec![entry("info", "next", 6)]]).await;
    let request = LogRequest {
        after_cursor: Some(5),
        ..LogRequest::default()
    };
    let (entries, _, _) = get_all(&mut client, request).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].message, "next");
}

#[tokio::test]
async fn a_segment_cut_under_the_running_server_answers_data_loss() {
    let server = TestServer::start_with(|config| {
        config.store.segment_bytes = 64 << 10;
        config.store.block_bytes = 4 << 10;
    })
    .await;
    let mut client = server.client().await;
    let line = "y".repeat(1000);
    for batch in 0..8 {
        let entries = (0..50)
            .map(|i| entry("info", &line, batch * 50 + i + 1))
            .collect();
        push(&mut client, vec![entries]).await;
    }
    // The oldest segment is sealed: cut it in half, as a careless
    // operator or a failing disk might.
    let mut segments: Vec<_> = std::fs::read_dir(&server.dir)
        .expect("data directory")
        .map(|file| file.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() > 2, "{segments:?}");
    let oldest = std::fs::OpenOptions::new()
        .write(true)
        .open(&segments[0])
        .expect("open the oldest segment");
    let len = oldest.metadata().expect("metadata").len();
    oldest.set_len(len / 2).expect("cut the segment");
    drop(oldest);

    let mut stream = client
        .get_logs(LogRequest::default())
        .await
        .expect("get_logs")
        .into_inner();
    let mut sent = 0;
    let status = loop {
        match tokio::time::timeout(DEADLINE, stream.message())
            .await
            .expect("the stream ends within the deadline")
        {
            Ok(Some(_)) => sent += 1,
            Ok(None) => panic!("the stream ended with OK over a cut segment"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    let message = status.message();
    assert!(message.contains("entries were lost"), "{message}");
    assert!(!message.contains(".seg"), "{message}");
    assert!(
        !message.contains(&*server.dir.to_string_lossy()),
        "{message}"
    );
    assert!(sent < 400, "{sent}");
    // The server goes on serving.
    let (status, _) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_query_stops_reading_when_its_caller_goes_away() {
    let server = server().await;
    let mut client = server.client().await;
    store_costly_lines(&mut client).await;
    // One point over every stored line, through a filter that costs
    // milliseconds a line and that no summary can answer: seconds of work.
    let request = MetricRequest {
        query: format!("count_over_time({{}} |~ \"{COSTLY}\" [1h])"),
        start: 2_000,
        end: 2_000,
        step: 1,
    };
    let call = tokio::spawn(async move { client.query_metrics(request).await });
    server
        .wait_for_metric("logtap_metric_queries_running", |n| n == 1)
        .await;
    // The client goes away: its call is dropped, and h2 resets the stream.
    call.abort();
    server
        .wait_for_metric("logtap_metric_queries_running", |n| n == 0)
        .await;
    assert_eq!(
        server.metric("logtap_metric_queries_abandoned_total").await,
        1,
        "the evaluation ended by seeing its caller leave, not by finishing"
    );
}

//! Push under a flood of small requests: a client that sends one-entry
//! PushRequests as fast as it can, each in its own HTTP/2 DATA frame, must
//! be read as fast as it sends. h2 closes a connection (GOAWAY
//! ENHANCE_YOUR_CALM "too_many_data_frames") when too many small frames sit
//! unread, so a Push that read one request per append + fsync was cut.

mod common;

use common::*;
use futures::StreamExt;
use logtap_proto::v1::{LogEntry, LogRequest, PushRequest};
use std::time::{Duration, Instant};
use tonic::Code;

/// Enough one-entry frames that, left unread, they overrun h2's small-frame
/// budget even with the server's larger connection window.
const FLOOD: usize = 30_000;

fn one(message: String) -> PushRequest {
    PushRequest {
        entries: vec![entry("", &message, 1)],
    }
}

fn messages(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.message.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_one_entry_pushes_on_one_call_is_stored_whole_and_in_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // Yielding before each request makes tonic's encoder flush every
    // message on its own: one small DATA frame per request, as grpcio does.
    let requests = tokio_stream::iter(0..FLOOD).then(|i| async move {
        tokio::task::yield_now().await;
        one(i.to_string())
    });
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(60), client.push(requests))
        .await
        .expect("push within a minute")
        .expect("push accepted whole")
        .into_inner();
    let took = started.elapsed();
    assert_eq!(reply.stored, FLOOD as u64);
    assert_eq!(reply.last_cursor, FLOOD as u64);

    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(entries.len(), FLOOD);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.message, i.to_string(), "entry {i} in push order");
        assert_eq!(entry.cursor, i as u64 + 1);
    }
    assert_eq!(
        server.metric("logtap_entries_stored_total").await,
        FLOOD as u64
    );
    eprintln!("{FLOOD} one-entry requests stored in {took:?}");
}

/// Requests that arrive together are stored together, but each is still
/// all or nothing: a bad one stores nothing of itself, everything before it
/// is stored, and the error says how much.
#[tokio::test]
async fn requests_merged_into_one_append_stay_all_or_nothing_each() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut requests: Vec<PushRequest> = (0..500).map(|i| one(format!("a{i}"))).collect();
    requests.push(PushRequest {
        entries: vec![entry("info", "dropped", 1), entry("loud", "bad", 1)],
    });
    requests.extend((0..100).map(|i| one(format!("never{i}"))));
    // All at once: they arrive together and are ready together.
    let status = client
        .push(tokio_stream::iter(requests))
        .await
        .expect_err("a bad level");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("500 entries were stored before this batch"),
        "{}",
        status.message()
    );
    assert_eq!(number(status.metadata(), "logtap-stored"), 500);
    assert_eq!(number(status.metadata(), "logtap-last-cursor"), 500);

    // A label the store cannot hold (over 64 KiB) refuses its own request
    // only, not the requests merged before it.
    let mut too_large = entry("info", "too large", 1);
    too_large.labels.insert("big".into(), "v".repeat(70 << 10));
    let mut requests: Vec<PushRequest> = (0..300).map(|i| one(format!("b{i}"))).collect();
    requests.push(PushRequest {
        entries: vec![entry("info", "dropped too", 1), too_large],
    });
    requests.push(one("never".into()));
    let status = client
        .push(tokio_stream::iter(requests))
        .await
        .expect_err("a label over 64 KiB");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(number(status.metadata(), "logtap-stored"), 300);
    assert_eq!(number(status.metadata(), "logtap-last-cursor"), 800);

    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    let expected: Vec<String> = (0..500)
        .map(|i| format!("a{i}"))
        .chain((0..300).map(|i| format!("b{i}")))
        .collect();
    assert_eq!(messages(&entries), expected);
}

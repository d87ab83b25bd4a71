//! A full disk, on every machine: the store's files go through a
//! fault-injecting filesystem (`logtap_store::fault`), so the disk fills
//! when the test says, without a mount or root. Pushes are refused with
//! RESOURCE_EXHAUSTED (HTTP 507) saying why, nothing refused is served,
//! reads go on, and pushes work again once space returns.
//! (`crates/logtap/tests/faults.rs` does the same on real tmpfs and ext4
//! mounts, where the machine allows them.)

mod common;

use common::{entry, get_all, http1, push, try_push, TestServer};
use logtap_proto::v1::LogRequest;
use logtap_store::fault::{Fault, FaultyFs};
use std::sync::Arc;
use tonic::Code;

#[tokio::test]
async fn a_full_disk_refuses_pushes_serves_what_was_acknowledged_and_recovers_when_space_returns() {
    let fs = Arc::new(FaultyFs::new());
    let server = TestServer::start_with(|config| config.store.fs = fs.clone()).await;
    let mut client = server.client().await;
    let before: Vec<_> = (0..10)
        .map(|n| entry("info", &format!("before {n}"), 1 + n))
        .collect();
    assert_eq!(push(&mut client, vec![before]).await.stored, 10);

    // The next write finds 20 bytes of room, then none.
    fs.fail_writes_after_bytes(20, Fault::NoSpace);
    let refused = vec![(0..5)
        .map(|n| entry("error", &format!("lost {n}"), 100 + n))
        .collect()];
    let status = try_push(&mut client, refused)
        .await
        .expect_err("a full disk refuses the push");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("No space left"),
        "the message says why: {status:?}"
    );
    assert!(fs.faults_fired() >= 1);
    // Still full: refused the same way, not poisoned into INTERNAL.
    let again = try_push(&mut client, vec![vec![entry("info", "again", 200)]])
        .await
        .expect_err("still full");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
    // The HTTP push is refused the same way, as 507.
    let body = "{\"level\":\"info\",\"msg\":\"over http\"}\n";
    let request = format!(
        "POST /api/v1/push HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (code, _, text) = http1(server.addr, request.as_bytes()).await;
    assert_eq!(code, 507, "{}", String::from_utf8_lossy(&text));
    assert!(
        server
            .metric("logtap_limit_rejections_total{limit=\"disk_full\"}")
            .await
            >= 3
    );

    // Reads go on and serve exactly what was acknowledged.
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    let messages: Vec<_> = entries.iter().map(|e| e.message.as_str()).collect();
    let expected: Vec<_> = (0..10).map(|n| format!("before {n}")).collect();
    assert_eq!(messages, expected);

    // Space returns: pushes work again, and cursors go on from the last
    // acknowledged one.
    fs.clear();
    let after = push(&mut client, vec![vec![entry("warn", "after", 300)]]).await;
    assert_eq!(after.stored, 1);
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(entries.len(), 11);
    assert_eq!(entries[10].message, "after");
    assert_eq!(entries[10].cursor, entries[9].cursor + 1);
}

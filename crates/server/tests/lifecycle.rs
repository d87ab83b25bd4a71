//! Streams that end in other ways: client cancellation, server shutdown,
//! restart, idle clients, the stream limit.

mod common;

use common::*;
use logtap_proto::v1::LogRequest;
use std::time::Duration;
use tonic::Code;

#[tokio::test]
async fn cancelled_streams_stop_and_are_counted() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    push(&mut client, vec![vec![entry("info", "one", 1)]]).await;

    let mut streams = Vec::new();
    for i in 0..200 {
        // Half live tails waiting for entries, half follows that sent one.
        let request = LogRequest {
            follow: i % 2 == 0,
            ..LogRequest::default()
        };
        let response = if i % 2 == 0 {
            client.get_logs(request).await
        } else {
            client.stream_logs(request).await
        };
        streams.push(response.expect("open").into_inner());
    }
    server
        .wait_for_metric("logtap_active_streams", |n| n == 200)
        .await;
    drop(streams);
    server
        .wait_for_metric("logtap_active_streams", |n| n == 0)
        .await;
    let cancelled = server.metric("logtap_streams_cancelled_total").await;
    assert!(cancelled >= 200, "cancelled {cancelled}");
    // Streams that end by themselves are not counted as cancelled.
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        server.metric("logtap_streams_cancelled_total").await,
        cancelled
    );
    assert!(server.metric("logtap_entries_sent_total").await >= 101);
}

#[tokio::test]
async fn shutdown_ends_live_streams_with_ok_and_trailers() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let mut live = client
        .stream_logs(LogRequest::default())
        .await
        .expect("stream")
        .into_inner();
    let mut follow = client
        .get_logs(LogRequest {
            follow: true,
            ..LogRequest::default()
        })
        .await
        .expect("follow")
        .into_inner();
    push(
        &mut client,
        vec![vec![entry("info", "a", 1), entry("warn", "b", 2)]],
    )
    .await;
    assert_eq!(next(&mut live).await.message, "a");
    assert_eq!(next(&mut live).await.message, "b");

    let shutting_down = tokio::spawn(async move {
        server.shutdown().await;
        server
    });
    let (rest, trailers) = drain(&mut live).await;
    assert!(rest.is_empty());
    assert_eq!(number(&trailers, "logtap-sent"), 2);
    assert_eq!(number(&trailers, "logtap-next-cursor"), 2);
    assert_eq!(
        text(&trailers, "logtap-crc32c"),
        expected_crc([(1, "a"), (2, "b")])
    );
    assert!(trailers.get("x-request-id").is_some());

    let (entries, trailers) = drain(&mut follow).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(number(&trailers, "logtap-sent"), 2);
    let _server = shutting_down.await.expect("shutdown");
}

#[tokio::test]
async fn a_restart_serves_every_acknowledged_entry_with_the_same_cursor() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = TestServer::start_in(dir.path(), |_| {}).await;
    let mut client = server.client().await;
    let mut acknowledged = Vec::new();
    for batch in 0..5 {
        let entries = (0..4)
            .map(|i| entry("info", &format!("b{batch}-{i}"), batch * 10 + i + 1))
            .collect();
        let reply = push(&mut client, vec![entries]).await;
        acknowledged.push(reply.last_cursor);
    }
    assert_eq!(acknowledged, vec![4, 8, 12, 16, 20]);
    let (before, _, _) = get_all(&mut client, LogRequest::default()).await;
    drop(client);
    server.shutdown().await;

    let mut server = TestServer::start_in(dir.path(), |_| {}).await;
    let mut client = server.client().await;
    let (after, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(after, before);
    // New entries continue the sequence.
    let reply = push(&mut client, vec![vec![entry("info", "after restart", 99)]]).await;
    assert_eq!(reply.last_cursor, 21);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_accepts_nothing_is_reset_after_the_idle_timeout() {
    let server = TestServer::start_with(|config| {
        config.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = server.client().await;
    // About 1 MiB of entries: far more than a 64 KiB window.
    let response = server.stalled_get_logs(4).await;
    // A live tail with nothing to send is waiting for entries, not for the
    // client: it must survive the idle timeout.
    let mut quiet = client
        .stream_logs(LogRequest::default())
        .await
        .expect("stream")
        .into_inner();
    server
        .wait_for_metric("logtap_active_streams", |n| n == 2)
        .await;
    // The stalled stream is reset; the quiet one is not.
    server
        .wait_for_metric("logtap_streams_cancelled_total", |n| n >= 1)
        .await;
    server
        .wait_for_metric("logtap_active_streams", |n| n == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.metric("logtap_active_streams").await, 1);
    push(&mut client, vec![vec![entry("info", "still here", 1)]]).await;
    assert_eq!(next(&mut quiet).await.message, "still here");

    // The stalled client finds its stream reset once it reads its buffer.
    let mut stream = response.into_inner();
    let mut read = 0;
    let error = loop {
        match tokio::time::timeout(DEADLINE, stream.message()).await {
            Ok(Ok(Some(_))) => read += 1,
            Ok(Ok(None)) => panic!("the stalled stream ended cleanly after {read} entries"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("no reset within the deadline"),
        }
    };
    assert!(read < 256, "read {read}");
    assert_eq!(error.code(), Code::Cancelled, "{error:?}");
}

#[tokio::test]
async fn a_slow_reader_is_throttled_not_reset() {
    let server = TestServer::start_with(|config| {
        config.idle_timeout = Duration::from_millis(300);
    })
    .await;
    // 64 entries of 4 KiB behind 64 KiB windows: the reader must drain its
    // window again and again, slowly.
    let mut stream = server.stalled_get_logs(1).await.into_inner();
    let mut read = 0;
    while let Some(_entry) = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("within the deadline")
        .expect("no reset")
    {
        read += 1;
        // Well under the idle timeout between reads.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(read, 64);
    assert_eq!(server.metric("logtap_streams_cancelled_total").await, 0);
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused_with_resource_exhausted() {
    let server = TestServer::start_with(|config| config.max_streams = 2).await;
    let mut client = server.client().await;
    let first = client
        .stream_logs(LogRequest::default())
        .await
        .expect("first");
    let second = client
        .stream_logs(LogRequest::default())
        .await
        .expect("second");
    let third = client
        .stream_logs(LogRequest::default())
        .await
        .expect_err("third");
    assert_eq!(third.code(), Code::ResourceExhausted);
    drop((first, second));
    server
        .wait_for_metric("logtap_active_streams", |n| n == 0)
        .await;
    client
        .stream_logs(LogRequest::default())
        .await
        .expect("room again");
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_the_server_at_its_window() {
    let server = TestServer::start().await;
    // 2 MiB of history; the client's window is 64 KiB.
    let response = server.stalled_get_logs(8).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the server read and handed to HTTP/2 is bounded by the window and
    // the transport's buffers, not by the size of the history.
    let sent = server.metric("logtap_entries_sent_total").await;
    assert!(
        sent < 200,
        "the server ran {sent} of 512 entries ahead of its client"
    );
    // Reading resumes the stream where it stopped, every entry once.
    let (entries, trailers) = drain(&mut response.into_inner()).await;
    assert_eq!(entries.len(), 512);
    assert_eq!(number(&trailers, "logtap-sent"), 512);
}

#[tokio::test]
async fn a_cursor_older_than_retention_is_data_loss_naming_the_oldest_kept() {
    let server = TestServer::start_with(|config| {
        config.store.segment_bytes = 4096;
        config.store.retention.max_bytes = Some(16 * 1024);
    })
    .await;
    let mut client = server.client().await;
    let text_of = "r".repeat(200);
    for i in 0..100 {
        push(&mut client, vec![vec![entry("info", &text_of, i + 1)]]).await;
    }
    let oldest = server.metric("logtap_store_oldest_cursor").await;
    assert!(oldest > 2, "retention deleted nothing (oldest {oldest})");
    let error = client
        .get_logs(LogRequest {
            after_cursor: Some(1),
            ..LogRequest::default()
        })
        .await
        .expect_err("deleted cursor");
    assert_eq!(error.code(), Code::DataLoss);
    assert!(
        error.message().contains(&oldest.to_string()),
        "{} does not name {oldest}",
        error.message()
    );
    // Resuming right before the oldest kept loses nothing, so it is fine.
    let (entries, _, _) = get_all(
        &mut client,
        LogRequest {
            after_cursor: Some(oldest - 1),
            ..LogRequest::default()
        },
    )
    .await;
    assert_eq!(entries.first().map(|e| e.cursor), Some(oldest));
}

#[tokio::test]
async fn a_push_larger_than_the_message_limit_is_resource_exhausted() {
    let server = TestServer::start_with(|config| config.max_message_bytes = 1024).await;
    let mut client = server.client().await;
    let status = try_push(&mut client, vec![vec![entry("info", &"q".repeat(2048), 1)]])
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
}

/// The newest records stay in memory for live tails, within the configured
/// bytes: a follower takes new entries without reading the file, a history
/// read reads it, and /metrics says both.
#[tokio::test]
async fn live_tails_read_new_entries_from_memory_within_the_bytes_kept() {
    let server = TestServer::start_with(|config| {
        config.store.recent_bytes = 2000;
    })
    .await;
    let mut client = server.client().await;
    let mut follower = client
        .stream_logs(LogRequest::default())
        .await
        .expect("stream_logs")
        .into_inner();
    push(&mut client, vec![vec![entry("info", "first", 1)]]).await;
    let first = follower.message().await.expect("read").expect("an entry");
    assert_eq!(first.message, "first");
    let one = server.metric("logtap_store_recent_bytes").await;
    assert!(one > 0, "the newest record is not kept ({one})");
    assert_eq!(
        server.metric("logtap_store_file_read_bytes_total").await,
        0,
        "the follower read the file"
    );

    let text_of = "m".repeat(300);
    for i in 0..20 {
        push(&mut client, vec![vec![entry("info", &text_of, i + 2)]]).await;
    }
    let many = server.metric("logtap_store_recent_bytes").await;
    assert!(many > one && many <= 2000, "kept {many} bytes");
    // History from the start is older than what is kept: read from the file.
    let (entries, _) = drain(
        &mut client
            .get_logs(LogRequest::default())
            .await
            .expect("get_logs")
            .into_inner(),
    )
    .await;
    assert_eq!(entries.len(), 21);
    assert!(server.metric("logtap_store_file_read_bytes_total").await > 0);
}

/// Live tails that have caught up send the newest entries as runs encoded
/// once for all of them: every follower, in either form, still gets every
/// entry once and in order, and the trailer CRC is what its entries give.
#[tokio::test]
async fn caught_up_tails_share_runs_and_still_get_every_entry_once() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let mut v1_followers = Vec::new();
    let mut seed_followers = Vec::new();
    for _ in 0..3 {
        v1_followers.push(
            client
                .stream_logs(LogRequest::default())
                .await
                .expect("stream_logs")
                .into_inner(),
        );
        seed_followers.push(
            server
                .seed_client()
                .await
                .stream_logs(logtap_proto::example::LogRequest::default())
                .await
                .expect("seed stream_logs")
                .into_inner(),
        );
    }
    let batches = 20;
    let per_batch = 50;
    for batch in 0..batches {
        let entries = (0..per_batch)
            .map(|i| entry("info", &format!("entry {}", batch * per_batch + i), 1 + i))
            .collect();
        push(&mut client, vec![entries]).await;
    }
    let expected: Vec<String> = (0..batches * per_batch)
        .map(|i| format!("entry {i}"))
        .collect();
    for follower in &mut v1_followers {
        assert_eq!(
            next_messages(follower, expected.len(), |e| e.message).await,
            expected
        );
    }
    for follower in &mut seed_followers {
        assert_eq!(
            next_messages(follower, expected.len(), |e| e.message).await,
            expected
        );
    }
    let in_runs = server.metric("logtap_entries_sent_in_runs_total").await;
    assert!(in_runs > 0, "no entry was sent in a run");
    // A shutdown ends every follower cleanly, with trailers.
    server.shutdown().await;
    for follower in v1_followers.iter_mut() {
        let (rest, trailers) = drain(follower).await;
        assert!(rest.is_empty());
        let mut crc = 0;
        for (i, message) in expected.iter().enumerate() {
            let timestamp = 1 + (i as i64 % per_batch);
            crc = crc32c::crc32c_append(crc, &timestamp.to_le_bytes());
            crc = crc32c::crc32c_append(crc, message.as_bytes());
        }
        assert_eq!(
            trailers.get("logtap-crc32c").unwrap().to_str().unwrap(),
            format!("{crc:08x}")
        );
        assert_eq!(
            trailers.get("logtap-sent").unwrap().to_str().unwrap(),
            expected.len().to_string()
        );
    }
}

/// The messages of the next `count` entries of a follower.
async fn next_messages<T>(
    follower: &mut tonic::Streaming<T>,
    count: usize,
    message: impl Fn(T) -> String,
) -> Vec<String> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let entry = follower.message().await.expect("read").expect("an entry");
        got.push(message(entry));
    }
    got
}

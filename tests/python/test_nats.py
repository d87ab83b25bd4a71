"""logtap nodes on one real nats-server (JetStream, sync_interval: always):
pushes through JetStream, a cursor that is the stream sequence, reads and
follows on either node, a stopped node that catches up after a restart, and
a node that fell behind the stream's retention refusing to start."""

import time

import pytest

from nats_cluster import Follower, Node, nats_cluster


@pytest.fixture
def nats(tmp_path):
    servers = nats_cluster(tmp_path, 1)
    yield servers[0]
    for server in servers:
        server.stop()


@pytest.fixture
def nodes(tmp_path, nats):
    started = []

    def start(name, *extra):
        node = Node(tmp_path, name, [nats.url], "--nats-stream", "logs", *extra).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def lines(tag, count, start=0):
    return [{"level": "info", "message": f"{tag}-{i}", "timestamp": 1_700_000_000_000_000_000 + i} for i in range(start, start + count)]


def test_cursors_are_stream_sequences_on_every_node_and_a_restarted_node_catches_up(nats, nodes):
    a = nodes("a")
    b = nodes("b")
    status, answer = a.push(lines("first", 5))
    assert status == 200, answer
    assert answer == {"stored": 5, "last_cursor": 5}
    # The cursor is JetStream's sequence: the stream says so itself.
    state = nats.stream_state("logs")
    assert state["state"]["last_seq"] == 5
    # Read-your-writes on the node pushed to, and the same history on the other.
    assert [e["cursor"] for e in a.read()] == [1, 2, 3, 4, 5]
    assert b.wait_for(5) == a.read()

    # A follower on b sees what a stores next, with no gap or duplicate.
    follower = Follower(b, after=3)
    follower.start()
    status, answer = a.push(lines("second", 3))
    assert answer == {"stored": 3, "last_cursor": 8}, answer
    got = follower.wait_for(5)
    assert [e["cursor"] for e in got] == [4, 5, 6, 7, 8]
    assert [e["message"] for e in got[2:]] == ["second-0", "second-1", "second-2"]
    follower.close()

    # b stops; a takes more; b restarts and resumes after what it applied.
    b.stop()
    for round in range(3):
        status, answer = a.push(lines(f"while-b-down-{round}", 4))
        assert status == 200, answer
    assert answer["last_cursor"] == 20
    b.start()
    assert b.wait_for(20) == a.read()
    # Pushes on b get the next sequences too, seen by a.
    status, answer = b.push(lines("on-b", 2))
    assert answer == {"stored": 2, "last_cursor": 22}, answer
    assert a.wait_for(22) == b.read()
    # Resuming after a cursor gives exactly the entries after it, on both.
    assert [e["cursor"] for e in a.read(after=17)] == [18, 19, 20, 21, 22]
    assert a.read(after=17) == b.read(after=17)


def test_a_retried_batch_is_stored_once(nats, nodes):
    a = nodes("a")
    batch = lines("retried", 4)
    status, first = a.push(batch)
    assert first == {"stored": 4, "last_cursor": 4}, first
    # The same batch again (as a client does when the answer was lost) is
    # the same messages to JetStream: its duplicate window keeps one copy.
    status, again = a.push(batch)
    assert again == {"stored": 4, "last_cursor": 4}, again
    assert [e["message"] for e in a.read()] == [f"retried-{i}" for i in range(4)]


def test_a_node_that_fell_behind_the_streams_retention_refuses_to_start(nats, nodes):
    a = nodes("a", "--retention-age", "2s")
    b = nodes("b", "--retention-age", "2s")
    now = time.time_ns()
    status, answer = a.push([{"message": "old", "timestamp": now}])
    assert answer["last_cursor"] == 1, answer
    b.wait_for(1)
    b.stop()
    # The stream drops what is older than 2 s; a takes newer entries.
    for cursor in (2, 3):
        time.sleep(3)
        status, answer = a.push([{"message": f"new-{cursor}", "timestamp": time.time_ns()}])
        assert answer["last_cursor"] == cursor, answer
        deadline = time.monotonic() + 10
        while nats.stream_state("logs")["state"]["first_seq"] < cursor and time.monotonic() < deadline:
            time.sleep(0.2)
    # b applied up to 1; the stream now starts at 3: sequence 2 is gone.
    b.process = None
    with pytest.raises(AssertionError) as refused:
        b.start()
    message = str(refused.value)
    assert "applied the stream up to sequence 1" in message, message
    assert "now starts at sequence 3" in message, message
    assert b.process.returncode != 0
    b.process = None


def refused_start(node):
    """Starts `node`, which must exit with an error; what it logged."""
    with pytest.raises(AssertionError) as refused:
        node.start()
    assert node.process.returncode != 0
    node.process = None
    return str(refused.value)


def test_an_unreachable_nats_or_a_bad_stream_name_stops_the_node_with_a_clear_error(tmp_path, nats):
    from nats_cluster import free_port

    closed = f"nats://127.0.0.1:{free_port()}"
    message = refused_start(Node(tmp_path, "nowhere", [closed]))
    assert f"could not connect to NATS at {closed}" in message, message
    message = refused_start(Node(tmp_path, "badname", [nats.url], "--nats-stream", "a.b"))
    assert "JetStream stream a.b" in message, message
    message = refused_start(Node(tmp_path, "badurl", ["http://[x"]))
    assert "is not a NATS URL" in message, message


def test_a_data_directory_of_another_stream_is_refused(tmp_path, nats):
    node = Node(tmp_path, "moved", [nats.url], "--nats-stream", "first").start()
    status, answer = node.push(lines("first-stream", 3))
    assert answer["last_cursor"] == 3, answer
    node.stop()
    node.extra = ("--nats-stream", "second")
    message = refused_start(node)
    assert "applied stream second up to sequence 3, but the stream ends at 0" in message, message
    assert "belongs to another stream" in message, message


def test_an_entry_larger_than_a_nats_message_is_refused_and_the_lines_before_it_kept(nats, nodes):
    a = nodes("a")
    big = {"level": "error", "message": "x" * (1 << 20)}
    status, answer = a.push([{"message": "before"}, big])
    assert status == 400, answer
    assert "entry too large" in answer, answer
    # As on a single node, the push says what it kept: the line before.
    assert "1 entries were stored before this batch" in answer, answer
    status, answer = a.push([{"message": "after"}])
    assert answer == {"stored": 1, "last_cursor": 2}, answer
    assert [e["message"] for e in a.read()] == ["before", "after"]

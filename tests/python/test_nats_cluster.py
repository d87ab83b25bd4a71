"""The cluster under faults: 3 nats-servers routed on loopback (an R3
stream), 2 logtap nodes, several clients pushing to both with retries,
followers on both that resume after their last cursor, while the test kills
-9 the stream leader, a follower server and a logtap node mid-push, and
SIGSTOPs the leader for longer than an election.

It asserts every acknowledged entry stored exactly once, both nodes'
histories identical cursor for cursor, cursors strictly increasing, every
resumed read exactly the entries after its cursor, the restarted node
caught up, and reports the publish outage after the leader kill."""

import itertools
import signal
import threading
import time

import pytest

from nats_cluster import DEADLINE, Follower, Node, nats_cluster

STREAM = "logs"
PUSHERS = 4
BATCH = 10


@pytest.fixture
def cluster(tmp_path):
    servers = nats_cluster(tmp_path, 3)
    urls = [s.url for s in servers]
    nodes = [
        Node(tmp_path, name, urls, "--nats-stream", STREAM, "--nats-replicas", "3").start()
        for name in ("a", "b")
    ]
    yield servers, nodes
    for node in nodes:
        try:
            node.stop()
        except AssertionError as error:
            print(error)
    for server in servers:
        server.stop()


def leader(servers):
    """The name of the stream's leader, as the live servers see it."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for server in servers:
            if server.process.poll() is not None:
                continue
            try:
                detail = server.stream_state(STREAM)
            except Exception:
                continue
            name = detail and detail.get("cluster", {}).get("leader")
            if name:
                return name
        time.sleep(0.2)
    raise AssertionError("the stream has no leader")


class Pusher(threading.Thread):
    """Pushes numbered batches with client timestamps, alternating nodes;
    a batch that fails is sent again, to the other node, until acknowledged
    (the same batch is the same JetStream message ids, so it is stored
    once)."""

    clock = itertools.count()

    def __init__(self, index, nodes, stop):
        super().__init__(daemon=True)
        self.index = index
        self.nodes = nodes
        self.stop = stop
        self.acked = []  # (messages, answer) of every acknowledged batch
        self.ack_times = []
        self.failures = 0
        self.error = None

    def run(self):
        try:
            for number in itertools.count():
                if self.stop.is_set():
                    return
                batch = [
                    {"level": "info", "message": f"p{self.index}-b{number}-{i}",
                     "timestamp": 1_700_000_000_000_000_000 + next(self.clock)}
                    for i in range(BATCH)
                ]
                deadline = time.monotonic() + 90
                for attempt in itertools.count():
                    node = self.nodes[(self.index + number + attempt) % len(self.nodes)]
                    status, answer = node.push(batch, timeout=45)
                    if status == 200:
                        assert answer["stored"] == BATCH, answer
                        self.acked.append(([line["message"] for line in batch], answer))
                        self.ack_times.append(time.monotonic())
                        break
                    self.failures += 1
                    if time.monotonic() > deadline:
                        raise AssertionError(f"batch {number} never acknowledged: {status} {answer}")
                    time.sleep(0.1)
        except Exception as error:
            self.error = error


class Tail:
    """A follower that resumes after its last cursor whenever its
    connection drops, on whichever node is up; every segment is checked
    against the final history."""

    def __init__(self, nodes, start):
        self.nodes = nodes
        self.turn = start
        self.segments = []  # (after, entries) of each connection
        self.current = None
        self.open(0)

    def open(self, after):
        node = self.nodes[self.turn % len(self.nodes)]
        self.turn += 1
        self.current = Follower(node, after)
        self.current.start()
        self.segments.append((after, self.current.entries))

    def last(self):
        for _, entries in reversed(self.segments):
            if entries:
                return entries[-1]["cursor"]
        return 0

    def tend(self):
        if not self.current.is_alive():
            self.open(self.last())

    def close(self):
        self.current.close()


def test_every_acknowledged_entry_exactly_once_through_leader_follower_and_node_faults(cluster):
    servers, (a, b) = cluster
    stop = threading.Event()
    pushers = [Pusher(i, [a, b], stop) for i in range(PUSHERS)]
    tails = [Tail([a, b], 0), Tail([b, a], 0)]
    for pusher in pushers:
        pusher.start()

    def run_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for tail in tails:
                tail.tend()
            for pusher in pushers:
                assert pusher.error is None, pusher.error
            time.sleep(0.1)

    by_name = {s.name: s for s in servers}
    run_for(3)

    # 1. kill -9 the stream leader mid-push; the outage is the longest
    # stretch without an acknowledgement after it.
    victim = by_name[leader(servers)]
    killed_at = time.monotonic()
    victim.kill9()

    # The outage: the longest stretch without any acknowledgement in the
    # 12 s after the kill (the first one may be a publish JetStream had
    # acknowledged just before).
    run_for(12)
    window = killed_at + 12
    acks = sorted(t for p in pushers for t in p.ack_times if killed_at < t <= window)
    assert acks, "no push was acknowledged within 12 s of the leader's kill"
    outage = max(later - earlier for earlier, later in zip([killed_at] + acks, acks + [window]))
    print(f"publish outage after killing the stream leader {victim.name}: {outage:.2f} s")
    victim.start().wait_ready()
    run_for(3)

    # 2. kill -9 a follower server, then bring it back.
    current = leader(servers)
    follower = next(s for s in servers if s.name != current)
    follower.kill9()
    run_for(3)
    follower.start().wait_ready()
    run_for(2)

    # 3. kill -9 logtap node b mid-push; clients retry on a; b restarts and
    # catches up.
    b.kill9()
    run_for(3)
    b.start()
    run_for(2)

    # 4. SIGSTOP the leader for longer than an election, then let it go on.
    paused = by_name[leader(servers)]
    paused.process.send_signal(signal.SIGSTOP)
    run_for(8)
    paused.process.send_signal(signal.SIGCONT)
    run_for(3)

    stop.set()
    for pusher in pushers:
        pusher.join(timeout=120)
        assert not pusher.is_alive(), "a pusher did not finish"
        assert pusher.error is None, pusher.error

    # Every acknowledged entry, with the cursor its answer named.
    acked = {}
    newest = 0
    for pusher in pushers:
        for messages, answer in pusher.acked:
            for message in messages:
                acked[message] = answer
            newest = max(newest, answer["last_cursor"])
    history_a = a.wait_for(newest)
    history_b = b.wait_for(newest)
    # Both nodes' histories identical, cursor for cursor.
    last = max(history_a[-1]["cursor"], history_b[-1]["cursor"])
    history_a, history_b = a.wait_for(last), b.wait_for(last)
    assert history_a == history_b
    cursors = [e["cursor"] for e in history_a]
    assert all(x < y for x, y in zip(cursors, cursors[1:])), "cursors strictly increasing"
    # Every acknowledged entry exactly once, within its batch's cursors.
    counts = {}
    for entry in history_a:
        counts[entry["message"]] = counts.get(entry["message"], 0) + 1
    duplicated = [m for m, n in counts.items() if n > 1]
    assert not duplicated, f"stored twice: {duplicated[:10]}"
    missing = [m for m in acked if m not in counts]
    assert not missing, f"acknowledged but not stored: {missing[:10]}"
    by_message = {e["message"]: e["cursor"] for e in history_a}
    for message, answer in acked.items():
        assert by_message[message] <= answer["last_cursor"], (message, answer)

    # Every resumed read: exactly the history after its cursor, as far as
    # it went.
    for tail in tails:
        tail.close()
        for after, entries in tail.segments:
            expected = [e for e in history_a if e["cursor"] > after][: len(entries)]
            assert entries == expected, f"a read resumed after {after} is not the history after it"
    total = sum(len(p.acked) for p in pushers) * BATCH
    print(f"{total} entries acknowledged, {sum(p.failures for p in pushers)} pushes retried, "
          f"{len(history_a)} stored, newest cursor {last}")
    assert outage < 30, f"the publish outage after a leader kill lasted {outage:.1f} s"

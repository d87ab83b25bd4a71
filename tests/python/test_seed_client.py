"""An independent client, generated from the seed's .proto with Python grpcio,
against a real logtap server.

It checks the seed's contract from the outside: `example.LogService/GetLogs`
with level "error" returns only error-and-above entries, oldest first, with
`x-request-id` in the headers and `logtap-sent`, `logtap-next-cursor` and
`logtap-crc32c` in the trailers (the CRC recomputed here, in Python), and
`example.LogService/StreamLogs` delivers a newly pushed entry live, then
cancels cleanly.

The seed's contract has no Push, so entries go in through a stub generated
from proto/logtap/v1/logtap.proto.

The server:
  * LOGTAP_TEST_SERVER=HOST:PORT uses a server already running (its store
    may hold other entries; the checks only look at this run's entries);
  * otherwise the test starts `logtap serve` from LOGTAP_BIN, or from
    target/debug/logtap, on a free port over a temporary data directory.

Run: pip install grpcio grpcio-tools pytest && python3 -m pytest tests/python
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
DEADLINE = 10.0

# CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, table-driven.
_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def stream_crc(entries):
    """The logtap-crc32c trailer for entries (message, timestamp), in order."""
    crc = 0
    for entry in entries:
        crc = crc32c(entry.timestamp.to_bytes(8, "little", signed=True), crc)
        crc = crc32c(entry.message.encode("utf-8"), crc)
    return f"{crc:08x}"


assert crc32c(b"123456789") == 0xE3069283, "the CRC-32C check value"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """Python modules generated now from the repository's .proto files."""
    out = tmp_path_factory.mktemp("stubs")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "example/seed.proto",
        "logtap/v1/logtap.proto",
    ]
    assert protoc.main(args) == 0, "protoc failed"
    sys.path.insert(0, str(out))
    from example import seed_pb2, seed_pb2_grpc
    from logtap.v1 import logtap_pb2, logtap_pb2_grpc

    return seed_pb2, seed_pb2_grpc, logtap_pb2, logtap_pb2_grpc


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(address, process=None):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"logtap serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server answered /healthz on {address}")


class Server:
    def __init__(self, address, process=None):
        self.address = address
        self.process = process

    @property
    def own(self):
        return self.process is not None

    def metric(self, name):
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                parts = line.split(" ")
                if len(parts) == 2 and parts[0] == name:
                    return float(parts[1])
        raise AssertionError(f"{name} missing from /metrics")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    external = os.environ.get("LOGTAP_TEST_SERVER")
    if external:
        address = external.removeprefix("http://")
        wait_until_up(address)
        yield Server(address)
        return
    binary = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))
    if not binary.exists():
        pytest.skip(f"no logtap binary at {binary} (build it, or set LOGTAP_BIN or LOGTAP_TEST_SERVER)")
    data = tmp_path_factory.mktemp("data")
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(binary), "serve", "--data", str(data), "--listen", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(address, process)
        yield Server(address, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError("logtap serve did not stop on SIGTERM:\n" + stderr.decode(errors="replace"))
    assert process.returncode == 0, "logtap serve failed:\n" + stderr.decode(errors="replace")


@pytest.fixture()
def channel(server):
    with grpc.insecure_channel(server.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=DEADLINE)
        yield channel


def push(stubs, channel, entries):
    _, _, logtap_pb2, logtap_pb2_grpc = stubs
    stub = logtap_pb2_grpc.LogServiceStub(channel)
    batch = [logtap_pb2.LogEntry(level=level, message=message, timestamp=ts) for level, message, ts in entries]
    return stub.Push(iter([logtap_pb2.PushRequest(entries=batch)]), timeout=DEADLINE)


def test_a_flood_of_one_entry_pushes_on_one_call_is_stored_whole(stubs, channel):
    """grpcio sends each request in its own small DATA frame, as fast as it
    can; the server must read them as fast (h2 cuts a connection on which
    too many small frames wait unread: GOAWAY ENHANCE_YOUR_CALM)."""
    _, _, logtap_pb2, logtap_pb2_grpc = stubs
    run = uuid.uuid4().hex[:8]
    count = 20_000
    stub = logtap_pb2_grpc.LogServiceStub(channel)
    requests = (
        logtap_pb2.PushRequest(entries=[logtap_pb2.LogEntry(message=f"{run} {i}", timestamp=1)])
        for i in range(count)
    )
    reply = stub.Push(requests, timeout=60)
    assert reply.stored == count

    call = stub.GetLogs(logtap_pb2.LogRequest(grep=run), timeout=DEADLINE * 3)
    messages = [entry.message for entry in call]
    assert messages == [f"{run} {i}" for i in range(count)]


def test_get_logs_error_level_with_headers_trailers_and_crc(stubs, channel):
    seed_pb2, seed_pb2_grpc, _, _ = stubs
    run = uuid.uuid4().hex[:8]
    levels = ["trace", "debug", "info", "warn", "error", "fatal", "info", "error"]
    entries = [(level, f"{run} {i} {level}", 1_700_000_000_000_000_000 + i) for i, level in enumerate(levels)]
    reply = push(stubs, channel, entries)
    assert reply.stored == len(entries)

    stub = seed_pb2_grpc.LogServiceStub(channel)
    call = stub.GetLogs(
        seed_pb2.LogRequest(level="error"),
        metadata=[("x-request-id", f"py-{run}")],
        timeout=DEADLINE,
    )
    received = list(call)
    assert call.code() == grpc.StatusCode.OK

    headers = dict(call.initial_metadata())
    trailers = dict(call.trailing_metadata())
    assert headers["x-request-id"] == f"py-{run}"
    assert int(headers["logtap-total-count"]) == len(received)
    assert trailers["x-request-id"] == f"py-{run}"
    assert int(trailers["logtap-sent"]) == len(received)
    assert int(trailers["logtap-next-cursor"]) >= reply.last_cursor
    assert trailers["logtap-crc32c"] == stream_crc(received)

    ours = [(e.message, e.timestamp) for e in received if e.message.startswith(run)]
    expected = [(m, ts) for level, m, ts in entries if level in ("error", "fatal")]
    assert ours == expected


def test_stream_logs_delivers_a_new_entry_live_then_cancels(stubs, channel, server):
    seed_pb2, seed_pb2_grpc, _, _ = stubs
    run = uuid.uuid4().hex[:8]
    stub = seed_pb2_grpc.LogServiceStub(channel)
    call = stub.StreamLogs(seed_pb2.LogRequest(level="error"), timeout=DEADLINE)
    # The headers come at once, before any entry exists.
    assert "x-request-id" in dict(call.initial_metadata())

    pusher = threading.Timer(
        0.1,
        push,
        args=(stubs, channel, [("info", f"{run} quiet", 1), ("error", f"{run} live", 2)]),
    )
    pusher.start()
    try:
        for entry in call:
            if entry.message.startswith(run):
                assert (entry.message, entry.timestamp) == (f"{run} live", 2)
                break
    finally:
        pusher.join()
        call.cancel()
    assert call.code() == grpc.StatusCode.CANCELLED

    if server.own:
        # The server noticed the cancellation and closed the stream.
        deadline = time.monotonic() + DEADLINE
        while server.metric("logtap_active_streams") != 0:
            assert time.monotonic() < deadline, "the cancelled stream stayed open"
            time.sleep(0.05)
        assert server.metric("logtap_streams_cancelled_total") >= 1

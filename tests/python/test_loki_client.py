"""The real Loki client `python-logging-loki` (PyPI, module `logging_loki`)
against a real logtap server's Loki push API.

Python's logging sends records at several levels through
`logging_loki.LokiHandler` (push API version 1: JSON, ns timestamps as
strings, the level in the `severity` label, the logger's name in
`logger`); the test reads them back with `logtap logs --output json` and
checks each entry's message, level, time and labels.

The server:
  * LOGTAP_TEST_SERVER=HOST:PORT uses a server already running (the checks
    only look at this run's entries);
  * otherwise the test starts `logtap serve` from LOGTAP_BIN, or from
    target/debug/logtap, on a free port over a temporary data directory.
`logtap logs` comes from the same binary.

Run: pip install python-logging-loki pytest && python3 -m pytest tests/python
"""

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import logging_loki
import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
BINARY = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))


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
            with urllib.request.urlopen(f"http://{address}/ready", timeout=1) as reply:
                if reply.status == 200 and reply.read() == b"ready":
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server answered /ready on {address}")


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    if not BINARY.exists():
        pytest.skip(f"no logtap binary at {BINARY} (build it, or set LOGTAP_BIN)")
    external = os.environ.get("LOGTAP_TEST_SERVER")
    if external:
        external = external.removeprefix("http://")
        wait_until_up(external)
        yield external
        return
    data = tmp_path_factory.mktemp("data")
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(BINARY), "serve", "--data", str(data), "--listen", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(address, process)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError("logtap serve did not stop on SIGTERM:\n" + stderr.decode(errors="replace"))
    assert process.returncode == 0, "logtap serve failed:\n" + stderr.decode(errors="replace")


def read_back(address, run):
    """This run's entries, through `logtap logs --output json`."""
    output = subprocess.run(
        [str(BINARY), "logs", "--server", f"http://{address}", "--grep", run, "--output", "json"],
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    ).stdout.decode()
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_python_logging_loki_records_arrive_with_message_level_time_and_labels(address):
    run = uuid.uuid4().hex[:8]
    handler = logging_loki.LokiHandler(
        url=f"http://{address}/loki/api/v1/push",
        tags={"application": "demo"},
        version="1",
    )
    failures = []
    # The handler reports a refused push through handleError, which only
    # prints; keep it so the test fails with the server's reason.
    handler.handleError = lambda record: failures.append(record)
    logger = logging.getLogger(f"loki-test-{run}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    sent = [
        (logging.DEBUG, "debug", "debug"),
        (logging.INFO, "info", "info"),
        (logging.WARNING, "warning", "warn"),
        (logging.ERROR, "error", "error"),
        (logging.CRITICAL, "critical", "fatal"),
    ]
    before = time.time_ns()
    try:
        for number, (level, _, _) in enumerate(sent):
            logger.log(level, "%s record %d", run, number, extra={"tags": {"request": f"r{number}"}})
    finally:
        logger.removeHandler(handler)
        handler.close()
    after = time.time_ns()
    assert not failures, "the server refused a push"

    entries = read_back(address, run)
    assert [entry["message"] for entry in entries] == [f"{run} record {n}" for n in range(len(sent))]
    for number, (entry, (_, severity, level)) in enumerate(zip(entries, sent)):
        assert entry["level"] == level, entry
        # The client stamps each record with its own clock, in ns.
        assert before - 1_000_000 <= int(entry["timestamp"]) <= after + 1_000_000, entry
        assert entry["labels"] == {
            "application": "demo",
            "severity": severity,
            "logger": f"loki-test-{run}",
            "request": f"r{number}",
        }, entry

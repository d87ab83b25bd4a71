"""The real syslog client, util-linux `logger` (Debian package bsdutils),
against a real logtap server's syslog listeners.

`logger` sends one message in each of its modes: UDP and TCP, RFC 5424
and RFC 3164, TCP with LF framing and with octet counting
(`--octet-count`), each at its own facility and severity; the test reads
them back with `logtap logs --output json` and checks each entry's
message, level and labels (facility, host, tag, pid, msgid, structured
data). Syslog has no acknowledgement, so the test polls until the
entries are stored.

The test starts `logtap serve` from LOGTAP_BIN, or from
target/debug/logtap, with --syslog-udp and --syslog-tcp on free ports
over a temporary data directory. `logtap logs` comes from the same binary.

Run: apt-get install bsdutils; pip install pytest; python3 -m pytest tests/python
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
BINARY = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))
LOGGER = shutil.which("logger")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(address, process):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"logtap serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{address}/ready", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server answered /ready on {address}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not BINARY.exists():
        pytest.skip(f"no logtap binary at {BINARY} (build it, or set LOGTAP_BIN)")
    if LOGGER is None:
        pytest.skip("no logger (apt-get install bsdutils)")
    data = tmp_path_factory.mktemp("data")
    address = f"127.0.0.1:{free_port()}"
    udp = free_port(socket.SOCK_DGRAM)
    tcp = free_port()
    process = subprocess.Popen(
        [
            str(BINARY), "serve", "--data", str(data), "--listen", address,
            "--syslog-udp", f"127.0.0.1:{udp}", "--syslog-tcp", f"127.0.0.1:{tcp}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(address, process)
        yield address, udp, tcp
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError("logtap serve did not stop on SIGTERM:\n" + stderr.decode(errors="replace"))
    assert process.returncode == 0, "logtap serve failed:\n" + stderr.decode(errors="replace")


def read_back(address, run, count):
    """This run's entries, through `logtap logs --output json`, once
    `count` have arrived (or the deadline passed)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        output = subprocess.run(
            [str(BINARY), "logs", "--server", f"http://{address}", "--grep", run, "--output", "json"],
            check=True,
            capture_output=True,
            timeout=DEADLINE,
        ).stdout.decode()
        entries = [json.loads(line) for line in output.splitlines() if line.strip()]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


# (name, transport flags, format flags, priority, expected level)
MODES = [
    ("udp-5424", ["--udp"], ["--rfc5424", "--msgid", "M1", "--sd-id", "origin@32473", "--sd-param", 'ip="10.0.0.1"'], "local0.err", "error"),
    ("udp-3164", ["--udp"], ["--rfc3164"], "local1.warning", "warn"),
    ("tcp-5424-lf", ["--tcp"], ["--rfc5424", "--msgid", "M3"], "user.crit", "fatal"),
    ("tcp-5424-octets", ["--tcp", "--octet-count"], ["--rfc5424"], "daemon.debug", "debug"),
    ("tcp-3164-lf", ["--tcp"], ["--rfc3164"], "local3.notice", "info"),
]


def test_logger_in_every_mode_arrives_with_message_level_and_labels(server):
    address, udp, tcp = server
    run = uuid.uuid4().hex[:8]
    for name, transport, form, priority, _ in MODES:
        port = udp if "--udp" in transport else tcp
        subprocess.run(
            [LOGGER, "--server", "127.0.0.1", "--port", str(port), *transport, *form,
             "-p", priority, "-t", f"app-{name}", "-i", f"{run} {name}"],
            check=True,
            timeout=DEADLINE,
        )
    entries = read_back(address, run, len(MODES))
    by_message = {entry["message"]: entry for entry in entries}
    assert sorted(by_message) == sorted(f"{run} {name}" for name, *_ in MODES), entries
    for name, _, form, priority, level in MODES:
        entry = by_message[f"{run} {name}"]
        labels = entry["labels"]
        assert entry["level"] == level, entry
        assert labels["facility"] == priority.split(".")[0], entry
        assert labels["app"] == f"app-{name}", entry
        assert labels["procid"].isdigit(), entry
        assert labels.get("hostname"), entry
        # logger stamps the time itself, a moment ago; RFC 3164's is local
        # time without a zone, read as UTC, so only RFC 5424's is exact.
        if "--rfc5424" in form:
            assert abs(int(entry["timestamp"]) - time.time_ns()) < 120 * 10**9, entry
        if "--msgid" in form:
            assert labels["msgid"] == form[form.index("--msgid") + 1], entry
    sd = by_message[f"{run} udp-5424"]["labels"]
    assert sd["sd.origin@32473.ip"] == "10.0.0.1", sd
    # logger adds its own timeQuality element in RFC 5424.
    assert "sd.timeQuality.tzKnown" in sd, sd

"""What the real-client tests that start their own servers share: a
`logtap serve` started from LOGTAP_BIN (or target/debug/logtap) on a free
port over a temporary data directory, stopped with SIGTERM at the end of
the module, and `logtap logs --output json` to read entries back.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
BINARY = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))


def free_port():
    with socket.socket() as sock:
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
def logtap_serve(tmp_path_factory):
    """Starts `logtap serve` with extra arguments; its address, HOST:PORT."""
    if not BINARY.exists():
        pytest.fail(f"no logtap binary at {BINARY} (build it, or set LOGTAP_BIN)")
    processes = []

    def start(*extra):
        data = tmp_path_factory.mktemp("data")
        address = f"127.0.0.1:{free_port()}"
        process = subprocess.Popen(
            [str(BINARY), "serve", "--data", str(data), "--listen", address, *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        wait_until_up(address, process)
        return address

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError("logtap serve did not stop on SIGTERM:\n" + stderr.decode(errors="replace"))
        assert process.returncode == 0, "logtap serve failed:\n" + stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def logtap_logs():
    """Reads the entries whose message holds `grep`, oldest first, through
    `logtap logs --output json` (with `token` when given)."""

    def read(address, grep, token=None):
        command = [str(BINARY), "logs", "--server", f"http://{address}", "--grep", grep, "--output", "json"]
        if token:
            command += ["--token", token]
        output = subprocess.run(command, check=True, capture_output=True, timeout=DEADLINE).stdout.decode()
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    return read

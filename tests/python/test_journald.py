"""The real journald uploader, `systemd-journal-upload` (Debian package
systemd-journal-remote), against a real logtap server's `POST /upload`.

The test makes a journal file with the real tools: it writes entries in
the Journal Export Format (a multi-line MESSAGE, a field that is not
UTF-8, each PRIORITY's level, an entry without PRIORITY) and converts
them with `systemd-journal-remote --output=FILE.journal -`. Then
`systemd-journal-upload --file=FILE.journal --url=http://127.0.0.1:PORT`
sends the file, reading it back with `logtap logs --output json` and
checking each entry's message, level, time and labels, and the cursor the
uploader saved once logtap answered. A second server, with tokens on,
refuses the uploader (it sends no token): the upload fails and no cursor
is saved, which is how the uploader knows to send again.

The tools must be installed: a missing one fails the test rather than
skipping it (`.ci/run` installs them: apt-get install
systemd-journal-remote).

The test starts `logtap serve` from LOGTAP_BIN, or from
target/debug/logtap, on a free port over a temporary data directory.

Run: apt-get install systemd-journal-remote; pip install pytest;
python3 -m pytest tests/python/test_journald.py
"""

import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
BINARY = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))
REMOTE = Path("/lib/systemd/systemd-journal-remote")
UPLOAD = Path("/lib/systemd/systemd-journal-upload")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_tools():
    """Fails, never skips, when a tool the test drives is missing."""
    for tool in (BINARY, REMOTE, UPLOAD):
        assert tool.exists(), (
            f"{tool} is missing: build logtap (cargo build -p logtap) and "
            "apt-get install systemd-journal-remote"
        )


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


def start_server(data, *extra):
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(BINARY), "serve", "--data", str(data), "--listen", address, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until_up(address, process)
    return address, process


def stop_server(process):
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError("logtap serve did not stop on SIGTERM:\n" + stderr.decode(errors="replace"))
    assert process.returncode == 0, "logtap serve failed:\n" + stderr.decode(errors="replace")


@pytest.fixture
def server(tmp_path):
    require_tools()
    address, process = start_server(tmp_path / "data")
    try:
        yield address
    finally:
        stop_server(process)


def text_field(name, value):
    return f"{name}={value}\n".encode()


def binary_field(name, value):
    """The export format's binary-safe form: NAME, a 64-bit little-endian
    length, the bytes."""
    return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"


# (suffix, PRIORITY or None, level expected)
PRIORITIES = [
    ("emerg", "0", "fatal"),
    ("crit", "2", "fatal"),
    ("err", "3", "error"),
    ("warning", "4", "warn"),
    ("notice", "5", "info"),
    ("debug", "7", "debug"),
    ("none", None, "info"),
]

BASE_MICROS = 1_700_000_000_000_000


def make_journal(directory, run):
    """A journal file made by systemd-journal-remote from export-format
    entries; returns its path."""
    export = b""
    for index, (suffix, priority, _) in enumerate(PRIORITIES):
        export += text_field("__REALTIME_TIMESTAMP", BASE_MICROS + index * 1_000_001)
        export += text_field("__MONOTONIC_TIMESTAMP", 1000 + index)
        export += text_field("_BOOT_ID", "0f2c5b7e8a2d4c6e9f1b3d5a7c9e1f20")
        export += text_field("_HOSTNAME", "web-1")
        export += text_field("_SYSTEMD_UNIT", f"app-{suffix}.service")
        export += text_field("SYSLOG_IDENTIFIER", "app")
        export += text_field("_PID", str(100 + index))
        if priority is not None:
            export += text_field("PRIORITY", priority)
        export += text_field("MESSAGE", f"{run} {suffix}")
        export += b"\n"
    # A message on two lines and a field that is not UTF-8: the uploader
    # sends both in the binary-safe form.
    export += text_field("__REALTIME_TIMESTAMP", BASE_MICROS + 99_000_000)
    export += text_field("__MONOTONIC_TIMESTAMP", 2000)
    export += text_field("_BOOT_ID", "0f2c5b7e8a2d4c6e9f1b3d5a7c9e1f20")
    export += text_field("PRIORITY", "6")
    export += binary_field("MESSAGE", f"{run} multi\nsecond line".encode())
    export += binary_field("RAW", b"caf\xe9")
    export += b"\n"
    journal = directory / "upload.journal"
    subprocess.run(
        [str(REMOTE), f"--output={journal}", "-"],
        input=export,
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    )
    return journal


def upload(journal, address, state):
    return subprocess.run(
        [
            str(UPLOAD),
            f"--file={journal}",
            f"--url=http://{address}",
            f"--save-state={state}",
            "--follow=no",
        ],
        capture_output=True,
        timeout=DEADLINE,
    )


def read_back(address, run):
    output = subprocess.run(
        [str(BINARY), "logs", "--server", f"http://{address}", "--grep", run, "--output", "json"],
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    ).stdout.decode()
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_systemd_journal_upload_ships_a_journal_with_message_level_time_and_labels(server, tmp_path):
    run = uuid.uuid4().hex[:8]
    journal = make_journal(tmp_path, run)
    state = tmp_path / "state"
    done = upload(journal, server, state)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    # The uploader saves its cursor only after a 2xx answer.
    assert "LAST_CURSOR=" in state.read_text()

    entries = read_back(server, run)
    by_message = {entry["message"]: entry for entry in entries}
    expected = [f"{run} {suffix}" for suffix, _, _ in PRIORITIES] + [f"{run} multi\nsecond line"]
    assert sorted(by_message) == sorted(expected), entries
    for index, (suffix, priority, level) in enumerate(PRIORITIES):
        entry = by_message[f"{run} {suffix}"]
        assert entry["level"] == level, entry
        assert int(entry["timestamp"]) == (BASE_MICROS + index * 1_000_001) * 1000, entry
        labels = entry["labels"]
        assert labels["_HOSTNAME"] == "web-1", entry
        assert labels["_SYSTEMD_UNIT"] == f"app-{suffix}.service", entry
        assert labels["SYSLOG_IDENTIFIER"] == "app", entry
        assert labels["_PID"] == str(100 + index), entry
        assert labels["_BOOT_ID"] == "0f2c5b7e8a2d4c6e9f1b3d5a7c9e1f20", entry
        # The export's addresses are dropped; PRIORITY became the level.
        assert not any(name.startswith("__") for name in labels), entry
        assert "PRIORITY" not in labels, entry
    multi = by_message[f"{run} multi\nsecond line"]
    assert multi["level"] == "info", multi
    assert int(multi["timestamp"]) == (BASE_MICROS + 99_000_000) * 1000, multi
    assert multi["labels"]["RAW"] == "caf\ufffd", multi

    # Labels are named as journald spells them, and filter as such.
    output = subprocess.run(
        [str(BINARY), "logs", "--server", f"http://{server}", "--label",
         "_SYSTEMD_UNIT=app-err.service", "--output", "json"],
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    ).stdout.decode()
    unit = [json.loads(line)["message"] for line in output.splitlines() if line.strip()]
    assert unit == [f"{run} err"], output

    # Run again, the uploader starts from its saved cursor: at most the
    # entry at that cursor comes again (systemd 252 sends it once more;
    # delivery is at least once), never the whole journal.
    again = upload(journal, server, state)
    assert again.returncode == 0, again.stderr.decode(errors="replace")
    assert len(expected) <= len(read_back(server, run)) <= len(expected) + 1


def test_a_refused_upload_fails_and_saves_no_cursor(tmp_path):
    require_tools()
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("writer-token-0123456789abcdef write\n")
    address, process = start_server(tmp_path / "data", "--auth-token-file", str(tokens))
    try:
        journal = make_journal(tmp_path, uuid.uuid4().hex[:8])
        state = tmp_path / "state"
        refused = upload(journal, address, state)
        assert refused.returncode != 0, refused.stderr.decode(errors="replace")
        assert "401" in refused.stderr.decode(errors="replace"), refused.stderr
        assert not state.exists() or "LAST_CURSOR=" not in state.read_text()
    finally:
        stop_server(process)

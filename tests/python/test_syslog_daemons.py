"""The syslog daemons people relay with, rsyslog and syslog-ng (Debian's
packages), forwarding to a real logtap server's syslog listeners.

Each daemon takes messages from `logger` on a Unix socket of its own and
forwards them the way its users configure it:

* rsyslog's `omfwd` over UDP and over TCP with octet counting, in RFC 5424
  (`RSYSLOG_SyslogProtocol23Format`) and in its default traditional
  (RFC 3164) format;
* syslog-ng's `syslog()` driver (RFC 5424, octet-counted TCP), its
  `network()` driver over UDP (RFC 3164), and `syslog()` over TLS
  (RFC 5425) to a logtap serving TLS with a certificate the test makes
  with openssl, which syslog-ng verifies.

The test reads every message back with `logtap logs --output json` and
checks message, level, app and host. Syslog has no acknowledgement, so it
polls until the entries are stored.

syslog-ng conflicts with rsyslog as a Debian package, so `.ci/run` unpacks
syslog-ng-core's .deb into SYSLOG_NG_ROOT (default /opt/syslog-ng) instead
of installing it; rsyslog is installed. A missing daemon fails the test.

Run: apt-get install rsyslog bsdutils openssl; unpack syslog-ng-core;
pip install pytest; python3 -m pytest tests/python/test_syslog_daemons.py
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
BINARY = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))
SYSLOG_NG_ROOT = Path(os.environ.get("SYSLOG_NG_ROOT", "/opt/syslog-ng"))


def tool(name, *candidates):
    """The path of a tool the test needs; its absence fails the test."""
    for candidate in candidates:
        if Path(candidate).exists():
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is missing: .ci/run installs it"
    return found


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Logtap:
    """`logtap serve` with both syslog listeners on free ports."""

    def __init__(self, data, tls=None, ca=None):
        assert BINARY.exists(), f"no logtap binary at {BINARY} (build it, or set LOGTAP_BIN)"
        self.address = f"127.0.0.1:{free_port()}"
        self.udp = free_port(socket.SOCK_DGRAM)
        self.tcp = free_port()
        self.tls = tls
        self.ca = ca
        args = [
            str(BINARY), "serve", "--data", str(data), "--listen", self.address,
            "--syslog-udp", f"127.0.0.1:{self.udp}", "--syslog-tcp", f"127.0.0.1:{self.tcp}",
        ]
        if tls:
            args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.scheme = "https" if tls else "http"
        self.wait_until_up()

    def wait_until_up(self):
        context = ssl.create_default_context(cafile=str(self.ca)) if self.tls else None
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"logtap serve exited with {self.process.returncode}: "
                    + self.process.stderr.read().decode(errors="replace")
                )
            try:
                url = f"{self.scheme}://{self.address}/healthz"
                with urllib.request.urlopen(url, timeout=1, context=context) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"no server answered on {self.address}")

    def read_back(self, run, count):
        """This run's entries, once `count` have arrived (or the deadline)."""
        args = [str(BINARY), "logs", "--server", f"{self.scheme}://{self.address}",
                "--grep", run, "--output", "json"]
        if self.tls:
            args += ["--ca-cert", str(self.ca)]
        deadline = time.monotonic() + DEADLINE
        while True:
            output = subprocess.run(args, check=True, capture_output=True, timeout=DEADLINE).stdout
            entries = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
            if len(entries) >= count or time.monotonic() > deadline:
                return entries
            time.sleep(0.2)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise AssertionError("logtap serve did not stop on SIGTERM")
        assert self.process.returncode == 0, "logtap serve failed:\n" + stderr.decode(errors="replace")


def wait_for_socket(path, process, name):
    deadline = time.monotonic() + DEADLINE
    while not Path(path).exists():
        assert process.poll() is None, f"{name} exited: " + process.stderr.read().decode(errors="replace")
        assert time.monotonic() < deadline, f"{name} never created {path}"
        time.sleep(0.05)


def stop_daemon(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def log(socket_path, priority, tag, message):
    """util-linux logger, writing to a daemon's Unix socket."""
    subprocess.run(
        [tool("logger"), "--socket", str(socket_path), "-p", priority, "-t", tag, message],
        check=True,
        timeout=DEADLINE,
    )


def check(entries, expected):
    """Each expected (message, level, app) arrived, once."""
    by_message = {}
    for entry in entries:
        assert entry["message"] not in by_message, f"stored twice: {entry}"
        by_message[entry["message"]] = entry
    assert sorted(by_message) == sorted(message for message, _, _ in expected), entries
    for message, level, app in expected:
        entry = by_message[message]
        assert entry["level"] == level, entry
        assert entry["labels"]["app"] == app, entry
        assert entry["labels"].get("hostname"), entry
        # Every daemon stamps the time when it takes the message.
        assert abs(int(entry["timestamp"]) - time.time_ns()) < 24 * 3600 * 10**9, entry


@pytest.fixture(scope="module")
def logtap(tmp_path_factory):
    server = Logtap(tmp_path_factory.mktemp("data"))
    yield server
    server.stop()


def test_rsyslog_forwards_over_udp_and_octet_counted_tcp_in_both_formats(logtap, tmp_path):
    rsyslogd = tool("rsyslogd", "/usr/sbin/rsyslogd")
    run = uuid.uuid4().hex[:8]
    sock = tmp_path / "rsyslog.sock"
    forwards = {
        "udp5424": f'protocol="udp" port="{logtap.udp}" template="RSYSLOG_SyslogProtocol23Format"',
        "tcp5424": f'protocol="tcp" port="{logtap.tcp}" TCP_Framing="octet-counted" '
                   'template="RSYSLOG_SyslogProtocol23Format"',
        "udp3164": f'protocol="udp" port="{logtap.udp}"',
        "tcp3164": f'protocol="tcp" port="{logtap.tcp}" TCP_Framing="octet-counted"',
    }
    config = [
        f'global(workDirectory="{tmp_path}")',
        'module(load="imuxsock" SysSock.Use="off")',
        f'input(type="imuxsock" Socket="{sock}" CreatePath="on")',
    ]
    for name, options in forwards.items():
        # Each message goes out through the one forward its app names.
        config.append(
            f'if $programname == "rs-{name}" then {{ action(type="omfwd" target="127.0.0.1" {options}) }}'
        )
    (tmp_path / "rsyslog.conf").write_text("\n".join(config) + "\n")
    daemon = subprocess.Popen(
        [rsyslogd, "-n", "-f", str(tmp_path / "rsyslog.conf"), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_socket(sock, daemon, "rsyslogd")
        expected = []
        for (name, priority, level) in [
            ("udp5424", "local0.err", "error"),
            ("tcp5424", "user.warning", "warn"),
            ("udp3164", "daemon.info", "info"),
            ("tcp3164", "local7.crit", "fatal"),
        ]:
            message = f"{run} via rsyslog {name}"
            log(sock, priority, f"rs-{name}", message)
            expected.append((message, level, f"rs-{name}"))
        entries = logtap.read_back(run, len(expected))
    finally:
        stop_daemon(daemon)
    check(entries, expected)


def syslog_ng(tmp_path, destinations):
    """Starts syslog-ng (unpacked from Debian's package) reading a Unix
    socket and sending each app's messages to its destination."""
    binary = SYSLOG_NG_ROOT / "usr" / "sbin" / "syslog-ng"
    assert binary.exists(), f"no syslog-ng at {binary}: .ci/run unpacks syslog-ng-core there"
    sock = tmp_path / "syslog-ng.sock"
    lines = [
        "@version: 3.38",
        "options { chain-hostnames(no); stats_freq(0); };",
        f'source s_local {{ unix-dgram("{sock}"); }};',
    ]
    for name, destination in destinations.items():
        lines.append(f"destination d_{name} {{ {destination} }};")
        lines.append(f'filter f_{name} {{ program("ng-{name}"); }};')
        lines.append(f"log {{ source(s_local); filter(f_{name}); destination(d_{name}); }};")
    (tmp_path / "syslog-ng.conf").write_text("\n".join(lines) + "\n")
    lib = SYSLOG_NG_ROOT / "usr" / "lib" / "syslog-ng"
    daemon = subprocess.Popen(
        [
            str(binary), "-F", "-f", str(tmp_path / "syslog-ng.conf"),
            f"--module-path={lib / '3.38'}",
            f"--persist-file={tmp_path / 'syslog-ng.persist'}",
            f"--pidfile={tmp_path / 'syslog-ng.pid'}",
            f"--control={tmp_path / 'syslog-ng.ctl'}",
        ],
        env={**os.environ, "LD_LIBRARY_PATH": str(lib)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_socket(sock, daemon, "syslog-ng")
    return daemon, sock


def test_syslog_ng_forwards_rfc5424_over_tcp_and_rfc3164_over_udp(logtap, tmp_path):
    run = uuid.uuid4().hex[:8]
    daemon, sock = syslog_ng(tmp_path, {
        "tcp": f'syslog("127.0.0.1" port({logtap.tcp}) transport("tcp"));',
        "udp": f'network("127.0.0.1" port({logtap.udp}) transport("udp"));',
    })
    try:
        expected = []
        for name, priority, level in [("tcp", "local2.err", "error"), ("udp", "user.debug", "debug")]:
            message = f"{run} via syslog-ng {name}"
            log(sock, priority, f"ng-{name}", message)
            expected.append((message, level, f"ng-{name}"))
        entries = logtap.read_back(run, len(expected))
    finally:
        stop_daemon(daemon)
    check(entries, expected)


def test_syslog_ng_forwards_over_tls_verifying_logtaps_certificate(tmp_path):
    openssl = tool("openssl")
    ca, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    cert, key, request = tmp_path / "server.crt", tmp_path / "server.key", tmp_path / "server.csr"
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for args in [
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=logtap test CA", "-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", "/CN=localhost", "-keyout", key, "-out", request],
        ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", tmp_path / "ext.cnf", "-out", cert],
    ]:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True, timeout=DEADLINE)
    server = Logtap(tmp_path / "data", tls=(cert, key), ca=ca)
    try:
        run = uuid.uuid4().hex[:8]
        daemon, sock = syslog_ng(tmp_path, {
            "tls": f'syslog("127.0.0.1" port({server.tcp}) transport("tls") '
                   f'tls(ca-file("{ca}") peer-verify(required-trusted)));',
        })
        try:
            message = f"{run} via syslog-ng over tls"
            log(sock, "auth.alert", "ng-tls", message)
            entries = server.read_back(run, 1)
        finally:
            stop_daemon(daemon)
        check(entries, [(message, "fatal", "ng-tls")])
    finally:
        server.stop()

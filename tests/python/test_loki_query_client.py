"""The real Loki query client `loki-reader-core` (PyPI, module
`loki_reader_core`) against a live logtap server's Loki query API.

Entries go in through Loki's push API (JSON); the client then reads them
back as it reads Loki: a range log query with a line filter, an app query
that finds the app's label through `/labels`, `/label/{name}/values` and
`/series` and filters by severity, an instant metric query, the series
list, and the same with a token passed as a Basic password. Each answer is
checked against what was pushed.

The test starts `logtap serve` from LOGTAP_BIN, or from
target/debug/logtap, on a free port over a temporary data directory
(conftest.py).

Run: pip install loki-reader-core pytest && python3 -m pytest tests/python
"""

import json
import time
import urllib.request
import uuid

import pytest
from loki_reader_core import LokiClient
from loki_reader_core.exceptions import LokiAuthError, LokiQueryError

TOKEN = "reader-" + uuid.uuid4().hex
WRITER = "writer-" + uuid.uuid4().hex


def push(address, service, entries, token=None):
    """Pushes (level, line, ns) entries of `service` through /loki/api/v1/push."""
    streams = [
        {"stream": {"service": service, "level": level}, "values": [[str(ns), line]]}
        for level, line, ns in entries
    ]
    request = urllib.request.Request(
        f"http://{address}/loki/api/v1/push",
        data=json.dumps({"streams": streams}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 204


def sample(service):
    """Four entries of `service` over the last few minutes."""
    now = time.time_ns()
    minute = 60 * 10**9
    return [
        ("info", f"{service} started", now - 4 * minute),
        ("error", f"{service} GET /orders 500 timeout", now - 3 * minute),
        ("warn", f"{service} slow request 900ms", now - 2 * minute),
        ("error", f"{service} POST /pay 502 timeout", now - minute),
    ]


@pytest.fixture(scope="module")
def server(logtap_serve):
    address = logtap_serve()
    service = "svc-" + uuid.uuid4().hex[:8]
    entries = sample(service)
    push(address, service, entries)
    return address, service, entries


def test_a_range_query_returns_the_matching_lines_newest_first(server):
    address, service, entries = server
    with LokiClient(f"http://{address}") as client:
        now = time.time_ns()
        result = client.query_range(
            f'{{service="{service}"}} |= "timeout"',
            start=now - 3600 * 10**9,
            end=now,
            limit=10,
        )
    assert result.status == "success"
    assert result.result_type == "streams"
    got = [(entry.timestamp, entry.message) for stream in result.streams for entry in stream.entries]
    wanted = [(ns, line) for _, line, ns in entries if "timeout" in line]
    assert sorted(got, reverse=True) == sorted(wanted, reverse=True)
    for stream in result.streams:
        assert stream.labels["service"] == service
        assert stream.labels["level"] == "error"
    assert result.stats is not None and result.stats.exec_time_seconds >= 0


def test_an_app_query_discovers_the_labels_and_filters_by_severity(server):
    address, service, entries = server
    with LokiClient(f"http://{address}") as client:
        assert "service" in client.get_labels()
        assert service in client.get_label_values("service")
        result = client.query(app=service, severity="warn", limit=10)
    lines = sorted(entry.message for stream in result.streams for entry in stream.entries)
    assert lines == sorted(line for level, line, _ in entries if level in ("warn", "error"))


def test_a_metric_query_and_the_series_list(server):
    address, service, entries = server
    with LokiClient(f"http://{address}") as client:
        result = client.query(f'sum(count_over_time({{service="{service}"}}[1h])) by (level)')
        assert result.result_type == "vector"
        counts = {series.labels["level"]: series.samples[0].value for series in result.metric_series}
        assert counts == {"info": 1.0, "warn": 1.0, "error": 2.0}
        series = client.get_series([f'{{service="{service}", level="error"}}'])
        assert series == [{"service": service, "level": "error"}]
        with pytest.raises(LokiQueryError) as refused:
            client.query_range(f'{{service="{service}"', start=0, end=time.time_ns())
        assert "400" in str(refused.value) and "expected" in str(refused.value)


def test_a_token_goes_as_a_basic_password(logtap_serve, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{TOKEN} read\n{WRITER} write\n")
    address = logtap_serve("--auth-token-file", str(tokens))
    service = "svc-" + uuid.uuid4().hex[:8]
    push(address, service, sample(service), token=WRITER)
    with LokiClient(f"http://{address}", auth=("grafana", TOKEN)) as client:
        values = client.get_label_values("service")
        assert service in values
    with LokiClient(f"http://{address}", auth=("grafana", WRITER)) as client:
        with pytest.raises(LokiAuthError):
            client.get_labels()
    with LokiClient(f"http://{address}") as client:
        with pytest.raises(LokiAuthError):
            client.get_labels()

"""The OpenTelemetry Python SDK's OTLP log exporters (PyPI
`opentelemetry-sdk`, `opentelemetry-exporter-otlp-proto-http`,
`opentelemetry-exporter-otlp-proto-grpc`) against a real logtap server:
the HTTP one to `POST /v1/logs`, the gRPC one to `LogsService/Export` on
the same port.

Python's logging sends records at five levels, each with an attribute,
through the SDK's `LoggingHandler` under a resource with a `service.name`;
both exporters send protobuf, gzip-compressed. The test reads them back with
`logtap logs --output json` and checks each entry's message, level, time and
labels (the resource's `service.name`, also as `service`, and the record's
attributes).

The server:
  * LOGTAP_TEST_SERVER=HOST:PORT uses a server already running (the checks
    only look at this run's entries);
  * otherwise the test starts `logtap serve` from LOGTAP_BIN, or from
    target/debug/logtap, on a free port over a temporary data directory.
`logtap logs` comes from the same binary.

Run: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
         opentelemetry-exporter-otlp-proto-grpc pytest
     && python3 -m pytest tests/python
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
import warnings
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

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
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server answered /healthz on {address}")


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


def recording(exporter):
    """`exporter`, keeping each export's result: the SDK only logs a
    failure, and the test must fail with it."""
    results = []
    export = exporter.export

    def recorded(batch):
        result = export(batch)
        results.append(result)
        return result

    exporter.export = recorded
    return exporter, results


def http_exporter(address):
    return HttpLogExporter(endpoint=f"http://{address}/v1/logs", compression=Compression.Gzip, timeout=DEADLINE)


def grpc_exporter(address):
    from grpc import Compression as GrpcCompression

    return GrpcLogExporter(endpoint=f"http://{address}", insecure=True, compression=GrpcCompression.Gzip, timeout=DEADLINE)


@pytest.mark.parametrize("make_exporter", [http_exporter, grpc_exporter], ids=["http", "grpc"])
def test_otel_sdk_exporter_records_arrive_with_message_level_time_and_labels(address, make_exporter):
    run = uuid.uuid4().hex[:8]
    exporter, results = recording(make_exporter(address))
    provider = LoggerProvider(resource=Resource.create({"service.name": f"shop-{run}"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    # The SDK's handler is deprecated for opentelemetry-instrumentation-logging's
    # in newer releases; it still exports the same records.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger(f"otlp-test-{run}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    sent = [
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warn"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "fatal"),
    ]
    before = time.time_ns()
    try:
        for number, (level, _) in enumerate(sent):
            logger.log(level, "%s record %d", run, number, extra={"request": f"r{number}"})
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    after = time.time_ns()
    assert results and all(r.name == "SUCCESS" for r in results), results

    entries = read_back(address, run)
    assert [entry["message"] for entry in entries] == [f"{run} record {n}" for n in range(len(sent))]
    for number, (entry, (_, level)) in enumerate(zip(entries, sent)):
        assert entry["level"] == level, entry
        # The SDK stamps each record with the logging record's own time.
        assert before - 1_000_000 <= int(entry["timestamp"]) <= after + 1_000_000, entry
        labels = entry["labels"]
        assert labels["service.name"] == f"shop-{run}", entry
        assert labels["service"] == f"shop-{run}", entry
        assert labels["request"] == f"r{number}", entry
        assert labels.get("telemetry.sdk.language") == "python", entry

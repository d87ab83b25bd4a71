"""The real `elasticsearch` Python client (PyPI `elasticsearch`, 9.x)
against a real logtap server's Elasticsearch bulk API.

`Elasticsearch("http://HOST:PORT")` checks the server's product header on
its first answer; `helpers.bulk` sends documents with levels, times and
fields to several indices, with `index` and `create` actions; the test reads
them back with `logtap logs --output json` and checks each entry's message,
level, time and labels. A document whose time is no time is refused alone,
in its item. With tokens on, the client's `api_key=` (raw, and `(id, key)`)
and `basic_auth=` carry a write token, and a read token is refused (403).

Run: pip install elasticsearch pytest && python3 -m pytest tests/python
"""

import uuid

import pytest
from elasticsearch import AuthorizationException, Elasticsearch, helpers

READ = "read-token-0123456789abcdef"
WRITE = "write-token-0123456789abcdef"


def test_bulk_helper_documents_arrive_with_message_level_time_and_labels(logtap_serve, logtap_logs):
    address = logtap_serve()
    run = uuid.uuid4().hex[:8]
    client = Elasticsearch(f"http://{address}")
    info = client.info()
    assert info["version"]["number"].startswith("9."), info
    actions = [
        {
            "_index": "app-logs",
            "_source": {
                "@timestamp": "2024-05-01T12:00:00.250Z",
                "message": f"{run} started",
                "log": {"level": "info", "logger": "main"},
                "service": {"name": "api"},
                "http": {"status": 200},
            },
        },
        # Without `_source`, the helper sends the other keys as the document.
        {
            "_index": "app-logs",
            "@timestamp": 1714564801000,
            "message": f"{run} slow request",
            "level": "warning",
            "tags": ["slow", "db"],
        },
        {
            "_op_type": "create",
            "_index": "audit",
            "_id": f"{run}-3",
            "_source": {"@timestamp": "2024-05-01T14:00:02+02:00", "message": f"{run} denied", "log.level": "ERROR", "user": {"id": 7}},
        },
        {
            "_index": "app-logs",
            "_source": {"@timestamp": "2024-05-01T12:00:03Z", "message": f"{run} crashed", "level": "critical", "ok": False},
        },
    ]
    stored, errors = helpers.bulk(client, actions)
    assert (stored, errors) == (4, [])

    entries = logtap_logs(address, run)
    second = 1_714_564_800_000_000_000
    got = [(e["message"], e["level"], int(e["timestamp"]), e["labels"]) for e in entries]
    assert got == [
        (
            f"{run} started",
            "info",
            second + 250_000_000,
            {"index": "app-logs", "log.logger": "main", "service.name": "api", "http.status": "200"},
        ),
        (f"{run} slow request", "warn", second + 1_000_000_000, {"index": "app-logs", "tags": '["slow","db"]'}),
        (f"{run} denied", "error", second + 2_000_000_000, {"index": "audit", "user.id": "7"}),
        (f"{run} crashed", "fatal", second + 3_000_000_000, {"index": "app-logs", "ok": "false"}),
    ]

    # A bad document fails alone; the good one beside it is stored.
    stored, errors = helpers.bulk(
        client,
        [
            {"_index": "app-logs", "_source": {"message": f"{run} kept"}},
            {"_index": "app-logs", "_source": {"message": f"{run} refused", "@timestamp": "yesterday"}},
        ],
        raise_on_error=False,
    )
    assert stored == 1
    assert len(errors) == 1
    refused = errors[0]["index"]
    assert refused["status"] == 400, refused
    assert "@timestamp" in refused["error"]["reason"], refused
    messages = [e["message"] for e in logtap_logs(address, run)]
    assert f"{run} kept" in messages
    assert f"{run} refused" not in messages


def test_tokens_as_api_keys_and_basic_auth_and_a_read_token_is_refused(logtap_serve, logtap_logs, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read\n{WRITE} write\n")
    tokens.chmod(0o600)
    address = logtap_serve("--auth-token-file", str(tokens))
    url = f"http://{address}"
    run = uuid.uuid4().hex[:8]
    writers = {
        "raw api key": Elasticsearch(url, api_key=WRITE),
        "id and key": Elasticsearch(url, api_key=("logtap", WRITE)),
        "basic auth": Elasticsearch(url, basic_auth=("logtap", WRITE)),
    }
    for name, client in writers.items():
        stored, errors = helpers.bulk(client, [{"_index": "t", "_source": {"message": f"{run} {name}"}}])
        assert (stored, errors) == (1, []), name
    reader = Elasticsearch(url, api_key=READ)
    with pytest.raises(AuthorizationException) as refused:
        helpers.bulk(reader, [{"_index": "t", "_source": {"message": f"{run} read token"}}])
    assert refused.value.meta.status == 403
    messages = [e["message"] for e in logtap_logs(address, run, token=READ)]
    assert messages == [f"{run} {name}" for name in writers]

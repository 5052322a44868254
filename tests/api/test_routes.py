"""Every REST endpoint through a real server: answers, shapes and refusals."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import LiveServer

TIMEOUT = httpx.Timeout(20.0)
# The documented event shape: every event, in every answer, has exactly these fields.
EVENT_FIELDS = {"id", "timestamp", "tool_name", "user_source", "event_type", "status", "data", "duration_ms"}
EVENT_FIELDS |= {"error_message", "correlation_id", "session_id"}
UTC_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
ONE_MIB = 1024 * 1024


def _no_server_error(response: httpx.Response) -> None:
    response.read()
    assert response.status_code != 500, f"{response.request.method} {response.request.url}: {response.text}"
    assert "Traceback" not in response.text


@pytest.fixture
def client(feed_server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the live server that checks every answer: never a 500, never a stack trace."""
    hooks: dict[str, list[Any]] = {"response": [_no_server_error]}
    with httpx.Client(base_url=feed_server.url, timeout=TIMEOUT, event_hooks=hooks) as http:
        yield http


def log(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("event_type", "tool_call")
    response = client.post("/activities/log", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def detail_text(response: httpx.Response) -> str:
    body = response.json()
    assert "detail" in body
    return json.dumps(body["detail"])


def test_log_answers_201_with_the_whole_event(client: httpx.Client) -> None:
    response = client.post(
        "/activities/log",
        json={"tool_name": "search", "event_type": "tool_call", "data": {"q": "x"}, "duration_ms": 1.5},
    )

    assert response.status_code == 201
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert uuid.UUID(event["id"])
    assert UTC_ISO.match(event["timestamp"]), event["timestamp"]
    defaults = {"user_source": None, "status": "pending", "error_message": None, "correlation_id": None}
    defaults["session_id"] = None
    given = {"tool_name": "search", "event_type": "tool_call", "data": {"q": "x"}, "duration_ms": 1.5}
    assert {k: v for k, v in event.items() if k not in ("id", "timestamp")} == given | defaults
    assert client.get(f"/activities/{event['id']}").json() == event


def test_log_converts_a_client_timestamp_to_utc(client: httpx.Client) -> None:
    event = log(client, timestamp="2024-06-01T10:30:00+02:00")

    assert UTC_ISO.match(event["timestamp"])
    assert event["timestamp"].startswith("2024-06-01T08:30:00")


def test_log_replayed_with_the_same_id_answers_200_and_changes_nothing(client: httpx.Client) -> None:
    event_id = str(uuid.uuid4())
    first = log(client, id=event_id, tool_name="a", status="pending")

    replay = client.post(
        "/activities/log",
        json={"id": event_id, "event_type": "api_request", "tool_name": "b", "status": "error"},
    )

    assert replay.status_code == 200
    assert replay.json() == first
    assert client.get(f"/activities/{event_id}").json() == first


def test_the_original_curl_commands_log_and_list_an_event(client: httpx.Client) -> None:
    # curl -X POST /activities/log -H 'Content-Type: application/json' -d '{...}'
    posted = client.post(
        "/activities/log",
        content=b'{"tool_name": "test_tool", "user_source": "Test User", '
        b'"event_type": "tool_call", "status": "pending"}',
        headers={"Content-Type": "application/json"},
    )
    assert posted.status_code == 201

    # curl /activities/recent?limit=10
    recent = client.get("/activities/recent?limit=10")

    assert recent.status_code == 200
    [event] = recent.json()
    assert event == posted.json()
    shown = (event["tool_name"], event["user_source"], event["event_type"], event["status"])
    assert shown == ("test_tool", "Test User", "tool_call", "pending")


def test_batch_answers_counts_and_applies_creates_before_updates(client: httpx.Client) -> None:
    existing = log(client, tool_name="old")
    new_id = str(uuid.uuid4())

    response = client.post(
        "/activities/batch",
        json={
            "events": [
                {"id": new_id, "event_type": "tool_call"},
                {"id": existing["id"], "event_type": "tool_call"},
            ],
            "updates": [
                {"id": new_id, "status": "success", "data": {"r": 1}},
                {"id": str(uuid.uuid4()), "status": "error"},
            ],
        },
    )

    assert response.status_code == 200
    assert response.json() == {"created": 1, "existing": 1, "updated": 1, "missing": 1}
    stored = client.get(f"/activities/{new_id}").json()
    assert (stored["status"], stored["data"]) == ("success", {"r": 1})
    assert client.get(f"/activities/{existing['id']}").json() == existing


def test_batch_takes_1000_items_and_refuses_1001(client: httpx.Client) -> None:
    events = [{"event_type": "system_event", "data": {"i": i}} for i in range(1001)]

    too_many = client.post("/activities/batch", json={"events": events})
    too_many_updates = client.post(
        "/activities/batch", json={"updates": [{"id": str(uuid.uuid4())} for _ in range(1001)]}
    )
    mixed = client.post(
        "/activities/batch",
        json={"events": events[:600], "updates": [{"id": str(uuid.uuid4())} for _ in range(401)]},
    )
    assert client.get("/activities/recent").json() == []
    accepted = client.post("/activities/batch", json={"events": events[:1000]})

    assert too_many.status_code == 422
    assert "1000" in detail_text(too_many)
    assert too_many_updates.status_code == 422
    assert mixed.status_code == 422
    assert "events + updates" in detail_text(mixed)
    assert accepted.status_code == 200
    assert accepted.json() == {"created": 1000, "existing": 0, "updated": 0, "missing": 0}
    assert len(client.get("/activities/recent", params={"limit": 500}).json()) == 500


def test_patch_merges_data_and_answers_the_event(client: httpx.Client) -> None:
    event = log(client, data={"a": 1, "b": 2})

    response = client.patch(
        f"/activities/{event['id']}",
        json={"status": "error", "duration_ms": 30, "error_message": "boom", "data": {"b": 3, "c": 4}},
    )

    assert response.status_code == 200
    updated = response.json()
    assert set(updated) == EVENT_FIELDS
    assert updated == event | {
        "status": "error",
        "duration_ms": 30,
        "error_message": "boom",
        "data": {"a": 1, "b": 3, "c": 4},
    }
    assert client.get(f"/activities/{event['id']}").json() == updated


def test_get_answers_the_event_404_for_unknown_and_422_for_a_non_uuid(client: httpx.Client) -> None:
    event = log(client)

    assert client.get(f"/activities/{event['id']}").json() == event
    assert client.get(f"/activities/{uuid.uuid4()}").status_code == 404
    not_uuid = client.get("/activities/not-a-uuid")
    assert not_uuid.status_code == 422
    assert "uuid" in detail_text(not_uuid).lower()


def test_delete_answers_204_then_404_and_patch_answers_404(client: httpx.Client) -> None:
    event = log(client)

    deleted = client.delete(f"/activities/{event['id']}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get(f"/activities/{event['id']}").status_code == 404
    assert client.delete(f"/activities/{event['id']}").status_code == 404
    patched = client.patch(f"/activities/{event['id']}", json={"status": "success"})
    assert patched.status_code == 404
    assert event["id"] in detail_text(patched)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_type", "voice_command"),
        ("status", "error"),
        ("tool_name", "search"),
        ("user_source", "Claude Desktop"),
        ("correlation_id", "req-1"),
    ],
)
def test_recent_filters_by_each_field(client: httpx.Client, name: str, value: str) -> None:
    match = log(client, **{"event_type": "tool_call", name: value})
    other = {"status": "success", "tool_name": "o", "user_source": "me", "correlation_id": "r2"}
    log(client, event_type="api_request", **other)

    response = client.get("/activities/recent", params={name: value})

    assert response.status_code == 200
    assert response.json() == [match]


def test_recent_is_newest_first_and_limited(client: httpx.Client) -> None:
    events = [log(client, timestamp=f"2025-01-01T00:00:0{i}Z") for i in range(5)]

    assert client.get("/activities/recent").json() == events[::-1]
    assert client.get("/activities/recent", params={"limit": 2}).json() == events[:2:-1]


def test_recent_says_the_stream_cursor_its_page_was_read_at(client: httpx.Client) -> None:
    log(client)
    first = client.get("/activities/recent").headers["X-Stream-Cursor"]
    log(client)
    log(client, tool_name="other")

    # Two changes later, and the same on a page that no event matches.
    assert int(client.get("/activities/recent").headers["X-Stream-Cursor"]) == int(first) + 2
    empty = client.get("/activities/recent", params={"tool_name": "none"})
    assert empty.json() == []
    assert int(empty.headers["X-Stream-Cursor"]) == int(first) + 2


def test_recent_limit_must_be_between_1_and_500(client: httpx.Client) -> None:
    log(client)

    for limit in ("0", "501", "-1", "ten"):
        response = client.get("/activities/recent", params={"limit": limit})

        assert response.status_code == 422, limit
        assert "limit" in detail_text(response)
    assert len(client.get("/activities/recent", params={"limit": 1}).json()) == 1
    assert len(client.get("/activities/recent", params={"limit": 500}).json()) == 1


def test_recent_pages_back_with_before(client: httpx.Client) -> None:
    for i in range(7):
        log(client, timestamp=f"2025-01-01T00:00:0{i // 2}Z")
    everything = client.get("/activities/recent").json()

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    for _ in range(5):
        page = client.get("/activities/recent", params=params).json()
        if not page:
            break
        seen += page
        params["before"] = page[-1]["id"]

    assert seen == everything
    assert len(everything) == 7


def test_recent_before_an_unknown_event_answers_422(client: httpx.Client) -> None:
    missing = uuid.uuid4()

    response = client.get("/activities/recent", params={"before": str(missing)})

    assert response.status_code == 422
    assert str(missing) in detail_text(response)
    # The shape the OpenAPI schema declares for 422 (HTTPValidationError), like every other 422.
    assert response.json()["detail"][0]["loc"] == ["query", "before"]


ALLOWED = {
    "event_type": ["tool_call", "tool_result", "voice_command", "system_event", "api_request"],
    "status": ["pending", "success", "error"],
}


def test_a_wrong_enum_value_answers_422_naming_the_allowed_values(client: httpx.Client) -> None:
    for method, path, body, field in (
        ("POST", "/activities/log", {"event_type": "tool_cal"}, "event_type"),
        ("POST", "/activities/log", {"event_type": "tool_call", "status": "done"}, "status"),
        ("POST", "/activities/batch", {"events": [{"event_type": "x"}]}, "event_type"),
        ("GET", "/activities/recent?event_type=bogus", None, "event_type"),
        ("GET", "/activities/recent?status=bogus", None, "status"),
        ("PATCH", f"/activities/{uuid.uuid4()}", {"status": "finished"}, "status"),
    ):
        response = client.request(method, path, json=body)

        assert response.status_code == 422, (method, path, body)
        text = detail_text(response)
        assert field in text
        for value in ALLOWED[field]:
            assert f"'{value}'" in text, (path, body, value)
    assert client.get("/activities/recent").json() == []


def test_an_unknown_field_answers_422_naming_it(client: httpx.Client) -> None:
    event = log(client)

    for method, path, body, unknown in (
        ("POST", "/activities/log", {"event_type": "tool_call", "metadata": {}}, "metadata"),
        ("POST", "/activities/batch", {"events": [], "extra": 1}, "extra"),
        ("POST", "/activities/batch", {"events": [{"event_type": "tool_call", "colour": "red"}]}, "colour"),
        ("PATCH", f"/activities/{event['id']}", {"tool_name": "renamed"}, "tool_name"),
    ):
        response = client.request(method, path, json=body)

        assert response.status_code == 422, (path, body)
        assert unknown in detail_text(response)
    assert client.get("/activities/recent").json() == [event]


def test_malformed_json_answers_422(client: httpx.Client) -> None:
    event = log(client)

    for method, path in (
        ("POST", "/activities/log"),
        ("POST", "/activities/batch"),
        ("PATCH", f"/activities/{event['id']}"),
    ):
        response = client.request(
            method, path, content=b'{"event_type": "tool_call",', headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 422, path
        assert "json" in detail_text(response).lower()
    assert client.get("/activities/recent").json() == [event]


def _oversized_event() -> bytes:
    return json.dumps({"event_type": "tool_call", "data": {"blob": "x" * ONE_MIB}}).encode()


def test_a_body_over_1_mib_with_content_length_answers_413_in_json(client: httpx.Client) -> None:
    body = _oversized_event()

    response = client.post("/activities/log", content=body, headers={"Content-Type": "application/json"})

    assert response.request.headers["content-length"] == str(len(body))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert str(ONE_MIB) in response.json()["detail"]
    assert client.get("/activities/recent").json() == []


def test_a_chunked_body_over_1_mib_answers_413_in_json(client: httpx.Client) -> None:
    body = _oversized_event()
    chunks = [body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]

    response = client.post(
        "/activities/log", content=iter(chunks), headers={"Content-Type": "application/json"}
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert str(ONE_MIB) in response.json()["detail"]
    assert client.get("/activities/recent").json() == []


def test_a_body_of_exactly_1_mib_is_accepted(client: httpx.Client) -> None:
    # A batch, since one event's `data` is limited to 64 KiB: 22 events of ~47 KB, the last padded.
    events: list[dict[str, Any]] = [
        {"event_type": "tool_call", "data": {"blob": "x" * 47_000}} for _ in range(22)
    ]
    size = len(json.dumps({"events": events}))
    events[-1]["data"]["blob"] += "x" * (ONE_MIB - size)
    body = json.dumps({"events": events}).encode()
    assert len(body) == ONE_MIB

    response = client.post("/activities/batch", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 200, response.text
    assert response.json()["created"] == 22


def stat(*, count: int, errors: int, error_rate: float, p50: float, p95: float) -> dict[str, Any]:
    return {
        "tool_name": "t",
        "count": count,
        "errors": errors,
        "error_rate": error_rate,
        "p50_duration_ms": p50,
        "p95_duration_ms": p95,
    }


def test_stats_per_tool_with_and_without_since(client: httpx.Client) -> None:
    for ts, status, duration in (
        ("2025-01-01T00:00:00Z", "success", 100),
        ("2025-01-02T00:00:00Z", "error", 10),
        ("2025-01-03T00:00:00Z", "success", 20),
        ("2025-01-04T00:00:00Z", "success", 30),
    ):
        log(client, tool_name="t", timestamp=ts, status=status, duration_ms=duration)

    everything = client.get("/activities/stats")
    since = client.get("/activities/stats", params={"since": "2025-01-02T00:00:00Z"})
    later = client.get("/activities/stats", params={"since": "2025-01-05T00:00:00+00:00"})

    assert everything.status_code == since.status_code == later.status_code == 200
    assert everything.json() == [stat(count=4, errors=1, error_rate=0.25, p50=20.0, p95=100.0)]
    assert since.json() == [stat(count=3, errors=1, error_rate=0.3333, p50=20.0, p95=30.0)]
    assert later.json() == []
    # A `since` without a zone is UTC, like an event's timestamp.
    assert client.get("/activities/stats", params={"since": "2025-01-02T00:00:00"}).json() == since.json()
    assert client.get("/activities/stats", params={"since": "yesterday"}).status_code == 422


def test_health_answers_ok(client: httpx.Client) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_docs_and_openapi_answer_200(client: httpx.Client) -> None:
    docs = client.get("/docs")
    openapi = client.get("/openapi.json")

    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert openapi.status_code == 200
    paths = openapi.json()["paths"]
    assert {"/activities/log", "/activities/batch", "/activities/recent", "/health"} <= set(paths)


@pytest.mark.parametrize(
    "data",
    [{"note": "nul \u0000 here"}, {"nested": [{"k\u0000": 1}]}],
    ids=["in-a-value", "in-a-nested-key"],
)
def test_nul_characters_in_data_get_422_on_every_database(client: httpx.Client, data: dict[str, Any]) -> None:
    response = client.post("/activities/log", json={"event_type": "tool_call", "data": data})
    literal = client.post("/activities/log", json={"event_type": "tool_call", "data": {"k": "\\u0000"}})

    assert response.status_code == 422
    assert "NUL" in detail_text(response)
    assert literal.status_code == 201
    assert literal.json()["data"] == {"k": "\\u0000"}


def test_recent_since_keeps_events_from_that_moment_on_and_refuses_nonsense(client: httpx.Client) -> None:
    old = log(client, tool_name="since_probe", timestamp="2020-01-01T00:00:00Z")
    new = log(client, tool_name="since_probe", timestamp="2020-01-02T00:00:00Z")
    answer = client.get(
        "/activities/recent", params={"tool_name": "since_probe", "since": "2020-01-01T12:00"}
    )
    assert [event["id"] for event in answer.json()] == [new["id"]]
    both = client.get("/activities/recent", params={"tool_name": "since_probe", "since": "2019-12-31T00:00Z"})
    assert [event["id"] for event in both.json()] == [new["id"], old["id"]]
    fresh = client.get("/activities/recent", params={"tool_name": "since_probe", "since": "15m"})
    assert fresh.json() == []
    refused = client.get("/activities/recent", params={"since": "yesterday"})
    assert refused.status_code == 422
    assert "since: not a time or a duration" in refused.text

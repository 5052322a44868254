"""The ingest middleware (api/ingest.py) answers invalid bodies exactly as FastAPI's own routes would, and
refuse what the store could not hold (integers beyond 64 bits, dates out of range) with 422, not 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match

from activity_feed.api import create_app
from activity_feed.schemas import ActivityCreate, BatchRequest
from activity_feed.settings import Settings
from tests.support.server import LiveServer

INVALID_BODIES: list[bytes] = [
    b'{"event_type": "tool_cal"}',
    b'{"event_type": "tool_call", "status": "done", "colour": "red"}',
    b'{"event_type": "tool_call", "tool_name": "' + b"a" * 201 + b'"}',
    b'{"event_type": "tool_call", "duration_ms": -1, "id": "not-a-uuid"}',
    b'{"event_type": "tool_call", "data": []}',
    b'{"event_type": "tool_call",',
]
# Bodies FastAPI itself answers inconsistently (400 for bytes that are not UTF-8, "missing" for none at
# all): the feed answers every body it cannot read as JSON with one 422.
UNREADABLE_BODIES: list[tuple[bytes, str]] = [
    (b"\x80", "json_invalid"),
    (b"", "json_invalid"),
    (b"   ", "json_invalid"),
    (b"[]", "model_type"),  # FastAPI, validating the decoded list, says `model_attributes_type`
]


@pytest.fixture(scope="module")
def reference() -> Iterator[TestClient]:
    """Plain FastAPI routes taking the same models: what the answers must look like."""
    app = FastAPI()

    @app.post("/activities/log")
    async def log(event: ActivityCreate) -> None:
        return None

    @app.post("/activities/batch")
    async def batch(batch: BatchRequest) -> None:
        return None

    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(feed_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=feed_server.url, timeout=20) as http:
        yield http


def _shape(answer: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    # Messages may differ in wording between a JSON and a Python parse of the same body (pydantic says
    # where the JSON broke); the error types and where they are must not.
    return sorted((error["type"], tuple(error["loc"])) for error in answer["detail"])


@pytest.mark.parametrize("body", INVALID_BODIES)
@pytest.mark.parametrize("path", ["/activities/log", "/activities/batch"])
def test_an_invalid_body_is_answered_as_fastapi_would(
    client: httpx.Client, reference: TestClient, path: str, body: bytes
) -> None:
    if path == "/activities/batch" and body.startswith(b"{"):
        body = b'{"events": [' + body + b"]}"
    headers = {"Content-Type": "application/json"}

    ours = client.post(path, content=body, headers=headers)
    theirs = reference.post(path, content=body, headers=headers)

    assert ours.status_code == theirs.status_code == 422, ours.text
    if theirs.json()["detail"][0]["type"] == "json_invalid":
        assert [error["type"] for error in ours.json()["detail"]] == ["json_invalid"]
        assert ours.json()["detail"][0]["loc"][0] == "body"
    else:
        assert _shape(ours.json()) == _shape(theirs.json())
    assert client.get("/activities/recent").json() == []


@pytest.mark.parametrize(("body", "error_type"), UNREADABLE_BODIES)
@pytest.mark.parametrize("path", ["/activities/log", "/activities/batch"])
def test_a_body_that_is_not_a_json_object_answers_one_422(
    client: httpx.Client, path: str, body: bytes, error_type: str
) -> None:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    errors = [(error["type"], error["loc"]) for error in response.json()["detail"]]
    assert errors == [(error_type, ["body"])]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event_type": "tool_call", "data": {"n": 2**64}}, "data"),
        ({"event_type": "tool_call", "timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
    ],
)
def test_what_the_store_could_not_hold_answers_422_naming_the_field(
    client: httpx.Client, event: dict[str, Any], field: str
) -> None:
    logged = client.post("/activities/log", json=event)
    batched = client.post("/activities/batch", json={"events": [event]})

    assert logged.status_code == 422, logged.text
    assert logged.json()["detail"][0]["loc"] == ["body", field]
    assert batched.status_code == 422, batched.text
    assert batched.json()["detail"][0]["loc"] == ["body", "events", 0, field]
    assert client.get("/activities/recent").json() == []


def test_the_schema_declares_the_ingest_endpoints_and_no_route_serves_them(settings: Settings) -> None:
    app = create_app(settings)
    schema = app.openapi()

    log = schema["paths"]["/activities/log"]["post"]
    batch = schema["paths"]["/activities/batch"]["post"]
    assert log["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ActivityCreate")
    assert batch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchRequest")
    assert {"200", "201", "415", "422"} <= set(log["responses"])
    assert batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchResult")
    # One front door: routing has nothing for these requests; api/ingest.py alone answers them.
    for path in ("/activities/log", "/activities/batch"):
        scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": []}
        assert all(route.matches(scope)[0] is not Match.FULL for route in app.routes), path


def test_other_methods_and_chunked_bodies_on_the_ingest_paths(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the body arrives in pieces
        yield b'{"event_type": "tool_call", '
        yield b'"tool_name": "chunked"}'

    for path in ("/activities/log", "/activities/batch"):
        refused = client.put(path, json={})
        assert (refused.status_code, refused.headers["allow"]) == (405, "POST")
    created = client.post("/activities/log", content=chunks(), headers={"Content-Type": "application/json"})

    assert created.status_code == 201, created.text
    assert created.json()["tool_name"] == "chunked"
    assert [event["tool_name"] for event in client.get("/activities/recent").json()] == ["chunked"]


NOT_JSON_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400"]


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
def test_a_duration_that_is_not_a_finite_number_answers_422_naming_it(
    client: httpx.Client, number: bytes
) -> None:
    event = b'{"event_type": "tool_call", "duration_ms": ' + number + b"}"
    headers = {"Content-Type": "application/json"}

    logged = client.post("/activities/log", content=event, headers=headers)
    batched = client.post("/activities/batch", content=b'{"events": [' + event + b"]}", headers=headers)

    assert logged.status_code == 422, logged.text
    assert [error["loc"] for error in logged.json()["detail"]] == [["body", "duration_ms"]]
    assert batched.status_code == 422, batched.text
    assert [error["loc"] for error in batched.json()["detail"]] == [["body", "events", 0, "duration_ms"]]
    assert client.get("/activities/recent").json() == []


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
def test_data_holding_a_number_that_is_not_finite_answers_422_saying_where(
    client: httpx.Client, number: bytes
) -> None:
    event = b'{"event_type": "tool_call", "data": {"scores": [1.5, null, ' + number + b"]}}"
    headers = {"Content-Type": "application/json"}

    logged = client.post("/activities/log", content=event, headers=headers)
    batched = client.post("/activities/batch", content=b'{"events": [' + event + b"]}", headers=headers)

    assert logged.status_code == 422, logged.text
    (error,) = logged.json()["detail"]
    assert error["loc"] == ["body", "data"]
    assert "data.scores[2] is not a finite number" in error["msg"]
    assert batched.status_code == 422, batched.text
    assert batched.json()["detail"][0]["loc"] == ["body", "events", 0, "data"]
    assert client.get("/activities/recent").json() == []  # nothing stored, not even as null


def test_data_with_nulls_and_finite_numbers_is_stored_as_sent(client: httpx.Client) -> None:
    data = {"scores": [1.5, None, -2e300], "nested": {"none": None}}
    created = client.post("/activities/log", json={"event_type": "tool_call", "data": data})

    assert created.status_code == 201, created.text
    assert client.get(f"/activities/{created.json()['id']}").json()["data"] == data

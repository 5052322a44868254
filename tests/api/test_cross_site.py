"""Bodies must be declared JSON: a web page can POST `text/plain`, a form or multipart to any site without a
CORS preflight, so a feed that read such a body as JSON would take writes from any page. 415 instead,
over a real server, on every endpoint that takes a body; and an endpoint can declare other types."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from activity_feed import FeedClient
from activity_feed.api import create_app
from activity_feed.api.content_type import JSON_TYPES, ContentTypeMiddleware
from activity_feed.settings import Settings
from tests.support.server import LiveServer

WAIT_SECONDS = 10.0
EVENT = b'{"event_type": "tool_call", "tool_name": "cross_site"}'
BATCH = b'{"events": [{"event_type": "tool_call", "tool_name": "cross_site"}]}'
# What a page on another site can send without a preflight (the CORS-safelisted types), and no type at all.
SIMPLE_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    None,
]
JSON_SPELLINGS = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/json;charset=UTF-8",
    "application/merge-patch+json",
]


@pytest.fixture
def server(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    return live_server(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://"))


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT_SECONDS) as client:
        yield client


def typed(content_type: str | None) -> dict[str, str]:
    return {} if content_type is None else {"Content-Type": content_type}


def assert_unsupported(response: httpx.Response) -> None:
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["accept"] == "application/json"
    detail = response.json()["detail"]
    assert "Content-Type: application/json" in detail, detail


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
@pytest.mark.parametrize(("path", "body"), [("/activities/log", EVENT), ("/activities/batch", BATCH)])
def test_ingest_refuses_a_body_not_declared_json(
    http: httpx.Client, path: str, body: bytes, content_type: str | None
) -> None:
    response = http.post(path, content=body, headers=typed(content_type))

    assert_unsupported(response)
    assert http.get("/activities/recent").json() == []


def test_the_refusal_says_what_was_sent(http: httpx.Client) -> None:
    sent = http.post("/activities/log", content=EVENT, headers={"Content-Type": "text/plain"})
    missing = http.post("/activities/log", content=EVENT)

    assert "`text/plain`" in sent.json()["detail"]
    assert "no Content-Type" in missing.json()["detail"]


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
def test_patch_refuses_a_body_not_declared_json(http: httpx.Client, content_type: str | None) -> None:
    created = http.post("/activities/log", json={"event_type": "tool_call"}).json()

    response = http.patch(
        f"/activities/{created['id']}", content=b'{"status": "error"}', headers=typed(content_type)
    )

    assert_unsupported(response)
    assert http.get(f"/activities/{created['id']}").json()["status"] == "pending"


@pytest.mark.parametrize("content_type", JSON_SPELLINGS)
def test_every_spelling_of_json_is_accepted(http: httpx.Client, content_type: str) -> None:
    created = http.post("/activities/log", content=EVENT, headers={"Content-Type": content_type})
    batch = http.post("/activities/batch", content=BATCH, headers={"Content-Type": content_type})
    patched = http.patch(
        f"/activities/{created.json()['id']}",
        content=b'{"status": "success"}',
        headers={"Content-Type": content_type},
    )

    assert created.status_code == 201, created.text
    assert batch.status_code == 200, batch.text
    assert patched.status_code == 200, patched.text


def test_requests_without_a_body_need_no_content_type(http: httpx.Client) -> None:
    created = http.post("/activities/log", json={"event_type": "tool_call"}).json()

    assert http.get("/activities/recent").status_code == 200
    assert http.get("/health").status_code == 200
    assert http.delete(f"/activities/{created['id']}").status_code == 204


def test_the_feed_client_is_accepted(server: LiveServer, http: httpx.Client) -> None:
    # Its worker posts pre-encoded bytes (`content=`), declared JSON by a client-wide header.
    client = FeedClient(server.url)
    try:
        event_id = client.log(event_type="tool_call", tool_name="from_the_client")
        assert client.flush(timeout=WAIT_SECONDS)
    finally:
        client.close()

    assert http.get(f"/activities/{event_id}").status_code == 200


def test_the_schema_declares_415_on_every_endpoint_taking_a_body(tmp_path: Path) -> None:
    paths = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'schema.db'}")).openapi()["paths"]

    declared = {
        f"{method.upper()} {path}"
        for path, item in paths.items()
        for method, operation in item.items()
        if "415" in operation.get("responses", {})
    }
    assert declared == {
        "POST /activities/log",
        "POST /activities/batch",
        "PATCH /activities/{event_id}",
        "POST /v1/traces",
    }


def echo_app() -> ContentTypeMiddleware:
    """A JSON prefix, and within it a prefix taking protobuf or JSON (the longer prefix decides)."""
    app = FastAPI()

    @app.post("/api/{name:path}")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    accepted = {"/api": JSON_TYPES, "/api/traces": ("application/x-protobuf", "application/json")}
    return ContentTypeMiddleware(app, accepted=accepted)


@pytest.mark.parametrize(
    ("path", "content_type", "status"),
    [
        ("/api/traces", "application/x-protobuf", 200),
        ("/api/traces", "application/json", 200),
        ("/api/traces", "text/plain", 415),
        ("/api/events", "application/x-protobuf", 415),
        ("/api/events", "application/json", 200),
        ("/elsewhere", "text/plain", 404),  # no prefix declared: not this middleware's business
    ],
)
async def test_each_prefix_declares_the_types_it_takes(path: str, content_type: str, status: int) -> None:
    transport = httpx.ASGITransport(app=echo_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.post(path, content=b"\x0a\x00", headers={"Content-Type": content_type})

    assert response.status_code == status, response.text


async def test_the_refusal_lists_the_prefixs_own_types() -> None:
    transport = httpx.ASGITransport(app=echo_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.post("/api/traces", content=b"x", headers={"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert "application/x-protobuf or application/json" in response.json()["detail"]
    assert response.headers["accept"] == "application/x-protobuf, application/json"


def test_unknown_ids_are_still_refused_as_before(http: httpx.Client) -> None:
    # The type is checked before the route runs: a JSON body for a missing event is still a 404.
    missing = http.patch(f"/activities/{uuid.uuid4()}", json={"status": "error"})

    assert missing.status_code == 404

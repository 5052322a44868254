"""`POST /v1/traces` through a real server: both encodings, the answers the OTLP/HTTP specification asks
for, one event per call whatever arrives twice, and the stream seeing each stored span."""

from __future__ import annotations

import gzip
import sys
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from activity_feed.otlp.keys import request_key
from activity_feed.settings import Settings
from tests.api.test_stream import about, create, messages_until, open_stream, rest_client
from tests.otlp.exporters import json_body, protobuf_body
from tests.otlp.spans import SpanMaker, call_spans, hex_ids
from tests.support.server import LiveServer

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
Encoder = Callable[[list[ReadableSpan]], bytes]
ENCODINGS: dict[str, tuple[str, Encoder]] = {"protobuf": (PROTOBUF, protobuf_body), "json": (JSON, json_body)}


def post(server: LiveServer, body: bytes, content_type: str = PROTOBUF, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/traces", content=body, headers={"Content-Type": content_type, **headers}, timeout=10
    )


def recent(server: LiveServer, **query: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/activities/recent", params={"limit": 500, **query}, timeout=10)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found[::-1]


def accepted(response: httpx.Response, content_type: str) -> tuple[int, str]:
    """The rejected spans and the message of a 200 answer, read in its encoding."""
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == content_type
    if content_type == JSON:
        partial = response.json().get("partialSuccess", {})
        return int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")
    answer = ExportTraceServiceResponse.FromString(response.content)
    return answer.partial_success.rejected_spans, answer.partial_success.error_message


def refusal(response: httpx.Response) -> str:
    """The message of a refusal: a `google.rpc.Status` in the request's encoding."""
    if response.headers["content-type"] == JSON:
        body = response.json()
        assert body["detail"] == body["message"]
        return str(body["message"])
    assert response.headers["content-type"] == PROTOBUF
    return Status.FromString(response.content).message


@pytest.fixture
def makers() -> tuple[SpanMaker, SpanMaker]:
    return SpanMaker("claude-desktop", "0.9.2"), SpanMaker("property-mcp", "1.4.0")


@pytest.fixture
def sqlite_feed(live_server: Callable[..., LiveServer], tmp_path: Any) -> LiveServer:
    return live_server(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://"))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_export_stores_one_event_per_call_and_answers_in_its_encoding(
    feed_server: LiveServer, makers: tuple[SpanMaker, SpanMaker], encoding: str
) -> None:
    content_type, encode = ENCODINGS[encoding]
    client_span, server_span = call_spans(*makers, request_id="5")
    response = post(feed_server, encode([client_span, server_span]), content_type)
    assert accepted(response, content_type) == (0, "")
    [event] = recent(feed_server)
    trace_id = hex_ids(client_span)[0]
    assert event["id"] == str(request_key(trace_id, "5", "tools/call"))
    assert (event["tool_name"], event["event_type"], event["status"]) == ("add", "tool_call", "success")
    assert (event["correlation_id"], event["user_source"]) == (trace_id, "claude-desktop 0.9.2")
    mcp = event["data"]["mcp"]
    assert (mcp["source"], mcp["server"]["name"], mcp["client"]["name"]) == (
        "otlp",
        "property-mcp",
        "claude-desktop",
    )
    assert mcp["client_span"]["span_id"] == hex_ids(client_span)[1]
    assert mcp["server_span"]["span_id"] == hex_ids(server_span)[1]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_spans_the_feed_does_not_keep_are_counted_in_partial_success(
    sqlite_feed: LiveServer, makers: tuple[SpanMaker, SpanMaker], encoding: str
) -> None:
    content_type, encode = ENCODINGS[encoding]
    _, server = makers
    spans = [
        server.span("compute", kind=SpanKind.INTERNAL),
        server.span("SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}),
        server.span("tools/list", attributes={"mcp.method.name": "tools/list"}),
    ]
    rejected, message = accepted(post(sqlite_feed, encode(spans), content_type), content_type)
    assert rejected == 2
    assert message == "2 of the spans were not stored: 2 are neither MCP spans nor HTTP server spans"
    assert [event["tool_name"] for event in recent(sqlite_feed)] == ["tools/list"]


async def test_a_retried_export_changes_nothing(
    feed_server: LiveServer, makers: tuple[SpanMaker, SpanMaker]
) -> None:
    body = protobuf_body(list(call_spans(*makers)))
    assert post(feed_server, body).status_code == 200
    before = recent(feed_server)
    async with open_stream(feed_server) as ws, rest_client(feed_server) as http:
        assert post(feed_server, body).status_code == 200
        assert post(feed_server, gzip.compress(body), **{"Content-Encoding": "gzip"}).status_code == 200
        marker = await create(http, tool_name="marker")
        # The stream's next message is the marker's: the replays published nothing.
        [_message] = await messages_until(ws, about(marker["id"]))
    assert recent(feed_server)[:-1] == before


@pytest.mark.parametrize("server_first", [False, True], ids=["client first", "server first"])
async def test_views_sent_apart_merge_in_either_order_and_the_stream_sees_each(
    feed_server: LiveServer, makers: tuple[SpanMaker, SpanMaker], server_first: bool
) -> None:
    client_span, server_span = call_spans(
        *makers, server_attributes={"error.type": "tool_error"}, server_error="no property 9"
    )
    first, second = (server_span, client_span) if server_first else (client_span, server_span)
    async with open_stream(feed_server) as ws:
        assert post(feed_server, protobuf_body([first])).status_code == 200
        [logged] = await messages_until(ws, lambda message: True)
        assert post(feed_server, json_body([second]), JSON).status_code == 200
        [changed] = await messages_until(ws, about(logged["event"]["id"]))
    assert logged["type"] == "activity_logged"
    # The server's view says the call failed: the merge fails the event whose client view said success.
    assert changed["type"] == ("activity_updated" if server_first else "tool_failed")
    [event] = recent(feed_server)
    assert event == changed["event"]
    assert (event["status"], event["error_message"]) == ("error", "no property 9")
    assert {"client_span", "server_span"} <= event["data"]["mcp"].keys()
    assert event["timestamp"] == changed["event"]["data"]["mcp"]["client_span"]["start"].replace(
        "+00:00", "Z"
    )


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_read(
    sqlite_feed: LiveServer, makers: tuple[SpanMaker, SpanMaker], encoding: str
) -> None:
    body = protobuf_body(list(call_spans(*makers)))
    compressed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    assert accepted(post(sqlite_feed, compressed, **{"Content-Encoding": encoding}), PROTOBUF) == (0, "")
    assert len(recent(sqlite_feed)) == 1


@pytest.fixture
def small_feed(live_server: Callable[..., LiveServer], tmp_path: Any) -> LiveServer:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", max_body_bytes=256 * 1024
    )
    return live_server(settings)


def test_bodies_over_the_limit_are_refused_as_sent_or_once_inflated(small_feed: LiveServer) -> None:
    oversized = post(small_feed, b"\x0a" * (300 * 1024))
    assert oversized.status_code == 413
    assert refusal(oversized) == "the body is over 262144 bytes (ACTIVITY_FEED_MAX_BODY_BYTES)"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(300):
            yield b"\x0a" * 1024

    chunked = httpx.post(f"{small_feed.url}/v1/traces", content=chunks(), headers={"Content-Type": PROTOBUF})
    assert chunked.status_code == 413
    # 100 MB of zeros in about 100 KB of gzip: inflating stops just past the limit.
    bomb = gzip.compress(bytes(100 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 256 * 1024
    inflating = post(small_feed, bomb, JSON, **{"Content-Encoding": "gzip"})
    assert inflating.status_code == 413
    assert refusal(inflating) == "the body inflates to more than 262144 bytes (ACTIVITY_FEED_MAX_BODY_BYTES)"
    assert httpx.get(f"{small_feed.url}/health").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "says"),
    [
        (b"\xff\xff\xff", PROTOBUF, {}, "the body is not a protobuf ExportTraceServiceRequest"),
        (b"{not json", JSON, {}, "the body is not JSON"),
        (b"[1, 2]", JSON, {}, "the body must be a JSON object"),
        (b'{"resourceSpans": {"a": 1}}', JSON, {}, "the body is not an OTLP ExportTraceServiceRequest"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            JSON,
            {},
            "traceId must be hex digits in OTLP/JSON (got 'xyz')",
        ),
        (
            gzip.compress(b"{}", mtime=0)[:-6],  # no timestamp: the same test id in every collection
            JSON,
            {"Content-Encoding": "gzip"},
            "the gzip data ends before its end",
        ),
        (b"not gzip", PROTOBUF, {"Content-Encoding": "gzip"}, "the body is not valid gzip data"),
    ],
)
def test_bodies_that_cannot_be_decoded_get_400_saying_why(
    sqlite_feed: LiveServer, body: bytes, content_type: str, headers: dict[str, str], says: str
) -> None:
    response = post(sqlite_feed, body, content_type, **headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == content_type
    assert refusal(response).startswith(says)


def test_other_types_encodings_and_methods_are_refused(sqlite_feed: LiveServer) -> None:
    plain = post(sqlite_feed, b"{}", "text/plain")
    assert plain.status_code == 415
    assert plain.headers["accept"] == "application/x-protobuf, application/json"
    brotli = post(sqlite_feed, b"{}", JSON, **{"Content-Encoding": "br"})
    assert brotli.status_code == 415
    assert refusal(brotli) == "Content-Encoding 'br' is not supported: send gzip, deflate or none"
    assert httpx.get(f"{sqlite_feed.url}/v1/traces").status_code == 405


def test_the_write_token_is_required(live_server: Callable[..., LiveServer], tmp_path: Any) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}",
        broadcast_url="memory://",
        token=SecretStr("write-token-123"),
        read_token=SecretStr("read-token-456"),
    )
    server = live_server(settings)
    assert post(server, b"").status_code == 401
    assert post(server, b"", Authorization="Bearer read-token-456").status_code == 403
    assert post(server, b"", Authorization="Bearer write-token-123").status_code == 200


def test_without_a_token_only_the_feeds_own_host_names_are_answered(sqlite_feed: LiveServer) -> None:
    assert post(sqlite_feed, b"", Host="attacker.example").status_code == 421


def test_without_the_otlp_extra_the_endpoint_says_what_to_install(
    live_server: Callable[..., LiveServer], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "activity_feed.otlp.ingest", None)
    server = live_server(
        Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")
    )
    response = post(server, b"")
    assert response.status_code == 501
    assert "pip install '.[otlp]' in Activity Feed's folder" in response.json()["detail"]


def test_ids_do_not_collide_with_other_events(
    sqlite_feed: LiveServer, makers: tuple[SpanMaker, SpanMaker]
) -> None:
    """An event logged through the REST API keeps its id whatever spans arrive."""
    logged = httpx.post(
        f"{sqlite_feed.url}/activities/log", json={"id": str(uuid.uuid4()), "event_type": "tool_call"}
    ).json()
    assert post(sqlite_feed, protobuf_body(list(call_spans(*makers)))).status_code == 200
    assert {event["id"] for event in recent(sqlite_feed)} >= {logged["id"]}


def test_json_answers_are_plain_objects(sqlite_feed: LiveServer) -> None:
    response = post(sqlite_feed, orjson.dumps({}), JSON)
    assert response.json() == {}


@pytest.mark.parametrize(
    "changed", [{"target": {"a": 1}}, {"request_id": [1]}, {"request_id": True}], ids=repr
)
def test_a_view_arriving_for_an_event_changed_by_hand_is_stored_beside_it(
    sqlite_feed: LiveServer, makers: tuple[SpanMaker, SpanMaker], changed: dict[str, Any]
) -> None:
    client_span, server_span = call_spans(*makers, request_id="7")
    assert post(sqlite_feed, protobuf_body([client_span])).status_code == 200
    [event] = recent(sqlite_feed)
    mcp = {**event["data"]["mcp"], **changed}
    url = f"{sqlite_feed.url}/activities/{event['id']}"
    patched = httpx.patch(url, json={"data": {"mcp": mcp}}, timeout=5)
    assert patched.status_code == 200
    response = post(sqlite_feed, protobuf_body([server_span]))
    assert accepted(response, PROTOBUF) == (0, "")
    events = recent(sqlite_feed)
    assert len(events) == 2  # the server's view could not join a call it cannot read: it stands alone
    assert next(e for e in events if e["id"] == event["id"])["data"]["mcp"] == mcp


def test_the_openapi_schema_declares_the_endpoint_and_its_token(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", token=SecretStr("write-token"))
    server = live_server(settings)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        schema = http.get("/openapi.json").json()
        refused = http.post("/v1/traces", content=b"", headers={"Content-Type": PROTOBUF})
    operation = schema["paths"]["/v1/traces"]["post"]
    assert set(operation["requestBody"]["content"]) == {PROTOBUF, JSON}
    for status in ("200", "400", "413", "415", "429", "503"):
        assert set(operation["responses"][status]["content"]) == {PROTOBUF, JSON}, status
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert operation["security"] == [{"ActivityFeedToken": []}]
    # What the schema says of the token is what the endpoint does.
    assert refused.status_code == 401
    assert "401" in operation["responses"]

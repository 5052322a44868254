"""`ActivityLoggerMiddleware` on a small FastAPI app, observed through a recording sink (the sink protocol
is the seam), and once through a real server writing into a real feed store."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, HTTPException, Response, WebSocket
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from activity_feed import ActivityLoggerMiddleware
from activity_feed.api.feed import ActivityFeed
from activity_feed.schemas import ActivityCreate, EventStatus, EventType
from activity_feed.settings import Settings
from tests.support.server import LiveServer

SLOW_ROUTE_SECONDS = 0.05


class RecordingSink:
    """Keeps what it is given; `order` is shared with `ResponseOrder` to see when emit happened."""

    def __init__(self, order: list[str] | None = None) -> None:
        self.events: list[ActivityCreate] = []
        self.order = order if order is not None else []

    def emit(self, event: ActivityCreate) -> None:
        self.order.append("emit")
        self.events.append(event)


class FailingSink:
    def __init__(self) -> None:
        self.calls = 0

    def emit(self, event: ActivityCreate) -> None:
        self.calls += 1
        raise RuntimeError("sink is broken")


class ResponseOrder:
    """Outermost ASGI wrapper noting when the last response body message went out."""

    def __init__(self, app: ASGIApp, order: list[str]) -> None:
        self.app = app
        self.order = order

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def noting_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.order.append("response sent")

        await self.app(scope, receive, noting_send)


def build_app(static_dir: Path) -> FastAPI:
    """The user's app: a route template, a 404, a 503, a crash, a health check, static files, a socket."""
    app = FastAPI()

    @app.get("/properties/{property_id}")
    async def get_property(property_id: str) -> dict[str, str]:
        if property_id == "missing":
            raise HTTPException(404, detail="no such property")
        return {"id": property_id}

    @app.get("/maintenance")
    async def maintenance() -> Response:
        return Response("down for maintenance", status_code=503, headers={"Retry-After": "30"})

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom in the handler")

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await anyio.sleep(SLOW_ROUTE_SECONDS)
        return {"slow": True}

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello " + await websocket.receive_text())
        await websocket.close()

    stylesheet = static_dir / "app.css"
    if not stylesheet.exists():
        stylesheet.write_text("body { color: red; }")
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app


MakeClient = Callable[..., Awaitable[tuple[httpx.AsyncClient, RecordingSink]]]


def asgi_client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("testclient", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://app.test")


async def websocket_exchange(app: ASGIApp, path: str, text: str) -> list[Message]:
    """Drive one WebSocket session at the ASGI level: connect, send `text`, then hang up."""
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": text},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []
    scope: Scope = {"type": "websocket", "scheme": "ws", "path": path, "raw_path": path.encode()}
    scope |= {"root_path": "", "query_string": b"", "headers": [], "client": ("testclient", 50000)}

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """`await make_client(**middleware_options)`: a client of the wrapped app, and its sink."""
    clients: list[httpx.AsyncClient] = []

    async def make(**options: Any) -> tuple[httpx.AsyncClient, RecordingSink]:
        sink = options.pop("sink", None) or RecordingSink()
        static_dir = tmp_path / f"static{len(clients)}"
        static_dir.mkdir()
        app = build_app(static_dir)
        app.add_middleware(ActivityLoggerMiddleware, sink=sink, **options)
        client = asgi_client(app)
        clients.append(client)
        return client, sink

    yield make
    for client in clients:
        await client.aclose()


def only_event(sink: RecordingSink) -> ActivityCreate:
    assert len(sink.events) == 1, sink.events
    return sink.events[0]


async def test_one_api_request_event_per_request_named_by_route_template(make_client: MakeClient) -> None:
    client, sink = await make_client()

    for property_id in ("1", "2", "3"):
        assert (await client.get(f"/properties/{property_id}?expand=owner")).status_code == 200

    assert len(sink.events) == 3
    for property_id, event in zip(("1", "2", "3"), sink.events, strict=True):
        assert event.event_type == EventType.API_REQUEST
        assert event.tool_name == "GET /properties/{property_id}"
        assert event.status == EventStatus.SUCCESS
        assert event.error_message is None
        assert event.data["path"] == f"/properties/{property_id}"
        assert event.data["method"] == "GET"
        assert event.data["status_code"] == 200
        assert event.data["client"] == "testclient:50000"
        assert event.duration_ms is not None
        assert event.duration_ms >= 0


async def test_routes_of_a_mounted_app_are_named_by_their_full_template() -> None:
    sub_app = FastAPI()

    @sub_app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app, sink = FastAPI(), RecordingSink()
    app.mount("/api/v1", sub_app)
    app.add_middleware(ActivityLoggerMiddleware, sink=sink)
    async with asgi_client(app) as client:
        assert (await client.get("/api/v1/items/3")).status_code == 200

    event = only_event(sink)
    assert event.data["path"] == "/api/v1/items/3"
    assert event.tool_name == "GET /api/v1/items/{item_id}"


async def test_duration_covers_the_handler(make_client: MakeClient) -> None:
    client, sink = await make_client()

    assert (await client.get("/slow")).status_code == 200

    duration_ms = only_event(sink).duration_ms
    assert duration_ms is not None
    assert duration_ms >= SLOW_ROUTE_SECONDS * 1000


async def test_unmatched_path_is_named_by_raw_path(make_client: MakeClient) -> None:
    client, sink = await make_client()

    assert (await client.post("/no/such/page", json={})).status_code == 404

    event = only_event(sink)
    assert event.tool_name == "POST /no/such/page"
    assert event.data["method"] == "POST"
    assert event.data["status_code"] == 404
    assert event.status == EventStatus.SUCCESS


async def test_client_errors_are_success_events(make_client: MakeClient) -> None:
    client, sink = await make_client()

    assert (await client.get("/properties/missing")).status_code == 404

    event = only_event(sink)
    assert event.tool_name == "GET /properties/{property_id}"
    assert event.data["status_code"] == 404
    assert event.status == EventStatus.SUCCESS
    assert event.error_message is None


async def test_server_error_status_is_an_error_event(make_client: MakeClient) -> None:
    client, sink = await make_client()

    assert (await client.get("/maintenance")).status_code == 503

    event = only_event(sink)
    assert event.status == EventStatus.ERROR
    assert event.data["status_code"] == 503
    assert event.error_message is not None
    assert "503" in event.error_message


async def test_exception_in_the_app_is_an_error_event_naming_it(make_client: MakeClient) -> None:
    client, sink = await make_client()

    response = await client.get("/crash")

    assert response.status_code == 500
    event = only_event(sink)
    assert event.tool_name == "GET /crash"
    assert event.status == EventStatus.ERROR
    assert event.data["status_code"] == 500
    assert event.error_message is not None
    assert "RuntimeError" in event.error_message
    assert "boom in the handler" in event.error_message


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/properties/7", None),
        ("GET", "/properties/missing", None),
        ("GET", "/maintenance", None),
        ("GET", "/crash", None),
        ("POST", "/echo", {"a": [1, 2, 3], "b": "ü"}),
        ("GET", "/static/app.css", None),
        ("GET", "/nowhere", None),
    ],
)
async def test_response_is_unchanged_by_the_middleware(
    tmp_path: Path, method: str, path: str, body: dict[str, Any] | None
) -> None:
    plain = build_app(tmp_path)
    observed = build_app(tmp_path)
    sink = RecordingSink()
    observed.add_middleware(ActivityLoggerMiddleware, sink=sink)

    async with asgi_client(plain) as plain_client, asgi_client(observed) as observed_client:
        expected = await plain_client.request(method, path, json=body)
        actual = await observed_client.request(method, path, json=body)

    assert actual.status_code == expected.status_code
    assert actual.content == expected.content
    assert actual.headers.multi_items() == expected.headers.multi_items()


async def test_event_is_emitted_after_the_response_was_sent(tmp_path: Path) -> None:
    order: list[str] = []
    app = build_app(tmp_path)
    app.add_middleware(ActivityLoggerMiddleware, sink=RecordingSink(order))

    async with asgi_client(ResponseOrder(app, order)) as client:
        assert (await client.get("/properties/1")).status_code == 200

    assert order == ["response sent", "emit"]


@pytest.mark.parametrize("path", ["/health", "/static/app.css"])
async def test_health_checks_and_static_files_are_skipped(make_client: MakeClient, path: str) -> None:
    client, sink = await make_client()

    assert (await client.get(path)).status_code == 200

    assert sink.events == []


@pytest.mark.parametrize("include_websockets", [False, True])
async def test_websockets_are_skipped_unless_included(tmp_path: Path, include_websockets: bool) -> None:
    sink = RecordingSink()
    app = build_app(tmp_path)
    app.add_middleware(ActivityLoggerMiddleware, sink=sink, include_websockets=include_websockets)

    sent = await websocket_exchange(app, "/ws", "there")

    assert {"type": "websocket.send", "text": "hello there"} in sent
    if not include_websockets:
        assert sink.events == []
        return
    event = only_event(sink)
    assert event.event_type == EventType.API_REQUEST
    assert event.tool_name is not None
    assert event.tool_name.endswith(" /ws")
    assert event.data["path"] == "/ws"
    assert event.status == EventStatus.SUCCESS


async def test_custom_skip_paths_and_prefixes(make_client: MakeClient) -> None:
    client, sink = await make_client(skip_paths=("/maintenance",), skip_prefixes=("/properties/",))

    assert (await client.get("/maintenance")).status_code == 503
    assert (await client.get("/properties/1")).status_code == 200
    assert (await client.get("/slow")).status_code == 200

    assert [event.tool_name for event in sink.events] == ["GET /slow"]


async def test_failing_sink_does_not_fail_the_request(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FailingSink()
    client, _ = await make_client(sink=sink)

    with caplog.at_level(logging.WARNING):
        response = await client.get("/properties/5")

    assert response.status_code == 200
    assert response.json() == {"id": "5"}
    assert sink.calls == 1
    assert any("/properties/5" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("header", ["X-Request-ID", "X-Correlation-ID"])
async def test_correlation_id_comes_from_request_headers(make_client: MakeClient, header: str) -> None:
    client, sink = await make_client()

    await client.get("/properties/1", headers={header: "req-42"})
    await client.get("/properties/2")

    assert [event.correlation_id for event in sink.events] == ["req-42", None]


async def test_user_source_is_the_user_agent_unless_configured(make_client: MakeClient) -> None:
    client, sink = await make_client()
    named_client, named_sink = await make_client(user_source="billing-api")

    await client.get("/properties/1", headers={"User-Agent": "curl/8.0"})
    await named_client.get("/properties/1", headers={"User-Agent": "curl/8.0"})

    assert only_event(sink).user_source == "curl/8.0"
    assert only_event(named_sink).user_source == "billing-api"


def test_store_sink_records_requests_into_the_embedded_feed(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    app = FastAPI()

    @app.get("/properties/{property_id}")
    async def get_property(property_id: str) -> dict[str, str]:
        return {"id": property_id}

    feed = ActivityFeed(settings)
    feed.install(app)
    app.add_middleware(ActivityLoggerMiddleware, sink=feed.sink, skip_prefixes=("/activities",))
    server = live_server(app=app)

    with httpx.Client(base_url=server.url, timeout=5) as http:
        response = http.get("/properties/42", headers={"X-Request-ID": "embedded-1"})
        assert response.json() == {"id": "42"}

        deadline = time.monotonic() + 10
        events: list[dict[str, Any]] = []
        while not events:
            assert time.monotonic() < deadline, "the request never appeared in /activities/recent"
            recent = http.get("/activities/recent", params={"correlation_id": "embedded-1"})
            assert recent.status_code == 200
            events = recent.json()
            if not events:
                time.sleep(0.02)
        everything = http.get("/activities/recent").json()

    [event] = events
    assert event["event_type"] == "api_request"
    assert event["tool_name"] == "GET /properties/{property_id}"
    assert event["status"] == "success"
    assert event["data"]["path"] == "/properties/42"
    assert event["data"]["status_code"] == 200
    # Polling /activities/recent was skipped by the prefix, so the property request is all there is.
    assert [e["id"] for e in everything] == [event["id"]]

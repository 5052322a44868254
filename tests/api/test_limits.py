"""`BodySizeLimitMiddleware`: bodies over the limit get a JSON 413 whether or not they announce their size."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI, Request

from activity_feed.api.limits import BodySizeLimitMiddleware
from activity_feed.settings import Settings
from tests.support.server import LiveServer

LIMIT = 1000


def limited_app() -> BodySizeLimitMiddleware:
    """Echo routes inside and outside the limited prefix, behind a limit of `LIMIT` bytes."""
    app = FastAPI()

    @app.post("/activities/echo")
    async def limited_echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/uploads/echo")
    async def unlimited_echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return BodySizeLimitMiddleware(app, max_bytes=LIMIT, path_prefix="/activities")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as http:
        yield http


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    """`total` bytes in chunks of `size`, sent without a Content-Length (chunked)."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


def assert_too_large(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert str(limit) in detail


async def test_body_over_the_limit_with_content_length_gets_json_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/activities/echo", content=b"x" * (LIMIT + 1))

    assert_too_large(response, LIMIT)


async def test_chunked_body_over_the_limit_gets_json_413(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/activities/echo", content=chunks(LIMIT + 1))
    assert "content-length" not in request.headers

    response = await client.send(request)

    assert_too_large(response, LIMIT)


async def test_understated_content_length_is_still_limited(client: httpx.AsyncClient) -> None:
    # A client that lies about the length is caught while the body streams in.
    request = client.build_request("POST", "/activities/echo", content=chunks(LIMIT * 3))
    request.headers["Content-Length"] = "10"

    response = await client.send(request)

    assert_too_large(response, LIMIT)


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_at_the_limit_passes(client: httpx.AsyncClient, chunked: bool) -> None:
    content = chunks(LIMIT) if chunked else b"x" * LIMIT

    response = await client.post("/activities/echo", content=content)

    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}


@pytest.mark.parametrize("chunked", [False, True])
async def test_paths_outside_the_prefix_are_not_limited(client: httpx.AsyncClient, chunked: bool) -> None:
    content = chunks(LIMIT * 5) if chunked else b"x" * (LIMIT * 5)

    response = await client.post("/uploads/echo", content=content)

    assert response.status_code == 200
    assert response.json() == {"received": LIMIT * 5}


@pytest.fixture
def small_limit_server(live_server: Callable[..., LiveServer], settings: Settings) -> LiveServer:
    return live_server(settings.model_copy(update={"max_body_bytes": 2048}))


def padded_event(size: int) -> bytes:
    """A valid JSON event of exactly `size` bytes."""
    head, tail = b'{"event_type": "system_event", "tool_name": "limits", "data": {"pad": "', b'"}}'
    return head + b"p" * (size - len(head) - len(tail)) + tail


def test_the_feed_limits_log_requests_over_a_real_server(small_limit_server: LiveServer) -> None:
    with httpx.Client(base_url=small_limit_server.url, timeout=5) as http:
        at_limit = http.post(
            "/activities/log", content=padded_event(2048), headers={"Content-Type": "application/json"}
        )
        over = http.post(
            "/activities/log", content=padded_event(2049), headers={"Content-Type": "application/json"}
        )
        chunked_over = http.post(
            "/activities/log",
            content=iter([padded_event(4096)[:1000], padded_event(4096)[1000:]]),
            headers={"Content-Type": "application/json"},
        )
        stored = http.get("/activities/recent").json()

    assert at_limit.status_code == 201, at_limit.text
    assert_too_large(over, 2048)
    assert_too_large(chunked_over, 2048)
    assert [event["id"] for event in stored] == [at_limit.json()["id"]]

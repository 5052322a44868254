"""Fixtures for the MCP instrumentation tests: a real feed service, a real `FeedClient` pointed at it,
and helpers that read back what arrived.

Logging: `MCPServer()` calls `logging.basicConfig()` with a rich traceback handler, which renders a
failing tool's traceback slowly (about half a second per call). `basicConfig` does nothing when the root
logger already has a handler, and under pytest it always has one (pytest's capture handler), so tests
create their servers inside test functions and fixtures, never at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from activity_feed.client import FeedClient
from activity_feed.mcp import recorder, trace
from activity_feed.settings import Settings
from tests.support.server import LiveServer

CLIENT_INFO = {"name": "Claude Desktop", "version": "0.9.2"}
FLUSH_SECONDS = 5.0
WAIT_SECONDS = 15.0


@pytest.fixture
def sqlite_feed(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    """The feed on SQLite only, for behaviour that does not depend on the database."""
    return live_server(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://"))


@pytest.fixture
def make_client() -> Iterator[Callable[..., FeedClient]]:
    clients: list[FeedClient] = []

    def make(url: str, **options: Any) -> FeedClient:
        client = FeedClient(url, flush_interval=0.01, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1.0)


@pytest.fixture
def feed_client(sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]) -> FeedClient:
    return make_client(sqlite_feed.url)


@pytest.fixture
def tracer_provider() -> None:
    """A tracer provider set up, as an application that traces has one (set once per process: the
    OpenTelemetry API refuses to replace it); the instrumentation looks at the current span only then."""
    from opentelemetry import trace as otel

    if type(otel.get_tracer_provider()) is otel.ProxyTracerProvider:
        otel.set_tracer_provider(otel.NoOpTracerProvider())
    trace.recheck_tracing()


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    """The instrumentation warns once per kind per process; each test starts with none said."""
    recorder._warned.clear()
    yield
    recorder._warned.clear()


def events(client: FeedClient, feed: LiveServer, **query: Any) -> list[dict[str, Any]]:
    """Flush `client` (bounded), then the feed's events matching `query`, oldest first."""
    assert client.flush(FLUSH_SECONDS), "the client did not flush in time"
    response = httpx.get(f"{feed.url}/activities/recent", params={"limit": 500, **query}, timeout=5)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found[::-1]


def only_event(client: FeedClient, feed: LiveServer, **query: Any) -> dict[str, Any]:
    found = events(client, feed, **query)
    assert len(found) == 1, found
    return found[0]


def by_name(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Events by `tool_name` (the last of each name)."""
    return {event["tool_name"]: event for event in found}


async def wait_for_events(
    url: str, predicate: Callable[[list[dict[str, Any]]], bool], **query: Any
) -> list[dict[str, Any]]:
    """Poll the feed at `url` until `predicate(events)` (oldest first) holds; fail after WAIT_SECONDS."""
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as http:
        with anyio.move_on_after(WAIT_SECONDS):
            while True:
                response = await http.get("/activities/recent", params={"limit": 500, **query})
                response.raise_for_status()
                found = response.json()[::-1]
                if predicate(found):
                    return found
                await anyio.sleep(0.02)
    pytest.fail(f"the feed did not reach the expected state within {WAIT_SECONDS} s; it holds {found}")

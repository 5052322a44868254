"""Fixtures for the example server and API: a throwaway dataset, the feed on SQLite, the MCP server as a
real stdio subprocess under the real MCP client, and stand-ins for a feed that is down or hangs."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import Implementation

from activity_feed.settings import Settings
from tests.support.peers import HangingServer
from tests.support.server import LiveServer

CLIENT_NAME = "pytest-stdio-client"
CLIENT_VERSION = "1.2.3"
# Generous for a loaded CI machine, yet far below the 5 s network timeout a blocking tool would show.
PROMPT_SECONDS = 1.0
CALL_TIMEOUT_SECONDS = 10.0
WAIT_SECONDS = 15.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """These tests exercise the example and its transport, not the database: SQLite is enough."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "properties.db"


def server_parameters(feed_url: str, db_path: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "activity_feed.examples.property_mcp"],
        env={"ACTIVITY_FEED_URL": feed_url, "PROPERTY_DB_PATH": str(db_path)},
    )


@asynccontextmanager
async def stdio_session(feed_url: str, db_path: Path) -> AsyncIterator[Client]:
    """The example server as a subprocess, under the real MCP client, reporting to `feed_url`."""
    # read_timeout_seconds bounds every request, the handshake included; the SDK bounds the shutdown.
    async with Client(
        server_parameters(feed_url, db_path),
        client_info=Implementation(name=CLIENT_NAME, version=CLIENT_VERSION),
        read_timeout_seconds=CALL_TIMEOUT_SECONDS,
    ) as client:
        yield client


async def wait_for_events(
    feed_url: str, predicate: Callable[[list[dict[str, Any]]], bool], **params: Any
) -> list[dict[str, Any]]:
    """Poll `/activities/recent` until `predicate(events)` holds; fail after WAIT_SECONDS."""
    events: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=feed_url, timeout=5.0) as http:
        with anyio.move_on_after(WAIT_SECONDS):
            while True:
                response = await http.get("/activities/recent", params={"limit": 500, **params})
                response.raise_for_status()
                events = response.json()
                if predicate(events):
                    return events
                await anyio.sleep(0.05)
    pytest.fail(f"the feed did not reach the expected state within {WAIT_SECONDS} s; it holds {events}")


def settled(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """At least `count` events, none of them still pending."""
    return lambda events: len(events) >= count and all(event["status"] != "pending" for event in events)


@pytest.fixture
def start_on_port(live_server: Callable[..., LiveServer], settings: Settings) -> Callable[[int], LiveServer]:
    """Start the feed on a given port: the feed coming back where the client expects it."""
    return lambda port: live_server(settings, port=port)


@pytest.fixture
def hanging_feed() -> Iterator[str]:
    """The URL of a socket that accepts connections and never answers."""
    hanging = HangingServer()
    yield hanging.url
    hanging.stop()

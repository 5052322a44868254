"""A feed with a known history, for the feed's own MCP tools to read: tool calls that succeeded and failed
in two sessions within the last hour, and older ones that a `since` of one hour leaves out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.settings import Settings
from tests.support.server import LiveServer

WRITE_TOKEN = "feed-write-token"
READ_TOKEN = "feed-read-token"


def _ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def history() -> list[dict[str, Any]]:
    """Newest last. Timestamps are relative to now, so that `since="1h"` takes the first four only."""
    return [
        {"event_type": "api_request", "tool_name": "GET /properties", "status": "success",
         "duration_ms": 3.0, "timestamp": _ago(180)},
        {"event_type": "tool_call", "tool_name": "book_viewing", "status": "error", "session_id": "sess-b",
         "error_message": "slot taken", "duration_ms": 20.0, "timestamp": _ago(120)},
        {"event_type": "tool_call", "tool_name": "search_properties", "status": "success",
         "session_id": "sess-a", "user_source": "Claude Desktop 0.9.2", "duration_ms": 40.0,
         "timestamp": _ago(10)},
        {"event_type": "tool_call", "tool_name": "search_properties", "status": "error",
         "session_id": "sess-a", "user_source": "Claude Desktop 0.9.2", "duration_ms": 5000.0,
         "error_message": "timeout after 5 s", "data": {"arguments": {"city": "Leeds"}},
         "timestamp": _ago(5)},
        {"event_type": "tool_call", "tool_name": "get_property", "status": "success", "session_id": "sess-b",
         "duration_ms": 12.5, "timestamp": _ago(2)},
    ]  # fmt: skip


def seed(feed: LiveServer, token: str | None = None) -> list[dict[str, Any]]:
    """Store `history()` in `feed`; answers the stored events as the REST API shows them, newest first."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=feed.url, headers=headers, timeout=10) as http:
        http.post("/activities/batch", json={"events": history()}).raise_for_status()
        stored = http.get("/activities/recent", params={"limit": 50})
        stored.raise_for_status()
    events: list[dict[str, Any]] = stored.json()
    assert len(events) == len(history())
    return events


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The tools read the REST API, whose answers do not depend on the database: SQLite is enough."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")


@pytest.fixture
def seeded_feed(live_server: Callable[..., LiveServer], sqlite_settings: Settings) -> LiveServer:
    feed = live_server(sqlite_settings)
    seed(feed)
    return feed


@pytest.fixture
def guarded_feed(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    """The feed with a write token and a read token."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'guarded.db'}",
        broadcast_url="memory://",
        token=WRITE_TOKEN,
        read_token=READ_TOKEN,
    )
    feed = live_server(settings)
    seed(feed, WRITE_TOKEN)
    return feed

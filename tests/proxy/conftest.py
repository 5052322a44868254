"""Fixtures for the proxy's tests: a real feed service on SQLite (what the proxy records does not
depend on the database) and a way to read back what it stored."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.settings import Settings
from tests.support.server import LiveServer

WAIT_SECONDS = 15.0


@pytest.fixture
def sqlite_feed(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    return live_server(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://"))


def stored(url: str, **query: Any) -> list[dict[str, Any]]:
    """The feed's events matching `query`, oldest first."""
    response = httpx.get(f"{url}/activities/recent", params={"limit": 500, **query}, timeout=5.0)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found[::-1]


def wait_until(
    url: str, predicate: Callable[[list[dict[str, Any]]], bool], **query: Any
) -> list[dict[str, Any]]:
    """Poll the feed until `predicate(events)` (oldest first) holds; fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = stored(url, **query)
        if predicate(found):
            return found
        time.sleep(0.02)
    pytest.fail(f"the feed did not reach the expected state within {WAIT_SECONDS} s; it holds {found}")


def settled(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """At least `count` events, none pending."""
    return lambda found: len(found) >= count and all(event["status"] != "pending" for event in found)


def by_name(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["tool_name"]: event for event in found}

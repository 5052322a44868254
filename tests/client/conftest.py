"""Fixtures for the client tests: a feed on SQLite (when one database is enough) and clients that are
always closed after the test, so no worker thread outlives it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from activity_feed.client import FeedClient
from activity_feed.settings import Settings
from tests.support.server import LiveServer


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")


@pytest.fixture
def sqlite_feed(live_server: Callable[..., LiveServer], sqlite_settings: Settings) -> LiveServer:
    """The feed service on SQLite only, for behaviour that does not depend on the database."""
    return live_server(sqlite_settings)


@pytest.fixture
def make_client() -> Iterator[Callable[..., FeedClient]]:
    clients: list[FeedClient] = []

    def make(url: str, **options: Any) -> FeedClient:
        client = FeedClient(url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1.0)

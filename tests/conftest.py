"""Shared fixtures: the databases every store and API test runs on, and a real server on a free port.

PostgreSQL comes from ACTIVITY_FEED_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
When it does not answer, its tests are skipped with the reason, unless CI=true or
ACTIVITY_FEED_REQUIRE_SERVICES=1, where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from activity_feed.settings import Settings
from activity_feed.store import ActivityStore
from tests.support.requirements import unavailable
from tests.support.server import LiveServer

POSTGRES_URL = os.environ.get("ACTIVITY_FEED_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test a node id of its own, and refuse a collection where two still share one.

    Schemathesis 4 on pytest 9 gives each operation's test (tests/api/test_fuzz.py) its function's node
    id, not its name with the operation; pytest-xdist, which schedules tests by node id (`make test`),
    would then run one operation of them all and count the rest as never collected.
    """
    seen: set[str] = set()
    for item in items:
        if item.parent is not None and not item.nodeid.endswith(f"::{item.name}"):
            # pytest 9 keeps node ids structured (`Node._id`); made again from the item's full name.
            item._id = item.parent.id.child(item.name)  # type: ignore[attr-defined]
        if item.nodeid in seen:
            raise pytest.UsageError(f"two tests share the node id {item.nodeid}")
        seen.add(item.nodeid)


@pytest.fixture
def anyio_backend() -> str:
    # Every `async def` test runs on asyncio (anyio_mode = "auto" in pyproject.toml).
    return "asyncio"


def _unavailable(reason: str) -> None:
    unavailable(
        f"PostgreSQL is not available at {POSTGRES_URL}: {reason} "
        "(set ACTIVITY_FEED_TEST_POSTGRES_URL to run these tests)"
    )


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, created on the PostgreSQL server and dropped after."""
    name = f"activity_feed_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unavailable(f"{type(exc).__name__}: {exc}")
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _reset_postgres(url: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feed.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The URL of an empty PostgreSQL database, for behaviour that only PostgreSQL has."""
    asyncio.run(_reset_postgres(postgres_database))
    return postgres_database


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, broadcast_url="memory://")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ActivityStore]:
    """A started store on an empty, migrated database."""
    activity_store = ActivityStore(database_url)
    await activity_store.start()
    yield activity_store
    await activity_store.close()


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Start `create_app(settings)` (or any app) under uvicorn on `port` (a free one by default);
    stopped after the test."""
    servers: list[LiveServer] = []

    def start(settings: Settings | None = None, *, app: object = None, port: int = 0) -> LiveServer:
        server = LiveServer.for_settings(settings, port) if app is None else LiveServer(app, port)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def feed_server(live_server: Callable[..., LiveServer], settings: Settings) -> LiveServer:
    """The feed service on the parametrised database, served by uvicorn on a free port."""
    return live_server(settings)

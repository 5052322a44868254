"""Migrations: `activity-feed db upgrade` on an empty database, run twice, and down to base and back up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import alembic_config, upgrade
from activity_feed.store.schema import metadata

FEED_TABLES = {"activity_events", "activity_deletions", "activity_change_counter"}
EVENT_INDEXES = {
    "ix_activity_events_recent",
    "ix_activity_events_event_type",
    "ix_activity_events_status",
    "ix_activity_events_tool_name",
    "ix_activity_events_user_source",
    "ix_activity_events_correlation_id",
}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine `upgrade` runs on in the service: the reader's (aiosqlite or asyncpg)."""
    reader = create_reader_engine(database_url)
    yield reader
    await reader.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _event_indexes(connection: Connection) -> set[str]:
    return {ix["name"] for ix in sa.inspect(connection).get_indexes("activity_events") if ix["name"]}


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_tables)


async def scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(sql))).scalar_one()


def _run_alembic(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def alembic(engine: AsyncEngine, action: str, revision: str) -> None:
    async with engine.connect() as conn:
        await conn.run_sync(_run_alembic, action, revision)
        await conn.commit()


async def test_upgrade_creates_the_tables_on_an_empty_database(engine: AsyncEngine) -> None:
    assert not (await tables(engine)) & FEED_TABLES

    await upgrade(engine)

    assert await tables(engine) >= FEED_TABLES
    async with engine.connect() as conn:
        assert await conn.run_sync(_event_indexes) >= EVENT_INDEXES
    assert await scalar(engine, "SELECT version_num FROM alembic_version") == "0002"
    assert await scalar(engine, "SELECT value FROM activity_change_counter WHERE id = 1") == 0


async def test_upgrade_twice_changes_nothing_and_keeps_the_data(
    engine: AsyncEngine, database_url: str
) -> None:
    await upgrade(engine)
    store = ActivityStore(database_url)
    await store.start(migrate=False)
    event, _ = await store.create(event=ActivityCreate(event_type=EventType.SYSTEM_EVENT, data={"k": "v"}))
    await store.close()

    await upgrade(engine)

    assert await tables(engine) >= FEED_TABLES
    assert await scalar(engine, "SELECT count(*) FROM alembic_version") == 1
    assert await scalar(engine, "SELECT count(*) FROM activity_change_counter") == 1
    assert await scalar(engine, "SELECT value FROM activity_change_counter WHERE id = 1") == 1
    store = ActivityStore(database_url)
    await store.start()  # migrates once more on start
    try:
        assert await store.get(event_id=event.id) == event
    finally:
        await store.close()


async def test_migration_downgrades_to_base_and_upgrades_again(
    engine: AsyncEngine, database_url: str
) -> None:
    await upgrade(engine)

    await alembic(engine, "downgrade", "base")

    assert not (await tables(engine)) & FEED_TABLES
    assert await scalar(engine, "SELECT count(*) FROM alembic_version") == 0

    await alembic(engine, "upgrade", "head")

    assert await tables(engine) >= FEED_TABLES
    async with engine.connect() as conn:
        assert await conn.run_sync(_event_indexes) >= EVENT_INDEXES
    assert await scalar(engine, "SELECT version_num FROM alembic_version") == "0002"
    # The upgraded schema works: the store writes and reads on it.
    store = ActivityStore(database_url)
    await store.start(migrate=False)
    try:
        event, created = await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL))
        assert created
        assert await store.get(event_id=event.id) == event
        assert await store.last_change() == 1
    finally:
        await store.close()


async def test_migration_matches_the_table_definitions(engine: AsyncEngine) -> None:
    await upgrade(engine)

    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {t: {col["name"] for col in sa.inspect(c).get_columns(t)} for t in FEED_TABLES}
        )
    assert columns == {t: {col.name for col in metadata.tables[t].columns} for t in FEED_TABLES}

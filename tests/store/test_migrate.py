"""Migrations: `activity-feed db upgrade` on an empty database, run twice, down to base and back up,
and each revision over the events already stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from activity_feed.schemas import ActivityCreate, EventStatus, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import alembic_config, upgrade
from activity_feed.store.schema import EVENT_TYPES, STATUSES, activity_events, metadata

HEAD = "0005"
FEED_TABLES = {
    "activity_events",
    "activity_deletions",
    "activity_change_counter",
    "activity_sessions",
    "activity_event_counts",
}
EVENT_INDEXES = {
    "ix_activity_events_recent",
    "ix_activity_events_event_type",
    "ix_activity_events_status",
    "ix_activity_events_tool_name",
    "ix_activity_events_user_source",
    "ix_activity_events_correlation_id",
    "ix_activity_events_session_id",
}
# The event types before revision 0004 added the MCP ones.
TYPES_BEFORE_0004 = [
    kind for kind in EventType if kind not in (EventType.MCP_REQUEST, EventType.MCP_NOTIFICATION)
]


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
    assert await scalar(engine, "SELECT version_num FROM alembic_version") == HEAD
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
    assert await scalar(engine, "SELECT version_num FROM alembic_version") == HEAD
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


async def check_definitions(engine: AsyncEngine) -> str:
    """The text of activity_events' two CHECK constraints, as the database holds them."""
    if engine.url.get_backend_name() == "sqlite":
        sql = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'activity_events'"
        table = str(await scalar(engine, sql))
        return " ".join(line for line in table.splitlines() if "CHECK" in line)
    sql = (
        "SELECT string_agg(pg_get_constraintdef(oid), ' ' ORDER BY conname) FROM pg_constraint "
        "WHERE conrelid = 'activity_events'::regclass AND contype = 'c'"
    )
    return str(await scalar(engine, sql))


def checks_a_list(definitions: str) -> bool:
    """Whether a check tests membership of a list: IN on SQLite, which PostgreSQL shows as `= ANY`."""
    return " IN (" in definitions or "= ANY (" in definitions


async def insert_raw(engine: AsyncEngine, seq: int, event_type: str, status: str) -> None:
    """One row written past the store, so that only the database's own checks stand in the way."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(activity_events).values(
                seq=seq,
                id=uuid.uuid4(),
                timestamp=datetime.now(UTC),
                event_type=event_type,
                status=status,
                data={},
                updated_at=datetime.now(UTC),
                change_seq=seq,
            )
        )


async def test_the_checks_are_rewritten_without_in_and_keep_every_event(engine: AsyncEngine) -> None:
    await upgrade(engine, "0002")
    for seq, kind in enumerate(TYPES_BEFORE_0004, 1):
        await insert_raw(engine, seq, kind.value, "success")
    assert checks_a_list(await check_definitions(engine))

    await upgrade(engine, "0003")

    checks = await check_definitions(engine)
    assert not checks_a_list(checks)
    assert all(f"'{value}'" in checks for value in (*(kind.value for kind in TYPES_BEFORE_0004), *STATUSES))
    assert await scalar(engine, "SELECT count(*) FROM activity_events") == len(TYPES_BEFORE_0004)
    # The rule itself is unchanged: every valid value goes in, anything else is refused.
    for seq, (kind, status) in enumerate(
        zip(TYPES_BEFORE_0004, [*EventStatus, *EventStatus], strict=False), 100
    ):
        await insert_raw(engine, seq, kind.value, status.value)
    for bad in ({"event_type": "tool", "status": "success"}, {"event_type": "tool_call", "status": "done"}):
        with pytest.raises(sa.exc.IntegrityError):
            await insert_raw(engine, 200, **bad)


async def test_the_checks_downgrade_to_their_in_form(engine: AsyncEngine) -> None:
    await upgrade(engine)

    await alembic(engine, "downgrade", "0002")

    assert checks_a_list(await check_definitions(engine))
    with pytest.raises(sa.exc.IntegrityError):
        await insert_raw(engine, 1, "tool", "success")
    await insert_raw(engine, 1, "tool_call", "success")


async def test_on_sqlite_seq_is_still_the_rowid_after_the_table_is_copied(tmp_path: Path) -> None:
    engine = create_reader_engine(f"sqlite:///{tmp_path / 'feed.db'}")
    try:
        await upgrade(engine, "0002")
        await insert_raw(engine, 7, "tool_call", "pending")

        await upgrade(engine)

        async with engine.connect() as conn:
            query = "EXPLAIN QUERY PLAN SELECT * FROM activity_events WHERE seq = 7"
            plan = (await conn.execute(sa.text(query))).all()
            indexes = await conn.run_sync(_event_indexes)
            rowid = (await conn.execute(sa.text("SELECT rowid FROM activity_events"))).scalar_one()
    finally:
        await engine.dispose()
    assert "INTEGER PRIMARY KEY" in plan[0][-1]
    assert indexes >= EVENT_INDEXES
    assert rowid == 7


def test_the_schema_allows_exactly_the_values_of_the_enums() -> None:
    assert tuple(member.value for member in EventType) == EVENT_TYPES
    assert tuple(member.value for member in EventStatus) == STATUSES

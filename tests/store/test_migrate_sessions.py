"""Revision 0004 (sessions) over the events already stored: kept as they were, without a session, the
new event types accepted, the summary table in place; and back down to 0003."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from activity_feed.schemas import ActivityCreate, EventStatus, EventType
from activity_feed.store import ActivityStore, RecentQuery
from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import upgrade
from activity_feed.store.schema import activity_events
from tests.store.test_migrate import HEAD, alembic, insert_raw, scalar

OLD_TYPES = ("tool_call", "tool_result", "voice_command", "system_event", "api_request")
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    reader = create_reader_engine(database_url)
    yield reader
    await reader.dispose()


# activity_events as revision 0003 left it: without session_id.
OLD_EVENTS = sa.table(
    "activity_events",
    # The same types, so that both databases get the values encoded as the store encodes them.
    *(
        sa.column(column.name, column.type)
        for column in activity_events.columns
        if column.name != "session_id"
    ),
)


async def insert_old_rows(engine: AsyncEngine, count: int) -> list[uuid.UUID]:
    """Events as revision 0003 stored them, written past the store."""
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "seq": n,
            "id": event_id,
            "timestamp": START + timedelta(seconds=n),
            "tool_name": f"tool_{n % 3}",
            "user_source": None,
            "event_type": OLD_TYPES[n % len(OLD_TYPES)],
            "status": ("pending", "success", "error")[n % 3],
            "data": {"n": n},
            "duration_ms": None,
            "error_message": None,
            "correlation_id": None,
            "updated_at": START + timedelta(seconds=n),
            "change_seq": n,
        }
        for n, event_id in enumerate(ids, 1)
    ]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(OLD_EVENTS), rows)
        await conn.execute(sa.text(f"UPDATE activity_change_counter SET value = {count} WHERE id = 1"))
    return ids


async def test_0004_keeps_every_event_without_a_session_and_takes_the_new_types(
    engine: AsyncEngine, database_url: str
) -> None:
    await upgrade(engine, "0003")
    ids = await insert_old_rows(engine, 30)

    await upgrade(engine)

    assert await scalar(engine, "SELECT version_num FROM alembic_version") == HEAD
    assert await scalar(engine, "SELECT count(*) FROM activity_events WHERE session_id IS NULL") == 30
    assert await scalar(engine, "SELECT count(*) FROM activity_sessions") == 0
    store = ActivityStore(database_url)
    await store.start(migrate=False)
    try:
        for n, event_id in enumerate(ids, 1):
            event = await store.get(event_id=event_id)
            assert event is not None
            assert (event.timestamp, event.data, event.event_type.value, event.session_id) == (
                START + timedelta(seconds=n),
                {"n": n},
                OLD_TYPES[n % len(OLD_TYPES)],
                None,
            )
        request, _ = await store.create(
            event=ActivityCreate(event_type=EventType.MCP_REQUEST, tool_name="tools/list", session_id="s1")
        )
        notification, _ = await store.create(
            event=ActivityCreate(
                event_type=EventType.MCP_NOTIFICATION,
                tool_name="notifications/cancelled",
                status=EventStatus.ERROR,
                session_id="s1",
            )
        )
        assert await store.recent(query=RecentQuery(session_id="s1")) == [notification, request]
        assert len(await store.recent(query=RecentQuery(limit=500))) == 32
        [session] = await store.sessions(limit=50)
        assert (session.session_id, session.events, session.errors, session.pending) == ("s1", 2, 1, 1)
        assert await store.last_change() == 32
    finally:
        await store.close()


async def test_0004_downgrades_to_0003_and_upgrades_again(engine: AsyncEngine, database_url: str) -> None:
    await upgrade(engine)
    store = ActivityStore(database_url)
    await store.start(migrate=False)
    try:
        kept, _ = await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL, session_id="s1"))
        await store.create(event=ActivityCreate(event_type=EventType.MCP_REQUEST, session_id="s1"))
    finally:
        await store.close()

    await alembic(engine, "downgrade", "0003")

    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in sa.inspect(c).get_columns("activity_events")}
        )
    assert "activity_sessions" not in tables
    assert "session_id" not in columns
    # The event of a type 0003 does not know went; the other stayed.
    assert await scalar(engine, "SELECT count(*) FROM activity_events") == 1
    with pytest.raises(sa.exc.IntegrityError):
        await insert_raw(engine, 9, "mcp_request", "success")

    await upgrade(engine)

    store = ActivityStore(database_url)
    await store.start(migrate=False)
    try:
        event = await store.get(event_id=kept.id)
        assert event is not None
        assert event.session_id is None
    finally:
        await store.close()


async def test_on_sqlite_the_session_filter_reads_its_partial_index(tmp_path: Path) -> None:
    engine = create_reader_engine(f"sqlite:///{tmp_path / 'feed.db'}")
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            plan = (
                await conn.execute(
                    sa.text(
                        "EXPLAIN QUERY PLAN SELECT * FROM activity_events WHERE session_id = :s "
                        "ORDER BY timestamp DESC, seq DESC LIMIT 50"
                    ),
                    {"s": "x"},
                )
            ).all()
    finally:
        await engine.dispose()
    assert any("ix_activity_events_session_id" in row[-1] for row in plan), plan
    assert not any("TEMP B-TREE" in row[-1] for row in plan), plan

"""The session summary: what creates, completions, deletions and retention do to it, paging through it,
and that it always equals a count over the events themselves."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from activity_feed.errors import ReferenceNotFoundError
from activity_feed.schemas import (
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    ActivityUpdateItem,
    EventStatus,
    EventType,
    SessionPublic,
)
from activity_feed.store import ActivityStore, RecentQuery
from activity_feed.store.maintenance import Retention, expire_pending, prune
from activity_feed.store.schema import activity_events

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def mcp(server: str) -> dict[str, Any]:
    return {"mcp": {"method": "tools/call", "server": {"name": server, "version": "1.0"}}}


async def add(store: ActivityStore, session_id: str | None, minute: float, **fields: Any) -> ActivityPublic:
    fields.setdefault("event_type", EventType.TOOL_CALL)
    event, created = await store.create(
        event=ActivityCreate(session_id=session_id, timestamp=T0 + timedelta(minutes=minute), **fields)
    )
    assert created
    return event


async def recounted(store: ActivityStore) -> dict[str, tuple[datetime, datetime, int, int, int]]:
    """Each session's bounds and counts as the events themselves say, newest first."""
    e = activity_events
    stmt = (
        sa.select(
            e.c.session_id,
            sa.func.min(e.c.timestamp),
            sa.func.max(e.c.timestamp),
            sa.func.count(),
            sa.func.sum(sa.case((e.c.status == "error", 1), else_=0)),
            sa.func.sum(sa.case((e.c.status == "pending", 1), else_=0)),
        )
        .where(e.c.session_id.is_not(None))
        .group_by(e.c.session_id)
    )
    async with store.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return {
        row[0]: (
            row[1].replace(tzinfo=UTC) if row[1].tzinfo is None else row[1],
            row[2].replace(tzinfo=UTC) if row[2].tzinfo is None else row[2],
            row[3],
            row[4],
            row[5],
        )
        for row in rows
    }


def summarised(sessions: list[SessionPublic]) -> dict[str, tuple[datetime, datetime, int, int, int]]:
    return {s.session_id: (s.first_seen, s.last_seen, s.events, s.errors, s.pending) for s in sessions}


async def assert_summary_matches_the_events(store: ActivityStore) -> list[SessionPublic]:
    sessions = await store.sessions(limit=200)
    assert summarised(sessions) == await recounted(store)
    return sessions


async def test_a_session_summarises_its_events(store: ActivityStore) -> None:
    await add(store, "s1", 0, user_source="claude-ai 0.1", data=mcp("property-manager"))
    await add(store, "s1", 5, status=EventStatus.ERROR, user_source="claude-ai 0.1")
    await add(store, "s1", 2, status=EventStatus.SUCCESS)
    await add(store, None, 10)  # belongs to no session

    [session] = await store.sessions()

    assert session == SessionPublic(
        session_id="s1",
        user_source="claude-ai 0.1",
        server="property-manager",
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=5),
        events=3,
        errors=1,
        pending=1,
    )


async def test_sessions_are_most_recently_active_first_and_page_with_before(store: ActivityStore) -> None:
    for n, minute in enumerate([3, 1, 4, 1, 5, 9, 2, 6]):
        await add(store, f"s{n}", minute)
    # s1 and s3 share a last_seen: the tie is broken by session_id, the later one first.
    expected = ["s5", "s7", "s4", "s2", "s0", "s6", "s3", "s1"]

    first = await store.sessions(limit=3)
    second = await store.sessions(limit=3, before=first[-1].session_id)
    third = await store.sessions(limit=3, before=second[-1].session_id)

    assert [s.session_id for s in first + second + third] == expected
    assert await store.sessions(limit=3, before="s1") == []


async def test_an_unknown_before_is_refused(store: ActivityStore) -> None:
    await add(store, "s1", 0)

    with pytest.raises(ReferenceNotFoundError, match="no session"):
        await store.sessions(before="nope")


async def test_a_new_event_moves_its_session_to_the_front(store: ActivityStore) -> None:
    await add(store, "old", 0)
    await add(store, "new", 1)
    await add(store, "old", 2)

    assert [s.session_id for s in await store.sessions()] == ["old", "new"]


async def test_completions_move_the_counts(store: ActivityStore) -> None:
    ok = await add(store, "s1", 0)
    bad = await add(store, "s1", 1)
    await add(store, "s1", 2)

    await store.update(event_id=ok.id, changes=ActivityUpdate(status=EventStatus.SUCCESS, duration_ms=3))
    await store.update(event_id=bad.id, changes=ActivityUpdate(status=EventStatus.ERROR))
    # A change that leaves the status as it is moves nothing.
    await store.update(event_id=bad.id, changes=ActivityUpdate(error_message="still bad"))

    [session] = await store.sessions()
    assert (session.events, session.errors, session.pending) == (3, 1, 1)


async def test_a_batch_that_creates_and_completes_counts_once(store: ActivityStore) -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    await store.apply_batch(
        creates=[
            ActivityCreate(id=i, event_type=EventType.MCP_REQUEST, session_id="s1", timestamp=T0) for i in ids
        ],
        updates=[
            ActivityUpdateItem(id=ids[0], status=EventStatus.SUCCESS),
            ActivityUpdateItem(id=ids[1], status=EventStatus.ERROR, data=mcp("late-name")),
        ],
    )

    [session] = await store.sessions()
    assert (session.events, session.errors, session.pending, session.server) == (4, 1, 2, "late-name")


async def test_the_latest_names_win(store: ActivityStore) -> None:
    await add(store, "s1", 0, user_source="first", data=mcp("server-a"))
    await add(store, "s1", 1)  # no names: they stay
    [session] = await store.sessions()
    assert (session.user_source, session.server) == ("first", "server-a")

    await add(store, "s1", 2, user_source="second", data=mcp("server-b"))

    [session] = await store.sessions()
    assert (session.user_source, session.server) == ("second", "server-b")


async def test_a_server_name_that_is_not_text_is_ignored(store: ActivityStore) -> None:
    await add(store, "s1", 0, data={"mcp": {"server": {"name": 7}}})
    await add(store, "s2", 0, data={"mcp": {"server": "just a string"}})
    await add(store, "s3", 0, data={"mcp": "odd"})
    await add(store, "s4", 0, data={"mcp": {"server": {"name": "x" * 500}}})

    servers = {s.session_id: s.server for s in await store.sessions()}

    assert servers == {"s1": None, "s2": None, "s3": None, "s4": "x" * 200}


async def test_deletes_move_the_bounds_and_drop_an_empty_session(store: ActivityStore) -> None:
    first = await add(store, "s1", 0)
    await add(store, "s1", 5, status=EventStatus.ERROR)
    last = await add(store, "s1", 9)
    only = await add(store, "s2", 1)

    await store.delete(event_id=first.id)
    await store.delete(event_id=last.id)
    await store.delete(event_id=only.id)

    [session] = await assert_summary_matches_the_events(store)
    middle = T0 + timedelta(minutes=5)
    assert (session.session_id, session.first_seen, session.last_seen) == ("s1", middle, middle)
    assert (session.events, session.errors, session.pending) == (1, 1, 0)


async def test_retention_and_the_pending_timeout_keep_the_summary(store: ActivityStore) -> None:
    for minute in range(10):
        await add(store, "long", minute)
        await add(store, f"short-{minute}", minute, status=EventStatus.SUCCESS)
    now = T0 + timedelta(minutes=60)

    await expire_pending(store, older_than=timedelta(minutes=52), now=now, batch_size=3)
    await prune(store, retention=Retention(older_than=timedelta(minutes=55)), now=now, batch_size=4)

    sessions = await assert_summary_matches_the_events(store)
    assert [s.session_id for s in sessions] == ["short-9", "long", "short-8", "short-7", "short-6", "short-5"]
    long = next(s for s in sessions if s.session_id == "long")
    assert (long.first_seen, long.events, long.errors, long.pending) == (T0 + timedelta(minutes=5), 5, 3, 2)

    await prune(store, retention=Retention(keep=0), batch_size=4)

    assert await store.sessions() == []


async def test_any_mix_of_writes_leaves_the_summary_equal_to_the_events(store: ActivityStore) -> None:
    rng = random.Random(17)
    live: list[ActivityPublic] = []
    for _ in range(40):
        action = rng.random()
        if action < 0.5 or not live:
            creates = [
                ActivityCreate(
                    event_type=EventType.MCP_REQUEST,
                    session_id=rng.choice(["a", "b", "c", None]),
                    status=rng.choice(list(EventStatus)),
                    timestamp=T0 + timedelta(seconds=rng.randrange(3600)),
                )
                for _ in range(rng.randrange(1, 6))
            ]
            await store.apply_batch(creates=creates, updates=[])
            live = await store.recent(query=RecentQuery(limit=500))
        elif action < 0.8:
            updates = [
                ActivityUpdateItem(id=event.id, status=rng.choice(list(EventStatus)))
                for event in rng.sample(live, min(len(live), 3))
            ]
            await store.apply_batch(creates=[], updates=updates)
        else:
            victim = live.pop(rng.randrange(len(live)))
            await store.delete(event_id=victim.id)

    assert await assert_summary_matches_the_events(store)


async def test_the_session_filter_of_recent(store: ActivityStore) -> None:
    mine = [await add(store, "mine", minute) for minute in range(3)]
    await add(store, "other", 5)
    await add(store, None, 6)

    assert await store.recent(query=RecentQuery(session_id="mine")) == mine[::-1]
    assert await store.recent(query=RecentQuery(session_id="nope")) == []


async def test_two_stores_on_one_postgresql_count_one_session_right(postgres_url: str) -> None:
    stores = [ActivityStore(postgres_url), ActivityStore(postgres_url)]
    for store in stores:
        await store.start()
    try:

        async def write(store: ActivityStore, n: int) -> None:
            for i in range(10):
                creates = [
                    ActivityCreate(
                        event_type=EventType.TOOL_CALL,
                        session_id="shared",
                        timestamp=T0 + timedelta(seconds=n * 100 + i * 10 + k),
                    )
                    for k in range(5)
                ]
                await store.apply_batch(creates=creates, updates=[])

        await asyncio.gather(*(write(store, n) for n, store in enumerate(stores)))

        [session] = await assert_summary_matches_the_events(stores[0])
        assert (session.events, session.pending) == (100, 100)
        assert (session.first_seen, session.last_seen) == (T0, T0 + timedelta(seconds=194))
    finally:
        for store in stores:
            await store.close()

"""SQLite's transactions run on the event loop when small: the loop must still never wait for a lock that
another process holds."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.reads import RecentQuery

WAIT_SECONDS = 20


async def test_a_write_waits_for_another_process_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    database = tmp_path / "locked.db"
    store = ActivityStore(f"sqlite:///{database}")
    await store.start()
    other = sqlite3.connect(database, isolation_level=None)  # another process: a migration, a prune
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL)))
        # The loop goes on (this sleep ends) while the write waits for the lock; a write that blocked
        # the loop would have held it until SQLite gave up, and failed.
        await asyncio.sleep(0.3)
        reads_meanwhile = await asyncio.wait_for(store.recent(query=RecentQuery()), WAIT_SECONDS)
        assert not write.done()
        assert reads_meanwhile == []

        other.execute("COMMIT")  # the lock is released: the waiting write goes through
        event, created = await asyncio.wait_for(write, WAIT_SECONDS)
    finally:
        other.close()
        await store.close()

    assert created
    assert event.event_type == EventType.TOOL_CALL

"""SQLite's log is copied into the database file by a thread of its own, not inside the writer's commits."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.checkpoint import WalCheckpointer

WAIT_SECONDS = 20
EVENTS = 2000
PADDING = "x" * 500


def checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "activity-feed-checkpoint"]


async def test_committed_events_reach_the_database_file_while_the_service_runs(tmp_path: Path) -> None:
    database = tmp_path / "feed.db"
    # Another module's app may hold a store of its own open (test_fuzz.py loads its schema at import).
    others = set(checkpoint_threads())
    store = ActivityStore(f"sqlite:///{database}")
    await store.start()
    try:
        size_before = database.stat().st_size
        events = [
            ActivityCreate(event_type=EventType.TOOL_CALL, data={"note": PADDING}) for _ in range(EVENTS)
        ]
        await store.apply_batch(creates=events, updates=[])
        # About 1.2 MB of log (some 400 pages): short of both the writer's own backstop and SQLite's
        # default automatic checkpoint (1,000 pages), so only the checkpointer can have copied it.
        wanted = size_before + EVENTS * len(PADDING)
        deadline = time.monotonic() + WAIT_SECONDS
        while database.stat().st_size < wanted:
            assert time.monotonic() < deadline, f"the database file stayed at {database.stat().st_size} bytes"
            await asyncio.sleep(0.02)
        assert len(set(checkpoint_threads()) - others) == 1
    finally:
        await store.close()
    assert set(checkpoint_threads()) <= others


def test_a_checkpointer_that_cannot_open_the_database_logs_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="activity_feed.store.checkpoint")
    checkpointer = WalCheckpointer(str(tmp_path))  # a directory: SQLite cannot open it
    checkpointer.committed()
    checkpointer.close()
    assert checkpoint_threads() == []
    assert "WAL checkpoints fall back to the writer" in caplog.text

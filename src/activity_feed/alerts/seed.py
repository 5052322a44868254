"""Where evaluation starts: the database's recent calls, read once when an instance starts evaluating
(at start, or when it takes over from another), and the alerts recorded as firing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from activity_feed.alerts.board import AlertBoard
from activity_feed.alerts.evaluator import MAX_PENDING, NOT_CALLS, Evaluator
from activity_feed.alerts.messages import ALERT_TOOL_PREFIX
from activity_feed.schemas import EventType
from activity_feed.store import ActivityStore

# How far back the windows and failure streaks are seeded: the latest changes, at most this many.
SEED_CHANGES = 100_000
# Alert events read to learn which alerts hold (the newest wins for each rule and tool).
SEED_ALERTS = 1000
_CHUNK = 1000  # calls counted between two turns of the event loop


async def seed_board(board: AlertBoard, store: ActivityStore) -> None:
    events = await store.newest_named(
        event_type=EventType.SYSTEM_EVENT, prefix=ALERT_TOOL_PREFIX, limit=SEED_ALERTS
    )
    board.seed(events)


async def seed_evaluator(
    evaluator: Evaluator,
    store: ActivityStore,
    *,
    head: int,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Count the calls that ended in the last SEED_CHANGES changes up to `head`, and the calls pending at
    `head`, as if they had been seen live: their times on `clock` are their database times' distance from
    now (when each last changed; for pending calls, when each started)."""
    ended = await store.calls_changed(after=max(0, head - SEED_CHANGES), up_to=head)
    pending = await store.pending_calls(up_to=head, limit=MAX_PENDING)
    now, wall_now = clock(), datetime.now(UTC)

    def when(moment: datetime) -> float:
        return now - (wall_now - moment).total_seconds()

    calls = [
        (row.tool_name, row.status == "error", row.duration_ms, when(row.updated_at))
        for row in ended
        if row.status != "pending" and row.event_type not in NOT_CALLS
    ]
    for start in range(0, len(calls), _CHUNK):
        evaluator.seed_calls(calls[start : start + _CHUNK])
        await asyncio.sleep(0)  # requests go on being served while a large window is counted
    evaluator.seed_pending(
        (row.id, row.tool_name, when(row.timestamp)) for row in pending if row.event_type not in NOT_CALLS
    )

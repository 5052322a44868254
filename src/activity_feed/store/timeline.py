"""Calls, errors and latency per time bucket over a window of events: the data of a rate or latency chart.

The window is read newest first along a timestamp index and stops after a bounded number of events, like
the per-tool statistics; bucketing and percentiles happen here (on a thread), the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from activity_feed.schemas import EventStatus, StatsTimeline, TimelineBucket
from activity_feed.store.reads import EventFilter
from activity_feed.store.schema import activity_events

_events = activity_events
BUCKET_SECONDS = 60
MAX_BUCKETS = 1440
_MICROSECOND = timedelta(microseconds=1)
_ERROR = EventStatus.ERROR.value


def bucket_seconds(window: timedelta) -> int:
    """60, unless the window would need more than `MAX_BUCKETS` of them: then the smallest multiple of
    60 that covers it in at most that many."""
    micros = max(0, window // _MICROSECOND)
    minute = BUCKET_SECONDS * 1_000_000
    if -(-micros // minute) <= MAX_BUCKETS:
        return BUCKET_SECONDS
    return BUCKET_SECONDS * -(-micros // (minute * MAX_BUCKETS))


def nearest_rank(sorted_values: list[float], fraction: float) -> float | None:
    """The smallest value whose rank (from 1) is at least `fraction` of the count, as the per-tool
    statistics compute it in SQL."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


async def timeline(
    conn: AsyncConnection, *, where: EventFilter, until: datetime, max_events: int
) -> StatsTimeline:
    """Buckets from `where.since` (required) to `until` over the events that match `where`, at most the
    newest `max_events` of them; when more match, `since` moves up to the oldest event counted."""
    if where.since is None:
        raise ValueError("a timeline needs the start of its window")
    stmt = (
        sa.select(_events.c.timestamp, _events.c.status, _events.c.duration_ms)
        .where(*where.conditions(), _events.c.timestamp <= until)
        .order_by(_events.c.timestamp.desc(), _events.c.seq.desc())
        .limit(max_events + 1)
    )
    rows = list(await conn.execute(stmt))
    # Thousands of rows to count: on a thread, so that the event loop keeps answering meanwhile.
    return await asyncio.to_thread(_bucketed, rows, since=where.since, until=until, max_events=max_events)


def _bucketed(
    rows: list[sa.Row[datetime, str, float | None]],
    *,
    since: datetime,
    until: datetime,
    max_events: int,
) -> StatsTimeline:
    truncated = len(rows) > max_events
    if truncated:
        del rows[max_events:]
        since = rows[-1].timestamp
    size = bucket_seconds(until - since)
    width = timedelta(seconds=size)
    # A window of no length still has its one bucket (an event at `until` falls in the last one); one
    # that ends before it starts has none.
    count = 0 if since > until else max(1, -(-((until - since) // _MICROSECOND) // (size * 1_000_000)))
    calls = [0] * count
    errors = [0] * count
    durations: list[list[float]] = [[] for _ in range(count)]
    for timestamp, status, duration_ms in rows:
        index = min(count - 1, (timestamp - since) // width)
        calls[index] += 1
        if status == _ERROR:
            errors[index] += 1
        if duration_ms is not None:
            durations[index].append(duration_ms)
    buckets = []
    for index in range(count):
        values = sorted(durations[index])
        buckets.append(
            TimelineBucket(
                start=since + index * width,
                calls=calls[index],
                errors=errors[index],
                p50_ms=nearest_rank(values, 0.5),
                p95_ms=nearest_rank(values, 0.95),
            )
        )
    return StatsTimeline(
        since=since,
        until=until,
        bucket_seconds=size,
        truncated=truncated,
        events=len(rows),
        buckets=buckets,
    )

"""sessions: median latency of `GET /activities/sessions?limit=50` on a database of 1,000,000 events
against one of 10,000, same server settings: 2 alternating rounds of 150 sequential requests after 50 of
warm-up.

The databases are filled as `query` fills its own (Core `executemany` of writer-shaped rows over the last
30 days, ~10% errors, ~5% pending), every event in a session of 100: four sessions at a time share each
stretch of 400 events, as concurrent MCP connections do. The session summary is then built from the
events in one statement, as migration 0004 builds it. Target: ratio <= 1.5.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from activity_feed.store.schema import activity_change_counter, activity_events, activity_sessions
from bench.harness import (
    Check,
    ServerProcess,
    event_pool,
    fmt,
    migrated_writer,
    say,
    sequential_latencies,
    sqlite_url,
    writer_rows,
)
from bench.query import CHUNK, REQUESTS_PER_ROUND, ROUNDS, SPAN, WARMUP_REQUESTS, summary

NAME = "sessions"
TITLE = "GET /activities/sessions?limit=50 median latency, 1,000,000 vs 10,000 events"
SMALL = 10_000
LARGE = 1_000_000
EVENTS_PER_SESSION = 100
CONCURRENT_SESSIONS = 4
PATH = "/activities/sessions?limit=50"
TARGET_RATIO = 1.5


def session_of(seq: int) -> str:
    """Event `seq`'s session: each stretch of 400 events holds 4 sessions, taking turns."""
    stretch = EVENTS_PER_SESSION * CONCURRENT_SESSIONS
    return f"session-{seq // stretch:06d}-{seq % CONCURRENT_SESSIONS}"


def _summarise(conn: sa.Connection) -> None:
    events = activity_events.c
    conn.execute(
        sa.insert(activity_sessions).from_select(
            ["session_id", "first_seen", "last_seen", "user_source", "events", "errors", "pending"],
            sa.select(
                events.session_id,
                sa.func.min(events.timestamp),
                sa.func.max(events.timestamp),
                sa.func.max(events.user_source),
                sa.func.count(),
                sa.func.sum(sa.case((events.status == "error", 1), else_=0)),
                sa.func.sum(sa.case((events.status == "pending", 1), else_=0)),
            )
            .where(events.session_id.is_not(None))
            .group_by(events.session_id),
        )
    )


def fill(database: Path, count: int) -> float:
    """Create the schema, insert `count` events in sessions and their summary; return the seconds."""
    started = time.perf_counter()
    with migrated_writer(database) as writer:
        pool = event_pool(4096, seed=5)
        step = SPAN / count
        start = datetime.now(UTC) - SPAN
        insert = sa.insert(activity_events)
        for first in range(1, count + 1, CHUNK):
            size = min(CHUNK, count + 1 - first)
            rows = [
                {**row, "session_id": session_of(row["seq"])}
                for row in writer_rows(
                    pool, first_seq=first, count=size, start=start + step * (first - 1), step=step
                )
            ]
            with writer.begin() as conn:
                conn.execute(insert, rows)
        with writer.begin() as conn:
            conn.execute(sa.update(activity_change_counter).values(value=count))
            _summarise(conn)
    return time.perf_counter() - started


def _check_answer(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}{PATH}", timeout=30).json()
    newest_first = [session["last_seen"] for session in page]
    if len(page) != 50 or newest_first != sorted(newest_first, reverse=True):
        raise RuntimeError(f"GET {PATH} did not answer 50 sessions, most recently active first")
    if sum(session["events"] for session in page) < 45 * EVENTS_PER_SESSION:
        raise RuntimeError(f"GET {PATH}: the newest sessions do not hold their events")


def _round(server: ServerProcess) -> list[float]:
    return sequential_latencies(server, PATH, warmup=WARMUP_REQUESTS, count=REQUESTS_PER_ROUND)


def run() -> list[Check]:
    latencies: dict[int, list[float]] = {SMALL: [], LARGE: []}
    fills: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        folder = Path(tmp)
        for count in (SMALL, LARGE):
            fills[count] = fill(folder / f"sessions-{count}.db", count)
            sessions = count // EVENTS_PER_SESSION
            say(
                f"  filled {count:,} events in {sessions:,} sessions in {fills[count]:.1f} s "
                f"({fmt(count / fills[count], 'rows/s')})"
            )
        with ExitStack() as stack:
            servers = {
                count: stack.enter_context(ServerProcess(url, log_path=folder / f"server-{count}.log"))
                for count in (SMALL, LARGE)
                for url in [sqlite_url(folder / f"sessions-{count}.db")]
            }
            for server in servers.values():
                _check_answer(server)
            for _ in range(ROUNDS):
                for count, server in servers.items():
                    latencies[count] += _round(server)
    results = {count: summary(latencies[count], fills[count]) for count in (SMALL, LARGE)}
    for count, result in results.items():
        say(f"  {count:>9,} events: median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms")
    small = results[SMALL]["median_ms"]
    large = results[LARGE]["median_ms"]
    ratio = large / small
    return [
        Check(
            benchmark=NAME,
            name=f"GET sessions?limit=50 median @{LARGE:,}",
            value=large,
            unit="ms",
            baseline=small,
            baseline_name=f"same @{SMALL:,}",
            ratio=ratio,
            target=f"ratio <= {TARGET_RATIO}",
            met=ratio <= TARGET_RATIO,
            details={str(count): result for count, result in results.items()},
        )
    ]

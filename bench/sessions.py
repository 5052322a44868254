"""sessions: median latency of `GET /activities/sessions?limit=50` on a database of 1,000,000 events
against one of 10,000, same server settings: 2 alternating rounds of 150 sequential requests after 50 of
warm-up.

The databases are filled as `query` fills its own (Core `executemany` of writer-shaped rows over the last
30 days, ~10% errors, ~5% pending), every event in a session of 100: four sessions at a time share each
stretch of 400 events, as concurrent MCP connections do. The session summary is then built from the
events in one statement, as migration 0004 builds it. Target: ratio <= 1.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from activity_feed.store.schema import activity_events, activity_sessions
from bench.harness import Check, ServerProcess
from bench.sizes import fill_events, measure_sizes, ratio_check

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


def _in_session(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "session_id": session_of(row["seq"])}


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
    return fill_events(database, count, seed=5, shape=_in_session, finish=_summarise)


def _check_answer(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}{PATH}", timeout=30).json()
    newest_first = [session["last_seen"] for session in page]
    if len(page) != 50 or newest_first != sorted(newest_first, reverse=True):
        raise RuntimeError(f"GET {PATH} did not answer 50 sessions, most recently active first")
    if sum(session["events"] for session in page) < 45 * EVENTS_PER_SESSION:
        raise RuntimeError(f"GET {PATH}: the newest sessions do not hold their events")


def run() -> list[Check]:
    results = measure_sizes(
        label=NAME,
        path=PATH,
        counts=(SMALL, LARGE),
        fill=fill,
        check_answer=_check_answer,
        describe=lambda count: f"{count:,} events in {count // EVENTS_PER_SESSION:,} sessions",
    )
    return [
        ratio_check(
            benchmark=NAME,
            name="GET sessions?limit=50",
            results=results,
            counts=(SMALL, LARGE),
            target_ratio=TARGET_RATIO,
        )
    ]

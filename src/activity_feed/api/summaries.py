"""The endpoints that summarise events: per-tool statistics, their timeline, and the session list.

Thin like the other routes. Included ahead of `/activities/{event_id}`, which would otherwise take
`sessions` for an event id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from activity_feed.api.deps import ReadLimitsDep, SettingsDep, StoreDep
from activity_feed.api.fast_json import OrjsonRoute
from activity_feed.api.read_limits import answered_turn, set_stats_headers
from activity_feed.api.responses import MISDIRECTED, TOO_LARGE, UNAUTHORISED, UNAVAILABLE, ErrorDetail
from activity_feed.api.since import (
    SINCE_DESCRIPTION,
    SINCE_EXAMPLES,
    SINCE_OPENAPI_EXAMPLES,
    SinceQuery,
    parse_since,
)
from activity_feed.errors import ReferenceNotFoundError
from activity_feed.schemas import EventType, SessionPublic, StatsTimeline, ToolStats
from activity_feed.store import EventFilter

router = APIRouter(
    prefix="/activities",
    tags=["activities"],
    route_class=OrjsonRoute,
    responses={**UNAUTHORISED, **MISDIRECTED, **TOO_LARGE, **UNAVAILABLE},
)

DEFAULT_TIMELINE_SINCE = "1h"
SessionIdQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="only the events of this session (exact match)",
        examples=["3f1c9a7e-mcp-session"],
    ),
]
EventTypeQuery = Annotated[
    EventType | None, Query(description="only events of this type", examples=["tool_call"])
]

_STATS_EXAMPLE = [
    {
        "tool_name": "search_properties",
        "count": 120,
        "errors": 3,
        "error_rate": 0.025,
        "p50_duration_ms": 41.0,
        "p95_duration_ms": 180.5,
    }
]
_TIMELINE_EXAMPLE = {
    "since": "2026-12-01T09:00:00Z",
    "until": "2026-12-01T09:02:30Z",
    "bucket_seconds": 60,
    "truncated": False,
    "events": 7,
    "buckets": [
        {"start": "2026-12-01T09:00:00Z", "calls": 5, "errors": 1, "p50_ms": 40.0, "p95_ms": 210.0},
        {"start": "2026-12-01T09:01:00Z", "calls": 0, "errors": 0, "p50_ms": None, "p95_ms": None},
        {"start": "2026-12-01T09:02:00Z", "calls": 2, "errors": 0, "p50_ms": 35.5, "p95_ms": 38.0},
    ],
}
_SESSIONS_EXAMPLE = [
    {
        "session_id": "3f1c9a7e-mcp-session",
        "user_source": "claude-ai 0.1.0",
        "server": "property-manager",
        "first_seen": "2026-12-01T08:12:03.120Z",
        "last_seen": "2026-12-01T09:02:11.004Z",
        "events": 96,
        "errors": 2,
        "pending": 1,
    }
]


def _example(value: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"example": value}}}}


@router.get("/stats", responses=_example(_STATS_EXAMPLE, "Per-tool statistics, busiest tool first"))
async def activity_stats(
    store: StoreDep,
    settings: SettingsDep,
    limits: ReadLimitsDep,
    response: Response,
    since: SinceQuery = None,
    session_id: SessionIdQuery = None,
    event_type: EventTypeQuery = None,
) -> list[ToolStats]:
    """Per tool: count, errors, error rate, and p50/p95 of `duration_ms`, over at most the newest
    `stats_window_events` events; headers `X-Stats-Window-Events`, `X-Stats-Since` (every event from
    then on was counted) and `X-Stats-Truncated` say which. 503 while too many run at once."""
    start = parse_since(since, now=datetime.now(UTC)) if since is not None else None
    async with answered_turn(limits.stats):
        window = await store.stats_window(
            since=start,
            max_events=settings.stats_window_events,
            session_id=session_id,
            event_type=event_type,
        )
    set_stats_headers(response, window)
    return window.tools


@router.get(
    "/stats/timeline",
    responses=_example(_TIMELINE_EXAMPLE, "Every bucket of the window, oldest first, empty ones included"),
)
async def activity_timeline(
    store: StoreDep,
    settings: SettingsDep,
    limits: ReadLimitsDep,
    since: Annotated[
        str,
        Query(
            description=f"the window's start: {SINCE_DESCRIPTION}; default `1h`",
            examples=SINCE_EXAMPLES,
            openapi_examples=SINCE_OPENAPI_EXAMPLES,
        ),
    ] = DEFAULT_TIMELINE_SINCE,
    session_id: SessionIdQuery = None,
    event_type: EventTypeQuery = None,
    tool_name: Annotated[
        str | None, Query(max_length=200, description="only this tool", examples=["search_properties"])
    ] = None,
) -> StatsTimeline:
    """Calls, errors and p50/p95 of `duration_ms` per bucket from `since` to now. Buckets are 60 s,
    unless that would take more than 1,440 of them: then the smallest multiple of 60 s that fits. At most
    the newest `stats_window_events` events count; `truncated` says when older ones were left out (then
    `since` is the oldest event counted). 503 while too many statistics requests run at once."""
    now = datetime.now(UTC)
    where = EventFilter(
        since=parse_since(since, now=now), session_id=session_id, event_type=event_type, tool_name=tool_name
    )
    async with answered_turn(limits.stats):
        return await store.timeline(where=where, until=now, max_events=settings.stats_window_events)


@router.get(
    "/sessions",
    responses={
        **_example(_SESSIONS_EXAMPLE, "Sessions, most recently active first"),
        404: {"model": ErrorDetail, "description": "`before` names no session"},
    },
)
async def list_sessions(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=200, description="how many sessions", examples=[50])] = 50,
    before: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the `session_id` of the last session seen: only the sessions after it",
            examples=["3f1c9a7e-mcp-session"],
        ),
    ] = None,
) -> list[SessionPublic]:
    """MCP connections and conversations (events that carry a `session_id`), most recently active
    first: when each was first and last seen (its events' timestamps), who, which server, and how many of
    its events there are, failed and still pending. Page back with `before=<last session_id seen>`."""
    try:
        return await store.sessions(limit=limit, before=before)
    except ReferenceNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None

"""The tools: read-only questions to a running feed, asked over its REST API through a `FeedReader` (a
remote feed for `activity-feed mcp`, the service itself in process at `/mcp`).

Each answers structured content (a model of `models.py`, which is also its output schema) and a few lines
of text (`text.py`). Whatever the caller got wrong (an unknown id, a `since` that is no time) and a feed
that cannot be read are `ToolError`s: an `isError` result whose text says what to change.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from activity_feed.client.reader import FeedReader, FeedReadError
from activity_feed.feed_mcp import text
from activity_feed.feed_mcp.models import RecentActivity, SessionActivity, SessionList, ToolStatsReport
from activity_feed.schemas import ActivityPublic, EventStatus, EventType, SessionPublic, ToolStats

T = TypeVar("T")

# The feed's own limits on these filters (api/routes.py): said in the schema, so the caller learns them
# before it asks.
_MAX_FILTER_CHARS = 200
# Statuses whose `detail` says all the caller needs; for others (401, 500, no answer) the whole message
# names the feed and what to do.
_CALLER_ERRORS = (404, 422, 503)

Limit = Annotated[int, Field(ge=1, le=200, description="how many events at most (1 to 200)")]
Since = Annotated[
    str | None,
    Field(
        description="only events from then on: an ISO 8601 time (without a zone: UTC), or a duration back "
        "from now, a number with s, m, h or d: `90s`, `15m`, `1h`, `7d` (a bare number is seconds)",
        examples=["1h", "15m", "2026-12-01T09:00:00Z"],
    ),
]
ToolName = Annotated[
    str | None,
    Field(
        max_length=_MAX_FILTER_CHARS, description="only this tool (or MCP method), e.g. `search_properties`"
    ),
]
SessionId = Annotated[
    str | None,
    Field(max_length=_MAX_FILTER_CHARS, description="only the events of this session (see list_sessions)"),
]


def _answer(model: BaseModel, summary: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=summary)], structured_content=model.model_dump(mode="json")
    )


async def _read(request: Awaitable[T]) -> T:
    try:
        return await request
    except FeedReadError as exc:
        if exc.status in _CALLER_ERRORS and exc.detail:
            raise ToolError(exc.detail) from None
        raise ToolError(str(exc)) from None


def _filters(**given: Any) -> dict[str, Any]:
    # The feed's query parameters: enum members as their values, absent ones left out by the reader.
    return {
        name: value.value if isinstance(value, EventType | EventStatus) else value
        for name, value in given.items()
    }


class FeedTools:
    """The tools over one reader; its methods are registered as they are (their docstrings are the tools'
    descriptions, their annotations the input and output schemas)."""

    def __init__(self, reader: FeedReader) -> None:
        self.reader = reader

    async def recent_activity(
        self,
        limit: Limit = 20,
        event_type: Annotated[
            EventType | None, Field(description="only this type of event, e.g. `tool_call`")
        ] = None,
        status: Annotated[
            EventStatus | None, Field(description="only this status: `pending`, `success` or `error`")
        ] = None,
        tool_name: ToolName = None,
        session_id: SessionId = None,
        since: Since = None,
    ) -> Annotated[CallToolResult, RecentActivity]:
        """The feed's newest events (tool calls, MCP requests, API requests...), newest first, with their
        status, duration and error message. For "what failed in the last hour": status=error, since=1h."""
        found = await _read(
            self.reader.recent(
                **_filters(
                    limit=limit + 1,  # one more than asked: whether more match
                    event_type=event_type,
                    status=status,
                    tool_name=tool_name,
                    session_id=session_id,
                    since=since,
                )
            )
        )
        answer = RecentActivity(
            events=[ActivityPublic.model_validate(event) for event in found[:limit]], more=len(found) > limit
        )
        return _answer(answer, text.recent_text(answer))

    async def get_activity(
        self, id: Annotated[str, Field(description="the event's id (a UUID, as recent_activity lists it)")]
    ) -> Annotated[CallToolResult, ActivityPublic]:
        """One event in full: its `data` (the tool's arguments and result, redacted), error message,
        duration, session and correlation id."""
        try:
            uuid.UUID(id)
        except ValueError:
            raise ToolError(
                f"not an event id: {id[:60]!r} (ids are UUIDs, as recent_activity lists them)"
            ) from None
        event = ActivityPublic.model_validate(await _read(self.reader.event(id)))
        return _answer(event, text.event_text(event))

    async def tool_stats(
        self, since: Since = None, session_id: SessionId = None
    ) -> Annotated[CallToolResult, ToolStatsReport]:
        """Per tool: calls, errors, error rate, and p50/p95 duration, busiest first. Without `since`, over
        the feed's newest events (at most 10,000 by default)."""
        response = await _read(self.reader.stats(since=since, session_id=session_id))
        headers = response.headers
        report = ToolStatsReport(
            tools=[ToolStats.model_validate(tool) for tool in response.json()],
            events_counted=int(headers.get("X-Stats-Window-Events", "0")),
            truncated=headers.get("X-Stats-Truncated") == "true",
            since=headers.get("X-Stats-Since"),
        )
        return _answer(report, text.stats_text(report))

    async def list_sessions(
        self, limit: Annotated[int, Field(ge=1, le=200, description="how many sessions at most")] = 20
    ) -> Annotated[CallToolResult, SessionList]:
        """MCP sessions (one connection or conversation each), most recently active first: client, server,
        first and last seen, and how many events, errors and pending calls each has."""
        found = await _read(self.reader.sessions(limit=limit))
        answer = SessionList(sessions=[SessionPublic.model_validate(session) for session in found])
        return _answer(answer, text.sessions_text(answer))

    async def session_activity(
        self,
        session_id: Annotated[
            str,
            Field(min_length=1, max_length=_MAX_FILTER_CHARS, description="the session (see list_sessions)"),
        ],
        limit: Limit = 50,
    ) -> Annotated[CallToolResult, SessionActivity]:
        """One session's events, newest first: what the client called, in which order, and what failed."""
        found = await _read(self.reader.recent(session_id=session_id, limit=limit + 1))
        if not found:
            raise ToolError(f"no events in a session {session_id[:60]!r} (list_sessions shows the sessions)")
        answer = SessionActivity(
            session_id=session_id,
            events=[ActivityPublic.model_validate(event) for event in found[:limit]],
            more=len(found) > limit,
        )
        return _answer(answer, text.session_text(answer))

    def all(self) -> tuple[Any, ...]:
        """Every tool, in the order they are listed."""
        return (
            self.recent_activity,
            self.get_activity,
            self.tool_stats,
            self.list_sessions,
            self.session_activity,
        )

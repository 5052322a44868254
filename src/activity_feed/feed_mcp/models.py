"""What each tool answers, as structured content: these models are the tools' output schemas. Events,
statistics and sessions keep the REST API's own shapes (`activity_feed.schemas`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from activity_feed.schemas import ActivityPublic, SessionPublic, ToolStats


class RecentActivity(BaseModel):
    events: list[ActivityPublic] = Field(description="the matching events, newest first")
    more: bool = Field(description="more events match than `limit`: narrow the filters or raise the limit")


class SessionActivity(BaseModel):
    session_id: str
    events: list[ActivityPublic] = Field(description="the session's events, newest first")
    more: bool = Field(description="the session has more events than `limit`")


class ToolStatsReport(BaseModel):
    tools: list[ToolStats] = Field(description="per tool, busiest first")
    events_counted: int = Field(description="how many events the statistics cover")
    truncated: bool = Field(
        description="older events of the window were left out (the feed counts at most its newest "
        "ACTIVITY_FEED_STATS_WINDOW_EVENTS): then `since` is the oldest event counted"
    )
    since: datetime | None = Field(description="every event from then on was counted (null when none was)")


class SessionList(BaseModel):
    sessions: list[SessionPublic] = Field(description="most recently active first")

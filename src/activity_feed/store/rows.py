"""Conversions between table rows and the public event shape, kept cheap: they sit on the ingest path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from activity_feed.schemas import ActivityPublic, EventStatus, EventType

PUBLIC_COLUMNS = (
    "id",
    "timestamp",
    "tool_name",
    "user_source",
    "event_type",
    "status",
    "data",
    "duration_ms",
    "error_message",
    "correlation_id",
)


def to_public(row: Mapping[Any, Any]) -> ActivityPublic:
    """Build the public event from a row (or a row-shaped dict) without validating it again."""
    return ActivityPublic.model_construct(
        id=row["id"],
        timestamp=row["timestamp"],
        tool_name=row["tool_name"],
        user_source=row["user_source"],
        event_type=EventType(row["event_type"]),
        status=EventStatus(row["status"]),
        data=row["data"],
        duration_ms=row["duration_ms"],
        error_message=row["error_message"],
        correlation_id=row["correlation_id"],
    )

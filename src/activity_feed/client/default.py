"""The process-wide default client and the original module-level helpers.

`log_mcp_tool_call()` and `update_mcp_tool_result()` keep the names the property-management app used,
so existing tool code keeps working; they send through `get_default_client()`, made on first use from
`ACTIVITY_FEED_URL` (and disabled, with one warning on stderr, when that is not set).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from activity_feed.client.counters import logger
from activity_feed.client.feed_client import FeedClient
from activity_feed.errors import InvalidTokenError

_default: FeedClient | None = None
_lock = threading.Lock()


def get_default_client() -> FeedClient:
    """The process-wide client, created on first use from the environment."""
    global _default
    client = _default
    if client is None:
        with _lock:
            if _default is None:
                _default = _from_environment()
            client = _default
    return client


def _from_environment() -> FeedClient:
    try:
        return FeedClient()
    except InvalidTokenError as exc:
        # The helpers run inside the host's tool calls, which must never fail because of logging: say
        # why once, and send nothing.
        logger.error("activity feed: %s; events are not sent", exc)
        return FeedClient(url="", token="")


def set_default_client(client: FeedClient | None) -> None:
    """Use `client` from now on (None: make a new one from the environment on next use)."""
    global _default
    with _lock:
        _default = client


def log_mcp_tool_call(
    tool_name: str,
    *,
    arguments: dict[str, Any] | None = None,
    user_source: str | None = None,
    correlation_id: str | None = None,
    data: dict[str, Any] | None = None,
    event_type: str = "tool_call",
    status: str = "pending",
    timestamp: datetime | str | None = None,
    id: Any = None,
    session_id: str | None = None,
) -> str:
    """Record the start of an MCP tool call (`pending`, arguments in `data.arguments`); return its id."""
    details = dict(data or {})
    if arguments is not None:
        details["arguments"] = arguments
    return get_default_client().log(
        event_type=event_type,
        tool_name=tool_name,
        user_source=user_source,
        status=status,
        data=details,
        correlation_id=correlation_id,
        timestamp=timestamp,
        id=id,
        session_id=session_id,
    )


def update_mcp_tool_result(
    id: Any,
    *,
    status: str = "success",
    result: Any = None,
    duration_ms: float | None = None,
    error_message: str | None = None,
) -> None:
    """Record the end of the tool call `id`: its status, result (in `data.result`) and duration."""
    get_default_client().update(
        id,
        status=status,
        duration_ms=duration_ms,
        error_message=error_message,
        data={"result": result} if result is not None else None,
    )

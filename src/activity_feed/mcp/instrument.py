"""`instrument(server)`: record the MCP conversation of an official-SDK or fastmcp server."""

from __future__ import annotations

import logging
from typing import Any

from activity_feed.mcp.messages import RecordMode, check_record_mode
from activity_feed.mcp.middleware import ActivityFeedServerMiddleware, install_cause_filter
from activity_feed.mcp.recorder import ActivityClient, CallRecorder, warn_once

logger = logging.getLogger("activity_feed.mcp")


def _feed_url() -> str | None:
    from activity_feed.client.environment import default_url

    return default_url()


def resolve_client(client: ActivityClient | None) -> ActivityClient | None:
    """`client`, else the process-wide default client when `ACTIVITY_FEED_URL` is set, else None
    (said once on stderr)."""
    if client is not None:
        return client
    if not _feed_url():
        warn_once(
            "no-url",
            "activity feed: no client given and ACTIVITY_FEED_URL is not set, so MCP tool calls and "
            "requests are not recorded",
            exc_info=False,
        )
        return None
    from activity_feed.client import get_default_client

    return get_default_client()


def _is_fastmcp(server: object) -> bool:
    return any(
        cls.__module__.split(".")[0] == "fastmcp" and cls.__name__ == "FastMCP"
        for cls in type(server).__mro__
    )


def instrument(
    server: Any,
    client: ActivityClient | None = None,
    *,
    record: RecordMode = "requests",
    user_source: str | None = None,
    capture_arguments: bool = True,
    capture_results: bool = True,
) -> None:
    """Record the MCP conversation `server` takes part in, as events sent through `client`.

    `server` is the official SDK's `MCPServer` or low-level `Server` (mcp 2.x: the middleware goes on
    `server.middleware`), or a `fastmcp.FastMCP` (through `add_middleware`). `record` says what: `tools`
    (only `tools/call`), `requests` (every request either way but `ping`, and what cancellations do) or
    `all` (notifications and pings too). `client` defaults to the process-wide `FeedClient` from
    `ACTIVITY_FEED_URL`; with neither, this does nothing and says so once on stderr. `user_source`
    replaces the MCP client's name and version. Instrumenting twice is a no-op.
    """
    mode = check_record_mode(record)
    resolved = resolve_client(client)
    if resolved is None:
        return
    recorder = CallRecorder(
        resolved,
        user_source=user_source,
        capture_arguments=capture_arguments,
        capture_results=capture_results,
    )
    if _is_fastmcp(server):
        from activity_feed.mcp.fastmcp import ActivityFeedMiddleware

        if any(isinstance(m, ActivityFeedMiddleware) for m in server.middleware):
            logger.debug("activity feed: %r is already instrumented", server)
            return
        server.add_middleware(ActivityFeedMiddleware(record=mode, recorder=recorder))
        return
    chain = getattr(server, "middleware", None)
    if not isinstance(chain, list):
        raise TypeError(
            f"instrument() takes an mcp MCPServer, a low-level mcp Server or a fastmcp FastMCP, "
            f"not {type(server).__name__}; for anything else decorate the tools with track_tool()"
        )
    if any(isinstance(m, ActivityFeedServerMiddleware) for m in chain):
        logger.debug("activity feed: %r is already instrumented", server)
        return
    install_cause_filter()
    chain.append(
        ActivityFeedServerMiddleware(
            recorder, server_name=_text(server, "name"), server_version=_text(server, "version"), record=mode
        )
    )


def _text(server: Any, attribute: str) -> str | None:
    value = getattr(server, attribute, None)
    return value if isinstance(value, str) and value else None

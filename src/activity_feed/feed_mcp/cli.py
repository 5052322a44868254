"""`activity-feed mcp`: the feed's MCP server over stdio, reading a running feed over its REST API.

stdout carries the protocol and nothing else: logging goes to stderr, configured before the server is
made. Importable without the `mcp` extra, so that the command can say it is missing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from activity_feed.client.reader import DEFAULT_FEED_URL, FeedReader
from activity_feed.feed_mcp import available

PREFIX = "activity-feed mcp"
MISSING_EXTRA = "the MCP server needs the mcp extra: pip install '.[mcp]' in Activity Feed's folder"


def add_feed_mcp(commands: Any) -> None:
    command = commands.add_parser(
        "mcp",
        help="an MCP server over stdio whose tools read a running feed (recent activity, errors, stats)",
        description="Serve MCP over stdin and stdout with read-only tools that question a running feed "
        "over its REST API: recent_activity, get_activity, tool_stats, list_sessions, session_activity. "
        'For an AI assistant\'s configuration: command `activity-feed`, args ["mcp"].',
    )
    command.add_argument(
        "--feed-url", help=f"the feed to read (default: ACTIVITY_FEED_URL, else {DEFAULT_FEED_URL})"
    )
    command.add_argument(
        "--token",
        help="the feed's read or write token (default: ACTIVITY_FEED_TOKEN; prefer the environment)",
    )


def run_feed_mcp(args: argparse.Namespace, *, stderr: TextIO | None = None) -> int:
    """Serve until stdin closes; answers the exit code."""
    err = stderr if stderr is not None else sys.stderr
    if not available():
        print(f"{PREFIX}: {MISSING_EXTRA}", file=err)
        return 1
    logging.basicConfig(
        stream=err, level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import anyio

    from activity_feed.feed_mcp.server import build_server

    async def serve() -> None:
        async with FeedReader(args.feed_url, args.token) as reader:
            await build_server(reader).run_stdio_async()

    try:
        anyio.run(serve)
    except KeyboardInterrupt:
        return 130
    return 0

"""`build_server(reader)`: the feed's MCP server, its tools reading through `reader`."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from activity_feed import __version__
from activity_feed.client.reader import FeedReader
from activity_feed.feed_mcp.tools import FeedTools

SERVER_NAME = "activity-feed"
INSTRUCTIONS = """\
Read-only questions to an Activity Feed: the live record of what MCP servers and APIs did (every tool
call with its status, duration and error message, grouped in sessions). Start with recent_activity
(status=error, since=1h for recent failures) or tool_stats; get_activity shows one event in full;
list_sessions and session_activity follow one client's conversation. Times are UTC."""
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


@contextmanager
def _logging_left_alone() -> Iterator[None]:
    """`MCPServer()` calls `logging.basicConfig` (a rich handler on the root logger, level INFO), which
    would change the logging of the whole process (the service's too) and render each failing call's
    traceback slowly. `basicConfig` does nothing while the root logger has a handler: one is there for the
    moment the server is made, and the root logger is left as it was."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeHandler(placeholder)


def build_server(reader: FeedReader) -> MCPServer:
    with _logging_left_alone():
        server: MCPServer = MCPServer(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS)
    for tool in FeedTools(reader).all():
        # The docstring without its indentation: the description a model reads.
        server.add_tool(tool, description=inspect.getdoc(tool), annotations=_READ_ONLY)
    return server

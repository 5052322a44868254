"""Run the example server over stdio: `python -m activity_feed.examples.property_mcp`.

Environment: ACTIVITY_FEED_URL (where tool calls are reported), PROPERTY_DB_PATH (the dataset),
PROPERTY_MCP_CALENDAR_DELAY (seconds `check_availability` takes), PROPERTY_MCP_REPORT_STEP_DELAY (seconds
each city of `portfolio_report` takes), PROPERTY_MCP_RECORD (`tools`, `requests` (default) or `all`),
PROPERTY_MCP_LOG_LEVEL (default WARNING).
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> int:
    # Before the server exists: MCPServer calls logging.basicConfig with a rich-traceback handler that
    # takes about half a second to render each failing call, and basicConfig does nothing once the
    # root logger has a handler. Everything goes to stderr: stdout carries the protocol.
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("PROPERTY_MCP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from activity_feed.examples.property_mcp.server import build_server

    try:
        build_server().run("stdio")
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

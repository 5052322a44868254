"""The test servers over stdio, instrumented from the environment (`ACTIVITY_FEED_URL`), for the tests
that run them as a subprocess: `python -m tests.mcp.stdio_server [lowlevel]`."""

from __future__ import annotations

import logging
import sys

import anyio


def main() -> None:
    # Before MCPServer(): its own handler renders tracebacks slowly, and stdout is the protocol's.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from mcp.server.stdio import stdio_server

    from activity_feed.mcp import instrument
    from tests.mcp.servers import lowlevel_server, property_server

    if sys.argv[1:] == ["lowlevel"]:
        server = lowlevel_server()
        instrument(server, record="all")

        async def serve() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(serve)
    else:
        mcp_server = property_server()
        instrument(mcp_server)
        mcp_server.run("stdio")


if __name__ == "__main__":
    main()

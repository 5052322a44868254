"""`create_app(settings)`: the service as `activity-feed serve` runs it. Nothing connects at import."""

from __future__ import annotations

from fastapi import FastAPI

from activity_feed import __version__
from activity_feed.api.errors import add_catch_all_handler
from activity_feed.api.feed import ActivityFeed
from activity_feed.settings import Settings
from activity_feed.web import install_web


def create_app(settings: Settings | None = None) -> FastAPI:
    """A FastAPI app serving the feed with `settings` (read from the environment when None)."""
    app = FastAPI(
        title="Activity Feed",
        version=__version__,
        description="A live activity feed for MCP servers and HTTP APIs: record, query and stream events.",
    )
    # The MCP tools at /mcp are the service's: an app that embeds the feed may have an /mcp of its own.
    ActivityFeed(settings).install(app, check_host_everywhere=True, serve_mcp=True)
    install_web(app)  # the web feed at `/`; embedding apps opt in with install_web(app) themselves
    add_catch_all_handler(app)
    return app

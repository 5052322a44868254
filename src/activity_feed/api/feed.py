"""`ActivityFeed`: the whole feed (store, hub, routes, stream, lifecycle) as one object, to serve on its own
(`create_app`) or to install into a user's FastAPI app in two lines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from activity_feed.alerts.runner import AlertRunner
from activity_feed.api import alerts, export, ingest_schema, otlp_schema, routes, stream, summaries
from activity_feed.api.auth import TokenAuthMiddleware, document_bearer_auth
from activity_feed.api.content_type import FEED_BODY_TYPES, JSON_TYPES, ContentTypeMiddleware
from activity_feed.api.errors import add_feed_error_handlers
from activity_feed.api.host_check import HostCheckMiddleware
from activity_feed.api.ingest import IngestMiddleware
from activity_feed.api.limits import BodySizeLimitMiddleware
from activity_feed.api.mcp_endpoint import MCP_PATH, install_mcp_endpoint
from activity_feed.api.metrics import METRICS_PATH, metrics_router
from activity_feed.api.otlp import OTLP_TRACES_PATH, OtlpMiddleware
from activity_feed.api.read_limits import STATS_HEADERS, ReadLimits
from activity_feed.api.store_sink import StoreSink
from activity_feed.hub import Hub
from activity_feed.hub.backends import backend_for_url
from activity_feed.metrics import FeedMetrics
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore
from activity_feed.store.maintenance import Maintenance, Retention

if TYPE_CHECKING:
    from starlette.types import Lifespan

# The paths the feed serves in an app it is installed into (without its page).
_FEED_PATHS = ("/activities", "/health", OTLP_TRACES_PATH)


class ActivityFeed:
    """The feed's parts, created without connecting anything; `running()` starts and stops them.

    Embedding in your own FastAPI app::

        app = FastAPI()
        ActivityFeed(Settings()).install(app)
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.hub = Hub(backend_for_url(self.settings.broadcast_url))
        # Replays and statistics take turns (api/read_limits.py), each turn on a connection of its own.
        self.read_limits = ReadLimits.from_settings(self.settings)
        # A registry of this feed's own: several feeds in one process (tests, embedding) never collide.
        self.metrics = FeedMetrics(max_tools=self.settings.metrics_max_tools)
        self.store = ActivityStore(
            self.settings.database_url,
            on_commit=self.hub.publish,
            observer=self.metrics,
            batch_size=self.settings.write_batch_size,
            max_data_bytes=self.settings.max_data_bytes,
            timeout=self.settings.database_timeout.total_seconds(),
            bulk_readers=self.read_limits.connections,
        )
        self.sink = StoreSink(self.store)
        # Retention and the pending timeout, every `maintenance_interval` (store/maintenance.py).
        self.maintenance = maintenance_for(self.store, self.settings)
        # The alerts file is read and checked here: a bad one stops the service before it starts.
        self.alerts = AlertRunner.for_settings(self.settings, store=self.store, hub=self.hub)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start the store (migrating when configured), then the hub; stop in the reverse order, after
        committing whatever is queued."""
        await self.store.start(migrate=self.settings.migrate_on_start)
        try:
            # The hub reads the store: from where the database is now, it delivers every change in
            # order, reading from the database whatever the bus loses (hub/recovery.py). Nothing is
            # written before it starts: requests and maintenance come after.
            await self.hub.start(changes=self.store)
            try:
                self.maintenance.start()
                try:
                    async with self.alerts.running() if self.alerts is not None else nullcontext():
                        yield
                finally:
                    await self.maintenance.stop()  # before the store closes: a pass may be mid-batch
                    await self.sink.drain()
            finally:
                await self.hub.stop()
        finally:
            await self.store.close()

    def install(
        self,
        app: FastAPI,
        *,
        check_host_everywhere: bool = False,
        metrics_path: str | None = METRICS_PATH,
        serve_mcp: bool = False,
    ) -> None:
        """Add the routes, the stream and the feed's lifecycle to `app`, and the Prometheus metrics at
        `metrics_path` (an app that serves its own `/metrics` gives another path, or None for none);
        `serve_mcp` adds the feed's own MCP tools at /mcp.

        Without a token, requests to the feed's endpoints (`/activities`, `/health`) must be addressed to a
        loopback name or an allowed host (api/host_check.py); `check_host_everywhere` extends that to every
        path of `app`, as `create_app` does for the service, whose docs and page are the feed's too.

        `serve_mcp` adds the feed's MCP tools at `/mcp` (api/mcp_endpoint.py), guarded like a read.

        Starlette runs the lifespan of the app it serves but not of mounted sub-apps, so the feed chains
        itself onto `app`'s own lifespan instead of being mounted."""
        app.state.activity_feed = self
        app.include_router(ingest_schema.router)
        app.include_router(otlp_schema.router)
        app.include_router(summaries.router)  # these three ahead of /activities/{event_id}
        app.include_router(export.router)
        app.include_router(alerts.router)
        app.include_router(routes.router)
        app.include_router(routes.health_router)
        app.include_router(stream.router)
        if metrics_path is not None:
            app.include_router(metrics_router(metrics_path))
        add_feed_error_handlers(app)
        if serve_mcp:
            install_mcp_endpoint(app, self.settings)
        # The ingest endpoints, served ahead of FastAPI's routing (api/ingest.py), inside the body limit.
        app.add_middleware(
            IngestMiddleware,
            store=self.store,
            settings=self.settings,
            on_drop_report=self.metrics.client_drops.report,
        )
        # OTLP trace ingest (api/otlp.py), which reads and limits its own body (it may be compressed).
        app.add_middleware(OtlpMiddleware, store=self.store, settings=self.settings)
        app.add_middleware(
            BodySizeLimitMiddleware, max_bytes=self.settings.max_body_bytes, path_prefix="/activities"
        )
        body_types = {**FEED_BODY_TYPES, MCP_PATH: JSON_TYPES} if serve_mcp else FEED_BODY_TYPES
        app.add_middleware(ContentTypeMiddleware, accepted=body_types)
        self._add_security_middleware(
            app,
            check_host_everywhere=check_host_everywhere,
            guarded=(metrics_path,) if metrics_path else (),
            read_only=(MCP_PATH,) if serve_mcp else (),
        )
        app_lifespan = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app_: Any) -> AsyncIterator[Mapping[str, Any] | None]:
            async with self.running(), app_lifespan(app_) as state:
                yield state

        # Starlette types the lifespan as yielding either None or a state mapping; this one passes on
        # whichever the app's own lifespan yields.
        app.router.lifespan_context = cast("Lifespan[Any]", lifespan)

    def _add_security_middleware(
        self,
        app: FastAPI,
        *,
        check_host_everywhere: bool,
        guarded: tuple[str, ...],
        read_only: tuple[str, ...],
    ) -> None:
        # Each add_middleware wraps the ones before: tokens (then the body's type) are checked before a
        # body is read, the Host before anything else, and CORS is outermost so that preflights are
        # answered without a token and a 401 or 421 still carries the CORS headers a browser needs to
        # show it to the page. `guarded`: further paths behind the tokens (/metrics); `read_only`: paths
        # that only read whatever their method (/mcp), for which the read token is enough.
        settings = self.settings
        app.add_middleware(
            TokenAuthMiddleware,
            write_token=settings.token,
            read_token=settings.read_token,
            allowed_origins=settings.allowed_origins,
            allowed_hosts=settings.allowed_hosts,
            path_prefix=("/activities", OTLP_TRACES_PATH, *guarded, *read_only),
            read_only_paths=read_only,
        )
        if settings.token is None:
            app.add_middleware(
                HostCheckMiddleware,
                allowed_hosts=settings.allowed_hosts,
                path_prefixes=("",)
                if check_host_everywhere
                else ("/activities", "/health", OTLP_TRACES_PATH, *guarded, *read_only),
            )
        else:  # no Host check: a DNS-rebinding page cannot learn the token
            document_bearer_auth(app, path_prefix=("/activities", OTLP_TRACES_PATH, *guarded, *read_only))
        if settings.allowed_origins:
            app.add_middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=[*STATS_HEADERS, routes.STREAM_CURSOR_HEADER],
                max_age=600,
            )


def maintenance_for(store: ActivityStore, settings: Settings) -> Maintenance:
    """The periodic maintenance `settings` ask for; a zero turns a job off (docs/configuration.md)."""
    return Maintenance(
        store,
        retention=Retention(
            older_than=timedelta(days=settings.retention_days) if settings.retention_days else None,
            keep=settings.retention_max_events or None,
        ),
        pending_timeout=settings.pending_timeout or None,
        keep_changes=settings.replay_limit,
        interval=settings.maintenance_interval,
        batch_size=settings.maintenance_batch_size,
    )

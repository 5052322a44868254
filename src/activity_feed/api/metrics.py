"""`GET /metrics`: the feed's Prometheus metrics in the text format (docs/metrics.md).

Behind the read token like every other read. The event counts come from the database (a small table the
write transactions keep, store/event_counts.py), so every instance on one database reports the same; the
histograms and the stream's counter are this process's own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from activity_feed.api.deps import HubDep, MetricsDep, StoreDep
from activity_feed.api.responses import MISDIRECTED, UNAUTHORISED
from activity_feed.errors import StoreUnavailableError
from activity_feed.hub import Hub
from activity_feed.metrics import FeedState
from activity_feed.store import ActivityStore

METRICS_PATH = "/metrics"
_EXAMPLE = """\
# HELP activity_feed_events_total events that reached this type and status in the database ...
# TYPE activity_feed_events_total counter
activity_feed_events_total{event_type="tool_call",status="success"} 1042.0
# HELP activity_feed_tool_call_duration_seconds durations of the tool calls this process stored ...
# TYPE activity_feed_tool_call_duration_seconds histogram
activity_feed_tool_call_duration_seconds_bucket{le="0.01",tool_name="search_properties"} 3.0
"""

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every family in the Prometheus text format (version 0.0.4)",
        "content": {"text/plain": {"schema": {"type": "string"}, "example": _EXAMPLE}},
    },
    **UNAUTHORISED,
    **MISDIRECTED,
}


def metrics_router(path: str = METRICS_PATH) -> APIRouter:
    """The route, at `path`: an app that embeds the feed may serve its own `/metrics`."""
    router = APIRouter(tags=["metrics"])
    router.add_api_route(path, metrics, methods=["GET"], response_class=Response, responses=_ANSWERS)
    return router


async def metrics(store: StoreDep, hub: HubDep, feed_metrics: MetricsDep) -> Response:
    """Prometheus metrics: events by type and status (from the database), tool-call durations per tool,
    the writer's queue and commit latency, stream clients, database and bus state, and what clients
    reported dropping. Always 200 while the service runs: a database that does not answer shows as
    `activity_feed_database_up 0`, without the event families."""
    state = await read_state(store, hub)
    return Response(feed_metrics.render(state), media_type=CONTENT_TYPE_PLAIN_0_0_4)


async def read_state(store: ActivityStore, hub: Hub) -> FeedState:
    """What the families read at scrape time hold now. Reading the counts is also the database's ping."""
    try:
        counts = await store.event_counts()
    except StoreUnavailableError:
        counts = None
    writable = counts is not None and await store.write_problem() is None
    return FeedState(
        event_counts=counts,
        database_writable=writable,
        bus_up=hub.bus_problem is None,
        stream_clients=hub.subscriber_count,
        writer_queue_items=store.write_backlog(),
    )

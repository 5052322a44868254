"""Dependency aliases: routes get the running feed's parts by type, never through globals."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends
from starlette.requests import HTTPConnection

from activity_feed.alerts.runner import AlertRunner
from activity_feed.api.read_limits import ReadLimits
from activity_feed.hub import Hub
from activity_feed.metrics import FeedMetrics
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore


class FeedParts(Protocol):
    """What routes use of the feed an app serves (`ActivityFeed.install` puts it in `app.state`)."""

    @property
    def store(self) -> ActivityStore: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def read_limits(self) -> ReadLimits: ...
    @property
    def metrics(self) -> FeedMetrics: ...
    @property
    def alerts(self) -> AlertRunner | None: ...


def get_feed(connection: HTTPConnection) -> FeedParts:
    feed: FeedParts = connection.app.state.activity_feed
    return feed


# Async on purpose: FastAPI runs plain `def` dependencies in its thread pool, a hop per request.


async def get_store(connection: HTTPConnection) -> ActivityStore:
    return get_feed(connection).store


async def get_hub(connection: HTTPConnection) -> Hub:
    return get_feed(connection).hub


async def get_settings(connection: HTTPConnection) -> Settings:
    return get_feed(connection).settings


async def get_read_limits(connection: HTTPConnection) -> ReadLimits:
    return get_feed(connection).read_limits


async def get_metrics(connection: HTTPConnection) -> FeedMetrics:
    return get_feed(connection).metrics


async def get_alerts(connection: HTTPConnection) -> AlertRunner | None:
    return get_feed(connection).alerts


StoreDep = Annotated[ActivityStore, Depends(get_store)]
HubDep = Annotated[Hub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadLimitsDep = Annotated[ReadLimits, Depends(get_read_limits)]
MetricsDep = Annotated[FeedMetrics, Depends(get_metrics)]
AlertsDep = Annotated[AlertRunner | None, Depends(get_alerts)]

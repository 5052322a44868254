"""Turns for heavy reads: stream replays, statistics and exports each run a few at a time, the rest wait
their turn for a bounded time and are then turned away (a replaying client is closed with 1013 and comes
back with its cursor; a stats request or an export gets 503 with Retry-After), so that however many
arrive at once, the service keeps its memory and its database connections for everything else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import HTTPException, Response, status

from activity_feed.api.errors import RETRY_AFTER_SECONDS
from activity_feed.errors import ActivityFeedError
from activity_feed.settings import Settings
from activity_feed.store import StatsWindow

STATS_WINDOW_EVENTS_HEADER = "X-Stats-Window-Events"
STATS_SINCE_HEADER = "X-Stats-Since"
STATS_TRUNCATED_HEADER = "X-Stats-Truncated"
STATS_HEADERS = (STATS_WINDOW_EVENTS_HEADER, STATS_SINCE_HEADER, STATS_TRUNCATED_HEADER)


class NoTurnError(ActivityFeedError):
    """Every turn for this kind of read stayed taken for as long as a request may wait."""


class Turns:
    """At most `size` at once; the others wait in arrival order, each at most `wait` seconds."""

    def __init__(self, what: str, size: int, wait: float) -> None:
        self.what = what
        self.size = size
        self.wait = wait
        self._semaphore = asyncio.Semaphore(size)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for the block; `NoTurnError` when none frees up within the wait."""
        try:
            async with asyncio.timeout(self.wait):
                await self._semaphore.acquire()
        except TimeoutError:
            raise NoTurnError(f"too many {self.what} at once") from None
        try:
            yield
        finally:
            self._semaphore.release()


class ReadLimits:
    """The turns of each kind of heavy read, for one running feed."""

    def __init__(self, *, replays: int, stats: int, wait: float, exports: int = 2) -> None:
        self.replays = Turns("stream replays", replays, wait)
        self.stats = Turns("statistics requests", stats, wait)
        self.exports = Turns("exports", exports, wait)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadLimits:
        return cls(
            replays=settings.max_concurrent_replays,
            stats=settings.max_concurrent_stats,
            exports=settings.max_concurrent_exports,
            wait=settings.read_queue_timeout.total_seconds(),
        )

    @property
    def connections(self) -> int:
        """Database connections that the heavy reads may use at once: one per turn."""
        return self.replays.size + self.stats.size + self.exports.size


@asynccontextmanager
async def answered_turn(turns: Turns) -> AsyncIterator[None]:
    """A turn of `turns` for a request, or 503 with Retry-After when none frees up in time."""
    try:
        async with turns.turn():
            yield
    except NoTurnError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"{exc}; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None


def set_stats_headers(response: Response, window: StatsWindow) -> None:
    """Say which events the statistics cover (the body stays a plain list of tools)."""
    response.headers[STATS_WINDOW_EVENTS_HEADER] = str(window.events)
    response.headers[STATS_TRUNCATED_HEADER] = "true" if window.truncated else "false"
    if window.since is not None:
        response.headers[STATS_SINCE_HEADER] = _iso(window.since)


def _iso(moment: datetime) -> str:
    # In UTC like every timestamp the feed answers; a `since` without a zone is taken as UTC.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")

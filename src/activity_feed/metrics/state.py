"""What one scrape reads at its moment: the database's counts and the service's state, as gauges."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from activity_feed.metrics.client_drops import ClientDrops
from activity_feed.schemas import EventStatus, EventType
from activity_feed.store.event_counts import EventCount


@dataclass(frozen=True, slots=True)
class FeedState:
    # None when the database did not answer: the event families are then left out of the scrape.
    event_counts: Sequence[EventCount] | None = None
    database_writable: bool = False
    bus_up: bool = False
    stream_clients: int = 0
    writer_queue_items: int = 0

    @property
    def database_up(self) -> bool:
        return self.event_counts is not None


class StateCollector(Collector):
    """Families read at scrape time from the latest `FeedState` (set just before each scrape is
    rendered) and from what clients reported."""

    def __init__(self, client_drops: ClientDrops) -> None:
        self.state = FeedState()
        self._client_drops = client_drops

    def describe(self) -> list[Metric]:
        return []  # families that vary by scrape: the registry asks `collect` when it needs names

    def collect(self) -> Iterator[Metric]:
        state = self.state
        for name, documentation, value in (
            ("database_up", "1 when the database answers a query, else 0", state.database_up),
            ("database_writable", "1 when the database takes writes, else 0", state.database_writable),
            ("bus_up", "1 while the bus between instances works, else 0", state.bus_up),
            ("stream_clients", "WebSocket stream clients connected", state.stream_clients),
            ("writer_queue_items", "items no write transaction has taken yet", state.writer_queue_items),
        ):
            yield GaugeMetricFamily(f"activity_feed_{name}", documentation, value=value)
        if state.event_counts is not None:
            yield from _event_families(state.event_counts)
        dropped = CounterMetricFamily(
            "activity_feed_client_dropped",
            "events a FeedClient gave up since it started, by reason, as it last reported them",
            labels=["source", "reason"],
        )
        for source, reason, total in self._client_drops.latest():
            dropped.add_metric([source, reason], total)
        yield dropped


def _event_families(counts: Sequence[EventCount]) -> Iterator[Metric]:
    stored = GaugeMetricFamily(
        "activity_feed_events_stored",
        "events stored in the database now, by type and status",
        labels=["event_type", "status"],
    )
    reached = CounterMetricFamily(
        "activity_feed_events",
        "events that reached this type and status in the database (created with it, or changed to it)",
        labels=["event_type", "status"],
    )
    # Every pair, zero or not, so that a series exists before its first event.
    known = {(count.event_type, count.status): count for count in counts}
    pairs = [(kind.value, status.value) for kind in EventType for status in EventStatus]
    pairs += sorted(known.keys() - set(pairs))  # a type a newer instance stored: still counted
    for pair in pairs:
        count = known.get(pair)
        stored.add_metric(list(pair), count.stored if count else 0)
        reached.add_metric(list(pair), count.reached if count else 0)
    yield stored
    yield reached

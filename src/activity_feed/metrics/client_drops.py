"""What `FeedClient`s reported they dropped (drop_report.py): each source's latest totals, as this
instance last heard them, for the most recently heard `max_sources` sources."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

MAX_SOURCES = 100


class ClientDrops:
    def __init__(self, max_sources: int = MAX_SOURCES) -> None:
        self._max_sources = max_sources
        self._latest: OrderedDict[str, dict[str, int]] = OrderedDict()

    def report(self, source: str, totals: dict[str, int]) -> None:
        """`source` has dropped `totals` since it started, by reason."""
        self._latest[source] = totals
        self._latest.move_to_end(source)
        while len(self._latest) > self._max_sources:
            self._latest.popitem(last=False)  # the source heard from longest ago

    def latest(self) -> Iterator[tuple[str, str, int]]:
        """(source, reason, total) for every source kept."""
        for source, totals in self._latest.items():
            for reason, total in totals.items():
                yield source, reason, total

"""One export, from its decoded body to stored events: map each span, store those the feed keeps (merging
views of one call), and count those it does not, with the reasons the answer gives."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from activity_feed.otlp.decode import PayloadError, decode_json, decode_protobuf
from activity_feed.otlp.mapping import map_span
from activity_feed.otlp.merge import combine
from activity_feed.otlp.spans import spans_of
from activity_feed.redaction import Redactor
from activity_feed.store import ActivityStore
from activity_feed.store.merge import MergeItem

__all__ = ["Export", "PayloadError", "read_export", "store_export"]

TOO_LARGE = "make events whose data is over the size limit per event (ACTIVITY_FEED_MAX_DATA_BYTES)"
NO_PLACE = "could not be stored: each of their ids holds another call"


@dataclass(slots=True)
class Export:
    """An export's spans: the events to store, and how many spans were refused for each reason."""

    items: list[MergeItem] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)

    def rejection(self) -> tuple[int, str | None]:
        """How many spans were not stored, and why, in one message."""
        total = sum(self.refused.values())
        if not total:
            return 0, None
        reasons = "; ".join(f"{count} {reason}" for reason, count in self.refused.most_common())
        return total, f"{total} of the spans were not stored: {reasons}"


def read_export(
    body: bytes, *, as_json: bool, redactor: Redactor, latest: datetime | None, max_data_bytes: int
) -> Export:
    """The events of an export body; `PayloadError` when it cannot be decoded."""
    request = decode_json(body) if as_json else decode_protobuf(body)
    export = Export()
    for span in spans_of(request):
        mapped = map_span(span, redactor=redactor, latest=latest)
        if isinstance(mapped, str):
            export.refused[mapped] += 1
        elif len(orjson.dumps(mapped.event.data)) > max_data_bytes:
            export.refused[TOO_LARGE] += 1
        else:
            export.items.append(mapped)
    return export


async def store_export(store: ActivityStore, export: Export) -> None:
    """Store the export's events; the spans that found no place are counted as refused."""
    if not export.items:
        return
    placed = await store.merge(items=export.items, combine=combine)
    if (lost := placed.count(None)) > 0:
        export.refused[NO_PLACE] += lost

"""One export, from its decoded body to stored events: map each span, store those the feed keeps (merging
views of one call), and count those it does not, with the reasons the answer gives."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from activity_feed.otlp.decode import PayloadError, decode_json, decode_protobuf
from activity_feed.otlp.mapping import map_span
from activity_feed.otlp.merge import combine
from activity_feed.otlp.spans import spans_of
from activity_feed.redaction import Redactor
from activity_feed.store import ActivityStore
from activity_feed.store.merge import MergeItem

__all__ = ["Export", "PayloadError", "decode_export", "store_export"]
# Spans mapped before their events go to the writer, which commits them while the next are mapped.
CHUNK_SPANS = 128

TOO_LARGE = "make events whose data is over the size limit per event (ACTIVITY_FEED_MAX_DATA_BYTES)"
NO_PLACE = "could not be stored: each of their ids holds another call"


@dataclass(slots=True)
class Export:
    """How many of an export's spans were refused, for each reason."""

    refused: Counter[str] = field(default_factory=Counter)

    def rejection(self) -> tuple[int, str | None]:
        """How many spans were not stored, and why, in one message."""
        total = sum(self.refused.values())
        if not total:
            return 0, None
        reasons = "; ".join(f"{count} {reason}" for reason, count in self.refused.most_common())
        return total, f"{total} of the spans were not stored: {reasons}"


def decode_export(body: bytes, *, as_json: bool) -> ExportTraceServiceRequest:
    """An export body in either encoding; `PayloadError` when it cannot be decoded."""
    return decode_json(body) if as_json else decode_protobuf(body)


async def store_export(
    store: ActivityStore,
    request: ExportTraceServiceRequest,
    *,
    redactor: Redactor,
    latest: datetime | None,
    max_data_bytes: int,
) -> Export:
    """Map the export's spans and store the events, a chunk at a time: the writer commits one chunk
    while the next is mapped. Raises what the store raises once every chunk is done (a retried export
    changes nothing that was stored)."""
    export = Export()
    submitted: list[asyncio.Future[list[uuid.UUID | None]]] = []
    chunk: list[MergeItem] = []
    for span in spans_of(request):
        mapped = map_span(span, redactor=redactor, latest=latest)
        if isinstance(mapped, str):
            export.refused[mapped] += 1
            continue
        if len(orjson.dumps(mapped.event.data)) > max_data_bytes:
            export.refused[TOO_LARGE] += 1
            continue
        chunk.append(mapped)
        if len(chunk) == CHUNK_SPANS:
            submitted.append(asyncio.ensure_future(store.merge(items=chunk, combine=combine)))
            chunk = []
            await asyncio.sleep(0)  # the writer takes the chunk before the next is mapped
    if chunk:
        submitted.append(asyncio.ensure_future(store.merge(items=chunk, combine=combine)))
    lost = 0
    for outcome in await asyncio.gather(*submitted, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
        lost += outcome.count(None)
    if lost:
        export.refused[NO_PLACE] += lost
    return export

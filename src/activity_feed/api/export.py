"""`GET /activities/export`: every event that matches, oldest first, as JSON lines streamed page by page
(store/export.py), whatever their number. `activity-feed export` reads it.

Included ahead of `/activities/{event_id}`, which would otherwise take `export` for an event id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from activity_feed.api.deps import ReadLimitsDep, StoreDep
from activity_feed.api.fast_json import OrjsonRoute
from activity_feed.api.read_limits import answered_turn
from activity_feed.api.responses import MISDIRECTED, TOO_LARGE, UNAUTHORISED, UNAVAILABLE
from activity_feed.api.since import (
    SinceQuery,
    parse_since,
)
from activity_feed.errors import StoreUnavailableError
from activity_feed.schemas import EventStatus, EventType
from activity_feed.store import ExportPage, ExportQuery

log = logging.getLogger(__name__)
NDJSON = "application/x-ndjson"

router = APIRouter(
    prefix="/activities",
    tags=["activities"],
    route_class=OrjsonRoute,
    responses={**UNAUTHORISED, **MISDIRECTED, **TOO_LARGE, **UNAVAILABLE},
)

_LINE_EXAMPLE = (
    '{"id":"01936f4c-8a3e-7c2b-9a41-1f2e3d4c5b6a","timestamp":"2026-12-01T09:00:00.120000Z",'
    '"tool_name":"search_properties","user_source":"Claude Desktop","event_type":"tool_call",'
    '"status":"success","data":{"arguments":{"city":"Leeds"}},"duration_ms":41.0,"error_message":null,'
    '"correlation_id":"conversation-7","session_id":null}\n'
)
_EXPORT_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every matching event, oldest first, one JSON object per line (the event as every "
        "endpoint shows it); an empty body when none matches",
        "content": {
            NDJSON: {
                "schema": {"type": "string", "description": "JSON lines: one `ActivityPublic` per line"},
                "example": _LINE_EXAMPLE,
            }
        },
    }
}


class ExportResponse(StreamingResponse):
    """Streams the pages. When the database fails midway, it stops without ending the body, so that the
    client sees an answer cut short (an incomplete chunked body) rather than one that looks whole.
    `finish` runs once the answer is over, however it ended (the client may have gone midway). (Set after
    construction: FastAPI reads the constructor's signature for the schema.)"""

    finish: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.finish is not None:
                await self.finish()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                body = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode()
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except StoreUnavailableError as exc:
            log.warning("an export was cut short: %s", exc)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lines(first: ExportPage | None, pages: AsyncGenerator[ExportPage, None]) -> AsyncIterator[bytes]:
    if first is None:
        return
    yield first.lines
    async for page in pages:
        yield page.lines


@router.get("/export", response_class=ExportResponse, responses=_EXPORT_ANSWER)
async def export_activities(
    store: StoreDep,
    limits: ReadLimitsDep,
    event_type: EventType | None = None,
    status: EventStatus | None = None,
    tool_name: Annotated[str | None, Query(max_length=200)] = None,
    user_source: Annotated[str | None, Query(max_length=200)] = None,
    correlation_id: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[
        str | None, Query(max_length=200, description="only the events of this session")
    ] = None,
    since: SinceQuery = None,
) -> ExportResponse:
    """Every event that matches the filters (as for `recent`), as JSON lines (`application/x-ndjson`),
    oldest first (by `timestamp`, then arrival), streamed as it is read, a page at a time: the answer
    may hold millions of events. Only the events stored when the export began are written; an event
    changed meanwhile is written as it is when its page is read. If the database fails midway the body
    ends without its last chunk: a client must treat an incomplete body as a failed export."""
    query = ExportQuery(
        event_type=event_type,
        status=status,
        tool_name=tool_name,
        user_source=user_source,
        correlation_id=correlation_id,
        session_id=session_id,
        since=parse_since(since, now=datetime.now(UTC)) if since is not None else None,
    )
    # The export's turn (api/read_limits.py) is held until its answer is over.
    held = AsyncExitStack()
    await held.enter_async_context(answered_turn(limits.exports))
    try:
        pages = store.export(query)
        held.push_async_callback(pages.aclose)
        # The first page is read before answering, so that a database that does not answer is a 503.
        first = await anext(pages, None)
    except BaseException:
        await held.aclose()
        raise
    response = ExportResponse(_lines(first, pages), media_type=NDJSON)
    response.finish = held.aclose
    return response

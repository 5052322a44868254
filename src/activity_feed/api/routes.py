"""The REST endpoints under `/activities` and `/health`. Thin: they call the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse

from activity_feed.api.deps import HubDep, SettingsDep, StoreDep
from activity_feed.api.errors import RETRY_AFTER_SECONDS
from activity_feed.api.fast_json import OrjsonRoute
from activity_feed.api.limits import check_data_size
from activity_feed.api.responses import (
    FORBIDDEN,
    MISDIRECTED,
    NOT_FOUND,
    TOO_LARGE,
    UNAUTHORISED,
    UNAVAILABLE,
    UNSUPPORTED_TYPE,
    HealthUnavailable,
)
from activity_feed.api.since import (
    SinceQuery,
    parse_since,
)
from activity_feed.errors import StoreUnavailableError
from activity_feed.hub import encode_cursor
from activity_feed.schemas import (
    ActivityPublic,
    ActivityUpdate,
    EventStatus,
    EventType,
)
from activity_feed.store import RecentQuery

router = APIRouter(
    prefix="/activities",
    tags=["activities"],
    route_class=OrjsonRoute,
    responses={**UNAUTHORISED, **MISDIRECTED, **TOO_LARGE, **UNAVAILABLE},
)
health_router = APIRouter(tags=["health"], responses=MISDIRECTED)

# On `recent`: the stream cursor of the moment the page was read, so that a client can show the page and
# then follow the stream from there (`?since=`) with no gap and no duplicate.
STREAM_CURSOR_HEADER = "X-Stream-Cursor"


def _missing(event_id: uuid.UUID) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no event with id {event_id}")


@router.get(
    "/recent",
    responses={
        200: {
            "headers": {
                STREAM_CURSOR_HEADER: {
                    "description": "the stream cursor this page is consistent with: pass it as `since` "
                    "to /activities/ws to get every change after the page, and none before",
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
async def recent_activities(
    store: StoreDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    event_type: EventType | None = None,
    status: EventStatus | None = None,
    tool_name: Annotated[str | None, Query(max_length=200)] = None,
    user_source: Annotated[str | None, Query(max_length=200)] = None,
    correlation_id: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[
        str | None,
        Query(
            max_length=200, description="only the events of this session", examples=["3f1c9a7e-mcp-session"]
        ),
    ] = None,
    since: SinceQuery = None,
    before: Annotated[uuid.UUID | None, Query(description="only events older than this event")] = None,
) -> list[ActivityPublic]:
    """Newest first, with optional exact-match filters and `since`; page back with
    `before=<last id seen>`. The `X-Stream-Cursor` header is the stream cursor of the same moment."""
    query = RecentQuery(
        limit=limit,
        event_type=event_type,
        status=status,
        tool_name=tool_name,
        user_source=user_source,
        correlation_id=correlation_id,
        session_id=session_id,
        since=parse_since(since, now=datetime.now(UTC)) if since is not None else None,
        before=before,
    )
    page = await store.recent_page(query=query)
    response.headers[STREAM_CURSOR_HEADER] = encode_cursor(page.cursor)
    return page.events


@router.get("/{event_id}", responses=NOT_FOUND)
async def get_activity(event_id: uuid.UUID, store: StoreDep) -> ActivityPublic:
    event = await store.get(event_id=event_id)
    if event is None:
        raise _missing(event_id)
    return event


@router.patch("/{event_id}", responses={**NOT_FOUND, **FORBIDDEN, **UNSUPPORTED_TYPE})
async def update_activity(
    event_id: uuid.UUID, changes: ActivityUpdate, store: StoreDep, settings: SettingsDep
) -> ActivityPublic:
    """Change `status`, `duration_ms`, `error_message`; `data` is merged into the stored object."""
    # The patch's own `data` is checked here; the store refuses a merge that would grow the stored
    # object past the limit (413 as well), since only it sees the stored object.
    check_data_size(changes.data, max_bytes=settings.max_data_bytes)
    event = await store.update(event_id=event_id, changes=changes)
    if event is None:
        raise _missing(event_id)
    return event


@router.delete("/{event_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **FORBIDDEN})
async def delete_activity(event_id: uuid.UUID, store: StoreDep) -> Response:
    if not await store.delete(event_id=event_id):
        raise _missing(event_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@health_router.get(
    "/health",
    responses={
        503: {"model": HealthUnavailable, "description": "The database does not answer, or takes no writes"}
    },
)
async def health(store: StoreDep, hub: HubDep) -> Any:
    """200 when the database answers and takes writes, 503 otherwise (`writes` says why: read-only,
    locked by another process, full). `bus` is `ok`, or `degraded: <why>` while the bus (Redis) is down:
    still 200, since changes are stored and clients get them from the database."""
    problem = hub.bus_problem
    bus = "ok" if problem is None else f"degraded: {problem}"
    try:
        await store.ping()
    except StoreUnavailableError as exc:
        return JSONResponse(
            {"status": "unavailable", "database": str(exc), "bus": bus},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    clients = hub.subscriber_count
    if (writes := await store.write_problem()) is not None:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "writes": f"failing: {writes}",
                "bus": bus,
                "stream_clients": clients,
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return {"status": "ok", "database": "ok", "writes": "ok", "bus": bus, "stream_clients": clients}

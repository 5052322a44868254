"""The example property-management HTTP API, reporting every request to the feed.

    python -m activity_feed.examples.property_api      # port PROPERTY_API_PORT, default 8001

It serves the same dataset as the example MCP server, and reports each request as an `api_request`
event through `ActivityLoggerMiddleware` and a `FeedClient` (to ACTIVITY_FEED_URL), as the original
property-management app did.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from activity_feed.client import ClientSink, FeedClient
from activity_feed.examples.property_data import (
    MAX_DESCRIPTION_CHARS,
    InvalidRequestError,
    NotFoundError,
    PropertyData,
)
from activity_feed.middleware import ActivityLoggerMiddleware, ActivitySink

DEFAULT_PORT = 8001
USER_SOURCE = "property-api"
# Seconds given to queued events on shutdown: long enough for a live feed, short enough for a dead one.
CLOSE_TIMEOUT = 2.0


class MaintenanceRequestCreate(BaseModel):
    property_id: int
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    priority: Literal["low", "medium", "high", "urgent"]


def create_property_api(
    data: PropertyData | None = None, *, sink: ActivitySink | None = None, client: FeedClient | None = None
) -> FastAPI:
    """The example API over `data` (default: PROPERTY_DB_PATH), reporting to `sink`, else through
    `client`, else through a `FeedClient` to ACTIVITY_FEED_URL that the app closes on shutdown."""
    store = data if data is not None else PropertyData()
    owned = None
    if sink is None:
        if client is None:
            client = owned = FeedClient()
        sink = ClientSink(client)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned is not None:
            owned.close(CLOSE_TIMEOUT)

    app = FastAPI(title="Property management (Activity Feed example)", lifespan=lifespan)
    app.add_middleware(ActivityLoggerMiddleware, sink=sink, user_source=USER_SOURCE)

    # Plain `def` routes: FastAPI runs them in its thread pool, where blocking sqlite3 calls belong.

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/properties")
    def search_properties(
        city: str | None = None,
        max_rent: Annotated[int | None, Query(ge=0)] = None,
        min_bedrooms: Annotated[int | None, Query(ge=0)] = None,
    ) -> list[dict[str, Any]]:
        return store.search_properties(city=city, max_rent=max_rent, min_bedrooms=min_bedrooms)

    @app.get("/properties/{property_id}")
    def get_property(property_id: int) -> dict[str, Any]:
        try:
            return store.get_property(property_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/properties/{property_id}/tenants")
    def list_tenants(property_id: int) -> list[dict[str, Any]]:
        try:
            return store.list_tenants(property_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/maintenance-requests")
    def list_maintenance_requests(
        property_id: int | None = None,
        status: Literal["open", "in_progress", "resolved"] | None = None,
    ) -> list[dict[str, Any]]:
        try:
            return store.list_maintenance_requests(property_id=property_id, status=status)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.post("/maintenance-requests", status_code=201)
    def create_maintenance_request(body: MaintenanceRequestCreate) -> dict[str, Any]:
        try:
            return store.create_maintenance_request(
                property_id=body.property_id, description=body.description, priority=body.priority
            )
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except InvalidRequestError as exc:
            raise HTTPException(422, str(exc)) from None

    return app


def main() -> None:
    import uvicorn

    port = int(os.environ.get("PROPERTY_API_PORT") or DEFAULT_PORT)
    uvicorn.run(create_property_api(), host=os.environ.get("PROPERTY_API_HOST", "127.0.0.1"), port=port)


if __name__ == "__main__":
    main()

"""`POST /activities/log` and `POST /activities/batch` as the OpenAPI schema declares them.

api/ingest.py serves both, ahead of FastAPI's routing; these routes only describe them (FastAPI builds the
schema from their signatures, as for any route) and never match a request, so there is one front door.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from activity_feed.api.responses import (
    FORBIDDEN,
    MISDIRECTED,
    TOO_LARGE,
    UNAUTHORISED,
    UNAVAILABLE,
    UNSUPPORTED_TYPE,
)
from activity_feed.schemas import ActivityCreate, ActivityPublic, BatchRequest, BatchResult


class DeclaredOnlyRoute(APIRoute):
    """A route in the schema that routing never picks: its endpoint is served elsewhere."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return Match.NONE, {}


router = APIRouter(
    prefix="/activities",
    tags=["activities"],
    route_class=DeclaredOnlyRoute,
    responses={**UNAUTHORISED, **MISDIRECTED, **TOO_LARGE, **UNAVAILABLE, **FORBIDDEN, **UNSUPPORTED_TYPE},
)


def _served_by_ingest() -> Any:
    raise NotImplementedError("served by api/ingest.py ahead of routing; this route only declares it")


@router.post(
    "/log",
    status_code=status.HTTP_201_CREATED,
    response_model=ActivityPublic,
    responses={200: {"model": ActivityPublic, "description": "An event with this id exists: returned as is"}},
)
async def log_activity(event: ActivityCreate) -> Any:
    """Record one event. Replaying a create with the same `id` changes nothing and answers 200."""
    return _served_by_ingest()


@router.post("/batch", response_model=BatchResult, response_model_exclude_unset=True)
async def apply_batch(batch: BatchRequest) -> Any:
    """Create `events`, then apply `updates`, in one transaction (at most 1,000 of each)."""
    return _served_by_ingest()

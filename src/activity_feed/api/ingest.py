"""The two ingest endpoints, `POST /activities/log` and `POST /activities/batch`, served by plain Starlette
routes placed ahead of FastAPI's.

They are the busiest endpoints, and FastAPI's per-request machinery (solving dependencies, parsing the
query string, decoding the JSON and then validating the decoded objects) cost more than the feed's own
work. Here pydantic validates the body straight from its bytes (`model_validate_json`, in Rust), and the
answers are what FastAPI would give: the same 422 shape (`loc` starting with `"body"`), the same handlers
for 413 and 503. The FastAPI routes of the same paths in routes.py declare the endpoints in the OpenAPI
schema and do the same work (`record`, `record_batch`) for any app that mounts them without these
routes; tests/api/test_ingest.py and the schema tests hold both to the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activity_feed.api.deps import get_feed
from activity_feed.api.limits import check_batch_data_sizes, check_data_size
from activity_feed.schemas import ActivityCreate, BatchRequest

if TYPE_CHECKING:
    from activity_feed.api.feed import ActivityFeed


def _invalid(exc: ValidationError) -> JSONResponse:
    # FastAPI's own shape for an invalid body (`HTTPValidationError`), which is what the schema declares.
    errors = [_in_body(error) for error in exc.errors(include_url=False)]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _in_body(error: ErrorDetails) -> dict[str, Any]:
    located = {**error, "loc": ("body", *error["loc"])}
    if isinstance(error["input"], bytes):  # a body that is not JSON at all: say what it was, as text
        located["input"] = error["input"].decode("utf-8", "replace")
    return located


ModelT = TypeVar("ModelT", bound=BaseModel)


async def _parse(request: Request, model: type[ModelT]) -> ModelT | JSONResponse:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        return _invalid(exc)


async def record(feed: ActivityFeed, event: ActivityCreate) -> Response:
    """Store one event: 201, or 200 with the stored event when its id exists (what routes.py declares)."""
    check_data_size(event.data, max_bytes=feed.settings.max_data_bytes)
    stored, created = await feed.store.create(event=event)
    # Serialised here rather than by FastAPI, which would validate the event it was just handed again.
    status = 201 if created else 200
    return Response(stored.model_dump_json(), status_code=status, media_type="application/json")


async def record_batch(feed: ActivityFeed, batch: BatchRequest) -> Response:
    """Apply a batch: the counts, with `too_large` only when some update was refused."""
    check_batch_data_sizes(
        [event.data for event in batch.events],
        [update.data for update in batch.updates],
        max_bytes=feed.settings.max_data_bytes,
    )
    result = await feed.store.apply_batch(creates=batch.events, updates=batch.updates)
    return Response(result.model_dump_json(exclude_unset=True), media_type="application/json")


async def log_activity(request: Request) -> Response:
    event = await _parse(request, ActivityCreate)
    if isinstance(event, JSONResponse):
        return event
    return await record(get_feed(request), event)


async def apply_batch(request: Request) -> Response:
    batch = await _parse(request, BatchRequest)
    if isinstance(batch, JSONResponse):
        return batch
    return await record_batch(get_feed(request), batch)


def ingest_routes() -> list[Any]:
    """The fast routes, to be matched before the FastAPI routes of the same paths."""
    return [
        Route("/activities/log", log_activity, methods=["POST"], include_in_schema=False),
        Route("/activities/batch", apply_batch, methods=["POST"], include_in_schema=False),
    ]

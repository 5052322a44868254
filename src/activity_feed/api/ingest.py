"""The two ingest endpoints, `POST /activities/log` and `POST /activities/batch`, served by a pure ASGI
middleware just inside the feed's own (auth, body size), ahead of FastAPI's routing.

They are the busiest endpoints, and FastAPI's per-request machinery cost more than the feed's own work:
its inner middleware and routing (every await of a request passes through each layer), solving
dependencies, decoding the JSON and then validating the decoded objects. Here pydantic validates the body
straight from its bytes (`model_validate_json`, in Rust), and the answers are what FastAPI would give: the
same 422 shape (`loc` starting with `"body"`), the same handlers for 413 and 503; anything unexpected
still reaches the app's catch-all 500. This is the endpoints' one front door: api/ingest_schema.py only
declares them in the OpenAPI schema, with routes that routing never picks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from activity_feed.api.clock_skew import refuse_event_ahead, refuse_events_ahead
from activity_feed.api.errors import store_unavailable
from activity_feed.api.limits import check_batch_data_sizes, check_data_size
from activity_feed.drop_report import read_report
from activity_feed.errors import StoreUnavailableError
from activity_feed.schemas import ActivityCreate, BatchRequest
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore


def _invalid(exc: ValidationError) -> JSONResponse:
    # FastAPI's own shape for an invalid body (`HTTPValidationError`), which is what the schema declares.
    errors = [_in_body(error) for error in exc.errors(include_url=False)]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _in_body(error: ErrorDetails) -> dict[str, Any]:
    located = {**error, "loc": ("body", *error["loc"]), "input": _as_json(error["input"])}
    if isinstance(error["input"], bytes):  # a body that is not JSON at all: say what it was, as text
        located["input"] = error["input"].decode("utf-8", "replace")
    return located


def _as_json(value: Any) -> Any:
    """`value` with NaN and the infinities (which pydantic's JSON parser accepts, and JSON cannot hold)
    spelled as text, so that the answer that refuses them can be written."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    return value


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(body: bytes, model: type[ModelT]) -> ModelT | JSONResponse:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        return _invalid(exc)


async def record(store: ActivityStore, settings: Settings, event: ActivityCreate) -> Response:
    """Store one event: 201, or 200 with the stored event when its id exists (ingest_schema.py)."""
    if (refusal := refuse_event_ahead(event, max_skew=settings.max_clock_skew)) is not None:
        return refusal
    check_data_size(event.data, max_bytes=settings.max_data_bytes)
    stored, created = await store.create(event=event)
    # Serialised here rather than by FastAPI, which would validate the event it was just handed again.
    status = 201 if created else 200
    return Response(stored.model_dump_json(), status_code=status, media_type="application/json")


async def record_batch(store: ActivityStore, settings: Settings, batch: BatchRequest) -> Response:
    """Apply a batch: the counts, with `too_large` only when some update was refused."""
    if (refusal := refuse_events_ahead(batch.events, max_skew=settings.max_clock_skew)) is not None:
        return refusal
    check_batch_data_sizes(
        [event.data for event in batch.events],
        [update.data for update in batch.updates],
        max_bytes=settings.max_data_bytes,
    )
    result = await store.apply_batch(creates=batch.events, updates=batch.updates)
    return Response(result.model_dump_json(exclude_unset=True), media_type="application/json")


async def _log_activity(store: ActivityStore, settings: Settings, body: bytes) -> Response:
    event = _parse(body, ActivityCreate)
    if isinstance(event, JSONResponse):
        return event
    return await record(store, settings, event)


async def _apply_batch(store: ActivityStore, settings: Settings, body: bytes) -> Response:
    batch = _parse(body, BatchRequest)
    if isinstance(batch, JSONResponse):
        return batch
    return await record_batch(store, settings, batch)


_BATCH_PATH = "/activities/batch"
_ENDPOINTS = {"/activities/log": _log_activity, _BATCH_PATH: _apply_batch}
# Hears what a FeedClient reports it dropped: its source and totals by reason (drop_report.py).
OnDropReport = Callable[[str, dict[str, int]], None]


_METHOD_NOT_ALLOWED = JSONResponse({"detail": "Method Not Allowed"}, 405, {"Allow": "POST"})


class IngestMiddleware:
    """Serve `POST /activities/log` and `POST /activities/batch` (405 for other methods on those paths);
    pass anything else on to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: ActivityStore,
        settings: Settings,
        on_drop_report: OnDropReport | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.on_drop_report = on_drop_report

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _ENDPOINTS.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _METHOD_NOT_ALLOWED(scope, receive, send)
            return
        # FeedClient sends batches only: `log` is left as it was, since it is the busiest endpoint.
        if self.on_drop_report is not None and scope["path"] == _BATCH_PATH:
            report = read_report(scope["headers"])
            if report is not None:
                self.on_drop_report(*report)
        request = Request(scope, receive)
        try:
            body = await request.body()  # over the size limit: BodySizeLimitMiddleware answers 413
        except ClientDisconnect:
            return
        try:
            response = await endpoint(self.store, self.settings, body)
        except HTTPException as exc:  # data over the limit (api/limits.py), as the app's handlers answer it
            response = await http_exception_handler(request, exc)
        except StoreUnavailableError as exc:
            response = await store_unavailable(request, exc)
        await response(scope, receive, send)

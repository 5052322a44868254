"""`POST /v1/traces` as the OpenAPI schema declares it.

api/otlp.py serves it ahead of routing (a pure ASGI middleware, which reads and limits its own body); this
route only describes it, as api/ingest_schema.py does for the ingest endpoints, and never matches a
request. Bodies are OTLP's own messages, in either of its encodings: the schema names them rather than
spelling out opentelemetry-proto's message tree.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from activity_feed.api.ingest_schema import DeclaredOnlyRoute
from activity_feed.api.otlp import JSON, OTLP_TRACES_PATH, PROTOBUF
from activity_feed.api.responses import FORBIDDEN, MISDIRECTED, UNAUTHORISED, ErrorDetail

_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
# A refusal: `google.rpc.Status` as OTLP asks (its JSON also says the message as `detail`, like the feed's
# other answers); the middleware in front of every endpoint (Content-Type, body size) answers `detail`
# alone.
_REFUSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "the gRPC status code"},
        "message": {"type": "string"},
        "detail": {"type": "string"},
    },
    "required": ["detail"],
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


def _refusal(description: str, *, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": f"{description}; in the request's encoding",
        "content": {JSON: {"schema": _REFUSAL_SCHEMA}, PROTOBUF: _BINARY},
    }
    if retry:
        answer["headers"] = _RETRY_AFTER
    return answer


_REQUEST_BODY = {
    "required": True,
    "description": "An OTLP `ExportTraceServiceRequest`, as protobuf or as OTLP's JSON (ids in hex), "
    "optionally with `Content-Encoding: gzip` or `deflate`",
    "content": {
        PROTOBUF: _BINARY,
        JSON: {
            "schema": {
                "type": "object",
                "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}},
            }
        },
    },
}
_ACCEPTED = {
    "description": "Stored, all or in part: an `ExportTraceServiceResponse` in the request's encoding, "
    "whose `partialSuccess` counts the spans not stored and says why",
    "content": {
        JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "partialSuccess": {
                        "type": "object",
                        "properties": {
                            "rejectedSpans": {"type": "string", "description": "an int64, as text"},
                            "errorMessage": {"type": "string"},
                        },
                    }
                },
            }
        },
        PROTOBUF: _BINARY,
    },
}

router = APIRouter(
    tags=["otlp"],
    route_class=DeclaredOnlyRoute,
    responses={**UNAUTHORISED, **MISDIRECTED, **FORBIDDEN},
)


@router.post(
    OTLP_TRACES_PATH,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        200: _ACCEPTED,
        400: _refusal("A body that cannot be decoded"),
        413: _refusal("A body over ACTIVITY_FEED_MAX_BODY_BYTES, as sent or inflated"),
        415: _refusal("A Content-Type or Content-Encoding the endpoint cannot read"),
        429: _refusal("The writer is behind: retry later", retry=True),
        501: {"model": ErrorDetail, "description": "The `otlp` extra (opentelemetry-proto) is not installed"},
        503: _refusal("The database does not answer: retry later", retry=True),
    },
)
async def export_traces() -> Any:
    """OTLP/HTTP trace ingest: point any OpenTelemetry SDK at the feed
    (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8000`). MCP spans of either side become the feed's MCP
    events (a client's and a server's span of one call merge into one event), HTTP server spans become
    `api_request` events; each stored span is streamed like any other change."""
    raise NotImplementedError("served by api/otlp.py ahead of routing; this route only declares it")

"""An OTLP/HTTP trace export, read from its protobuf or JSON encoding into `ExportTraceServiceRequest`.

The JSON encoding is protobuf's JSON mapping with one difference the specification makes: trace and span
ids are hex strings, not base64. They are turned into base64 where the specification puts them, and the
rest is left to protobuf's own parser, which also ignores fields it does not know, as receivers must.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from activity_feed.errors import ActivityFeedError

_HEX = re.compile(r"[0-9a-fA-F]*")
_SHOWN_CHARS = 200
# Where ids sit: request -> resource spans -> scope spans -> spans (and each span's links), under the
# JSON names or the proto field names (protobuf's parser takes both).
_RESOURCE_SPANS = ("resourceSpans", "resource_spans")
_SCOPE_SPANS = ("scopeSpans", "scope_spans")
_SPAN_IDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_LINK_IDS = ("traceId", "trace_id", "spanId", "span_id")


class PayloadError(ActivityFeedError):
    """A body that is not an OTLP trace export in the encoding it declares."""


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise PayloadError(f"the body is not a protobuf ExportTraceServiceRequest: {_shown(exc)}") from None
    return request


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the body is not JSON: {_shown(exc)}") from None
    if not isinstance(document, dict):
        raise PayloadError("the body must be a JSON object (an ExportTraceServiceRequest)")
    for resource in _items(document, _RESOURCE_SPANS):
        for scope in _items(resource, _SCOPE_SPANS):
            for span in _items(scope, ("spans",)):
                _ids_as_base64(span, _SPAN_IDS)
                for link in _items(span, ("links",)):
                    _ids_as_base64(link, _LINK_IDS)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
        raise PayloadError(f"the body is not an OTLP ExportTraceServiceRequest: {_shown(exc)}") from None
    return request


def _items(parent: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The objects of the list `parent` holds under one of `names`; anything else is left for protobuf's
    parser to refuse with its own message."""
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def _ids_as_base64(holder: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = holder.get(name)
        if not isinstance(value, str):
            continue
        if _HEX.fullmatch(value) is None or len(value) % 2:
            shown = value[:40]
            raise PayloadError(f"{name} must be hex digits in OTLP/JSON (got {shown!r})")
        holder[name] = base64.b64encode(bytes.fromhex(value)).decode()


def _shown(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"

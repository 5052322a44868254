"""The spans of an export, flattened: each with its resource's service and its attributes as plain values.

Every string that may be stored is made storable here: PostgreSQL cannot hold NUL in text or JSON, so a
NUL becomes U+FFFD; a double that JSON cannot hold (NaN, the infinities) becomes its text.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags

SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
_HAS_IS_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK


@dataclass(slots=True)
class Service:
    """The resource's `service.name` and `service.version`, when it names them."""

    name: str | None = None
    version: str | None = None


@dataclass(slots=True)
class SpanRecord:
    """One span, as the mapping reads it. Ids are lowercase hex; empty when the span had none."""

    trace_id: str
    span_id: str
    parent_span_id: str
    # Whether the parent is in another process (propagated to this one); None when the exporter did not say.
    remote_parent: bool | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    service: Service


def spans_of(request: ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    """Every span of `request`, in order."""
    for resource_spans in request.resource_spans:
        service = _service(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _record(span, service)


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def _service(attributes: Any) -> Service:
    service = Service()
    for attribute in attributes:
        if attribute.key == SERVICE_NAME:
            service.name = _text_of(attribute.value)
        elif attribute.key == SERVICE_VERSION:
            service.version = _text_of(attribute.value)
    return service


def _text_of(value: AnyValue) -> str | None:
    plain = value_of(value)
    if plain is None or plain == "":
        return None
    return plain if isinstance(plain, str) else str(plain)


def _record(span: Span, service: Service) -> SpanRecord:
    flags = span.flags
    remote = bool(flags & _IS_REMOTE) if flags & _HAS_IS_REMOTE else None
    return SpanRecord(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        remote_parent=remote,
        name=storable(span.name),
        kind=span.kind,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status_code=span.status.code,
        status_message=storable(span.status.message),
        attributes=attributes_of(span.attributes),
        service=service,
    )


def attributes_of(attributes: Any) -> dict[str, Any]:
    """`KeyValue`s as a dict of plain values (the last one wins when a key repeats)."""
    result: dict[str, Any] = {}
    attribute: KeyValue
    for attribute in attributes:
        result[storable(attribute.key)] = value_of(attribute.value)
    return result


def value_of(value: AnyValue) -> Any:
    """An `AnyValue` as a plain, storable value: None when it holds nothing."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return storable(value.string_value)
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def storable(text: str) -> str:
    """`text` without NUL characters, which neither database stores."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text

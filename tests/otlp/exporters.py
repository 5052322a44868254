"""OTLP bodies made by OpenTelemetry's own SDK encoder, in both encodings, and an exporter for the JSON one.

OpenTelemetry's Python exporter speaks protobuf only; `JsonSpanExporter` sends the same request in the
JSON encoding the specification defines (protobuf's JSON mapping, ids in hex, enums as numbers).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def json_document(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The export as OTLP/JSON, before encoding: protobuf's mapping with hex ids."""
    document: dict[str, Any] = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return document


def json_body(spans: Sequence[ReadableSpan]) -> bytes:
    return orjson.dumps(json_document(spans))


def _hex_ids(holder: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        if key in holder:
            holder[key] = base64.b64decode(holder[key]).hex()


def traces_endpoint() -> str:
    """Where OpenTelemetry's exporter sends traces, from the same environment variables."""
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if explicit:
        return explicit
    return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").rstrip("/") + "/v1/traces"


class JsonSpanExporter(SpanExporter):
    """Exports spans as OTLP/JSON over HTTP (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json`)."""

    def __init__(self, endpoint: str | None = None, headers: dict[str, str] | None = None) -> None:
        self._client = httpx.Client(timeout=10.0)
        self._endpoint = endpoint or traces_endpoint()
        self._headers = {"Content-Type": "application/json", **(headers or {})}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            response = self._client.post(self._endpoint, content=json_body(spans), headers=self._headers)
        except httpx.HTTPError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if response.status_code == 200 else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._client.close()

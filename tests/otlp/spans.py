"""Real spans made by OpenTelemetry's SDK in this process, without touching its global tracer provider:
each `SpanMaker` has a provider of its own that keeps what it records in memory.

`call_spans` records one MCP call as the official SDK does: the client's span (`MCP send tools/call add`,
CLIENT) and, inside it as a remote child, the server's span (`tools/call add`, SERVER), each from its own
service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode


class SpanMaker:
    """Spans of one service (`service.name`), recorded in memory."""

    def __init__(self, service: str, version: str | None = None) -> None:
        attributes = {"service.name": service, **({"service.version": version} if version else {})}
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create(attributes))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests.otlp")

    def span(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.SERVER,
        attributes: dict[str, Any] | None = None,
        parent: trace.SpanContext | None = None,
        error: str | None = None,
    ) -> ReadableSpan:
        """One finished span (a child of `parent` when given); `error`: its status description."""
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else None
        with self.tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, context=context, set_status_on_exception=False
        ) as span:
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error or None))
        return self.exporter.get_finished_spans()[-1]


def remote(span: ReadableSpan) -> trace.SpanContext:
    """`span`'s context as another process receives it (in `params._meta.traceparent`)."""
    context = span.get_span_context()
    assert context is not None
    return trace.SpanContext(
        context.trace_id, context.span_id, is_remote=True, trace_flags=context.trace_flags
    )


def call_spans(
    client: SpanMaker,
    server: SpanMaker,
    *,
    tool: str = "add",
    request_id: str = "1",
    server_attributes: dict[str, Any] | None = None,
    server_error: str | None = None,
) -> tuple[ReadableSpan, ReadableSpan]:
    """A tool call's client span and server span, as the official SDK records them."""
    method = {"mcp.method.name": "tools/call", "jsonrpc.request.id": request_id}
    with client.tracer.start_as_current_span(
        f"MCP send tools/call {tool}", kind=SpanKind.CLIENT, attributes=method
    ) as outer:
        parent = remote(outer)
        served = server.span(
            f"tools/call {tool}",
            attributes={**method, "gen_ai.tool.name": tool, **(server_attributes or {})},
            parent=parent,
            error=server_error,
        )
    return client.exporter.get_finished_spans()[-1], served


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def all_spans(*makers: SpanMaker) -> Sequence[ReadableSpan]:
    return [span for maker in makers for span in maker.exporter.get_finished_spans()]

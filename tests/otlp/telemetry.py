"""OpenTelemetry set up from the environment alone, as an application that traces does: the service's name
(`OTEL_SERVICE_NAME`), the exporter's endpoint and protocol (`OTEL_EXPORTER_OTLP_*`), the batch
processor's delay (`OTEL_BSP_*`)."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from tests.otlp.exporters import JsonSpanExporter


def exporter_from_environment() -> SpanExporter:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    return JsonSpanExporter() if protocol == "http/json" else OTLPSpanExporter()


def configure_tracing() -> TracerProvider:
    """A global tracer provider exporting in batches (flushed at exit)."""
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(exporter_from_environment()))
    trace.set_tracer_provider(provider)
    return provider

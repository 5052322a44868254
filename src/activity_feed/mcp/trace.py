"""The W3C trace a request belongs to: `params._meta.traceparent` when the client sent one, else the
current OpenTelemetry span's, so a client's view and the server's view of one call share a trace id.

OpenTelemetry is optional: its API is imported on first use, and when it is not installed this costs
one check per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_HEX = frozenset("0123456789abcdef")
_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16

Trace = tuple[str, str]  # (trace id: 32 lowercase hex, span id: 16 lowercase hex)


def parse_traceparent(value: object) -> Trace | None:
    """`(trace_id, span_id)` of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); None when it is
    malformed or names the all-zero trace or span (which the standard says to ignore)."""
    if not isinstance(value, str) or len(value) < 55:
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4:
        return None
    version, trace_id, span_id, flags = parts[0], parts[1], parts[2], parts[3]
    if len(version) != 2 or version == "ff" or len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        return None
    if version == "00" and len(parts) != 4:
        return None
    if not _HEX.issuperset(version + trace_id + span_id + flags):
        return None
    if trace_id == _NO_TRACE or span_id == _NO_SPAN:
        return None
    return trace_id, span_id


def trace_of(meta: Mapping[str, Any] | None) -> Trace | None:
    """The trace of a request whose raw `_meta` is `meta`: its `traceparent`, else the current span's."""
    if meta:
        found = parse_traceparent(meta.get("traceparent"))
        if found is not None:
            return found
    return current_span_trace()


_current_span: Callable[[], Any] | None = None
_invalid_span: object = None
_tracer_provider: Callable[[], Any] | None = None
_proxy_provider: type | None = None
_otel_checked = False
# Without a tracer provider set up, no span the server runs under can carry a trace (a client's
# `traceparent` is read from the request itself): whether one is set up is asked again every so many
# requests, rather than the current span at every one.
_RECHECK_EVERY = 256
_tracing = False
_until_recheck = 0


def current_span_trace() -> Trace | None:
    """The current OpenTelemetry span's `(trace_id, span_id)` when opentelemetry-api is installed, a
    tracer provider is set up, and the span context is valid."""
    global _until_recheck, _tracing
    if not _otel_checked:
        _load_opentelemetry()
    if _current_span is None:
        return None
    _until_recheck -= 1
    if _until_recheck < 0:
        _until_recheck = _RECHECK_EVERY
        _tracing = _tracer_provider_is_set()
    if not _tracing:
        return None
    try:
        span = _current_span()
        if span is _invalid_span:
            return None
        context = span.get_span_context()
        if not context.is_valid:
            return None
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"
    except Exception:  # boundary: a broken tracer must not cost the request its record
        return None


def _load_opentelemetry() -> None:
    global _current_span, _invalid_span, _tracer_provider, _proxy_provider, _otel_checked
    try:
        from opentelemetry.trace import (
            INVALID_SPAN,
            ProxyTracerProvider,
            get_current_span,
            get_tracer_provider,
        )
    except ImportError:
        pass
    else:
        _current_span, _invalid_span = get_current_span, INVALID_SPAN
        _tracer_provider, _proxy_provider = get_tracer_provider, ProxyTracerProvider
    _otel_checked = True


def _tracer_provider_is_set() -> bool:
    try:
        return _tracer_provider is not None and type(_tracer_provider()) is not _proxy_provider
    except Exception:  # boundary
        return False


def recheck_tracing() -> None:
    """Ask at the next request whether a tracer provider is set up (for tests that set one)."""
    global _until_recheck
    _until_recheck = 0

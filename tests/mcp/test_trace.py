"""W3C `traceparent` values: what is a trace, and what is ignored."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from activity_feed.mcp.trace import current_span_trace, parse_traceparent, trace_of

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-00",
        f"00-{TRACE.upper()}-{SPAN.upper()}-01",
        f"01-{TRACE}-{SPAN}-01-x",
    ],
)
def test_a_well_formed_traceparent_gives_its_trace_and_span(value: str) -> None:
    assert parse_traceparent(value) == (TRACE, SPAN)


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        "00-abc-def-01",
        f"00-{'0' * 32}-{SPAN}-01",  # the all-zero trace
        f"00-{TRACE}-{'0' * 16}-01",  # the all-zero span
        f"ff-{TRACE}-{SPAN}-01",  # a version the standard forbids
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four parts
        f"00-{TRACE[:-1]}g-{SPAN}-01",
        f"00_{TRACE}_{SPAN}_01",
    ],
)
def test_a_malformed_or_empty_traceparent_is_ignored(value: object) -> None:
    assert parse_traceparent(value) is None


@pytest.mark.usefixtures("tracer_provider")
def test_the_meta_wins_over_the_current_span_and_the_span_fills_in() -> None:
    context = trace.SpanContext(trace_id=int("1" * 32, 16), span_id=int("2" * 16, 16), is_remote=False)
    with trace.use_span(trace.NonRecordingSpan(context)):
        assert trace_of({"traceparent": f"00-{TRACE}-{SPAN}-01"}) == (TRACE, SPAN)
        assert trace_of({"traceparent": "nonsense"}) == ("1" * 32, "2" * 16)
        assert trace_of(None) == ("1" * 32, "2" * 16)
    assert current_span_trace() is None  # no span: nothing

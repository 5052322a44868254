"""otlp: MCP spans from OpenTelemetry's SDK into the feed through `POST /v1/traces`, on SQLite.

1. Latency of a burst: 10,000 finished MCP server spans (as the official SDK's middleware records
   `tools/call`) handed to the SDK's `BatchSpanProcessor` with its OTLP/HTTP exporter (protobuf, 512 spans
   an export), from the first hand-over until the last span's event is found by `GET /activities/recent`
   (every export is answered after its commit). Target: <= 1.0 s.
2. Throughput against the batch endpoint: the same 10,000 calls, as the SDK encoder's protobuf exports of
   512 spans and as `POST /activities/batch` bodies of the 512 events the feed makes of them (fresh ids),
   each sent by the same client (2 connections), rounds alternating on one server. Target: spans/s
   >= 0.6x events/s.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from activity_feed.ids import uuid7
from bench.harness import Check, ServerProcess, fmt, say, sqlite_url

NAME = "otlp"
TITLE = "10,000 MCP spans from the OpenTelemetry SDK to `recent`; /v1/traces vs /activities/batch, SQLite"
SPANS = 10_000
PER_EXPORT = 512
CONNECTIONS = 2
ROUNDS = 3
TARGET_SECONDS = 1.0
TARGET_RATIO = 0.6
TOOLS = ("search_properties", "get_property", "list_tenants", "create_invoice", "schedule_viewing")


def make_spans(count: int, service: str) -> list[Any]:
    """`count` finished spans of `tools/call`, as the official SDK's server middleware records them (one
    in ten an error), from a tracer provider of this function's own."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.trace import SpanKind, StatusCode

    ended: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            ended.append(span)

    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "1.0.0"}))
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("mcp-python-sdk")
    for n in range(count):
        tool = TOOLS[n % len(TOOLS)]
        attributes = {
            "mcp.method.name": "tools/call",
            "mcp.protocol.version": "2025-11-25",
            "jsonrpc.request.id": str(n),
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
        }
        with tracer.start_as_current_span(
            f"tools/call {tool}", kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            if n % 10 == 9:
                span.set_attributes({"error.type": "tool_error"})
                span.set_status(StatusCode.ERROR)
    provider.shutdown()
    return ended


def _burst(url: str) -> dict[str, Any]:
    """Part 1: hand 10,000 ended spans to a BatchSpanProcessor; time until the last one is queryable."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    spans = make_spans(SPANS, "bench-mcp-burst")
    processor = BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{url}/v1/traces"),
        max_queue_size=2 * SPANS,
        max_export_batch_size=PER_EXPORT,
    )
    last_trace = f"{spans[-1].context.trace_id:032x}"
    with httpx.Client(base_url=url, timeout=30) as http:
        started = time.perf_counter()
        for span in spans:  # what the tracer provider does as each span ends
            processor.on_end(span)
        flushed = processor.force_flush(timeout_millis=60_000)
        found = http.get("/activities/recent", params={"limit": 1, "correlation_id": last_trace}).json()
        seconds = time.perf_counter() - started
        stored = _count(http)
    processor.shutdown()
    if not flushed or len(found) != 1 or stored != SPANS:
        raise RuntimeError(
            f"not every span arrived: flushed {flushed}, last found {len(found)}, stored {stored}"
        )
    return {"seconds": seconds, "spans": SPANS, "stored": stored}


def _count(http: httpx.Client) -> int:
    """How many events the feed holds (paging `recent` back to the first)."""
    count, before = 0, None
    while True:
        params = {"limit": 500, **({"before": before} if before else {})}
        page = http.get("/activities/recent", params=params).json()
        count += len(page)
        if len(page) < 500:
            return count
        before = page[-1]["id"]


def _bodies(round_number: int) -> tuple[list[bytes], list[bytes]]:
    """The same calls as OTLP exports and as batch bodies of the events the feed makes of them."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from activity_feed.otlp.ingest import decode_export
    from activity_feed.otlp.mapping import map_span
    from activity_feed.otlp.spans import spans_of
    from activity_feed.redaction import Redactor

    spans = make_spans(SPANS, f"bench-mcp-{round_number}")
    exports = [
        bytes(encode_spans(spans[start : start + PER_EXPORT]).SerializeToString())
        for start in range(0, SPANS, PER_EXPORT)
    ]
    redactor = Redactor()
    batches = []
    for body in exports:
        events = []
        for record in spans_of(decode_export(body, as_json=False)):
            item = map_span(record, redactor=redactor, latest=None)
            assert not isinstance(item, str)
            event = item.event.model_dump(mode="json", exclude_none=True)
            event["id"] = str(uuid7())
            events.append(event)
        batches.append(orjson.dumps({"events": events}))
    return exports, batches


async def _send(url: str, path: str, content_type: str, bodies: Sequence[bytes]) -> float:
    """Seconds to send `bodies` over `CONNECTIONS` keep-alive connections, one request in flight each."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await http.get("/health")

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await http.post(path, content=body, headers={"Content-Type": content_type})
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        return time.perf_counter() - started


def _throughput(url: str) -> dict[str, Any]:
    """Part 2: rounds alternating between the two endpoints, each with calls of its own."""
    otlp_seconds, batch_seconds = 0.0, 0.0
    for round_number in range(ROUNDS):
        exports, batches = _bodies(round_number)
        otlp_seconds += asyncio.run(_send(url, "/v1/traces", "application/x-protobuf", exports))
        batch_seconds += asyncio.run(_send(url, "/activities/batch", "application/json", batches))
    items = ROUNDS * SPANS
    return {
        "spans_per_second": items / otlp_seconds,
        "events_per_second": items / batch_seconds,
        "rounds": ROUNDS,
        "items_per_round": SPANS,
    }


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        with ServerProcess(sqlite_url(Path(tmp) / "burst.db"), log_path=Path(tmp) / "burst.log") as server:
            burst = _burst(server.url)
        say(f"  10,000 spans to recent: {fmt(burst['seconds'] * 1000, 'ms')}")
        with ServerProcess(sqlite_url(Path(tmp) / "rate.db"), log_path=Path(tmp) / "rate.log") as server:
            rate = _throughput(server.url)
        say(f"  POST /v1/traces:        {fmt(rate['spans_per_second'], 'spans/s')}")
        say(f"  POST /activities/batch: {fmt(rate['events_per_second'], 'events/s')}")
    ratio = rate["spans_per_second"] / rate["events_per_second"]
    return [
        Check(
            benchmark=NAME,
            name="10,000 SDK spans to recent",
            value=burst["seconds"] * 1000,
            unit="ms",
            target=f"<= {TARGET_SECONDS * 1000:.0f} ms",
            met=burst["seconds"] <= TARGET_SECONDS,
            details=burst,
        ),
        Check(
            benchmark=NAME,
            name="POST /v1/traces vs /activities/batch",
            value=rate["spans_per_second"],
            unit="events/s",
            baseline=rate["events_per_second"],
            baseline_name="POST /activities/batch",
            ratio=ratio,
            target=f"ratio >= {TARGET_RATIO}",
            met=ratio >= TARGET_RATIO,
            details=rate,
        ),
    ]

"""Two `activity-feed serve` instances on one PostgreSQL database: the client's span of a call sent to
one and the server's span to the other make one event, in either order and when they arrive at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.otlp.exporters import json_body, protobuf_body
from tests.otlp.spans import SpanMaker, call_spans
from tests.support.service import ServiceProcess, start_instances, stop_all

CALLS = 30


@pytest.fixture
def instances(postgres_url: str, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started = start_instances(2, database_url=postgres_url, broadcast_url="memory://", log_dir=tmp_path)
    yield started
    stop_all(started)


async def _post(http: httpx.AsyncClient, url: str, body: bytes, content_type: str) -> None:
    response = await http.post(f"{url}/v1/traces", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.content


async def test_views_sent_to_two_instances_make_one_event(instances: list[ServiceProcess]) -> None:
    a, b = instances
    client, server = SpanMaker("claude-desktop"), SpanMaker("property-mcp")
    pairs = [call_spans(client, server, request_id=str(n), tool=f"tool{n}") for n in range(CALLS)]
    async with httpx.AsyncClient(timeout=30) as http:
        # In turn, each order once: client first on A, then server first on A.
        for n, (client_span, server_span) in enumerate(pairs[:2]):
            first, second = (client_span, server_span) if n == 0 else (server_span, client_span)
            await _post(http, a.url, protobuf_body([first]), "application/x-protobuf")
            await _post(http, b.url, json_body([second]), "application/json")
        # At once: every client span to A while every server span goes to B.
        await asyncio.gather(
            *(
                _post(http, a.url, protobuf_body([client_span]), "application/x-protobuf")
                for client_span, _ in pairs[2:]
            ),
            *(
                _post(http, b.url, protobuf_body([server_span]), "application/x-protobuf")
                for _, server_span in pairs[2:]
            ),
        )
        for instance in (a, b):
            response = await http.get(f"{instance.url}/activities/recent", params={"limit": 500})
            events = response.json()
            assert sorted(event["tool_name"] for event in events) == sorted(f"tool{n}" for n in range(CALLS))
            for event in events:
                assert {"client_span", "server_span"} <= event["data"]["mcp"].keys(), event

"""`POST /v1/traces` under malformed input: truncated and bit-flipped protobuf, JSON with wrong types in
every place, broken compression. Every answer is a 2xx or a 4xx, and the service stays healthy."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
from opentelemetry.trace import SpanKind

from tests.otlp.exporters import json_document, protobuf_body
from tests.otlp.spans import SpanMaker, call_spans
from tests.support.server import LiveServer

PAYLOADS = 1200
ALLOWED = {200, 400, 413}
Payload = tuple[bytes, str, dict[str, str]]


def valid_spans() -> list[Any]:
    client, server = SpanMaker("claude-desktop", "0.9.2"), SpanMaker("property-mcp", "1.4.0")
    spans = list(
        call_spans(client, server, server_attributes={"gen_ai.tool.call.arguments": '{"a": [1, 2]}'})
    )
    spans.append(
        server.span(
            "GET /x",
            attributes={
                "http.request.method": "GET",
                "http.route": "/x",
                "http.response.status_code": 500,
                "weights": [0.5, 1.5],
                "flags": [True, False],
                "names": ["a", "b"],
            },
        )
    )
    spans.append(
        server.span("resources/read", kind=SpanKind.CLIENT, attributes={"mcp.resource.uri": "file:///a"})
    )
    return spans


WRONG_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    "",
    "zz",
    "0" * 40,
    [],
    [None, {}],
    {},
    {"stringValue": 5},
    {"intValue": "x"},
    {"arrayValue": {"values": 3}},
    {"kvlistValue": {"values": [{"key": 1}]}},
    "\u0000",
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = orjson.loads(orjson.dumps(document))
    holder = copy
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return copy


def payloads(seed: int = 19) -> Iterator[Payload]:
    rng = random.Random(seed)
    spans = valid_spans()
    proto = protobuf_body(spans)
    document = json_document(spans)
    text = orjson.dumps(document)
    paths = list(_paths(document))
    makers: list[Callable[[], Payload]] = [
        lambda: (proto[: rng.randrange(len(proto))], "application/x-protobuf", {}),
        lambda: (_flipped(proto, rng), "application/x-protobuf", {}),
        lambda: (rng.randbytes(rng.randrange(1, 400)), "application/x-protobuf", {}),
        lambda: (text[: rng.randrange(len(text))], "application/json", {}),
        lambda: (_flipped(text, rng), "application/json", {}),
        lambda: (
            json.dumps(_replaced(document, rng.choice(paths), rng.choice(WRONG_VALUES))).encode(),
            "application/json",
            {},
        ),
        lambda: (proto, "application/json", {}),
        lambda: (text, "application/x-protobuf", {}),
        lambda: (
            gzip.compress(_flipped(proto, rng))[: rng.randrange(5, 200)],
            "application/x-protobuf",
            {"Content-Encoding": "gzip"},
        ),
        lambda: (_flipped(gzip.compress(text), rng), "application/json", {"Content-Encoding": "gzip"}),
    ]
    for index in range(PAYLOADS):
        yield makers[index % len(makers)]()


def _flipped(body: bytes, rng: random.Random) -> bytes:
    mutable = bytearray(body)
    for _ in range(rng.randrange(1, 9)):
        position = rng.randrange(len(mutable))
        mutable[position] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def test_malformed_exports_get_no_server_error_and_the_service_stays_healthy(feed_server: LiveServer) -> None:
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=feed_server.url, timeout=10) as http:
        for body, content_type, headers in payloads():
            response = http.post(
                "/v1/traces", content=body, headers={"Content-Type": content_type, **headers}
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in ALLOWED, (response.status_code, response.content[:300], body[:300])
        assert sum(statuses.values()) >= 1000
        assert statuses.get(400, 0) > 0
        assert statuses.get(200, 0) > 0
        assert http.get("/health").status_code == 200
        valid = http.post(
            "/v1/traces",
            content=protobuf_body(valid_spans()),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert valid.status_code == 200
        assert http.get("/activities/recent").status_code == 200

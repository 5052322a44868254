"""A message's `data.mcp` made once per connection and method (`verbatim_json`) is what `verbatim_data`
builds for each message, key for key and in the same order."""

from __future__ import annotations

import itertools

import orjson

from activity_feed.client.payload import dumps
from activity_feed.mcp.details import McpDetails, ServerInfo

SERVER = ServerInfo("property-server", "1.0", "sdk")


def test_verbatim_json_is_verbatim_data_serialised() -> None:
    request_ids: list[object] = [
        None,
        0,
        7,
        2**40,
        "7",
        "req-\u00e9",
        'a "quoted" id',
        "nul\x00id",
        1.5,
        True,
    ]
    messages = [
        ("tools/call", "search"),
        ("prompts/get", "brief"),
        ("resources/read", "file:///a"),
        ("ping", None),
    ]
    clients = [("claude", "1.0"), ("claude", None), (None, None)]
    traces = [(None, None), ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")]
    for request_id, (method, target), (name, version), (trace_id, span_id) in itertools.product(
        request_ids, messages, clients, traces
    ):
        details = McpDetails(
            method,
            request_id,
            "client_to_server",
            "stdio",
            "2025-06-18",
            name,
            version,
            target,
            trace_id,
            span_id,
            SERVER,
        )
        for _ in range(2):  # made, then taken from what was made
            serialised = orjson.loads(dumps(details.verbatim_json()))
            plain = orjson.loads(dumps(details.verbatim_data()))
            assert serialised == plain, details
            assert list(serialised["mcp"]) == list(plain["mcp"]), details

"""Which spans become events, and the event each makes: MCP spans of both sides (current and older
attribute names), HTTP server spans, and the reasons every other span is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from activity_feed.otlp.decode import decode_protobuf
from activity_feed.otlp.keys import link_key, request_key, span_key
from activity_feed.otlp.mapping import (
    AHEAD,
    ARGUMENTS_BYTES,
    BAD_IDS,
    NOT_CALL_SIDE,
    NOT_KEPT,
    map_span,
)
from activity_feed.otlp.spans import spans_of
from activity_feed.redaction import Redactor
from activity_feed.schemas import EventStatus, EventType
from activity_feed.store.merge import MergeItem
from tests.otlp.exporters import protobuf_body
from tests.otlp.spans import SpanMaker, call_spans, hex_ids

TOOL = {"mcp.method.name": "tools/call", "jsonrpc.request.id": "7", "gen_ai.tool.name": "search"}


def mapped(*spans: ReadableSpan, latest: datetime | None = None) -> list[MergeItem | str]:
    request = decode_protobuf(protobuf_body(spans))
    return [map_span(span, redactor=Redactor(), latest=latest) for span in spans_of(request)]


def item(span: ReadableSpan) -> MergeItem:
    [found] = mapped(span)
    assert isinstance(found, MergeItem), found
    return found


@pytest.fixture
def server() -> SpanMaker:
    return SpanMaker("property-mcp", "1.4.0")


def test_a_server_tool_call_span_is_a_tool_call(server: SpanMaker) -> None:
    span = server.span(
        "tools/call search",
        attributes={
            **TOOL,
            "mcp.session.id": "session-1",
            "network.transport": "pipe",
            "mcp.protocol.version": "2025-11-25",
            "gen_ai.tool.call.arguments": '{"city": "Leeds", "api_key": "k-123"}',
            "gen_ai.tool.call.result": '{"content": [{"type": "text", "text": "2 flats"}], "isError": false}',
        },
    )
    trace_id, span_id = hex_ids(span)
    found = item(span)
    event = found.event
    assert event.id == request_key(trace_id, "7", "tools/call")
    assert found.fallbacks == (span_key(trace_id, span_id),)  # a root span: no caller to link to
    assert (event.tool_name, event.event_type, event.status) == ("search", EventType.TOOL_CALL, "success")
    assert (event.correlation_id, event.session_id, event.user_source) == (trace_id, "session-1", None)
    assert event.data["arguments"] == {"city": "Leeds", "api_key": "[REDACTED]"}
    assert event.data["redacted"] == ["arguments.api_key"]
    assert event.data["result"] == "2 flats"
    mcp = event.data["mcp"]
    assert {
        key: mcp[key] for key in ("method", "request_id", "direction", "transport", "protocol_version")
    } == {
        "method": "tools/call",
        "request_id": "7",
        "direction": "client_to_server",
        "transport": "stdio",
        "protocol_version": "2025-11-25",
    }
    assert mcp["server"] == {"name": "property-mcp", "version": "1.4.0"}
    assert (mcp["target"], mcp["trace_id"], mcp["span_id"], mcp["source"]) == (
        "search",
        trace_id,
        span_id,
        "otlp",
    )
    assert mcp["server_span"]["session_id"] == "session-1"
    assert "client_span" not in mcp
    assert "client" not in mcp
    assert event.timestamp == datetime.fromisoformat(mcp["server_span"]["start"])
    assert event.duration_ms is not None
    assert event.duration_ms >= 0


def test_a_client_span_names_the_client_and_takes_its_target_from_the_span_name() -> None:
    client, server = SpanMaker("claude-desktop", "0.9.2"), SpanMaker("property-mcp")
    client_span, server_span = call_spans(client, server, tool="add", request_id="3")
    found = item(client_span)
    trace_id, span_id = hex_ids(client_span)
    assert found.event.id == request_key(trace_id, "3", "tools/call")
    assert found.fallbacks == (link_key(trace_id, span_id), span_key(trace_id, span_id))
    assert (found.event.tool_name, found.event.user_source) == ("add", "claude-desktop 0.9.2")
    assert found.event.data["mcp"]["client"] == {"name": "claude-desktop", "version": "0.9.2"}
    # The server's span has a remote parent, its caller: the link to it comes first.
    served = item(server_span)
    assert served.event.id == link_key(trace_id, span_id)
    assert served.fallbacks == (request_key(trace_id, "3", "tools/call"), span_key(*hex_ids(server_span)))
    assert served.event.data["mcp"]["server_span"]["remote_parent"] is True


@pytest.mark.parametrize(
    ("attributes", "name", "tool_name", "event_type"),
    [
        (
            {"mcp.tool.name": "search", "mcp.request.id": "4"},
            "tools/call search",
            "search",
            EventType.TOOL_CALL,
        ),
        (
            {"mcp.prompt.name": "summarise"},
            "prompts/get summarise",
            "prompts/get summarise",
            EventType.MCP_REQUEST,
        ),
        ({"mcp.request.id": "5"}, "resources/list", "resources/list", EventType.MCP_REQUEST),
        (
            {"mcp.method.name": "prompts/get", "gen_ai.prompt.name": "p"},
            "x",
            "prompts/get p",
            EventType.MCP_REQUEST,
        ),
        (
            {"mcp.method.name": "notifications/initialized"},
            "x",
            "notifications/initialized",
            EventType.MCP_NOTIFICATION,
        ),
        ({"mcp.method.name": "tools/list"}, "tools/list", "tools/list", EventType.MCP_REQUEST),
    ],
)
def test_older_and_current_attribute_names(
    server: SpanMaker, attributes: dict[str, Any], name: str, tool_name: str, event_type: EventType
) -> None:
    event = item(server.span(name, attributes=attributes)).event
    assert (event.tool_name, event.event_type) == (tool_name, event_type)


def test_an_older_request_id_makes_the_same_place(server: SpanMaker) -> None:
    span = server.span("tools/call search", attributes={"mcp.tool.name": "search", "mcp.request.id": "4"})
    assert item(span).event.id == request_key(hex_ids(span)[0], "4", "tools/call")


def test_a_resource_uri_is_the_target_with_its_secrets_redacted(server: SpanMaker) -> None:
    uri = "https://files.example/report?token=abcdef123456"
    span = server.span(
        "resources/read", attributes={"mcp.method.name": "resources/read", "mcp.resource.uri": uri}
    )
    event = item(span).event
    assert event.tool_name == "resources/read"
    assert event.data["mcp"]["target"] == "https://files.example/report?token=[REDACTED]"


def test_a_request_the_server_sends_names_the_roles_the_other_way(server: SpanMaker) -> None:
    span = server.span(
        "sampling/createMessage",
        kind=SpanKind.CLIENT,
        attributes={"mcp.method.name": "sampling/createMessage", "jsonrpc.request.id": "0"},
    )
    mcp = item(span).event.data["mcp"]
    assert mcp["direction"] == "server_to_client"
    assert mcp["server"] == {"name": "property-mcp", "version": "1.4.0"}  # the CLIENT span is the server's
    assert "client" not in mcp
    assert "client_span" in mcp


def test_an_error_status_gives_its_description_and_the_json_rpc_code(server: SpanMaker) -> None:
    span = server.span(
        "tools/call search",
        attributes={**TOOL, "error.type": "-32602", "rpc.response.status_code": "-32602"},
        error="Invalid request parameters",
    )
    event = item(span).event
    assert (event.status, event.error_message) == (EventStatus.ERROR, "Invalid request parameters")
    assert event.data["mcp"]["error"] == {"code": -32602, "message": "Invalid request parameters"}


def test_an_error_without_a_description_says_its_error_type(server: SpanMaker) -> None:
    event = item(server.span("tools/call search", attributes={**TOOL, "error.type": "TimeoutError"})).event
    assert (event.status, event.error_message) == (EventStatus.ERROR, "TimeoutError")
    bare = item(server.span("tools/list", attributes={"mcp.method.name": "tools/list"}, error="")).event
    assert (bare.status, bare.error_message) == (EventStatus.ERROR, "the span ended with status error")


def test_an_is_error_result_fails_with_the_results_text(server: SpanMaker) -> None:
    result = orjson.dumps({"content": [{"type": "text", "text": "no property 9"}], "isError": True}).decode()
    span = server.span(
        "tools/call search",
        attributes={**TOOL, "error.type": "tool_error", "gen_ai.tool.call.result": result},
        error="",
    )
    event = item(span).event
    assert (event.status, event.error_message) == (EventStatus.ERROR, "no property 9")
    assert event.data["mcp"]["is_error"] is True
    assert event.data["result"] == "no property 9"


def test_large_arguments_are_cut_and_odd_values_made_storable(server: SpanMaker) -> None:
    span = server.span(
        "tools/call search",
        attributes={**TOOL, "gen_ai.tool.call.arguments": orjson.dumps({"text": "x" * 10_000}).decode()},
    )
    arguments = item(span).event.data["arguments"]
    assert isinstance(arguments, str)
    assert len(arguments.encode()) <= ARGUMENTS_BYTES
    odd = server.span(
        "tools/call se\x00arch", attributes={"mcp.method.name": "tools/call", "mcp.session.id": "a\x00b"}
    )
    event = item(odd).event
    assert event.session_id == "a\ufffdb"
    assert event.tool_name == "se\ufffdarch"


def test_an_http_server_span_is_an_api_request(server: SpanMaker) -> None:
    span = server.span(
        "GET /properties/{id}",
        attributes={
            "http.request.method": "GET",
            "http.route": "/properties/{id}",
            "url.path": "/properties/9",
            "http.response.status_code": 503,
            "client.address": "10.0.0.7",
        },
    )
    event = item(span).event
    trace_id, span_id = hex_ids(span)
    assert event.id == span_key(trace_id, span_id)
    assert (event.tool_name, event.event_type) == ("GET /properties/{id}", EventType.API_REQUEST)
    assert (event.status, event.error_message) == (EventStatus.ERROR, "HTTP 503")
    assert event.data["method"] == "GET"
    assert event.data["path"] == "/properties/9"
    assert (event.data["status_code"], event.data["client"]) == (503, "10.0.0.7")
    assert event.data["otlp"]["span_id"] == span_id
    older = item(
        server.span(
            "GET", attributes={"http.method": "POST", "http.target": "/x?token=1", "http.status_code": 201}
        )
    ).event
    assert (older.tool_name, older.status, older.data["path"]) == ("POST /x", EventStatus.SUCCESS, "/x")


def test_other_spans_are_refused_with_their_reason(server: SpanMaker) -> None:
    internal_mcp = server.span(
        "tools/call x", kind=SpanKind.INTERNAL, attributes={"mcp.method.name": "tools/call"}
    )
    http_client = server.span("GET", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"})
    plain = server.span("compute", kind=SpanKind.INTERNAL)
    assert mapped(internal_mcp, http_client, plain) == [NOT_CALL_SIDE, NOT_KEPT, NOT_KEPT]


def test_spans_from_the_future_and_without_ids_are_refused(server: SpanMaker) -> None:
    span = server.span("tools/list", attributes={"mcp.method.name": "tools/list"})
    assert mapped(span, latest=datetime.now(UTC) - timedelta(hours=1)) == [AHEAD]
    request = decode_protobuf(protobuf_body([span]))
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x00" * 16
    [record] = spans_of(request)
    assert map_span(record, redactor=Redactor(), latest=None) == BAD_IDS

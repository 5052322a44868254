"""Two views of one call make one event, whichever comes first; views of different calls never do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from activity_feed.otlp.decode import decode_protobuf
from activity_feed.otlp.mapping import map_span
from activity_feed.otlp.merge import combine
from activity_feed.otlp.spans import spans_of
from activity_feed.redaction import Redactor
from activity_feed.schemas import ActivityCreate, ActivityPublic, EventStatus
from activity_feed.store.merge import MergeItem
from activity_feed.store.rows import new_public
from tests.otlp.exporters import protobuf_body
from tests.otlp.spans import SpanMaker, call_spans, hex_ids, remote


def event_of(span: ReadableSpan) -> ActivityCreate:
    [record] = spans_of(decode_protobuf(protobuf_body([span])))
    found = map_span(record, redactor=Redactor(), latest=None)
    assert isinstance(found, MergeItem), found
    return found.event


def stored(event: ActivityCreate) -> ActivityPublic:
    return new_public(event, event.id or uuid.uuid4(), event.timestamp or datetime.now(UTC))


def merged(first: ActivityCreate, second: ActivityCreate) -> ActivityCreate | None:
    return combine(stored(first), second.model_copy(update={"id": first.id}))


def test_a_client_span_and_a_server_span_are_one_event_in_either_order() -> None:
    client_span, server_span = call_spans(
        SpanMaker("claude-desktop", "0.9.2"),
        SpanMaker("property-mcp", "1.4.0"),
        server_attributes={"gen_ai.tool.call.arguments": '{"a": 1}', "error.type": "tool_error"},
        server_error="",
    )
    client, server = event_of(client_span), event_of(server_span)
    one, other = merged(client, server), merged(server, client)
    assert one is not None
    assert other is not None
    assert one.data == other.data
    assert (one.timestamp, one.duration_ms) == (client.timestamp, client.duration_ms)  # the caller's time
    assert (one.status, one.error_message) == (EventStatus.ERROR, "tool_error")  # the server's outcome
    assert (one.user_source, one.tool_name) == ("claude-desktop 0.9.2", "add")
    mcp = one.data["mcp"]
    assert mcp["client"] == {"name": "claude-desktop", "version": "0.9.2"}
    assert mcp["server"] == {"name": "property-mcp", "version": "1.4.0"}
    assert mcp["span_id"] == hex_ids(client_span)[1]
    assert {mcp["client_span"]["span_id"], mcp["server_span"]["span_id"]} == {
        hex_ids(client_span)[1],
        hex_ids(server_span)[1],
    }
    assert one.data["arguments"] == {"a": 1}


def test_the_same_span_again_changes_nothing() -> None:
    client_span, server_span = call_spans(SpanMaker("client"), SpanMaker("server"))
    client, server = event_of(client_span), event_of(server_span)
    both = merged(client, server)
    assert both is not None
    assert merged(both, server) == both.model_copy(update={"id": both.id})
    assert merged(client, client) == client


def test_views_of_different_calls_are_kept_apart() -> None:
    client, server = SpanMaker("client"), SpanMaker("server")
    first_client, first_server = call_spans(client, server, request_id="1")
    second_client, second_server = call_spans(client, server, request_id="1")
    # Two server spans (or two client spans) are two calls, whatever their ids say.
    assert merged(event_of(first_server), event_of(second_server)) is None
    assert merged(event_of(first_client), event_of(second_client)) is None
    # A server span whose remote parent is another client span is that one's call.
    assert merged(event_of(first_client), event_of(second_server)) is None
    other_id = event_of(
        server.span(
            "tools/call add",
            attributes={"mcp.method.name": "tools/call", "jsonrpc.request.id": "2"},
            parent=remote(first_client),
        )
    )
    assert merged(event_of(first_client), other_id) is None
    other_method = event_of(
        server.span("tools/list", attributes={"mcp.method.name": "tools/list"}, parent=remote(first_client))
    )
    assert merged(event_of(first_client), other_method) is None


def test_other_events_are_the_same_only_as_the_same_span() -> None:
    maker = SpanMaker("api")
    attributes = {"http.request.method": "GET", "http.route": "/x", "http.response.status_code": 200}
    request, another = (
        maker.span("GET /x", attributes=attributes),
        maker.span("GET /x", attributes=attributes),
    )
    assert merged(event_of(request), event_of(request)) == event_of(request)
    assert merged(event_of(request), event_of(another)) is None
    call = event_of(
        maker.span("tools/list", kind=SpanKind.CLIENT, attributes={"mcp.method.name": "tools/list"})
    )
    assert merged(event_of(request), call) is None
    not_otlp = ActivityCreate(
        id=uuid.uuid4(), event_type="tool_call", tool_name="add", data={"mcp": {"source": "sdk"}}
    )
    assert combine(stored(not_otlp), call) is None

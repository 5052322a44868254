"""An MCP call as the feed stores it from OTLP: what every view of the call shares (`Call`), and the views
themselves, one per span kind (the requester's CLIENT span, the receiver's SERVER span), kept in
`data.mcp.client_span` and `data.mcp.server_span`. The event is always built from the call and all its
views by `build_event`, so it is the same whichever view arrived first.

From the views: the time and duration are the requester's (its span encloses the receiver's), the outcome
is the receiver's first (it knows why it failed), and the call failed if any view says so. Names follow
the MCP roles, not the span kinds: for a request the server sends (sampling, elicitation, roots), the
CLIENT span is the MCP server's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from activity_feed.schemas import MAX_SESSION_ID, MAX_TEXT, ActivityCreate, EventStatus, EventType

SOURCE = "otlp"
CLIENT_SPAN = "client_span"
SERVER_SPAN = "server_span"
TOOLS_CALL = "tools/call"
PROMPTS_GET = "prompts/get"
CLIENT_TO_SERVER = "client_to_server"
SERVER_TO_CLIENT = "server_to_client"
# Requests and notifications that go from the server to the client; those that may go either way are
# given no direction.
_SERVER_TO_CLIENT_METHODS = frozenset(
    {
        "sampling/createMessage",
        "elicitation/create",
        "roots/list",
        "notifications/message",
        "notifications/resources/updated",
        "notifications/resources/list_changed",
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/elicitation/complete",
    }
)
_EITHER_WAY_METHODS = frozenset({"ping", "notifications/cancelled", "notifications/progress"})
NO_MESSAGE = "the span ended with status error"
MAX_DURATION = 1e12  # milliseconds, the most an event's `duration_ms` may hold
_TEXT_KEYS = ("status", "error_message", "session_id", "transport", "protocol_version")

View = dict[str, Any]
_NOTHING: View = {}
_ERROR = EventStatus.ERROR.value


@dataclass(slots=True)
class Call:
    """What the views of one call share: its identity, and the arguments and result when a view had them."""

    method: str
    trace_id: str
    request_id: str | int | None = None
    target: str | None = None
    arguments: Any = None
    result: str | None = None
    redacted: list[str] = field(default_factory=list)

    @property
    def direction(self) -> str | None:
        if self.method in _SERVER_TO_CLIENT_METHODS:
            return SERVER_TO_CLIENT
        return None if self.method in _EITHER_WAY_METHODS else CLIENT_TO_SERVER

    @property
    def is_tool_call(self) -> bool:
        return self.method == TOOLS_CALL


def tool_name(method: str, target: str | None) -> str:
    """The tool for a tool call, `prompts/get <name>` for a prompt, otherwise the method."""
    if method == TOOLS_CALL and target:
        name = target
    elif method == PROMPTS_GET and target:
        name = f"{method} {target}"
    else:
        name = method
    return name[:MAX_TEXT]


def event_type(method: str) -> EventType:
    if method == TOOLS_CALL:
        return EventType.TOOL_CALL
    if method.startswith("notifications/"):
        return EventType.MCP_NOTIFICATION
    return EventType.MCP_REQUEST


def service_label(service: Mapping[str, Any] | None) -> str | None:
    """`name version` of a view's service, as the event's `user_source`."""
    if not service or not service.get("name"):
        return None
    version = service.get("version")
    label = f"{service['name']} {version}" if version else str(service["name"])
    return label[:MAX_TEXT]


def build_event(call: Call, views: Mapping[str, View], event_id: uuid.UUID | None = None) -> ActivityCreate:
    """The event of `call` as its `views` (at least one) show it."""
    client, server = views.get(CLIENT_SPAN), views.get(SERVER_SPAN)
    timing = client or server
    if timing is None:
        raise ValueError("a call needs at least one view")
    # The receiver's outcome first: where both views say something, the server span's word wins.
    outcome = timing if client is None or server is None else {**client, **server}
    direction = call.direction
    backwards = direction == SERVER_TO_CLIENT
    mcp_client, mcp_server = (server, client) if backwards else (client, server)
    failed = _ERROR in ((client or _NOTHING).get("status"), (server or _NOTHING).get("status"))
    mcp: dict[str, Any] = {"method": call.method}
    if call.request_id is not None:
        mcp["request_id"] = call.request_id
    if direction is not None:
        mcp["direction"] = direction
    for key in ("transport", "protocol_version"):
        if (value := outcome.get(key)) is not None:
            mcp[key] = value
    if mcp_client is not None and mcp_client.get("service"):
        mcp["client"] = mcp_client["service"]
    if mcp_server is not None and mcp_server.get("service"):
        mcp["server"] = mcp_server["service"]
    if call.target is not None:
        mcp["target"] = call.target
    data: dict[str, Any] = {"mcp": mcp}
    details = data if call.is_tool_call else mcp
    if call.arguments is not None:
        details["arguments"] = call.arguments
    if call.result is not None:
        details["result"] = call.result
    if (error := outcome.get("error")) is not None:
        mcp["error"] = error
    if (client or _NOTHING).get("is_error") or (server or _NOTHING).get("is_error"):
        mcp["is_error"] = True
    mcp["trace_id"] = call.trace_id
    mcp["span_id"] = timing["span_id"]
    mcp["source"] = SOURCE
    if client is not None:
        mcp[CLIENT_SPAN] = client
    if server is not None:
        mcp[SERVER_SPAN] = server
    if call.redacted:
        data["redacted"] = call.redacted
    return constructed(
        id=event_id,
        timestamp=datetime.fromisoformat(timing["start"]),
        tool_name=tool_name(call.method, call.target),
        user_source=service_label(mcp_client.get("service")) if mcp_client is not None else None,
        event_type=event_type(call.method),
        status=EventStatus.ERROR if failed else EventStatus.SUCCESS,
        data=data,
        duration_ms=timing.get("duration_ms"),
        error_message=(outcome.get("error_message") or NO_MESSAGE) if failed else None,
        correlation_id=call.trace_id,
        session_id=outcome.get("session_id"),
    )


_new_create = ActivityCreate.__new__
_set = object.__setattr__
_ALL_FIELDS = frozenset(ActivityCreate.model_fields)


def constructed(**fields: Any) -> ActivityCreate:
    """An `ActivityCreate` of values made valid by the mapping (every field given), without validating
    them again: what `model_construct` does, minus its search for defaults, for every span."""
    event = _new_create(ActivityCreate)
    _set(event, "__dict__", fields)
    _set(event, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def call_of(data: Mapping[str, Any]) -> tuple[Call, dict[str, View]] | None:
    """The call and views an event built by `build_event` holds; None for any other event."""
    mcp = data.get("mcp")
    if not isinstance(mcp, dict) or mcp.get("source") != SOURCE:
        return None
    method, trace_id = mcp.get("method"), mcp.get("trace_id")
    if not isinstance(method, str) or not isinstance(trace_id, str):
        return None
    views = {kind: mcp[kind] for kind in (CLIENT_SPAN, SERVER_SPAN) if _is_view(mcp.get(kind))}
    if not views:
        return None
    target, request_id, result = mcp.get("target"), mcp.get("request_id"), data.get("result")
    if method != TOOLS_CALL:
        result = mcp.get("result")
    if not (
        isinstance(target, str | None)
        and isinstance(request_id, str | int | None)
        and not isinstance(request_id, bool)
        and isinstance(result, str | None)
    ):
        return None  # changed since it was built (a PATCH): not a call this module can read
    details = data if method == TOOLS_CALL else mcp
    redacted = data.get("redacted")
    call = Call(
        method=method,
        trace_id=trace_id,
        request_id=request_id,
        target=target,
        arguments=details.get("arguments"),
        result=result,
        redacted=list(redacted) if isinstance(redacted, list) else [],
    )
    return call, views


def _is_view(value: object) -> bool:
    """Whether `value` is a view `build_event` can read (an event's `data` may have been changed since)."""
    if not isinstance(value, dict) or not isinstance(value.get("span_id"), str):
        return False
    start, duration, service = value.get("start"), value.get("duration_ms"), value.get("service")
    if not isinstance(start, str) or not isinstance(service, dict | None):
        return False
    if duration is not None and (not isinstance(duration, int | float) or not 0 <= duration <= MAX_DURATION):
        return False
    if any(not isinstance(value.get(key), str | None) for key in _TEXT_KEYS):
        return False
    if len(value.get("session_id") or "") > MAX_SESSION_ID:
        return False
    try:
        return datetime.fromisoformat(start).tzinfo is not None
    except ValueError:
        return False

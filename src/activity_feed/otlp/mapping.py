"""Which spans the feed keeps, and the event each one makes: MCP spans of either side (the current
OpenTelemetry attribute names and the older `mcp.*` ones) and HTTP server spans. Every other span is
refused with the reason the export's answer gives.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from activity_feed.mcp.preview import (
    PREVIEW_BYTES,
    clean_message,
    error_result_message,
    is_error_result,
    result_preview,
    truncate,
)
from activity_feed.otlp.calls import (
    MAX_DURATION,
    NO_MESSAGE,
    PROMPTS_GET,
    TOOLS_CALL,
    Call,
    build_event,
    constructed,
)
from activity_feed.otlp.keys import link_key, request_key, span_key
from activity_feed.otlp.spans import SpanRecord
from activity_feed.redaction import Redactor
from activity_feed.schemas import (
    MAX_ERROR_MESSAGE,
    MAX_SESSION_ID,
    MAX_TEXT,
    EventStatus,
    EventType,
)
from activity_feed.store.merge import MergeItem

SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2
ARGUMENTS_BYTES = 4 * PREVIEW_BYTES
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRANSPORTS = {"pipe": "stdio", "tcp": "http", "quic": "http"}
_NO_IDS = ("", "0" * 32, "0" * 16)

# Why a span is not stored, as the export's answer says it.
NOT_KEPT = "are neither MCP spans nor HTTP server spans"
NOT_CALL_SIDE = "are MCP spans of neither a client nor a server (kind INTERNAL or other)"
BAD_IDS = "have no valid trace id (16 bytes) or span id (8 bytes)"
NO_START = "have no start time"
AHEAD = "start more than the allowed clock skew ahead of the feed's clock"


def map_span(span: SpanRecord, *, redactor: Redactor, latest: datetime | None) -> MergeItem | str:
    """The event `span` makes, with the places it may be stored; or why it is not stored. `latest`: the
    latest start accepted (None: any)."""
    if (
        len(span.trace_id) != 32
        or len(span.span_id) != 16
        or span.trace_id in _NO_IDS
        or span.span_id in _NO_IDS
    ):
        return BAD_IDS
    if span.start_ns <= 0:
        return NO_START
    start = _EPOCH + timedelta(microseconds=span.start_ns // 1000)
    if latest is not None and start > latest:
        return AHEAD
    method = _mcp_method(span)
    if method is not None:
        if span.kind not in (SPAN_KIND_SERVER, SPAN_KIND_CLIENT):
            return NOT_CALL_SIDE
        return _mcp_item(span, method, start, redactor)
    if span.kind == SPAN_KIND_SERVER and _text(span.attributes, "http.request.method", "http.method"):
        return _http_item(span, start, redactor)
    return NOT_KEPT


def _text(attributes: dict[str, Any], *names: str) -> str | None:
    """The first of `names` that holds a non-empty value, as text."""
    for name in names:
        value = attributes.get(name)
        if value is not None and value != "":
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    return None


def _mcp_method(span: SpanRecord) -> str | None:
    attributes = span.attributes
    if (method := _text(attributes, "mcp.method.name")) is not None:
        return method[:MAX_TEXT]
    if _text(attributes, "mcp.tool.name") is not None:
        return TOOLS_CALL
    if _text(attributes, "mcp.prompt.name") is not None:
        return PROMPTS_GET
    if _text(attributes, "mcp.request.id", "mcp.session.id", "mcp.resource.uri") is not None:
        # Older instrumentations named the span after the method and set no method attribute.
        first = span.name.removeprefix("MCP send ").split(" ", 1)[0]
        return first[:MAX_TEXT] if first else None
    return None


def _duration_ms(span: SpanRecord) -> float | None:
    if span.end_ns < span.start_ns or span.end_ns <= 0:
        return None
    duration = (span.end_ns - span.start_ns) / 1e6
    return duration if duration <= MAX_DURATION else None


def _target(span: SpanRecord, method: str, redactor: Redactor) -> str | None:
    attributes = span.attributes
    if method == TOOLS_CALL:
        named = _text(attributes, "gen_ai.tool.name", "mcp.tool.name")
    elif method == PROMPTS_GET:
        named = _text(attributes, "gen_ai.prompt.name", "mcp.prompt.name")
    else:
        uri = _text(attributes, "mcp.resource.uri")
        return None if uri is None else redactor.redact_text(truncate(uri))  # a URI may carry a token
    if named is None:  # `{method} {target}`, after a prefix some clients add (`MCP send tools/call add`)
        _, found, rest = span.name.partition(f"{method} ")
        named = rest.strip() if found else None
    return named[:MAX_TEXT] if named else None


def _mcp_item(span: SpanRecord, method: str, start: datetime, redactor: Redactor) -> MergeItem:
    attributes = span.attributes
    request_id = attributes.get("jsonrpc.request.id", attributes.get("mcp.request.id"))
    if request_id is not None and not isinstance(request_id, str | int):
        request_id = orjson.dumps(request_id).decode()
    call = Call(method=method, trace_id=span.trace_id, request_id=request_id)
    call.target = _target(span, method, redactor)
    if method == TOOLS_CALL:
        _add_arguments(call, attributes.get("gen_ai.tool.call.arguments"), redactor)
    parsed_result = _add_result(call, attributes.get("gen_ai.tool.call.result"), redactor)
    client = span.kind == SPAN_KIND_CLIENT
    trace = span.trace_id
    request = None if request_id is None else request_key(trace, str(request_id), method)
    caller = span.span_id if client else span.parent_span_id
    link = link_key(trace, caller) if caller else None
    places = [request, link] if client or span.remote_parent is not True else [link, request]
    places.append(span_key(trace, span.span_id))
    first, *fallbacks = (place for place in places if place is not None)
    view = _view(span, start, method, parsed_result, redactor)
    event = build_event(call, {"client_span" if client else "server_span": view}, first)
    return MergeItem(event, tuple(fallbacks))


def _view(span: SpanRecord, start: datetime, method: str, result: Any, redactor: Redactor) -> dict[str, Any]:
    attributes = span.attributes
    view: dict[str, Any] = {"span_id": span.span_id}
    if span.parent_span_id:
        view["parent_span_id"] = span.parent_span_id
        if span.remote_parent is not None:
            view["remote_parent"] = span.remote_parent
    service = span.service
    if service.name and not service.name.startswith("unknown_service"):
        view["service"] = {
            "name": service.name[:MAX_TEXT],
            "version": (service.version or "")[:MAX_TEXT] or None,
        }
    view["start"] = start.isoformat()
    view["duration_ms"] = _duration_ms(span)
    error_type = _text(attributes, "error.type")
    is_error = method == TOOLS_CALL and (error_type == "tool_error" or is_error_result(result))
    failed = span.status_code == STATUS_ERROR or error_type is not None or is_error
    view["status"] = EventStatus.ERROR.value if failed else EventStatus.SUCCESS.value
    code = _text(attributes, "rpc.response.status_code")
    message = redactor.redact_text(clean_message(span.status_message)) if span.status_message else None
    if failed:
        if message is None and is_error and result is not None:
            text = error_result_message(result) if isinstance(result, dict) else result_preview(result)
            message = redactor.redact_text(text)
        view["error_message"] = (message or error_type or NO_MESSAGE)[:MAX_ERROR_MESSAGE]
    if code is not None and code.lstrip("-").isdigit() and len(code) < 12:
        view["error"] = {"code": int(code), "message": message[:MAX_ERROR_MESSAGE] if message else message}
    if is_error:
        view["is_error"] = True
    if (session := _text(attributes, "mcp.session.id")) is not None:
        view["session_id"] = session[:MAX_SESSION_ID]
    if (transport := _TRANSPORTS.get(_text(attributes, "network.transport") or "")) is not None:
        view["transport"] = transport
    if (version := _text(attributes, "mcp.protocol.version")) is not None:
        view["protocol_version"] = version[:MAX_TEXT]
    return view


def _add_arguments(call: Call, raw: Any, redactor: Redactor) -> None:
    if raw is None:
        return
    value = _json_or_text(raw)
    redacted, paths = redactor.redact({"arguments": value})
    value = redacted["arguments"]
    call.redacted.extend(paths)
    encoded = orjson.dumps(value)
    if len(encoded) > ARGUMENTS_BYTES:
        value = truncate(encoded.decode(), ARGUMENTS_BYTES)
    call.arguments = value


def _add_result(call: Call, raw: Any, redactor: Redactor) -> Any:
    """Set the call's result preview; return the result as parsed (an MCP tool result, when it is one)."""
    if raw is None:
        return None
    value = _json_or_text(raw)
    call.result = redactor.redact_text(result_preview(value))
    return value


def _json_or_text(raw: Any) -> Any:
    """Attribute values hold JSON as text (`{"city": "Paris"}`): the value it holds, else the value itself."""
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return raw


def _http_item(span: SpanRecord, start: datetime, redactor: Redactor) -> MergeItem:
    attributes = span.attributes
    method = (_text(attributes, "http.request.method", "http.method") or "")[:MAX_TEXT]
    route = _text(attributes, "http.route")
    path = _text(attributes, "url.path") or (_text(attributes, "http.target") or "").split("?", 1)[0] or None
    if path is not None:
        path = redactor.redact_text(truncate(path))
    status_code = attributes.get("http.response.status_code", attributes.get("http.status_code"))
    if isinstance(status_code, str) and status_code.isdigit() and len(status_code) < 4:
        status_code = int(status_code)
    if not isinstance(status_code, int) or isinstance(status_code, bool):
        status_code = None
    failed = span.status_code == STATUS_ERROR or (status_code is not None and status_code >= 500)
    error_message = None
    if failed:
        message = redactor.redact_text(clean_message(span.status_message)) if span.status_message else None
        fallback = f"HTTP {status_code}" if status_code is not None else NO_MESSAGE
        error_message = (message or _text(attributes, "error.type") or fallback)[:MAX_ERROR_MESSAGE]
    otlp: dict[str, Any] = {"trace_id": span.trace_id, "span_id": span.span_id}
    if span.service.name:
        version = span.service.version
        otlp["service"] = {
            "name": span.service.name[:MAX_TEXT],
            "version": version[:MAX_TEXT] if version else version,
        }
    data: dict[str, Any] = {"method": method, "path": path or route, "status_code": status_code}
    if (client := _text(attributes, "client.address")) is not None:
        port = attributes.get("client.port")
        data["client"] = (f"{client}:{port}" if isinstance(port, int) else client)[:MAX_TEXT]
    data["otlp"] = otlp
    event = constructed(
        id=span_key(span.trace_id, span.span_id),
        timestamp=start,
        tool_name=f"{method} {route or path or '/'}"[:MAX_TEXT],
        user_source=None,
        event_type=EventType.API_REQUEST,
        status=EventStatus.ERROR if failed else EventStatus.SUCCESS,
        data=data,
        duration_ms=_duration_ms(span),
        error_message=error_message,
        correlation_id=span.trace_id,
        session_id=None,
    )
    return MergeItem(event)

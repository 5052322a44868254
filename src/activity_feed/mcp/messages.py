"""What the feed calls an MCP message: its event's `tool_name`, its target (tool or prompt name, resource
URI), the arguments it records and a short preview of its result.

Messages come as the SDK's raw params (camelCase dicts) or as fastmcp's typed models; results as wire
dicts or as models. Everything here runs inside the request, so it reads only what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from activity_feed.mcp import preview

TOOLS_CALL = "tools/call"
PROMPTS_GET = "prompts/get"
PING = "ping"
CANCELLED = "notifications/cancelled"

DISCOVER = "server/discover"
# The one answer to `server/discover` after which a 2026-era client does not fall back to `initialize`:
# the server speaks only versions the client may not (the SDK's `negotiate_auto` re-probes or gives up).
UNSUPPORTED_PROTOCOL_VERSION = -32022

RecordMode = Literal["tools", "requests", "all"]
RECORD_MODES: tuple[RecordMode, ...] = ("tools", "requests", "all")

# The list methods and the key of the items in their results.
_LISTS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
_URI_TARGETS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
_ARGUMENT_TARGETS = frozenset({TOOLS_CALL, PROMPTS_GET})


def discover_fell_back(method: str, code: object) -> bool:
    """Whether a JSON-RPC error with `code` answering `method` is a server without the 2026 discovery,
    which the client meets by falling back to `initialize`: not a failure. Servers answer the probe in
    several ways (`Method not found` from the Python SDK, `-32000 Server not initialized` with HTTP 400
    from the TypeScript SDK's), and the SDK's client falls back on every JSON-RPC error but -32022."""
    return method == DISCOVER and type(code) is int and code != UNSUPPORTED_PROTOCOL_VERSION


def check_record_mode(record: object) -> RecordMode:
    if record not in RECORD_MODES:
        choices = ", ".join(repr(mode) for mode in RECORD_MODES)
        raise ValueError(f"record must be one of {choices}, not {record!r}")
    return record


def wants_request(record: RecordMode, method: str) -> bool:
    """Whether a request of `method` is recorded under `record`: `tools/call` always, pings only with
    `all`, any other request unless `tools`."""
    if method == TOOLS_CALL:
        return True
    if record == "tools":
        return False
    return method != PING or record == "all"


def field(value: Any, name: str, attribute: str | None = None) -> Any:
    """`name` of a wire dict, or `attribute` (default `name`) of a model."""
    return preview._field(value, name, attribute) if value is not None else None


def names(method: str, params: Any) -> tuple[str, str | None]:
    """`(tool_name, target)`: the bare tool name for `tools/call`, `prompts/get <name>` for
    `prompts/get`, otherwise the method; the target is the tool or prompt name or the resource URI."""
    if method == TOOLS_CALL:
        name = field(params, "name")
        text = name if isinstance(name, str) else str(name)
        return text, text
    if method == PROMPTS_GET:
        name = field(params, "name")
        text = name if isinstance(name, str) else str(name)
        return f"{PROMPTS_GET} {text}", text
    if method in _URI_TARGETS:
        uri = field(params, "uri")
        return method, str(uri) if uri is not None else None
    if method == "completion/complete":
        ref = field(params, "ref")
        target = field(ref, "name") or field(ref, "uri")
        return method, str(target) if target is not None else None
    return method, None


def arguments(method: str, params: Any) -> Mapping[str, Any] | None:
    """What a request's event records as its arguments (copied later, on the client's worker): a tool's
    or a prompt's arguments, else the params themselves (the worker leaves `_meta` out)."""
    if method in _ARGUMENT_TARGETS:
        found = field(params, "arguments")
        return found if isinstance(found, Mapping) else None
    return params if isinstance(params, Mapping) and params else None


def result_preview(method: str, result: Any) -> str:
    """At most 1 KiB saying what a request returned."""
    if method == TOOLS_CALL:
        return preview.result_preview(result)
    key = _LISTS.get(method)
    if key is not None:
        items = result if isinstance(result, Sequence) else field(result, key)
        if isinstance(items, Sequence):
            listed = [
                field(item, "name") or field(item, "uri") or field(item, "uriTemplate", "uri_template")
                for item in items
            ]
            kind = key if key != "resourceTemplates" else "resource templates"
            return preview.truncate(f"{len(items)} {kind}: {', '.join(str(name) for name in listed)}")
    if method == "resources/read":
        contents = field(result, "contents")
        if isinstance(contents, Sequence):
            return preview.truncate("\n".join(_content_text(item) for item in contents[:8]))
    return preview.truncate(preview._as_text(result))


def _content_text(item: Any) -> str:
    text = field(item, "text")
    if isinstance(text, str):
        return text[: preview.PREVIEW_BYTES]
    content = field(item, "content")  # fastmcp's ResourceContent
    if isinstance(content, str):
        return content[: preview.PREVIEW_BYTES]
    mime = field(item, "mimeType", "mime_type")
    return f"[blob {mime}]" if mime else "[blob]"

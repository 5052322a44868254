"""An MCP message's `data.mcp`, as tuples of plain values the client's worker turns into dicts.

The request builds only these tuples: the garbage collector stops tracking a tuple that holds nothing
but strings, numbers, None and such tuples, so the many that may wait for a starved worker cost the
host nothing at each collection; the dicts are made on the worker's thread.

A tool call keeps its arguments and result preview where they always were, in `data.arguments` and
`data.result`; any other message's go in `data.mcp.arguments` and `data.mcp.result`. The client redacts
those and the target; the rest of `data.mcp` names the message (method, ids, versions, names) and is
joined to the event unredacted, as its tool name and client are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from activity_feed.client.payload import Serialised, dumps

TOOLS_CALL = "tools/call"
NAMED_TARGETS = frozenset({TOOLS_CALL, "prompts/get"})


class ServerInfo(NamedTuple):
    """The instrumented server, the same in every event of one instrumentation."""

    name: str | None
    version: str | None
    source: str  # what recorded the events: "sdk" or "fastmcp"


class McpDetails(NamedTuple):
    """A message's `data.mcp` at its start (`CallDetails` for the client's fast path)."""

    method: str
    request_id: object
    direction: str
    transport: str | None
    protocol_version: str | None
    client_name: str | None
    client_version: str | None
    target: str | None
    trace_id: str | None
    span_id: str | None
    server: ServerInfo

    def extra_data(self, arguments: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """What the client redacts: a resource's URI (it can hold a token) and a message's arguments."""
        if self.method == TOOLS_CALL:
            return None  # the tool's name is the event's, and its arguments are `data.arguments`
        mcp: dict[str, Any] = {}
        if self.target is not None and self.method not in NAMED_TARGETS:
            mcp["target"] = self.target
        if arguments is not None and self.method != TOOLS_CALL:  # a tool call's are `data.arguments`
            if "_meta" in arguments:  # the envelope (client info, trace, progress token), not arguments
                arguments = {key: value for key, value in arguments.items() if key != "_meta"}
            if arguments:
                mcp["arguments"] = arguments
        return {"mcp": mcp} if mcp else None

    def verbatim_json(self) -> Mapping[str, Serialised]:
        """`verbatim_data()` serialised, for the client (`CallRecord.start_data`). All of it but the
        request id is the same for every message of a method on a connection: that JSON is made once
        (per method, client, server and target), and the request id set into it."""
        request_id = self.request_id
        if self.trace_id is not None or not (
            request_id is None or type(request_id) is int or type(request_id) is str
        ):
            return {"mcp": Serialised(dumps(self.verbatim_data()["mcp"]))}  # a trace differs in every message
        key = self[:1] + self[2:]  # all but the request id
        parts = _verbatim_parts.get(key)
        if parts is None:
            parts = _split_verbatim(self)
            if len(_verbatim_parts) >= _VERBATIM_PARTS_KEPT:
                _verbatim_parts.clear()
            _verbatim_parts[key] = parts
        head, tail = parts
        if request_id is None:
            return {"mcp": Serialised(head + tail)}
        return {"mcp": Serialised(head + b',"request_id":' + orjson.dumps(request_id) + tail)}

    def verbatim_data(self) -> Mapping[str, Any]:
        """The identity of the message, never redacted (as the event's tool name and client are not)."""
        mcp: dict[str, Any] = {"method": self.method}
        if self.request_id is not None:
            mcp["request_id"] = self.request_id
        mcp["direction"] = self.direction
        if self.transport is not None:
            mcp["transport"] = self.transport
        if self.protocol_version is not None:
            mcp["protocol_version"] = self.protocol_version
        if self.client_name is not None:
            mcp["client"] = {"name": self.client_name, "version": self.client_version}
        server = self.server
        if server.name is not None:
            mcp["server"] = {"name": server.name, "version": server.version}
        if self.target is not None and self.method in NAMED_TARGETS:  # the name in the event's tool_name
            mcp["target"] = self.target
        if self.trace_id is not None:
            mcp["trace_id"] = self.trace_id
            mcp["span_id"] = self.span_id
        mcp["source"] = server.source
        return {"mcp": mcp}


# The JSON of a message's `data.mcp` around the request id (`McpDetails.verbatim_json`), by everything else
# in it: a few per connection, bounded for servers with many connections.
_verbatim_parts: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
_VERBATIM_PARTS_KEPT = 1024


def _split_verbatim(details: McpDetails) -> tuple[bytes, bytes]:
    """`(head, tail)`: the JSON of the details' `data.mcp` without a request id is `head + tail`, and
    `head + b',"request_id":' + id + tail` with one (it follows the method, as in `verbatim_data`)."""
    mcp = dict(details.verbatim_data()["mcp"])
    mcp.pop("request_id", None)
    body = dumps(mcp)
    head = dumps({"method": details.method})[:-1]  # `{"method":"..."`, as `body` begins
    return head, body[len(head) :]


class McpOutcome(NamedTuple):
    """What a message's end adds to `data` (`CallOutcome`): the result preview (in `data.result` for a
    tool call, else in `data.mcp.result`), a JSON-RPC error, a tool result's `isError`."""

    tool: bool = False
    error_code: int | None = None
    error_message: str | None = None
    is_error: bool = False

    def outcome_data(self, result_preview: str | None) -> Mapping[str, Any] | None:
        data: dict[str, Any] = {}
        mcp: dict[str, Any] = {}
        if result_preview is not None:
            if self.tool:
                data["result"] = result_preview
            else:
                mcp["result"] = result_preview
        if self.error_code is not None:
            mcp["error"] = {"code": self.error_code, "message": self.error_message}
        if self.is_error:
            mcp["is_error"] = True
        if mcp:
            data["mcp"] = mcp
        return data or None


# The common ends, made once.
REQUEST_RESULT = McpOutcome()
TOOL_IS_ERROR = McpOutcome(tool=True, is_error=True)


# Makes a details tuple from a tuple of its fields in C, skipping NamedTuple's Python-level constructor:
# one is made in every request (`new_tuple(McpDetails, (method, ...))`).
new_tuple = tuple.__new__

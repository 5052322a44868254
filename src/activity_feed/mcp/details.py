"""An MCP message's `data.mcp`, as tuples of plain values the client's worker turns into dicts.

The request builds only these tuples: the garbage collector stops tracking a tuple that holds nothing
but strings, numbers and None, so the many that may wait for a starved worker cost the host nothing at
each collection; the dicts are made on the worker's thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class McpDetails(NamedTuple):
    """A message's `data.mcp` at its start (`CallDetails` for the client's fast path)."""

    method: str
    request_id: object
    direction: str
    transport: str | None
    protocol_version: str | None
    client_name: str | None
    client_version: str | None
    server_name: str | None
    server_version: str | None
    target: str | None
    trace_id: str | None
    span_id: str | None
    source: str

    def extra_data(self, arguments: Mapping[str, Any] | None) -> Mapping[str, Any]:
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
        if self.server_name is not None:
            mcp["server"] = {"name": self.server_name, "version": self.server_version}
        if self.target is not None:
            mcp["target"] = self.target
        if arguments is not None:
            if "_meta" in arguments:  # the envelope (client info, trace, progress token), not arguments
                arguments = {key: value for key, value in arguments.items() if key != "_meta"}
            if arguments:
                mcp["arguments"] = arguments
        if self.trace_id is not None:
            mcp["trace_id"] = self.trace_id
            mcp["span_id"] = self.span_id
        mcp["source"] = self.source
        return {"mcp": mcp}


class McpOutcome(NamedTuple):
    """What a message's end adds to `data.mcp` (`CallOutcome`)."""

    result: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    is_error: bool = False

    def outcome_data(self) -> Mapping[str, Any] | None:
        mcp: dict[str, Any] = {}
        if self.result is not None:
            mcp["result"] = self.result
        if self.error_code is not None:
            mcp["error"] = {"code": self.error_code, "message": self.error_message}
        if self.is_error:
            mcp["is_error"] = True
        return {"mcp": mcp} if mcp else None

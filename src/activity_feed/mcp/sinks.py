"""Where the instrumentation's events go: `FeedClient`'s fast path (`start_call`/`end_call`), or any
client with `FeedClient`'s `log` and `update` behind `LoggingClient`. Also `warn_once`, the one way the
instrumentation complains (once per kind, on stderr through `logging`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Protocol, cast

from activity_feed.client.intake import CallDetails, CallOutcome, CallRecord, end_data, join_verbatim
from activity_feed.redaction import Redactor

logger = logging.getLogger("activity_feed.mcp")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(kind: str, message: str, *, exc_info: bool = True) -> None:
    """Log `message` (to stderr, through `logging`) the first time only for each `kind`."""
    with _warned_lock:
        if kind in _warned:
            return
        _warned.add(kind)
    logger.warning(message, exc_info=exc_info)


class ActivityClient(Protocol):
    """What the instrumentation needs of a client: `FeedClient`'s `log` and `update` (`session_id` and
    `correlation_id` are passed to `log` only when known)."""

    def log(
        self,
        *,
        event_type: str = ...,
        tool_name: str | None = ...,
        user_source: str | None = ...,
        status: str = ...,
        data: dict[str, Any] | None = ...,
    ) -> str: ...

    def update(
        self,
        id: Any,
        *,
        status: str | None = ...,
        duration_ms: float | None = ...,
        error_message: str | None = ...,
        data: dict[str, Any] | None = ...,
    ) -> None: ...


class CallSink(Protocol):
    """The one way the instrumentation records a call: `FeedClient`'s fast path, or `LoggingClient`
    around any other client."""

    def start_call(
        self,
        tool_name: str,
        *,
        event_type: str = ...,
        user_source: str | None = ...,
        arguments: Mapping[str, Any] | None = ...,
        details: CallDetails | None = ...,
        session_id: str | None = ...,
        correlation_id: str | None = ...,
    ) -> Any: ...

    def end_call(
        self,
        call: Any,
        status: Literal["success", "error"],
        duration_ms: float | None,
        error_message: str | None,
        result_preview: str | None,
        outcome: CallOutcome | None = ...,
    ) -> None: ...

    def redact_text(self, text: str) -> str: ...


class _Logged(NamedTuple):
    id: str
    data: dict[str, Any]


class LoggingClient:
    """A `CallSink` over any client with `FeedClient`'s `log` and `update` (a test double, a client of
    your own): the start is logged at once, the end updates it."""

    def __init__(self, client: ActivityClient) -> None:
        self.client = client
        self.enabled = getattr(client, "enabled", True)

    def start_call(
        self,
        tool_name: str,
        *,
        event_type: str = "tool_call",
        user_source: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        details: CallDetails | None = None,
        session_id: str | None = None,
        correlation_id: str | None = None,
    ) -> _Logged:
        record = CallRecord(tool_name, user_source, arguments, details, event_type)
        data = join_verbatim(record.start_data(), record.verbatim)
        known: dict[str, Any] = {}
        if session_id is not None:
            known["session_id"] = session_id
        if correlation_id is not None:
            known["correlation_id"] = correlation_id
        event_id = self.client.log(
            event_type=event_type,
            tool_name=tool_name,
            user_source=user_source,
            status="pending",
            data=data,
            **known,
        )
        return _Logged(event_id, data)

    def end_call(
        self,
        call: _Logged,
        status: Literal["success", "error"],
        duration_ms: float | None,
        error_message: str | None,
        result_preview: str | None,
        outcome: CallOutcome | None = None,
    ) -> None:
        data = end_data(result_preview, outcome, call.data)
        self.client.update(
            call.id, status=status, duration_ms=duration_ms, error_message=error_message, data=data or None
        )

    def redact_text(self, text: str) -> str:
        # The defaults: this client's own patterns, if any, are unknown here.
        return _default_redactor().redact_text(text)


def sink_for(client: ActivityClient | CallSink) -> CallSink:
    if hasattr(client, "start_call"):
        return cast(CallSink, client)
    return LoggingClient(client)


def default_sink() -> CallSink:
    from activity_feed.client import get_default_client

    return get_default_client()


_redactor: Redactor | None = None


def _default_redactor() -> Redactor:
    global _redactor
    if _redactor is None:
        _redactor = Redactor()
    return _redactor

"""The one event lifecycle behind `instrument()`, the fastmcp middleware and `track_tool`.

`CallRecorder.start()` logs a `pending` `tool_call` event and returns a `ToolCall`; the call's end is
reported with `returned(result)` or `raised(exc)`, which update the event to `success` or `error` with
its duration. Both only queue (the `FeedClient` never blocks), and every step is a boundary: an
exception inside the instrumentation is logged once per kind and swallowed, so the host's tool always
gets its own result or exception back unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Protocol, cast

from activity_feed.client.intake import ToolCallDetails, ToolCallRecord
from activity_feed.mcp import preview
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
    """What the instrumentation needs of a client: `FeedClient`'s `log` and `update`."""

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


class ToolCallSink(Protocol):
    """The one way the instrumentation records a call: `FeedClient`'s fast path, or `LoggingClient`
    around any other client."""

    def start_tool_call(
        self,
        tool_name: str,
        *,
        user_source: str | None = ...,
        arguments: Mapping[str, Any] | None = ...,
        details: ToolCallDetails | None = ...,
    ) -> Any: ...

    def end_tool_call(
        self,
        call: Any,
        status: Literal["success", "error"],
        duration_ms: float,
        error_message: str | None,
        result_preview: str | None,
    ) -> None: ...

    def redact_text(self, text: str) -> str: ...


class LoggingClient:
    """A `ToolCallSink` over any client with `FeedClient`'s `log` and `update` (a test double, a
    client of your own): the start is logged at once, the end updates it."""

    def __init__(self, client: ActivityClient) -> None:
        self.client = client
        self.enabled = getattr(client, "enabled", True)

    def start_tool_call(
        self,
        tool_name: str,
        *,
        user_source: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        details: ToolCallDetails | None = None,
    ) -> str:
        data = ToolCallRecord(tool_name, user_source, arguments, details).start_data()
        return self.client.log(
            event_type="tool_call", tool_name=tool_name, user_source=user_source, status="pending", data=data
        )

    def end_tool_call(
        self,
        call: str,
        status: Literal["success", "error"],
        duration_ms: float,
        error_message: str | None,
        result_preview: str | None,
    ) -> None:
        self.client.update(
            call,
            status=status,
            duration_ms=duration_ms,
            error_message=error_message,
            data={"result": result_preview} if result_preview is not None else None,
        )

    def redact_text(self, text: str) -> str:
        # The defaults: this client's own patterns, if any, are unknown here.
        return _default_redactor().redact_text(text)


class ExtraData(NamedTuple):
    """Keys a caller gave for the event's `data`, as `ToolCallDetails`."""

    data: Mapping[str, Any]

    def extra_data(self) -> Mapping[str, Any]:
        return self.data


def _sink_for(client: ActivityClient | ToolCallSink) -> ToolCallSink:
    if hasattr(client, "start_tool_call"):
        return cast(ToolCallSink, client)
    return LoggingClient(client)


def _default_client() -> ToolCallSink:
    from activity_feed.client import get_default_client

    return get_default_client()


class CallRecorder:
    """Records tool calls through `client` (None: the process-wide default client, looked up per call)."""

    def __init__(
        self,
        client: ActivityClient | ToolCallSink | None = None,
        *,
        user_source: str | None = None,
        capture_arguments: bool = True,
        capture_results: bool = True,
    ) -> None:
        self.client = client
        # Chosen once: every call then goes one way, whatever the client.
        self.sink = _sink_for(client) if client is not None else None
        self.user_source = user_source
        self.capture_arguments = capture_arguments
        self.capture_results = capture_results

    def client_for_call(self) -> ToolCallSink | None:
        """The sink to record a call through; None when the feed is disabled (no URL)."""
        sink = self.sink if self.sink is not None else _default_client()
        return None if getattr(sink, "enabled", True) is False else sink

    def start(
        self,
        tool_name: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        user_source: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ToolCall | None:
        """Log the call as `pending`; None when the feed is disabled or logging failed."""
        try:
            sink = self.client_for_call()
            if sink is None:
                return None  # no URL: skip building an event nobody will send
            call = ToolCall(self, sink, tool_name, user_source, arguments, extra)
        except Exception:  # boundary: the tool runs whatever happens to its record
            warn_once("start", "activity feed: could not record the start of a tool call")
            return None
        return self.record_start(call)

    def record_start(self, call: ToolCall) -> ToolCall | None:
        """Log the start of `call` (made with this recorder); None when logging failed."""
        try:
            call.record = call.sink.start_tool_call(
                call.tool_name, user_source=call.user_source, arguments=call.arguments, details=call.details()
            )
            call.arguments = None  # the record holds them now
            return call
        except Exception:  # boundary: the tool runs whatever happens to its record
            warn_once("start", "activity feed: could not record the start of a tool call")
            return None


class ToolCall:
    """One recorded call in flight; ends exactly once. It lives as long as the call: what the client
    keeps until its worker reads it is the record and the `details()`, never this object."""

    __slots__ = (
        "_capture_results",
        "_cause",
        "_done",
        "_started",
        "arguments",
        "extra",
        "record",
        "sink",
        "tool_name",
        "user_source",
    )

    def __init__(
        self,
        recorder: CallRecorder,
        sink: ToolCallSink,
        tool_name: str,
        user_source: str | None,
        arguments: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.tool_name = tool_name
        self.user_source = recorder.user_source if recorder.user_source is not None else user_source
        self.arguments = arguments if recorder.capture_arguments else None
        self.extra = extra
        self._capture_results = recorder.capture_results
        self._started = time.perf_counter()
        self._done = False
        self._cause: str | None = None
        self.sink = sink
        self.record: Any = None  # what the sink's start_tool_call returned, for its end_tool_call

    def details(self) -> ToolCallDetails | None:
        """More `data` for the event, read on the client's worker thread."""
        return ExtraData(self.extra) if self.extra else None

    def note_cause(self, exc: BaseException) -> None:
        """Remember the exception the SDK logged while turning it into an `isError` result."""
        try:
            self._cause = preview.cause_message(exc)
        except Exception:  # boundary
            warn_once("cause", "activity feed: could not read a tool's exception")

    def returned(self, result: Any) -> None:
        """The call returned `result`: `success`, or `error` when it is an `isError` tool result."""
        try:
            if preview.is_error_result(result):
                message = preview.error_result_message(result)
                if self._cause is not None and self._cause not in message:
                    message = f"{message}: {self._cause}"
                self._finish("error", message, result)
            else:
                self._finish("success", None, result)
        except Exception:  # boundary
            warn_once("finish", "activity feed: could not record the end of a tool call")

    def raised(self, exc: BaseException) -> None:
        """The call raised `exc` (cancellation included): `error` with the reason."""
        try:
            if isinstance(exc, Exception):
                message = preview.exception_message(exc)
            else:
                message = f"{type(exc).__name__}: the call was cancelled or interrupted"
            self._finish("error", message, None)
        except Exception:  # boundary
            warn_once("finish", "activity feed: could not record the end of a tool call")

    def _finish(self, status: Literal["success", "error"], error_message: str | None, result: Any) -> None:
        if self._done:
            return
        self._done = True
        duration_ms = (time.perf_counter() - self._started) * 1000.0
        sink = self.sink
        if error_message is not None:
            # The client redacts `data` only; an error message can quote arguments too.
            error_message = sink.redact_text(error_message)
        # Previewed here even for a FeedClient, whose worker could do it: keeping the result alive until
        # then would cost the host more than the preview (and hold results of any size).
        result_preview = (
            preview.result_preview(result) if self._capture_results and result is not None else None
        )
        sink.end_tool_call(self.record, status, duration_ms, error_message, result_preview)


_redactor: Redactor | None = None


def _default_redactor() -> Redactor:
    global _redactor
    if _redactor is None:
        _redactor = Redactor()
    return _redactor

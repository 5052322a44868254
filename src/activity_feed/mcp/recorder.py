"""Recording one call: `CallRecorder` logs its start (`pending`) and `RecordedCall` its end (`success` or
`error`, with the duration), through a sink (`sinks.py`).

Both only queue (the `FeedClient` never blocks), and every step is a boundary: an exception inside the
instrumentation is logged once per kind and swallowed, so the host's tool always gets its own result or
exception back unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from activity_feed.client.intake import CallDetails, CallOutcome
from activity_feed.mcp import preview
from activity_feed.mcp.sinks import (
    ActivityClient,
    CallSink,
    LoggingClient,
    _warned,
    default_sink,
    sink_for,
    warn_once,
)

__all__ = [
    "ActivityClient",
    "CallRecorder",
    "CallSink",
    "ExtraData",
    "LoggingClient",
    "RecordedCall",
    "ToolCall",
    "ToolCallSink",
    "_warned",
    "warn_once",
]


class ExtraData(NamedTuple):
    """Keys a caller gave for the event's `data`, as `CallDetails`."""

    data: Mapping[str, Any]

    def extra_data(self, arguments: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return self.data


class CallRecorder:
    """Records calls through `client` (None: the process-wide default client, looked up per call)."""

    def __init__(
        self,
        client: ActivityClient | CallSink | None = None,
        *,
        user_source: str | None = None,
        capture_arguments: bool = True,
        capture_results: bool = True,
    ) -> None:
        self.client = client
        # Chosen once: every call then goes one way, whatever the client.
        self.sink = sink_for(client) if client is not None else None
        self.user_source = user_source
        self.capture_arguments = capture_arguments
        self.capture_results = capture_results

    def client_for_call(self) -> CallSink | None:
        """The sink to record a call through; None when the feed is disabled (no URL)."""
        sink = self.sink if self.sink is not None else default_sink()
        return None if getattr(sink, "enabled", True) is False else sink

    def start(
        self,
        tool_name: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        user_source: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> RecordedCall | None:
        """Log a tool call as `pending`; None when the feed is disabled or logging failed."""
        try:
            sink = self.client_for_call()
            if sink is None:
                return None  # no URL: skip building an event nobody will send
            details = ExtraData(extra) if extra else None
        except Exception:  # boundary: the tool runs whatever happens to its record
            warn_once("start", "activity feed: could not record the start of a tool call")
            return None
        return self.begin(
            RecordedCall(self, sink), tool_name, arguments=arguments, user_source=user_source, details=details
        )

    def begin(
        self,
        call: RecordedCall,
        tool_name: str,
        *,
        event_type: str = "tool_call",
        user_source: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        details: CallDetails | None = None,
        session_id: str | None = None,
        correlation_id: str | None = None,
    ) -> RecordedCall | None:
        """Log the start of `call` (made with this recorder); None when logging failed."""
        try:
            call.record = call.sink.start_call(
                tool_name,
                event_type=event_type,
                user_source=self.user_source if self.user_source is not None else user_source,
                arguments=arguments if self.capture_arguments else None,
                details=details,
                session_id=session_id,
                correlation_id=correlation_id,
            )
            return call
        except Exception:  # boundary: the tool runs whatever happens to its record
            warn_once("start", "activity feed: could not record the start of a tool call")
            return None


class RecordedCall:
    """One recorded call in flight; ends exactly once. It lives as long as the call: what the client
    keeps until its worker reads it is the record, never this object."""

    __slots__ = ("_cause", "_done", "_started", "capture_results", "record", "sink")

    def __init__(self, recorder: CallRecorder, sink: CallSink) -> None:
        self.capture_results = recorder.capture_results
        self._started = time.perf_counter()
        self._done = False
        self._cause: str | None = None
        self.sink = sink
        self.record: Any = None  # what the sink's start_call returned, for its end_call

    def note_cause(self, exc: BaseException) -> None:
        """Remember the exception the SDK logged while turning it into an `isError` result."""
        try:
            self._cause = preview.cause_message(exc)
        except Exception:  # boundary
            warn_once("cause", "activity feed: could not read a tool's exception")

    def returned(self, result: Any) -> None:
        """The tool returned `result`: `success`, or `error` when it is an `isError` tool result."""
        try:
            result_preview = self.preview(result)
            if preview.is_error_result(result):
                self.finish("error", self.error_result_message(result), result_preview)
            else:
                self.finish("success", None, result_preview)
        except Exception:  # boundary
            warn_once("finish", "activity feed: could not record the end of a tool call")

    def raised(self, exc: BaseException) -> None:
        """The call raised `exc` (cancellation included): `error` with the reason."""
        try:
            if isinstance(exc, Exception):
                message = preview.exception_message(exc)
            else:
                message = f"{type(exc).__name__}: the call was cancelled or interrupted"
            self.finish("error", message, None)
        except Exception:  # boundary
            warn_once("finish", "activity feed: could not record the end of a tool call")

    def preview(self, result: Any) -> str | None:
        # Previewed here even for a FeedClient, whose worker could do it: keeping the result alive until
        # then would cost the host more than the preview (and hold results of any size).
        return preview.result_preview(result) if self.capture_results and result is not None else None

    def error_result_message(self, result: Any) -> str:
        """Why an `isError` result failed, with the exception the SDK logged for it, if any."""
        message = preview.error_result_message(result)
        if self._cause is not None and self._cause not in message:
            message = f"{message}: {self._cause}"
        return message

    def finish(
        self,
        status: Literal["success", "error"],
        error_message: str | None,
        result_preview: str | None,
        outcome: CallOutcome | None = None,
    ) -> None:
        """End the event (once; later calls do nothing)."""
        if self._done:
            return
        self._done = True
        duration_ms = (time.perf_counter() - self._started) * 1000.0
        sink = self.sink
        if error_message is not None:
            # The client redacts `data` only; an error message can quote arguments too.
            error_message = sink.redact_text(error_message)
        sink.end_call(self.record, status, duration_ms, error_message, result_preview, outcome)


# The earlier names.
ToolCall = RecordedCall
ToolCallSink = CallSink

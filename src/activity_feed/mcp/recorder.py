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
from typing import Any, Literal, Protocol

from activity_feed.client.feed_client import FeedClient
from activity_feed.client.intake import ToolCallRecord
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


def _default_client() -> ActivityClient:
    from activity_feed.client import get_default_client

    return get_default_client()


class CallRecorder:
    """Records tool calls through `client` (None: the process-wide default client, looked up per call)."""

    def __init__(
        self,
        client: ActivityClient | None = None,
        *,
        user_source: str | None = None,
        capture_arguments: bool = True,
        capture_results: bool = True,
    ) -> None:
        self.client = client
        self.user_source = user_source
        self.capture_arguments = capture_arguments
        self.capture_results = capture_results

    def client_for_call(self) -> ActivityClient | None:
        """The client to record a call through; None when the feed is disabled (no URL)."""
        client = self.client if self.client is not None else _default_client()
        return None if getattr(client, "enabled", True) is False else client

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
            client = self.client_for_call()
            if client is None:
                return None  # no URL: skip building an event nobody will send
            call = ToolCall(self, client, tool_name, user_source, arguments, extra)
        except Exception:  # boundary: the tool runs whatever happens to its record
            warn_once("start", "activity feed: could not record the start of a tool call")
            return None
        return self.begin(call)

    def begin(self, call: ToolCall) -> ToolCall | None:
        """Log the start of `call` (made with this recorder); None when logging failed."""
        try:
            client = call.client
            if type(client) is FeedClient:
                client.tool_call_started(call)
            else:
                call.event = client.log(
                    event_type="tool_call",
                    tool_name=call.tool_name,
                    user_source=call.user_source,
                    status="pending",
                    data=call.start_data(),
                )
            return call
        except Exception:  # boundary: the tool runs whatever happens to its record
            warn_once("start", "activity feed: could not record the start of a tool call")
            return None


class ToolCall(ToolCallRecord):
    """One recorded call in flight; ends exactly once. For a `FeedClient` it is also the record the
    client queues, so a call leaves one object behind it until the worker reads it."""

    __slots__ = ("_capture_results", "_cause", "_done", "_started", "client", "event", "extra_data")

    def __init__(
        self,
        recorder: CallRecorder,
        client: ActivityClient,
        tool_name: str,
        user_source: str | None,
        arguments: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        ToolCallRecord.__init__(
            self,
            tool_name,
            recorder.user_source if recorder.user_source is not None else user_source,
            arguments if recorder.capture_arguments else None,
        )
        self._capture_results = recorder.capture_results
        self._started = time.perf_counter()
        self._done = False
        self._cause: str | None = None
        self.client = client
        self.event: str | None = None  # the id log() returned, for a client other than FeedClient
        self.extra_data = extra

    def extra(self) -> Mapping[str, Any] | None:
        return self.extra_data

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
        client = self.client
        if error_message is not None:
            error_message = _redact_text(client, error_message)
        # Previewed here even for a FeedClient, whose worker could do it: keeping the result alive until
        # then would cost the host more than the preview (and hold results of any size).
        result_preview = (
            preview.result_preview(result) if self._capture_results and result is not None else None
        )
        if type(client) is FeedClient:
            client.tool_call_ended(self, status, duration_ms, error_message, result_preview)
        else:
            client.update(
                self.event,
                status=status,
                duration_ms=duration_ms,
                error_message=error_message,
                data={"result": result_preview} if result_preview is not None else None,
            )


def _redact_text(client: ActivityClient, text: str) -> str:
    # The client redacts `data` only; an error message can quote arguments too, so it gets the same
    # value patterns (a FeedClient's own, so custom patterns apply and redact=False is respected; the
    # defaults for any other client).
    if isinstance(client, FeedClient):
        return client.redact_text(text)
    return _default_redactor().redact_text(text)


_redactor: Redactor | None = None


def _default_redactor() -> Redactor:
    global _redactor
    if _redactor is None:
        _redactor = Redactor()
    return _redactor

"""`FeedClient`: the non-blocking sender that runs inside the user's process.

`log()` and `update()` check their arguments, record them (`intake.py`) and return: a microsecond or
two, no I/O, no exception ever. One background worker redacts, serialises and sends. See `worker.py`
for batching and retries, `pending.py` for the queue's bounds and the merge of an update into its
queued create, and `lifecycle.py` for exit and fork.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from activity_feed.client import lifecycle
from activity_feed.client.admission import Admission
from activity_feed.client.counters import Counters, DropReason, Warnings, logger
from activity_feed.client.environment import client_token, default_url
from activity_feed.client.intake import (
    Call,
    CallDetails,
    CallOutcome,
    CallRecord,
    CreateCall,
    Intake,
    UpdateCall,
)
from activity_feed.client.payload import (
    ENVELOPE_BYTES,
    EVENT_TYPES,
    MAX_REQUEST_BYTES,
    STATUSES,
    InvalidItem,
    enum_value,
    event_id,
)
from activity_feed.client.pending import PendingQueue
from activity_feed.client.worker import Worker, WorkerConfig
from activity_feed.redaction import Redactor
from activity_feed.schemas import MAX_BATCH_ITEMS

MiB = 1024 * 1024
_warned_no_url = False


class FeedClient:
    """Send activity events to a feed at `url` (default `ACTIVITY_FEED_URL`) without ever blocking.

    With no url at all the client is disabled: `log()` still returns ids, nothing is sent, and one
    warning says so (none for `url=""`: disabled on purpose). `token` (default `ACTIVITY_FEED_TOKEN`) is
    sent as `Authorization: Bearer`; one that cannot go in a header raises `InvalidTokenError` here.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        max_queue_events: int = 10_000,
        max_queue_bytes: int = 8 * MiB,
        batch_size: int = 200,
        flush_interval: float = 0.05,
        timeout: float = 5.0,
        max_retry_seconds: float | None = 60.0,
        max_backoff: float = 5.0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        redactor: Redactor | None = None,
        redact: bool = True,
    ) -> None:
        global _warned_no_url
        self.url = (url if url is not None else default_url() or "").rstrip("/") or None
        self.enabled = self.url is not None
        if not self.enabled and url is None and not _warned_no_url:
            _warned_no_url = True
            logger.warning("activity feed: ACTIVITY_FEED_URL is not set, so events are not sent anywhere")
        self._config = WorkerConfig(
            endpoint=f"{self.url}/activities/batch",
            token=client_token(token),
            batch_size=max(1, min(batch_size, MAX_BATCH_ITEMS)),
            flush_interval=max(0.0, flush_interval),
            timeout=timeout,
            max_retry_seconds=max_retry_seconds,
            max_backoff=max_backoff,
            max_request_bytes=max_request_bytes,
        )
        self.max_queue_events = max_queue_events
        self.max_queue_bytes = max_queue_bytes
        self._redactor = (redactor or Redactor()) if redact else None
        self._closed = False
        self._fresh_state()
        if self.enabled:
            lifecycle.register(self)  # a disabled client has nothing to flush, nor a worker to fork
            # Now rather than at the first call: starting the worker (a thread, an event loop, an HTTP
            # client) is the one slow step, and the first call is often inside a tool call.
            self._start_worker()

    def _fresh_state(self) -> None:
        # Everything a forked child must not share with its parent.
        self._queue = PendingQueue(
            max_items=self.max_queue_events,
            max_bytes=self.max_queue_bytes,
            max_item_bytes=self._config.max_request_bytes - ENVELOPE_BYTES,
        )
        self._counters = Counters()
        self._warnings = Warnings()
        self._admission = Admission(self._queue, self._counters, self._warnings, self._redactor)
        self._intake = Intake(self._admission.admit_all)
        self._intake_calls = self._intake.calls  # appended to directly: the busiest line of the client
        self._worker: Worker | None = None
        self._start_lock = threading.Lock()

    # Counters.

    @property
    def sent(self) -> int:
        """Items (creates and updates; a merged pair counts once) the service acknowledged."""
        return self._counters.sent

    @property
    def retried(self) -> int:
        """Items sent again after a failed attempt (one item retried twice counts two)."""
        return self._counters.retried

    @property
    def dropped(self) -> dict[str, int]:
        """Items given up, by reason: `queue_full`, `too_large`, `rejected`, `gave_up`, `bad_response` (a
        2xx answer that was not the feed's: the URL points at some other service)."""
        self._intake.admit_all()  # so that every call made before this one is counted
        return self._counters.dropped

    @property
    def queued(self) -> int:
        """Items waiting or in flight."""
        self._intake.admit_all()
        return self._queue.size[0]

    # The calls.

    def log(
        self,
        *,
        event_type: str = "tool_call",
        tool_name: str | None = None,
        user_source: str | None = None,
        status: str = "pending",
        data: dict[str, Any] | None = None,
        duration_ms: float | None = None,
        error_message: str | None = None,
        correlation_id: str | None = None,
        timestamp: datetime | str | None = None,
        id: Any = None,
        session_id: str | None = None,
    ) -> str:
        """Queue a new event and return its id at once (a UUIDv7 made here unless `id` is given).

        The event is stamped now; redaction and serialisation happen on the worker's thread
        (`intake.py`), so `data` is copied one level deep here. `session_id` names the MCP connection or
        conversation the event belongs to."""
        try:
            new_id = event_id(id)
        except InvalidItem as exc:
            self._drop("rejected", "activity feed: event not sent: %s", exc)
            return str(id)
        if not self.enabled:
            return new_id
        try:
            call = CreateCall(
                id=new_id,
                event_type=enum_value(event_type, EVENT_TYPES, "event_type"),
                status=enum_value(status, STATUSES, "status"),
                tool_name=tool_name,
                user_source=user_source,
                data=dict(data) if data else None,
                duration_ms=duration_ms,
                error_message=error_message,
                correlation_id=correlation_id,
                timestamp=timestamp,
                session_id=session_id,
                stamped_ns=time.time_ns() if timestamp is None else None,
            )
        except InvalidItem as exc:
            self._drop("rejected", "activity feed: event not sent: %s", exc)
            return new_id
        except Exception:  # boundary: the host's tool call must never fail because logging did
            self._drop("rejected", "activity feed: could not queue an event", exc_info=True)
            return new_id
        self._hand_off(call)
        return new_id

    def update(
        self,
        id: Any,
        *,
        status: str | None = None,
        duration_ms: float | None = None,
        error_message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Queue a change to event `id`; folded into its create when that has not been sent yet."""
        if not self.enabled:
            return
        try:
            call = UpdateCall(
                id=event_id(id),
                status=enum_value(status, STATUSES, "status") if status is not None else None,
                duration_ms=duration_ms,
                error_message=error_message,
                data=dict(data) if data else None,
            )
        except InvalidItem as exc:
            self._drop("rejected", "activity feed: update not sent: %s", exc)
            return
        except Exception:  # boundary: as in log()
            self._drop("rejected", "activity feed: could not queue an update", exc_info=True)
            return
        self._hand_off(call)

    def redact_text(self, text: str) -> str:
        """`text` with secret values replaced by this client's redactor (unchanged with `redact=False`):
        for text the caller sends outside `data`, such as an error message that quotes arguments."""
        return self._redactor.redact_text(text) if self._redactor is not None else text

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to `timeout` seconds until everything queued before this call was sent or dropped."""
        if not self.enabled:
            return True
        try:
            self._intake.admit_all()
            ticket = self._queue.last_ticket
            worker = self._worker
            if worker is not None:
                worker.wake(urgent=True)
            return self._queue.wait_resolved(ticket, timeout)
        except Exception:  # boundary
            logger.debug("activity feed: flush failed", exc_info=True)
            return False

    def close(self, timeout: float = 2.0) -> None:
        """Flush for at most `timeout` seconds, stop the worker, and count what is left as `gave_up`."""
        if self._closed:
            return
        self._closed = True
        try:
            deadline = lifecycle.now() + timeout
            worker = self._worker
            if worker is not None:
                worker.closing = True
            if self.enabled:
                self.flush(timeout)
            if worker is not None:
                worker.stop(timeout=max(0.05, deadline - lifecycle.now()))
            left = self._queue.clear() + self._intake.clear()
            if left:
                self._counters.add_dropped("gave_up", left)
                failure = worker.last_failure if worker is not None else None
                why = f" ({self._config.endpoint} failed: {failure})" if failure else ""
                logger.warning("activity feed: %d events not sent before close%s", left, why)
        except Exception:  # boundary: close() runs at interpreter exit too
            logger.debug("activity feed: close failed", exc_info=True)
        finally:
            lifecycle.unregister(self)

    def __enter__(self) -> FeedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Internals.

    # The fast path for instrumentation (mcp/recorder.py), which runs inside every MCP request: one
    # record per call, handed off at its start (and at its end, if the worker has read the start by then)
    # and never checked (its event types and statuses are valid), with the id, the timestamp and `data`
    # left to the worker.

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
    ) -> CallRecord:
        """Log a `pending` event of `event_type` (one of the client's event types), stamped now, and
        return its record for `end_call`. A tool call's `arguments` go in `data.arguments`; `details`
        add keys of their own. Both are read later, on the worker's thread: neither may change meanwhile."""
        call = CallRecord(tool_name, user_source, arguments, details, event_type, session_id, correlation_id)
        if self.enabled:
            self._hand_off(call)
        return call

    def end_call(
        self,
        call: CallRecord,
        status: Literal["success", "error"],
        duration_ms: float | None,
        error_message: str | None,
        result_preview: str | None,
        outcome: CallOutcome | None = None,
    ) -> None:
        """Finish the event of `call`: `result_preview` goes into `data.result`, or where `outcome` puts
        it with keys of its own (read on the worker's thread)."""
        if self.enabled:
            call.duration_ms = duration_ms
            call.error_message = error_message
            call.result_preview = result_preview
            call.outcome = outcome
            call.status = status  # last: see CallRecord
            if call.id is None and not call.end_admitted and not self._closed:
                # The start still waits in the intake (the worker sets `id` before it reads `status`),
                # and the end goes with it: handing the record off again would only be read and skipped.
                return
            self._hand_off(call)

    def start_tool_call(
        self,
        tool_name: str,
        *,
        user_source: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        details: CallDetails | None = None,
    ) -> CallRecord:
        """`start_call` of a `tool_call` event."""
        return self.start_call(tool_name, user_source=user_source, arguments=arguments, details=details)

    def end_tool_call(
        self,
        call: CallRecord,
        status: Literal["success", "error"],
        duration_ms: float,
        error_message: str | None,
        result_preview: str | None,
    ) -> None:
        """`end_call` without an outcome."""
        self.end_call(call, status, duration_ms, error_message, result_preview)

    def _hand_off(self, call: Call) -> None:
        if self._closed:
            self._drop("gave_up", "activity feed: the client is closed; events are not sent")
            return
        try:
            calls = self._intake_calls
            if len(calls) >= self.max_queue_events:
                # The worker has fallen this far behind: a host whose event loop never waits starves it of
                # the interpreter lock (README, "Saturated hosts"). Refused here, at no cost to the host:
                # doing the worker's job on the host's thread, or waiting on its lock, stalled a tool call
                # for up to 0.9 s.
                self._refuse(call)
                return
            calls.append(call)
            waiting = len(calls)
            worker = self._worker
            # Whether the worker still runs is checked once per batch rather than on every call.
            if worker is None or (waiting == 1 and not worker.alive):
                worker = self._start_worker()
            if worker is not None and (worker.idle or waiting == self._config.batch_size):
                worker.wake()
        except Exception:  # boundary: as in log()
            self._drop("rejected", "activity feed: could not queue an event", exc_info=True)

    def _refuse(self, call: Call) -> None:
        """Count `call` as dropped for a full intake, once per event."""
        if isinstance(call, CallRecord):
            if call.end_admitted:
                return  # refused at its start (and counted then), or its end is already queued
            if call.id is None and call.status is not None:
                # The end of a call whose start still waits in the intake (the worker sets `id` before it
                # reads `status`): the end goes with the start, and nothing is lost.
                return
            # Nothing more of this call is queued. (Should the worker read the end in the instant after
            # setting the id, the call still arrives whole and this drop is counted one too many.)
            call.end_admitted = True
        self._drop("queue_full", "activity feed: queue full (%d events); dropping", self.max_queue_events)

    def _start_worker(self) -> Worker | None:
        with self._start_lock:
            if self._worker is None or not self._worker.alive:
                worker = Worker(self._queue, self._intake, self._config, self._counters, self._warnings)
                try:
                    worker.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    return None
                self._worker = worker
            return self._worker

    def _drop(self, reason: DropReason, message: str, *args: object, exc_info: bool = False) -> None:
        self._admission.drop(reason, message, *args, exc_info=exc_info)

    def reset_after_fork(self) -> None:
        """Start afresh in a forked child: a new queue, zeroed counters, and a new worker on the next
        call (the parent's is left alone: its thread does not exist here)."""
        lifecycle.abandon(self._worker)
        self._fresh_state()

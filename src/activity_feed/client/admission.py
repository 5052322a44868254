"""Admission: what the worker does with each call the host made, in call order: redact its `data`
(remembering what was redacted, so that an update's list still names its create's), serialise it, and
queue it, counting and warning about whatever has to be dropped.

It runs on the worker's thread (or on a reader's that needs every call counted, such as `dropped`),
never on the host's: `FeedClient.log()` and `update()` only record their arguments (intake.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from activity_feed.client.counters import Counters, DropReason, Warnings
from activity_feed.client.intake import Call, CallRecord, CreateCall, UpdateCall, join_verbatim
from activity_feed.client.payload import InvalidItem, create_fields, dumps, new_event_id, update_fields
from activity_feed.client.pending import PendingQueue, Put
from activity_feed.redaction import Redactor

_REMEMBERED_REDACTIONS = 4096


class Admission:
    """Redacts, serialises and queues calls into `queue`; counts drops in `counters`."""

    def __init__(
        self, queue: PendingQueue, counters: Counters, warnings: Warnings, redactor: Redactor | None
    ) -> None:
        self._queue = queue
        self._counters = counters
        self._warnings = warnings
        self._redactor = redactor
        self._redactions_lock = threading.Lock()
        # Paths redacted from recent creates, so that an update whose own `data.redacted` replaces the
        # stored list (the server merges `data` key by key) still lists both.
        self._redactions: OrderedDict[str, list[str]] = OrderedDict()
        # Creates serialised and not yet queued: they go into the queue together, under one lock.
        self._creates: list[tuple[str, bytes]] = []

    def admit_all(self, calls: list[Call]) -> None:
        """Redact, serialise and queue `calls` in call order (on the worker's thread, or a reader's; one
        thread at a time, as the intake sees to)."""
        try:
            for call in calls:
                self._admit(call)
        finally:
            self._queue_creates()

    def _admit(self, call: Call) -> None:
        """Redact and serialise one call; its create waits for `_queue_creates` (see admit_all)."""
        try:
            if type(call) is CallRecord:  # the instrumentation's, the busiest
                self._admit_record(call)
            elif type(call) is CreateCall:
                fields = create_fields(
                    event_id=call.id,
                    event_type=call.event_type,
                    tool_name=call.tool_name,
                    user_source=call.user_source,
                    status=call.status,
                    data=self._created_data(call.id, call.data),
                    duration_ms=call.duration_ms,
                    error_message=call.error_message,
                    correlation_id=call.correlation_id,
                    timestamp=call.timestamp,
                    session_id=call.session_id,
                    stamped_ns=call.stamped_ns,
                )
                self._enqueue(call.id, dumps(fields), create=True)
            elif type(call) is UpdateCall:
                self._admit_update(call.id, call.status, call.duration_ms, call.error_message, call.data)
            else:
                assert isinstance(call, CallRecord)  # a subclass
                self._admit_record(call)
        except InvalidItem as exc:
            self.drop("rejected", "activity feed: event not sent: %s", exc)
        except Exception:  # boundary: one call that cannot be serialised must not stop the others
            self.drop("rejected", "activity feed: could not queue an event", exc_info=True)

    def _admit_record(self, call: CallRecord) -> None:
        event_id = call.id
        first = event_id is None
        if event_id is None:
            # `id` before `status` is read: a host thread that finds no id after writing the end knows
            # the start has not been read yet, and that the end will go with it (see _refuse).
            call.id = event_id = new_event_id(call.started_ns // 1_000_000)
        status = call.status  # before the end's other fields, which are written before it
        if first:  # the start, with the end when the call has already ended
            ended = status is not None
            # A finished call's data is redacted at once, into a copy: its arguments need no copy of
            # their own. One in flight keeps its data until the end, so it takes one.
            data = call.start_data(copy=not ended or self._redactor is None, serialised=True)
            verbatim = call.verbatim
            if ended:
                call.verbatim = None
                outcome = call.outcome
                if outcome is not None:
                    data.update(call.end_data(data))
                elif call.result_preview is not None:  # what end_data() gives without an outcome
                    data["result"] = call.result_preview
            else:
                call.open_data = data  # for an outcome that extends one of its mappings
            call.end_admitted = ended
            fields = create_fields(
                event_id=event_id,
                event_type=call.event_type,
                tool_name=call.tool_name,
                user_source=call.user_source,
                status=status if ended else "pending",
                data=join_verbatim(self._created_data(event_id, data), verbatim),
                duration_ms=call.duration_ms if ended else None,
                error_message=call.error_message if ended else None,
                correlation_id=call.correlation_id,
                timestamp=None,
                session_id=call.session_id,
                stamped_ns=call.started_ns,
            )
            self._creates.append((event_id, dumps(fields)))  # _enqueue's, inline
        elif status is not None and not call.end_admitted:  # the end of a call admitted in flight
            call.end_admitted = True
            end_data = call.end_data(call.open_data)
            verbatim = call.verbatim
            call.open_data = call.verbatim = None
            self._admit_update(
                event_id, status, call.duration_ms, call.error_message, end_data or None, verbatim=verbatim
            )

    def _created_data(self, target: str, data: dict[str, Any] | None) -> dict[str, Any]:
        if not data:
            return {}
        redactor = self._redactor
        if redactor is None:
            return dict(data)
        clean, paths = redactor.redact(data)
        if paths:
            clean["redacted"] = paths
            self._remember(target, paths)
        return clean

    def _admit_update(
        self,
        target: str,
        status: str | None,
        duration_ms: object,
        error_message: object,
        data: dict[str, Any] | None,
        *,
        verbatim: Mapping[str, Any] | None = None,
    ) -> None:
        clean, paths = self._redacted(data)
        if paths:
            clean["redacted"] = self._remember(target, paths)
        if verbatim:
            # The server replaces `data`'s top-level keys: a key the update sends needs all of it.
            join_verbatim(clean, verbatim, only_present=True)
        fields = update_fields(
            event_id=target,
            status=status,
            duration_ms=duration_ms,
            error_message=error_message,
            data=clean or None,
        )
        if len(fields) > 1:
            self._enqueue(target, dumps(fields), create=False)

    def _redacted(self, data: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
        if not data:
            return {}, []
        if self._redactor is None:
            return dict(data), []
        clean, paths = self._redactor.redact(data)
        if paths:
            clean["redacted"] = paths
        return clean, paths

    def _remember(self, target: str, paths: list[str]) -> list[str]:
        with self._redactions_lock:
            known = self._redactions.pop(target, [])
            joined = [*known, *(p for p in paths if p not in known)]
            self._redactions[target] = joined
            if len(self._redactions) > _REMEMBERED_REDACTIONS:
                self._redactions.popitem(last=False)
            return joined

    def _enqueue(self, target: str, body: bytes, *, create: bool) -> None:
        if create:
            self._creates.append((target, body))
            return
        self._queue_creates()  # first: this update may fold into one of them
        self._count_refused(self._queue.put_update(target, body), body)

    def _queue_creates(self) -> None:
        creates = self._creates
        if not creates:
            return
        self._creates = []
        try:
            outcomes = self._queue.put_creates(creates)
        except Exception:  # boundary: as in _admit()
            for _ in creates:
                self.drop("rejected", "activity feed: could not queue an event", exc_info=True)
            return
        for outcome, (_, body) in zip(outcomes, creates, strict=True):
            if outcome is not Put.QUEUED:
                self._count_refused(outcome, body)

    def _count_refused(self, outcome: Put, body: bytes) -> None:
        if outcome is Put.QUEUE_FULL:
            self.drop("queue_full", "activity feed: queue full (%d events); dropping", self._queue.max_items)
        elif outcome is Put.TOO_LARGE:
            self.drop("too_large", "activity feed: an event of %d bytes is too large to send", len(body))

    def drop(self, reason: DropReason, message: str, *args: object, exc_info: bool = False) -> None:
        """Count one item dropped for `reason`, and warn (at most once in a while per reason)."""
        self._counters.add_dropped(reason)
        self._warnings.warn(reason, message, *args, exc_info=exc_info)

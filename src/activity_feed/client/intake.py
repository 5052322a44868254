"""The hand-off between the caller's thread and the worker's: `log()` and `update()` only record their
arguments here (about a microsecond); the worker admits them into the send queue (`pending.py`),
redacting and serialising on its own thread, every `flush_interval` or sooner when a batch is full.

Why: an MCP tool call takes a few hundred microseconds, and redacting and serialising an event costs a
good part of that. Done on the caller's thread it slows every call; done on the worker's, in one burst
per batch, it leaves almost every call untouched.

A call's arguments are read when admitted, a few milliseconds later, so `data` is copied one level deep
at the call: replacing a key afterwards changes nothing, though mutating a nested object in place does
(as with the arguments of a `logging` call). Anything that reads the queue (`flush()`, `queued`,
`dropped`) admits what is waiting first, so the counters always cover every call made before them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(slots=True)
class CreateCall:
    id: str
    event_type: str
    status: str
    tool_name: object
    user_source: object
    data: dict[str, Any] | None
    duration_ms: object
    error_message: object
    correlation_id: object
    timestamp: datetime | str | None


@dataclass(slots=True)
class UpdateCall:
    id: str
    status: str | None
    duration_ms: object
    error_message: object
    data: dict[str, Any] | None


class ToolCallDetails(Protocol):
    """More keys for a tool call's `data` besides its arguments, read once on the worker's thread (so
    the caller builds nothing for them inside the call)."""

    def extra_data(self) -> Mapping[str, Any] | None: ...


class ToolCallRecord:
    """A tool call's start and end in one object (`FeedClient.start_tool_call` and `end_tool_call`),
    handed off at the start and again at the end.

    One object per call, and nothing built on the tool call's path that could wait for the worker:
    whatever a call leaves alive until the worker reads it costs the host more than the work itself (the
    host's next allocations land in colder memory). `data` (the arguments, the `details` and the result
    preview), the id and the timestamp are made on the worker's thread, when it admits the record.

    The end's fields are written before `status`, and `status` is read first: the worker either sees a
    finished call, whose end then goes into the create, or a call in flight, which is created `pending`
    and updated when the end is handed off.
    """

    __slots__ = (
        "arguments",
        "details",
        "duration_ms",
        "end_admitted",
        "error_message",
        "id",
        "result_preview",
        "started_ns",
        "status",
        "tool_name",
        "user_source",
    )

    def __init__(
        self,
        tool_name: str,
        user_source: str | None,
        arguments: Mapping[str, Any] | None,
        details: ToolCallDetails | None = None,
    ) -> None:
        self.tool_name = tool_name
        self.user_source = user_source
        self.arguments = arguments
        self.details = details
        self.started_ns = time.time_ns()
        self.id: str | None = None  # set when the worker admits the start
        self.status: str | None = None  # set last, when the call ends
        self.duration_ms: float | None = None
        self.error_message: str | None = None
        self.result_preview: str | None = None
        self.end_admitted = False

    def start_data(self) -> dict[str, Any]:
        """The create's `data`: a copy of the arguments and the details' keys (the worker adds the
        result's preview when the call has already ended)."""
        data: dict[str, Any] = {}
        if self.arguments is not None:
            data["arguments"] = dict(self.arguments)
        extra = self.details.extra_data() if self.details is not None else None
        if extra:
            data.update(extra)
        self.arguments = None  # the worker's copy is the event's now; the host's dict can go
        self.details = None
        return data


Call = CreateCall | UpdateCall | ToolCallRecord


def fold_updates(calls: list[Call]) -> list[Call]:
    """`calls` with each update folded into its event's create when both are among them, as the server
    would apply it (fields replaced, `data` merged key by key): an event logged and finished moments
    apart is then redacted and serialised once. (A tool call's record folds its own end.)"""
    creates: dict[str, CreateCall] = {}
    kept: list[Call] = []
    for call in calls:
        if type(call) is CreateCall:
            creates.setdefault(call.id, call)  # a second create of an id changes nothing on the server
            kept.append(call)
            continue
        if type(call) is not UpdateCall:
            kept.append(call)
            continue
        create = creates.get(call.id)
        if create is None:
            kept.append(call)
            continue
        if call.status is not None:
            create.status = call.status
        if call.duration_ms is not None:
            create.duration_ms = call.duration_ms
        if call.error_message is not None:
            create.error_message = call.error_message
        if call.data:
            data = create.data
            create.data = {**data, **call.data} if data else call.data
    return kept


class Intake:
    """Calls in order, from any thread; `admit_all` hands them to `admit` one at a time, in call order,
    from whichever thread gets there first (the worker, or a reader such as `flush()`)."""

    def __init__(self, admit: Callable[[Call], None]) -> None:
        self.calls: deque[Call] = deque()  # append and popleft are atomic: callers take no lock
        self._admit = admit
        self._admitting = threading.Lock()

    def __len__(self) -> int:
        return len(self.calls)

    def admit_all(self) -> None:
        # The lock is taken even when nothing waits: another thread may have taken the calls and still be
        # admitting them, and a reader (flush(), the counters) must see those queued before it goes on.
        with self._admitting:
            waiting = self.calls
            calls = [waiting.popleft() for _ in range(len(waiting))]
            for call in fold_updates(calls):
                self._admit(call)

    def clear(self) -> int:
        with self._admitting:
            count = len(self.calls)
            self.calls.clear()
            return count

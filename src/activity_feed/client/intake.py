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

from activity_feed.client.payload import Serialised


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
    timestamp: datetime | str | None  # the caller's; None: `stamped_ns`
    session_id: object = None
    stamped_ns: int | None = None  # time.time_ns() when log() was called


@dataclass(slots=True)
class UpdateCall:
    id: str
    status: str | None
    duration_ms: object
    error_message: object
    data: dict[str, Any] | None


class CallDetails(Protocol):
    """More keys for a call's `data`, read once on the worker's thread (so the caller builds nothing for
    them inside the call). `arguments` is the worker's copy of the call's arguments (None without), for
    details that place them somewhere of their own too.

    Details may also have `verbatim_data()`: identity fields (names, versions, ids of the protocol) that
    are never redacted, as an event's `tool_name` and `user_source` are not. They join `data` after
    redaction (a mapping extends the same key's mapping), which spares the redactor a walk over them.
    And `verbatim_json()`: the same keys, each value already serialised (`Serialised`), which spares
    the worker building them at all when they are the same from one call to the next."""

    def extra_data(self, arguments: Mapping[str, Any] | None) -> Mapping[str, Any] | None: ...


class CallOutcome(Protocol):
    """A call's end's keys for `data`, read on the worker's thread: given the result's preview, they
    replace the plain `result` key. A key whose value is a mapping extends the start's mapping of that
    key rather than replacing it (the server replaces `data`'s top-level keys, so the worker sends the
    start's keys along)."""

    def outcome_data(self, result_preview: str | None) -> Mapping[str, Any] | None: ...


class CallRecord:
    """A call's start and end in one object (`FeedClient.start_call` and `end_call`), handed off at the
    start, and again at the end if the worker has read the start by then (else the end goes with it): a
    tool call, or any other request the instrumentation records.

    One object per call, and nothing built on the call's path that could wait for the worker: whatever a
    call leaves alive until the worker reads it costs the host more than the work itself (the host's next
    allocations land in colder memory). `data` (the arguments, the `details`, the result preview and the
    `outcome`), the id and the timestamp are made on the worker's thread, when it admits the record.

    The end's fields are written before `status`, and `status` is read first: the worker either sees a
    finished call, whose end then goes into the create, or a call in flight, which is created `pending`
    and updated when the end is handed off.
    """

    __slots__ = (
        "arguments",
        "correlation_id",
        "details",
        "duration_ms",
        "end_admitted",
        "error_message",
        "event_type",
        "id",
        "open_data",
        "outcome",
        "result_preview",
        "session_id",
        "started_ns",
        "status",
        "tool_name",
        "user_source",
        "verbatim",
    )

    def __init__(
        self,
        tool_name: str,
        user_source: str | None,
        arguments: Mapping[str, Any] | None,
        details: CallDetails | None = None,
        event_type: str = "tool_call",
        session_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.tool_name = tool_name
        self.user_source = user_source
        self.arguments = arguments
        self.details = details
        self.event_type = event_type
        self.session_id = session_id
        self.correlation_id = correlation_id
        self.started_ns = time.time_ns()
        self.id: str | None = None  # set when the worker admits the start
        self.status: str | None = None  # set last, when the call ends
        self.duration_ms: float | None = None
        self.error_message: str | None = None
        self.result_preview: str | None = None
        self.outcome: CallOutcome | None = None
        # The start's `data`, kept by the worker from the pending create to the update, for an outcome
        # that extends one of its mappings.
        self.open_data: dict[str, Any] | None = None
        self.verbatim: Mapping[str, Any] | None = None  # the details' verbatim keys, once read
        self.end_admitted = False

    def start_data(self, *, copy: bool = True, serialised: bool = False) -> dict[str, Any]:
        """The create's `data`: the arguments (in `arguments` for a tool call; a copy unless `copy` is
        False, for a caller that copies them itself) and the details' keys (the worker adds the end's
        when the call has already ended). The details' verbatim keys go to `verbatim`; `serialised`:
        as `Serialised` JSON where the details can give it (`verbatim_json()`), for the client's own
        events (`dumps` writes them as they are, `join_verbatim` reads them back where it must)."""
        data: dict[str, Any] = {}
        arguments = self.arguments
        if copy and arguments is not None:
            arguments = dict(arguments)
        if arguments is not None and self.event_type == "tool_call":
            data["arguments"] = arguments
        details = self.details
        if details is not None:
            extra = details.extra_data(arguments)
            if extra:
                data.update(extra)
            verbatim = (serialised and getattr(details, "verbatim_json", None)) or getattr(
                details, "verbatim_data", None
            )
            self.verbatim = verbatim() if verbatim is not None else None
        self.arguments = None  # the worker's copy is the event's now; the host's dict can go
        self.details = None
        return data

    def end_data(self, start: Mapping[str, Any] | None) -> dict[str, Any]:
        """The end's `data` keys (see `end_data`)."""
        return end_data(self.result_preview, self.outcome, start)


def end_data(
    result_preview: str | None, outcome: CallOutcome | None, start: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A call's end's `data` keys: `result` (the preview), or the outcome's, each mapping of the outcome
    joined to the same key's mapping in `start`, the data the call was created with."""
    if outcome is None:
        return {"result": result_preview} if result_preview is not None else {}
    extra = outcome.outcome_data(result_preview)
    data: dict[str, Any] = {}
    if extra:
        for key, value in extra.items():
            before = start.get(key) if start is not None else None
            if isinstance(value, Mapping) and isinstance(before, Mapping):
                value = {**before, **value}
            data[key] = value
    return data


def join_verbatim(
    data: dict[str, Any], verbatim: Mapping[str, Any] | None, *, only_present: bool = False
) -> dict[str, Any]:
    """`data` with the verbatim keys joined (a mapping extends the same key's mapping, its own keys
    first); `only_present`: only to keys `data` has (an update leaves the others as they are)."""
    if not verbatim:
        return data
    for key, value in verbatim.items():
        present = data.get(key)
        if present is None:
            if not only_present:
                data[key] = value
        elif isinstance(present, Mapping):
            if type(value) is Serialised:
                value = value.value()
            if isinstance(value, Mapping):
                data[key] = {**value, **present}
    return data


# The earlier names, for code written against them.
ToolCallDetails = CallDetails
ToolCallRecord = CallRecord


Call = CreateCall | UpdateCall | CallRecord


def fold_updates(calls: list[Call]) -> list[Call]:
    """`calls` with each update folded into its event's create when both are among them, as the server
    would apply it (fields replaced, `data` merged key by key): an event logged and finished moments
    apart is then redacted and serialised once. (A call's record folds its own end.)"""
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
    """Calls in order, from any thread; `admit_all` hands those waiting to `admit`, in call order, from
    whichever thread gets there first (the worker, or a reader such as `flush()`)."""

    def __init__(self, admit: Callable[[list[Call]], None]) -> None:
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
            if calls:
                self._admit(fold_updates(calls))

    def clear(self) -> int:
        with self._admitting:
            count = len(self.calls)
            self.calls.clear()
            return count

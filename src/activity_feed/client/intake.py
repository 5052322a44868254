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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class CreateCall:
    # None for a tool call's start (`FeedClient.tool_call_started`): the id and the timestamp are made
    # from `started_ns` when the call is admitted, and the call itself is the handle its end refers to.
    id: str | None
    event_type: str
    status: str
    tool_name: object
    user_source: object
    data: dict[str, Any] | None
    duration_ms: object
    error_message: object
    correlation_id: object
    timestamp: datetime | str | None
    started_ns: int = 0
    # A tool call's start keeps its arguments and extra fields as given: `data` is built from them
    # when the call is admitted (`data_of`), off the tool call's path.
    arguments: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None

    def data_of(self) -> dict[str, Any] | None:
        if self.arguments is None and self.extra is None:
            return self.data
        data = {**(self.data or {})}
        if self.arguments is not None:
            data["arguments"] = dict(self.arguments)
        if self.extra:
            data.update(self.extra)
        self.data, self.arguments, self.extra = data, None, None
        return data


@dataclass(slots=True)
class UpdateCall:
    id: str | None  # None: the event of `create`, whose id is known once it is admitted
    status: str | None
    duration_ms: object
    error_message: object
    data: dict[str, Any] | None
    create: CreateCall | None = None


Call = CreateCall | UpdateCall


def fold_updates(calls: list[Call]) -> list[Call]:
    """`calls` with each update folded into its event's create when both are among them, as the server
    would apply it (fields replaced, `data` merged key by key): a tool call's start and end usually
    arrive together, and are then redacted and serialised once."""
    creates: dict[str, CreateCall] = {}
    kept: list[Call] = []
    for call in calls:
        if type(call) is CreateCall:
            if call.id is not None:  # a second create of an id changes nothing on the server
                creates.setdefault(call.id, call)
            kept.append(call)
            continue
        assert type(call) is UpdateCall
        if call.create is not None:
            # A handle not admitted yet (no id) is among these calls: the end of a tool call whose start
            # the worker has not seen either.
            create = call.create if call.create.id is None else None
        else:
            create = creates.get(call.id) if call.id is not None else None
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
            data = create.data_of()
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
        if not self.calls:
            return
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

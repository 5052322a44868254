"""The hand-off between the caller's thread and the worker's: `log()` and `update()` only record their
arguments here (about a microsecond); the worker admits them into the send queue (`pending.py`),
redacting and serialising on its own thread, every `flush_interval` or sooner when a batch is full.

Why: an MCP tool call takes a few hundred microseconds, and redacting, previewing and serialising an
event costs a good part of that. Done on the caller's thread it slows every call; done on the worker's,
in one burst per batch, it leaves almost every call untouched.

A call's arguments are read when admitted, a few milliseconds later, so `data` is copied one level deep
at the call: replacing a key afterwards changes nothing, though mutating a nested object in place does
(as with the arguments of a `logging` call). Anything that reads the queue (`flush()`, `queued`,
`dropped`) admits what is waiting first, so the counters always cover every call made before them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Deferred:
    """A `data` value computed on the worker's thread when the event is admitted, before redaction:
    `Deferred(preview, result)` puts `preview(result)` there without the caller paying for it."""

    __slots__ = ("_args", "_function")

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self._function = function
        self._args = args

    def resolve(self) -> Any:
        return self._function(*self._args)


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
    timestamp: datetime | str


@dataclass(slots=True)
class UpdateCall:
    id: str
    status: str | None
    duration_ms: object
    error_message: object
    data: dict[str, Any] | None


Call = CreateCall | UpdateCall


def resolve_deferred(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its top-level `Deferred` values computed (the same dict when there are none)."""
    if not any(type(value) is Deferred for value in data.values()):
        return data
    return {key: value.resolve() if type(value) is Deferred else value for key, value in data.items()}


def fold_updates(calls: list[Call]) -> list[Call]:
    """`calls` with each update folded into its event's create when both are among them, as the server
    would apply it (fields replaced, `data` merged key by key): a tool call's start and end usually
    arrive together, and are then redacted and serialised once."""
    creates: dict[str, CreateCall] = {}
    kept: list[Call] = []
    for call in calls:
        if type(call) is CreateCall:
            creates.setdefault(call.id, call)  # a second create of an id changes nothing on the server
            kept.append(call)
            continue
        assert type(call) is UpdateCall
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
            create.data = {**create.data, **call.data} if create.data else call.data
    return kept


class Intake:
    """Calls in order, from any thread; `admit_all` hands them to `admit` one at a time, in call order,
    from whichever thread gets there first (the worker, or a reader such as `flush()`)."""

    def __init__(self, admit: Callable[[Call], None]) -> None:
        self._calls: deque[Call] = deque()  # append and popleft are atomic: callers take no lock
        self._admit = admit
        self._admitting = threading.Lock()

    def add(self, call: Call) -> int:
        """Record `call`; return how many calls now wait."""
        self._calls.append(call)
        return len(self._calls)

    def __len__(self) -> int:
        return len(self._calls)

    def admit_all(self) -> None:
        if not self._calls:
            return
        with self._admitting:
            waiting = self._calls
            calls = [waiting.popleft() for _ in range(len(waiting))]
            for call in fold_updates(calls):
                self._admit(call)

    def clear(self) -> int:
        with self._admitting:
            count = len(self._calls)
            self._calls.clear()
            return count

"""A change as it travels the bus and the stream: the exact message text, encoded once for every client."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from activity_feed.errors import InvalidCursorError
from activity_feed.schemas import ENUM_TEXT, Change, Fields, StreamMessage

log = logging.getLogger(__name__)


def _uuid_subclass_as_text(value: object) -> str:
    # asyncpg returns its own UUID subclass, which orjson (exact types only) does not know.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(change: Change) -> str:
    # A model's `__dict__` holds its fields as they are (UUID, datetime, enums), which orjson encodes as
    # pydantic would, with OPT_UTC_Z writing UTC as "Z" like the REST answers do; iterating the model
    # instead costs several times more, once per change.
    message = {
        "type": ENUM_TEXT[change.type],
        "event": change.event.__dict__,
        "cursor": encode_cursor(change.seq),
    }
    return orjson.dumps(message, option=orjson.OPT_UTC_Z, default=_uuid_subclass_as_text).decode()


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """The change number inside a cursor; `InvalidCursorError` for anything this service never sent."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19:
        raise InvalidCursorError(f"not a cursor: {cursor[:40]!r}")
    return int(cursor)


class Notice:
    """One stream message: `text` is what clients receive; `seq` and `type` are what dedup and filters
    read, and `event` (parsed from `text` only when a filter needs it) the event's JSON fields.

    A notice made from a committed change encodes its text on first use: with no client listening on
    the in-process bus, nothing ever asks for it, and a batch of 1,000 events is not encoded for nobody.
    """

    __slots__ = ("_change", "_event", "_text", "seq", "type")

    def __init__(
        self,
        *,
        seq: int,
        type: str,
        text: str | None = None,
        event: dict[str, Any] | None = None,
        change: Change | None = None,
    ) -> None:
        if text is None and change is None:
            raise ValueError("a notice needs its text or its change")
        self.seq = seq
        self.type = type
        self._text = text
        self._event = event
        self._change = change

    @property
    def text(self) -> str:
        text = self._text
        if text is None:
            assert self._change is not None
            text = self._text = _encode(self._change)
        return text

    @property
    def event(self) -> dict[str, Any]:
        if self._event is None:
            self._event = orjson.loads(self.text)["event"]
        return self._event

    def field(self, name: str) -> Any:
        """One of the event's fields as the change left it, without encoding the notice: the model's own
        value (an enum, a UUID, a datetime) for a change made here, the JSON value for one that came over
        the bus. For readers of a few fields of every change (hub observers), which encoding would cost
        more than all they do."""
        change = self._change
        if change is not None:
            return change.field(name)
        return self.event[name]

    def fields(self, fields: Fields) -> tuple[Any, ...]:
        """Several fields at once, in their order, as `field` reads one."""
        change = self._change
        if change is not None:
            return change.fields(fields)
        values: tuple[Any, ...] = fields.of_json(self.event)
        return values

    @classmethod
    def from_change(cls, change: Change) -> Notice:
        return cls(seq=change.seq, type=ENUM_TEXT[change.type], change=change)

    @classmethod
    def from_payload(cls, payload: bytes) -> Notice:
        message = orjson.loads(payload)
        return cls(
            seq=decode_cursor(message["cursor"]),
            type=message["type"],
            text=payload.decode(),
            event=message["event"],
        )


def encode_message(notices: Sequence[Notice]) -> bytes:
    """One bus message for the notices of one transaction: a stream message per line (JSON text holds no
    raw newline), so that a group commit of many events costs one trip through the bus."""
    return "\n".join(notice.text for notice in notices).encode()


def decode_message(payload: bytes) -> list[Notice]:
    """The notices of a bus message; a malformed line is skipped with a warning, never raised: one bad
    message must not stop the stream for every client."""
    notices = []
    for line in payload.split(b"\n"):
        try:
            notices.append(Notice.from_payload(line))
        except Exception:  # boundary: whatever else shares the channel, the listener goes on
            log.warning("ignoring a malformed bus message")
    return notices


RESYNC = StreamMessage(type="resync").model_dump_json(exclude_none=True)

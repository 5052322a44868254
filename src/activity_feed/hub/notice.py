"""A change as it travels the bus and the stream: the exact message text, encoded once for every client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from activity_feed.errors import InvalidCursorError
from activity_feed.schemas import Change, StreamMessage


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """The change number inside a cursor; `InvalidCursorError` for anything this service never sent."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19:
        raise InvalidCursorError(f"not a cursor: {cursor[:40]!r}")
    return int(cursor)


@dataclass(frozen=True, slots=True)
class Notice:
    """One stream message: `text` is what clients receive; the rest is what filters and dedup read."""

    seq: int
    type: str
    text: str
    event: dict[str, Any]

    @classmethod
    def from_change(cls, change: Change) -> Notice:
        message = StreamMessage.model_construct(
            type=change.type, event=change.event, cursor=encode_cursor(change.seq)
        )
        text = message.model_dump_json()
        return cls(seq=change.seq, type=change.type.value, text=text, event=orjson.loads(text)["event"])

    @classmethod
    def from_payload(cls, payload: bytes) -> Notice:
        message = orjson.loads(payload)
        return cls(
            seq=decode_cursor(message["cursor"]),
            type=message["type"],
            text=payload.decode(),
            event=message["event"],
        )

    @property
    def payload(self) -> bytes:
        return self.text.encode()


RESYNC = StreamMessage(type="resync").model_dump_json(exclude_none=True)

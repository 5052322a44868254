"""Turning `log()`/`update()` arguments into the JSON the batch endpoint takes, on the worker's thread.

Each item is serialised once, when it is queued: its size is what the queue's byte bound counts, and a
batch body is the items' bytes joined, so the worker never serialises again. Arguments are sanitised
rather than refused where the fix is obvious (strings cut to the server's limits, NUL characters
removed, a negative or non-finite duration left out): one bad field must not lose the event, and a
batch the server refused with 422 would lose its neighbours too.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from activity_feed.schemas import MAX_CORRELATION_ID, MAX_ERROR_MESSAGE, MAX_TEXT, EventStatus, EventType

MAX_REQUEST_BYTES = 1024 * 1024
MAX_SESSION_ID = MAX_TEXT
ENVELOPE_BYTES = len(b'{"events":[],"updates":[]}')

EVENT_TYPES = frozenset(t.value for t in EventType)
STATUSES = frozenset(s.value for s in EventStatus)
_NUL_ESCAPE = b"\\u0000"
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class InvalidItem(ValueError):
    """An argument that cannot be sanitised (an unknown event type, an id that is not a UUID...)."""


class Serialised:
    """A value already serialised: `dumps` writes its JSON as it is."""

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json

    def value(self) -> Any:
        return orjson.loads(self.json)


def dumps(value: Mapping[str, Any]) -> bytes:
    """Compact JSON; values JSON cannot hold (dates, UUIDs, sets, objects) are sent as text."""
    try:
        # Keys are text in almost every event (redaction makes them so): without OPT_NON_STR_KEYS,
        # which doubles orjson's time, first; the same bytes whenever it succeeds.
        body = orjson.dumps(value, default=_orjson_default)
    except TypeError:
        try:
            body = orjson.dumps(value, default=_orjson_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # an int beyond 64 bits, say: the standard library copes, more slowly
            body = json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False).encode()
    if body.find(_NUL_ESCAPE) != -1:
        # Rare, so checked on the bytes: PostgreSQL cannot store NUL, even inside JSON.
        body = dumps(_without_nul(orjson.loads(body)))
    return body


def _orjson_default(value: Any) -> Any:
    if type(value) is Serialised:
        return orjson.Fragment(value.json)
    return _as_text(value)


def _json_default(value: Any) -> Any:
    if type(value) is Serialised:
        return value.value()
    return _as_text(value)


def _as_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


# The last millisecond an id was made for, and the text of an id's first 15 characters for it (the
# time and the version): one tuple, so that a thread never reads one without the other.
_id_millisecond: tuple[int, str] = (-1, "")


def new_event_id(unix_ms: int | None = None) -> str:
    """`str(activity_feed.ids.uuid7())` (for the moment `unix_ms`, default now), formatted directly:
    `uuid.UUID` costs more than the rest."""
    global _id_millisecond
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    last, head = _id_millisecond
    if unix_ms != last:
        text = f"{unix_ms & 0xFFFF_FFFF_FFFF:012x}"
        head = f"{text[:8]}-{text[8:]}-7"  # version 7
        _id_millisecond = (unix_ms, head)
    # The other 19 digits: 12 random bits, the variant (2 bits, RFC 9562), 62 random bits.
    text = f"{random.getrandbits(76) & ~(0x3 << 62) | (0x2 << 62):019x}"
    return f"{head}{text[:3]}-{text[3:7]}-{text[7:]}"


def event_id(value: object | None) -> str:
    """The id to use: a new UUIDv7 when `value` is None, else `value` as a canonical UUID string."""
    if value is None:
        return new_event_id()
    if type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None:
        return value  # what log() returned: already what str(uuid.UUID(value)) would give
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise InvalidItem(f"id {value!r} is not a UUID") from exc


def _text(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:limit]


def enum_value(value: object, allowed: frozenset[str], name: str) -> str:
    if type(value) is str and value in allowed:
        return value
    text = str(getattr(value, "value", value))
    if text not in allowed:
        raise InvalidItem(f"{name} {text!r} is not one of {', '.join(sorted(allowed))}")
    return text


def _duration(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 <= number <= 1e12 else None


# The microsecond a second starts at, for the last second an event was stamped in, and that second's
# text: one tuple, so that a thread never reads one without the other.
_stamped_second: tuple[int, str] = (-1_000_000, "")
_THREE_DIGITS = [f"{n:03d}" for n in range(1000)]


def utc_text(unix_ns: int) -> str:
    """`datetime.fromtimestamp(unix_ns / 1e9, UTC).isoformat()` (to the nearest microsecond), with the
    date and time of day formatted once a second: every event is stamped this way."""
    global _stamped_second
    micros = (unix_ns + 500) // 1000
    start, prefix = _stamped_second
    fraction = micros - start
    if not 0 <= fraction < 1_000_000:
        second = micros // 1_000_000
        prefix = datetime.fromtimestamp(second, UTC).isoformat()[:-6]  # without "+00:00"
        start = second * 1_000_000
        _stamped_second = (start, prefix)
        fraction = micros - start
    if not fraction:
        return prefix + "+00:00"  # as isoformat() has it: no fraction at all
    return f"{prefix}.{_THREE_DIGITS[fraction // 1000]}{_THREE_DIGITS[fraction % 1000]}+00:00"


def _timestamp(value: datetime | str | None) -> str:
    if value is None:
        return utc_text(time.time_ns())
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidItem(f"timestamp {value!r} is not ISO 8601") from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC).isoformat()
    return value.astimezone(UTC).isoformat()


def create_fields(
    *,
    event_id: str,
    event_type: object,
    tool_name: object,
    user_source: object,
    status: object,
    data: dict[str, Any],
    duration_ms: object,
    error_message: object,
    correlation_id: object,
    timestamp: datetime | str | None,
    session_id: object = None,
    stamped_ns: int | None = None,
) -> dict[str, Any]:
    """The create's JSON object. Without `timestamp` the event is stamped at `stamped_ns` (nanoseconds
    since the epoch: when the client was called), else now, not when it reaches the server."""
    # Each field's common case is checked inline: this runs for every event.
    fields: dict[str, Any] = {
        "id": event_id,
        "timestamp": utc_text(stamped_ns)
        if timestamp is None and stamped_ns is not None
        else _timestamp(timestamp),
        "event_type": event_type
        if type(event_type) is str and event_type in EVENT_TYPES
        else enum_value(event_type, EVENT_TYPES, "event_type"),
        "status": status
        if type(status) is str and status in STATUSES
        else enum_value(status, STATUSES, "status"),
        "data": data,
    }
    if tool_name is not None:
        clean = type(tool_name) is str and len(tool_name) <= MAX_TEXT and "\x00" not in tool_name
        fields["tool_name"] = tool_name if clean else _text(tool_name, MAX_TEXT)  # (_text's, when clean)
    if user_source is not None:
        clean = type(user_source) is str and len(user_source) <= MAX_TEXT and "\x00" not in user_source
        fields["user_source"] = user_source if clean else _text(user_source, MAX_TEXT)
    if duration_ms is not None:
        if type(duration_ms) is float and 0.0 <= duration_ms <= 1e12:
            fields["duration_ms"] = duration_ms
        elif (duration := _duration(duration_ms)) is not None:
            fields["duration_ms"] = duration
    if error_message is not None:
        fields["error_message"] = _text(error_message, MAX_ERROR_MESSAGE)
    if correlation_id is not None:
        fields["correlation_id"] = _text(correlation_id, MAX_CORRELATION_ID)
    if session_id is not None:
        clean = type(session_id) is str and len(session_id) <= MAX_SESSION_ID and "\x00" not in session_id
        fields["session_id"] = session_id if clean else _text(session_id, MAX_SESSION_ID)
    return fields


def update_fields(
    *, event_id: str, status: object, duration_ms: object, error_message: object, data: dict[str, Any] | None
) -> dict[str, Any]:
    """The update's JSON object (`id` plus the fields given)."""
    fields: dict[str, Any] = {"id": event_id}
    if status is not None:
        fields["status"] = enum_value(status, STATUSES, "status")
    if duration_ms is not None and (duration := _duration(duration_ms)) is not None:
        fields["duration_ms"] = duration
    if error_message is not None:
        fields["error_message"] = _text(error_message, MAX_ERROR_MESSAGE)
    if data:
        fields["data"] = data
    return fields


def merge(target: bytes, update: bytes) -> bytes:
    """Fold an update into a queued create or update of the same event, as the server would apply it:
    fields replaced, `data` merged key by key (the lists of redacted paths joined)."""
    merged = orjson.loads(target)
    changes = orjson.loads(update)
    for key in ("status", "duration_ms", "error_message"):
        if key in changes:
            merged[key] = changes[key]
    if "data" in changes:
        data = dict(merged.get("data") or {})
        paths = list(data.get("redacted") or ())
        data.update(changes["data"])
        if paths and "redacted" in changes["data"]:
            data["redacted"] = [*paths, *(p for p in changes["data"]["redacted"] if p not in paths)]
        merged["data"] = data
    return orjson.dumps(merged)


def batch_body(creates: list[bytes], updates: list[bytes]) -> bytes:
    return b'{"events":[' + b",".join(creates) + b'],"updates":[' + b",".join(updates) + b"]}"

"""Timestamps from the future: an event stamped more than `max_clock_skew` ahead of the server's clock is
refused with 422, in FastAPI's validation shape, naming the field and saying by how much.

A client whose clock or time zone is off would otherwise keep its events atop `recent` until the server's
clock caught up with them, and its pending calls from ever timing out. Both ingest paths (api/ingest.py's
middleware and the routes) call these through `record` and `record_batch`; the check costs one reading of
the clock per request and one comparison per event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse

from activity_feed.durations import format_duration
from activity_feed.schemas import ActivityCreate

SETTING = "ACTIVITY_FEED_MAX_CLOCK_SKEW"
ERROR_TYPE = "timestamp_ahead_of_server"


def refuse_event_ahead(event: ActivityCreate, *, max_skew: timedelta) -> JSONResponse | None:
    """A 422 when `event` is stamped more than `max_skew` ahead of now; a zero `max_skew` accepts any."""
    stamp = event.timestamp
    if stamp is None or not max_skew:
        return None
    now = datetime.now(UTC)
    if stamp <= now + max_skew:
        return None
    return _refusal([_error(("body", "timestamp"), stamp, now, max_skew)])


def refuse_events_ahead(events: Sequence[ActivityCreate], *, max_skew: timedelta) -> JSONResponse | None:
    """A 422 naming every event of a batch stamped more than `max_skew` ahead of now (the whole batch is
    refused, as for any other invalid item); a zero `max_skew` accepts any."""
    if not max_skew or not events:
        return None
    now = datetime.now(UTC)
    latest = now + max_skew
    for event in events:
        stamp = event.timestamp
        if stamp is not None and stamp > latest:
            break
    else:
        return None
    return _refusal(
        [
            _error(("body", "events", index, "timestamp"), event.timestamp, now, max_skew)
            for index, event in enumerate(events)
            if event.timestamp is not None and event.timestamp > latest
        ]
    )


def _refusal(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=422)


def _error(loc: tuple[str | int, ...], stamp: datetime, now: datetime, max_skew: timedelta) -> dict[str, Any]:
    allowed = format_duration(max_skew)
    server_time = now.isoformat(timespec="seconds")
    return {
        "type": ERROR_TYPE,
        "loc": list(loc),
        "msg": f"is {_whole_units(stamp - now)} ahead of the server's clock ({server_time}), more than the "
        f"{allowed} allowed by {SETTING}: check the sending machine's clock and time zone",
        "input": stamp.isoformat(),
        "ctx": {"server_time": now.isoformat(), "max_clock_skew": allowed},
    }


def _whole_units(delta: timedelta) -> str:
    """`3h 0m 12s`: in whole seconds, rounded up (so that just over the limit never reads as the limit), as
    days, hours, minutes and seconds from the largest that is not zero, without trailing zeros."""
    seconds = math.ceil(delta.total_seconds())
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append(f"{count}{unit}")
    while len(parts) > 1 and parts[-1].startswith("0"):
        parts.pop()
    return " ".join(parts) or "0s"

"""Durations as people write them: `30d`, `12h`, `10m`, `45s`, or a plain number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", re.IGNORECASE)


class DurationTooLongError(ValueError):
    """A duration past what a timedelta holds: callers with a lower limit of their own state theirs."""


def shown(text: str) -> str:
    """`text` as a message quotes what was given: at most 40 characters of it."""
    return text if len(text) <= 40 else f"{text[:37]}..."


def parse_duration(text: str) -> timedelta:
    """`30d` -> 30 days; a bare number is seconds. Raises ValueError, saying what is accepted."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use a number with s, m, h or d, such as 30d or 10m)")
    number, unit = match.groups()
    try:
        return timedelta(seconds=float(number) * _UNITS[unit.lower() or "s"])
    except OverflowError:  # past timedelta's range, or so many digits that the number is infinite
        raise DurationTooLongError(f"too long a duration: {shown(text)!r} (at most 999999999d)") from None


def coerce_duration(value: object) -> object:
    """For settings: strings go through `parse_duration`; numbers (seconds) and timedeltas pass on to
    pydantic, which checks them."""
    return parse_duration(value) if isinstance(value, str) else value


def format_duration(value: timedelta) -> str:
    """The largest whole unit that states `value` exactly: 600 s -> `10m`."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"

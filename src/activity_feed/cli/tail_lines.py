"""How `activity-feed tail` prints: one line per event or change, as aligned columns (coloured by `rich`
on a terminal, plain text elsewhere), or as JSON lines.

Every field shown comes from whoever wrote the event, so control characters are replaced before printing:
an escape sequence in a tool name must not reach the terminal, nor a pipe that promised plain text.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, TextIO

import orjson

# The `type` of a history line in --json output: the event as it stood when the history was read.
HISTORY = "history"
DELETED = "activity_deleted"

_TIME, _STATUS, _TYPE, _TOOL, _SOURCE, _DURATION = 12, 7, 16, 28, 16, 9
_MAX_ERROR = 300
# C0 and C1 control characters (ESC among them) and DEL; tabs and newlines become spaces.
_CONTROLS = {code: "?" for code in (*range(0x20), *range(0x7F, 0xA0))} | {0x09: " ", 0x0A: " ", 0x0D: " "}
_STATUS_STYLES = {"success": "green", "error": "bold red", "pending": "yellow", "deleted": "magenta"}


class Lines(Protocol):
    """Where `tail` puts what it follows."""

    def history(self, event: Mapping[str, Any], cursor: str) -> None:
        """One event of the history, as it stood at `cursor`."""

    def change(self, kind: str, event: Mapping[str, Any], text: str) -> None:
        """One stream message: its `type`, its `event`, and its text as the feed sent it."""

    def resync(self) -> None:
        """The feed could not replay what was missed; the history that follows is reloaded."""


def clean(value: object, width: int | None = None) -> str:
    """`value` as one line without control characters, cut to `width` with an ellipsis."""
    text = "" if value is None else str(value).translate(_CONTROLS)
    if width is not None and len(text) > width:
        return text[: width - 1] + "…"
    return text


def when(timestamp: object, now: datetime | None = None) -> str:
    """The local time of an ISO timestamp: `HH:MM:SS.mmm` today, `MM-DD HH:MM` on another day."""
    if not isinstance(timestamp, str):
        moment = datetime.now().astimezone()
    else:
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone()
        except ValueError:
            return clean(timestamp, _TIME)
    today = (now or datetime.now().astimezone()).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%m-%d %H:%M")


def duration(milliseconds: object) -> str:
    if not isinstance(milliseconds, int | float) or isinstance(milliseconds, bool):
        return ""
    if milliseconds >= 1000:
        return f"{milliseconds / 1000:.2f} s"
    return f"{milliseconds:.0f} ms" if milliseconds >= 100 else f"{milliseconds:.1f} ms"


def columns(kind: str, event: Mapping[str, Any]) -> tuple[str, ...]:
    """time, status, type, tool, source, duration, error: each cleaned and cut to its column."""
    if kind == DELETED:  # a deletion carries the event's id alone, shown whole (nothing follows it)
        return (when(None), "deleted", "", clean(event.get("id")), "", "", "")
    return (
        when(event.get("timestamp")),
        clean(event.get("status"), _STATUS),
        clean(event.get("event_type"), _TYPE),
        clean(event.get("tool_name"), _TOOL),
        clean(event.get("user_source"), _SOURCE),
        duration(event.get("duration_ms")),
        clean(event.get("error_message"), _MAX_ERROR),
    )


def plain(cells: tuple[str, ...]) -> str:
    time, status, event_type, tool, source, took, error = cells
    line = (
        f"{time:<{_TIME}}  {status:<{_STATUS}}  {event_type:<{_TYPE}}  {tool:<{_TOOL}}  "
        f"{source:<{_SOURCE}}  {took:>{_DURATION}}  {error}"
    )
    return line.rstrip()


class PlainLines:
    """Aligned columns as plain text, a line flushed as soon as it is written (a pipe reads it at once)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def history(self, event: Mapping[str, Any], cursor: str) -> None:
        self._write(plain(columns(HISTORY, event)))

    def change(self, kind: str, event: Mapping[str, Any], text: str) -> None:
        self._write(plain(columns(kind, event)))

    def resync(self) -> None:
        pass  # said on stderr by the follower

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()


class RichLines(PlainLines):
    """The same columns, coloured by `rich`, each line cut to the terminal's width rather than wrapped."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        from rich.console import Console  # only on a terminal: a pipe never pays for importing it

        super().__init__(out)
        self.console = Console(file=out, highlight=False, markup=False, emoji=False, soft_wrap=False)

    def history(self, event: Mapping[str, Any], cursor: str) -> None:
        self._print(columns(HISTORY, event))

    def change(self, kind: str, event: Mapping[str, Any], text: str) -> None:
        self._print(columns(kind, event))

    def _print(self, cells: tuple[str, ...]) -> None:
        from rich.text import Text

        time, status, event_type, tool, source, took, error = cells
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{time:<{_TIME}}  ", style="dim")
        line.append(f"{status:<{_STATUS}}  ", style=_STATUS_STYLES.get(status, ""))
        line.append(f"{event_type:<{_TYPE}}  ", style="blue")
        line.append(f"{tool:<{_TOOL}}  ", style="bold cyan")
        line.append(f"{source:<{_SOURCE}}  ")
        line.append(f"{took:>{_DURATION}}", style="dim")
        if error:
            line.append(f"  {error}", style="red")
        self.console.print(line, crop=True)
        self.out.flush()


class JsonLines(PlainLines):
    """Each stream message as the feed sent it, one per line; history events as
    `{"type": "history", "event": {...}, "cursor": "..."}`, and a resync as `{"type": "resync"}`."""

    def history(self, event: Mapping[str, Any], cursor: str) -> None:
        self._write(orjson.dumps({"type": HISTORY, "event": event, "cursor": cursor}).decode())

    def change(self, kind: str, event: Mapping[str, Any], text: str) -> None:
        self._write(text)

    def resync(self) -> None:
        self._write('{"type": "resync"}')

"""Where `activity-feed export` writes: JSON lines or CSV, to a file that appears only once the export is
whole (or to standard output), with its progress on a terminal."""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path
from typing import BinaryIO, TextIO

import orjson

from activity_feed.errors import ActivityFeedError
from activity_feed.schemas import ActivityPublic

# The CSV columns: the event's fields in the API's order; `data` is its JSON text.
CSV_COLUMNS = tuple(ActivityPublic.model_fields)


class ExportError(ActivityFeedError):
    """The export could not be written, or what it read was not whole."""


class Output:
    """Standard output, or a file written under a temporary name beside it and renamed over `path` only
    when the export is whole: a failed export leaves no half file (and an older file of that name as it
    was). A path that is not a regular file (a device, a pipe) is written directly."""

    def __init__(self, path: str | None) -> None:
        self.name = "standard output" if path is None else path
        # Through a symbolic link to the file it names: the rename replaces that file, not the link.
        self._path = None if path is None else Path(os.path.realpath(path))
        self._partial: Path | None = None
        if self._path is None:
            self.stream: BinaryIO = sys.stdout.buffer
            return
        try:
            if self._path.exists() and not self._path.is_file():
                # A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written as it is: renaming a file
                # over it would replace it.
                self.stream = self._path.open("wb")
                return
            self._partial = self._path.with_name(f".{self._path.name}.{os.getpid()}.partial")
            self.stream = self._partial.open("xb")
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None

    def commit(self) -> None:
        """Flush everything, and give the file its name."""
        self.stream.flush()
        if self._path is None:
            return
        self.stream.close()
        if self._partial is None:
            return
        try:
            self._partial.replace(self._path)
        except OSError as exc:
            raise ExportError(f"cannot write {self._path}: {exc.strerror or exc}") from None

    def discard(self) -> None:
        """Drop what a failed export wrote to its file (what went to standard output stays)."""
        if self._path is None:
            return
        self.stream.close()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)


class JsonLinesWriter:
    """Writes the JSON lines as they come, counting them."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.count = 0

    def write(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.count += chunk.count(b"\n")

    def finish(self) -> None:
        pass


class CsvWriter:
    """Turns JSON lines into CSV rows (RFC 4180: a header, quoted where needed, CRLF): one row per event,
    an empty cell for null, `data` as its JSON text. Chunks may end inside a line: the rest waits for
    the next."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.count = 0
        self._rest = b""
        self._text = io.StringIO()
        self._rows = csv.writer(self._text)
        self._rows.writerow(CSV_COLUMNS)
        self._flush()

    def write(self, chunk: bytes) -> None:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            event = orjson.loads(line)
            event["data"] = orjson.dumps(event["data"]).decode()
            self._rows.writerow([event[name] for name in CSV_COLUMNS])
        self.count += len(lines)
        self._flush()

    def finish(self) -> None:
        if self._rest:
            raise ExportError("the export ended inside an event: it is not whole")

    def _flush(self) -> None:
        self.out.write(self._text.getvalue().encode())
        self._text.seek(0)
        self._text.truncate()


class Progress:
    """On a terminal, the count so far on one line of stderr, redrawn at most once a second; elsewhere
    (a log, a pipe) nothing, so that only the final line is written."""

    INTERVAL_SECONDS = 1.0

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self._next = self.started + self.INTERVAL_SECONDS
        self._width = 0

    def show(self, count: int) -> None:
        if not self.enabled or (now := time.monotonic()) < self._next:
            return
        self._next = now + self.INTERVAL_SECONDS
        rate = count / (now - self.started)
        text = f"activity-feed: {count:,} events exported ({rate:,.0f}/s)"
        self._width = max(self._width, len(text))
        self.stream.write(f"\r{text}")
        self.stream.flush()

    def clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

"""Newline-delimited messages out of the chunks a relay copied, in bounded memory.

A line longer than `max_line_bytes` is not kept: only its first and last few hundred bytes and its size
are (`Oversized`), enough to find which request it answers. After a gap in the copy (`lost()`, when the
recorder fell too far behind) the line in progress is incomplete, so it and the rest of it up to the
next newline are skipped.
"""

from __future__ import annotations

from typing import NamedTuple

EDGE_BYTES = 512


class Oversized(NamedTuple):
    """A line too long to keep: its first and last bytes, and its length."""

    head: bytes
    tail: bytes
    size: int


Line = bytes | Oversized


class LineSplitter:
    """Feed it chunks; it returns the lines they complete (without the newline). Blank lines are left
    out; a final line with no newline is never returned."""

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._head = b""
        self._tail = b""
        self._size = 0
        self._oversized = False
        self._skipping = False

    def lost(self) -> None:
        """Some bytes were not copied: drop the line in progress, and skip to the next newline."""
        self._reset()
        self._skipping = True

    def feed(self, chunk: bytes) -> list[Line]:
        lines: list[Line] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if start < len(chunk):
                    self._add(chunk[start:] if start else chunk)
                return lines
            if not self._buffer and not self._oversized and not self._skipping:
                # The whole line is in this chunk (the usual case): no copy into the buffer.
                piece = chunk[start:end]
                line: Line | None = piece if piece.strip() else None
                if len(piece) > self.max_line_bytes:
                    line = Oversized(piece[:EDGE_BYTES], piece[-EDGE_BYTES:], len(piece))
            else:
                if end > start:
                    self._add(chunk[start:end])
                line = self._take()
            if line is not None:
                lines.append(line)
            start = end + 1

    def _add(self, piece: bytes) -> None:
        if self._skipping:
            return
        if self._oversized:
            self._size += len(piece)
            self._tail = (self._tail + piece)[-EDGE_BYTES:]
            return
        self._buffer += piece
        if len(self._buffer) > self.max_line_bytes:
            self._oversized = True
            self._size = len(self._buffer)
            self._head = bytes(self._buffer[:EDGE_BYTES])
            self._tail = bytes(self._buffer[-EDGE_BYTES:])
            self._buffer = bytearray()  # its memory goes back now, not when the line ends

    def _take(self) -> Line | None:
        if self._skipping:
            self._skipping = False
            return None
        if self._oversized:
            line: Line = Oversized(self._head, self._tail, self._size)
        else:
            line = bytes(self._buffer)
            if not line.strip():
                line = b""
        self._reset()
        return line or None

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._head = self._tail = b""
        self._size = 0
        self._oversized = False

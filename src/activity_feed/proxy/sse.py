"""Server-sent events read incrementally from a copy of a relayed stream, for recording only.

The relay forwards the bytes as they come; this parser sees the same chunks later and yields each
complete event's data (WHATWG HTML, "event stream interpretation"). Only `message` events carry MCP
JSON-RPC messages; comments, `retry` and other event types are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

# An event larger than this is not recorded (the relay passes it on whatever its size).
MAX_EVENT_BYTES = 64 * 1024 * 1024


class SseParser:
    """Feed it chunks with `feed()`; it yields the `data` of each complete `message` event."""

    __slots__ = ("_data", "_event", "_held", "_held_size", "_oversized", "_pending_cr", "_size")

    def __init__(self) -> None:
        # A line not yet complete, in pieces (joined once its end arrives, not at every chunk).
        self._held: list[bytes] = []
        self._held_size = 0
        self._pending_cr = False  # the last chunk ended in CR: a LF starting the next one belongs to it
        self._data: list[bytes] = []
        self._event = b""
        self._size = 0
        self._oversized = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        if b"\n" not in chunk and b"\r" not in chunk:
            self._hold(chunk)
            return
        if self._held:
            buffer = b"".join((*self._held, chunk))
            self._held, self._held_size = [], 0
        else:
            buffer = chunk
        start = 0
        end = len(buffer)
        while start < end:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else end)
            if cr >= 0:
                if cr + 1 == end:
                    self._pending_cr = True
                line, start = buffer[start:cr], cr + (2 if buffer[cr + 1 : cr + 2] == b"\n" else 1)
            elif lf >= 0:
                line, start = buffer[start:lf], lf + 1
            else:
                break
            if (data := self._line(line)) is not None:
                yield data
        if start < end:
            self._hold(buffer[start:])

    def _hold(self, piece: bytes) -> None:
        self._held_size += len(piece)
        if self._held_size > MAX_EVENT_BYTES:
            self._held, self._held_size, self._oversized = [], 0, True
        elif piece:
            self._held.append(piece)

    def _line(self, line: bytes) -> bytes | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._size += len(value) + 1
            if self._size > MAX_EVENT_BYTES:
                self._oversized = True
                self._data.clear()
            elif not self._oversized:
                self._data.append(value)
        elif name == b"event":
            self._event = value
        return None

    def _dispatch(self) -> bytes | None:
        data, event, oversized = self._data, self._event, self._oversized
        self._data, self._event, self._size, self._oversized = [], b"", 0, False
        if oversized or not data or event not in (b"", b"message"):
            return None
        return b"\n".join(data)

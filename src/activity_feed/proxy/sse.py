"""Server-sent events read incrementally from a copy of a relayed stream, for recording only.

The relay forwards the bytes as they come; this parser sees the same chunks later and returns each
complete `message` event's data (WHATWG HTML, "event stream interpretation"): MCP's JSON-RPC messages.
Comments, `id`, `retry` and other event types are skipped. An event larger than `max_event_bytes` is not
kept: only its first and last bytes and its size are (`Oversized`), enough to find the request it
answers.
"""

from __future__ import annotations

from activity_feed.proxy.lines import EDGE_BYTES, Line, Oversized


class SseParser:
    """Feed it chunks; it returns the data of the events they complete."""

    def __init__(self, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        # The line in progress, in pieces (joined once its end arrives, not at every chunk); past the
        # limit only its first and last bytes are kept.
        self._held: list[bytes] = []
        self._held_size = 0
        self._line_head: bytes | None = None
        self._line_tail = b""
        self._pending_cr = False  # the last chunk ended in CR: a LF starting the next belongs to it
        # The event in progress.
        self._data: list[bytes] = []
        self._size = 0
        self._event = b""
        self._big: Oversized | None = None

    def feed(self, chunk: bytes) -> list[Line]:
        events: list[Line] = []
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._pending_cr = False
        start, end = 0, len(chunk)
        while start < end:
            lf = chunk.find(b"\n", start)
            cr = chunk.find(b"\r", start, lf if lf >= 0 else end)
            if cr >= 0:
                stop, after = cr, cr + (2 if chunk[cr + 1 : cr + 2] == b"\n" else 1)
                self._pending_cr = cr + 1 == end
            elif lf >= 0:
                stop, after = lf, lf + 1
            else:
                self._hold(chunk[start:])
                break
            event = self._line(self._take(chunk[start:stop]))
            start = after
            if event is not None:
                events.append(event)
        return events

    def _hold(self, piece: bytes) -> None:
        self._held_size += len(piece)
        if self._line_head is not None:
            self._line_tail = (self._line_tail + piece)[-EDGE_BYTES:]
            return
        self._held.append(piece)
        if self._held_size > self.max_event_bytes:
            joined = b"".join(self._held)
            self._line_head = joined[: EDGE_BYTES + 8]  # with room for the field name
            self._line_tail = joined[-EDGE_BYTES:]
            self._held = []

    def _take(self, piece: bytes) -> bytes | Oversized:
        """The line that `piece` completes."""
        if self._line_head is not None:
            line: bytes | Oversized = Oversized(
                self._line_head, (self._line_tail + piece)[-EDGE_BYTES:], self._held_size + len(piece)
            )
            self._line_head, self._line_tail = None, b""
        elif self._held:
            line = b"".join((*self._held, piece))
            self._held = []
        else:
            line = piece
        self._held_size = 0
        return line

    def _line(self, line: bytes | Oversized) -> Line | None:
        if isinstance(line, Oversized):
            name, _, value = line.head.partition(b":")
            if name == b"data":
                value = value[1:] if value[:1] == b" " else value
                self._data = []
                self._big = Oversized(value, line.tail, line.size - (len(line.head) - len(value)))
            return None
        if not line:
            return self._dispatch()
        if line[:1] == b":":
            return None
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data_line(value)
        elif name == b"event":
            self._event = value
        return None

    def _data_line(self, value: bytes) -> None:
        big = self._big
        if big is not None:
            self._big = Oversized(
                big.head, (big.tail + b"\n" + value)[-EDGE_BYTES:], big.size + 1 + len(value)
            )
            return
        self._data.append(value)
        self._size += len(value) + 1
        if self._size > self.max_event_bytes:
            data = b"\n".join(self._data)
            self._big = Oversized(data[:EDGE_BYTES], data[-EDGE_BYTES:], len(data))
            self._data = []

    def _dispatch(self) -> Line | None:
        data, big, event = self._data, self._big, self._event
        self._data, self._big, self._event, self._size = [], None, b"", 0
        if event not in (b"", b"message"):
            return None
        if big is not None:
            return big
        if not data:
            return None
        return data[0] if len(data) == 1 else b"\n".join(data)

"""The copy of what a relay forwards, recorded on a thread of its own, off the relay's path.

The relay hands every chunk it read to its direction's `Copier` (an append to a deque, which
wakes nobody; done before it writes the chunk on, so a request is always seen before the response it
causes) and goes straight back to relaying. Every few milliseconds the recording thread takes the
copies, splits them into lines and gives each to the recorder. If the
recorder falls behind by more than `max_backlog_bytes` in one direction, copies are skipped (the relay
never waits for the recorder) until it catches up, and the line they cut is not recorded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from activity_feed.proxy.lines import LineSplitter, Oversized
from activity_feed.proxy.recorder import CLIENT_TO_SERVER, SERVER_TO_CLIENT, ConnectionRecorder, Direction

MiB = 1024 * 1024
MAX_LINE_BYTES = 4 * MiB
MAX_BACKLOG_BYTES = 32 * MiB
# How often the recording thread takes what was copied. Waking it for every chunk would cost the relay
# a thread switch, and a wait for the interpreter lock, on every message.
INTERVAL_SECONDS = 0.02

# (copier, chunk or None for a gap, when it was read)
_Item = tuple["Copier", bytes | None, float]


class Copier:
    """One direction's end of the tap, used by the one relay thread that reads that direction."""

    __slots__ = ("_gap", "_put", "direction", "done", "max_backlog_bytes", "queued")

    def __init__(self, direction: Direction, put: Callable[[_Item], object], max_backlog_bytes: int) -> None:
        self.direction = direction
        self.max_backlog_bytes = max_backlog_bytes
        self._put = put
        # Bytes handed over (written by the relay's thread) and bytes recorded (by the recording thread):
        # each counter has one writer, so neither needs a lock.
        self.queued = 0
        self.done = 0
        self._gap = False

    def copy(self, chunk: bytes) -> None:
        """Hand over a copy of `chunk` (bytes are immutable: the chunk itself)."""
        if self.queued - self.done > self.max_backlog_bytes:
            if not self._gap:
                self._gap = True
                self._put((self, None, 0.0))
            return
        self._gap = False
        self.queued += len(chunk)
        self._put((self, chunk, time.perf_counter()))


class RecordingTap:
    """Records copies of both directions of one connection. `make_recorder` runs first on the recording
    thread (building a `FeedClient` takes a moment the relay need not wait for); copies that arrive
    meanwhile wait in the queue."""

    def __init__(
        self,
        make_recorder: Callable[[], ConnectionRecorder | None],
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
    ) -> None:
        self._make_recorder = make_recorder
        self._copies: deque[_Item] = deque()  # append and popleft are atomic: the relay takes no lock
        self.max_line_bytes = max_line_bytes
        self.client_to_server = Copier(CLIENT_TO_SERVER, self._copies.append, max_backlog_bytes)
        self.server_to_client = Copier(SERVER_TO_CLIENT, self._copies.append, max_backlog_bytes)
        self._stopping = threading.Event()
        self.recorder: ConnectionRecorder | None = None
        self.ready = threading.Event()  # set once make_recorder has returned (or failed)
        self._thread = threading.Thread(target=self._run, name="activity-feed-proxy-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Record what was copied so far (for at most `timeout` seconds) and stop; False when time ran
        out first."""
        self._stopping.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.recorder = self._make_recorder()
        except Exception:  # boundary: without a recorder the relay goes on all the same
            from activity_feed.mcp.sinks import warn_once

            warn_once("proxy-recorder", "activity feed proxy: could not start recording")
        finally:
            self.ready.set()
        recorder = self.recorder
        splitters = {
            self.client_to_server: LineSplitter(self.max_line_bytes),
            self.server_to_client: LineSplitter(self.max_line_bytes),
        }
        copies, take = self._copies, self._copies.popleft
        while True:
            stopping = self._stopping.wait(INTERVAL_SECONDS)
            for _ in range(len(copies)):
                copier, chunk, at = take()
                splitter = splitters[copier]
                if chunk is None:
                    splitter.lost()
                    continue
                if recorder is not None:
                    direction = copier.direction
                    for line in splitter.feed(chunk):
                        if isinstance(line, Oversized):
                            recorder.oversized(line.head, line.tail, line.size, direction, at=at)
                        else:
                            recorder.message(line, direction, at=at)
                copier.done += len(chunk)
            if stopping:
                return

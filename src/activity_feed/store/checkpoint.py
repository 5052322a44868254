"""SQLite's WAL checkpoints, on a thread of their own instead of inside the writer's commits."""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

# The writer's own automatic checkpoint, left as a backstop for a checkpointer that falls behind: SQLite
# checkpoints in the commit that takes the log past this many pages (about 40 MB at 4 KiB a page).
WRITER_AUTOCHECKPOINT_PAGES = 10_000
# Checkpoints follow commits, at most this often: each ends in an fsync of the database file, so much
# more often than this costs ingest more than SQLite's own checkpoints do (`bench ingest`).
MIN_INTERVAL_SECONDS = 0.5
CLOSE_TIMEOUT_SECONDS = 10.0


class WalCheckpointer:
    """Copies committed pages from the write-ahead log into the database file, on a daemon thread.

    By default SQLite does this itself, inside the commit that takes the log past 1,000 pages: inside the
    writer's commit, which every request of its group waits for (store/runner.py), and a large share of
    a batch's commit. Here the copy runs beside the writer: its own connection, a PASSIVE checkpoint (it
    never waits for a lock, and never blocks the writer or a reader), at most every
    `MIN_INTERVAL_SECONDS` while commits go on, and not at all when none do (`bench batch`, `bench
    ingest`).

    What a crash loses is unchanged: a commit is durable once its log frames are synced, whether or not
    they have been copied yet."""

    def __init__(self, path: str, *, min_interval: float = MIN_INTERVAL_SECONDS) -> None:
        self._path = path
        self._min_interval = min_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="activity-feed-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Tell the checkpointer that a transaction committed (cheap: called after every commit)."""
        if not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:  # boundary: the writer's backstop checkpoints without this thread
            log.warning("WAL checkpoints fall back to the writer: cannot open %s: %s", self._path, exc)
            return
        try:
            while True:
                self._wake.wait()
                if self._stop.is_set():
                    return
                self._wake.clear()
                self._checkpoint(connection)
                if self._stop.wait(self._min_interval):
                    return
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # boundary: the writer's backstop checkpoints while this cannot
            log.warning("WAL checkpoint of %s failed: %s", self._path, exc)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(CLOSE_TIMEOUT_SECONDS)

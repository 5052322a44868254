"""How a `FeedClient` tells the service what it dropped: two headers on its batch requests, written by the
client (client/worker.py) and read by the service for `GET /metrics` (api/ingest.py).

    Activity-Feed-Source: server.py@build-7/4121
    Activity-Feed-Dropped: queue_full=3,gave_up=120

`Activity-Feed-Dropped` holds the client's totals since it started, by reason, and is sent only once
something was dropped. Totals rather than increments: a report that is lost (its batch was) loses
nothing, since the next one carries everything. The source names the client's process: program, host
and process id, so that two processes never overwrite each other's totals.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterable, Mapping
from typing import Literal

DropReason = Literal["queue_full", "too_large", "rejected", "gave_up", "bad_response"]
DROP_REASONS: tuple[DropReason, ...] = ("queue_full", "too_large", "rejected", "gave_up", "bad_response")
SOURCE_HEADER = "activity-feed-source"
DROPPED_HEADER = "activity-feed-dropped"
MAX_SOURCE_LENGTH = 200
_MAX_DIGITS = 15
_UNSAFE = re.compile(r"[^A-Za-z0-9._@/:+-]")
_SOURCE = re.compile(rf"[!-~]{{1,{MAX_SOURCE_LENGTH}}}")


def default_source() -> str:
    """`program@host/pid` for this process, in the characters a header may carry."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    source = f"{program or 'python'}@{socket.gethostname()}/{os.getpid()}"
    return _UNSAFE.sub("_", source)[-MAX_SOURCE_LENGTH:]


def report_headers(source: str, dropped: Mapping[str, int]) -> dict[str, str]:
    """The headers that report `dropped` (totals by reason); none while nothing was dropped."""
    counts = ",".join(f"{reason}={count}" for reason, count in dropped.items() if count > 0)
    if not counts:
        return {}
    return {SOURCE_HEADER: source, DROPPED_HEADER: counts}


def read_report(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, dict[str, int]] | None:
    """The source and its totals from a request's raw ASGI headers; None when it reports nothing, or
    reports it in a form this service does not read (reasons it does not know are left out)."""
    source = dropped = None
    for name, value in headers:
        if name == b"activity-feed-dropped":
            dropped = value.decode("latin-1")
        elif name == b"activity-feed-source":
            source = value.decode("latin-1").strip()
    if dropped is None or source is None or not _SOURCE.fullmatch(source):
        return None
    totals: dict[str, int] = {}
    for part in dropped.split(","):
        reason, _, count = part.strip().partition("=")
        if reason in DROP_REASONS and count.isascii() and count.isdigit() and len(count) <= _MAX_DIGITS:
            totals[reason] = int(count)
    return (source, totals) if totals else None

"""memory: RSS of the idle service (`activity-feed serve`, as users run it) right after start, then after
ingesting 1,000,000 events through `POST /activities/batch` in two halves of 500,000.

Targets: idle RSS <= 100 MB; no growth beyond caches: the RSS after the second half is not materially
higher than after the first (at most 10% more). RSS is VmRSS from /proc/<pid>/status.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    Check,
    ServerProcess,
    batch_requests,
    fmt,
    require_no_errors,
    run_load,
    say,
    sqlite_url,
)

NAME = "memory"
TITLE = "RSS of `activity-feed serve`: idle, then after 500,000 and 1,000,000 batched events"
PER_REQUEST = 1000
HALF = 500_000
CONNECTIONS = 4
SETTLE_SECONDS = 2.0
TARGET_IDLE_MB = 100.0
TARGET_GROWTH = 0.10  # of the RSS after the first half


def _ingest(port: int, requests: list[dict[str, Any]]) -> dict[str, Any]:
    spec = {"port": port, "connections": CONNECTIONS, "requests": requests, "count": HALF // PER_REQUEST}
    result = run_load(spec)
    require_no_errors(result, "POST /activities/batch")
    return result


def run() -> list[Check]:
    requests = batch_requests(PER_REQUEST)
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        database = Path(tmp) / "memory.db"
        with ServerProcess(sqlite_url(database), cli=True, log_path=Path(tmp) / "server.log") as server:
            time.sleep(SETTLE_SECONDS)
            idle = server.rss_mb()
            say(f"  idle after start: {idle:.1f} MB")
            first = _ingest(server.port, requests)
            time.sleep(SETTLE_SECONDS)
            after_first = server.rss_mb()
            say(
                f"  after {HALF:,} events: {after_first:.1f} MB "
                f"({fmt(first['rps'] * PER_REQUEST, 'events/s')})"
            )
            second = _ingest(server.port, requests)
            time.sleep(SETTLE_SECONDS)
            after_second = server.rss_mb()
            say(
                f"  after {2 * HALF:,} events: {after_second:.1f} MB "
                f"({fmt(second['rps'] * PER_REQUEST, 'events/s')})"
            )
    growth = after_second - after_first
    details = {
        "idle_mb": idle,
        "after_first_half_mb": after_first,
        "after_second_half_mb": after_second,
        "second_half_growth_mb": growth,
        "ingest": [first, second],
    }
    return [
        Check(
            benchmark=NAME,
            name="RSS idle after start",
            value=idle,
            unit="MB",
            target=f"<= {TARGET_IDLE_MB:.0f} MB",
            met=idle <= TARGET_IDLE_MB,
            details=details,
        ),
        Check(
            benchmark=NAME,
            name=f"RSS after {2 * HALF:,} events",
            value=after_second,
            unit="MB",
            baseline=after_first,
            baseline_name=f"after {HALF:,}",
            ratio=after_second / after_first,
            target=f"ratio <= {1 + TARGET_GROWTH:.2f}",
            met=growth <= TARGET_GROWTH * after_first,
        ),
    ]

"""query: median latency of `GET /activities/recent?status=error&limit=50` on a database of 1,000,000
events against one of 10,000, same server settings: 300 sequential requests on each, after warm-up.

The databases are filled directly with SQLAlchemy Core `executemany` on the writer engine (not through
HTTP): writer-shaped rows over the last 30 days, ~10% errors spread evenly, realistic tool names. Both
servers run at once and are measured in alternating rounds, so that drift of the machine (other load,
CPU clocks) falls on both alike. Target: ratio <= 1.5.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from activity_feed.store.schema import activity_change_counter, activity_events
from bench.harness import (
    Check,
    ServerProcess,
    event_pool,
    fmt,
    migrated_writer,
    say,
    sequential_latencies,
    sqlite_url,
    writer_rows,
)

NAME = "query"
TITLE = "GET /activities/recent?status=error&limit=50 median latency, 1,000,000 vs 10,000 events"
SMALL = 10_000
LARGE = 1_000_000
CHUNK = 25_000
SPAN = timedelta(days=30)
PATH = "/activities/recent?status=error&limit=50"
ROUNDS = 2
WARMUP_REQUESTS = 50
REQUESTS_PER_ROUND = 150
TARGET_RATIO = 1.5


def fill(database: Path, count: int) -> float:
    """Create the schema and insert `count` events; return the seconds it took."""
    started = time.perf_counter()
    with migrated_writer(database) as writer:
        pool = event_pool(4096, seed=3)
        step = SPAN / count
        start = datetime.now(UTC) - SPAN
        insert = sa.insert(activity_events)
        for first in range(1, count + 1, CHUNK):
            size = min(CHUNK, count + 1 - first)
            rows = list(
                writer_rows(pool, first_seq=first, count=size, start=start + step * (first - 1), step=step)
            )
            with writer.begin() as conn:
                conn.execute(insert, rows)
        with writer.begin() as conn:
            conn.execute(sa.update(activity_change_counter).values(value=count))
    return time.perf_counter() - started


def _check_answer(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}{PATH}", timeout=30).json()
    if len(page) != 50 or any(event["status"] != "error" for event in page):
        raise RuntimeError(f"GET {PATH} did not answer 50 error events")


def _round(server: ServerProcess) -> list[float]:
    return sequential_latencies(server, PATH, warmup=WARMUP_REQUESTS, count=REQUESTS_PER_ROUND)


def summary(latencies: list[float], fill_seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(0.9 * len(ordered))],
        "p99_ms": ordered[int(0.99 * len(ordered))],
        "fill_seconds": fill_seconds,
    }


def run() -> list[Check]:
    latencies: dict[int, list[float]] = {SMALL: [], LARGE: []}
    fills: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        folder = Path(tmp)
        for count in (SMALL, LARGE):
            fills[count] = fill(folder / f"query-{count}.db", count)
            say(f"  filled {count:,} events in {fills[count]:.1f} s ({fmt(count / fills[count], 'rows/s')})")
        with ExitStack() as stack:
            servers = {
                count: stack.enter_context(ServerProcess(url, log_path=folder / f"server-{count}.log"))
                for count in (SMALL, LARGE)
                for url in [sqlite_url(folder / f"query-{count}.db")]
            }
            for server in servers.values():
                _check_answer(server)
            for _ in range(ROUNDS):
                for count, server in servers.items():
                    latencies[count] += _round(server)
    results = {count: summary(latencies[count], fills[count]) for count in (SMALL, LARGE)}
    for count, result in results.items():
        say(f"  {count:>9,} events: median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms")
    small = results[SMALL]["median_ms"]
    large = results[LARGE]["median_ms"]
    ratio = large / small
    return [
        Check(
            benchmark=NAME,
            name=f"GET recent?status=error median @{LARGE:,}",
            value=large,
            unit="ms",
            baseline=small,
            baseline_name=f"same @{SMALL:,}",
            ratio=ratio,
            target=f"ratio <= {TARGET_RATIO}",
            met=ratio <= TARGET_RATIO,
            details={str(count): result for count, result in results.items()},
        )
    ]

"""One GET measured on a small and a large database filled alike: the shared fill and the rounds.

Both servers run at once and are measured in alternating rounds, so that drift of the machine (other
load, CPU clocks) falls on both alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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

CHUNK = 25_000
SPAN = timedelta(days=30)
ROUNDS = 2
WARMUP_REQUESTS = 50
REQUESTS_PER_ROUND = 150


def fill_events(
    database: Path,
    count: int,
    *,
    seed: int,
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    finish: Callable[[sa.Connection], None] | None = None,
) -> float:
    """Create the schema and insert `count` writer-shaped events over the last `SPAN`; return the
    seconds. `shape` rewrites each row, `finish` runs in the last transaction."""
    started = time.perf_counter()
    with migrated_writer(database) as writer:
        pool = event_pool(4096, seed=seed)
        step = SPAN / count
        start = datetime.now(UTC) - SPAN
        insert = sa.insert(activity_events)
        for first in range(1, count + 1, CHUNK):
            size = min(CHUNK, count + 1 - first)
            rows = writer_rows(pool, first_seq=first, count=size, start=start + step * (first - 1), step=step)
            with writer.begin() as conn:
                conn.execute(insert, [shape(row) for row in rows] if shape else list(rows))
        with writer.begin() as conn:
            conn.execute(sa.update(activity_change_counter).values(value=count))
            if finish is not None:
                finish(conn)
    return time.perf_counter() - started


def summary(latencies: list[float], fill_seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(0.9 * len(ordered))],
        "p99_ms": ordered[int(0.99 * len(ordered))],
        "fill_seconds": fill_seconds,
    }


def measure_sizes(
    *,
    label: str,
    path: str,
    counts: tuple[int, int],
    fill: Callable[[Path, int], float],
    check_answer: Callable[[ServerProcess], None],
    describe: Callable[[int], str] = lambda count: f"{count:,} events",
) -> dict[int, dict[str, Any]]:
    """Fill one database per count, serve each, check its answer, then time `path` on both in
    alternating rounds; return each count's `summary`."""
    latencies: dict[int, list[float]] = {count: [] for count in counts}
    fills: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        folder = Path(tmp)
        for count in counts:
            fills[count] = fill(folder / f"{label}-{count}.db", count)
            say(f"  filled {describe(count)} in {fills[count]:.1f} s ({fmt(count / fills[count], 'rows/s')})")
        with ExitStack() as stack:
            servers = {
                count: stack.enter_context(
                    ServerProcess(
                        sqlite_url(folder / f"{label}-{count}.db"), log_path=folder / f"server-{count}.log"
                    )
                )
                for count in counts
            }
            for server in servers.values():
                check_answer(server)
            for _ in range(ROUNDS):
                for count, server in servers.items():
                    latencies[count] += sequential_latencies(
                        server, path, warmup=WARMUP_REQUESTS, count=REQUESTS_PER_ROUND
                    )
    results = {count: summary(latencies[count], fills[count]) for count in counts}
    for count, result in results.items():
        say(f"  {count:>9,} events: median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms")
    return results


def ratio_check(
    *,
    benchmark: str,
    name: str,
    results: dict[int, dict[str, Any]],
    counts: tuple[int, int],
    target_ratio: float,
) -> Check:
    """The large database's median against the small one's, met when within `target_ratio`."""
    small, large = counts
    ratio = results[large]["median_ms"] / results[small]["median_ms"]
    return Check(
        benchmark=benchmark,
        name=f"{name} median @{large:,}",
        value=results[large]["median_ms"],
        unit="ms",
        baseline=results[small]["median_ms"],
        baseline_name=f"same @{small:,}",
        ratio=ratio,
        target=f"ratio <= {target_ratio}",
        met=ratio <= target_ratio,
        details={str(count): result for count, result in results.items()},
    )

"""query: median latency of `GET /activities/recent?status=error&limit=50` on a database of 1,000,000
events against one of 10,000, same server settings: 300 sequential requests on each, after warm-up.

The databases are filled directly with SQLAlchemy Core `executemany` on the writer engine (not through
HTTP): writer-shaped rows over the last 30 days, ~10% errors spread evenly, realistic tool names. Both
servers run at once and are measured in alternating rounds, so that drift of the machine (other load,
CPU clocks) falls on both alike. Target: ratio <= 1.5.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.harness import Check, ServerProcess
from bench.sizes import fill_events, measure_sizes, ratio_check

NAME = "query"
TITLE = "GET /activities/recent?status=error&limit=50 median latency, 1,000,000 vs 10,000 events"
SMALL = 10_000
LARGE = 1_000_000
PATH = "/activities/recent?status=error&limit=50"
TARGET_RATIO = 1.5


def fill(database: Path, count: int) -> float:
    """Create the schema and insert `count` events; return the seconds it took."""
    return fill_events(database, count, seed=3)


def _check_answer(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}{PATH}", timeout=30).json()
    if len(page) != 50 or any(event["status"] != "error" for event in page):
        raise RuntimeError(f"GET {PATH} did not answer 50 error events")


def run() -> list[Check]:
    results = measure_sizes(
        label=NAME, path=PATH, counts=(SMALL, LARGE), fill=fill, check_answer=_check_answer
    )
    return [
        ratio_check(
            benchmark=NAME,
            name="GET recent?status=error",
            results=results,
            counts=(SMALL, LARGE),
            target_ratio=TARGET_RATIO,
        )
    ]

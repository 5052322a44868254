"""ingest: `POST /activities/log` events/s with 32 concurrent clients, against a bare endpoint of the same
app and server that returns a constant JSON object (`POST /bench/bare`, same request bodies).

Target: ratio >= 0.6. Each request is one event with a fresh client-made UUIDv7 id, as `FeedClient` sends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.harness import (
    Check,
    ServerProcess,
    fmt,
    log_requests,
    require_no_errors,
    run_load,
    say,
    sqlite_url,
)
from bench.server import BARE_PATH

NAME = "ingest"
TITLE = "POST /activities/log with 32 clients vs a bare endpoint on the same server"
CONNECTIONS = 32
WARMUP_SECONDS = 1.5
SECONDS = 5.0
TARGET_RATIO = 0.6


def load(
    port: int,
    path: str = "/activities/log",
    *,
    seconds: float = SECONDS,
    warmup: float = WARMUP_SECONDS,
    count: int | None = None,
    warmup_requests: int = 0,
) -> dict[str, Any]:
    """The ingest load on `path` of the server on `port`: CONNECTIONS clients, one event per request, for
    `seconds` after `warmup`, or (with `count`) for `count` requests after `warmup_requests`; the load
    generator's result (`rps`, ...)."""
    spec: dict[str, Any] = {"port": port, "connections": CONNECTIONS, "requests": log_requests(path)}
    if count is None:
        spec |= {"warmup_seconds": warmup, "seconds": seconds}
    else:
        spec |= {"warmup_requests": warmup_requests, "count": count}
    result = run_load(spec)
    require_no_errors(result, f"POST {path}")
    return result


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        database = Path(tmp) / "ingest.db"
        with ServerProcess(sqlite_url(database), log_path=Path(tmp) / "server.log") as server:
            bare = load(server.port, BARE_PATH)
            say(f"  bare POST {BARE_PATH}: {fmt(bare['rps'], 'req/s')}")
            logged = load(server.port, "/activities/log")
            say(f"  POST /activities/log:  {fmt(logged['rps'], 'req/s')} (one event each)")
    ratio = logged["rps"] / bare["rps"]
    check = Check(
        benchmark=NAME,
        name=f"POST /activities/log, {CONNECTIONS} clients",
        value=logged["rps"],
        unit="req/s",
        baseline=bare["rps"],
        baseline_name=f"bare POST {BARE_PATH}",
        ratio=ratio,
        target=f"ratio >= {TARGET_RATIO}",
        met=ratio >= TARGET_RATIO,
        details={"log": logged, "bare": bare, "connections": CONNECTIONS, "seconds": SECONDS},
    )
    return [check]

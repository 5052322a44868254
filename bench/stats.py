"""stats: median latency of `GET /activities/stats` on a database of 1,000,000 events against one of
10,000, same server settings (the default window: the newest 10,000 events), 3 alternating rounds of 20
sequential requests after 5 of warm-up; then the p99 of `GET /health`, probed every 50 ms, while 8
connections request stats without pause on the 1,000,000-event server.

The databases are filled as `query` fills its own (bench/query.py: Core `executemany`, events over the
last 30 days, ~10% errors); both servers run at once and are measured by turns. Each answer's
`X-Stats-*` headers are checked: the large database's covers its newest 10,000 events and says it left
older ones out, the small one's covers all of its events. Target: ratio <= 1.5 (and /health p99 under
the stats load <= 250 ms, as for `replay`).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Check, ServerProcess, fmt, run_load, say, sequential_latencies, sqlite_url
from bench.query import fill
from bench.replay import p99

NAME = "stats"
TITLE = "GET /activities/stats median latency, 1,000,000 vs 10,000 events; /health under stats load"
SMALL = 10_000
LARGE = 1_000_000
WINDOW = 10_000  # the default of `stats_window_events`
PATH = "/activities/stats"
ROUNDS = 3
WARMUP_REQUESTS = 5
REQUESTS_PER_ROUND = 20
LOAD_CONNECTIONS = 8
LOAD_SECONDS = 5.0
PROBE_INTERVAL_SECONDS = 0.05
TARGET_RATIO = 1.5
TARGET_HEALTH_P99_MS = 250.0


def _check_answer(server: ServerProcess, *, events: int, truncated: bool) -> None:
    response = httpx.get(f"{server.url}{PATH}", timeout=60)
    counted = sum(tool["count"] for tool in response.json())
    window = response.headers.get("X-Stats-Window-Events")
    said_truncated = response.headers.get("X-Stats-Truncated")
    if counted != events or window != str(events) or said_truncated != str(truncated).lower():
        raise RuntimeError(
            f"GET {PATH} counted {counted} events (X-Stats-Window-Events {window}, X-Stats-Truncated "
            f"{said_truncated}); expected {events}, truncated {truncated}"
        )


def _round(server: ServerProcess) -> list[float]:
    return sequential_latencies(server, PATH, warmup=WARMUP_REQUESTS, count=REQUESTS_PER_ROUND)


def _health_under_load(server: ServerProcess) -> tuple[list[float], dict[str, Any]]:
    """/health round trips (ms) while `LOAD_CONNECTIONS` connections request stats without pause."""
    spec = {
        "port": server.port,
        "connections": LOAD_CONNECTIONS,
        "requests": [{"method": "GET", "path": PATH}],
        "warmup_seconds": 0.5,
        "seconds": LOAD_SECONDS,
    }
    load: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: load.update(run_load(spec)))
    loader.start()
    probes: list[float] = []
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        while loader.is_alive():
            started = time.perf_counter()
            if client.get("/health").status_code != 200:
                raise RuntimeError("/health did not answer 200 under the stats load")
            probes.append((time.perf_counter() - started) * 1000)
            time.sleep(PROBE_INTERVAL_SECONDS)
    loader.join()
    return probes, load


def run() -> list[Check]:
    latencies: dict[int, list[float]] = {SMALL: [], LARGE: []}
    fills: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        folder = Path(tmp)
        for count in (SMALL, LARGE):
            fills[count] = fill(folder / f"stats-{count}.db", count)
            say(f"  filled {count:,} events in {fills[count]:.1f} s ({fmt(count / fills[count], 'rows/s')})")
        with ExitStack() as stack:
            servers = {
                count: stack.enter_context(ServerProcess(url, log_path=folder / f"server-{count}.log"))
                for count in (SMALL, LARGE)
                for url in [sqlite_url(folder / f"stats-{count}.db")]
            }
            _check_answer(servers[SMALL], events=SMALL, truncated=False)
            _check_answer(servers[LARGE], events=WINDOW, truncated=True)
            for _ in range(ROUNDS):
                for count, server in servers.items():
                    latencies[count] += _round(server)
            probes, load = _health_under_load(servers[LARGE])
    medians = {count: statistics.median(values) for count, values in latencies.items()}
    for count, values in latencies.items():
        p90 = sorted(values)[int(0.9 * len(values))]
        say(f"  {count:>9,} events: median {medians[count]:.1f} ms, p90 {p90:.1f} ms")
    statuses = load.get("statuses", {})
    say(
        f"  under {LOAD_CONNECTIONS} connections of stats ({load.get('rps', 0):.1f} answers/s, statuses "
        f"{statuses}): /health p99 {p99(probes):.1f} ms, median {statistics.median(probes):.1f} ms "
        f"over {len(probes)} probes"
    )
    ratio = medians[LARGE] / medians[SMALL]
    return [
        Check(
            benchmark=NAME,
            name=f"GET stats median @{LARGE:,}",
            value=medians[LARGE],
            unit="ms",
            baseline=medians[SMALL],
            baseline_name=f"same @{SMALL:,}",
            ratio=ratio,
            target=f"ratio <= {TARGET_RATIO}",
            met=ratio <= TARGET_RATIO,
            details={"latencies_ms": {str(k): v for k, v in latencies.items()}, "fill_seconds": fills},
        ),
        Check(
            benchmark=NAME,
            name=f"/health p99 under {LOAD_CONNECTIONS} stats connections @{LARGE:,}",
            value=p99(probes),
            unit="ms",
            target=f"<= {TARGET_HEALTH_P99_MS:.0f} ms",
            met=p99(probes) <= TARGET_HEALTH_P99_MS,
            details={"health_ms": probes, "load": load},
        ),
    ]

"""replay: 30 stream clients connect at once with `since=` a cursor from before 10,000 events of ~30 KB
`data` each, so every one of them is owed all 10,000 (290 MB each, 9 GB in all).

Measured on the real `activity-feed serve` (default settings) for 60 s of replaying: the service's RSS
(VmRSS, sampled every 0.1 s) at its peak, and the p99 of `GET /health`, probed every 50 ms; then the RSS
3 s after the clients have gone. Baselines: the RSS and /health p99 of the same service, idle, just
before. The clients (`replay_clients.py`, a process of their own) count messages without decoding them,
check the change order by cursor, and reconnect with their last cursor when told to try again later
(1013); a resync, a change out of order, or a client that finished with other than 10,000 messages
fails the run. Replays are not all finished in 60 s (one costs the server some 5 s of CPU here), and
need not be: what is measured is the service while 30 of them are under way.
Targets: peak RSS <= 300 MB, /health p99 <= 250 ms.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from activity_feed.store.schema import activity_change_counter, activity_events
from bench.harness import (
    PROJECT_ROOT,
    Check,
    ServerProcess,
    event_pool,
    fmt,
    migrated_writer,
    say,
    sqlite_url,
    writer_rows,
)

NAME = "replay"
TITLE = "30 concurrent replays of 10,000 events of ~30 KB: service RSS and /health p99"
EVENTS = 10_000
CLIENTS = 30
DATA_BYTES = 30_000
CHUNK = 500
DISTINCT_DATA = 64
PROBE_INTERVAL_SECONDS = 0.05
RSS_INTERVAL_SECONDS = 0.1
IDLE_PROBES = 60
SETTLE_SECONDS = 3.0
REPLAY_SECONDS = 60.0
TARGET_RSS_MB = 300.0
TARGET_HEALTH_P99_MS = 250.0

_STREETS = ("Maple", "Oak", "Cedar", "Elm", "Pine", "Birch", "Willow", "Harbor", "Mill", "Station")
_NAMES = ("A. Jensen", "M. Okafor", "L. Moreau", "S. Tanaka", "R. Alvarez", "K. Novak", "D. Osei")
_WORDS = ("lease", "renewal", "deposit", "inspection", "boiler", "repair", "late", "fee", "parking", "pet")


def large_data(seed: int) -> dict[str, Any]:
    """A tool result of ~30 KB of JSON: rows of a property search, as an MCP tool might return them."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    size = 0
    while size < DATA_BYTES:
        row = {
            "property_id": rng.randrange(1, 5000),
            "address": f"{rng.randrange(1, 999)} {rng.choice(_STREETS)} Street, Unit {rng.randrange(1, 40)}",
            "tenant": rng.choice(_NAMES),
            "rent": round(rng.uniform(900, 4000), 2),
            "status": rng.choice(("occupied", "vacant", "notice")),
            "notes": " ".join(rng.choice(_WORDS) for _ in range(12)),
        }
        rows.append(row)
        size += len(json.dumps(row))
    return {"arguments": {"query": "all", "limit": len(rows)}, "result": rows}


def fill(database: Path) -> float:
    """Create the schema and insert the events (change numbers 1 to EVENTS); return the seconds taken."""
    started = time.perf_counter()
    pool = event_pool(DISTINCT_DATA, seed=5)
    for i, event in enumerate(pool):
        event["data"] = large_data(i)
        # Finished calls only: the service's first maintenance pass would otherwise mark the pending ones
        # failed (they are over 10 minutes old), which moves the cursor on under the clients' feet.
        if event["status"] == "pending":
            event["status"] = "success"
    start = datetime.now(UTC) - timedelta(hours=1)
    step = timedelta(hours=1) / EVENTS
    insert = sa.insert(activity_events)
    with migrated_writer(database) as writer:
        for first in range(1, EVENTS + 1, CHUNK):
            size = min(CHUNK, EVENTS + 1 - first)
            rows = list(
                writer_rows(pool, first_seq=first, count=size, start=start + step * (first - 1), step=step)
            )
            with writer.begin() as conn:
                conn.execute(insert, rows)
        with writer.begin() as conn:
            conn.execute(sa.update(activity_change_counter).values(value=EVENTS))
    return time.perf_counter() - started


class _Sampler:
    """Samples the server's RSS and probes /health on threads of their own until stopped."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.rss: list[float] = []
        self.health_ms: list[float] = []
        self.health_errors = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._sample_rss), threading.Thread(target=self._probe)]

    def __enter__(self) -> _Sampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _sample_rss(self) -> None:
        while not self._stop.wait(RSS_INTERVAL_SECONDS):
            self.rss.append(self.server.rss_mb())

    def _probe(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10.0) as client:
            while not self._stop.wait(PROBE_INTERVAL_SECONDS):
                self.health_ms.append(_health_ms(client))
                if self.health_ms[-1] < 0:
                    self.health_errors += 1
                    self.health_ms.pop()


def _health_ms(client: httpx.Client) -> float:
    """The round trip of one GET /health in ms, or -1 when it failed."""
    started = time.perf_counter()
    try:
        ok = client.get("/health").status_code == 200
    except httpx.HTTPError:
        ok = False
    return (time.perf_counter() - started) * 1000 if ok else -1.0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _replay(server: ServerProcess) -> dict[str, Any]:
    spec = {
        "url": f"ws://127.0.0.1:{server.port}/activities/ws",
        "since": "0",
        "clients": CLIENTS,
        "expect": EVENTS,
        "seconds": REPLAY_SECONDS,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench.replay_clients"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the replay clients failed:\n{completed.stderr.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    broken = [
        client
        for client in result["clients"]
        if client["out_of_order"] or client["resyncs"] or (client["done"] and client["messages"] != EVENTS)
    ]
    if broken:
        raise RuntimeError(
            f"{len(broken)} of {CLIENTS} clients got changes twice or out of order: {broken[0]}"
        )
    return result


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        database = Path(tmp) / "replay.db"
        fill_seconds = fill(database)
        say(f"  filled {EVENTS:,} events of ~{DATA_BYTES // 1000} KB in {fill_seconds:.1f} s")
        with ServerProcess(sqlite_url(database), cli=True, log_path=Path(tmp) / "server.log") as server:
            with httpx.Client(base_url=server.url, timeout=10.0) as client:
                idle_health = [ms for ms in (_health_ms(client) for _ in range(IDLE_PROBES)) if ms >= 0]
            idle_rss = server.rss_mb()
            say(f"  idle: {idle_rss:.1f} MB, /health p99 {p99(idle_health):.1f} ms")
            with _Sampler(server) as sampler:
                replay = _replay(server)
            time.sleep(SETTLE_SECONDS)
            after_rss = server.rss_mb()
    peak_rss = max(sampler.rss)
    health_p99 = p99(sampler.health_ms)
    clients = replay["clients"]
    reconnects = sum(client["reconnects"] for client in clients)
    total_mb = sum(client["bytes"] for client in clients) / 1e6
    finished = [client for client in clients if client["done"]]
    say(
        f"  {CLIENTS} clients replaying for {replay['wall_seconds']:.1f} s: {len(finished)} finished, "
        f"{sum(client['messages'] for client in clients):,} messages ({total_mb:,.0f} MB, "
        f"{fmt(total_mb / replay['wall_seconds'], 'MB/s')}), {reconnects} reconnects after 1013"
    )
    say(
        f"  RSS peak {peak_rss:.1f} MB, {SETTLE_SECONDS:.0f} s after {after_rss:.1f} MB; /health p99 "
        f"{health_p99:.1f} ms, median {statistics.median(sampler.health_ms):.1f} ms over "
        f"{len(sampler.health_ms)} probes ({sampler.health_errors} failed)"
    )
    details = {
        "fill_seconds": fill_seconds,
        "idle_rss_mb": idle_rss,
        "after_rss_mb": after_rss,
        "rss_samples_mb": sampler.rss,
        "health_ms": sampler.health_ms,
        "health_errors": sampler.health_errors,
        "replay": replay,
    }
    return [
        Check(
            benchmark=NAME,
            name=f"RSS peak during {CLIENTS} replays",
            value=peak_rss,
            unit="MB",
            baseline=idle_rss,
            baseline_name="idle before",
            ratio=peak_rss / idle_rss,
            target=f"<= {TARGET_RSS_MB:.0f} MB",
            met=peak_rss <= TARGET_RSS_MB,
            details=details,
        ),
        Check(
            benchmark=NAME,
            name=f"RSS {SETTLE_SECONDS:.0f} s after the replays",
            value=after_rss,
            unit="MB",
            baseline=idle_rss,
            baseline_name="idle before",
            ratio=after_rss / idle_rss,
            target="reported",
            met=None,
        ),
        Check(
            benchmark=NAME,
            name=f"/health p99 during {CLIENTS} replays",
            value=health_p99,
            unit="ms",
            baseline=p99(idle_health),
            baseline_name="idle before",
            ratio=health_p99 / p99(idle_health),
            target=f"<= {TARGET_HEALTH_P99_MS:.0f} ms",
            met=health_p99 <= TARGET_HEALTH_P99_MS and sampler.health_errors == 0,
        ),
    ]

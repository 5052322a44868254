"""batch: events/s through `POST /activities/batch` (1,000 events per request, 4 connections) on SQLite,
against raw SQLAlchemy Core `executemany` of the same rows (one transaction per 1,000) into the same
table of a fresh database, on the service's own SQLite writer engine (same driver, same pragmas).

Targets: ratio >= 0.5 and >= 50,000 events/s.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from activity_feed.store.schema import activity_events
from bench.harness import (
    Check,
    ServerProcess,
    batch_requests,
    event_pool,
    fmt,
    migrated_writer,
    require_no_errors,
    run_load,
    say,
    sqlite_url,
    writer_rows,
)

NAME = "batch"
TITLE = "POST /activities/batch (1,000 events/request) vs raw Core executemany, SQLite"
PER_REQUEST = 1000
CONNECTIONS = 4
WARMUP_SECONDS = 2.0
SECONDS = 5.0
TARGET_RATIO = 0.5
TARGET_EVENTS_PER_SECOND = 50_000


def _through_http(database: Path, log_path: Path) -> dict[str, Any]:
    with ServerProcess(sqlite_url(database), log_path=log_path) as server:
        spec = {
            "port": server.port,
            "connections": CONNECTIONS,
            "requests": batch_requests(PER_REQUEST),
            "warmup_seconds": WARMUP_SECONDS,
            "seconds": SECONDS,
        }
        result = run_load(spec)
    require_no_errors(result, "POST /activities/batch")
    result["events_per_second"] = result["rps"] * PER_REQUEST
    return result


def _raw_core(database: Path) -> dict[str, Any]:
    """Insert chunks of writer-shaped rows for WARMUP + SECONDS; only the database calls are timed."""
    with migrated_writer(database) as writer:
        pool = event_pool(PER_REQUEST * 4, seed=13)
        insert = sa.insert(activity_events)
        seq = 1
        timed = 0.0
        inserted = 0
        deadline = time.monotonic() + WARMUP_SECONDS + SECONDS
        while time.monotonic() < deadline or inserted == 0:
            now = datetime.now(UTC)
            rows = list(
                writer_rows(
                    pool, first_seq=seq, count=PER_REQUEST, start=now, step=timedelta(0), updated_at=now
                )
            )
            seq += PER_REQUEST
            started = time.perf_counter()
            with writer.begin() as conn:
                conn.execute(insert, rows)
            spent = time.perf_counter() - started
            if seq > 3 * PER_REQUEST:  # the first chunks warm the caches up
                timed += spent
                inserted += PER_REQUEST
        return {"events": inserted, "seconds": timed, "events_per_second": inserted / timed}


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        http = _through_http(Path(tmp) / "batch.db", Path(tmp) / "server.log")
        say(f"  POST /activities/batch: {fmt(http['events_per_second'], 'events/s')}")
        raw = _raw_core(Path(tmp) / "raw.db")
        say(f"  raw Core executemany:   {fmt(raw['events_per_second'], 'events/s')}")
    value = http["events_per_second"]
    ratio = value / raw["events_per_second"]
    common: dict[str, Any] = {"benchmark": NAME, "unit": "events/s", "value": value}
    details = {"http": http, "raw": raw, "per_request": PER_REQUEST, "connections": CONNECTIONS}
    return [
        Check(
            name="POST /activities/batch vs raw Core",
            baseline=raw["events_per_second"],
            baseline_name="raw Core executemany",
            ratio=ratio,
            target=f"ratio >= {TARGET_RATIO}",
            met=ratio >= TARGET_RATIO,
            details=details,
            **common,
        ),
        Check(
            name="POST /activities/batch absolute",
            target=f">= {TARGET_EVENTS_PER_SECOND:,} events/s",
            met=value >= TARGET_EVENTS_PER_SECOND,
            **common,
        ),
    ]

"""Crash safety: writers post as fast as they can while the service, a real separate process, is killed
with SIGKILL at random moments; after each restart on the same database every event that got a 2xx is
there and the database opens cleanly."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from tests.support.service import ServiceProcess

SEED = 20260505
KILLS = 3
LOAD_SECONDS = (0.2, 0.8)
SINGLE_WRITERS = 8
BATCH_WRITERS = 2
BATCH_SIZE = 50
SAMPLE_GETS = 25
REQUEST_TIMEOUT_SECONDS = 10.0
FIRST_ACK_TIMEOUT_SECONDS = 10.0


@dataclass
class Load:
    """What the writers of one round saw; `killed` is set just after the SIGKILL is sent."""

    acknowledged: set[uuid.UUID] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    errors_before_kill: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    errors_after_kill: int = 0
    killed: bool = False
    started: float = field(default_factory=time.monotonic)
    first_ack: float | None = None
    acknowledging: asyncio.Event = field(default_factory=asyncio.Event)
    duration: float = 0.0


def _event(event_id: uuid.UUID, writer: str, n: int) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "event_type": "tool_call",
        "tool_name": "crash-test",
        "user_source": writer,
        "status": "success",
        "data": {"writer": writer, "n": n},
    }


async def _write(
    load: Load, url: str, writer: str, path: str, make_body: Any, size: int, created_ok: Any
) -> None:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client:
        n = 0
        while not load.killed:
            ids = [uuid.uuid4() for _ in range(size)]
            try:
                response = await client.post(f"{url}{path}", json=make_body(ids, writer, n))
            except httpx.TransportError as exc:
                if load.killed:
                    load.errors_after_kill += 1
                    return
                load.errors_before_kill.append(f"{writer}: {type(exc).__name__}: {exc}")
                continue
            n += 1
            load.statuses[response.status_code] += 1
            if response.is_success and created_ok(response):
                load.acknowledged.update(ids)
                if load.first_ack is None:
                    load.first_ack = time.monotonic() - load.started
                    load.acknowledging.set()
            else:
                load.unexpected.append(f"{writer}: {response.status_code} {response.text[:200]}")


async def single_writer(load: Load, url: str, writer: str) -> None:
    await _write(
        load,
        url,
        writer,
        "/activities/log",
        lambda ids, w, n: _event(ids[0], w, n),
        1,
        lambda response: response.status_code == 201,
    )


async def batch_writer(load: Load, url: str, writer: str) -> None:
    await _write(
        load,
        url,
        writer,
        "/activities/batch",
        lambda ids, w, n: {"events": [_event(i, w, n) for i in ids]},
        BATCH_SIZE,
        lambda response: response.json()["created"] == BATCH_SIZE,
    )


def sqlite_path(database_url: str) -> str:
    database = make_url(database_url).database
    assert database is not None
    return database


def sqlite_state(database_url: str) -> tuple[str, set[uuid.UUID]]:
    """`PRAGMA integrity_check` and the ids stored, read beside the running service (WAL allows it)."""
    with sqlite3.connect(sqlite_path(database_url), timeout=10) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = {uuid.UUID(row[0]) for row in conn.execute("SELECT id FROM activity_events")}
    conn.close()
    return integrity, ids


async def postgres_ids(database_url: str) -> set[uuid.UUID]:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return {row["id"] for row in await conn.fetch("SELECT id FROM activity_events")}
    finally:
        await conn.close()


async def stored_ids(database_url: str) -> set[uuid.UUID]:
    if database_url.startswith("sqlite"):
        integrity, ids = await asyncio.to_thread(sqlite_state, database_url)
        assert integrity == "ok", f"PRAGMA integrity_check after the crash: {integrity}"
        return ids
    return await postgres_ids(database_url)


async def check_survivors(
    service: ServiceProcess, acknowledged: set[uuid.UUID], rng: random.Random
) -> tuple[int, int]:
    """Every acknowledged event is in the database, and the service serves a sample of them."""
    ids = await stored_ids(service.database_url)
    lost = acknowledged - ids
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged events lost, e.g. {sorted(lost)[:3]}"
    sample = rng.sample(sorted(acknowledged), min(SAMPLE_GETS, len(acknowledged)))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for event_id in sample:
            response = await client.get(f"{service.url}/activities/{event_id}")
            assert response.status_code == 200, (event_id, response.status_code, response.text)
            assert response.json()["tool_name"] == "crash-test"
    return len(acknowledged & ids), len(ids)


async def load_then_kill(service: ServiceProcess, rng: random.Random) -> Load:
    """Writers at full speed; a random 0.2-0.8 s after the first acknowledged write, the service gets
    SIGKILL mid-load."""
    load = Load()
    writers = [single_writer(load, service.url, f"single-{i}") for i in range(SINGLE_WRITERS)]
    writers += [batch_writer(load, service.url, f"batch-{i}") for i in range(BATCH_WRITERS)]
    async with asyncio.TaskGroup() as group:
        for writer in writers:
            group.create_task(writer)
        # The random moment is counted from the first acknowledged write, so that every kill lands in a
        # service that is taking writes (its first write after a start takes a while).
        async with asyncio.timeout(FIRST_ACK_TIMEOUT_SECONDS):
            await load.acknowledging.wait()
        load.duration = rng.uniform(*LOAD_SECONDS)
        await asyncio.sleep(load.duration)
        # The signal goes before the writers can see `killed`: whatever they have in flight, they have
        # in flight at the kill.
        service.sigkill()
        load.killed = True
        await asyncio.to_thread(service.reap)
    return load


async def test_acknowledged_events_survive_sigkill(database_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    service = ServiceProcess(database_url, tmp_path / "serve.log")
    acknowledged: set[uuid.UUID] = set()
    try:
        service.start()
        await asyncio.to_thread(service.wait_healthy)
        for kill in range(1, KILLS + 1):
            load = await load_then_kill(service, rng)
            code = service.exited()
            assert code == -signal.SIGKILL, f"not killed by SIGKILL (exit {code}):\n{service.log()}"
            assert not load.errors_before_kill, load.errors_before_kill[:5]
            assert not load.unexpected, load.unexpected[:5]
            assert load.acknowledged, f"kill {kill}: no event was acknowledged before the kill"
            acknowledged |= load.acknowledged

            service.start()  # same database, as the crash left it
            await asyncio.to_thread(service.wait_healthy)
            found, rows = await check_survivors(service, acknowledged, rng)
            assert found == len(acknowledged)
            print(
                f"\n[crash {make_url(database_url).get_backend_name()}] kill {kill}: "
                f"acknowledged {len(load.acknowledged)} this round, {len(acknowledged)} in all; "
                f"found {found}; rows {rows}; requests {sum(load.statuses.values())}, "
                f"cut by the kill {load.errors_after_kill}; load {load.duration:.2f} s, "
                f"first ack after {load.first_ack:.2f} s"
            )
        assert "Traceback" not in service.log(), service.log()
    finally:
        service.sigkill()
        service.reap()

"""Database outage: PostgreSQL goes away under load, behind a TCP proxy the test
controls, and comes back. While it is away every request is answered promptly with 503 and
`Retry-After` (never 500, never a hang) and `/health` and `/metrics` say so; once it is back the same
service serves again, every event that was acknowledged is stored exactly once, writers that retried
their 503s end with all their events, a `FeedClient` delivers everything it queued, and a stream client
gets every change, reconnecting with its cursor if it was closed.

Three ways to fail: `refuse` resets every connection (PostgreSQL stopped, a firewall rejecting),
`blackhole` stops moving bytes (a partition: nothing answers until a timeout runs out), and `commit`
resets everything just as a `COMMIT` reaches the database, which commits it while the service cannot
know: its writers get 503 for writes that are in fact stored, retry them, and must not duplicate them,
and stream clients must still get those changes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from activity_feed.client import FeedClient
from activity_feed.settings import Settings
from tests.support.server import LiveServer
from tests.support.tcp_proxy import TcpProxy

# The service's bound on waiting for the database; short, so that a blackhole costs the test little.
DATABASE_TIMEOUT_SECONDS = 2.0
# "Promptly": a generous bound on a 503 (a connect and a statement timeout, a pool that is being
# emptied), far below anything that would pass for a hang.
PROMPT_SECONDS = 10.0
DEADLINE_SECONDS = 30.0
SINGLE_WRITERS = 6
BATCH_WRITERS = 2
BATCH_SIZE = 10
ACKS_BEFORE_CUT = 100
ACKS_AFTER_RESTORE = 100
# Writers retry a 503 after this pause rather than the second `Retry-After` asks for: the header is
# checked on every 503, and honouring it is FeedClient's job (tested below), not this load's.
RETRY_PAUSE_SECONDS = 0.05
MIN_OUTAGE_SECONDS = 1.0


@dataclass
class Tally:
    """What the writers and readers saw, by phase (`before`, `outage`, `after`)."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    phase: str = "before"
    acknowledged: set[uuid.UUID] = field(default_factory=set)
    patched: set[uuid.UUID] = field(default_factory=set)
    acks: Counter[str] = field(default_factory=Counter)
    unavailable: Counter[str] = field(default_factory=Counter)  # 503s, by endpoint
    refused: set[str] = field(default_factory=set)  # the writers and readers that got a 503
    retried_to_success: int = 0  # writes that got a 503 and then a 2xx for the same body
    already_there: int = 0  # creates whose retry found them committed: their 503 came after the commit
    slowest_503: float = 0.0
    unexpected: list[str] = field(default_factory=list)
    first_ack_after_restore: float | None = None
    restored_at: float = 0.0

    def check_unavailable(self, who: str, what: str, response: httpx.Response, elapsed: float) -> None:
        self.unavailable[what] += 1
        self.refused.add(who)
        self.slowest_503 = max(self.slowest_503, elapsed)
        problems = []
        if response.headers.get("retry-after") != "1":
            problems.append(f"Retry-After {response.headers.get('retry-after')!r}")
        if "unavailable" not in _detail(response):
            problems.append(f"body {response.text[:200]!r}")
        if elapsed > PROMPT_SECONDS:
            problems.append(f"took {elapsed:.1f} s")
        if problems:
            self.unexpected.append(f"{what}: 503 with {', '.join(problems)}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("detail", "")) if isinstance(body, dict) else ""


def _event(tally: Tally, writer: str, n: int, event_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "event_type": "tool_call",
        "tool_name": "outage",
        "user_source": writer,
        "data": {"run": tally.run, "key": f"{writer}/{n}"},
    }


async def _until_done(
    client: httpx.AsyncClient, tally: Tally, who: str, method: str, path: str, body: dict[str, Any]
) -> httpx.Response:
    """Send until a 2xx, retrying 503s with the same body; anything else is a failure."""
    what = f"{method} {path if method == 'POST' else '/activities/{id}'}"
    deadline = time.monotonic() + DEADLINE_SECONDS * 2
    failed = False
    while True:
        started = time.monotonic()
        try:
            response = await client.request(method, path, json=body)
        except httpx.TransportError as exc:
            tally.unexpected.append(f"{what}: {type(exc).__name__}: {exc}")
            raise
        elapsed = time.monotonic() - started
        if response.is_success:
            if failed:
                tally.retried_to_success += 1
            tally.acks[tally.phase] += 1
            if tally.phase == "after" and tally.first_ack_after_restore is None:
                tally.first_ack_after_restore = time.monotonic() - tally.restored_at
            return response
        if response.status_code != 503:
            tally.unexpected.append(f"{what}: {response.status_code} {response.text[:200]}")
            raise AssertionError(tally.unexpected[-1])
        failed = True
        tally.check_unavailable(who, what, response, elapsed)
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still 503 after {DEADLINE_SECONDS * 2:.0f} s")
        await asyncio.sleep(RETRY_PAUSE_SECONDS)


async def single_writer(client: httpx.AsyncClient, tally: Tally, writer: str, stop: asyncio.Event) -> None:
    """Create an event, then complete it with a PATCH; each retried until it succeeds."""
    n = 0
    while not stop.is_set():
        event_id = uuid.uuid4()
        response = await _until_done(
            client, tally, writer, "POST", "/activities/log", _event(tally, writer, n, event_id)
        )
        if response.status_code == 200:
            tally.already_there += 1
        tally.acknowledged.add(event_id)
        patch = {"status": "success", "duration_ms": n, "data": {"patched": True}}
        await _until_done(client, tally, writer, "PATCH", f"/activities/{event_id}", patch)
        tally.patched.add(event_id)
        n += 1


async def batch_writer(client: httpx.AsyncClient, tally: Tally, writer: str, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        ids = [uuid.uuid4() for _ in range(BATCH_SIZE)]
        events = [
            {**_event(tally, writer, n + i, event_id), "status": "success"} for i, event_id in enumerate(ids)
        ]
        response = await _until_done(client, tally, writer, "POST", "/activities/batch", {"events": events})
        counts = response.json()
        if counts["created"] + counts["existing"] != BATCH_SIZE:
            tally.unexpected.append(f"batch counts {counts}")
        tally.already_there += counts["existing"]
        tally.acknowledged.update(ids)
        tally.patched.update(ids)  # created as `success`: nothing to complete
        n += BATCH_SIZE


async def reader(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    """Reads go on through it all: each answers 200 or a prompt 503 with Retry-After."""
    paths = ["/activities/recent?limit=20", "/activities/stats", f"/activities/{uuid.uuid4()}"]
    names = ["GET /activities/recent", "GET /activities/stats", "GET /activities/{id}"]
    while not stop.is_set():
        for path, name in zip(paths, names, strict=True):
            started = time.monotonic()
            response = await client.get(path)
            elapsed = time.monotonic() - started
            if response.status_code == 503:
                tally.check_unavailable("reader", name, response, elapsed)
            elif response.status_code not in (200, 404):
                tally.unexpected.append(f"GET {path}: {response.status_code} {response.text[:200]}")
        await asyncio.sleep(0.02)


@dataclass
class StreamWatcher:
    """A stream client that stays through the outage: on a close it reconnects with its last cursor."""

    ws_url: str
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> newest state
    logged: Counter[str] = field(default_factory=Counter)
    cursor: str | None = None
    closes: list[str] = field(default_factory=list)
    refused: int = 0
    resyncs: int = 0

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            url = f"{self.ws_url}/activities/ws"
            if self.cursor is not None:
                url += f"?since={quote(self.cursor)}"
            try:
                async with connect(url, open_timeout=PROMPT_SECONDS, max_size=None) as ws:
                    async for raw in ws:
                        self._take(json.loads(raw))
                    self.closes.append(f"{ws.close_code} {ws.close_reason}")
            except ConnectionClosed as exc:
                self.closes.append(
                    f"{exc.rcvd.code if exc.rcvd else None} {exc.rcvd.reason if exc.rcvd else ''}"
                )
            except (InvalidStatus, OSError, TimeoutError):
                self.refused += 1
            await asyncio.sleep(0.1)

    def _take(self, message: dict[str, Any]) -> None:
        if message["type"] == "resync":
            self.resyncs += 1
            return
        self.cursor = message["cursor"]
        event = message["event"]
        self.seen[event["id"]] = event
        if message["type"] == "activity_logged":
            self.logged[event["id"]] += 1


async def replay_during_outage(ws_url: str, cursor: str) -> tuple[int | None, str, float]:
    """Connect with `since=cursor` while the database is away: the replay cannot be read, so the
    stream must close cleanly, saying why. Returns the close code, its reason, and how long it took."""
    started = time.monotonic()
    async with connect(f"{ws_url}/activities/ws?since={quote(cursor)}", open_timeout=PROMPT_SECONDS) as ws:
        with suppress(ConnectionClosed):
            async for raw in ws:
                raise AssertionError(f"a message during the outage: {raw[:200]!r}")
        return ws.close_code, ws.close_reason or "", time.monotonic() - started


async def resume(ws_url: str, cursor: str, expected: set[str]) -> Counter[str]:
    """Reconnect with `since=cursor` once the database is back, until every event in `expected` has come
    in its final state; return how often each event came as `activity_logged`."""
    logged: Counter[str] = Counter()
    final: set[str] = set()
    async with (
        asyncio.timeout(DEADLINE_SECONDS),
        connect(f"{ws_url}/activities/ws?since={quote(cursor)}", max_size=None) as ws,
    ):
        while not expected <= final:
            message = json.loads(await ws.recv())
            assert message["type"] != "resync", "resync instead of a replay"
            event = message["event"]
            if message["type"] == "activity_logged":
                logged[event["id"]] += 1
            if event.get("status") == "success":
                final.add(event["id"])
    return logged


async def _postgres(url: str) -> asyncpg.Connection:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn, timeout=5)


async def _reset(url: str) -> None:
    conn = await _postgres(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def stored(url: str, run: str) -> tuple[list[uuid.UUID], Counter[str], Counter[str]]:
    """Straight from PostgreSQL, not through the proxy: ids, rows per logical event, statuses."""
    conn = await _postgres(url)
    try:
        rows = await conn.fetch(
            "SELECT id, data->>'key' AS key, status FROM activity_events WHERE data->>'run' = $1", run
        )
    finally:
        await conn.close()
    return (
        [row["id"] for row in rows],
        Counter(row["key"] for row in rows),
        Counter(row["status"] for row in rows),
    )


@pytest.fixture
def proxy(postgres_database: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def service(postgres_database: str, proxy: TcpProxy, live_server: Callable[..., LiveServer]) -> LiveServer:
    """The feed on PostgreSQL through the proxy, on an empty database."""
    asyncio.run(_reset(postgres_database))
    through_proxy = make_url(postgres_database).set(host="127.0.0.1", port=proxy.port)
    settings = Settings(
        database_url=through_proxy.render_as_string(hide_password=False),
        broadcast_url="memory://",
        database_timeout=timedelta(seconds=DATABASE_TIMEOUT_SECONDS),
    )
    return live_server(settings)


async def _wait_for(
    condition: Callable[[], bool], what: str, within: float = DEADLINE_SECONDS, tally: Tally | None = None
) -> None:
    """Poll `condition` until it holds; fail after `within` seconds, or at once when the load saw a
    problem."""
    deadline = time.monotonic() + within
    while not condition():
        assert tally is None or not tally.unexpected, tally.unexpected[:10]
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        await asyncio.sleep(0.02)


async def _health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = await client.get("/health")
    # The header rides along in the answer's dict, so that the callers' messages show it too.
    answer = {**response.json(), "retry_after": response.headers.get("retry-after")}
    return response.status_code, answer, time.monotonic() - started


@asynccontextmanager
async def _tasks(*coroutines: Any) -> AsyncIterator[asyncio.Event]:
    """Run `coroutines` (each given the stop event last) until the block ends, then stop and join them."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(make(stop)) for make in coroutines]
    try:
        yield stop
        stop.set()
        async with asyncio.timeout(DEADLINE_SECONDS * 2):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("mode", ["refuse", "blackhole", "commit"])
async def test_writes_through_an_outage_get_503_then_resume_without_loss_or_duplicate(
    mode: str, service: LiveServer, proxy: TcpProxy, postgres_database: str
) -> None:
    watcher = StreamWatcher(service.ws_url)
    watching = asyncio.create_task(watcher.run())
    try:
        await _outage_under_load(mode, service, proxy, postgres_database, watcher)
    finally:
        watching.cancel()
        with suppress(asyncio.CancelledError):
            await watching


async def _outage_under_load(
    mode: str, service: LiveServer, proxy: TcpProxy, postgres_database: str, watcher: StreamWatcher
) -> None:
    tally = Tally()
    limits = httpx.Limits(max_connections=SINGLE_WRITERS + BATCH_WRITERS + 4)
    timeout = httpx.Timeout(PROMPT_SECONDS * 2)
    async with httpx.AsyncClient(base_url=service.url, timeout=timeout, limits=limits) as client:
        workers: list[Any] = [
            lambda stop, name=f"single-{i}": single_writer(client, tally, name, stop)
            for i in range(SINGLE_WRITERS)
        ]
        workers += [
            lambda stop, name=f"batch-{i}": batch_writer(client, tally, name, stop)
            for i in range(BATCH_WRITERS)
        ]
        workers.append(lambda stop: reader(client, tally, stop))
        async with _tasks(*workers):
            await _wait_for(
                lambda: len(tally.acknowledged) >= ACKS_BEFORE_CUT,
                "acknowledged writes before the cut",
                tally=tally,
            )

            if mode == "commit":
                proxy.cut(after=b"COMMIT")
                assert await asyncio.to_thread(proxy.tripped.wait, DEADLINE_SECONDS), "no COMMIT went by"
            else:
                proxy.cut(blackhole=mode == "blackhole")
            tally.phase = "outage"
            cut_at = time.monotonic()
            cursor = watcher.cursor
            assert cursor is not None
            seen_by_cursor = set(watcher.seen)
            close_code, close_reason, close_took = await replay_during_outage(service.ws_url, cursor)
            assert close_code == 1013, (close_code, close_reason)
            assert "database unavailable" in close_reason, close_reason
            assert close_took < PROMPT_SECONDS, f"the stream closed after {close_took:.1f} s"
            code, health, health_took = await _health(client)
            assert code == 503, health
            assert health["retry_after"] == "1", health
            assert health["status"] == "unavailable", health
            assert "unavailable" in health["database"], health
            assert health_took < PROMPT_SECONDS, f"/health took {health_took:.1f} s"
            # Prometheus still gets an answer, which says the database is down.
            scraped_at = time.monotonic()
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200, scraped.text
            assert "\nactivity_feed_database_up 0.0\n" in scraped.text, scraped.text
            assert "activity_feed_events_total" not in scraped.text
            assert time.monotonic() - scraped_at < PROMPT_SECONDS
            # The outage lasts until every writer and the reader have had their 503s, and a while.
            await _wait_for(
                lambda: (
                    len(tally.refused) == SINGLE_WRITERS + BATCH_WRITERS + 1
                    and time.monotonic() - cut_at >= MIN_OUTAGE_SECONDS
                ),
                "503s for every writer and the reader",
                tally=tally,
            )
            outage_seconds = time.monotonic() - cut_at

            proxy.restore()
            tally.restored_at = time.monotonic()
            tally.phase = "after"
            await _wait_for(
                lambda: tally.acks["after"] >= ACKS_AFTER_RESTORE, "writes after the restore", tally=tally
            )
            code, health, _ = await _health(client)
            assert code == 200, health
            assert health["database"] == "ok", health

        assert not tally.unexpected, tally.unexpected[:10]
        # Every event a writer ended with (each retried to a 2xx) is stored once, and completed.
        ids, rows_per_key, statuses = await stored(postgres_database, tally.run)
        assert len(ids) == len(set(ids))
        assert set(ids) == tally.acknowledged, (
            f"lost {len(tally.acknowledged - set(ids))}, unacknowledged {len(set(ids) - tally.acknowledged)}"
        )
        assert max(rows_per_key.values()) == 1, [key for key, count in rows_per_key.items() if count > 1][:5]
        assert statuses == Counter({"success": len(ids)}), statuses
        assert tally.patched == tally.acknowledged

        # Through the API as well, for a sample.
        for event_id in sorted(tally.acknowledged)[:20]:
            response = await client.get(f"/activities/{event_id}")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "success", response.text

    # The stream: every acknowledged event, in its final state, logged at most once.
    await _wait_for(
        lambda: all(watcher.seen.get(str(i), {}).get("status") == "success" for i in tally.acknowledged),
        "every event in its final state on the stream",
        15,
    )
    assert max(watcher.logged.values()) == 1, [i for i, count in watcher.logged.items() if count > 1][:5]
    assert not watcher.resyncs
    # The client closed during the outage comes back with its cursor and misses nothing.
    missed = {str(event_id) for event_id in tally.acknowledged} - seen_by_cursor
    replayed = await resume(service.ws_url, cursor, missed)
    assert max(replayed.values()) == 1, [i for i, count in replayed.items() if count > 1][:5]
    print(
        f"\n[outage {mode}] outage {outage_seconds:.1f} s; acknowledged {len(tally.acknowledged)} "
        f"(before {tally.acks['before']}, "
        f"during {tally.acks['outage']}, after {tally.acks['after']} requests), found {len(ids)}, "
        f"duplicates 0; 503s {dict(tally.unavailable)}, slowest {tally.slowest_503:.2f} s; "
        f"retried to success {tally.retried_to_success}, found already committed {tally.already_there}; "
        f"first write {tally.first_ack_after_restore or 0:.2f} s after restore; health 503 in "
        f"{health_took:.2f} s; stream during the outage closed {close_code} in {close_took:.2f} s, "
        f"{len(missed)} missed events replayed after; watcher closes {watcher.closes}; "
        f"proxy links {proxy.accepted} accepted, {proxy.refused} refused"
    )


def test_feed_client_retries_through_an_outage_and_delivers_everything(
    service: LiveServer, proxy: TcpProxy, postgres_database: str
) -> None:
    run = uuid.uuid4().hex
    client = FeedClient(service.url, batch_size=20, max_backoff=0.2, max_retry_seconds=None)
    try:
        ids = [
            client.log(tool_name="outage-client", data={"run": run, "key": f"before/{n}"}) for n in range(20)
        ]
        assert client.flush(timeout=DEADLINE_SECONDS)

        proxy.cut()
        for n in range(200):
            event_id = client.log(tool_name="outage-client", data={"run": run, "key": f"during/{n}"})
            ids.append(event_id)
            if n % 2:
                client.update(event_id, status="success", duration_ms=n)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while client.retried == 0:
            assert time.monotonic() < deadline, "FeedClient did not retry during the outage"
            time.sleep(0.02)
        assert client.flush(timeout=0.5) is False  # nothing gets through while the database is away
        retried_during = client.retried

        proxy.restore()
        assert client.flush(timeout=DEADLINE_SECONDS)
        assert all(count == 0 for count in client.dropped.values()), client.dropped
        assert client.sent >= len(ids)
    finally:
        client.close(timeout=1)

    stored_ids, rows_per_key, statuses = asyncio.run(stored(postgres_database, run))
    assert sorted(map(str, stored_ids)) == sorted(ids)
    assert max(rows_per_key.values()) == 1
    assert statuses == Counter({"success": 100, "pending": 120}), statuses
    print(
        f"\n[outage FeedClient] logged {len(ids)}, stored {len(stored_ids)}, retried {client.retried} "
        f"({retried_during} during the outage), sent {client.sent}, dropped {client.dropped}"
    )

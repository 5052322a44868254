"""What every benchmark shares: the server in its own process on a free port, the load generator in
another, RSS and CPU readings, realistic events, fresh PostgreSQL databases, and the result record each
benchmark returns."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from activity_feed.ids import uuid7
from activity_feed.store.engine import create_reader_engine, create_sqlite_writer_engine
from activity_feed.store.migrate import upgrade
from bench.loadgen import ID_MARK

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


class Skipped(Exception):
    """Raised by a benchmark that cannot run here (a service it needs does not answer): `python -m bench`
    prints the reason in the summary and counts it neither as met nor as a failure."""


@dataclass(slots=True)
class Check:
    """One figure, its baseline from the same run, and whether the issue's target is met."""

    benchmark: str
    name: str
    value: float
    unit: str
    target: str
    met: bool | None
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: float | None, unit: str = "") -> str:
    """A figure as people read it: thousands separated, a sensible number of decimals."""
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident set size of process `pid` in MiB, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (/proc/<pid>/stat)."""
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy so far (/proc/stat), in seconds."""
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    ticks = [int(field) for field in Path("/proc/stat").read_text().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class ServerProcess:
    """The service in a subprocess on a free port: `bench.server` (the app plus the bare route) by
    default, or the real `activity-feed serve` with `cli=True` (and then `broadcast_url`, the bus between
    instances). Ready when `/health` answers 200 with the bus `ok` (for Redis: subscribed)."""

    def __init__(
        self,
        database_url: str,
        *,
        cli: bool = False,
        broadcast_url: str | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if broadcast_url is not None and not cli:
            raise ValueError("a broadcast URL needs cli=True: bench.server has only the memory bus")
        self.database_url = database_url
        self.cli = cli
        self.broadcast_url = broadcast_url
        self.log_path = log_path
        self.env = None if env is None else {**os.environ, **env}  # settings for the server, on top
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        common = ["--database-url", self.database_url, "--port", str(self.port), "--log-level", "warning"]
        if self.cli:
            bus = ["--broadcast-url", self.broadcast_url] if self.broadcast_url is not None else []
            return [str(Path(sys.executable).with_name("activity-feed")), "serve", *common, *bus]
        return [sys.executable, "-m", "bench.server", *common]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def __enter__(self) -> ServerProcess:
        self.port = free_port()
        if self.log_path is None:
            self.process = subprocess.Popen(
                self._command(), cwd=PROJECT_ROOT, env=self.env, stdout=subprocess.DEVNULL
            )
        else:
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    self._command(), cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=log
                )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.process.returncode}{self._log_tail()}")
                answer: dict[str, Any] | None = None
                try:
                    response = client.get(f"{self.url}/health")
                    answer = response.json()
                    if response.status_code == 200 and answer is not None and answer.get("bus", "ok") == "ok":
                        return
                except (httpx.TransportError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the server was not ready within {START_TIMEOUT_SECONDS} s (/health: {answer})"
                        f"{self._log_tail()}"
                    )
                time.sleep(0.05)

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return ":\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # uvicorn shuts down gracefully: the writer drains
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


BENCH_POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_POSTGRES_CONNECT_TIMEOUT_SECONDS = 3.0


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


async def _postgres_admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=_POSTGRES_CONNECT_TIMEOUT_SECONDS)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def check_postgres(url: str = BENCH_POSTGRES_URL) -> None:
    """`Skipped`, with the reason, when PostgreSQL does not answer at `url` or asyncpg is not installed."""
    try:
        import asyncpg  # noqa: F401 - only whether it is there
    except ImportError as exc:
        raise Skipped(f"asyncpg is not installed ({exc}): pip install '.[postgres]'") from exc
    try:
        asyncio.run(_postgres_admin(url, "SELECT 1"))
    except Exception as exc:  # boundary: whatever the reason, the benchmark cannot run here
        shown = make_url(url).render_as_string(hide_password=True)
        raise Skipped(
            f"PostgreSQL does not answer at {shown} ({type(exc).__name__}: {exc}); set BENCH_POSTGRES_URL"
        ) from exc


@contextmanager
def postgres_database(label: str, url: str = BENCH_POSTGRES_URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server of `url` (whose user may create databases) for
    the length of the block, `activity_feed_bench_<label>_<random>`, dropped afterwards; yields its URL."""
    name = f"activity_feed_bench_{label}_{secrets.token_hex(4)}"
    asyncio.run(_postgres_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(url, name)
    finally:
        # WITH (FORCE): a connection a crashed server left behind must not keep the database alive.
        asyncio.run(_postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def check_redis(url: str) -> None:
    """`Skipped`, with the reason, when Redis does not answer a PING at `url` or redis-py is missing."""
    try:
        from redis.asyncio import Redis
    except ImportError as exc:
        raise Skipped(f"redis-py is not installed ({exc}): pip install '.[redis]'") from exc
    from activity_feed.hub.backends.redis import display_url, split_channel

    async def ping() -> None:
        client = Redis.from_url(split_channel(url)[0], socket_connect_timeout=2.0, socket_timeout=2.0)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except Exception as exc:  # boundary: whatever the reason, the benchmark cannot run here
        shown = display_url(url)
        reason = f"{type(exc).__name__}: {exc}"
        raise Skipped(f"Redis does not answer at {shown} ({reason}); set BENCH_REDIS_URL") from exc


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator (bench/loadgen.py) in its own process; return its result."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{completed.stderr.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def require_no_errors(result: dict[str, Any], what: str) -> None:
    if result["errors"]:
        raise RuntimeError(
            f"{what}: {result['errors']} of {result['completed']} requests failed "
            f"({result['statuses']}); first: {result['error_sample']}"
        )


def sequential_latencies(server: ServerProcess, path: str, *, warmup: int, count: int) -> list[float]:
    """Milliseconds of each of `count` GETs of `path`, one at a time on one connection, after `warmup`."""
    spec = {
        "port": server.port,
        "connections": 1,
        "requests": [{"method": "GET", "path": path}],
        "warmup_requests": warmup,
        "count": count,
        "return_latencies": True,
    }
    result = run_load(spec)
    require_no_errors(result, f"GET {path}")
    latencies: list[float] = result["latencies_ms"]
    return latencies


# Realistic events: an MCP server for a property-management app, driven from Claude Desktop, plus the
# HTTP API it sits in front of. About 10% errors, spread evenly.

TOOL_NAMES = (
    "list_properties",
    "get_property",
    "search_tenants",
    "get_tenant",
    "list_work_orders",
    "create_work_order",
    "update_work_order",
    "get_lease",
    "list_leases",
    "record_payment",
    "list_payments",
    "send_tenant_message",
    "schedule_inspection",
    "GET /api/properties",
    "GET /api/tenants/{tenant_id}",
    "POST /api/work-orders",
    "PATCH /api/work-orders/{order_id}",
    "GET /api/payments",
)
USER_SOURCES = ("Claude Desktop", "Claude Desktop", "claude-code", "web-ui", "scheduler")
EVENT_TYPES = ("tool_call",) * 12 + ("api_request",) * 5 + ("tool_result", "voice_command", "system_event")
ERROR_MESSAGES = (
    "tenant not found",
    "property 4411 is archived",
    "upstream timeout after 30 s",
    "validation failed: due_date must be in the future",
    "permission denied for work order",
)


def event_pool(size: int = 4096, seed: int = 7) -> list[dict[str, Any]]:
    """`size` varied events (no id, no timestamp), ~10% errors; deterministic for a given seed."""
    rng = random.Random(seed)
    pool = []
    for i in range(size):
        tool = rng.choice(TOOL_NAMES)
        roll = rng.random()
        status = "error" if roll < 0.10 else "pending" if roll < 0.15 else "success"
        data: dict[str, Any] = {
            "arguments": {"property_id": rng.randrange(1, 5000), "limit": rng.choice((10, 20, 50))},
            "result_preview": f"{rng.randrange(0, 200)} items" if status == "success" else None,
            "client": {"name": "Claude Desktop", "version": "0.9.3"},
        }
        pool.append(
            {
                "tool_name": tool,
                "user_source": rng.choice(USER_SOURCES),
                "event_type": "api_request" if tool[0].isupper() else rng.choice(EVENT_TYPES),
                "status": status,
                "data": data,
                "duration_ms": round(rng.lognormvariate(3.5, 1.0), 3) if status != "pending" else None,
                "error_message": rng.choice(ERROR_MESSAGES) if status == "error" else None,
                "correlation_id": f"conv-{i // 8:05d}",
            }
        )
    return pool


def wire_body(events: Sequence[dict[str, Any]], timestamp: datetime) -> list[dict[str, Any]]:
    """Events as a client sends them: a fresh id per request (the `__ID__` mark) and a timestamp."""
    stamp = timestamp.isoformat()
    return [{"id": ID_MARK, "timestamp": stamp, **event} for event in events]


def log_requests(path: str, count: int = 64) -> list[dict[str, Any]]:
    """`count` different `POST path` requests, each one event as `POST /activities/log` takes it."""
    now = datetime.now(UTC)
    return [
        {"method": "POST", "path": path, "body": json.dumps(body)}
        for body in wire_body(event_pool(count, seed=11), now)
    ]


def batch_requests(per_request: int = 1000, variants: int = 4) -> list[dict[str, Any]]:
    """`variants` different `POST /activities/batch` bodies of `per_request` events each."""
    pool = event_pool(per_request * variants, seed=13)
    now = datetime.now(UTC)
    return [
        {
            "method": "POST",
            "path": "/activities/batch",
            "body": json.dumps({"events": wire_body(pool[i * per_request : (i + 1) * per_request], now)}),
        }
        for i in range(variants)
    ]


def writer_rows(
    pool: Sequence[dict[str, Any]],
    *,
    first_seq: int,
    count: int,
    start: datetime,
    step: timedelta,
    updated_at: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of `activity_events` with the column values the group-commit writer writes for an event."""
    size = len(pool)
    for offset in range(count):
        seq = first_seq + offset
        event = pool[seq % size]
        timestamp = start + step * offset
        yield {
            "seq": seq,
            "id": uuid7(),
            "timestamp": timestamp,
            "tool_name": event["tool_name"],
            "user_source": event["user_source"],
            "event_type": event["event_type"],
            "status": event["status"],
            "data": event["data"],
            "duration_ms": event["duration_ms"],
            "error_message": event["error_message"],
            "correlation_id": event["correlation_id"],
            "updated_at": updated_at or timestamp,
            "change_seq": seq,
        }


def environment() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@contextmanager
def migrated_writer(database: Path) -> Iterator[Engine]:
    """A fresh, migrated SQLite database and the product's own writer engine for it (stdlib driver,
    the same pragmas and BEGIN IMMEDIATE), so raw inserts are measured on the path the service uses."""
    url = sqlite_url(database)

    async def migrate() -> None:
        reader = create_reader_engine(url)
        try:
            await upgrade(reader)
        finally:
            await reader.dispose()

    asyncio.run(migrate())
    writer = create_sqlite_writer_engine(url)
    try:
        yield writer
    finally:
        writer.dispose()

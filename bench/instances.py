"""instances: latency from a `POST /activities/log` on instance A to 100 WebSocket clients spread over two
instances, A and B (`activity-feed serve` on one PostgreSQL database, Redis as the bus), against the same
load on one instance with the memory bus. Targets: p99 over A and B at most 50 ms, and
at most twice the single instance's.

Latency is per client per event, as `bench/delivery_probe.py` measures it: probe events posted open-loop
at 500 per second from this process, the 100 clients in other processes (`bench/stream_clients.py`), the
servers in others still. Over A and B, 50 clients are on each; the event reaches A's own clients through
Redis too (A publishes after commit and fans out what its subscription brings back), and B's the same way.

Both set-ups are the real `activity-feed serve`, each on a fresh PostgreSQL database created for the run
and dropped after it, so they differ only by the bus and the second instance. Both run throughout, each
with its clients connected (idle clients of the set-up not being measured cost nothing: no event reaches
them), and are measured by turns, in rounds of a few seconds in the order single, A+B, A+B, single,
single, ..., so that the machine's drift (other processes on its two cores) falls on both alike; the
rounds of each are pooled. Skipped, with the reason, when PostgreSQL or Redis does not answer.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.delivery_probe import CLIENTS, DeliveryBench, Latencies, Samples, run_async, stream_url
from bench.harness import (
    Check,
    ServerProcess,
    check_postgres,
    check_redis,
    cpu_seconds,
    machine_busy_seconds,
    postgres_database,
    say,
)

NAME = "instances"
TITLE = "p99 delivery latency, POST on A to 100 clients over A and B (PostgreSQL, Redis) vs one instance"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RATE = 500.0  # events/s
WARMUP_SECONDS = 2.0  # on each set-up, before the first round
SECONDS = 3.0  # per measured round
ROUNDS = 10  # 5 of each, in the order single, A+B, A+B, single, single, ...
SETTLE_SECONDS = 0.3  # between rounds: the last deliveries of one set-up are not in the next one's
CLIENT_PROCESSES = 2  # 50,000 messages/s in all: one process alone would add its own delay
TARGET_RATIO = 2.0
TARGET_P99_MS = 50.0
MULTI, SINGLE = "A+B", "single"


@dataclass
class _Setup:
    """One of the two set-ups: its servers (the first takes the POSTs), its clients and poster."""

    label: str
    servers: list[ServerProcess]
    bench: DeliveryBench
    rounds: list[int] = field(default_factory=list)
    server_cpu_seconds: float = 0.0  # in its rounds, all its servers together
    other_cpu_seconds: float = 0.0  # the rest of the machine in its rounds (PostgreSQL, Redis, the kernel)

    def pids(self) -> list[int]:
        return [server.pid for server in self.servers] + self.bench.client_pids


@dataclass(frozen=True, slots=True)
class _Comparison:
    pooled: dict[str, Latencies]
    rounds: list[tuple[str, Latencies]]  # in the order measured
    setups: dict[str, dict[str, Any]]
    load_average: tuple[float, float]  # the machine's 1-minute load average before and after the rounds


async def _health(http: httpx.AsyncClient, server: ServerProcess) -> dict[str, Any]:
    response = await http.get(f"{server.url}/health")
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def _check_servers(http: httpx.AsyncClient, setup: _Setup) -> list[dict[str, Any]]:
    """Every server of `setup` healthy, its bus `ok`, and its share of the clients connected."""
    answers = [await _health(http, server) for server in setup.servers]
    expected = CLIENTS // len(setup.servers)
    for server, answer in zip(setup.servers, answers, strict=True):
        if answer.get("bus") != "ok" or answer.get("stream_clients") != expected:
            raise RuntimeError(
                f"{setup.label}: the server at {server.url} is not as measured ({expected} stream clients, "
                f"bus ok): /health says {answer}"
            )
    return answers


def _others_cpu(setups: Sequence[_Setup]) -> float:
    """CPU time of the machine so far, less that of this benchmark's own processes."""
    ours = [os.getpid()] + [pid for setup in setups for pid in setup.pids()]
    return machine_busy_seconds() - sum(cpu_seconds(pid) for pid in ours)


async def _compare(multi: Sequence[ServerProcess], single: ServerProcess) -> _Comparison:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10.0))
        setups: dict[str, _Setup] = {}
        for label, servers in ((SINGLE, [single]), (MULTI, list(multi))):
            bench = DeliveryBench(
                [stream_url(server.url) for server in servers],
                f"{servers[0].url}/activities/log",
                rate=RATE,
                clients=CLIENTS,
                client_processes=CLIENT_PROCESSES,
            )
            await stack.enter_async_context(bench)
            setups[label] = _Setup(label, servers, bench)
        for setup in setups.values():
            await _check_servers(http, setup)
            await setup.bench.post_steadily(WARMUP_SECONDS)
        order: list[str] = []
        load_before = os.getloadavg()[0]
        for number in range(ROUNDS):
            label = (SINGLE, MULTI, MULTI, SINGLE)[number % 4]
            setup = setups[label]
            await asyncio.sleep(SETTLE_SECONDS)
            cpu_before = sum(cpu_seconds(server.pid) for server in setup.servers)
            others_before = _others_cpu(list(setups.values()))
            await setup.bench.post_steadily(SECONDS, f"{label} {number}")
            setup.server_cpu_seconds += sum(cpu_seconds(server.pid) for server in setup.servers) - cpu_before
            setup.other_cpu_seconds += _others_cpu(list(setups.values())) - others_before
            setup.rounds.append(number)
            order.append(label)
        load_after = os.getloadavg()[0]
        # Still as measured at the end: no instance lost its subscription to Redis, no client was dropped.
        health = {label: await _check_servers(http, setup) for label, setup in setups.items()}

    def samples(setup: _Setup, numbers: Sequence[int]) -> Samples:
        return setup.bench.samples(*(f"{setup.label} {n}" for n in numbers))

    return _Comparison(
        pooled={label: samples(setup, setup.rounds).summary() for label, setup in setups.items()},
        rounds=[(label, samples(setups[label], [n]).summary()) for n, label in enumerate(order)],
        setups={
            label: {
                "servers": len(setup.servers),
                "rounds": setup.rounds,
                "server_cpu_seconds": setup.server_cpu_seconds,
                "other_cpu_seconds": setup.other_cpu_seconds,
                "client_load": setup.bench.client_load(),
                "health_after": health[label],
            }
            for label, setup in setups.items()
        },
        load_average=(load_before, load_after),
    )


def _report(comparison: _Comparison) -> None:
    measured = SECONDS * ROUNDS / 2
    for label, result in comparison.pooled.items():
        setup = comparison.setups[label]
        say(
            f"  {label:>6}: p50 {result.p50_ms:.2f} ms, p90 {result.p90_ms:.2f}, p99 {result.p99_ms:.2f}, "
            f"max {result.max_ms:.1f} over {result.deliveries:,} deliveries ({result.lost} lost)"
        )
        load = setup["client_load"]
        say(
            f"          POST answered p50 {result.post_p50_ms:.2f} ms, p99 {result.post_p99_ms:.2f}; arrival "
            f"after the event's first client p99 {result.spread_p99_ms:.2f}; server CPU "
            f"{setup['server_cpu_seconds'] / measured:.2f} s/s, rest of the machine "
            f"{setup['other_cpu_seconds'] / measured:.2f} s/s; clients {load['cpu_per_second']} CPU s/s, "
            f"{load['frames_per_read']} frames per read"
        )
    say("  p99 by round: " + ", ".join(f"{label} {result.p99_ms:.1f}" for label, result in comparison.rounds))
    before, after = comparison.load_average
    say(f"  load average (1 min): {before:.2f} before the rounds, {after:.2f} after ({os.cpu_count()} cores)")


def _measure() -> _Comparison:
    check_postgres()
    check_redis(REDIS_URL)
    # A channel of its own, so that no other deployment on this Redis (tests, another run) is heard.
    redis_url = f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}channel=bench-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        shared = stack.enter_context(postgres_database("multi"))
        alone = stack.enter_context(postgres_database("single"))
        multi = [
            stack.enter_context(
                ServerProcess(
                    shared, cli=True, broadcast_url=redis_url, log_path=folder / f"instance-{name}.log"
                )
            )
            for name in "AB"
        ]
        single = stack.enter_context(ServerProcess(alone, cli=True, log_path=folder / "server-single.log"))
        return run_async(_compare(multi, single))


def run() -> list[Check]:
    comparison = _measure()
    _report(comparison)
    spread, alone = comparison.pooled[MULTI], comparison.pooled[SINGLE]
    # A lost delivery, or a client the server dropped, would make the figures meaningless whatever they say.
    valid = (
        spread.lost == 0
        and alone.lost == 0
        and all(setup["client_load"]["closed_by_server"] == 0 for setup in comparison.setups.values())
    )
    details = {
        "latencies": {label: asdict(result) for label, result in comparison.pooled.items()},
        "rounds": [{"setup": label, **asdict(result)} for label, result in comparison.rounds],
        "setups": comparison.setups,
        "clients": CLIENTS,
        "rate": RATE,
        "seconds_per_round": SECONDS,
        "valid": valid,
        "load_average": comparison.load_average,
    }
    ratio = spread.p99_ms / alone.p99_ms
    baseline_name = "one instance, memory bus"
    return [
        Check(
            benchmark=NAME,
            name=f"p99 POST on A to {CLIENTS} clients on A+B (Redis)",
            value=spread.p99_ms,
            unit="ms",
            baseline=alone.p99_ms,
            baseline_name=baseline_name,
            ratio=ratio,
            target=f"ratio <= {TARGET_RATIO}",
            met=ratio <= TARGET_RATIO and valid,
            details=details,
        ),
        Check(
            benchmark=NAME,
            name=f"p99 POST on A to {CLIENTS} clients on A+B (Redis), absolute",
            value=spread.p99_ms,
            unit="ms",
            target=f"<= {TARGET_P99_MS:g} ms",
            met=spread.p99_ms <= TARGET_P99_MS and valid,
        ),
        Check(
            benchmark=NAME,
            name=f"p50 POST on A to {CLIENTS} clients on A+B (Redis)",
            value=spread.p50_ms,
            unit="ms",
            baseline=alone.p50_ms,
            baseline_name=baseline_name,
            ratio=spread.p50_ms / alone.p50_ms,
            target="-",
            met=None,
        ),
    ]

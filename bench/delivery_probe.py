"""The core of the delivery measurements: probe events posted at a steady rate, and their arrival at
stream clients in other processes (`bench/stream_clients.py`).

Latency is per client per event: the arrival time at the client minus the time the POST started. The
poster puts a sequence number in each event's `data` and notes when it started the POST; the clients
note when each message arrived. Both read `time.monotonic()`, one clock for every process of the
machine, so every server and client must run on the machine of the poster. Events are posted open-loop
(each POST starts on schedule, whether or not the ones before have been answered), over a minimal
HTTP/1.1 client on raw asyncio protocols, like `bench/loadgen.py`, so that the poster costs little and
starts each POST on time.

`measure_delivery` is the entry point: any list of stream URLs (the clients are spread over them in
turn) and a post URL, at any rate. For several instances (a POST on instance A delivered to clients
spread over A and B through the Redis bus, against a single instance with the memory bus)::

    a, b, single = ...  # http://127.0.0.1:<port> of each server (bench.harness.ServerProcess)
    spread, _ = run_async(measure_delivery([stream_url(a), stream_url(b)], f"{a}/activities/log", rate=500))
    alone, _ = run_async(measure_delivery([stream_url(single)], f"{single}/activities/log", rate=500))
    spread.p99_ms, alone.p99_ms

`bench/instances.py` measures exactly that, with `DeliveryBench` directly, so that rounds of both set-ups
can alternate with their clients connected throughout and be pooled.

The second value returned is the client processes' load (`DeliveryBench.client_load`): if they were
busy, the clients' own delays are in the figures; pass `client_processes=2`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import orjson

from bench.harness import PROJECT_ROOT, event_pool

CLIENTS = 100
WARMUP_SECONDS = 1.5
SECONDS = 3.0
DRAIN_SECONDS = 1.0  # after the last POST: a delivery later than this counts as lost
PROBE_TOOL = "delivery-probe"  # the events measured, and the clients' stream filter
_READY_TIMEOUT_SECONDS = 60.0
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Latencies:
    """Delivery latencies over every (client, event) pair of some rounds, in ms."""

    deliveries: int  # (client, event) pairs that arrived
    lost: int  # pairs that never arrived (within DRAIN_SECONDS of the last POST)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    post_p50_ms: float  # the POSTs' own round trip, for comparison
    post_p99_ms: float
    # How long after the event's first client the others got it: the fan-out's own share.
    spread_p99_ms: float


@dataclass(slots=True)
class Samples:
    """Raw measurements in ms, to pool over rounds and servers before taking percentiles."""

    latencies: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    spreads: list[float] = field(default_factory=list)
    expected: int = 0  # (client, event) pairs posted

    def __add__(self, other: Samples) -> Samples:
        return Samples(
            self.latencies + other.latencies,
            self.round_trips + other.round_trips,
            self.spreads + other.spreads,
            self.expected + other.expected,
        )

    def summary(self) -> Latencies:
        values = sorted(self.latencies)
        trips = sorted(self.round_trips)
        spreads = sorted(self.spreads)
        return Latencies(
            deliveries=len(values),
            lost=self.expected - len(values),
            p50_ms=percentile(values, 0.50),
            p90_ms=percentile(values, 0.90),
            p99_ms=percentile(values, 0.99),
            max_ms=values[-1] if values else float("nan"),
            post_p50_ms=percentile(trips, 0.50),
            post_p99_ms=percentile(trips, 0.99),
            spread_p99_ms=percentile(spreads, 0.99),
        )


def percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def stream_url(server_url: str) -> str:
    """The stream's `ws://` URL for a server's `http://` URL."""
    return "ws" + server_url.removeprefix("http") + "/activities/ws"


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop, as the server and the clients do, so that the poster stays cheap."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)


class _PostConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; the answer is read by Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(_HEAD_END)
        if end < 0 or self.answer is None:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(_CONTENT_LENGTH)
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + len(_CONTENT_LENGTH) : stop if stop >= 0 else len(head)]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if not self.answer.done():
            self.answer.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError(f"the server closed a POST connection: {exc}"))


class Poster:
    """`POST` JSON bodies to one URL over a pool of keep-alive connections, opened as needed."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"not an http:// URL: {url}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.idle: list[_PostConnection] = []
        self.all: list[_PostConnection] = []

    async def post(self, body: bytes) -> tuple[float, int, bytes]:
        """Send `body`; return when it was handed to a connection (`time.monotonic()`), the status and the
        answer's body. The time is taken after a connection is found: waiting for one is the poster's
        delay, not the server's."""
        # The server closes connections idle for a while (uvicorn: 5 s); those are left behind.
        while self.idle and self.idle[-1].closed:
            self.idle.pop()
        reused = bool(self.idle)
        connection = self.idle.pop() if reused else await self._open()
        request = self.head + str(len(body)).encode() + b"\r\n\r\n" + body
        started = time.monotonic()
        try:
            status, answer = await connection.request(request)
        except ConnectionError:
            if not reused or connection.buffer:
                raise
            # The server closed this idle connection as the request went out (its close had not
            # arrived yet): it read nothing, so the request goes again on a new connection, as HTTP
            # clients do with a stale keep-alive connection.
            connection = await self._open()
            started = time.monotonic()
            status, answer = await connection.request(request)
        self.idle.append(connection)
        return started, status, answer

    async def _open(self) -> _PostConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_PostConnection, self.host, self.port)
        self.all.append(connection)
        return connection

    def close(self) -> None:
        for connection in self.all:
            if connection.transport is not None:
                connection.transport.close()


class _ClientProcess:
    """`python -m bench.stream_clients` with one URL per client."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.stream_clients",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps({"urls": self.urls}).encode() + b"\n")
        await stdin.drain()
        if not await asyncio.wait_for(stdout.readline(), _READY_TIMEOUT_SECONDS):
            _, stderr = await self.process.communicate()
            raise RuntimeError(
                f"the stream clients did not connect:\n{stderr.decode(errors='replace')[-3000:]}"
            )

    async def finish(self) -> dict[str, Any]:
        assert self.process is not None
        stdout, stderr = await self.process.communicate(b"stop\n")
        if self.process.returncode != 0:
            raise RuntimeError(f"the stream clients failed:\n{stderr.decode(errors='replace')[-3000:]}")
        result: dict[str, Any] = json.loads(stdout)
        return result

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


@dataclass(slots=True)
class _Posted:
    starts: dict[int, float] = field(default_factory=dict)  # seq -> when its POST started
    round_trips: list[float] = field(default_factory=list)


class DeliveryBench:
    """`clients` stream clients spread over `stream_urls` in turn (in `client_processes` processes), and a
    poster that sends probe events to `post_url` at `rate` per second. Use as `async with`; the samples of
    each label are there once it has exited.

    The clients' stream is filtered on the probe's `tool_name`, so other events posted meanwhile (to fill
    a stalled client, say) reach none of them."""

    def __init__(
        self,
        stream_urls: Sequence[str],
        post_url: str,
        *,
        rate: float,
        clients: int = CLIENTS,
        client_processes: int = 1,
    ) -> None:
        if not stream_urls:
            raise ValueError("no stream URL")
        self.rate = rate
        self.clients = clients
        urls = [with_query(stream_urls[i % len(stream_urls)], tool_name=PROBE_TOOL) for i in range(clients)]
        self.processes = [_ClientProcess(urls[p::client_processes]) for p in range(client_processes)]
        self.poster = Poster(post_url)
        self.pool = event_pool(512, seed=17)
        self.seq = 0
        self.posted: dict[str, _Posted] = {}
        self.post_errors: list[str] = []
        self.received: list[dict[str, Any]] = []  # one result per client process

    async def __aenter__(self) -> DeliveryBench:
        try:
            await asyncio.gather(*(process.start() for process in self.processes))
        except BaseException:
            self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                await asyncio.sleep(DRAIN_SECONDS)
                self.received = list(await asyncio.gather(*(p.finish() for p in self.processes)))
        finally:
            self._close()

    @property
    def client_pids(self) -> list[int]:
        return [pid for process in self.processes if (pid := process.pid) is not None]

    def _close(self) -> None:
        for process in self.processes:
            process.kill()
        self.poster.close()

    async def post_steadily(self, seconds: float, label: str | None = None) -> None:
        """Post probe events at `rate` for `seconds`, open-loop; they count under `label` (warm-up when
        None). Returns once every POST has been answered."""
        posted = self.posted.setdefault(label, _Posted()) if label is not None else None
        began = time.monotonic()
        tasks = []
        for index in range(round(seconds * self.rate)):
            delay = began + index / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.seq += 1
            tasks.append(asyncio.create_task(self._post(self.seq, posted)))
        await asyncio.gather(*tasks)
        if self.post_errors:
            raise RuntimeError(f"{len(self.post_errors)} POSTs failed; first: {self.post_errors[0]}")

    async def _post(self, seq: int, posted: _Posted | None) -> None:
        event = self.pool[seq % len(self.pool)]
        body = orjson.dumps({**event, "tool_name": PROBE_TOOL, "data": {**event["data"], "seq": seq}})
        started, status, answer = await self.poster.post(body)
        if status != 201:
            self.post_errors.append(f"{status}: {answer[:300].decode(errors='replace')}")
        elif posted is not None:
            posted.starts[seq] = started
            posted.round_trips.append((time.monotonic() - started) * 1000)

    def samples(self, *labels: str) -> Samples:
        """What was measured for the events posted under any of `labels`."""
        starts: dict[int, float] = {}
        samples = Samples()
        for label in labels:
            starts.update(self.posted[label].starts)
            samples.round_trips += self.posted[label].round_trips
        samples.expected = len(starts) * self.clients
        first: dict[int, float] = {}  # seq -> its earliest arrival at any client
        arrivals: list[tuple[int, float]] = []
        for result in self.received:
            for client in result["clients"]:
                for seq, arrived in zip(client["seqs"], client["times"], strict=True):
                    started = starts.get(seq)
                    if started is None:
                        continue
                    samples.latencies.append((arrived - started) * 1000)
                    arrivals.append((seq, arrived))
                    first[seq] = min(arrived, first.get(seq, arrived))
        samples.spreads = [(arrived - first[seq]) * 1000 for seq, arrived in arrivals]
        return samples

    def client_load(self) -> dict[str, Any]:
        """How busy each client process was while recording (CPU seconds per second), and how many frames
        a read of a socket brought: about 1 while the clients keep up, more when messages wait for them
        (or the server sends several at once)."""
        return {
            "cpu_per_second": [round(r["cpu_seconds"] / r["wall_seconds"], 3) for r in self.received],
            "frames_per_read": [round(r["frames"] / max(1, r["reads"]), 3) for r in self.received],
            "closed_by_server": sum(
                1 for r in self.received for c in r["clients"] if c["close_code"] is not None
            ),
        }


async def measure_delivery(
    stream_urls: Sequence[str],
    post_url: str,
    *,
    rate: float,
    clients: int = CLIENTS,
    seconds: float = SECONDS,
    warmup_seconds: float = WARMUP_SECONDS,
    client_processes: int = 1,
) -> tuple[Latencies, dict[str, Any]]:
    """Delivery latency from POSTs to `post_url` at `rate` per second to `clients` stream clients spread
    over `stream_urls` in turn (`ws://.../activities/ws`), measured for `seconds` after a warm-up; and the
    client processes' load (`DeliveryBench.client_load`)."""
    async with DeliveryBench(
        stream_urls, post_url, rate=rate, clients=clients, client_processes=client_processes
    ) as bench:
        await bench.post_steadily(warmup_seconds)
        await bench.post_steadily(seconds, label="measured")
    return bench.samples("measured").summary(), bench.client_load()

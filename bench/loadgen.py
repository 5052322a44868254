"""The load generator, run in a process of its own (`python -m bench.loadgen`, spec as JSON on stdin).

A minimal HTTP/1.1 keep-alive client on raw asyncio protocols: each connection has one request in
flight, reads the whole response (by Content-Length), and sends the next one from the same callback,
without coroutines, header parsing libraries or copies beyond one buffer. That keeps the client far
cheaper than the server it measures, so it is not what limits the figure.

Spec (all keys but `port` and `requests` optional)::

    {"port": 8000, "connections": 32,
     "requests": [{"method": "POST", "path": "/x", "body": "{\"id\": \"__ID__\"}"}, ...],
     "warmup_seconds": 1, "seconds": 5}            # time mode, or:
     "warmup_requests": 50, "count": 300}          # count mode (counted in send order)

Each `__ID__` in a body becomes a fresh time-ordered UUID (v7) per request, as a client would send.
The requests are sent round-robin. The result (JSON on stdout): completed requests, elapsed seconds,
requests per second, error count, status counts and latency percentiles of the measured requests (and
every latency with `"return_latencies": true`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections import Counter
from typing import Any, cast

ID_MARK = "__ID__"
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


def uuid7_str() -> str:
    """A version 7 UUID as text: 48 bits of Unix milliseconds, then random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | (0x7 << 76)
    value = value & ~(0x3 << 62) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Template:
    """One request, pre-encoded: the head and the body split at each `__ID__` placeholder."""

    def __init__(self, method: str, path: str, body: str | None) -> None:
        parts = [part.encode() for part in (body or "").split(ID_MARK)]
        length = sum(len(part) for part in parts) + 36 * (len(parts) - 1)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        self.parts = [head.encode() + b"\r\n" + parts[0], *parts[1:]]

    def render(self) -> bytes:
        if len(self.parts) == 1:
            return self.parts[0]
        out = [self.parts[0]]
        for part in self.parts[1:]:
            out.append(uuid7_str().encode())
            out.append(part)
        return b"".join(out)


class _Run:
    """What all connections share: the request templates, the phase and the measurements."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.templates = [_Template(r["method"], r["path"], r.get("body")) for r in spec["requests"]]
        self.count_mode = "count" in spec
        self.warmup_requests = int(spec.get("warmup_requests", 0))
        self.total = self.warmup_requests + int(spec.get("count", 0))
        self.sent = 0
        self.completed = 0
        self.measuring = False
        self.stopped = False
        self.measured = 0
        self.errors = 0
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.started_at = 0.0
        self.finished_at = 0.0
        self.in_flight = 0
        self.done = asyncio.get_running_loop().create_future()
        self.error_sample: str | None = None

    def next_request(self) -> tuple[bytes, bool] | None:
        """The next request and whether it is measured, or None when nothing more is to be sent."""
        if self.stopped or (self.count_mode and self.sent >= self.total):
            return None
        template = self.templates[self.sent % len(self.templates)]
        measured = self.measuring if not self.count_mode else self.sent >= self.warmup_requests
        if self.count_mode and self.sent == self.warmup_requests:
            self.started_at = time.perf_counter()
        self.sent += 1
        self.in_flight += 1
        return template.render(), measured

    def record(self, status: int, latency: float, measured: bool, body: bytes) -> None:
        self.completed += 1
        self.in_flight -= 1
        if measured:
            self.measured += 1
            self.latencies.append(latency)
            self.statuses[status] += 1
            if not 200 <= status < 300:
                self.errors += 1
                if self.error_sample is None:
                    self.error_sample = f"{status}: {body[:300].decode(errors='replace')}"
        if self.count_mode and self.completed == self.total:
            self.finished_at = time.perf_counter()
        finished = self.stopped or (self.count_mode and self.sent >= self.total)
        if self.in_flight == 0 and finished and not self.done.done():
            self.done.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.need = -1
        self.body_start = 0
        self.status = 0
        self.sent_at = 0.0
        self.measured = False
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ready.set_result(None)

    def send_next(self) -> None:
        request = self.run.next_request()
        if request is None:
            return
        data, self.measured = request
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.need < 0:
            end = buffer.find(_HEAD_END)
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(_CONTENT_LENGTH)
            if at < 0:
                self.run.fail(RuntimeError(f"response without Content-Length: {head[:200]!r}"))
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + len(_CONTENT_LENGTH) : stop if stop >= 0 else len(head)])
            self.body_start = end + 4
            self.need = end + 4 + length
            self.status = int(head[9:12])
        if len(buffer) < self.need:
            return
        latency = time.perf_counter() - self.sent_at
        body = bytes(buffer[self.body_start : self.need]) if self.status >= 300 else b""
        del buffer[: self.need]
        self.need = -1
        self.run.record(self.status, latency, self.measured, body)
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.run.done.done() and not self.run.stopped:
            self.run.fail(ConnectionError(f"the server closed a connection: {exc}"))


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = _Run(spec)
    connections: list[_Connection] = []
    for _ in range(int(spec.get("connections", 1))):
        _, protocol = await loop.create_connection(lambda: _Connection(run), "127.0.0.1", int(spec["port"]))
        await protocol.ready
        connections.append(protocol)
    try:
        if run.count_mode:
            for connection in connections:
                connection.send_next()
            await run.done
            elapsed = run.finished_at - run.started_at
        else:
            for connection in connections:
                connection.send_next()
            await asyncio.sleep(float(spec.get("warmup_seconds", 1.0)))
            run.measuring = True
            run.started_at = time.perf_counter()
            await asyncio.sleep(float(spec.get("seconds", 5.0)))
            run.measuring = False
            run.stopped = True
            elapsed = time.perf_counter() - run.started_at
            if run.in_flight:
                await asyncio.wait_for(run.done, timeout=60)
    finally:
        run.stopped = True
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    ordered = sorted(run.latencies)
    extra = {"latencies_ms": [x * 1000 for x in run.latencies]} if spec.get("return_latencies") else {}
    return {
        **extra,
        "completed": run.measured,
        "elapsed": elapsed,
        "rps": run.measured / elapsed if elapsed > 0 else 0.0,
        "errors": run.errors,
        "error_sample": run.error_sample,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "latency_ms": {
            "median": statistics.median(ordered) * 1000 if ordered else float("nan"),
            "mean": statistics.fmean(ordered) * 1000 if ordered else float("nan"),
            "p90": _percentile(ordered, 0.90) * 1000,
            "p99": _percentile(ordered, 0.99) * 1000,
            "max": ordered[-1] * 1000 if ordered else float("nan"),
        },
    }


def main() -> None:
    spec = json.load(sys.stdin)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    result = runner(run_load(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

"""proxy: what `activity-feed proxy` costs an MCP conversation, against the same server reached directly.

stdio: the Node.js server on the official TypeScript SDK (`tests/support/node_mcp`, installed from npm
into a cache outside the repository; the Python `bench/proxy_server.py` when that cannot be had), started
twice, once plain and once as `activity-feed proxy -- node server.mjs`, both driven by a minimal
JSON-RPC client on raw pipes (`StdioPeer`), so that what is measured is the server and the relay, not a
client SDK.

- Round trip of an empty `tools/call`, median, direct vs through the proxy: the two processes are called
  in alternating ABBA blocks after a warm-up, with the proxy's feed up (SQLite), refused (a free port)
  and hanging (a socket that accepts and never answers). Target: ratio <= 1.2 in all three.
- Throughput of 1 MiB tool results (from the median call), in alternating blocks, feed up: target >= 0.8
  of direct.

Each transport has a function of its own returning its checks (`stdio_checks`; `http_checks` in
`proxy_http.py`, the same figures against a streamable-HTTP server).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from bench.harness import PROJECT_ROOT, Check, ServerProcess, free_port, say, sqlite_url
from bench.mcp_overhead import SilentServer

NAME = "proxy"
TITLE = "activity-feed proxy: MCP round trip and 1 MiB results, through the proxy vs direct"
ROUND_TRIP_TARGET = 1.2
THROUGHPUT_TARGET = 0.8
WARMUP_CALLS = 300
ROUNDS = 16
CALLS_PER_BLOCK = 150
BLOB_BYTES = 1024 * 1024
BLOB_WARMUP_CALLS = 5
BLOB_ROUNDS = 24
BLOB_CALLS_PER_BLOCK = 4
READ_CHUNK = 1024 * 1024
DROP_LINE = "event writes were not recorded"

Situation = str  # "up", "refused" or "hanging"


# A minimal MCP client on raw pipes.


class StdioPeer:
    """A server process driven over its stdin and stdout, one request in flight."""

    def __init__(self, command: Sequence[str], stderr: IO[bytes], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=PROJECT_ROOT
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        self._buffer = bytearray()
        self._next_id = 0

    def request(self, method: str, params: dict[str, object]) -> bytes:
        """Send a request and answer its response's raw line."""
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        self._write(orjson.dumps(message) + b"\n")
        return self._read_line()

    def handshake(self) -> None:
        params = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        }
        answer = orjson.loads(self.request("initialize", params))
        if "result" not in answer:
            raise RuntimeError(f"initialize failed: {answer}")
        self._write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

    def call(self, name: str, arguments: dict[str, object]) -> bytes:
        return self.request("tools/call", {"name": name, "arguments": arguments})

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            assert self.process.stdout is not None
            self.process.stdout.close()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._in, view) :]

    def _read_line(self) -> bytes:
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            scanned = len(self._buffer)
            chunk = os.read(self._out, READ_CHUNK)
            if not chunk:
                raise RuntimeError(f"the server closed its output (exit code {self.process.poll()})")
            self._buffer += chunk


# The server, and how to run it directly or through the proxy.


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    command: tuple[str, ...]


def stdio_server() -> Server:
    """The Node.js server when node, npm and the SDK can be had, else the Python one."""
    sys.path.insert(0, str(PROJECT_ROOT))
    try:
        from tests.support.node_mcp import NodeUnavailable, install

        node = shutil.which("node")
        try:
            if node is None:
                raise NodeUnavailable("node is not on PATH")
            return Server("Node.js, TypeScript SDK", (node, str(install())))
        except NodeUnavailable as exc:
            say(f"  no Node.js server ({exc}): measuring the Python server instead")
    finally:
        sys.path.remove(str(PROJECT_ROOT))
    return Server("Python, MCP SDK", (sys.executable, "-m", "bench.proxy_server"))


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "ACTIVITY_FEED_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)])
    return env


def proxied(server: Server, feed_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "activity_feed.cli.main",
        "proxy",
        "--feed-url",
        feed_url,
        "--",
        *server.command,
    ]


@contextmanager
def started(command: Sequence[str], log: Path) -> Iterator[tuple[StdioPeer, Path]]:
    with log.open("wb") as stderr:
        peer = StdioPeer(command, stderr, environment())
        try:
            peer.handshake()
            yield peer, log
        finally:
            code = peer.close()
            if code != 0:
                raise RuntimeError(
                    f"{command[0]} exited with {code}: {log.read_text(errors='replace')[-500:]}"
                )


# Measuring.


def _timed(call: Callable[[], bytes]) -> float:
    begun = time.perf_counter()
    call()
    return time.perf_counter() - begun


def interleaved(
    sides: dict[str, Callable[[], bytes]], *, warmup: int, rounds: int, per_block: int
) -> dict[str, list[float]]:
    """Seconds per call of each side, in ABBA blocks after a warm-up of each."""
    for call in sides.values():
        for _ in range(warmup):
            call()
    names = list(sides)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        order = names if round_ % 4 in (0, 3) else names[::-1]
        for name in order:
            call = sides[name]
            samples[name] += [_timed(call) for _ in range(per_block)]
    return samples


def _empty(peer: StdioPeer) -> Callable[[], bytes]:
    return lambda: peer.call("empty", {})


def _blob(peer: StdioPeer) -> Callable[[], bytes]:
    return lambda: peer.call("blob", {"bytes": BLOB_BYTES})


def _drop_line(log: Path) -> str | None:
    found = [line for line in log.read_text(errors="replace").splitlines() if DROP_LINE in line]
    return found[-1] if found else None


@contextmanager
def feeds(tmp: Path) -> Iterator[dict[Situation, str]]:
    """The feed the proxy reports to: up (SQLite), refused (nothing listens) and hanging."""
    with (
        ServerProcess(sqlite_url(tmp / "proxy.db"), log_path=tmp / "server.log") as service,
        SilentServer() as silent,
    ):
        yield {"up": service.url, "refused": f"http://127.0.0.1:{free_port()}", "hanging": silent.url}


def round_trip_check(
    name: str, situation: Situation, samples: dict[str, list[float]], log: Path, server: str
) -> Check:
    """The check of one interleaved round-trip measurement (seconds per call, sides `proxy` and
    `direct`), said on the terminal with what the proxy reported dropping."""
    through, plain = (statistics.median(samples[side]) * 1e6 for side in ("proxy", "direct"))
    drops = _drop_line(log)
    say(
        f"  {name}: through the proxy {through:,.0f} µs, direct {plain:,.0f} µs "
        f"(ratio {through / plain:.3f}); {drops or 'nothing dropped'}"
    )
    if situation == "up" and drops is not None:
        raise RuntimeError(f"the feed was up but the proxy dropped events: {drops}")
    return Check(
        benchmark=NAME,
        name=name,
        value=through,
        unit="µs",
        baseline=plain,
        baseline_name="direct",
        ratio=through / plain,
        target=f"ratio <= {ROUND_TRIP_TARGET}",
        met=through / plain <= ROUND_TRIP_TARGET,
        details={"server": server, "calls": len(samples["proxy"]), "proxy_stderr": drops},
    )


def stdio_checks(tmp: Path, urls: dict[Situation, str]) -> list[Check]:
    server = stdio_server()
    say(f"  stdio server: {server.name}")
    checks: list[Check] = []
    for situation, url in urls.items():
        with ExitStack() as stack:
            direct, _ = stack.enter_context(started(server.command, tmp / f"direct-{situation}.log"))
            proxy, log = stack.enter_context(started(proxied(server, url), tmp / f"proxy-{situation}.log"))
            samples = interleaved(
                {"proxy": _empty(proxy), "direct": _empty(direct)},
                warmup=WARMUP_CALLS,
                rounds=ROUNDS,
                per_block=CALLS_PER_BLOCK,
            )
        checks.append(
            round_trip_check(
                f"stdio tool call round trip, feed {situation}", situation, samples, log, server.name
            )
        )
    with ExitStack() as stack:
        direct, _ = stack.enter_context(started(server.command, tmp / "direct-blob.log"))
        proxy, _ = stack.enter_context(started(proxied(server, urls["up"]), tmp / "proxy-blob.log"))
        samples = interleaved(
            {"proxy": _blob(proxy), "direct": _blob(direct)},
            warmup=BLOB_WARMUP_CALLS,
            rounds=BLOB_ROUNDS,
            per_block=BLOB_CALLS_PER_BLOCK,
        )
    # MiB/s from the median call: a burst of load from elsewhere on the machine moves a mean, not this.
    through, plain = (1 / statistics.median(samples[side]) for side in ("proxy", "direct"))
    say(
        f"  stdio, 1 MiB results: through the proxy {through:,.0f} MiB/s, direct {plain:,.0f} MiB/s "
        f"(ratio {through / plain:.3f})"
    )
    checks.append(
        Check(
            benchmark=NAME,
            name="stdio 1 MiB tool results, feed up",
            value=through,
            unit="MiB/s",
            baseline=plain,
            baseline_name="direct",
            ratio=through / plain,
            target=f"ratio >= {THROUGHPUT_TARGET}",
            met=through / plain >= THROUGHPUT_TARGET,
            details={"server": server.name, "calls": len(samples["proxy"])},
        )
    )
    return checks


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-proxy-") as folder:
        tmp = Path(folder)
        with feeds(tmp) as urls:
            from bench.proxy_http import http_checks

            return stdio_checks(tmp, urls) + http_checks(tmp, urls)

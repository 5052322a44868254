"""The HTTP half of the `proxy` benchmark: the Python SDK's MCP server over streamable HTTP
(`bench/proxy_server.py http`), reached directly and through `activity-feed proxy --upstream`, both by a
minimal HTTP/1.1 client on one keep-alive socket each (`HttpPeer`), so that what is measured is the
server and the relay, not a client SDK.

- Round trip of an empty `tools/call`, median, in alternating ABBA blocks after a warm-up: answers as SSE
  (the SDK's default) with the proxy's feed up, refused and hanging, and answers as JSON with the feed up.
  Target: ratio <= 1.2 in all four.
- Throughput of 1 MiB tool results (SSE answers, from the median call), feed up: target >= 0.8 of
  direct.
"""

from __future__ import annotations

import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import orjson

from bench.harness import PROJECT_ROOT, Check, free_port, say
from bench.proxy import (
    BLOB_BYTES,
    BLOB_CALLS_PER_BLOCK,
    BLOB_ROUNDS,
    BLOB_WARMUP_CALLS,
    CALLS_PER_BLOCK,
    NAME,
    ROUNDS,
    THROUGHPUT_TARGET,
    WARMUP_CALLS,
    Situation,
    environment,
    interleaved,
    round_trip_check,
)

READY_SECONDS = 30.0
STOP_SECONDS = 15.0
DROP_LINE = "event writes were not recorded"
PROTOCOL_VERSION = "2025-06-18"


class HttpPeer:
    """An MCP session over one keep-alive connection, one request in flight."""

    def __init__(self, port: int, path: str = "/mcp") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.path = path.encode()
        self.host = f"127.0.0.1:{port}".encode()
        self.session = b""
        self._buffer = bytearray()
        self._next_id = 0

    def handshake(self) -> None:
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        }
        _, headers, body = self._exchange(self._message("initialize", params))
        self.session = headers.get(b"mcp-session-id", b"")
        if b'"result"' not in body:
            raise RuntimeError(f"initialize failed: {body[:300]!r}")
        status, _, _ = self._exchange(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        if status != 202:
            raise RuntimeError(f"notifications/initialized answered {status}")

    def call(self, name: str, arguments: dict[str, object]) -> bytes:
        status, _, body = self._exchange(self._message("tools/call", {"name": name, "arguments": arguments}))
        if status != 200:
            raise RuntimeError(f"tools/call answered {status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.sock.close()

    def _message(self, method: str, params: dict[str, object]) -> bytes:
        self._next_id += 1
        return orjson.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})

    def _exchange(self, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        head = [
            b"POST " + self.path + b" HTTP/1.1",
            b"host: " + self.host,
            b"content-type: application/json",
            b"accept: application/json, text/event-stream",
            b"content-length: " + str(len(body)).encode(),
        ]
        if self.session:
            head += [
                b"mcp-session-id: " + self.session,
                b"mcp-protocol-version: " + PROTOCOL_VERSION.encode(),
            ]
        self.sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        status_line, headers = self._head()
        status = int(status_line.split(b" ", 2)[1])
        if (length := headers.get(b"content-length")) is not None:
            return status, headers, self._exactly(int(length))
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            return status, headers, self._chunked()
        return status, headers, b""

    def _fill(self) -> None:
        chunk = self.sock.recv(1024 * 1024)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self._buffer += chunk

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _head(self) -> tuple[bytes, dict[bytes, bytes]]:
        status_line = self._line()
        headers: dict[bytes, bytes] = {}
        while line := self._line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status_line, headers

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while size := int(self._line().split(b";")[0], 16):
            parts.append(self._exactly(size))
            self._exactly(2)
        self._line()  # the end of the (empty) trailer
        return b"".join(parts)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text(errors='replace')[-500:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {READY_SECONDS:.0f} s")


@contextmanager
def _process(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, env=environment(), cwd=PROJECT_ROOT
        )
        try:
            _wait_listening(port, process, log)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            finally:
                if process.poll() is None:
                    process.kill()


@contextmanager
def upstream(tmp: Path, answers: str) -> Iterator[int]:
    port = free_port()
    command = [sys.executable, "-m", "bench.proxy_server", "http", str(port), answers]
    with _process(command, port, tmp / f"upstream-{answers}.log"):
        yield port


@contextmanager
def proxy(upstream_port: int, feed_url: str, log: Path) -> Iterator[int]:
    """`activity-feed proxy --upstream` on a free port; checks that it exits 0 on SIGTERM."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "activity_feed.cli.main",
        "proxy",
        "--upstream",
        f"http://127.0.0.1:{upstream_port}/mcp",
        "--port",
        str(port),
        "--feed-url",
        feed_url,
    ]
    with _process(command, port, log) as process:
        yield port
    if process.returncode != 0:
        raise RuntimeError(
            f"the proxy exited with {process.returncode}: {log.read_text(errors='replace')[-500:]}"
        )


@contextmanager
def peers(upstream_port: int, proxy_port: int) -> Iterator[tuple[HttpPeer, HttpPeer]]:
    direct, through = HttpPeer(upstream_port), HttpPeer(proxy_port)
    try:
        direct.handshake()
        through.handshake()
        yield direct, through
    finally:
        direct.close()
        through.close()


def _drop_line(log: Path) -> str | None:
    found = [line for line in log.read_text(errors="replace").splitlines() if DROP_LINE in line]
    return found[-1] if found else None


def _empty(peer: HttpPeer) -> Callable[[], bytes]:
    return lambda: peer.call("empty", {})


def _blob(peer: HttpPeer) -> Callable[[], bytes]:
    return lambda: peer.call("blob", {"bytes": BLOB_BYTES})


def _round_trip(tmp: Path, answers: str, situation: Situation, feed_url: str, upstream_port: int) -> Check:
    log = tmp / f"proxy-http-{answers}-{situation}.log"
    with ExitStack() as stack:
        proxy_port = stack.enter_context(proxy(upstream_port, feed_url, log))
        direct, through = stack.enter_context(peers(upstream_port, proxy_port))
        samples = interleaved(
            {"proxy": _empty(through), "direct": _empty(direct)},
            warmup=WARMUP_CALLS,
            rounds=ROUNDS,
            per_block=CALLS_PER_BLOCK,
        )
    name = f"http tool call round trip ({answers} answers), feed {situation}"
    return round_trip_check(name, situation, samples, log, "Python, MCP SDK")


def _throughput(tmp: Path, feed_url: str, upstream_port: int) -> Check:
    with ExitStack() as stack:
        proxy_port = stack.enter_context(proxy(upstream_port, feed_url, tmp / "proxy-http-blob.log"))
        direct, through = stack.enter_context(peers(upstream_port, proxy_port))
        samples = interleaved(
            {"proxy": _blob(through), "direct": _blob(direct)},
            warmup=BLOB_WARMUP_CALLS,
            rounds=BLOB_ROUNDS,
            per_block=BLOB_CALLS_PER_BLOCK,
        )
    # MiB/s from the median call, as for stdio.
    through_rate, plain_rate = (1 / statistics.median(samples[side]) for side in ("proxy", "direct"))
    say(
        f"  http, 1 MiB results: through the proxy {through_rate:,.0f} MiB/s, direct {plain_rate:,.0f} MiB/s "
        f"(ratio {through_rate / plain_rate:.3f})"
    )
    return Check(
        benchmark=NAME,
        name="http 1 MiB tool results, feed up",
        value=through_rate,
        unit="MiB/s",
        baseline=plain_rate,
        baseline_name="direct",
        ratio=through_rate / plain_rate,
        target=f"ratio >= {THROUGHPUT_TARGET}",
        met=through_rate / plain_rate >= THROUGHPUT_TARGET,
        details={"server": "Python, MCP SDK", "calls": len(samples["proxy"])},
    )


def http_checks(tmp: Path, urls: dict[Situation, str]) -> list[Check]:
    say("  http server: Python, MCP SDK (uvicorn)")
    checks: list[Check] = []
    with upstream(tmp, "sse") as port:
        for situation, url in urls.items():
            checks.append(_round_trip(tmp, "sse", situation, url, port))
        checks.append(_throughput(tmp, urls["up"], port))
    with upstream(tmp, "json") as port:
        checks.append(_round_trip(tmp, "json", "up", urls["up"], port))
    return checks

"""Peers for the HTTP relay's tests: upstreams (ASGI apps the `live_server` fixture serves with uvicorn
on a free port), the relay on a thread of its own, and the `activity-feed proxy --upstream` process.

Build MCP servers inside tests or fixtures: `MCPServer()` configures logging on first use (see
tests/mcp/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import SamplingMessage, TextContent

from activity_feed.proxy.http import HttpRelay, Tap
from tests.proxy.processes import ROOT, environment
from tests.support.server import free_port

WAIT_SECONDS = 15.0
MiB = 1024 * 1024

Scope = dict[str, Any]


def random_bytes(size: int, seed: int) -> bytes:
    """Every byte value, CR and LF included, in a deterministic order."""
    return random.Random(seed).randbytes(size)


class Seen:
    """One request as the upstream received it."""

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: bytes = scope.get("raw_path") or scope["path"].encode()
        self.query: bytes = scope["query_string"]
        self.headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        self.body = body

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


class ByteUpstream:
    """A plain ASGI upstream that keeps every request it gets and answers by path:

    - `/echo`: 200 with `reply` as the body (a length given), and headers of its own, hop-by-hop ones too;
    - `/stream`: 200 with `reply` in three pieces and no length (uvicorn sends it chunked);
    - `/status/CODE`: CODE with a short body (JSON for 404);
    - `/sse`: an SSE stream: one event, then the second once `release` is set, then its end;
    - `/forever`: an SSE stream with one event that lasts until the client goes (`left` is set then);
    - `/cut`: announces 1000 bytes, sends 10 and fails.
    Anything else: 200 with `ok`.
    """

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.left = threading.Event()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.seen.append(Seen(scope, body))
        path: str = scope["path"]
        if path == "/echo":
            await self._echo(send)
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-kind", b"stream")]})
            third = len(self.reply) // 3
            for piece in (self.reply[:third], self.reply[third : 2 * third], self.reply[2 * third :]):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path.startswith("/status/"):
            await self._status(int(path.rsplit("/", 1)[1]), send)
        elif path == "/sse":
            await _sse_start(send)
            await _sse_event(send, b'{"n":1}')
            await asyncio.to_thread(self.release.wait, WAIT_SECONDS)
            await _sse_event(send, b'{"n":2}')
            await send({"type": "http.response.body", "body": b""})
        elif path == "/forever":
            await _sse_start(send)
            await _sse_event(send, b'{"n":1}')
            while (await receive())["type"] != "http.disconnect":
                pass
            self.left.set()
        elif path == "/cut":
            headers = [(b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            raise RuntimeError("the upstream fails in the middle of its response")
        else:
            await _respond(send, 200, b"text/plain", b"ok")

    async def _echo(self, send: Any) -> None:
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(self.reply)).encode()),
            (b"x-custom", b"kept"),
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            (b"mcp-session-id", b"upstream-session"),
            (b"keep-alive", b"timeout=5"),
            (b"connection", b"x-hop"),
            (b"x-hop", b"for this connection only"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.reply})

    async def _status(self, code: int, send: Any) -> None:
        if code == 404:
            body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}'
            await _respond(send, code, b"application/json", body)
        else:
            await _respond(send, code, b"text/plain", f"upstream says {code}".encode())


async def read_body(receive: Any) -> bytes:
    """The whole body of an ASGI HTTP request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _respond(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _sse_start(send: Any) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _sse_event(send: Any, data: bytes) -> None:
    await send(
        {
            "type": "http.response.body",
            "body": b"event: message\r\ndata: " + data + b"\r\n\r\n",
            "more_body": True,
        }
    )


class HeaderWitness:
    """Wraps an ASGI app and keeps, for each HTTP request, its method, headers and response headers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, list[tuple[bytes, bytes]]]] = []
        self.responses: list[list[tuple[bytes, bytes]]] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], list(scope["headers"])))

            async def witnessed(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    self.responses.append(list(message.get("headers", [])))
                await send(message)

            await self.app(scope, receive, witnessed)
        else:
            await self.app(scope, receive, send)


class NoDiscovery:
    """Wraps an MCP app and answers `server/discover` as the TypeScript SDK's streamable-HTTP server of
    the handshake era does: HTTP 400 with a JSON-RPC error of its own, whose id is null."""

    ANSWER = (
        b'{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Server not initialized"},"id":null}'
    )

    def __init__(self, app: Any) -> None:
        self.app = app
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if b'"server/discover"' in body:
            self.refused += 1
            await _respond(send, 400, b"application/json", self.ANSWER)
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # type: ignore[no-any-return]
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def mcp_server() -> MCPServer:
    """An MCP server with tools that answer at once, report progress, ask the client's model, fail,
    and send a large result."""
    server = MCPServer("http-peer", version="2.0.1")

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool()
    async def count(steps: int, ctx: Context) -> str:
        for step in range(steps):
            await ctx.report_progress(step + 1, steps, f"step {step + 1}")
        return f"counted {steps}"

    @server.tool()
    async def draft(topic: str, ctx: Context) -> str:
        result = await ctx.session.create_message(
            [SamplingMessage(role="user", content=TextContent(type="text", text=f"Write about {topic}"))],
            max_tokens=20,
        )
        return result.content.text if isinstance(result.content, TextContent) else "?"

    @server.tool()
    def broken() -> str:
        raise ValueError("the tool broke")

    @server.tool()
    def large(size: int) -> str:
        return "x" * size

    @server.tool()
    async def announce(ctx: Context) -> str:
        """Sends a notification related to no request: it goes on the client's GET stream."""
        await ctx.session.send_tool_list_changed()
        return "announced"

    @server.tool()
    async def nap(seconds: float) -> str:
        await anyio.sleep(seconds)
        return "rested"

    return server


class RelayThread:
    """`HttpRelay` on an event loop in a daemon thread, listening on a free loopback port."""

    def __init__(self, upstream: str, tap: Tap | None = None, *, busy_poll: float = 0.0) -> None:
        self.relay = HttpRelay(upstream, tap, busy_poll=busy_poll)
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RelayThread:
        self._thread.start()
        assert self._ready.wait(WAIT_SECONDS), "the relay did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT_SECONDS)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        _, self.port = await self.relay.start("127.0.0.1", 0)
        self._ready.set()
        await self._stop.wait()
        await self.relay.stop(1.0)


class ProxyProcess:
    """`activity-feed proxy --upstream URL` as a real process on a free port."""

    def __init__(self, upstream: str, feed_url: str, options: Sequence[str] = ()) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "activity_feed.cli.main",
            "proxy",
            "--upstream",
            upstream,
            "--port",
            str(self.port),
            "--feed-url",
            feed_url,
            *options,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment(), cwd=ROOT
        )
        self._wait_listening()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_listening(self) -> None:
        import socket

        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the proxy exited: {self.process.communicate()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("the proxy did not listen in time")

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send `signum`; the exit code and everything written on stderr."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)
        try:
            _, err = self.process.communicate(timeout=WAIT_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        return self.process.returncode, err.decode("utf-8", "replace")

"""Replaying stream clients for the replay benchmark, in a process of their own
(`python -m bench.replay_clients`, spec as JSON on stdin, result as JSON on stdout).

Each client is the minimal WebSocket client of `stream_clients.py` (handshake by hand, frames parsed
from `data_received`), connecting with `since=<cursor>` and reading as fast as the server sends. It does
not decode the messages: it counts them and their bytes and reads each one's cursor from its tail, so
that it can check the change order and reconnect where it stopped. A client closed with 1013 (told to
try again later) reconnects after a short jittered pause with the last cursor it saw, as a real client
does; it is done once it has received `expect` messages. Clients still replaying after `seconds` are
disconnected.

Spec::

    {"url": "ws://127.0.0.1:8000/activities/ws", "since": "0", "clients": 30, "expect": 10000,
     "seconds": 60}

Result: per client `messages`, `bytes`, `reconnects`, `resyncs`, `out_of_order` (a cursor not above the
one before), `done`, `seconds` (from the first connection to the last message); and the process's
`cpu_seconds` and `wall_seconds`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import socket
import struct
import sys
import time
from typing import Any, cast
from urllib.parse import urlencode

from bench.stream_clients import FrameReader, client_frame, handshake_request

_HEAD_END = b"\r\n\r\n"
_OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x8, 0x9, 0xA
_CURSOR_KEY = b'"cursor":"'
_RESYNC = b'{"type":"resync"}'
RETRY_PAUSE_SECONDS = (0.25, 0.75)


class _Connection(asyncio.Protocol):
    """One WebSocket connection of a client; `closed` resolves to the close code (None: no close frame)."""

    def __init__(self, request: bytes, client: _Client) -> None:
        self.request = request
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.handshake_done = False
        self.frames = FrameReader()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.handshake_done:
            self.head += data
            end = self.head.find(_HEAD_END)
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                self._finish(None)
                return
            self.handshake_done = True
            data = bytes(self.head[end + 4 :])
        for opcode, payload in self.frames.feed(data):
            if opcode == _OP_TEXT:
                self.client.message(payload)
                if self.client.done:
                    self._send(client_frame(_OP_CLOSE, struct.pack("!H", 1000)))
                    self._finish(1000)
                    return
            elif opcode == _OP_PING:
                self._send(client_frame(_OP_PONG, payload))
            elif opcode == _OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send(client_frame(_OP_CLOSE, payload[:2]))
                self._finish(code)
                return

    def _send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def _finish(self, code: int | None) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.closed.done():
            self.closed.set_result(code)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _Client:
    def __init__(self, url: str, since: str, expect: int) -> None:
        self.url = url
        self.cursor = since
        self.expect = expect
        self.messages = 0
        self.bytes = 0
        self.reconnects = 0
        self.resyncs = 0
        self.out_of_order = 0
        self.last_seq = int(since)
        self.started = 0.0
        self.finished = 0.0
        self.connection: _Connection | None = None

    @property
    def done(self) -> bool:
        return self.messages >= self.expect

    def message(self, payload: bytes) -> None:
        if payload == _RESYNC:
            self.resyncs += 1
            return
        self.messages += 1
        self.bytes += len(payload)
        at = payload.rfind(_CURSOR_KEY) + len(_CURSOR_KEY)
        cursor = payload[at : payload.index(b'"', at)].decode()
        seq = int(cursor)
        if seq <= self.last_seq:
            self.out_of_order += 1
        self.last_seq = seq
        self.cursor = cursor
        self.finished = time.monotonic()

    async def run(self) -> None:
        self.started = time.monotonic()
        loop = asyncio.get_running_loop()
        while not self.done:
            host, port, request = handshake_request(f"{self.url}?{urlencode({'since': self.cursor})}")
            _, connection = await loop.create_connection(
                functools.partial(self._connection, request), host, port
            )
            sock = connection.transport.get_extra_info("socket") if connection.transport else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = await connection.closed
            if self.done:
                return
            if code != 1013:
                raise ConnectionError(
                    f"the server closed a replay with {code} after {self.messages} messages"
                )
            self.reconnects += 1
            await asyncio.sleep(random.uniform(*RETRY_PAUSE_SECONDS))

    def _connection(self, request: bytes) -> _Connection:
        self.connection = _Connection(request, self)
        return self.connection

    def disconnect(self) -> None:
        if self.connection is not None and self.connection.transport is not None:
            self.connection.transport.close()

    def result(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "messages": self.messages,
            "bytes": self.bytes,
            "reconnects": self.reconnects,
            "resyncs": self.resyncs,
            "out_of_order": self.out_of_order,
            "seconds": self.finished - self.started,
        }


async def replay_all(spec: dict[str, Any]) -> dict[str, Any]:
    clients = [
        _Client(spec["url"], str(spec["since"]), int(spec["expect"])) for _ in range(int(spec["clients"]))
    ]
    cpu_start, wall_start = time.process_time(), time.monotonic()
    tasks = [asyncio.ensure_future(client.run()) for client in clients]
    _, running = await asyncio.wait(tasks, timeout=float(spec["seconds"]))
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    for client in clients:
        client.disconnect()
    for task in tasks:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
    return {
        "clients": [client.result() for client in clients],
        "cpu_seconds": time.process_time() - cpu_start,
        "wall_seconds": time.monotonic() - wall_start,
    }


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        result = asyncio.run(replay_all(spec))
    else:
        result = uvloop.run(replay_all(spec))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

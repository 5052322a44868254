"""Stream clients for the delivery benchmark, in a process of their own (`python -m bench.stream_clients`).

Each client is a minimal WebSocket client on a raw asyncio protocol: the handshake by hand, then
server frames parsed straight from `data_received` (unmasked, as a server sends them), the arrival time
taken once per read, and pings answered. That keeps a hundred clients far cheaper than the server that
feeds them, so the latencies measured are the server's, not the time a busy client took to look.

Protocol, one JSON line each way, on stdin and stdout::

    stdin:  {"urls": ["ws://127.0.0.1:8000/activities/ws?tool_name=x", ...]}   one URL per client
    stdout: {"ready": true}                      once every client's handshake is complete
    stdin:  stop                                 (or EOF)
    stdout: {"clients": [{"seqs": [...], "times": [...], "close_code": null}, ...],
             "cpu_seconds": ..., "wall_seconds": ..., "reads": ..., "frames": ...}

A client records `event.data.seq` and the arrival time (`time.monotonic()`, the same clock in every
process of the machine) of each `activity_logged` message that has one; other messages are ignored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time
from array import array
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

HANDSHAKE_TIMEOUT_SECONDS = 30.0
_HEAD_END = b"\r\n\r\n"
_OP_CONTINUATION, _OP_TEXT, _OP_CLOSE, _OP_PING = 0x0, 0x1, 0x8, 0x9
_OP_PONG = 0xA


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final frame from a client: masked, as RFC 6455 requires of clients (the payloads sent here are
    control frames, at most 125 bytes)."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def handshake_request(url: str) -> tuple[str, int, bytes]:
    """Host, port and the HTTP upgrade request for a `ws://` URL."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise ValueError(f"not a ws:// URL: {url}")
    port = parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return parts.hostname, port, request.encode()


class FrameReader:
    """Server frames out of a byte stream: `feed(data)` returns the complete messages as (opcode,
    payload), continuation frames joined to the message they continue."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.fragment_opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self.buffer
        buffer += data
        messages: list[tuple[int, bytes]] = []
        at = 0
        size = len(buffer)
        while size - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - at < 4:
                    break
                length = struct.unpack_from("!H", buffer, at + 2)[0]
                head = 4
            elif length == 127:
                if size - at < 10:
                    break
                length = struct.unpack_from("!Q", buffer, at + 2)[0]
                head = 10
            if second & 0x80:
                raise ValueError("the server sent a masked frame")
            end = at + head + length
            if end > size:
                break
            payload = bytes(buffer[at + head : end])
            at = end
            opcode = first & 0x0F
            if opcode == _OP_CONTINUATION or (not first & 0x80 and opcode < 0x8):
                if opcode != _OP_CONTINUATION:
                    self.fragment_opcode = opcode
                self.fragments.append(payload)
                if not first & 0x80:
                    continue
                opcode, payload = self.fragment_opcode, b"".join(self.fragments)
                self.fragments = []
            messages.append((opcode, payload))
        del buffer[:at]
        return messages


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, run: _Run) -> None:
        self.request = request
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.frames = FrameReader()
        self.seqs = array("q")
        self.times = array("d")
        self.close_code: int | None = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()  # one reading per read: every frame in it had arrived by now
        if not self.ready.done():
            self.head += data
            end = self.head.find(_HEAD_END)
            if end < 0:
                return
            status_line = bytes(self.head[: self.head.find(b"\r\n")])
            if not status_line.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(f"handshake refused: {status_line!r}"))
                return
            data = bytes(self.head[end + 4 :])
            self.ready.set_result(None)
        self.run.reads += 1
        for opcode, payload in self.frames.feed(data):
            self.run.frames += 1
            if opcode == _OP_TEXT:
                self._message(payload, now)
            elif opcode == _OP_PING:
                self._send(client_frame(_OP_PONG, payload))
            elif opcode == _OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send(client_frame(_OP_CLOSE, payload[:2]))
                assert self.transport is not None
                self.transport.close()

    def _message(self, payload: bytes, now: float) -> None:
        message = orjson.loads(payload)
        if message.get("type") != "activity_logged":
            return
        seq = message["event"]["data"].get("seq")
        if isinstance(seq, int):
            self.seqs.append(seq)
            self.times.append(now)

    def _send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost during the handshake: {exc}"))

    def result(self) -> dict[str, Any]:
        return {"seqs": self.seqs.tolist(), "times": self.times.tolist(), "close_code": self.close_code}


class _Run:
    def __init__(self) -> None:
        self.reads = 0
        self.frames = 0


async def _connect(url: str, run: _Run) -> _Client:
    host, port, request = handshake_request(url)
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: _Client(request, run), host, port)
    sock = client.transport.get_extra_info("socket") if client.transport else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await client.ready
    return client


async def serve_clients(urls: list[str]) -> dict[str, Any]:
    """Connect a client to each URL, say ready, record until `stop`, then return what each received."""
    run = _Run()
    async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
        clients = await asyncio.gather(*(_connect(url, run) for url in urls))
    _write_line({"ready": True})
    cpu_start, wall_start = time.process_time(), time.monotonic()
    reads_start, frames_start = run.reads, run.frames
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop" or EOF
    cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return {
        "clients": [client.result() for client in clients],
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "reads": run.reads - reads_start,
        "frames": run.frames - frames_start,
    }


def _write_line(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def main() -> None:
    urls = list(json.loads(sys.stdin.readline())["urls"])
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        _write_line(asyncio.run(serve_clients(urls)))
    else:
        _write_line(uvloop.run(serve_clients(urls)))


if __name__ == "__main__":
    main()

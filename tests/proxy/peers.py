"""Servers that the proxy runs in its tests, as real processes: `python -m tests.proxy.peers MODE ...`.

- `script RECORD_PATH`: writes `server_output()` (JSON-RPC, garbage, huge lines, a partial line at the
  end) while it copies everything it reads to RECORD_PATH, then exits 0 at the end of its input.
- `exit-mid-call CODE`: answers `initialize`, then exits with CODE when a `tools/call` arrives.
- `crash`: answers `initialize`, then raises on the next message (exit code 1, a traceback on stderr).
- `signals`: says `ready` once its handlers are set; on SIGINT or SIGTERM writes `got SIGNAME` to
  stderr and exits with 40 + the signal's number.
- `sleep`: says `ready` and waits for stdin to end, with the default signal handlers.
"""

from __future__ import annotations

import functools
import json
import os
import random
import select
import signal
import sys
import threading
from typing import Any, NoReturn

MiB = 1024 * 1024
SERVER_INFO = {"name": "peer", "version": "0.1"}
DUMP = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "dump", "arguments": {}}}


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _text(rng: random.Random, length: int) -> str:
    """Random text with characters JSON must escape (quotes, backslashes, non-ASCII), made fast."""
    placeholders = rng.randbytes(length).translate(bytes(65 + byte % 16 for byte in range(256))).decode()
    return placeholders.translate({65 + i: char for i, char in enumerate('abcdefghij \\"é☃\t\n\r')})


@functools.cache
def server_output() -> list[bytes]:
    """What `script` writes, in chunks: deterministic, so the test knows every byte to expect."""
    rng = random.Random(18)
    garbage = bytes(rng.randrange(256) for _ in range(3000)).replace(b"\n", b"")
    huge_text = _text(rng, 3 * MiB)
    return [
        _line(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "result": {"protocolVersion": "2025-06-18", "serverInfo": SERVER_INFO},
            }
        ),
        b"this line is not JSON at all\n",
        garbage + b"\n",
        b"\n\n",
        _line({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "small"}]}}),
        b"x" * (5 * MiB) + b"\n",  # a huge line that is not JSON
        # A huge JSON response (about 5.5 MiB once encoded): relayed, too large to record.
        _line({"jsonrpc": "2.0", "id": 2, "result": {"content": [{"type": "text", "text": huge_text}]}}),
        b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"half a line',
    ]


@functools.cache
def client_input() -> list[bytes]:
    """What the byte-exactness tests write to the proxy: requests for `script`, and garbage."""
    rng = random.Random(81)
    garbage = bytes(rng.randrange(256) for _ in range(5000))
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "byte-test"}},
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "small", "arguments": {}}}
    return [
        _line(initialize),
        garbage,
        b"\n",
        _line(call),
        b"y" * (6 * MiB) + b"\n",
        _line(DUMP)[:20],  # one message in two writes
        _line(DUMP)[20:],
        b"no newline at the end",
    ]


def script(record_path: str) -> int:
    def write_output() -> None:
        for chunk in server_output():
            view = memoryview(chunk)
            while view:
                view = view[os.write(1, view) :]

    # The answers go out once the last request is in (so that the recorder sees each request before its
    # response), while the rest of the input is still being read.
    writer = threading.Thread(target=write_output)
    last_request = _line(DUMP)
    seen = b""
    with open(record_path, "wb") as record:
        while chunk := os.read(0, 65536):
            record.write(chunk)
            if not writer.is_alive() and writer.ident is None:
                seen = (seen + chunk)[-2 * len(last_request) :]
                if last_request in seen:
                    writer.start()
    if writer.ident is None:
        writer.start()
    writer.join()
    return 0


FLOOD_PATTERN = b"0123456789abcdef"


def flood(record_path: str, size: int) -> int:
    """Write `size` bytes of FLOOD_PATTERN while recording all of stdin, whether or not anyone reads."""

    def record() -> None:
        with open(record_path, "wb") as record:
            while chunk := os.read(0, 65536):
                record.write(chunk)

    reader = threading.Thread(target=record)
    reader.start()
    view = memoryview(FLOOD_PATTERN * (size // len(FLOOD_PATTERN)))
    while view:
        view = view[os.write(1, view) :]
    reader.join()
    return 0


def _messages() -> Any:
    for raw in sys.stdin.buffer:
        yield json.loads(raw)


def _answer_initialize(message: dict[str, Any]) -> None:
    result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": SERVER_INFO}
    sys.stdout.buffer.write(_line({"jsonrpc": "2.0", "id": message["id"], "result": result}))
    sys.stdout.buffer.flush()


def exit_mid_call(code: int) -> int:
    for message in _messages():
        if message.get("method") == "initialize":
            _answer_initialize(message)
        elif message.get("method") == "tools/call":
            print("exiting in the middle of a call", file=sys.stderr, flush=True)
            return code
    return 0


def crash() -> int:
    for message in _messages():
        if message.get("method") == "initialize":
            _answer_initialize(message)
        elif message.get("method") == "tools/call":
            raise RuntimeError("the peer crashed on purpose")
    return 0


def signals() -> NoReturn:
    """Say `ready`, then exit 40 + N at the first SIGINT or SIGTERM (or 0 when stdin ends). The signals
    are taken with `sigtimedwait`: a Python handler would miss one that arrives between its last check
    and a blocking read, which a relay that forwards within microseconds of `ready` hits."""
    taken = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, taken)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        received = signal.sigtimedwait(taken, 0.05)
        if received is not None and received.si_signo in taken:
            print(f"got {signal.Signals(received.si_signo).name}", file=sys.stderr, flush=True)
            os._exit(40 + received.si_signo)
        readable, _, _ = select.select([0], [], [], 0)
        if readable and not os.read(0, 65536):
            os._exit(0)


def _ready_then_wait() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while os.read(0, 65536):
        pass


def main(argv: list[str]) -> int:
    mode, *rest = argv
    if mode == "script":
        return script(rest[0])
    if mode == "flood":
        return flood(rest[0], int(rest[1]))
    if mode == "exit-mid-call":
        return exit_mid_call(int(rest[0]))
    if mode == "crash":
        return crash()
    if mode == "signals":
        signals()
    if mode == "sleep":
        _ready_then_wait()
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

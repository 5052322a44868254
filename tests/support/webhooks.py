"""A real webhook receiver on a free local port (the standard library's threaded HTTP server), recording
every POST it gets; each path can be told how to answer: a status, a list of statuses in turn, or to hang
(accept the request and never answer) until the receiver closes.

    with WebhookReceiver() as hooks:
        hooks.answer("/flaky", 500, 200)
        ...  # point a webhook at hooks.url("/flaky")
        hooks.wait_for(lambda got: len(got) >= 2)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HANG = -1
_HANG_LIMIT_SECONDS = 120.0


@dataclass(frozen=True)
class Received:
    path: str
    body: dict[str, Any]
    status: int  # what the receiver answered (HANG: nothing)
    at: float  # time.monotonic() on arrival


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._answers: dict[str, list[int]] = {}
        self._bodies: dict[str, bytes] = {}
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status = receiver._next_answer(self.path)
                receiver._record(Received(self.path, body, status, time.monotonic()))
                if status == HANG:
                    receiver._closing.wait(_HANG_LIMIT_SECONDS)
                    self.close_connection = True
                    return
                answer = receiver._bodies.get(self.path, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        )

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def answer(self, path: str, *statuses: int, body: str = "{}") -> None:
        """Answer POSTs to `path` with these statuses in turn, the last one from then on (default 200),
        and this body."""
        with self._lock:
            self._answers[path] = list(statuses)
            self._bodies[path] = body.encode()

    def _next_answer(self, path: str) -> int:
        with self._lock:
            statuses = self._answers.get(path)
            if not statuses:
                return 200
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r.body for r in self.received(path)]

    def wait_for(
        self, ready: Callable[[list[Received]], bool], path: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        """Wait (at most `timeout` s) until `ready(what path received)`; fail saying what arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._received if path is None or r.path == path]
                if ready(got):
                    return got
                left = deadline - time.monotonic()
                assert left > 0, f"the webhook receiver did not get what was awaited; it got {got}"
                self._lock.wait(left)

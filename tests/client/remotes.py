"""Peers for the client under test: a fake remote that answers what the test scripts (or forwards to the
real service), and helpers to wait for what reaches the feed.

Only the client's *peer* is faked here; the database behind a forwarding remote is always real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

DEADLINE_SECONDS = 10.0


def wait_until(
    condition: Callable[[], bool], timeout: float = DEADLINE_SECONDS, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.01)


def get_event(base_url: str, event_id: str, timeout: float = DEADLINE_SECONDS) -> dict[str, Any]:
    """Poll GET /activities/{id} until it answers 200, within `timeout` seconds."""
    found: dict[str, Any] = {}

    def arrived() -> bool:
        response = httpx.get(f"{base_url}/activities/{event_id}", timeout=5)
        if response.status_code == 200:
            found.update(response.json())
            return True
        return False

    wait_until(arrived, timeout, what=f"event {event_id} on the feed")
    return found


def recent(base_url: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/activities/recent", params={"limit": 500, **params}, timeout=5)
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()
    return events


@dataclass
class Seen:
    at: float
    body: dict[str, Any]
    headers: dict[str, str]


Answer = tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]


def _scripted_payload(status: int, body: dict[str, Any]) -> bytes:
    if status >= 300:
        return b'{"detail": "scripted"}'
    counts = {"created": len(body["events"]), "existing": 0, "updated": len(body["updates"]), "missing": 0}
    return json.dumps(counts).encode()


@dataclass
class FakeRemote:
    """An HTTP server answering POST /activities/batch with `script(n, body)` for the n-th request (from
    0): a (status, headers) pair (a 2xx then carries the counts the service would answer, anything else a
    `detail`), a (status, headers, body) triple, `"forward"` (pass it to `upstream`, the real service, and
    answer what it answered) or `"forward-and-hang-up"` (pass it on, then close the connection without
    answering)."""

    script: Callable[[int, dict[str, Any]], Answer | str]
    upstream: str | None = None
    requests: list[Seen] = field(default_factory=list)

    def start(self) -> FakeRemote:
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with lock:
                    index = len(remote.requests)
                    remote.requests.append(Seen(time.monotonic(), body, dict(self.headers.items())))
                action = remote.script(index, body)
                if isinstance(action, str):
                    assert remote.upstream is not None
                    answer = httpx.post(f"{remote.upstream}{self.path}", json=body, timeout=10)
                    if action == "forward-and-hang-up":
                        self.close_connection = True
                        return
                    status, headers, payload = answer.status_code, {}, answer.content
                elif len(action) == 3:
                    status, headers, payload = action
                else:
                    status, headers = action
                    payload = _scripted_payload(status, body)
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: stderr is checked elsewhere
                pass

        lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

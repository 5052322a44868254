"""The recording thread: lines reach the recorder in order, both directions apart, and a recorder that
falls behind costs the relay nothing (copies past the bound are skipped, and the line they cut)."""

from __future__ import annotations

import threading
from typing import Any

import orjson

from activity_feed.mcp.sinks import LoggingClient
from activity_feed.proxy import ConnectionRecorder
from activity_feed.proxy.tap import RecordingTap

STOP_SECONDS = 10.0


class MemoryClient:
    """`FeedClient`'s `log` and `update`, keeping the events in memory."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}

    def log(self, **event: Any) -> str:
        event_id = str(len(self.events))
        self.events[event_id] = event
        return event_id

    def update(self, id: Any, **change: Any) -> None:
        self.events[id].update({key: value for key, value in change.items() if value is not None})


def call(id: int, name: str) -> bytes:
    return (
        orjson.dumps({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name}}) + b"\n"
    )


def result(id: int) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": id, "result": {"content": []}}) + b"\n"


def recording(client: MemoryClient, **options: Any) -> tuple[RecordingTap, threading.Event]:
    go = threading.Event()

    def make() -> ConnectionRecorder:
        go.wait(STOP_SECONDS)  # the recorder starts when the test says: copies wait meanwhile
        return ConnectionRecorder(LoggingClient(client), transport="stdio")

    tap = RecordingTap(make, **options)
    tap.start()
    return tap, go


def test_copies_are_recorded_in_order_in_each_direction() -> None:
    client = MemoryClient()
    tap, go = recording(client)
    message = call(1, "first")
    tap.client_to_server.copy(message[:10])
    tap.server_to_client.copy(b"noise without an end")
    tap.client_to_server.copy(message[10:] + call(2, "second"))
    tap.server_to_client.copy(b"\n" + result(2) + result(1))
    go.set()
    assert tap.stop(STOP_SECONDS)
    events = list(client.events.values())
    assert [(e["tool_name"], e["status"]) for e in events] == [("first", "success"), ("second", "success")]


def test_a_recorder_that_falls_behind_loses_copies_not_time() -> None:
    client = MemoryClient()
    tap, go = recording(client, max_backlog_bytes=100)
    tap.client_to_server.copy(call(1, "kept"))
    tap.client_to_server.copy(b"x" * 200)  # over the bound, but the copy itself is taken
    tap.client_to_server.copy(b"skipped: the recorder is behind\n" + call(2, "lost"))
    assert tap.client_to_server.queued - tap.client_to_server.done > 100
    go.set()
    assert tap.stop(STOP_SECONDS)
    assert [e["tool_name"] for e in client.events.values()] == ["kept"]

    client = MemoryClient()
    tap, go = recording(client, max_backlog_bytes=100)
    tap.client_to_server.copy(b"a line cut by the gap")
    tap.client_to_server.copy(b"y" * 200)
    tap.client_to_server.copy(b"dropped\n")
    go.set()
    for _ in range(1000):  # the recorder catches up: copies are taken again (bounded wait)
        if tap.client_to_server.done == tap.client_to_server.queued:
            break
        threading.Event().wait(0.01)
    # Where the cut line ended is unknown: the copy skips to the next newline it sees.
    tap.client_to_server.copy(b"skipped\n" + call(3, "after"))
    assert tap.stop(STOP_SECONDS)
    assert [e["tool_name"] for e in client.events.values()] == ["after"]

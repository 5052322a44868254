"""Retention and the pending timeout inside the service, seen from the stream: connected clients get
`activity_deleted` and `tool_failed`, reconnecting ones replay the deletions, and a cursor from before
dropped tombstones gets `resync`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect

from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore
from activity_feed.store.maintenance import Retention, drop_tombstones, prune
from tests.support.server import LiveServer

WAIT_SECONDS = 10.0
TICK = "0.05s"  # the maintenance interval: a pass every 50 ms, so every wait below is short
Message = dict[str, Any]


@asynccontextmanager
async def open_stream(server: LiveServer, **query: str) -> AsyncIterator[ClientConnection]:
    url = f"{server.ws_url}/activities/ws" + (f"?{urlencode(query)}" if query else "")
    async with connect(url, open_timeout=WAIT_SECONDS, close_timeout=2) as ws:
        yield ws


async def collect_until(ws: ClientConnection, done: Callable[[list[Message]], bool]) -> list[Message]:
    """Messages until `done` says the list is complete, within WAIT_SECONDS."""
    messages: list[Message] = []
    async with asyncio.timeout(WAIT_SECONDS):
        while not done(messages):
            messages.append(json.loads(await ws.recv()))
    return messages


def seen(messages: list[Message], kind: str) -> set[str]:
    return {m["event"]["id"] for m in messages if m["type"] == kind}


async def post(http: httpx.AsyncClient, **fields: Any) -> Message:
    response = await http.post("/activities/log", json={"event_type": "tool_call", **fields})
    assert response.status_code == 201, response.text
    return cast(Message, response.json())


def stamp(ago: timedelta) -> str:
    return (datetime.now(UTC) - ago).isoformat()


async def test_retention_deletions_reach_connected_and_reconnecting_clients(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(
        Settings(
            database_url=settings.database_url,
            retention_max_events=2,
            pending_timeout=0,
            maintenance_interval=TICK,
        )
    )
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http,
        open_stream(server) as ws,
    ):
        events = [
            await post(http, status="success", timestamp=stamp(timedelta(minutes=10 - i))) for i in range(5)
        ]
        pruned = {event["id"] for event in events[:3]}

        messages = await collect_until(ws, lambda got: pruned <= seen(got, "activity_deleted"))

        assert seen(messages, "activity_deleted") == pruned
        assert seen(messages, "activity_logged") <= {event["id"] for event in events}
        recent = (await http.get("/activities/recent")).json()
        assert [event["id"] for event in recent] == [events[4]["id"], events[3]["id"]]

    # A client that was away replays the deletions from their tombstones.
    async with open_stream(server, since="0") as ws:
        replay = await collect_until(ws, lambda got: len(got) == 5)
    assert [m["type"] for m in replay].count("activity_deleted") == 3
    assert seen(replay, "activity_deleted") == pruned
    assert seen(replay, "activity_logged") == {events[3]["id"], events[4]["id"]}


async def test_a_stale_pending_call_arrives_as_tool_failed_and_a_late_completion_wins(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(
        Settings(database_url=settings.database_url, pending_timeout="1m", maintenance_interval=TICK)
    )
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http,
        open_stream(server) as ws,
    ):
        stale = await post(http, tool_name="slow", timestamp=stamp(timedelta(hours=1)))

        messages = await collect_until(ws, lambda got: stale["id"] in seen(got, "tool_failed"))

        failed = next(m["event"] for m in messages if m["type"] == "tool_failed")
        assert failed["status"] == "error"
        assert failed["error_message"] == "no completion arrived within 1m (the pending timeout)"

        response = await http.patch(
            f"/activities/{stale['id']}", json={"status": "success", "duration_ms": 5}
        )
        assert response.status_code == 200, response.text
        completed = await collect_until(ws, lambda got: stale["id"] in seen(got, "tool_completed"))
        assert completed[-1]["event"]["status"] == "success"
        assert completed[-1]["event"]["error_message"] is None


async def test_a_cursor_from_before_dropped_tombstones_gets_resync(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    store = ActivityStore(settings.database_url)
    await store.start()
    try:
        for _ in range(4):
            await store.create(event=ActivityCreate(event_type=EventType.SYSTEM_EVENT))
        await prune(store, retention=Retention(keep=1))  # changes 5-7: three tombstones
        # As if the replay limit had been 2 when these were dropped, and is larger now.
        assert await drop_tombstones(store, keep_changes=2) == 1
        assert await store.replay_window() == (5, 7)
    finally:
        await store.close()
    server = live_server(settings)

    async with open_stream(server, since="4") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS)) == {"type": "resync"}

    async with open_stream(server, since="5") as ws:
        replay = await collect_until(ws, lambda got: len(got) == 2)
    assert [(m["type"], m["cursor"]) for m in replay] == [
        ("activity_deleted", "6"),
        ("activity_deleted", "7"),
    ]

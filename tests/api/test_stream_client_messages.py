"""What stream clients send: small messages are read and ignored, a message over 64 KiB closes the
connection (1009), and neither disturbs the other clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from activity_feed.api.server import WS_MAX_MESSAGE_BYTES
from tests.support.server import LiveServer

WAIT_SECONDS = 5.0


def stream_url(server: LiveServer) -> str:
    return f"{server.ws_url}/activities/ws"


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def log(server: LiveServer) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http:
        response = await http.post("/activities/log", json={"event_type": "system_event"})
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


async def test_client_messages_are_ignored(feed_server: LiveServer) -> None:
    async with connect(stream_url(feed_server), open_timeout=WAIT_SECONDS, close_timeout=2) as ws:
        for text in ["hello", '{"type": "subscribe"}', "x" * WS_MAX_MESSAGE_BYTES]:
            await ws.send(text)
        await ws.send(b"\x00\xff binary")
        event_id = await log(feed_server)

        message = await next_message(ws)

    assert message["type"] == "activity_logged"
    assert message["event"]["id"] == event_id


async def test_a_message_over_64_kib_closes_only_that_connection(feed_server: LiveServer) -> None:
    options: dict[str, Any] = {"open_timeout": WAIT_SECONDS, "close_timeout": 2, "max_size": None}
    async with (
        connect(stream_url(feed_server), **options) as abuser,
        connect(stream_url(feed_server)) as other,
    ):
        await abuser.send("x" * (WS_MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await next_message(abuser)
        event_id = await log(feed_server)
        message = await next_message(other)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert message["event"]["id"] == event_id

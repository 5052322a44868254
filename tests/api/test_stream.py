"""`/activities/ws` through a real server: message types and shape, filters, order, replay by cursor,
resync, and the slow-consumer rule."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from activity_feed.settings import Settings
from tests.support.server import LiveServer

WAIT_SECONDS = 10.0
Message = dict[str, Any]


def event_body(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool_call", "tool_name": "search", "user_source": "tests", **fields}


def stream_url(server: LiveServer, **query: str) -> str:
    return f"{server.ws_url}/activities/ws" + (f"?{urlencode(query)}" if query else "")


@asynccontextmanager
async def open_stream(server: LiveServer, **query: str) -> AsyncIterator[ClientConnection]:
    async with connect(stream_url(server, **query), open_timeout=WAIT_SECONDS, close_timeout=2) as ws:
        yield ws


@asynccontextmanager
async def rest_client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as client:
        yield client


@pytest.fixture
async def http(feed_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(feed_server) as client:
        yield client


async def next_message(ws: ClientConnection) -> Message:
    async with asyncio.timeout(WAIT_SECONDS):
        raw = await ws.recv()
    message = json.loads(raw)
    assert isinstance(message, dict)
    return message


async def messages_until(
    ws: ClientConnection, last: Callable[[Message], bool], *, limit_seconds: float = WAIT_SECONDS
) -> list[Message]:
    """Every message up to and including the first one for which `last` is true."""
    messages: list[Message] = []
    async with asyncio.timeout(limit_seconds):
        while not messages or not last(messages[-1]):
            messages.append(await next_message(ws))
    return messages


def about(event_id: str) -> Callable[[Message], bool]:
    return lambda message: message.get("event", {}).get("id") == event_id


async def create(http: httpx.AsyncClient, **fields: Any) -> Message:
    response = await http.post("/activities/log", json=event_body(**fields))
    assert response.status_code == 201, response.text
    return cast(Message, response.json())


async def patch(http: httpx.AsyncClient, event_id: str, **fields: Any) -> Message:
    response = await http.patch(f"/activities/{event_id}", json=fields)
    assert response.status_code == 200, response.text
    return cast(Message, response.json())


def assert_increasing_cursors(messages: list[Message]) -> None:
    cursors = [int(m["cursor"]) for m in messages]  # opaque to clients; numeric in this implementation
    assert cursors == sorted(set(cursors)), cursors


async def test_each_change_sends_its_message_type(feed_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with open_stream(feed_server) as ws:
        created = await create(http, data={"a": 1})
        logged = await next_message(ws)
        assert set(logged) == {"type", "event", "cursor"}
        assert logged["type"] == "activity_logged"
        assert logged["event"] == created
        assert isinstance(logged["cursor"], str)

        completed = await patch(http, created["id"], status="success", duration_ms=12.5)
        message = await next_message(ws)
        assert (message["type"], message["event"]) == ("tool_completed", completed)

        other = await create(http)
        assert (await next_message(ws))["event"]["id"] == other["id"]
        failed = await patch(http, other["id"], status="error", error_message="boom")
        message = await next_message(ws)
        assert (message["type"], message["event"]) == ("tool_failed", failed)

        updated = await patch(http, created["id"], data={"b": 2})
        message = await next_message(ws)
        assert (message["type"], message["event"]) == ("activity_updated", updated)
        assert message["event"]["data"] == {"a": 1, "b": 2}
        assert message["event"]["status"] == "success"

        assert (await http.delete(f"/activities/{other['id']}")).status_code == 204
        message = await next_message(ws)
        assert set(message) == {"type", "event", "cursor"}
        assert message["type"] == "activity_deleted"
        assert message["event"]["id"] == other["id"]


@pytest.mark.parametrize(
    ("query", "unwanted", "wanted"),
    [
        ({"event_type": "api_request"}, {"event_type": "tool_call"}, {"event_type": "api_request"}),
        ({"status": "error"}, {"status": "success"}, {"status": "error"}),
        ({"tool_name": "calendar"}, {"tool_name": "search"}, {"tool_name": "calendar"}),
        ({"session_id": "s2"}, {"session_id": "s1"}, {"session_id": "s2"}),
        ({"session_id": "s2"}, {}, {"session_id": "s2", "event_type": "mcp_notification"}),
    ],
)
async def test_stream_filters_by_query(
    feed_server: LiveServer,
    http: httpx.AsyncClient,
    query: dict[str, str],
    unwanted: Message,
    wanted: Message,
) -> None:
    async with open_stream(feed_server, **query) as ws:
        await create(http, **unwanted)
        match = await create(http, **wanted)
        message = await next_message(ws)
        assert message["event"]["id"] == match["id"]
        assert message["event"].items() >= wanted.items()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"status": "bogus"}, "status"),
        ({"event_type": "nope"}, "event_type"),
        ({"tool_name": "t" * 201}, "tool_name"),
    ],
)
async def test_a_filter_the_feed_does_not_know_is_refused_saying_which(
    feed_server: LiveServer, query: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with open_stream(feed_server, **query):
            pass
    response = refused.value.response
    assert response.status_code == 422  # not the bare 403 of a refused origin or token
    detail = json.loads(response.body or b"{}")["detail"]
    assert detail.startswith(f"{named}: ")


async def test_status_filter_sees_the_change_that_makes_an_event_match(
    feed_server: LiveServer, http: httpx.AsyncClient
) -> None:
    async with open_stream(feed_server, status="error") as ws:
        pending = await create(http)
        await patch(http, pending["id"], data={"step": 1})
        failed = await patch(http, pending["id"], status="error")
        message = await next_message(ws)
        assert (message["type"], message["event"]) == ("tool_failed", failed)


async def test_deletion_reaches_a_filtered_stream_whatever_the_last_state(
    feed_server: LiveServer, http: httpx.AsyncClient
) -> None:
    # A filter must never hide a deletion (ChangeFilter's contract): live, as on replay.
    async with open_stream(feed_server, status="pending") as ws:
        event = await create(http)
        assert (await next_message(ws))["event"]["id"] == event["id"]
        await patch(http, event["id"], status="success")
        assert (await http.delete(f"/activities/{event['id']}")).status_code == 204
        marker = await create(http)
        messages = await messages_until(ws, about(marker["id"]))
    assert [(m["type"], m["event"]["id"]) for m in messages] == [
        ("activity_deleted", event["id"]),
        ("activity_logged", marker["id"]),
    ]


async def test_replay_applies_the_filter(feed_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with open_stream(feed_server) as ws:
        await create(http)
        cursor = (await next_message(ws))["cursor"]
    await create(http, event_type="tool_call")
    wanted = await create(http, event_type="api_request")
    async with open_stream(feed_server, event_type="api_request", since=cursor) as ws:
        live = await create(http, event_type="api_request")
        messages = await messages_until(ws, about(live["id"]))
    assert [m["event"]["id"] for m in messages] == [wanted["id"], live["id"]]


async def test_replay_applies_the_session_filter(feed_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with open_stream(feed_server) as ws:
        await create(http, session_id="mine")
        cursor = (await next_message(ws))["cursor"]
    await create(http, session_id="other")
    await create(http)
    wanted = await create(http, session_id="mine")
    async with open_stream(feed_server, session_id="mine", since=cursor) as ws:
        await create(http, session_id="other")
        live = await create(http, session_id="mine", event_type="mcp_request")
        messages = await messages_until(ws, about(live["id"]))
    assert [m["event"]["id"] for m in messages] == [wanted["id"], live["id"]]
    assert {m["event"]["session_id"] for m in messages} == {"mine"}


async def test_batch_arrives_in_change_order(feed_server: LiveServer, http: httpx.AsyncClient) -> None:
    ids = [(await create(http))["id"] for _ in range(2)]  # existing events, updated by the batch
    async with open_stream(feed_server) as ws:
        new = [event_body(id=f"0190a000-0000-7000-8000-00000000000{i}", data={"i": i}) for i in range(3)]
        updates = [
            {"id": new[0]["id"], "status": "success"},
            {"id": ids[0], "status": "error"},
            {"id": new[2]["id"], "data": {"x": 1}},
            {"id": ids[1], "status": "success"},
        ]
        response = await http.post("/activities/batch", json={"events": new, "updates": updates})
        assert response.json() == {"created": 3, "existing": 0, "updated": 4, "missing": 0}
        messages = [await next_message(ws) for _ in range(7)]
    assert [(m["type"], m["event"]["id"]) for m in messages] == [
        ("activity_logged", new[0]["id"]),
        ("activity_logged", new[1]["id"]),
        ("activity_logged", new[2]["id"]),
        ("tool_completed", new[0]["id"]),
        ("tool_failed", ids[0]),
        ("activity_updated", new[2]["id"]),
        ("tool_completed", ids[1]),
    ]
    assert messages[5]["event"]["data"] == {"i": 2, "x": 1}
    assert_increasing_cursors(messages)


async def test_replayed_create_is_not_broadcast(feed_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with open_stream(feed_server) as ws:
        first = await create(http)
        assert (await next_message(ws))["event"]["id"] == first["id"]
        again = await http.post("/activities/log", json=event_body(id=first["id"], tool_name="changed"))
        assert again.status_code == 200
        second = await create(http)
        message = await next_message(ws)
        assert (message["type"], message["event"]["id"]) == ("activity_logged", second["id"])


async def test_reconnect_with_cursor_replays_what_was_missed(
    feed_server: LiveServer, http: httpx.AsyncClient
) -> None:
    async with open_stream(feed_server) as ws:
        before = [await create(http, data={"n": n}) for n in range(3)]
        seen = [await next_message(ws) for _ in before]
    cursor = seen[-1]["cursor"]

    await patch(http, before[0]["id"], status="success")
    await patch(http, before[0]["id"], data={"more": True})
    await patch(http, before[1]["id"], status="error")
    assert (await http.delete(f"/activities/{before[2]['id']}")).status_code == 204
    added = await create(http)
    await patch(http, added["id"], data={"late": 1})
    short_lived = await create(http)
    assert (await http.delete(f"/activities/{short_lived['id']}")).status_code == 204

    async with open_stream(feed_server, since=cursor) as ws:
        live = await create(http)
        replayed = await messages_until(ws, about(live["id"]))
    missed, live_message = replayed[:-1], replayed[-1]
    assert live_message["type"] == "activity_logged"
    assert_increasing_cursors(replayed)
    assert int(missed[0]["cursor"]) > int(cursor)

    final: dict[str, Message] = {}
    for message in missed:
        final[message["event"]["id"]] = message
    assert set(final) == {before[0]["id"], before[1]["id"], before[2]["id"], added["id"], short_lived["id"]}
    for event_id in (before[0]["id"], before[1]["id"], added["id"]):
        stored = (await http.get(f"/activities/{event_id}")).json()
        assert final[event_id]["event"] == stored
    assert final[before[0]["id"]]["type"] in {"tool_completed", "activity_updated"}
    assert final[before[1]["id"]]["type"] == "tool_failed"
    assert final[added["id"]]["type"] == "activity_logged"
    assert final[before[2]["id"]]["type"] == "activity_deleted"
    assert final[short_lived["id"]]["type"] == "activity_deleted"
    # Folding is allowed, repeating is not: never more messages for an id than changes made to it.
    changes_made = {before[0]["id"]: 2, before[1]["id"]: 1, before[2]["id"]: 1, added["id"]: 2}
    for event_id, count in (changes_made | {short_lived["id"]: 2}).items():
        assert 1 <= sum(m["event"]["id"] == event_id for m in missed) <= count


async def test_replay_while_events_keep_arriving(feed_server: LiveServer, http: httpx.AsyncClient) -> None:
    posted: list[str] = []
    stop_writing = asyncio.Event()
    progress = asyncio.Condition()

    async def writer() -> None:
        while not stop_writing.is_set():
            event_id = (await create(http, data={"i": len(posted)}))["id"]
            async with progress:
                posted.append(event_id)
                progress.notify_all()

    async def posted_at_least(count: int) -> None:
        async with asyncio.timeout(WAIT_SECONDS), progress:
            await progress.wait_for(lambda: len(posted) >= count)

    seen: list[Message] = []
    async with asyncio.TaskGroup() as tasks:
        async with open_stream(feed_server) as ws:
            writing = tasks.create_task(writer())
            seen += [await next_message(ws) for _ in range(10)]
        cursor = seen[-1]["cursor"]
        await posted_at_least(len(posted) + 20)  # the writer goes on while this client is away
        async with open_stream(feed_server, since=cursor) as ws:
            after_reconnect = len(posted)
            while len(seen) < after_reconnect + 30:  # replay, then live, with the writer still going
                seen.append(await next_message(ws))
            stop_writing.set()
            await writing
            sentinel = await create(http)
            seen += await messages_until(ws, about(sentinel["id"]))
    ids = [m["event"]["id"] for m in seen[:-1]]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    assert ids == posted, "the stream missed events or reordered them"
    assert {m["type"] for m in seen} == {"activity_logged"}
    assert_increasing_cursors(seen)


# Longer than any cursor this service sends: still a resync, not a failed handshake.
@pytest.mark.parametrize(
    "cursor", ["garbage", "-5", "12abc", "", "9" * 20, "\u0661\u0662", "1" * 41, "cursor-" * 100]
)
async def test_garbage_cursor_gets_resync(
    feed_server: LiveServer, http: httpx.AsyncClient, cursor: str
) -> None:
    async with open_stream(feed_server, since=cursor) as ws:
        assert await next_message(ws) == {"type": "resync"}
        live = await create(http)
        message = await next_message(ws)
        assert (message["type"], message["event"]["id"]) == ("activity_logged", live["id"])


async def test_cursor_ahead_of_the_server_gets_resync(
    feed_server: LiveServer, http: httpx.AsyncClient
) -> None:
    async with open_stream(feed_server) as ws:
        await create(http)
        cursor = int((await next_message(ws))["cursor"])
    async with open_stream(feed_server, since=str(cursor + 1000)) as ws:
        assert await next_message(ws) == {"type": "resync"}
        live = await create(http)
        assert (await next_message(ws))["event"]["id"] == live["id"]


async def missed_changes(http: httpx.AsyncClient, count: int) -> set[str]:
    """Make `count` changes (creates, then updates); return the ids they touched."""
    ids = [(await create(http))["id"] for _ in range((count + 1) // 2)]
    for event_id in ids[: count - len(ids)]:
        await patch(http, event_id, status="success")
    return set(ids)


@pytest.mark.parametrize(("missed", "replayed"), [(4, False), (3, True)])
async def test_resync_beyond_replay_limit(
    live_server: Callable[..., LiveServer], settings: Settings, missed: int, replayed: bool
) -> None:
    server = live_server(settings.model_copy(update={"replay_limit": 3}))
    async with rest_client(server) as http:
        async with open_stream(server) as ws:
            await create(http)
            cursor = (await next_message(ws))["cursor"]
        touched = await missed_changes(http, missed)
        async with open_stream(server, since=cursor) as ws:
            # The first message comes after the server has counted what it must replay, so the live
            # event created next cannot tip the count over the limit.
            first = await next_message(ws)
            live = await create(http)
            messages = [first, *await messages_until(ws, about(live["id"]))]
    if replayed:
        assert {m["event"]["id"] for m in messages[:-1]} == touched
        assert "resync" not in {m["type"] for m in messages}
    else:
        assert messages[0] == {"type": "resync"}
        assert [m["event"]["id"] for m in messages[1:]] == [live["id"]]


def small_receive_socket(server: LiveServer) -> socket.socket:
    # A tiny receive buffer (autotuning off) so that a client that stops reading fills TCP quickly.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


# A slow client resumes reading when it resumes: at once, or after a pause of a few seconds.
@pytest.mark.parametrize("stall_seconds", [0.0, 3.0])
async def test_slow_client_is_closed_with_1013_and_others_keep_receiving(
    live_server: Callable[..., LiveServer], settings: Settings, stall_seconds: float
) -> None:
    server = live_server(settings.model_copy(update={"ws_queue_size": 50}))
    payload = "x" * 50_000
    async with (
        rest_client(server) as http,
        # No compression: the payload must really fill the stalled client's buffers.
        connect(
            stream_url(server), sock=small_receive_socket(server), max_queue=1, compression=None
        ) as stalled,
        open_stream(server) as healthy,
        asyncio.TaskGroup() as tasks,
    ):
        posted: list[str] = []
        sentinel_id = str(uuid.uuid4())
        reader = tasks.create_task(messages_until(healthy, about(sentinel_id), limit_seconds=40))
        async with asyncio.timeout(40):
            for _batch in range(60):  # at most 45 MB: far more than any socket buffers hold
                events = [event_body(id=str(uuid.uuid4()), data={"blob": payload}) for _ in range(15)]
                posted += [event["id"] for event in events]
                response = await http.post("/activities/batch", json={"events": events})
                assert response.json()["created"] == 15
                health = (await http.get("/health")).json()
                if health["stream_clients"] < 2:
                    break
            assert health["stream_clients"] == 1, "the stalled client was never dropped"
            await create(http, id=sentinel_id)
            received = [message["event"]["id"] for message in await reader]
        assert received == [*posted, sentinel_id]

        await asyncio.sleep(stall_seconds)  # the client's own pause, not a wait for the server
        close_code: int | None = None
        async with asyncio.timeout(WAIT_SECONDS):
            try:
                while True:
                    await stalled.recv()
            except ConnectionClosed as closed:
                close_code = closed.rcvd.code if closed.rcvd else None
        assert close_code == 1013
        # Counted for GET /metrics before the close was sent.
        metrics = text_string_to_metric_families((await http.get("/metrics")).text)
        closed = next(
            family for family in metrics if family.name == "activity_feed_stream_clients_closed_slow"
        )
        assert [sample.value for sample in closed.samples if sample.name.endswith("_total")] == [1]

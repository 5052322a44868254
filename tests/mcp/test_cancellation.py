"""A request cancelled by its client is recorded `cancelled: <reason>`, whichever of the cancellation
and the notification that says why reaches the instrumentation first; a request cut off by the end of
its connection says so. Every wait here is bounded."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from activity_feed.client import FeedClient
from activity_feed.mcp import CallRecorder, conversation, instrument
from activity_feed.mcp.connections import ConnectionState
from activity_feed.mcp.conversation import Conversation, RequestCall
from tests.mcp.conftest import CLIENT_INFO, wait_for_events
from tests.mcp.servers import lowlevel_server, property_server
from tests.mcp.streams import RawPeer, serving
from tests.support.server import LiveServer


def pending(name: str) -> Any:
    return lambda found: any(e["tool_name"] == name and e["status"] == "pending" for e in found)


def ended(name: str) -> Any:
    return lambda found: any(e["tool_name"] == name and e["status"] != "pending" for e in found)


def the(found: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [event] = [e for e in found if e["tool_name"] == name]
    return event


async def test_a_client_timeout_is_recorded_with_the_reason_the_client_gives(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    info = Implementation(**CLIENT_INFO)
    async with Client(server, mode="legacy", client_info=info) as client:
        with pytest.raises(MCPError, match="timed out"):
            await client.call_tool("check_calendar", {"day": "monday"}, read_timeout_seconds=0.2)
    found = await wait_for_events(sqlite_feed.url, ended("check_calendar"))
    event = the(found, "check_calendar")
    assert (event["status"], event["error_message"]) == ("error", "cancelled: timed out after 0.2s")
    assert event["duration_ms"] >= 200


@pytest.mark.parametrize(
    ("reason", "message"),
    [("the user pressed stop", "cancelled: the user pressed stop"), (None, "cancelled")],
)
async def test_a_cancellation_notification_gives_the_request_its_reason(
    sqlite_feed: LiveServer, feed_client: FeedClient, reason: str | None, message: str
) -> None:
    server = lowlevel_server()
    instrument(server, feed_client, record="all")
    async with serving(server) as (read, write):
        peer = RawPeer(read, write)
        await peer.handshake()
        await peer.request(5, "tools/call", {"name": "wait", "arguments": {}})
        await wait_for_events(sqlite_feed.url, pending("wait"))
        params: dict[str, Any] = {"requestId": 5}
        if reason is not None:
            params["reason"] = reason
        await peer.notify("notifications/cancelled", params)
        found = await wait_for_events(
            sqlite_feed.url, lambda f: ended("wait")(f) and ended("notifications/cancelled")(f)
        )
    event = the(found, "wait")
    assert (event["status"], event["error_message"]) == ("error", message)
    notification = the(found, "notifications/cancelled")  # with record="all", the notification too
    assert (notification["event_type"], notification["status"]) == ("mcp_notification", "success")
    assert notification["session_id"] == event["session_id"]


async def test_a_request_cut_off_by_the_end_of_its_connection_says_so(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = lowlevel_server()
    instrument(server, feed_client)
    async with serving(server) as (read, write):
        peer = RawPeer(read, write)
        await peer.handshake()
        await peer.request(1, "tools/call", {"name": "wait", "arguments": {}})
        await wait_for_events(sqlite_feed.url, pending("wait"))
    # Leaving closed the client's side: the server saw the end of its input with the call in flight.
    found = await wait_for_events(sqlite_feed.url, ended("wait"))
    event = the(found, "wait")
    assert (event["status"], event["error_message"]) == ("error", "connection closed before the response")


async def test_an_in_process_caller_that_stops_waiting_cancels_its_request(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with Client(server, client_info=Implementation(**CLIENT_INFO)) as client:
        # On the 2026 path the handler runs inside the caller's call: no notification, no reason.
        with anyio.move_on_after(0.2):
            await client.call_tool("check_calendar", {"day": "monday"})
    found = await wait_for_events(sqlite_feed.url, ended("check_calendar"))
    event = the(found, "check_calendar")
    assert (event["status"], event["error_message"]) == ("error", "cancelled")


class Spy:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def log(self, **fields: Any) -> str:
        return "0193a3f0-0000-7000-8000-000000000001"

    def update(self, id: Any, **fields: Any) -> None:
        self.updates.append(fields)


def tracked_call(spy: Spy) -> RequestCall:
    conversation_ = Conversation(CallRecorder(spy))
    state = ConnectionState("session-1", "stdio")
    call = conversation_.begin(state, "client", "1", None, None, None, "tools/call", 9, {"name": "wait"})
    assert call is not None
    assert state.in_flight == {9: call}
    return call


async def test_the_reason_that_arrives_before_the_cancellation_is_used_at_once() -> None:
    spy = Spy()
    call = tracked_call(spy)
    call.cancelled_by_peer("superseded")
    with anyio.fail_after(0.5):  # no wait: the reason is known
        await call.interrupted("peer")
    assert [u["error_message"] for u in spy.updates] == ["cancelled: superseded"]


async def test_the_reason_that_arrives_after_the_cancellation_ends_the_wait_for_it() -> None:
    spy = Spy()
    call = tracked_call(spy)
    async with anyio.create_task_group() as tg:
        tg.start_soon(call.interrupted, "peer")
        await anyio.wait_all_tasks_blocked()
        assert spy.updates == []  # waiting for the notification
        call.cancelled_by_peer("superseded")
    assert [u["error_message"] for u in spy.updates] == ["cancelled: superseded"]


async def test_a_reason_that_never_comes_is_waited_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conversation, "CANCEL_REASON_SECONDS", 0.05)
    spy = Spy()
    call = tracked_call(spy)
    with anyio.fail_after(2.0):
        await call.interrupted("peer")
    assert [u["error_message"] for u in spy.updates] == ["cancelled"]


async def test_a_closing_connection_does_not_wait_for_a_reason() -> None:
    spy = Spy()
    call = tracked_call(spy)
    with anyio.fail_after(0.5):
        await call.interrupted("none")
    assert [u["error_message"] for u in spy.updates] == ["connection closed before the response"]

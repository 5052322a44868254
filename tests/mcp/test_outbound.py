"""What the server asks the client while handling a request (sampling, elicitation, roots) is recorded
with direction `server_to_client`, in the session of the connection it goes over."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    CreateMessageResult,
    ElicitResult,
    ErrorData,
    Implementation,
    ListRootsResult,
    Root,
    TextContent,
)

from activity_feed.client import FeedClient
from activity_feed.mcp import instrument
from tests.mcp.conftest import CLIENT_INFO, events
from tests.mcp.servers import property_server
from tests.support.server import LiveServer

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def sampling(context: Any, params: Any) -> CreateMessageResult:
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text="A bright flat"), model="test-model"
    )


async def declined_sampling(context: Any, params: Any) -> ErrorData:
    return ErrorData(code=-1, message="the user declined")


async def elicitation(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="accept", content={"confirm": True})


async def roots(context: Any) -> ListRootsResult:
    return ListRootsResult(roots=[Root(uri="file:///lettings")])


@contextmanager
def handshake_era() -> Iterator[None]:
    """Sampling, elicitation and roots are gone from the 2026 protocol; the SDK says so when a
    handshake-era client or server uses them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        yield


def client_for(server: Any, sampling_callback: Any = sampling) -> Client:
    with handshake_era():
        return Client(
            server,
            mode="legacy",
            client_info=Implementation(**CLIENT_INFO),
            sampling_callback=sampling_callback,
            elicitation_callback=elicitation,
            list_roots_callback=roots,
        )


async def test_requests_the_server_sends_the_client_are_recorded(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    with handshake_era():
        async with client_for(server) as client:
            drafted = await client.call_tool(
                "draft_listing", {"property_id": 7}, meta={"traceparent": TRACEPARENT}
            )
            booked = await client.call_tool("book_viewing", {"property_id": 7})
            folders = await client.call_tool("shared_folders", {})
    assert drafted.content == [TextContent(type="text", text="A bright flat")]
    assert booked.content == [TextContent(type="text", text="booked: accept")]
    assert folders.content == [TextContent(type="text", text="file:///lettings")]
    found = events(feed_client, sqlite_feed)
    outbound = [e for e in found if e["data"]["mcp"]["direction"] == "server_to_client"]
    assert [(e["tool_name"], e["event_type"], e["status"]) for e in outbound] == [
        ("sampling/createMessage", "mcp_request", "success"),
        ("elicitation/create", "mcp_request", "success"),
        ("roots/list", "mcp_request", "success"),
    ]
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert {e["user_source"] for e in outbound} == {"Claude Desktop 0.9.2"}
    sample = outbound[0]
    # Asked while handling a traced tool call: the same trace.
    assert sample["correlation_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert sample["data"]["mcp"]["arguments"]["messages"][0]["content"]["text"] == "Describe 7"
    assert "A bright flat" in sample["data"]["mcp"]["result"]
    assert "file:///lettings" in outbound[2]["data"]["mcp"]["result"]
    draft = next(e for e in found if e["tool_name"] == "draft_listing")
    assert draft["timestamp"] < sample["timestamp"]
    assert draft["duration_ms"] >= sample["duration_ms"]


async def test_an_error_the_client_answers_is_recorded_with_its_code(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    with handshake_era():
        async with client_for(server, sampling_callback=declined_sampling) as client:
            with pytest.raises(MCPError, match="the user declined"):  # the tool let it through
                await client.call_tool("draft_listing", {"property_id": 7})
    found = events(feed_client, sqlite_feed)
    sample = next(e for e in found if e["tool_name"] == "sampling/createMessage")
    assert (sample["status"], sample["error_message"]) == ("error", "the user declined")
    assert sample["data"]["mcp"]["error"] == {"code": -1, "message": "the user declined"}
    assert next(e for e in found if e["tool_name"] == "draft_listing")["status"] == "error"


@pytest.mark.parametrize("record", ["tools", "requests"])
async def test_only_record_tools_leaves_them_out(
    sqlite_feed: LiveServer, feed_client: FeedClient, record: Any
) -> None:
    server = property_server()
    instrument(server, feed_client, record=record)
    with handshake_era():
        async with client_for(server) as client:
            await client.call_tool("shared_folders", {})
    names = [e["tool_name"] for e in events(feed_client, sqlite_feed)]
    assert ("roots/list" in names) is (record == "requests")
    assert "shared_folders" in names


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_progress_the_server_reports_is_recorded_with_record_all_on_either_era(
    sqlite_feed: LiveServer, feed_client: FeedClient, mode: str
) -> None:
    server = property_server()
    instrument(server, feed_client, record="all")
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    with handshake_era():
        async with Client(server, mode=mode, client_info=Implementation(**CLIENT_INFO)) as client:
            await client.call_tool("count_lettings", {}, progress_callback=on_progress)
    assert seen == [1.0, 2.0]
    found = events(feed_client, sqlite_feed, event_type="mcp_notification")
    progress = [event for event in found if event["tool_name"] == "notifications/progress"]
    assert [event["data"]["mcp"]["direction"] for event in progress] == ["server_to_client"] * 2
    assert len({event["session_id"] for event in progress}) == 1
    assert progress[0]["session_id"] is not None


async def test_progress_is_not_recorded_with_record_requests(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with Client(server, client_info=Implementation(**CLIENT_INFO)) as client:
        await client.call_tool("count_lettings", {}, progress_callback=None)
    found = events(feed_client, sqlite_feed)
    assert [event["status"] for event in found if event["tool_name"] == "count_lettings"] == ["success"]
    assert [event for event in found if event["event_type"] == "mcp_notification"] == []

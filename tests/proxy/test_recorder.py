"""What the proxy records of the JSON-RPC messages it relays, as the feed stores it: requests paired
with their responses in both directions, errors, cancellations, batches, record modes, the end of a
connection, and messages too large to record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from activity_feed.client import FeedClient
from activity_feed.mcp import recorder as mcp_recorder
from activity_feed.proxy import CLIENT_TO_SERVER, SERVER_TO_CLIENT, ConnectionRecorder
from tests.proxy.conftest import by_name, settled, stored, wait_until
from tests.support.server import LiveServer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "Claude Desktop", "version": "0.9.2"},
    },
}
INITIALIZED = {
    "jsonrpc": "2.0",
    "id": 0,
    "result": {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "weather", "version": "2.1.0"},
    },
}


@pytest.fixture
def client(sqlite_feed: LiveServer) -> Iterator[FeedClient]:
    feed = FeedClient(sqlite_feed.url, flush_interval=0.01)
    mcp_recorder._warned.clear()
    yield feed
    feed.close(timeout=1.0)


def send(recorder: ConnectionRecorder, direction: Any, *messages: Any) -> None:
    for message in messages:
        recorder.message(orjson.dumps(message), direction)


def handshake(recorder: ConnectionRecorder) -> None:
    send(recorder, CLIENT_TO_SERVER, INITIALIZE)
    send(recorder, SERVER_TO_CLIENT, INITIALIZED)
    send(recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "method": "notifications/initialized"})


def call(id: int, name: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, **params},
    }


def text_result(id: int, text: str, *, is_error: bool = False) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": id,
        "result": {"content": [{"type": "text", "text": text}], "isError": is_error},
    }


def test_a_conversation_is_recorded_with_the_client_the_server_and_the_session(
    client: FeedClient, sqlite_feed: LiveServer
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio", session_id="proxy-1")
    handshake(recorder)
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    send(
        recorder, CLIENT_TO_SERVER, call(1, "forecast", {"city": "Leeds"}, _meta={"traceparent": traceparent})
    )
    send(recorder, SERVER_TO_CLIENT, text_result(1, "rain"))
    send(recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "forecast"}]}})
    found = wait_until(sqlite_feed.url, settled(3))
    assert [e["tool_name"] for e in found] == ["initialize", "forecast", "tools/list"]
    assert {e["session_id"] for e in found} == {"proxy-1"}
    assert {e["user_source"] for e in found} == {"Claude Desktop 0.9.2"}
    initialize, forecast, listed = found
    assert initialize["event_type"] == "mcp_request"
    assert initialize["data"]["mcp"]["server"] == {"name": "weather", "version": "2.1.0"}
    assert initialize["data"]["mcp"]["client"] == {"name": "Claude Desktop", "version": "0.9.2"}
    assert forecast["event_type"] == "tool_call"
    assert forecast["status"] == "success"
    assert forecast["duration_ms"] >= 0
    assert forecast["correlation_id"] == TRACE_ID
    assert forecast["data"]["arguments"] == {"city": "Leeds"}
    assert forecast["data"]["result"] == "rain"
    mcp = forecast["data"]["mcp"]
    assert mcp["source"] == "proxy"
    assert mcp["transport"] == "stdio"
    assert mcp["direction"] == "client_to_server"
    assert mcp["request_id"] == 1
    assert mcp["server"] == {"name": "weather", "version": "2.1.0"}
    assert mcp["protocol_version"] == "2025-06-18"
    assert mcp["trace_id"] == TRACE_ID
    assert listed["data"]["mcp"]["result"] == "1 tools: forecast"


def test_errors_keep_their_code_and_message_and_is_error_results_fail(
    client: FeedClient, sqlite_feed: LiveServer
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    handshake(recorder)
    send(
        recorder,
        CLIENT_TO_SERVER,
        {"jsonrpc": "2.0", "id": "r1", "method": "resources/read", "params": {"uri": "x://1"}},
    )
    error = {"code": -32002, "message": "Resource not found: x://1"}
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": "r1", "error": error})
    send(recorder, CLIENT_TO_SERVER, call(2, "forecast", {"city": "Atlantis"}))
    send(recorder, SERVER_TO_CLIENT, text_result(2, "no such city", is_error=True))
    named = by_name(wait_until(sqlite_feed.url, settled(3)))
    read = named["resources/read"]
    assert read["status"] == "error"
    assert read["error_message"] == "Resource not found: x://1"
    assert read["data"]["mcp"]["error"] == error
    assert read["data"]["mcp"]["target"] == "x://1"
    failed = named["forecast"]
    assert failed["status"] == "error"
    assert failed["error_message"] == "no such city"
    assert failed["data"]["mcp"]["is_error"] is True


def test_requests_from_the_server_pair_with_the_clients_answers(
    client: FeedClient, sqlite_feed: LiveServer
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    handshake(recorder)
    # The same id both ways: each side numbers its own requests.
    send(recorder, CLIENT_TO_SERVER, call(1, "plan", {}))
    sampling = {"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "params": {"maxTokens": 5}}
    send(recorder, SERVER_TO_CLIENT, sampling)
    send(recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "id": 1, "result": {"role": "assistant"}})
    found = wait_until(sqlite_feed.url, lambda found: any(e["status"] != "pending" for e in found))
    named = by_name(found)
    assert named["sampling/createMessage"]["status"] == "success"
    assert named["sampling/createMessage"]["data"]["mcp"]["direction"] == "server_to_client"
    assert named["plan"]["status"] == "pending"
    send(recorder, SERVER_TO_CLIENT, text_result(1, "done"))
    named = by_name(wait_until(sqlite_feed.url, settled(3)))
    assert named["plan"]["data"]["result"] == "done"


def test_a_cancellation_ends_its_request_with_the_reason(client: FeedClient, sqlite_feed: LiveServer) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    handshake(recorder)
    send(recorder, CLIENT_TO_SERVER, call(5, "slow", {}))
    cancel = {"requestId": 5, "reason": "the user stopped it"}
    send(
        recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
    )
    found = wait_until(sqlite_feed.url, settled(2))
    slow = by_name(found)["slow"]
    assert slow["status"] == "error"
    assert slow["error_message"] == "cancelled: the user stopped it"
    assert "notifications/cancelled" not in by_name(found)  # `requests` records the effect only


def test_a_batch_is_recorded_message_by_message(client: FeedClient, sqlite_feed: LiveServer) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    handshake(recorder)
    send(recorder, CLIENT_TO_SERVER, [call(1, "a", {}), call(2, "b", {})])
    send(recorder, SERVER_TO_CLIENT, [text_result(2, "two"), text_result(1, "one")])
    named = by_name(wait_until(sqlite_feed.url, settled(3)))
    assert named["a"]["data"]["result"] == "one"
    assert named["b"]["data"]["result"] == "two"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("tools", ["forecast"]),
        ("requests", ["initialize", "forecast", "tools/list"]),
        (
            "all",
            [
                "initialize",
                "notifications/initialized",
                "forecast",
                "notifications/progress",
                "tools/list",
                "ping",
            ],
        ),
    ],
)
def test_record_modes(client: FeedClient, sqlite_feed: LiveServer, record: Any, expected: list[str]) -> None:
    recorder = ConnectionRecorder(client, transport="stdio", record=record)
    handshake(recorder)
    send(recorder, CLIENT_TO_SERVER, call(1, "forecast", {}))
    progress = {"progressToken": 1, "progress": 1}
    send(
        recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "method": "notifications/progress", "params": progress}
    )
    send(recorder, SERVER_TO_CLIENT, text_result(1, "sun"))
    send(recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": 2, "result": {"tools": []}})
    send(recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "id": 3, "method": "ping"})
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": 3, "result": {}})
    found = wait_until(sqlite_feed.url, settled(len(expected)))
    assert client.flush(5.0)
    found = stored(sqlite_feed.url)
    assert [e["tool_name"] for e in found] == expected
    assert {e["user_source"] for e in found} == {"Claude Desktop 0.9.2"}  # learnt even when not recorded
    if record == "all":
        assert by_name(found)["notifications/progress"]["event_type"] == "mcp_notification"


def test_requests_left_waiting_end_with_the_reason(client: FeedClient, sqlite_feed: LiveServer) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    handshake(recorder)
    send(recorder, CLIENT_TO_SERVER, call(1, "slow", {}))
    assert recorder.pending == 1
    recorder.close("no response: server exited with code 3")
    send(recorder, SERVER_TO_CLIENT, text_result(1, "too late"))
    slow = by_name(wait_until(sqlite_feed.url, settled(2)))["slow"]
    assert slow["status"] == "error"
    assert slow["error_message"] == "no response: server exited with code 3"


def test_what_is_not_json_rpc_is_ignored(
    client: FeedClient, sqlite_feed: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    ignored = (
        b"hello",
        b"{broken",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"id": 9, "result": {}}',
        b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/call"}',
        b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}',
        b"\xff\xfe",
    )
    for line in ignored:
        recorder.message(line, SERVER_TO_CLIENT)
    send(recorder, CLIENT_TO_SERVER, call(1, "after", {}))
    found = wait_until(sqlite_feed.url, lambda found: len(found) >= 1)
    assert [e["tool_name"] for e in found] == ["after"]
    assert "could not record" not in caplog.text


@pytest.mark.parametrize("node_order", [False, True])
def test_a_response_too_large_to_record_still_ends_its_request(
    client: FeedClient, sqlite_feed: LiveServer, node_order: bool
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    send(recorder, CLIENT_TO_SERVER, call(7, "dump", {}))
    body = b'"result":{"content":[{"type":"text","text":"' + b"x" * 4096 + b'"}]}'
    if node_order:  # the id last, as the TypeScript SDK writes it
        line = b"{" + body + b',"jsonrpc":"2.0","id":7}'
    else:
        line = b'{"jsonrpc":"2.0","id":7,' + body + b"}"
    recorder.oversized(line[:1000], line[-1000:], 5 * 1024 * 1024, SERVER_TO_CLIENT)
    dump = wait_until(sqlite_feed.url, settled(1))[0]
    assert dump["status"] == "success"
    assert dump["data"]["result"] == "[a 5.0 MiB response, too large to record]"


def test_secrets_are_redacted_from_arguments_and_error_messages(
    client: FeedClient, sqlite_feed: LiveServer
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    key = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a"
    send(recorder, CLIENT_TO_SERVER, call(1, "login", {"password": "hunter2", "note": "ok"}))
    send(
        recorder,
        SERVER_TO_CLIENT,
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": f"bad key {key}"}},
    )
    login = wait_until(sqlite_feed.url, settled(1))[0]
    assert login["data"]["arguments"]["password"] != "hunter2"
    assert login["data"]["arguments"]["note"] == "ok"
    assert key not in login["error_message"]
    assert key not in orjson.dumps(login).decode()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ({"code": -32601, "message": "Method not found"}, "success"),  # the Python SDK's server
        ({"code": -32000, "message": "Bad Request: Server not initialized"}, "success"),  # TypeScript's
        ({"code": -32022, "message": "Unsupported protocol version"}, "error"),  # no fallback follows
        ({"code": -32000, "message": "activity-feed proxy: the upstream is unreachable"}, "error"),
        ({"message": "HTTP 500: boom"}, "error"),  # no JSON-RPC answer at all
    ],
    ids=["not-found", "typescript", "unsupported-version", "proxy-own", "no-code"],
)
def test_a_refused_discovery_is_the_fallback_to_initialize(
    client: FeedClient, sqlite_feed: LiveServer, error: dict[str, Any], status: str
) -> None:
    recorder = ConnectionRecorder(client, transport="http")
    send(recorder, CLIENT_TO_SERVER, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}})
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": 1, "error": error})
    (discover,) = wait_until(sqlite_feed.url, settled(1))
    assert discover["status"] == status
    assert (discover["error_message"] is None) == (status == "success")


def test_the_caller_names_the_source(client: FeedClient, sqlite_feed: LiveServer) -> None:
    recorder = ConnectionRecorder(client, transport="http", session_id="abc", user_source="ops laptop")
    handshake(recorder)
    found = wait_until(sqlite_feed.url, settled(1))
    assert found[0]["user_source"] == "ops laptop"
    assert found[0]["data"]["mcp"]["transport"] == "http"


def test_a_2026_era_connection_names_client_and_server_in_every_envelope(
    client: FeedClient, sqlite_feed: LiveServer
) -> None:
    recorder = ConnectionRecorder(client, transport="stdio")
    meta = {
        "io.modelcontextprotocol/clientInfo": {"name": "Cursor", "version": "2.0"},
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    }
    send(
        recorder,
        CLIENT_TO_SERVER,
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}},
    )
    not_found = {"code": -32601, "message": "Method not found"}
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": 1, "error": not_found})
    send(recorder, CLIENT_TO_SERVER, call(2, "forecast", {}, _meta=meta))
    stamp = {"io.modelcontextprotocol/serverInfo": {"name": "weather", "version": "3"}}
    send(recorder, SERVER_TO_CLIENT, {"jsonrpc": "2.0", "id": 2, "result": {"content": [], "_meta": stamp}})
    send(recorder, CLIENT_TO_SERVER, call(3, "forecast", {}, _meta=meta))
    send(recorder, SERVER_TO_CLIENT, text_result(3, "sun"))
    found = wait_until(sqlite_feed.url, settled(3))
    discover = found[0]
    assert discover["status"] == "success"  # the fallback to `initialize`, not a failure
    assert {e["user_source"] for e in found} == {"Cursor 2.0"}
    assert found[1]["data"]["mcp"]["protocol_version"] == "2026-07-28"
    assert found[2]["data"]["mcp"]["server"] == {"name": "weather", "version": "3"}

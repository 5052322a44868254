"""FeedClient against the real service (SQLite and PostgreSQL): events arrive, updates merge, secrets stay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from activity_feed.client import FeedClient
from activity_feed.errors import ActivityFeedError, InvalidTokenError
from tests.client.remotes import FakeRemote, get_event, recent, wait_until
from tests.support.server import LiveServer

# A behaviour bound for one log() call, not a benchmark: far below the client's network timeout (5 s),
# which a call that waited on the network would take, and far above what the interpreter itself may
# pause a thread for on a busy 2-core machine (garbage collection, another thread's C call).
PROMPT_SECONDS = 0.25


def test_log_returns_at_once_and_the_event_arrives(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(feed_server.url)
    started = time.perf_counter()
    event_id = client.log(
        tool_name="search_properties",
        user_source="Claude Desktop",
        data={"arguments": {"city": "Leeds"}},
        correlation_id="conversation-7",
        session_id="stdio-session-1",
    )
    assert time.perf_counter() - started < PROMPT_SECONDS

    event = get_event(feed_server.url, event_id)
    assert event["tool_name"] == "search_properties"
    assert event["user_source"] == "Claude Desktop"
    assert event["event_type"] == "tool_call"
    assert event["status"] == "pending"
    assert event["data"] == {"arguments": {"city": "Leeds"}}
    assert event["correlation_id"] == "conversation-7"
    assert event["session_id"] == "stdio-session-1"
    assert event_id[14] == "7"  # a UUIDv7, made by the client


async def test_update_queued_with_its_create_is_merged_into_one_create(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    # A long flush interval keeps the create queued when the update comes.
    client = make_client(feed_server.url, flush_interval=30.0)
    async with connect(f"{feed_server.ws_url}/activities/ws", open_timeout=5) as stream:
        event_id = client.log(tool_name="get_property", data={"arguments": {"property_id": 3}})
        client.update(event_id, status="success", duration_ms=12.5, data={"result": "3 bedrooms"})
        assert client.flush(timeout=5)
        assert client.sent == 1  # one item: the create, carrying the update

        first = json.loads(await _receive(stream))
        marker = client.log(tool_name="marker")
        assert client.flush(timeout=5)
        second = json.loads(await _receive(stream))

    # The server saw one create in its final state, and no change after it.
    assert first["type"] == "activity_logged"
    assert first["event"]["id"] == event_id
    assert first["event"]["status"] == "success"
    assert first["event"]["duration_ms"] == 12.5
    assert first["event"]["data"] == {"arguments": {"property_id": 3}, "result": "3 bedrooms"}
    assert (second["type"], second["event"]["id"]) == ("activity_logged", marker)


async def _receive(stream: ClientConnection) -> str:
    message = await asyncio.wait_for(stream.recv(), timeout=5)
    assert isinstance(message, str)
    return message


def test_update_after_the_create_was_sent_is_sent_as_an_update(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(feed_server.url)
    event_id = client.log(tool_name="schedule_viewing", data={"arguments": {"when": "tomorrow"}})
    assert client.flush(timeout=5)
    client.update(event_id, status="error", duration_ms=40, error_message="no slots", data={"tries": 2})
    assert client.flush(timeout=5)

    event = get_event(feed_server.url, event_id)
    assert event["status"] == "error"
    assert event["error_message"] == "no slots"
    assert event["data"] == {"arguments": {"when": "tomorrow"}, "tries": 2}
    assert client.sent == 2


def test_a_secret_given_to_log_never_reaches_the_database(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    openai_key = "sk-proj-" + "a1B2c3D4" * 5
    github_token = "ghp_" + "Z9y8X7w6" * 5
    client = make_client(feed_server.url)
    event_id = client.log(
        tool_name="create_maintenance_request",
        user_source="Claude Desktop",
        data={
            "arguments": {
                "description": f"boiler broken, use key {openai_key} for the portal",
                "password": "hunter2-correct-horse",
                "contacts": [{"name": "Ann", "api_key": "plain-looking-value"}],
            }
        },
    )
    client.update(event_id, status="success", data={"result": f"filed with {github_token}"})
    assert client.flush(timeout=5)

    event = get_event(feed_server.url, event_id)
    stored = json.dumps(recent(feed_server.url))
    for secret in (openai_key, github_token, "hunter2-correct-horse", "plain-looking-value"):
        assert secret not in stored
    arguments = event["data"]["arguments"]
    assert arguments["password"] == "[REDACTED]"
    assert arguments["description"] == "boiler broken, use key [REDACTED] for the portal"
    assert arguments["contacts"] == [{"name": "Ann", "api_key": "[REDACTED]"}]
    assert event["data"]["result"] == "filed with [REDACTED]"
    assert event["data"]["redacted"] == [
        "arguments.description",
        "arguments.password",
        "arguments.contacts[0].api_key",
        "result",
    ]
    assert event["tool_name"] == "create_maintenance_request"  # identity fields are never redacted


def test_redacted_paths_of_a_sent_create_are_kept_when_its_update_redacts_more(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    event_id = client.log(tool_name="login", data={"arguments": {"password": "pw-1"}})
    assert client.flush(timeout=5)
    client.update(event_id, status="success", data={"result": {"session": "abc"}})
    assert client.flush(timeout=5)

    event = get_event(sqlite_feed.url, event_id)
    assert event["data"]["redacted"] == ["arguments.password", "result.session"]


def test_many_events_go_in_batches_and_all_arrive(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, batch_size=100)
    ids = {client.log(tool_name="bulk", correlation_id="bulk-run", data={"n": n}) for n in range(450)}
    assert client.flush(timeout=10)
    assert client.sent == 450
    stored = recent(sqlite_feed.url, correlation_id="bulk-run")
    assert {event["id"] for event in stored} == ids


def test_arguments_are_sanitised_rather_than_refused(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    event_id = client.log(
        tool_name="t" * 500,
        session_id="s" * 500,
        error_message="nul\x00inside",
        duration_ms=-3,
        data={"when": time.gmtime(0), "raw": b"bytes", "nested": {"nul": "a\x00b"}},
    )
    assert client.flush(timeout=5)
    event = get_event(sqlite_feed.url, event_id)
    assert event["tool_name"] == "t" * 200
    assert event["session_id"] == "s" * 200
    assert event["error_message"] == "nulinside"
    assert event["duration_ms"] is None
    assert event["data"]["raw"] == "bytes"
    assert event["data"]["nested"] == {"nul": "ab"}


def test_an_update_the_service_refuses_as_too_large_after_merging_is_counted_as_dropped(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    half = "x" * (32 * 1024)
    event_id = client.log(tool_name="big", data={"first": half})
    assert client.flush(timeout=5)
    client.update(event_id, status="success", data={"second": half})
    assert client.flush(timeout=5)

    assert client.dropped["too_large"] == 1
    assert get_event(sqlite_feed.url, event_id)["status"] == "pending"


def test_an_unknown_event_type_is_dropped_as_rejected_without_raising(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    event_id = client.log(event_type="not_a_type", tool_name="x")
    client.update("not-a-uuid", status="success")
    assert client.dropped["rejected"] == 2
    assert client.flush(timeout=5)
    assert httpx.get(f"{sqlite_feed.url}/activities/{event_id}", timeout=5).status_code == 404


def test_timestamp_is_taken_when_log_is_called(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    before = time.time()
    event_id = client.log(tool_name="stamped")
    assert client.flush(timeout=5)
    stamped = get_event(sqlite_feed.url, event_id)["timestamp"]
    assert abs(datetime.fromisoformat(stamped).timestamp() - before) < 5


def test_the_token_is_sent_as_a_bearer_header(make_client: Callable[..., FeedClient]) -> None:
    token = "s3cret-token"
    remote = FakeRemote(lambda n, body: (200, {})).start()
    try:
        client = make_client(remote.url, token=token)
        client.log(tool_name="authenticated")
        assert client.flush(timeout=5)
        wait_until(lambda: len(remote.requests) == 1, what="one request")
        assert remote.requests[0].headers["authorization"] == f"Bearer {token}"
    finally:
        remote.stop()


@pytest.mark.parametrize(
    ("token", "what"),
    [("tökén", "not ASCII"), ("line\nbreak", "a control character"), ("two words", "a space")],
    ids=["non-ascii", "newline", "space"],
)
def test_a_token_that_cannot_go_in_a_header_is_refused_when_the_client_is_made(
    token: str, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidTokenError) as refused:
        FeedClient("http://127.0.0.1:1", token=token)
    message = str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value, ActivityFeedError)
    assert "cannot be sent in an HTTP header" in message
    assert what in message
    assert token not in message  # a secret

    monkeypatch.setenv("ACTIVITY_FEED_TOKEN", token)
    with pytest.raises(InvalidTokenError, match=r"^ACTIVITY_FEED_TOKEN cannot be sent"):
        FeedClient("http://127.0.0.1:1")


def test_redact_text_uses_the_clients_redactor_and_respects_redact_false() -> None:
    secret = "failed with key sk-abcdefghijklmnop1234"
    redacting = FeedClient(None)
    plain = FeedClient(None, redact=False)
    try:
        assert "sk-abcdefghijklmnop1234" not in redacting.redact_text(secret)
        assert redacting.redact_text(secret).startswith("failed with key ")
        assert plain.redact_text(secret) == secret
    finally:
        redacting.close(timeout=0.1)
        plain.close(timeout=0.1)

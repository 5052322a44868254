"""`GET /activities/export` through a real server, on SQLite and PostgreSQL: JSON lines, oldest first,
each filter, the token, what the OpenAPI schema says of it, and a database lost midway."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.engine import make_url

from activity_feed.client.reader import FeedReader, FeedReadError
from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore
from activity_feed.store.export import PAGE_SIZE
from tests.support.server import LiveServer
from tests.support.tcp_proxy import TcpProxy

TIMEOUT = httpx.Timeout(20.0)


def test_export_streams_the_matching_events_as_json_lines(feed_server: LiveServer) -> None:
    now = datetime.now(UTC)
    events = [
        {
            "tool_name": "a",
            "event_type": "tool_call",
            "status": "error",
            "user_source": "ann",
            "session_id": "s1",
        },
        {"tool_name": "a", "event_type": "api_request", "status": "success", "correlation_id": "c1"},
        {"tool_name": "b", "event_type": "tool_call", "status": "pending", "user_source": "bob"},
        {"tool_name": "old", "event_type": "tool_call", "status": "success", "data": {"x": [1, 2.5, None]}},
    ]
    stamps = [
        now - timedelta(minutes=3),
        now - timedelta(minutes=2),
        now - timedelta(minutes=1),
        now - timedelta(days=2),
    ]
    body = {
        "events": [
            {**event, "timestamp": stamp.isoformat()} for event, stamp in zip(events, stamps, strict=True)
        ]
    }
    with httpx.Client(base_url=feed_server.url, timeout=TIMEOUT) as http:
        assert http.post("/activities/batch", json=body).json()["created"] == 4

        def tools(**params: str) -> list[str]:
            answer = http.get("/activities/export", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/x-ndjson"
            return [orjson.loads(line)["tool_name"] for line in answer.content.splitlines()]

        whole = http.get("/activities/export")
        # Oldest first; each line the event as `recent` shows it (which lists newest first).
        assert [orjson.loads(line) for line in whole.content.splitlines()] == http.get(
            "/activities/recent"
        ).json()[::-1]
        assert whole.content.endswith(b"}\n")
        assert tools(event_type="api_request") == ["a"]
        assert tools(status="error") == ["a"]
        assert tools(tool_name="a") == ["a", "a"]
        assert tools(user_source="bob") == ["b"]
        assert tools(correlation_id="c1") == ["a"]
        assert tools(session_id="s1") == ["a"]
        assert tools(since="1h") == ["a", "a", "b"]
        assert tools(since=(now - timedelta(minutes=90)).isoformat(), status="pending") == ["b"]
        assert tools(tool_name="none-such") == []
        refused = http.get("/activities/export", params={"since": "yesterday"})
        assert refused.status_code == 422
        assert "since: not a time or a duration" in refused.text
        assert http.get("/activities/export", params={"status": "done"}).status_code == 422


def test_export_takes_the_read_token_and_is_documented(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}", token="write-token", read_token="read-token"
    )
    server = live_server(settings)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        assert http.get("/activities/export").status_code == 401
        answer = http.get("/activities/export", headers={"Authorization": "Bearer read-token"})
        assert answer.status_code == 200
        assert answer.content == b""
        schema = http.get("/openapi.json").json()
    operation = schema["paths"]["/activities/export"]["get"]
    assert "application/x-ndjson" in operation["responses"]["200"]["content"]
    assert operation["security"] == [{"ActivityFeedToken": []}]
    assert {parameter["name"] for parameter in operation["parameters"]} == {
        "event_type",
        "status",
        "tool_name",
        "user_source",
        "correlation_id",
        "session_id",
        "since",
    }


async def _store_pages(url: str, count: int) -> None:
    store = ActivityStore(url)
    await store.start()
    try:
        padding = "x" * 1000
        for first in range(0, count, 1000):
            events = [
                ActivityCreate(event_type=EventType.TOOL_CALL, data={"n": n, "padding": padding})
                for n in range(first, first + 1000)
            ]
            await store.apply_batch(creates=events, updates=[])
    finally:
        await store.close()


async def test_a_database_lost_midway_leaves_the_answer_incomplete(
    postgres_url: str, live_server: Callable[..., LiveServer]
) -> None:
    await _store_pages(postgres_url, 5 * PAGE_SIZE)
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = Settings(database_url=through, database_timeout=timedelta(seconds=1))
        server = live_server(settings)
        async with FeedReader(server.url) as feed:
            chunks = feed.export()
            received = [await anext(chunks)]
            # The first page was read before the answer began; the next ones will not be.
            proxy.cut()

            async def the_rest() -> None:
                async for chunk in chunks:
                    received.append(chunk)

            with pytest.raises(FeedReadError, match="stopped answering GET /activities/export midway"):
                await the_rest()
        proxy.restore()
    body = b"".join(received)
    # Whole pages, then nothing: never a line cut in two, and never an end that looks like the last.
    assert body.endswith(b"\n")
    numbers = [orjson.loads(line)["data"]["n"] for line in body.splitlines()]
    assert numbers == list(range(len(numbers)))
    assert 0 < len(numbers) < 5 * PAGE_SIZE


async def test_an_export_whose_client_leaves_midway_gives_its_turn_back(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    # Far more than the socket buffers hold: the export is still being read when its client leaves.
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    await _store_pages(url, 12 * PAGE_SIZE)
    settings = Settings(database_url=url, max_concurrent_exports=1, read_queue_timeout=timedelta(seconds=2))
    server = live_server(settings)
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        async with http.stream("GET", "/activities/export") as leaving:
            assert leaving.status_code == 200
            assert await anext(leaving.aiter_bytes())
        # The first client is gone: its turn must come back, or this one waits 2 s and gets 503.
        async with http.stream("GET", "/activities/export") as next_one:
            assert next_one.status_code == 200
            lines = 0
            async for chunk in next_one.aiter_bytes():
                lines += chunk.count(b"\n")
    assert lines == 12 * PAGE_SIZE

"""`GET /activities/export` through a real server, on SQLite and PostgreSQL: JSON lines, oldest first,
each filter, the token, and what the OpenAPI schema says of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from activity_feed.settings import Settings
from tests.support.server import LiveServer

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

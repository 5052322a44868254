"""`GET /activities/sessions`, the filters and `since` forms of `GET /activities/stats`, and
`GET /activities/stats/timeline`, through a real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.api import create_app
from activity_feed.settings import Settings
from tests.support.server import LiveServer

TIMEOUT = 10.0
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SESSION_FIELDS = {
    "session_id",
    "user_source",
    "server",
    "first_seen",
    "last_seen",
    "events",
    "errors",
    "pending",
}


@pytest.fixture
def client(feed_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=feed_server.url, timeout=TIMEOUT) as http:
        yield http


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def batch(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    for event in events:
        event.setdefault("event_type", "tool_call")
    response = client.post("/activities/batch", json={"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["created"] == len(events)


def detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def test_sessions_list_each_session_with_its_counts(client: httpx.Client) -> None:
    server = {"mcp": {"server": {"name": "property-manager", "version": "2.1"}}}
    batch(
        client,
        [
            {"session_id": "a", "timestamp": iso(T0), "user_source": "claude-ai 0.1", "data": server},
            {"session_id": "a", "timestamp": iso(T0 + timedelta(minutes=3)), "status": "error"},
            {"session_id": "a", "timestamp": iso(T0 + timedelta(minutes=1)), "status": "success"},
            {
                "session_id": "b",
                "timestamp": iso(T0 + timedelta(minutes=2)),
                "event_type": "mcp_notification",
            },
            {"timestamp": iso(T0 + timedelta(minutes=9))},  # in no session
        ],
    )

    response = client.get("/activities/sessions")

    assert response.status_code == 200
    assert response.json() == [
        {
            "session_id": "a",
            "user_source": "claude-ai 0.1",
            "server": "property-manager",
            "first_seen": "2026-03-01T12:00:00Z",
            "last_seen": "2026-03-01T12:03:00Z",
            "events": 3,
            "errors": 1,
            "pending": 1,
        },
        {
            "session_id": "b",
            "user_source": None,
            "server": None,
            "first_seen": "2026-03-01T12:02:00Z",
            "last_seen": "2026-03-01T12:02:00Z",
            "events": 1,
            "errors": 0,
            "pending": 1,
        },
    ]


def test_sessions_page_with_before_and_refuse_an_unknown_one(client: httpx.Client) -> None:
    batch(client, [{"session_id": f"s{n}", "timestamp": iso(T0 + timedelta(minutes=n))} for n in range(5)])

    first = client.get("/activities/sessions", params={"limit": 2}).json()
    second = client.get("/activities/sessions", params={"limit": 2, "before": first[-1]["session_id"]}).json()
    third = client.get("/activities/sessions", params={"limit": 2, "before": second[-1]["session_id"]}).json()
    unknown = client.get("/activities/sessions", params={"before": "nope"})

    assert [s["session_id"] for s in first + second + third] == ["s4", "s3", "s2", "s1", "s0"]
    assert all(set(session) == SESSION_FIELDS for session in first)
    assert unknown.status_code == 404
    assert "no session" in detail(unknown)
    assert "nope" in detail(unknown)


@pytest.mark.parametrize("limit", ["0", "201", "many"])
def test_sessions_refuse_a_limit_out_of_range(client: httpx.Client, limit: str) -> None:
    response = client.get("/activities/sessions", params={"limit": limit})

    assert response.status_code == 422
    assert "limit" in detail(response)


def test_deleting_a_sessions_last_event_removes_the_session(client: httpx.Client) -> None:
    event = client.post("/activities/log", json={"event_type": "mcp_request", "session_id": "gone"}).json()
    assert [s["session_id"] for s in client.get("/activities/sessions").json()] == ["gone"]

    assert client.delete(f"/activities/{event['id']}").status_code == 204

    assert client.get("/activities/sessions").json() == []


def test_an_event_keeps_its_session_and_patch_cannot_change_it(client: httpx.Client) -> None:
    created = client.post("/activities/log", json={"event_type": "mcp_request", "session_id": "s1"})
    event_id = created.json()["id"]

    patched = client.patch(f"/activities/{event_id}", json={"session_id": "s2"})

    assert created.json()["session_id"] == "s1"
    assert patched.status_code == 422
    assert "session_id" in detail(patched)
    assert client.get(f"/activities/{event_id}").json()["session_id"] == "s1"


def test_recent_filters_by_session(client: httpx.Client) -> None:
    batch(client, [{"session_id": s, "tool_name": f"{s}-{n}"} for n in range(2) for s in ("a", "b")])

    mine = client.get("/activities/recent", params={"session_id": "a"}).json()

    assert sorted(event["tool_name"] for event in mine) == ["a-0", "a-1"]
    assert client.get("/activities/recent", params={"session_id": "x" * 201}).status_code == 422


def test_a_session_id_over_200_characters_is_refused(client: httpx.Client) -> None:
    response = client.post("/activities/log", json={"event_type": "tool_call", "session_id": "x" * 201})

    assert response.status_code == 422
    assert "session_id" in detail(response)


def tools(response: httpx.Response) -> dict[str | None, int]:
    assert response.status_code == 200, response.text
    return {tool["tool_name"]: tool["count"] for tool in response.json()}


def test_stats_take_a_duration_a_session_and_an_event_type(client: httpx.Client) -> None:
    now = datetime.now(UTC)
    batch(
        client,
        [
            {"tool_name": "old", "timestamp": iso(now - timedelta(hours=3)), "session_id": "a"},
            {"tool_name": "recent", "timestamp": iso(now - timedelta(minutes=20)), "session_id": "a"},
            {"tool_name": "recent", "timestamp": iso(now - timedelta(minutes=5)), "session_id": "b"},
            {
                "tool_name": "tools/list",
                "event_type": "mcp_request",
                "timestamp": iso(now - timedelta(minutes=1)),
                "session_id": "a",
            },
        ],
    )

    last_hour = client.get("/activities/stats", params={"since": "1h"})

    assert tools(last_hour) == {"recent": 2, "tools/list": 1}
    since = datetime.fromisoformat(last_hour.headers["X-Stats-Since"])
    assert now - timedelta(hours=1, seconds=5) < since < datetime.now(UTC) - timedelta(minutes=59)
    assert tools(client.get("/activities/stats", params={"since": "10m"})) == {"recent": 1, "tools/list": 1}
    assert tools(client.get("/activities/stats", params={"since": "90S"})) == {"tools/list": 1}
    # A bare number is seconds back from now, as every duration, not a Unix time (1970).
    bare = client.get("/activities/stats", params={"since": "420"})
    assert tools(bare) == {"recent": 1, "tools/list": 1}
    since = datetime.fromisoformat(bare.headers["X-Stats-Since"])
    assert now - timedelta(minutes=7, seconds=5) < since < datetime.now(UTC) - timedelta(minutes=6)
    assert tools(client.get("/activities/stats", params={"session_id": "a"})) == {
        "old": 1,
        "recent": 1,
        "tools/list": 1,
    }
    assert tools(client.get("/activities/stats", params={"event_type": "tool_call", "since": "2h"})) == {
        "recent": 2
    }
    both = client.get("/activities/stats", params={"session_id": "a", "event_type": "tool_call"})
    assert tools(both) == {"old": 1, "recent": 1}
    assert both.headers["X-Stats-Window-Events"] == "2"


@pytest.mark.parametrize("path", ["/activities/stats", "/activities/stats/timeline"])
@pytest.mark.parametrize(
    ("since", "says"),
    [
        ("yesterday", "not a time or a duration"),
        ("15x", "not a time or a duration"),
        ("9999999999d", "too long"),
    ],
)
def test_a_bad_since_is_refused_with_what_is_accepted(
    client: httpx.Client, path: str, since: str, says: str
) -> None:
    response = client.get(path, params={"since": since})

    assert response.status_code == 422
    assert says in detail(response)
    assert "since" in detail(response)


def test_stats_refuse_an_unknown_event_type(client: httpx.Client) -> None:
    response = client.get("/activities/stats", params={"event_type": "mcp"})

    assert response.status_code == 422
    assert "mcp_notification" in detail(response)


def timeline(client: httpx.Client, **params: str) -> dict[str, Any]:
    response = client.get("/activities/stats/timeline", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_timeline_has_every_bucket_of_the_last_hour_by_default(client: httpx.Client) -> None:
    now = datetime.now(UTC)
    moments = [now - timedelta(minutes=m) for m in (50, 50, 20, 2)]
    batch(
        client,
        [
            {"timestamp": iso(moments[0]), "duration_ms": 10, "status": "success"},
            {"timestamp": iso(moments[1]), "duration_ms": 30, "status": "error"},
            {"timestamp": iso(moments[2]), "status": "pending"},
            {"timestamp": iso(moments[3]), "duration_ms": 7, "status": "success"},
            {"timestamp": iso(now - timedelta(hours=2)), "duration_ms": 1},  # before the window
        ],
    )

    body = timeline(client)

    assert set(body) == {"since", "until", "bucket_seconds", "truncated", "events", "buckets"}
    since, until = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
    assert until - since == timedelta(hours=1)
    assert now <= until <= datetime.now(UTC)
    assert (body["bucket_seconds"], body["truncated"], body["events"]) == (60, False, 4)
    buckets = body["buckets"]
    assert len(buckets) == 60
    assert [datetime.fromisoformat(b["start"]) for b in buckets] == [
        since + timedelta(minutes=n) for n in range(60)
    ]
    expected: dict[int, dict[str, Any]] = {}
    for moment, duration in zip(moments, [10, 30, None, 7], strict=True):
        index = (moment - since) // timedelta(seconds=60)
        expected.setdefault(index, {"calls": 0, "durations": []})
        expected[index]["calls"] += 1
        if duration is not None:
            expected[index]["durations"].append(duration)
    for index, bucket in enumerate(buckets):
        assert bucket["calls"] == expected.get(index, {"calls": 0})["calls"], index
    busiest = buckets[(moments[0] - since) // timedelta(seconds=60)]
    assert (busiest["calls"], busiest["errors"], busiest["p50_ms"], busiest["p95_ms"]) == (2, 1, 10.0, 30.0)
    pending_only = buckets[(moments[2] - since) // timedelta(seconds=60)]
    assert (pending_only["calls"], pending_only["p50_ms"], pending_only["p95_ms"]) == (1, None, None)
    empty = next(bucket for index, bucket in enumerate(buckets) if index not in expected)
    assert (empty["calls"], empty["errors"], empty["p50_ms"], empty["p95_ms"]) == (0, 0, None, None)


def test_the_timeline_filters_like_the_stats(client: httpx.Client) -> None:
    now = datetime.now(UTC)
    batch(
        client,
        [
            {"timestamp": iso(now - timedelta(minutes=5)), "session_id": "a", "tool_name": "search"},
            {"timestamp": iso(now - timedelta(minutes=4)), "session_id": "a", "tool_name": "book"},
            {"timestamp": iso(now - timedelta(minutes=3)), "session_id": "b", "tool_name": "search"},
            {
                "timestamp": iso(now - timedelta(minutes=2)),
                "event_type": "mcp_request",
                "tool_name": "search",
            },
        ],
    )

    assert timeline(client, since="10m", session_id="a")["events"] == 2
    assert timeline(client, since="10m", tool_name="search")["events"] == 3
    assert timeline(client, since="10m", tool_name="search", event_type="tool_call")["events"] == 2
    assert timeline(client, since="10m", session_id="b", tool_name="book")["events"] == 0


@pytest.mark.parametrize(
    ("since", "seconds", "count"), [("24h", 60, 1440), ("2d", 120, 1440), ("7d", 420, 1440)]
)
def test_a_long_window_takes_wider_buckets(
    client: httpx.Client, since: str, seconds: int, count: int
) -> None:
    body = timeline(client, since=since)

    assert (body["bucket_seconds"], len(body["buckets"])) == (seconds, count)


def test_the_timeline_from_an_iso_time_and_one_in_the_future(client: httpx.Client) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)

    past = timeline(client, since=iso(start))
    future = timeline(client, since=iso(datetime.now(UTC) + timedelta(hours=1)))

    assert datetime.fromisoformat(past["since"]) == start
    assert len(past["buckets"]) in (3, 4)  # 3 minutes and the moments the request took
    assert (future["events"], future["buckets"]) == (0, [])


def test_the_timeline_counts_at_most_the_window_of_events_and_says_so(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(settings.model_copy(update={"stats_window_events": 3}))
    now = datetime.now(UTC)
    moments = [now - timedelta(minutes=m) for m in (40, 30, 20, 10, 5)]
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        batch(http, [{"timestamp": iso(m), "id": str(uuid.uuid4())} for m in moments])

        body = timeline(http)

    assert (body["truncated"], body["events"]) == (True, 3)
    assert datetime.fromisoformat(body["since"]) == moments[2]
    assert sum(bucket["calls"] for bucket in body["buckets"]) == 3


def test_the_schema_documents_every_new_parameter_with_examples(tmp_path: Path) -> None:
    document = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}")).openapi()
    expected = {
        "/activities/sessions": {"limit", "before"},
        "/activities/stats": {"since", "session_id", "event_type"},
        "/activities/stats/timeline": {"since", "session_id", "event_type", "tool_name"},
        "/activities/recent": {"session_id"},
    }

    for path, names in expected.items():
        operation = document["paths"][path]["get"]
        parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
        assert names <= set(parameters), path
        for name in names:
            assert parameters[name].get("description"), (path, name)
            assert parameters[name]["schema"].get("examples"), (path, name)
        if path != "/activities/recent":
            assert "example" in operation["responses"]["200"]["content"]["application/json"], path
    for path in ("/activities/stats", "/activities/stats/timeline"):
        since = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "since")
        assert {example["value"] for example in since["examples"].values()} >= {"15m", "2026-12-01T09:00:00Z"}
    assert "404" in document["paths"]["/activities/sessions"]["get"]["responses"]
    schemas = document["components"]["schemas"]
    assert schemas["EventType"]["enum"][-2:] == ["mcp_request", "mcp_notification"]
    assert "session_id" in schemas["ActivityCreate"]["properties"]
    assert "session_id" in schemas["ActivityPublic"]["required"]
    assert set(schemas["SessionPublic"]["required"]) == SESSION_FIELDS
    assert set(schemas["StatsTimeline"]["properties"]) == {
        "since",
        "until",
        "bucket_seconds",
        "truncated",
        "events",
        "buckets",
    }

"""Timestamps from the future (api/clock_skew.py): an event stamped more than ACTIVITY_FEED_MAX_CLOCK_SKEW
ahead of the server's clock is refused with 422 naming the field, on /log and /batch; a batch holding one
is refused whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.api import create_app
from activity_feed.settings import Settings
from tests.support.server import LiveServer

YEAR_9999 = "9999-12-31T23:59:59+00:00"


def ahead(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def serve(live_server: Callable[..., LiveServer], tmp_path: Path, **settings: Any) -> LiveServer:
    return live_server(app=create_app(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", **settings)))


@pytest.fixture
def client(live_server: Callable[..., LiveServer], tmp_path: Path) -> Iterator[httpx.Client]:
    server = serve(live_server, tmp_path)
    with httpx.Client(base_url=server.url, timeout=20) as http:
        yield http


def stored(http: httpx.Client) -> list[str | None]:
    return [event["tool_name"] for event in http.get("/activities/recent").json()]


@pytest.mark.parametrize(
    ("sent", "shown"),
    [(timedelta(hours=3, seconds=30), "is 3h 0m "), (YEAR_9999, "d "), ("9999-12-31T23:59:59", "d ")],
    ids=["3h-ahead", "year-9999", "year-9999-naive"],
)
def test_an_event_stamped_too_far_ahead_is_refused_naming_the_field_and_why(
    client: httpx.Client, sent: timedelta | str, shown: str
) -> None:
    timestamp = ahead(sent) if isinstance(sent, timedelta) else sent
    response = client.post("/activities/log", json={"event_type": "tool_call", "timestamp": timestamp})

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "timestamp_ahead_of_server"
    assert error["loc"] == ["body", "timestamp"]
    assert shown in error["msg"]
    assert "ahead of the server's clock" in error["msg"]
    assert "the 5m allowed by ACTIVITY_FEED_MAX_CLOCK_SKEW" in error["msg"]
    assert error["ctx"]["max_clock_skew"] == "5m"
    assert stored(client) == []


def test_timestamps_within_the_skew_or_in_the_past_are_accepted(client: httpx.Client) -> None:
    two_hours_east = timezone(timedelta(hours=2))
    timestamps = {
        "within": ahead(timedelta(minutes=4)),
        "now, written in another zone": datetime.now(two_hours_east).isoformat(),
        "past": "2020-01-01T00:00:00Z",
    }
    for name, timestamp in timestamps.items():
        response = client.post(
            "/activities/log", json={"event_type": "tool_call", "tool_name": name, "timestamp": timestamp}
        )
        assert response.status_code == 201, response.text

    batch = [{"event_type": "tool_call", "tool_name": name, "timestamp": t} for name, t in timestamps.items()]
    assert client.post("/activities/batch", json={"events": batch}).json()["created"] == 3


def test_a_batch_with_events_stamped_too_far_ahead_is_refused_whole_naming_each(client: httpx.Client) -> None:
    events: list[dict[str, Any]] = [{"event_type": "tool_call", "tool_name": f"real {i}"} for i in range(6)]
    events[3]["timestamp"] = ahead(timedelta(hours=10))
    events[5]["timestamp"] = YEAR_9999

    response = client.post(
        "/activities/batch",
        json={
            "events": events,
            "updates": [{"id": "00000000-0000-4000-8000-000000000000", "status": "error"}],
        },
    )

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [error["loc"] for error in detail] == [
        ["body", "events", 3, "timestamp"],
        ["body", "events", 5, "timestamp"],
    ]
    assert "10h" in detail[0]["msg"]
    assert "ACTIVITY_FEED_MAX_CLOCK_SKEW" in detail[1]["msg"]
    assert stored(client) == []  # not even the real events: the client learns its clock is wrong


def test_the_allowed_skew_is_a_setting_and_zero_turns_the_check_off(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    strict = serve(live_server, tmp_path / "strict", max_clock_skew="30s")
    off = serve(live_server, tmp_path / "off", max_clock_skew="0")

    with httpx.Client(base_url=strict.url, timeout=20) as http:
        refused = http.post(
            "/activities/log", json={"event_type": "tool_call", "timestamp": ahead(timedelta(minutes=2))}
        )
        accepted = http.post(
            "/activities/log", json={"event_type": "tool_call", "timestamp": ahead(timedelta(seconds=5))}
        )
    assert refused.status_code == 422, refused.text
    assert "the 30s allowed by ACTIVITY_FEED_MAX_CLOCK_SKEW" in refused.json()["detail"][0]["msg"]
    assert accepted.status_code == 201, accepted.text

    with httpx.Client(base_url=off.url, timeout=20) as http:
        logged = http.post("/activities/log", json={"event_type": "tool_call", "timestamp": YEAR_9999})
        batched = http.post(
            "/activities/batch", json={"events": [{"event_type": "tool_call", "timestamp": YEAR_9999}]}
        )
    assert logged.status_code == 201, logged.text
    assert batched.json()["created"] == 1

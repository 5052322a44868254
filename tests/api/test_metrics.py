"""`GET /metrics` over a real server, parsed as Prometheus parses it: the events by type and status as
they were posted, the tool-call histogram per tool as the calls finished (`other` past the limit), the
tokens, two instances on one PostgreSQL reporting the same counts, the drops a FeedClient reports, and the
path an embedding app chooses."""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client.parser import text_string_to_metric_families

from activity_feed import ActivityFeed, FeedClient
from activity_feed.drop_report import default_source
from activity_feed.metrics.feed_metrics import TOOL_CALL_BUCKETS
from activity_feed.settings import Settings
from tests.support.server import LiveServer
from tests.support.service import start_instances, stop_all

WAIT_SECONDS = 10.0
WRITE = "write-token-for-metrics"
READ = "read-token-for-metrics"
# Sample name and its labels (without `le`, kept apart) -> value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=WAIT_SECONDS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


def event_counts(samples: Samples, name: str) -> dict[tuple[str, str], float]:
    """A family by (event_type, status), leaving out the pairs at zero."""
    found = {
        (dict(labels)["event_type"], dict(labels)["status"]): v for labels, v in named(samples, name).items()
    }
    return {pair: v for pair, v in found.items() if v}


def tool(
    name: str, status: str = "success", duration_ms: float | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "event_type": "tool_call",
        "tool_name": name,
        "status": status,
        "duration_ms": duration_ms,
        **fields,
    }


def post_batch(url: str, events: list[dict[str, Any]], **headers: str) -> None:
    response = httpx.post(
        f"{url}/activities/batch", json={"events": events}, headers=headers, timeout=WAIT_SECONDS
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == len(events)


def expected_buckets(durations_ms: list[float]) -> dict[str, float]:
    """The cumulative bucket counts Prometheus should show for these durations."""
    counts = dict.fromkeys([*map(float, TOOL_CALL_BUCKETS), float("inf")], 0.0)
    for duration in durations_ms:
        first = bisect.bisect_left(TOOL_CALL_BUCKETS, duration / 1000)
        for bound in list(counts)[first:]:
            counts[bound] += 1
    return {("+Inf" if bound == float("inf") else str(bound)): count for bound, count in counts.items()}


def histogram(samples: Samples, tool_name: str) -> tuple[dict[str, float], float, float]:
    """(buckets by `le`, count, sum in seconds) of one tool's series."""
    buckets = {
        dict(labels)["le"]: v
        for labels, v in named(samples, "activity_feed_tool_call_duration_seconds_bucket").items()
        if dict(labels)["tool_name"] == tool_name
    }
    count = value(samples, "activity_feed_tool_call_duration_seconds_count", tool_name=tool_name)
    total = value(samples, "activity_feed_tool_call_duration_seconds_sum", tool_name=tool_name)
    return buckets, count, total


def test_events_and_tool_call_durations_match_what_was_posted(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(settings.model_copy(update={"metrics_max_tools": 2}))
    # The first two tools seen keep their names; the two after them count as `other`.
    post_batch(
        server.url,
        [
            tool("search", duration_ms=5),
            tool("search", duration_ms=300),
            tool("lookup", status="error", duration_ms=1500, error_message="no such flat"),
            tool("report", duration_ms=45_000),
            tool("calendar", duration_ms=50),
            tool("search", status="pending"),  # not finished
            {"event_type": "api_request", "tool_name": "GET /flats", "status": "success", "duration_ms": 3},
            {"event_type": "system_event", "status": "error"},
        ],
    )
    started = httpx.post(
        f"{server.url}/activities/log", json=tool("search", status="pending"), timeout=WAIT_SECONDS
    )
    event_id = started.json()["id"]
    finished = httpx.patch(
        f"{server.url}/activities/{event_id}",
        json={"status": "error", "duration_ms": 250},
        timeout=WAIT_SECONDS,
    )
    assert finished.status_code == 200, finished.text

    samples = scrape(server.url)

    assert event_counts(samples, "activity_feed_events_stored") == {
        ("tool_call", "success"): 4,
        ("tool_call", "error"): 2,
        ("tool_call", "pending"): 1,
        ("api_request", "success"): 1,
        ("system_event", "error"): 1,
    }
    # The call that started pending and ended in error reached both.
    assert event_counts(samples, "activity_feed_events_total") == {
        ("tool_call", "success"): 4,
        ("tool_call", "error"): 2,
        ("tool_call", "pending"): 2,
        ("api_request", "success"): 1,
        ("system_event", "error"): 1,
    }
    expected = {"search": [5, 300, 250], "lookup": [1500], "other": [45_000, 50]}
    assert {
        dict(labels)["tool_name"]
        for labels in named(samples, "activity_feed_tool_call_duration_seconds_count")
    } == set(expected)
    for name, durations in expected.items():
        buckets, count, total = histogram(samples, name)
        assert buckets == expected_buckets(durations), name
        assert count == len(durations)
        assert total == pytest.approx(sum(durations) / 1000)
    for name in ("database_up", "database_writable", "bus_up"):
        assert value(samples, f"activity_feed_{name}") == 1, name
    assert value(samples, "activity_feed_stream_clients") == 0
    assert value(samples, "activity_feed_writer_queue_items") == 0
    assert value(samples, "activity_feed_writer_commit_duration_seconds_count") >= 3  # batch, log, patch
    assert value(samples, "activity_feed_stream_clients_closed_slow_total") == 0


def test_metrics_need_a_token_when_the_feed_has_one(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}",
        broadcast_url="memory://",
        token=WRITE,
        read_token=READ,
    )
    server = live_server(settings)

    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = httpx.get(f"{server.url}/metrics", headers=headers, timeout=WAIT_SECONDS)
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    for token in (READ, WRITE):
        assert value(scrape(server.url, Authorization=f"Bearer {token}"), "activity_feed_database_up") == 1

    document = httpx.get(f"{server.url}/openapi.json", timeout=WAIT_SECONDS).json()
    operation = document["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert "401" in operation["responses"]
    assert operation["security"] == [{"ActivityFeedToken": []}]


def test_two_instances_on_one_postgresql_report_the_same_counts(postgres_url: str, tmp_path: Path) -> None:
    a, b = instances = start_instances(
        2, database_url=postgres_url, broadcast_url="memory://", log_dir=tmp_path
    )
    try:
        post_batch(a.url, [tool("on_a", duration_ms=20), tool("on_a", status="pending")])
        post_batch(b.url, [{"event_type": "voice_command", "status": "error"}])
        scraped = [scrape(instance.url) for instance in instances]
    finally:
        stop_all(instances)

    expected = {("tool_call", "success"): 1, ("tool_call", "pending"): 1, ("voice_command", "error"): 1}
    for name in ("activity_feed_events_stored", "activity_feed_events_total"):
        assert [event_counts(samples, name) for samples in scraped] == [expected, expected], name
    # Durations are each process's own: only A finished a call.
    on_a, on_b = (named(samples, "activity_feed_tool_call_duration_seconds_count") for samples in scraped)
    assert on_a == {frozenset({("tool_name", "on_a")}): 1}
    assert on_b == {}


async def test_a_feed_client_reports_what_it_dropped(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(
        Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")
    )
    client = FeedClient(server.url)
    try:
        # Over the service's 64 KiB `data` limit: refused with 413, dropped as `too_large`.
        client.log(event_type="system_event", data={"blob": "x" * 100_000})
        assert await asyncio.to_thread(client.flush, WAIT_SECONDS)
        assert client.dropped["too_large"] == 1
        assert named(scrape(server.url), "activity_feed_client_dropped_total") == {}
        # The next batch carries the totals so far.
        client.log(event_type="system_event", tool_name=str(uuid.uuid4()))
        assert await asyncio.to_thread(client.flush, WAIT_SECONDS)
    finally:
        client.close()

    dropped = named(scrape(server.url), "activity_feed_client_dropped_total")
    assert dropped == {frozenset({("source", default_source()), ("reason", "too_large")}): 1}


def test_an_app_that_serves_its_own_metrics_puts_the_feeds_elsewhere(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    app = FastAPI()

    @app.get("/metrics", response_class=PlainTextResponse)
    async def own_metrics() -> str:
        return "app_requests_total 7\n"

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")
    ActivityFeed(settings).install(app, metrics_path="/feed/metrics")
    server = live_server(app=app)

    assert httpx.get(f"{server.url}/metrics", timeout=WAIT_SECONDS).text == "app_requests_total 7\n"
    assert value(scrape(f"{server.url}/feed"), "activity_feed_database_up") == 1


def test_an_app_that_takes_no_feed_metrics_keeps_its_own_metrics_open(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    app = FastAPI()

    @app.get("/metrics", response_class=PlainTextResponse)
    async def own_metrics() -> str:
        return "app_requests_total 7\n"

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", token="write-token"
    )
    ActivityFeed(settings).install(app, metrics_path=None)
    server = live_server(app=app)

    # The feed's token guards the feed, not a path it was told to leave alone.
    assert httpx.get(f"{server.url}/metrics", timeout=WAIT_SECONDS).text == "app_requests_total 7\n"
    assert httpx.get(f"{server.url}/activities/recent", timeout=WAIT_SECONDS).status_code == 401

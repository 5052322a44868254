"""What the client does with each kind of answer: retry (5xx, 429 with Retry-After, lost answers) without
creating duplicates, never retry any other 4xx, and never count as sent what some other service accepted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from activity_feed.client import FeedClient
from tests.client.remotes import Answer, FakeRemote, get_event, recent, wait_until
from tests.support.server import LiveServer

Script = Callable[[int, dict[str, Any]], "Answer | str"]


@pytest.fixture
def remotes() -> Iterator[Callable[..., FakeRemote]]:
    started: list[FakeRemote] = []

    def start(script: Script, upstream: str | None = None) -> FakeRemote:
        remote = FakeRemote(script, upstream).start()
        started.append(remote)
        return remote

    yield start
    for remote in started:
        remote.stop()


def test_a_4xx_other_than_408_and_429_is_not_retried(
    remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    remote = remotes(lambda n, body: (400, {}))
    client = make_client(remote.url)
    for _ in range(5):
        client.log(tool_name="refused")
    assert client.flush(timeout=5)
    assert client.dropped["rejected"] == 5
    assert client.retried == 0
    assert len(remote.requests) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_routing_errors_are_rejected_without_retry(
    status: int, remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    remote = remotes(lambda n, body: (status, {}))
    client = make_client(remote.url)
    client.log(tool_name="refused")
    assert client.flush(timeout=5)
    assert (client.dropped["rejected"], client.retried, len(remote.requests)) == (1, 0, 1)


def test_a_422_batch_is_split_so_one_bad_event_does_not_sink_the_others(
    sqlite_feed: LiveServer, remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    def script(n: int, body: dict[str, Any]) -> tuple[int, dict[str, str]] | str:
        poisoned = any(event["data"].get("poison") for event in body["events"])
        return (422, {}) if poisoned else "forward"

    remote = remotes(script, upstream=sqlite_feed.url)
    client = make_client(remote.url, flush_interval=10.0)
    good = [client.log(tool_name="good", data={"n": n}) for n in range(7)]
    client.log(tool_name="bad", data={"poison": True})
    assert client.flush(timeout=5)
    assert client.dropped["rejected"] == 1
    assert client.sent == 7
    assert {event["id"] for event in recent(sqlite_feed.url)} == set(good)


def test_5xx_is_retried_until_the_event_arrives(
    sqlite_feed: LiveServer, remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    remote = remotes(lambda n, body: (503, {}) if n < 2 else "forward", upstream=sqlite_feed.url)
    client = make_client(remote.url, max_backoff=0.2)
    event_id = client.log(tool_name="flaky")
    get_event(sqlite_feed.url, event_id)
    assert len(remote.requests) == 3
    assert client.retried == 2
    assert client.sent == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
def test_every_transient_status_is_retried(
    status: int, remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    remote = remotes(lambda n, body: (status, {}) if n == 0 else (200, {}))
    client = make_client(remote.url, max_backoff=0.1)
    client.log(tool_name="transient")
    wait_until(lambda: client.sent == 1, what="the retried batch acknowledged")
    assert (client.retried, client.dropped["rejected"]) == (1, 0)


def test_retry_after_is_honoured(
    remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    remote = remotes(lambda n, body: (429, {"Retry-After": "1"}) if n == 0 else (200, {}))
    client = make_client(remote.url, max_backoff=0.05)
    client.log(tool_name="throttled")
    assert client.flush(timeout=5)  # flush() does not cut a Retry-After short
    first, second = remote.requests
    assert second.at - first.at >= 0.95
    assert client.sent == 1


def test_a_lost_answer_is_retried_without_creating_a_duplicate(
    feed_server: LiveServer, remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    # The first batch reaches the real service, which commits it; the answer never reaches the client.
    remote = remotes(lambda n, body: "forward-and-hang-up" if n == 0 else "forward", upstream=feed_server.url)
    client = make_client(remote.url, max_backoff=0.1, flush_interval=10.0)
    ids = [client.log(tool_name="once", correlation_id="dedup", data={"n": n}) for n in range(10)]
    client.update(ids[0], status="success")
    assert client.flush(timeout=10)

    assert len(remote.requests) == 2
    assert remote.requests[0].body == remote.requests[1].body
    assert client.retried == 10
    stored = recent(feed_server.url, correlation_id="dedup")
    assert sorted(event["id"] for event in stored) == sorted(ids)
    assert next(e for e in stored if e["id"] == ids[0])["status"] == "success"


def test_a_batch_holds_at_most_batch_size_items(
    remotes: Callable[..., FakeRemote], make_client: Callable[..., FeedClient]
) -> None:
    remote = remotes(lambda n, body: (200, {}))
    client = make_client(remote.url, batch_size=25, flush_interval=10.0)
    for n in range(60):
        client.log(tool_name="sized", data={"n": n})
    assert client.flush(timeout=5)
    assert [len(seen.body["events"]) for seen in remote.requests] == [25, 25, 10]


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [("text/html", b"<html><body>It works!</body></html>"), ("application/json", b'{"status": "ok"}')],
    ids=["web-page", "other-json"],
)
def test_a_2xx_from_a_service_that_is_not_a_feed_is_dropped_as_bad_response_with_one_warning(
    content_type: str,
    payload: bytes,
    remotes: Callable[..., FakeRemote],
    make_client: Callable[..., FeedClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    remote = remotes(lambda n, body: (200, {"content-type": content_type}, payload))
    client = make_client(remote.url, max_backoff=0.05)
    with caplog.at_level(logging.WARNING, logger="activity_feed.client"):
        for _ in range(3):
            client.log(tool_name="misdirected")
        assert client.flush(timeout=5)
        client.log(tool_name="misdirected again")
        assert client.flush(timeout=5)
    assert (client.sent, client.retried, client.dropped["bad_response"]) == (0, 0, 4)
    assert len(remote.requests) == 2  # not sent there again
    warnings = [r.getMessage() for r in caplog.records if "not an Activity Feed" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"{remote.url}/activities/batch answered HTTP 200" in warnings[0]

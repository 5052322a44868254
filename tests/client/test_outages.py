"""The service refusing connections, hanging, or gone for good: log() stays prompt, nothing is lost that
fitted in the queue, and what had to be dropped is counted exactly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from activity_feed.api import create_app
from activity_feed.client import FeedClient
from activity_feed.client.counters import DROP_REASONS
from activity_feed.settings import Settings
from tests.client.remotes import recent, wait_until
from tests.support.peers import HangingServer, TricklingServer
from tests.support.server import LiveServer, free_port

# A behaviour bound for one log() call, not a benchmark: far below the client's network timeout (5 s),
# which a call that waited on the network would take, and far above what the interpreter itself may
# pause a thread for on a busy 2-core machine (garbage collection, another thread's C call).
PROMPT_SECONDS = 0.25


def _timed_logs(client: FeedClient, count: int, **fields: object) -> list[str]:
    ids = []
    for n in range(count):
        started = time.perf_counter()
        ids.append(client.log(tool_name="outage", data={"n": n}, **fields))  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        assert elapsed < PROMPT_SECONDS, f"log() #{n} took {elapsed * 1000:.1f} ms"
    return ids


def test_events_queued_while_the_service_is_down_arrive_once_it_is_back(
    sqlite_settings: Settings, make_client: Callable[..., FeedClient]
) -> None:
    port = free_port()
    client = make_client(f"http://127.0.0.1:{port}", batch_size=20, max_backoff=0.2)
    ids = _timed_logs(client, 60, correlation_id="outage")
    wait_until(lambda: client.retried > 0, what="a retry against the refused port")
    assert client.sent == 0

    server = LiveServer(create_app(sqlite_settings), port)
    server.start()
    try:
        assert client.flush(timeout=10)
        assert client.sent == 60
        assert client.dropped == dict.fromkeys(DROP_REASONS, 0)
        assert {event["id"] for event in recent(server.url, correlation_id="outage")} == set(ids)
    finally:
        server.stop()


def test_a_hanging_service_does_not_slow_log_and_is_retried_after_the_timeout(
    make_client: Callable[..., FeedClient],
) -> None:
    hanging = HangingServer()
    try:
        client = make_client(hanging.url, timeout=0.2, max_backoff=0.1)
        _timed_logs(client, 20)
        wait_until(lambda: client.retried >= 20, what="the batch retried after a timeout")
        _timed_logs(client, 20)  # still prompt while the worker waits on the socket
        assert client.sent == 0
        wait_until(lambda: len(hanging.accepted) >= 2, what="a new connection for the retry")
        assert client.flush(timeout=0.1) is False
    finally:
        hanging.stop()


def test_a_service_that_trickles_its_answer_is_cut_off_at_the_timeout_retried_and_given_up(
    make_client: Callable[..., FeedClient], caplog: pytest.LogCaptureFixture
) -> None:
    # One byte every 0.5 s: no single read ever waits as long as the 1 s timeout.
    trickling = TricklingServer(interval=0.5)
    try:
        client = make_client(trickling.url, timeout=1.0, max_backoff=0.1, max_retry_seconds=2.0)
        with caplog.at_level(logging.WARNING, logger="activity_feed.client"):
            client.log(tool_name="trickled")
            started = time.monotonic()
            assert client.flush(timeout=10)
            # Two seconds of budget, then at most the one attempt under way (1 s) and a backoff.
            assert time.monotonic() - started < 4.5
        assert client.retried >= 1
        assert (client.sent, client.dropped["gave_up"]) == (0, 1)
        assert trickling.connections >= 2  # each attempt on a new connection: the cut one is not reused
        messages = [record.getMessage() for record in caplog.records]
        warnings = [message for message in messages if "no complete answer within 1 s" in message]
        assert len(warnings) == 1, warnings
        started = time.monotonic()
        client.close(timeout=1.0)
        assert time.monotonic() - started < 1.5
    finally:
        trickling.stop()


def test_overflow_while_down_is_counted_exactly(make_client: Callable[..., FeedClient]) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", max_queue_events=100, batch_size=10)
    _timed_logs(client, 137)
    assert client.dropped["queue_full"] == 37
    assert client.queued == 100


def test_the_byte_bound_counts_serialised_size(make_client: Callable[..., FeedClient]) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", max_queue_bytes=20_000)
    for _ in range(40):
        client.log(tool_name="bytes", data={"blob": "x" * 1000})
    # Each event is a little over 1 kB serialised: at most 19 fit in 20,000 bytes.
    held = client.queued
    assert 15 <= held <= 19
    assert client.dropped["queue_full"] == 40 - held


def test_an_event_larger_than_a_request_is_dropped_as_too_large(
    sqlite_feed: object, make_client: Callable[..., FeedClient]
) -> None:
    url = sqlite_feed.url  # type: ignore[attr-defined]
    client = make_client(url)
    started = time.perf_counter()
    client.log(tool_name="huge", data={"blob": "x" * (1024 * 1024)})
    assert time.perf_counter() - started < 0.5
    small = client.log(tool_name="small")
    assert client.dropped["too_large"] == 1
    assert client.flush(timeout=5)
    assert [event["id"] for event in recent(url)] == [small]


def test_events_older_than_the_retry_budget_are_given_up(make_client: Callable[..., FeedClient]) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", max_retry_seconds=0.3, max_backoff=0.05)
    _timed_logs(client, 30)
    wait_until(lambda: client.dropped["gave_up"] == 30, what="every event given up")
    assert client.queued == 0
    assert client.flush(timeout=1)


def test_giving_up_on_old_events_makes_room_for_new_ones(make_client: Callable[..., FeedClient]) -> None:
    client = make_client(
        f"http://127.0.0.1:{free_port()}", max_queue_events=10, max_retry_seconds=0.3, max_backoff=0.05
    )
    _timed_logs(client, 10)
    wait_until(lambda: client.queued == 0, what="the old events given up")
    _timed_logs(client, 10)
    assert client.dropped["queue_full"] == 0
    assert client.queued == 10


def test_flush_and_close_are_bounded_while_the_service_is_down(
    make_client: Callable[..., FeedClient],
) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}")
    _timed_logs(client, 5)

    started = time.monotonic()
    assert client.flush(timeout=0.3) is False
    assert 0.25 < time.monotonic() - started < 1.0

    started = time.monotonic()
    client.close(timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert client.dropped["gave_up"] == 5
    client.log(tool_name="after close")  # counted, not sent, no exception
    assert client.dropped["gave_up"] == 6

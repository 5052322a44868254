"""Delivery: one alert per breach however many events cause it, webhooks that hang or fail delay nothing
but their own messages, and failures are retried only when a retry can help."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest

from activity_feed.alerts.rules import Webhook
from activity_feed.alerts.webhooks import WebhookSender
from tests.alerts.conftest import WAIT_SECONDS, Feed, states
from tests.support.webhooks import HANG, WebhookReceiver

StartFeed = Callable[..., Feed]

BURST_RULES = """
[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 3
webhooks = ["ops"]

[[rules]]
name = "rate"
kind = "error_rate"
tool = "search_properties"
window = "1m"
threshold = 0.2
min_calls = 10
webhooks = ["ops"]
"""


async def _post_failures(url: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=WAIT_SECONDS) as http:
        event = {"event_type": "tool_call", "tool_name": "search_properties", "status": "error"}
        answers = await asyncio.gather(*(http.post("/activities/log", json=event) for _ in range(count)))
    assert {answer.status_code for answer in answers} == {201}


def test_a_burst_of_200_failures_fires_each_rule_exactly_once(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    feed = feed_with_rules(BURST_RULES)
    failure = {"event_type": "tool_call", "tool_name": "search_properties", "status": "error"}
    feed.batch([failure] * 100)  # one transaction
    asyncio.run(_post_failures(feed.server.url, 100))  # and 100 requests at once
    feed.batch([{**failure, "status": "success"}] * 60)  # 200 of 260 failed; the streak ends
    # Each webhook's messages go in order: any duplicate firing would arrive before the resolution.
    got = hooks.wait_for(
        lambda got: ("resolved", "search_properties") in states([r.body for r in got]), "/ops"
    )
    bodies = [r.body for r in got]
    assert states(bodies, "streak") == [("firing", "search_properties"), ("resolved", "search_properties")]
    assert states(bodies, "rate") == [("firing", "search_properties")]
    events = feed.wait_alert_events(3)
    assert sorted((e["data"]["rule"], e["data"]["state"]) for e in events) == [
        ("rate", "firing"),
        ("streak", "firing"),
        ("streak", "resolved"),
    ]


def test_a_webhook_that_never_answers_delays_neither_another_webhook_nor_ingest(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    hooks.answer("/hang", HANG)
    feed = feed_with_rules(
        """
[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 2
webhooks = ["hang", "ops"]
""",
        webhooks={"hang": "/hang timeout=4s", "ops": "/ops"},
    )
    feed.log("book_viewing", "error")
    feed.log("book_viewing", "error")
    # The hanging webhook holds its first message for 4 s, and would retry it for about 30 s: "ops" gets
    # its copy, and the next, before the first attempt on "hang" times out (each wait here is shorter),
    # and ingest answers meanwhile (each POST within 3 s).
    hooks.wait_for(lambda got: len(got) >= 1, "/hang", timeout=3.0)
    hooks.wait_for(lambda got: len(got) >= 1, "/ops", timeout=3.0)
    with httpx.Client(base_url=feed.server.url, timeout=3.0) as http:
        for _ in range(20):
            event = {"event_type": "tool_call", "tool_name": "other", "status": "success"}
            assert http.post("/activities/log", json=event).status_code == 201
    feed.log("book_viewing", "success")
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops", timeout=3.0)
    assert states([r.body for r in got]) == [("firing", "book_viewing"), ("resolved", "book_viewing")]
    # Still the first attempt's message: "hang" has not answered, so nothing else was sent to it yet.
    assert len(hooks.received("/hang")) == 1


def test_a_webhook_answering_500_is_retried_and_delivered_once(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    hooks.answer("/flaky", 500, 200)
    hooks.answer("/gone", 404)
    feed = feed_with_rules(
        """
[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 1
webhooks = ["flaky", "gone"]
""",
        webhooks={"flaky": "/flaky", "gone": "/gone"},
    )
    feed.log("get_lease", "error")
    feed.log("get_lease", "success")
    flaky = hooks.wait_for(lambda got: len(got) >= 3, "/flaky")
    assert [(r.status, r.body["state"]) for r in flaky] == [
        (500, "firing"),
        (200, "firing"),
        (200, "resolved"),
    ]
    assert flaky[0].body == flaky[1].body
    # A 404 is final: the firing was sent once, then the resolution (in order, so no retry came between).
    gone = hooks.wait_for(lambda got: len(got) >= 2, "/gone")
    assert [(r.status, r.body["state"]) for r in gone] == [(404, "firing"), (404, "resolved")]


def test_a_url_that_httpx_refuses_is_a_final_failure_logged_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What `serve` does with each message: one warning without a traceback, and no retry.
    sender = WebhookSender(Webhook("ops", "http://u:p@127.0.0.1:99999/hook"), first_delay=5.0)

    async def send_one() -> None:
        sender.start()
        sender.send({"text": "[firing] streak: x"})
        await sender.stop()

    with caplog.at_level(logging.WARNING, logger="activity_feed.alerts.webhooks"):
        asyncio.run(send_one())
    [record] = caplog.records
    assert record.exc_info is None
    assert record.getMessage().startswith("alerts: webhook 'ops': not delivered after 1 attempt(s): ")
    assert (sender.delivered, sender.failed) == (0, 1)

"""Each kind of rule fires once when its condition is breached and resolves once when it no longer is,
through the real service: events posted over HTTP, alerts received by a real webhook receiver, and
recorded in the feed as system events that `GET /activities/alerts` reflects."""

from __future__ import annotations

from collections.abc import Callable

from tests.alerts.conftest import Feed, states
from tests.support.webhooks import WebhookReceiver

StartFeed = Callable[..., Feed]


def test_consecutive_failures_fire_at_the_count_and_resolve_at_the_next_success(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    feed = feed_with_rules(
        """
[[rules]]
name = "search keeps failing"
kind = "consecutive_failures"
tool = "search_properties"
count = 3
webhooks = ["ops"]
"""
    )
    feed.log("search_properties", "error")
    feed.log("search_properties", "error")
    feed.log("get_property", "error")  # another tool: not counted
    feed.log("search_properties", "error")
    [firing] = hooks.wait_for(lambda got: len(got) >= 1, "/ops")
    assert firing.body["state"] == "firing"
    assert firing.body["rule"] == "search keeps failing"
    assert firing.body["kind"] == "consecutive_failures"
    assert firing.body["tool"] == "search_properties"
    assert firing.body["value"] == 3
    assert firing.body["threshold"] == 3
    assert "search_properties failed 3 times in a row" in firing.body["text"]
    [active] = feed.wait_alerts(lambda answer: len(answer) == 1)
    assert active["rule"] == "search keeps failing"
    assert active["tool"] == "search_properties"
    assert active["text"] == firing.body["text"]

    feed.log("search_properties", "success")
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops")
    assert states([r.body for r in got]) == [
        ("firing", "search_properties"),
        ("resolved", "search_properties"),
    ]
    # Recorded in the feed: an `error` system event while it fired, a `success` one when it ended.
    events = feed.wait_alert_events(2)
    assert [(e["tool_name"], e["status"], e["data"]["state"]) for e in events] == [
        ("alert: search keeps failing", "error", "firing"),
        ("alert: search keeps failing", "success", "resolved"),
    ]
    feed.wait_alerts(lambda answer: answer == [])


def test_error_rate_over_a_window_per_tool_with_min_calls(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    feed = feed_with_rules(
        """
[[rules]]
name = "failing"
kind = "error_rate"
window = "30s"
threshold = 0.5
min_calls = 4
webhooks = ["ops"]
"""
    )
    for _ in range(3):
        feed.log("list_leases", "error")  # 100% but only 3 calls: too few to judge
    feed.log("get_tenant", "error")
    feed.log("list_leases", "success")  # 3 of 4 failed: 75% > 50%
    [firing] = hooks.wait_for(lambda got: len(got) >= 1, "/ops")
    assert states([firing.body]) == [("firing", "list_leases")]  # per tool: get_tenant had 1 call
    assert firing.body["value"] == 0.75
    assert firing.body["calls"] == 4
    assert firing.body["window"] == "30s"
    # It ends once 10% under the threshold: not at 3 of 6 (50%), at 3 of 7 (43%).
    for _ in range(3):
        feed.log("list_leases", "success")
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops")
    assert states([r.body for r in got]) == [("firing", "list_leases"), ("resolved", "list_leases")]
    assert (got[1].body["value"], got[1].body["calls"]) == (0.4286, 7)


def test_error_rate_resolves_when_its_window_drains(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    feed = feed_with_rules(
        """
[[rules]]
name = "failing"
kind = "error_rate"
tool = "record_payment"
window = "2s"
threshold = 0.2
min_calls = 2
webhooks = ["ops"]
"""
    )
    feed.log("record_payment", "error")
    feed.log("record_payment", "error")
    hooks.wait_for(lambda got: len(got) >= 1, "/ops")
    # No more calls: once they are older than the window there is nothing left to judge (the tick).
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops")
    assert states([r.body for r in got]) == [("firing", "record_payment"), ("resolved", "record_payment")]
    assert got[1].body["calls"] == 0


def test_p95_over_budget_fires_and_resolves(feed_with_rules: StartFeed, hooks: WebhookReceiver) -> None:
    feed = feed_with_rules(
        """
[[rules]]
name = "slow search"
kind = "p95"
tool = "search_properties"
window = "30s"
max_ms = 100
min_calls = 3
webhooks = ["ops"]
"""
    )
    feed.log("search_properties", duration_ms=20)
    feed.log("search_properties", duration_ms=450)
    feed.log("search_properties", "error", duration_ms=900)  # failed calls have a duration too
    [firing] = hooks.wait_for(lambda got: len(got) >= 1, "/ops")
    assert states([firing.body]) == [("firing", "search_properties")]
    assert firing.body["value"] == 900  # nearest rank: the 3rd of 3
    assert firing.body["threshold"] == 100
    # 39 calls: the p95 is the 38th smallest, still the 450 ms call; at 40, the 38th is 20 ms.
    fast = {
        "event_type": "tool_call",
        "tool_name": "search_properties",
        "status": "success",
        "duration_ms": 20,
    }
    feed.batch([fast] * 36)
    feed.log("search_properties", duration_ms=20)
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops")
    assert states([r.body for r in got]) == [
        ("firing", "search_properties"),
        ("resolved", "search_properties"),
    ]
    assert got[1].body["value"] == 20
    assert got[1].body["calls"] == 40  # not before


def test_stuck_pending_fires_with_time_and_resolves_when_the_call_ends(
    feed_with_rules: StartFeed, hooks: WebhookReceiver
) -> None:
    feed = feed_with_rules(
        """
[[rules]]
name = "stuck"
kind = "stuck_pending"
older_than = "1s"
webhooks = ["ops"]
"""
    )
    started = feed.log("check_availability", "pending")
    feed.log("other_tool", "pending")
    quick = feed.log("quick_tool", "pending")
    feed.http.patch(f"/activities/{quick['id']}", json={"status": "success"})
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops")
    assert sorted(states([r.body for r in got])) == [
        ("firing", "check_availability"),
        ("firing", "other_tool"),
    ]
    assert got[0].body["value"] == 1
    feed.http.patch(f"/activities/{started['id']}", json={"status": "success", "duration_ms": 1500})
    got = hooks.wait_for(lambda got: len(got) >= 3, "/ops")
    assert states([got[2].body]) == [("resolved", "check_availability")]
    feed.wait_alerts(lambda answer: [a["tool"] for a in answer] == ["other_tool"])

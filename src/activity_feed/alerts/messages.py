"""What an alert says: the JSON body posted to webhooks (Slack-compatible: its `text` is the message) and
kept as the `data` of the alert's system event in the feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from activity_feed.alerts.evaluator import AlertChange
from activity_feed.alerts.rules import Kind, Rule, format_duration_seconds

# The system events of alerts are named `alert: <rule name>` (alerts/board.py finds them by it).
ALERT_TOOL_PREFIX = "alert: "
ALERT_SOURCE = "activity-feed alerts"


def alert_body(change: AlertChange) -> dict[str, Any]:
    rule = change.rule
    state = "firing" if change.firing else "resolved"
    body: dict[str, Any] = {
        "text": f"[{state}] {rule.name}: {_describe(change)}",
        "rule": rule.name,
        "state": state,
        "kind": rule.kind.value,
        "tool": change.tool,
        "value": change.value,
        "threshold": rule.limit,
        "at": change.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if rule.window is not None:
        body["window"] = rule.window_text
    if change.calls is not None:
        body["calls"] = change.calls
    if change.oldest_seconds is not None and change.firing:
        body["oldest_seconds"] = round(change.oldest_seconds, 1)
    return body


def trial_body(webhook: str, at: datetime) -> dict[str, Any]:
    """What `activity-feed alerts test` posts: the shape of an alert, saying it is a test."""
    return {
        "text": f"[test] Activity Feed alerts can reach the webhook {webhook!r}.",
        "rule": "test",
        "state": "test",
        "kind": "test",
        "tool": None,
        "value": None,
        "threshold": None,
        "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def _describe(change: AlertChange) -> str:
    rule = change.rule
    tool = change.tool
    value = change.value
    if (
        rule.kind in (Kind.ERROR_RATE, Kind.P95)
        and not change.firing
        and (change.calls or 0) < rule.min_calls
    ):
        calls = "1 call" if change.calls == 1 else f"{change.calls or 0} calls"
        return f"{tool} had {calls} over {rule.window_text}, too few to judge (min_calls {rule.min_calls})"
    if rule.kind is Kind.ERROR_RATE:
        rate = f"{(value or 0.0):.0%}"
        limit = f"{rule.limit:.0%}"
        calls = f"{change.calls} calls" if change.calls != 1 else "1 call"
        if change.firing:
            return f"{tool} error rate {rate} over {rule.window_text} ({calls}; threshold {limit})"
        return f"{tool} error rate back to {rate} over {rule.window_text} ({calls}; threshold {limit})"
    if rule.kind is Kind.P95:
        p95 = "-" if value is None else f"{value:,.0f} ms"
        budget = f"{rule.limit:,.0f} ms"
        calls = f"{change.calls} calls" if change.calls != 1 else "1 call"
        if change.firing:
            return f"{tool} p95 {p95} over {rule.window_text}, over its {budget} budget ({calls})"
        return f"{tool} p95 back to {p95} over {rule.window_text}, within its {budget} budget ({calls})"
    if rule.kind is Kind.CONSECUTIVE_FAILURES:
        if change.firing:
            times = "once" if value == 1 else f"{value:.0f} times in a row"
            return f"{tool} failed {times} (limit {rule.limit:.0f})"
        return f"{tool} succeeded again"
    older = format_duration_seconds(rule.limit)
    if change.firing:
        calls = "1 call" if value == 1 else f"{value:.0f} calls"
        oldest = format_duration_seconds(round(change.oldest_seconds or 0.0))
        return f"{calls} of {tool} pending longer than {older} (the oldest for {oldest})"
    return f"no call of {tool} pending longer than {older}"


def alert_tool_name(rule: Rule) -> str:
    return f"{ALERT_TOOL_PREFIX}{rule.name}"

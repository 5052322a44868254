"""What an alert says, read from the body posted to webhooks: counts in words that agree with them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activity_feed.alerts.evaluator import AlertChange
from activity_feed.alerts.messages import alert_body
from activity_feed.alerts.rules import Kind, Rule

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "[firing] fails: search failed once (limit 1)"),
        (3, "[firing] fails: search failed 3 times in a row (limit 3)"),
    ],
)
def test_consecutive_failures_say_once_or_times_in_a_row(count: int, text: str) -> None:
    rule = Rule(name="fails", kind=Kind.CONSECUTIVE_FAILURES, count=count)
    change = AlertChange(rule=rule, tool="search", firing=True, value=float(count), at=AT)

    assert alert_body(change)["text"] == text

"""The evaluator alone, on a clock the test moves: what each kind counts, when an alert changes state,
and how a new evaluator starts from the database's state. Notices are made as each bus makes them: from a
committed change (the memory bus) or from the JSON another instance published (Redis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from activity_feed.alerts.evaluator import AlertChange, Evaluator
from activity_feed.alerts.rules import parse_rules
from activity_feed.hub import Notice
from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store.rows import CreatedChange


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def evaluator(rules: str, clock: Clock) -> Evaluator:
    config = parse_rules(rules, Path("alerts.toml"))
    return Evaluator(config.rules, clock=clock, wall_clock=lambda: datetime(2026, 12, 1, tzinfo=UTC))


_seq = iter(range(1, 1_000_000))


def created(tool: str, status: str, duration_ms: float | None = None, **fields: Any) -> Notice:
    """A create committed here (the memory bus)."""
    item = ActivityCreate(
        event_type=fields.pop("event_type", EventType.TOOL_CALL),
        tool_name=tool,
        status=status,
        duration_ms=duration_ms,
        **fields,
    )
    return Notice.from_change(CreatedChange(next(_seq), item, item.id or uuid.uuid4(), datetime.now(UTC)))


def remote(
    change: str, event_id: uuid.UUID, tool: str, status: str, duration_ms: float | None = None
) -> Notice:
    """A change another instance published (Redis): JSON, with the id as text."""
    event = {
        "id": str(event_id),
        "tool_name": tool,
        "event_type": "tool_call",
        "status": status,
        "duration_ms": duration_ms,
    }
    seq = next(_seq)
    return Notice.from_payload(orjson.dumps({"type": change, "event": event, "cursor": str(seq)}))


def seen(changes: list[AlertChange]) -> list[tuple[str, str, bool, float | None]]:
    return [(c.rule.name, c.tool, c.firing, c.value) for c in changes]


STREAK = """
[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 2
"""


def test_a_breach_and_its_end_within_one_flush_are_both_told_in_order() -> None:
    clock = Clock()
    rules = evaluator(STREAK, clock)
    rules.observe([created("a", "error"), created("a", "error"), created("a", "success")])
    assert seen(rules.flush()) == [("streak", "a", True, 2.0), ("streak", "a", False, 0.0)]
    rules.observe([created("a", "error"), created("a", "error"), created("a", "error")])
    assert seen(rules.tick()) == [("streak", "a", True, 2.0)]  # the tick counts what was taken in
    rules.observe([created("a", "error")] * 50)
    assert rules.flush() == []  # still the same breach


def test_rules_without_a_tool_alert_per_tool_and_system_events_are_not_calls() -> None:
    clock = Clock()
    rules = evaluator(STREAK, clock)
    rules.observe([created("a", "error"), created("b", "error"), created("a", "error")])
    rules.observe([created("alert: x", "error", event_type=EventType.SYSTEM_EVENT)] * 3)
    rules.observe([created(None, "error")] * 3)  # type: ignore[arg-type]
    assert seen(rules.flush()) == [("streak", "a", True, 2.0)]


def test_an_error_rate_window_drains_with_time() -> None:
    clock = Clock()
    rules = evaluator(
        """
[[rules]]
name = "rate"
kind = "error_rate"
window = "10s"
threshold = 0.5
min_calls = 2
""",
        clock,
    )
    rules.observe([created("a", "error"), created("a", "error")])
    assert seen(rules.flush()) == [("rate", "a", True, 1.0)]
    clock.now += 10.0
    assert rules.tick() == []  # within the window and one bucket (2% of it)
    clock.now += 0.3
    [ended] = rules.tick()
    assert (ended.firing, ended.calls) == (False, 0)


def test_p95_is_exact_and_ends_only_10_percent_under_the_budget() -> None:
    clock = Clock()
    rules = evaluator(
        """
[[rules]]
name = "slow"
kind = "p95"
window = "1m"
max_ms = 100
min_calls = 1
""",
        clock,
    )
    rules.observe([created("a", "success", duration) for duration in (50, 120, 300)])
    assert seen(rules.flush()) == [("slow", "a", True, 300.0)]
    # 40 calls at 95 ms: the p95 is 95 ms, under the budget but not 10% under it.
    rules.observe([created("a", "success", 95)] * 40)
    assert rules.flush() == []
    # 797 more at 10 ms: the 42 calls over 90 ms are then the slowest 5% of 840, and the p95 is 50 ms.
    rules.observe([created("a", "success", 10)] * 796)
    assert rules.flush() == []
    rules.observe([created("a", "success", 10)])
    assert seen(rules.flush()) == [("slow", "a", False, 50.0)]


def test_stuck_pending_follows_calls_from_either_bus() -> None:
    clock = Clock()
    rules = evaluator(
        """
[[rules]]
name = "stuck"
kind = "stuck_pending"
tool = "a"
older_than = "30s"
""",
        clock,
    )
    first, second = uuid.uuid4(), uuid.uuid4()
    rules.observe(
        [remote("activity_logged", first, "a", "pending"), remote("activity_logged", second, "a", "pending")]
    )
    rules.observe([created("b", "pending")])  # another tool
    clock.now += 30.5
    assert seen(rules.tick()) == [("stuck", "a", True, 2.0)]
    rules.observe([remote("tool_completed", first, "a", "success")])
    assert rules.tick() == []  # one is still stuck
    deletion = Notice.from_payload(
        orjson.dumps({"type": "activity_deleted", "event": {"id": str(second)}, "cursor": "9"})
    )
    rules.observe([deletion])
    assert seen(rules.tick()) == [("stuck", "a", False, 0.0)]


def test_a_new_evaluator_corrects_the_record_and_repeats_nothing() -> None:
    clock = Clock()
    rules = evaluator(
        STREAK
        + """
[[rules]]
name = "stuck"
kind = "stuck_pending"
older_than = "1m"
""",
        clock,
    )
    # From the database: "a" failed twice in a row (an alert that holds), "b" recovered, "c" is stuck.
    rules.seed_calls(
        [
            ("a", True, None, 990.0),
            ("a", True, None, 995.0),
            ("b", True, None, 990.0),
            ("b", True, None, 991.0),
        ]
    )
    rules.seed_calls([("b", False, None, 992.0)])
    rules.seed_pending([(uuid.uuid4(), "c", 900.0)])
    # The feed records "a" and "b" as firing: "a" still holds (nothing to tell), "b" ended (told now), and
    # "c" was never told.
    changes = rules.settle([("streak", "a"), ("streak", "b"), ("nope", "x")])
    assert sorted(seen(changes)) == [("streak", "b", False, 0.0), ("stuck", "c", True, 1.0)]
    rules.observe([created("a", "error")])
    assert rules.flush() == []


def test_a_call_counts_once_when_it_first_ends_whatever_changes_it_after() -> None:
    rules = evaluator(STREAK, Clock())  # no stuck_pending rule: pending calls are followed all the same
    done, timed_out = uuid.uuid4(), uuid.uuid4()
    rules.observe([created("a", "success", id=done), created("a", "pending", id=timed_out)])
    # A success corrected to an error is not a second call; the pending call's timeout is its end.
    rules.observe([remote("tool_failed", done, "a", "error"), remote("tool_failed", timed_out, "a", "error")])
    assert rules.flush() == []
    rules.observe([remote("tool_completed", timed_out, "a", "success")])  # its late completion: no call
    assert rules.flush() == []
    rules.observe([created("a", "error")])
    assert seen(rules.flush()) == [("streak", "a", True, 2.0)]

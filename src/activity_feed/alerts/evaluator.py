"""The rules evaluated incrementally: each change the hub delivers updates a few counters, and a rule's
alert changes state (ok -> firing -> ok) the moment its condition does; `tick` handles what time alone
changes (calls that stay pending, windows that drain).

Rules without a `tool` are judged per tool: each tool that breaches has an alert of its own.

What is a call: every event but `system_event` and `mcp_notification`, with a `tool_name`. A call counts
once, when it ends: created as `success`/`error`, or changed from `pending` to one of them (the pending
timeout's `error` included). A later change (a success corrected to an error, a completion after the
timeout) is not another call. Its duration is `duration_ms` as it ended.

`observe` runs on the hub's listener for every change: it reads a few fields of each (never the whole
event) and sorts the calls by tool; `flush`, a few times a second, does the work per tool and rule."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activity_feed.alerts.rules import Kind, Rule
from activity_feed.alerts.windows import CountWindow, p95_over
from activity_feed.hub import Notice
from activity_feed.schemas import Fields

log = logging.getLogger(__name__)

NOT_CALLS = frozenset({"system_event", "mcp_notification"})
# Calls pending at once that are followed (to count each when it ends, and for stuck_pending); beyond it
# the oldest are forgotten (and not counted when they end). The pending timeout (10 minutes by default)
# ends them long before that in any ordinary deployment.
MAX_PENDING = 100_000
# An error_rate or p95 alert that holds ends once its measure is at most this fraction of its limit.
RESOLVE_BELOW = 0.9
_LOGGED = "activity_logged"
_UPDATED = "activity_updated"
_DELETED = "activity_deleted"
_CALL_FIELDS = Fields("tool_name", "event_type", "status", "duration_ms")


@dataclass(frozen=True, slots=True)
class AlertChange:
    """A rule's alert for one tool began (`firing`) or ended."""

    rule: Rule
    tool: str
    firing: bool
    value: float | None  # what was measured: a rate, milliseconds, a count of failures or of calls
    at: datetime
    calls: int | None = None  # the window's calls (error_rate, p95)
    oldest_seconds: float | None = None  # the oldest stuck call's age (stuck_pending)


class _Ended:
    """The calls of one tool that one batch of changes ended, in order."""

    __slots__ = ("durations", "errors", "failed")

    def __init__(self) -> None:
        self.failed: list[bool] = []
        self.durations: list[float] = []
        self.errors = 0

    def add(self, failed: bool, duration: float | None) -> None:
        self.failed.append(failed)
        self.errors += failed
        if duration is not None:
            self.durations.append(duration)


class _Track:
    """One rule's state for one tool."""

    __slots__ = ("firing", "oldest", "streak", "stuck", "window")

    def __init__(self, window: CountWindow | None) -> None:
        self.firing = False
        self.streak = 0
        self.stuck = 0
        self.oldest = 0.0
        self.window = window

    @property
    def idle(self) -> bool:
        """Nothing to remember: the track can go until its tool is seen again."""
        quiet = self.window is None or self.window.empty
        return quiet and not self.firing and self.streak == 0 and self.stuck == 0


class _Judge:
    """One rule, its limits as plain numbers (read for every batch), and its state per tool."""

    __slots__ = ("count", "kind", "limit", "min_calls", "rate", "rule", "streak", "tool", "tracks", "window")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.kind = rule.kind
        # Flags rather than comparisons with Kind's members, whose lookups cost more than a flag's.
        self.rate = rule.kind is Kind.ERROR_RATE
        self.streak = rule.kind is Kind.CONSECUTIVE_FAILURES
        self.tool = rule.tool
        self.limit = rule.limit
        self.count = rule.count or 0
        self.min_calls = max(1, rule.min_calls)
        self.window = rule.window
        self.tracks: dict[str, _Track] = {}

    def track(self, tool: str) -> _Track:
        track = self.tracks.get(tool)
        if track is None:
            window = None
            if self.window is not None:
                window = CountWindow(self.window, keep_durations=self.kind is Kind.P95)
            self.tracks[tool] = track = _Track(window)
        return track

    def breached(self, track: _Track) -> bool:
        """Whether the alert holds now. One of error_rate or p95 that holds ends only once its measure
        is 10% under the limit: a measure that hovers at the limit does not fire and end by turns."""
        window = track.window
        if window is None:
            return track.streak >= self.count if self.streak else track.stuck > 0
        # Fewer calls than min_calls: nothing to judge, so no alert (one that held ends).
        calls = window.calls
        if calls < self.min_calls:
            return False
        if self.rate:
            limit = self.limit * RESOLVE_BELOW if track.firing else self.limit
            return window.bad > limit * calls
        return p95_over(calls, window.near if track.firing else window.bad)

    def measure(self, track: _Track) -> float | None:
        window = track.window
        if window is None:
            return float(track.streak if self.streak else track.stuck)
        if self.rate:
            return round(window.rate(), 4)
        return window.p95()


def _id_key(value: Any) -> uuid.UUID:
    # A change made here, or read from the database, holds a UUID; one from the bus holds its text.
    return uuid.UUID(value) if type(value) is str else value


class Evaluator:
    """Every rule's alerts, fed by `observe` (changes in change order) and `tick` (time). Both return the
    alerts that changed state; nothing here waits or does I/O."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        judges = [_Judge(rule) for rule in rules]
        self._by_name = {judge.rule.name: judge for judge in judges}
        self._windowed = [judge for judge in judges if judge.window is not None]
        self._streaks = [judge for judge in judges if judge.kind is Kind.CONSECUTIVE_FAILURES]
        self._stuck = [judge for judge in judges if judge.kind is Kind.STUCK_PENDING]
        self._shortest_stuck = min((judge.limit for judge in self._stuck), default=0.0)
        # Pending calls in the order they started (dicts keep insertion order): id -> (tool, since).
        self._pending: dict[uuid.UUID, tuple[str, float]] = {}
        self._warned_pending = False
        self._ended: dict[str, _Ended] = {}  # calls taken in and not yet counted, per tool, in order
        self._changes: list[AlertChange] = []
        self._quiet = False

    # Feeding.

    def observe(self, notices: Sequence[Notice]) -> None:
        """Take in the calls these changes start or end; `flush` then counts them against the rules."""
        now = self._clock()
        pending = self._pending
        ended = self._ended
        for notice in notices:
            change = notice.type
            if change == _DELETED:
                if pending:
                    pending.pop(_id_key(notice.field("id")), None)
                continue
            tool, event_type, status, duration = notice.fields(_CALL_FIELDS)
            if tool is None or event_type in NOT_CALLS:
                continue
            if status == "pending":
                if change == _LOGGED:
                    self._start_pending(_id_key(notice.field("id")), tool, now)
                continue
            # Ended by an update: a call only if it was pending until then (its status changed: not
            # `activity_updated`). Each call created ended, most of them, costs no look-up.
            if change != _LOGGED and (
                change == _UPDATED or not pending or pending.pop(_id_key(notice.field("id")), None) is None
            ):
                continue
            calls = ended.get(tool)
            if calls is None:
                ended[tool] = calls = _Ended()
            calls.add(status == "error", duration)

    @property
    def unflushed(self) -> bool:
        return bool(self._ended)

    def flush(self) -> list[AlertChange]:
        """Count the calls taken in since the last flush; return the alerts that changed state.

        Calls are counted per tool and rule once per flush, not per change: the runner flushes a few
        times a second, so that under load each rule's work is shared by many calls."""
        self._count_taken_in()
        return self._take()

    def _count_taken_in(self) -> None:
        ended = self._ended
        if ended:
            self._ended = {}
            self._count(self._clock(), ended)

    def tick(self) -> list[AlertChange]:
        """Count what was taken in, and let time pass: windows drop old calls, pending calls grow older.
        Return what changed state."""
        self._count_taken_in()
        now = self._clock()
        for judge in self._windowed:
            tracks = judge.tracks
            for tool, track in list(tracks.items()):
                assert track.window is not None
                track.window.expire(now)
                self._judge(judge, tool, track)
                if track.idle:
                    del tracks[tool]
        for judge in self._streaks:
            for tool in [tool for tool, track in judge.tracks.items() if track.idle]:
                del judge.tracks[tool]
        if self._stuck:
            self._judge_stuck(now)
        return self._take()

    # Starting from the database's state (alerts/seed.py): counted without alerting; `settle` then says
    # what differs from the alerts recorded as firing.

    def seed_calls(self, calls: Iterable[tuple[str, bool, float | None, float]]) -> None:
        """Ended calls (tool, failed?, duration_ms, when on this clock), oldest first."""
        self._quiet = True
        try:
            for tool, failed, duration, when in calls:
                one = _Ended()
                one.add(failed, duration)
                self._count(when, {tool: one})
        finally:
            self._quiet = False

    def seed_pending(self, calls: Iterable[tuple[Any, str, float]]) -> None:
        """Calls pending now (id, tool, since when on this clock), oldest first."""
        for event_id, tool, since in calls:
            self._start_pending(_id_key(event_id), tool, since)

    def settle(self, firing: Iterable[tuple[str, str]]) -> list[AlertChange]:
        """Take the alerts recorded as firing (rule name, tool) as this evaluator's own, then judge every
        rule now: what the record has wrong is returned (a resolution missed, a breach not yet told)."""
        for name, tool in firing:
            judge = self._by_name.get(name)
            if judge is not None:
                judge.track(tool).firing = True
        for judge in self._streaks:
            for tool, track in judge.tracks.items():
                self._judge(judge, tool, track)
        return self.tick()

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # Inside.

    def _start_pending(self, event_id: uuid.UUID, tool: str, since: float) -> None:
        pending = self._pending
        pending[event_id] = (tool, since)
        if len(pending) > MAX_PENDING:
            del pending[next(iter(pending))]
            if not self._warned_pending:
                self._warned_pending = True
                log.warning(
                    "alerts: more than %d calls pending at once; the oldest are no longer followed",
                    MAX_PENDING,
                )

    def _count(self, now: float, ended: dict[str, _Ended]) -> None:
        for judge in self._windowed:
            if judge.tool is None:
                for tool, calls in ended.items():
                    self._add_to_window(judge, tool, calls, now)
            elif (mine := ended.get(judge.tool)) is not None:
                self._add_to_window(judge, judge.tool, mine, now)
        for judge in self._streaks:
            if judge.tool is None:
                for tool, calls in ended.items():
                    self._add_to_streak(judge, tool, calls)
            elif (mine := ended.get(judge.tool)) is not None:
                self._add_to_streak(judge, judge.tool, mine)

    def _add_to_window(self, judge: _Judge, tool: str, calls: _Ended, now: float) -> None:
        durations: list[float] | None
        if judge.rate:
            count, bad, durations = len(calls.failed), calls.errors, None
            near = bad
        else:
            durations = calls.durations
            if not durations:
                return
            budget, lower = judge.limit, judge.limit * RESOLVE_BELOW
            count = len(durations)
            bad = sum(1 for duration in durations if duration > budget)
            near = sum(1 for duration in durations if duration > lower)
        track = judge.tracks.get(tool) or judge.track(tool)
        window = track.window
        assert window is not None
        window.add(now, count, bad, near, durations)
        window.expire(now)
        self._judge(judge, tool, track)

    def _add_to_streak(self, judge: _Judge, tool: str, calls: _Ended) -> None:
        track = judge.tracks.get(tool) or judge.track(tool)
        for failed in calls.failed:
            if failed:
                track.streak += 1
                if track.streak == judge.count:
                    self._judge(judge, tool, track)
            elif track.streak:
                track.streak = 0
                self._judge(judge, tool, track)

    def _judge_stuck(self, now: float) -> None:
        found: dict[str, dict[str, tuple[int, float]]] = {judge.rule.name: {} for judge in self._stuck}
        for tool, since in self._pending.values():
            age = now - since
            if age <= self._shortest_stuck:
                break  # every later call started after this one
            for judge in self._stuck:
                if age > judge.limit and (judge.tool is None or judge.tool == tool):
                    mine = found[judge.rule.name]
                    count, oldest = mine.get(tool, (0, 0.0))
                    mine[tool] = (count + 1, max(oldest, age))
        for judge in self._stuck:
            mine = found[judge.rule.name]
            for tool in set(judge.tracks) | set(mine):
                track = judge.track(tool)
                track.stuck, track.oldest = mine.get(tool, (0, 0.0))
                self._judge(judge, tool, track)
                if track.idle:
                    del judge.tracks[tool]

    def _judge(self, judge: _Judge, tool: str, track: _Track) -> None:
        if self._quiet:
            return
        breached = judge.breached(track)
        if breached == track.firing:
            return
        track.firing = breached
        window = track.window
        self._changes.append(
            AlertChange(
                rule=judge.rule,
                tool=tool,
                firing=breached,
                value=judge.measure(track),
                at=self._wall_clock(),
                calls=window.calls if window is not None else None,
                oldest_seconds=track.oldest if judge.kind is Kind.STUCK_PENDING else None,
            )
        )

    def _take(self) -> list[AlertChange]:
        changes = self._changes
        if changes:
            self._changes = []
        return changes

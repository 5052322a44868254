"""Sliding windows kept incrementally: counters per time bucket, so that a call costs a few additions and
the window forgets old calls a bucket at a time, without ever reading the calls again."""

from __future__ import annotations

import math
from array import array
from collections import deque

# A window of `span` seconds keeps its calls in buckets of span/BUCKETS: it counts calls up to one bucket
# (2%) older than the span, in exchange for constant work per call and per second.
BUCKETS = 50
_MIN_WIDTH = 0.02  # seconds


class _Bucket:
    __slots__ = ("bad", "calls", "durations", "near", "start")

    def __init__(self, start: float, keep_durations: bool) -> None:
        self.start = start
        self.calls = 0
        self.bad = 0
        self.near = 0
        self.durations: array[float] | None = array("d") if keep_durations else None


class CountWindow:
    """Calls, the `bad` ones among them (failed, or slower than a budget) and the `near` ones (failed,
    or slower than 90% of the budget: what an alert that holds must fall under to end), over the last
    `span` seconds. With `keep_durations` the durations are kept too (8 bytes a call), so that a p95 can
    be stated exactly when an alert changes state; the decisions need only the counters."""

    __slots__ = ("_buckets", "_keep", "_span", "_width", "bad", "calls", "near")

    def __init__(self, span: float, *, keep_durations: bool = False) -> None:
        self._span = span
        self._width = max(span / BUCKETS, _MIN_WIDTH)
        self._keep = keep_durations
        self._buckets: deque[_Bucket] = deque()
        self.calls = 0
        self.bad = 0
        self.near = 0

    def add(self, now: float, calls: int, bad: int, near: int, durations: list[float] | None = None) -> None:
        buckets = self._buckets
        if buckets and now < buckets[-1].start + self._width:
            bucket = buckets[-1]
        else:
            bucket = _Bucket(now, self._keep)
            buckets.append(bucket)
        bucket.calls += calls
        bucket.bad += bad
        bucket.near += near
        if bucket.durations is not None and durations:
            bucket.durations.extend(durations)
        self.calls += calls
        self.bad += bad
        self.near += near

    def expire(self, now: float) -> None:
        """Forget the buckets whose every call is older than the span."""
        buckets = self._buckets
        cutoff = now - self._span - self._width
        while buckets and buckets[0].start <= cutoff:
            bucket = buckets.popleft()
            self.calls -= bucket.calls
            self.bad -= bucket.bad
            self.near -= bucket.near

    @property
    def empty(self) -> bool:
        return not self._buckets

    def rate(self) -> float:
        return self.bad / self.calls if self.calls else 0.0

    def p95(self) -> float | None:
        """The nearest-rank 95th percentile of the durations in the window (as `GET /activities/stats`
        computes it), or None when there are none. Sorts the window: for changes of state only."""
        values = sorted(value for bucket in self._buckets if bucket.durations for value in bucket.durations)
        if not values:
            return None
        return values[nearest_rank(len(values)) - 1]


def nearest_rank(n: int) -> int:
    """The 1-based rank of the 95th percentile among `n` values."""
    return max(1, math.ceil(0.95 * n))


def p95_over(calls: int, over: int) -> bool:
    """Whether the p95 of `calls` durations is over a budget that `over` of them exceed: exactly when
    fewer than nearest_rank(calls) of them are within it."""
    return calls - over < nearest_rank(calls)

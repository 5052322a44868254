"""Exponential backoff with jitter, for what the hub retries: the bus subscription, publishing, and reading
the database after a gap."""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2**30 times any sensible first delay is far past any cap; the bound only keeps the float finite.
_MAX_DOUBLINGS = 30


@dataclass(slots=True)
class Backoff:
    """Delays that double from `first` up to `cap` seconds, with jitter; `reset` after a success."""

    first: float = 0.1
    cap: float = 2.0
    attempts: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * 2.0 ** min(self.attempts, _MAX_DOUBLINGS))
        self.attempts += 1
        # Half fixed, half random ("equal jitter"): never a burst of retries near zero, and instances that
        # lost Redis at the same moment do not all come back at the same moment.
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempts = 0

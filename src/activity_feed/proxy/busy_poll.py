"""Busy polling: after each message, the relay keeps looking for the next one for a short while instead of
going to sleep at once.

An MCP conversation is a ping-pong: a request, then its response a few hundred microseconds later, then
the next request. A relay that sleeps between them must be woken by the kernel for every message, and a
wake-up costs more than the relaying itself (on a small virtual machine, 15 to 25 µs each, two per
message through a proxy). Polling without sleeping for `window` seconds after the last message catches
the next one as it arrives, at the price of at most that much CPU time per message; a message that
comes later is waited for as before. Linux does the same for sockets (`SO_BUSY_POLL`).

`bench proxy` shows the difference for the stdio relay; `--busy-poll 0` turns it off. With a single CPU,
polling would take the processor from the very server the relay waits for, so the default is then 0.
The HTTP relay does not poll: there, measured against the same server, it saved nothing, since the
server is slower to answer than the window and polling took CPU time from it.
"""

from __future__ import annotations

import os

# Seconds of polling after each message: enough to cover a quick server's answer (an empty tool call
# takes 100 to 500 µs) and a client's next request.
DEFAULT_WINDOW_SECONDS = 0.0005


def default_window() -> float:
    """DEFAULT_WINDOW_SECONDS where the relay has at least two CPUs to run on, else 0 (off)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return DEFAULT_WINDOW_SECONDS if cpus >= 2 else 0.0

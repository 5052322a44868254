"""Busy polling: after each message, the relay keeps looking for the next one for a short while instead of
going to sleep at once.

An MCP conversation is a ping-pong: a request, then its response a little later, then the next request.
A relay that sleeps between them must be woken by the kernel for every message, and on a small virtual
machine a wake-up costs more than the relaying itself (15 to 25 µs each, and the Python that runs just
after one runs several times slower than in a loop). Polling without sleeping for a window after a
message catches the next one as it arrives, at the price of at most that much CPU time per message; a
message that comes later is waited for as before. Linux does the same for sockets (`SO_BUSY_POLL`).

Between two looks the relay yields the CPU (`sched_yield`): on two CPUs shared by the client, the server
and the proxy, a poller that never yields delays whichever of them is waiting for a processor, often the
server the relay waits for. With a single CPU polling could only take the processor from the server, so
the default is then 0 (off). `bench proxy` shows the difference; `--busy-poll 0` turns it off.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

# Seconds of polling after each message of the stdio relay: enough to cover a quick server's answer (an
# empty tool call takes 100 to 500 µs) and a client's next request.
DEFAULT_WINDOW_SECONDS = 0.0005
# The HTTP relay polls after each request it sends upstream: a streamable-HTTP server answers more
# slowly (the Python SDK's empty call takes about 1 ms as JSON, 1.5 to 2 ms as SSE on two small CPUs),
# and the window also covers the client's next request.
DEFAULT_HTTP_WINDOW_SECONDS = 0.003

yield_cpu: Callable[[], object] = getattr(os, "sched_yield", lambda: None)


def default_window(seconds: float = DEFAULT_WINDOW_SECONDS) -> float:
    """`seconds` where the relay has at least two CPUs to run on, else 0 (off)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return seconds if cpus >= 2 else 0.0


class LoopPolling:
    """Keeps an asyncio event loop polling for I/O instead of sleeping, for `window` seconds after each
    `keep_polling()`: a callback that schedules itself again makes the loop's next wait for I/O return at
    once, and each turn yields the CPU. Costs nothing while no window is open."""

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float) -> None:
        self.loop = loop
        self.window = window
        self.until = 0.0
        self.polling = False

    def keep_polling(self) -> None:
        """Poll until `window` seconds from now (a window already open is extended)."""
        if self.window <= 0:
            return
        self.until = self.loop.time() + self.window
        if not self.polling:
            self.polling = True
            self.loop.call_soon(self._turn)

    def _turn(self) -> None:
        yield_cpu()
        if self.loop.time() < self.until:
            self.loop.call_soon(self._turn)
        else:
            self.polling = False

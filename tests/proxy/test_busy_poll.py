"""`LoopPolling`: an event loop that keeps polling for I/O for a window after each message, goes on
serving everything else meanwhile, and stops polling (costing no CPU) once the window has passed."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from activity_feed.proxy.busy_poll import LoopPolling, default_window

WINDOW = 0.2
WAIT_SECONDS = 10.0


async def _cpu_seconds_while_sleeping(seconds: float) -> float:
    """CPU time this thread (the loop's) used while the loop waited `seconds`."""
    begun = time.thread_time()
    await asyncio.sleep(seconds)
    return time.thread_time() - begun


async def _past_the_window(polling: LoopPolling) -> None:
    """Wait until the window has closed; the loop has stopped polling by then."""
    await asyncio.sleep(max(0.0, polling.until - polling.loop.time()) + 0.05)
    assert not polling.polling


async def test_the_loop_polls_for_the_window_then_sleeps_again() -> None:
    polling = LoopPolling(asyncio.get_running_loop(), WINDOW)
    polling.keep_polling()
    assert polling.polling
    # Polling: the loop never sleeps, so its thread spends the window on the CPU (yielding it to anyone
    # who needs it; nothing else here does).
    assert await _cpu_seconds_while_sleeping(WINDOW / 2) > WINDOW / 20
    await _past_the_window(polling)
    # Once the window has passed, waiting costs nothing again.
    assert await _cpu_seconds_while_sleeping(WINDOW) < WINDOW / 10


async def test_a_window_of_zero_never_polls() -> None:
    polling = LoopPolling(asyncio.get_running_loop(), 0.0)
    polling.keep_polling()
    assert not polling.polling
    assert await _cpu_seconds_while_sleeping(WINDOW) < WINDOW / 10


async def test_each_message_extends_the_window_from_now() -> None:
    loop = asyncio.get_running_loop()
    polling = LoopPolling(loop, WINDOW)
    polling.keep_polling()
    first_end = polling.until
    await asyncio.sleep(WINDOW / 4)
    polling.keep_polling()
    assert polling.until >= first_end + WINDOW / 4 - 0.01
    await _past_the_window(polling)
    assert loop.time() >= polling.until


async def test_io_and_timers_are_served_while_the_loop_polls() -> None:
    loop = asyncio.get_running_loop()
    polling = LoopPolling(loop, WINDOW)
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    arrived: asyncio.Future[bytes] = loop.create_future()
    loop.add_reader(left, lambda: arrived.done() or arrived.set_result(left.recv(100)))
    try:
        polling.keep_polling()
        right.send(b"hello")
        async with asyncio.timeout(WAIT_SECONDS):
            assert await arrived == b"hello"
        assert polling.polling  # well inside the window: the read did not wait for it to end
    finally:
        loop.remove_reader(left)
        left.close()
        right.close()


def test_the_default_window_is_off_with_a_single_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert default_window(0.003) == 0.0
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert default_window(0.003) == 0.003

"""The HTTP mode of `activity-feed proxy` put together: relay, tap, recorders and client, on one event
loop until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TextIO

from activity_feed.client import FeedClient
from activity_feed.errors import ActivityFeedError
from activity_feed.mcp.messages import check_record_mode
from activity_feed.proxy.busy_poll import DEFAULT_HTTP_WINDOW_SECONDS, default_window
from activity_feed.proxy.http import HttpRelay
from activity_feed.proxy.http_tap import HttpTap
from activity_feed.proxy.recorder import ConnectionRecorder

PREFIX = "activity-feed proxy"
# At a stop: how long exchanges in flight may take to end (open SSE streams end at once).
STOP_GRACE_SECONDS = 2.0
STOPPED = "no response: the proxy stopped"


def run_http(
    upstream: str,
    *,
    host: str,
    port: int,
    feed_url: str,
    token: str | None,
    source: str | None,
    record: str,
    busy_poll: float | None = None,
    stderr: TextIO,
    report_drops: Callable[[FeedClient, TextIO], None],
) -> int:
    """Relay `host`:`port` to `upstream` until a signal; answers the exit code (0 after a signal).
    `busy_poll`: seconds of polling after each request (`busy_poll.py`); None: this machine's default."""
    window = default_window(DEFAULT_HTTP_WINDOW_SECONDS) if busy_poll is None else busy_poll
    try:
        relay = HttpRelay(upstream, busy_poll=window)
    except ValueError as exc:
        print(f"{PREFIX}: {exc}", file=stderr, flush=True)
        return 2
    mode = check_record_mode(record)
    try:
        client: FeedClient | None = FeedClient(feed_url, token)
    except ActivityFeedError as exc:  # a token that cannot be sent: relay all the same
        print(f"{PREFIX}: not recording: {exc}", file=stderr, flush=True)
        client = None
    tap: HttpTap | None = None
    if client is not None:
        recording = client

        def make_recorder(session_id: str | None) -> ConnectionRecorder:
            return ConnectionRecorder(
                recording, transport="http", session_id=session_id, record=mode, user_source=source
            )

        tap = relay.tap = HttpTap(make_recorder)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code = runner.run(_serve(relay, tap, host, port, feed_url, stderr))
    finally:
        if client is not None:
            report_drops(client, stderr)
        if tap is not None and tap.skipped:
            print(
                f"{PREFIX}: {tap.skipped} copies were not recorded: the recorder fell behind the relay",
                file=stderr,
                flush=True,
            )
    return code


async def _serve(
    relay: HttpRelay, tap: HttpTap | None, host: str, port: int, feed_url: str, stderr: TextIO
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _on_signals(loop, stop.set)
    try:
        try:
            bound_host, bound_port = await relay.start(host, port)
        except OSError as exc:
            print(f"{PREFIX}: cannot listen on {host}:{port}: {exc.strerror or exc}", file=stderr, flush=True)
            return 1
        name = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(
            f"{PREFIX}: relaying http://{name}:{bound_port}{relay.origin.path} to {relay.origin.url}"
            + (f", recording in {feed_url}" if tap is not None else ""),
            file=stderr,
            flush=True,
        )
        await stop.wait()
        await relay.stop(STOP_GRACE_SECONDS)
        if tap is not None:
            tap.stop(STOPPED)
        return 0
    finally:
        _on_signals(loop, None)


def _on_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[], None] | None) -> None:
    """Call `handler` on SIGINT and SIGTERM (None: restore the defaults)."""

    def from_signal(signum: int, frame: object) -> None:
        if handler is not None:
            loop.call_soon_threadsafe(handler)

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            if handler is None:
                loop.remove_signal_handler(signum)
            else:
                loop.add_signal_handler(signum, handler)
        except NotImplementedError:  # Windows: no signal handlers on the loop
            signal.signal(signum, signal.SIG_DFL if handler is None else from_signal)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # installed with uvicorn[standard]; the relay's syscalls cost less on it
    except ImportError:
        return None
    return uvloop.new_event_loop

"""The HTTP mode of `activity-feed proxy` put together: relay, tap, recorders and client, on one event
loop until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TextIO

from activity_feed.client import FeedClient
from activity_feed.mcp.messages import check_record_mode
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
    stderr: TextIO,
    report_drops: Callable[[FeedClient, TextIO], None],
) -> int:
    """Relay `host`:`port` to `upstream` until a signal; answers the exit code (0 after a signal)."""
    try:
        relay = HttpRelay(upstream)
    except ValueError as exc:
        print(f"{PREFIX}: {exc}", file=stderr, flush=True)
        return 2
    mode = check_record_mode(record)
    client = FeedClient(feed_url, token)

    def make_recorder(session_id: str | None) -> ConnectionRecorder:
        return ConnectionRecorder(
            client, transport="http", session_id=session_id, record=mode, user_source=source
        )

    tap = HttpTap(make_recorder)
    relay.tap = tap
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code = runner.run(_serve(relay, tap, host, port, feed_url, stderr))
    finally:
        report_drops(client, stderr)
        if tap.skipped:
            print(
                f"{PREFIX}: {tap.skipped} copies were not recorded: the recorder fell behind the relay",
                file=stderr,
                flush=True,
            )
    return code


async def _serve(relay: HttpRelay, tap: HttpTap, host: str, port: int, feed_url: str, stderr: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            bound_host, bound_port = await relay.start(host, port)
        except OSError as exc:
            print(f"{PREFIX}: cannot listen on {host}:{port}: {exc.strerror or exc}", file=stderr, flush=True)
            return 1
        name = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(
            f"{PREFIX}: relaying http://{name}:{bound_port}{relay.origin.path} to {relay.origin.url}, "
            f"recording in {feed_url}",
            file=stderr,
            flush=True,
        )
        await stop.wait()
        await relay.stop(STOP_GRACE_SECONDS)
        tap.stop(STOPPED)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # installed with uvicorn[standard]; the relay's syscalls cost less on it
    except ImportError:
        return None
    return uvloop.new_event_loop

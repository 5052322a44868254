"""tail: median time from a `POST /activities/log` being answered to its line printed by `activity-feed
tail` (piped, plain), at 100 events/s, against the same time for a bare `websockets` client that prints
each message as it comes, in the same run.

Both clients run in processes of their own, follow the same stream filter and receive every event at the
same moments; the bench process reads both stdout pipes and notes when each line arrives, on the clock it
notes the answers on (`time.monotonic()`). Events are posted open-loop (each POST starts on schedule) over
the minimal HTTP/1.1 client of `delivery_probe.py`, each carrying its number in `user_source`, which both
clients print. Target: ratio <= 1.5. A line that never arrives makes the target missed.

`python -m bench.tail bare WS_URL` is the bare client.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from bench.delivery_probe import Poster, percentile, run_async, stream_url, with_query
from bench.harness import PROJECT_ROOT, Check, ServerProcess, say, sqlite_url

NAME = "tail"
TITLE = "POST answered to the line printed by `activity-feed tail` (piped), vs a bare websockets client"
RATE = 100.0  # events per second
WARMUP_SECONDS = 2.0
SECONDS = 10.0
DRAIN_SECONDS = 2.0  # after the last POST: a line later than this counts as lost
READY_TIMEOUT_SECONDS = 60.0
TARGET_RATIO = 1.5
PROBE_TOOL = "tail-probe"
_NUMBER = re.compile(rb"seq-(\d+)")


class _Printer:
    """A client process whose stdout lines are timed as they arrive, by the event number each holds."""

    def __init__(self, name: str, command: Sequence[str]) -> None:
        self.name = name
        self.command = list(command)
        self.arrivals: dict[int, float] = {}
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            cwd=PROJECT_ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            arrived = time.monotonic()
            if (found := _NUMBER.search(line)) is not None:
                self.arrivals.setdefault(int(found.group(1)), arrived)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        if self.reader is not None:
            await self.reader


async def _post_steadily(poster: Poster, first: int, count: int, answered: dict[int, float]) -> None:
    """POST events `first` .. `first + count - 1` at `RATE`, each on schedule; note when each was answered."""

    async def one(number: int) -> None:
        body = orjson.dumps(
            {
                "tool_name": PROBE_TOOL,
                "event_type": "tool_call",
                "status": "success",
                "user_source": f"seq-{number}",
            }
        )
        _, status, answer = await poster.post(body)
        answered_at = time.monotonic()
        if status != 201:
            raise RuntimeError(f"POST answered {status}: {answer[:200]!r}")
        answered[number] = answered_at

    start = time.monotonic()
    posts = []
    for index in range(count):
        delay = start + index / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        posts.append(asyncio.create_task(one(first + index)))
    await asyncio.gather(*posts)


async def _wait_ready(printers: Sequence[_Printer], poster: Poster) -> int:
    """Post one event at a time until every client has printed one: both are then live. Returns the next
    free event number."""
    number = 0
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    answered: dict[int, float] = {}
    while not all(printer.arrivals for printer in printers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the clients did not print within {READY_TIMEOUT_SECONDS} s")
        await _post_steadily(poster, number, 1, answered)
        number += 1
        await asyncio.sleep(0.2)
    return number


async def _measure(url: str) -> dict[str, dict[str, float]]:
    stream = with_query(stream_url(url), tool_name=PROBE_TOOL)
    tail = _Printer(
        "tail",
        [
            sys.executable,
            "-m",
            "activity_feed.cli.main",
            "tail",
            "--feed-url",
            url,
            "-n",
            "0",
            "--tool",
            PROBE_TOOL,
        ],
    )
    bare = _Printer("bare", [sys.executable, "-m", "bench.tail", "bare", stream])
    printers = (tail, bare)
    poster = Poster(f"{url}/activities/log")
    try:
        for printer in printers:
            await printer.start()
        first = await _wait_ready(printers, poster)
        await _post_steadily(poster, first, int(WARMUP_SECONDS * RATE), {})
        first += int(WARMUP_SECONDS * RATE)
        answered: dict[int, float] = {}
        await _post_steadily(poster, first, int(SECONDS * RATE), answered)
        await asyncio.sleep(DRAIN_SECONDS)
    finally:
        poster.close()
        for printer in printers:
            await printer.stop()
    results: dict[str, dict[str, float]] = {}
    for printer in printers:
        latencies = sorted(
            (printer.arrivals[number] - at) * 1000
            for number, at in answered.items()
            if number in printer.arrivals
        )
        results[printer.name] = {
            "min_ms": latencies[0] if latencies else float("nan"),
            "median_ms": statistics.median(latencies) if latencies else float("nan"),
            "p90_ms": percentile(latencies, 0.90),
            "p99_ms": percentile(latencies, 0.99),
            "lines": len(latencies),
            "lost": len(answered) - len(latencies),
        }
    return results


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        folder = Path(tmp)
        with ServerProcess(sqlite_url(folder / "tail.db"), log_path=folder / "server.log") as server:
            results = run_async(_measure(server.url))
    tail, bare = results["tail"], results["bare"]
    for name, result in results.items():
        say(
            f"  {name}: min {result['min_ms']:.2f} ms, median {result['median_ms']:.2f} ms, "
            f"p90 {result['p90_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"{result['lines']:.0f} lines, {result['lost']:.0f} lost"
        )
    ratio = tail["median_ms"] / bare["median_ms"]
    return [
        Check(
            benchmark=NAME,
            name=f"median POST answered to tail's line, {RATE:.0f} events/s",
            value=tail["median_ms"],
            unit="ms",
            baseline=bare["median_ms"],
            baseline_name="bare websockets client",
            ratio=ratio,
            target=f"ratio <= {TARGET_RATIO}",
            met=ratio <= TARGET_RATIO and not tail["lost"] and not bare["lost"],
            details=results,
        )
    ]


async def _bare(url: str) -> None:
    """Print every message of the stream at `url` as it comes, one per line."""
    from websockets.asyncio.client import connect

    async with connect(url) as stream:
        async for message in stream:
            sys.stdout.write(f"{message}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] != ["bare"] or len(sys.argv) != 3:
        sys.exit("usage: python -m bench.tail bare WS_URL")
    run_async(_bare(sys.argv[2]))

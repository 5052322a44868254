"""mcp: median round-trip of an in-process MCP tool call (`mcp.Client(server)`, `MCPServer`) with
`activity_feed.mcp.instrument(server, client=FeedClient(url))` against the same server not instrumented,
with the feed service up (SQLite), refused (a free port, nothing listening) and hanging (a socket that
accepts and never answers). Target: ratio <= 1.05 in all three.

The tool is a small property search over an in-memory list that returns a few dicts. In each situation
two servers are instrumented, and each is called with and without its instrumentation in alternating
blocks (ABBA order over the rounds, the servers taking turns): between blocks the instrumentation's
middleware is taken out of the server's chain and put back, the SDK's own middleware staying as they
are. So both sides run the same server objects and connections: six identical plain servers, called in
turns, differed from each other by 1.5-8% a call (from where their objects happened to sit in memory),
as much as the instrumentation itself. A block is long enough that the client's background sends of the
instrumented calls land mostly in the instrumented block, where they belong.

The ratio is the median, over the rounds, of each round's instrumented block median over its plain
block median: a machine that slows down for a few blocks moves one round's ratio, not the pooled
medians of both sides (both pooled medians are reported beside it).

For contrast, the original approach: a synchronous `POST /activities/log` with a 1-second timeout inside
each tool call (`httpx.Client(timeout=1.0)`, errors swallowed), in the same three situations.
"""

from __future__ import annotations

import asyncio
import logging
import random
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench.harness import Check, ServerProcess, free_port, say, sqlite_url

NAME = "mcp"
TITLE = "in-process MCP tool call median round-trip, instrumented vs not, feed up / refused / hanging"
TARGET_RATIO = 1.05
WARMUP_CALLS = 200
ROUNDS = 24
CALLS_PER_BLOCK = 200
SERVERS = 2
CONTRAST_CALLS = {"up": 200, "refused": 200, "hanging": 5}
SYNC_TIMEOUT_SECONDS = 1.0
FLUSH_SECONDS = 5.0  # feed up: everything must arrive within this
CLOSE_SECONDS = 0.5  # feed refused or hanging: what is still queued is given up after this
# The client's bounds, with room for every call of a run. The calls run back to back, a host that never
# waits, whose client's worker may get no turn at all until the run ends (README, "Saturated hosts"): in
# 1 run of 3 on a 2-core machine it admitted nothing for 4 s, and the default bound of 10,000 unread
# calls (a call counts at its start, and at its end too once its start was read) refused the last
# hundred, as designed. What the
# tool call costs is measured all the same; the check that every event arrived (`_finish`) is for the
# events of the run, not for the bounds.
RUN_CALLS = SERVERS * WARMUP_CALLS + ROUNDS * CALLS_PER_BLOCK
QUEUE_EVENTS = 4 * RUN_CALLS
QUEUE_BYTES = 32 * 1024 * 1024
TOOL = "search_properties"
CLIENT_NAME = "bench-assistant"

Situation = str  # "up", "refused" or "hanging"


# The tool: a property search over an in-memory portfolio, as an assistant would call it.

CITIES = ("Leeds", "Manchester", "Bristol", "York", "Sheffield", "Nottingham")
STREETS = ("Park Row", "Mill Lane", "Station Road", "Church Street", "Victoria Road", "High Street")


def _portfolio(size: int = 120, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": i,
            "address": f"{rng.randrange(1, 200)} {rng.choice(STREETS)}",
            "city": rng.choice(CITIES),
            "bedrooms": rng.randrange(1, 5),
            "rent": rng.randrange(550, 2200, 25),
            "available": rng.random() < 0.6,
        }
        for i in range(1, size + 1)
    ]


PROPERTIES = _portfolio()
QUERIES: tuple[dict[str, Any], ...] = (
    {"city": "Leeds", "max_rent": 1200},
    {"city": "Bristol", "min_bedrooms": 2},
    {"max_rent": 900, "min_bedrooms": 1},
    {"city": "York", "max_rent": 1500, "min_bedrooms": 3},
    {"city": "Manchester"},
)

Hook = Callable[[dict[str, Any]], None]


def _search(city: str | None, max_rent: int | None, min_bedrooms: int | None) -> list[dict[str, Any]]:
    found = [
        p
        for p in PROPERTIES
        if p["available"]
        and (city is None or p["city"] == city)
        and (max_rent is None or p["rent"] <= max_rent)
        and (min_bedrooms is None or p["bedrooms"] >= min_bedrooms)
    ]
    return sorted(found, key=lambda p: p["rent"])[:5]


def _server(name: str, hook: Hook | None = None) -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name, version="1.0")

    @server.tool()
    async def search_properties(
        city: str | None = None, max_rent: int | None = None, min_bedrooms: int | None = None
    ) -> list[dict[str, Any]]:
        """Available properties matching the filters, cheapest first (at most 5)."""
        found = _search(city, max_rent, min_bedrooms)
        if hook is not None:
            hook({"city": city, "max_rent": max_rent, "min_bedrooms": min_bedrooms, "found": len(found)})
        return found

    return server


def _sync_post_hook(http: httpx.Client, url: str) -> Hook:
    """The original approach: one blocking `POST /activities/log` per call, its failures swallowed."""

    def post(arguments: dict[str, Any]) -> None:
        found = arguments.pop("found")
        body = {
            "event_type": "tool_call",
            "tool_name": TOOL,
            "user_source": CLIENT_NAME,
            "status": "success",
            "data": {"arguments": arguments, "result_preview": f"{found} properties"},
        }
        with suppress(httpx.HTTPError):
            http.post(f"{url}/activities/log", json=body)

    return post


# The hanging feed: accepts every connection and never reads or answers.


class SilentServer:
    """A TCP server in a thread on a free port that accepts connections and never answers them."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="bench-silent-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._accepted)

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], 0.05)
            if readable:
                connection, _ = self._listener.accept()
                self._accepted.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        for connection in self._accepted:
            connection.close()
        self._listener.close()


# Measuring.


@dataclass(slots=True)
class Figures:
    instrumented: list[float]
    plain: list[float]
    rounds: list[tuple[float, float]]  # each round's block medians: (instrumented, plain)
    contrast: list[float]
    feed: dict[str, Any]

    @property
    def overhead(self) -> float:
        return statistics.median(instrumented - plain for instrumented, plain in self.rounds)

    @property
    def ratio(self) -> float:
        return statistics.median(instrumented / plain for instrumented, plain in self.rounds)

    @property
    def pooled_ratio(self) -> float:
        return statistics.median(self.instrumented) / statistics.median(self.plain)


async def _call(client: Any, index: int) -> float:
    """One tool call's round-trip in microseconds."""
    arguments = QUERIES[index % len(QUERIES)]
    started = time.perf_counter()
    result = await client.call_tool(TOOL, arguments)
    elapsed = (time.perf_counter() - started) * 1e6
    if result.is_error:
        raise RuntimeError(f"{TOOL} failed: {result.content}")
    return elapsed


async def _block(client: Any, calls: int) -> list[float]:
    return [await _call(client, i) for i in range(calls)]


async def _measure(situation: Situation, url: str) -> Figures:
    from mcp import Client
    from mcp_types import Implementation

    from activity_feed.client import FeedClient
    from activity_feed.mcp import instrument

    info = Implementation(name=CLIENT_NAME, version="1.0")
    feed = FeedClient(url, max_queue_events=QUEUE_EVENTS, max_queue_bytes=QUEUE_BYTES)
    servers = [_server(f"property-{situation}-{index}") for index in range(SERVERS)]
    chains: list[dict[str, list[Any]]] = []
    for server in servers:
        plain_chain = list(server.middleware)  # the SDK's own middleware
        instrument(server, feed)
        chains.append({"plain": plain_chain, "instrumented": list(server.middleware)})
        if len(chains[-1]["instrumented"]) != len(plain_chain) + 1:
            raise RuntimeError("instrument() did not add exactly one middleware to the server's chain")
    with httpx.Client(timeout=SYNC_TIMEOUT_SECONDS) as http:
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(Client(server, client_info=info)) for server in servers
            ]
            contrast = await stack.enter_async_context(
                Client(_server(f"property-{situation}-sync", _sync_post_hook(http, url)), client_info=info)
            )
            for server, client, chain in zip(servers, clients, chains, strict=True):
                for which in ("instrumented", "plain"):
                    server.middleware[:] = chain[which]
                    await _block(client, WARMUP_CALLS)
            samples: dict[str, list[float]] = {"instrumented": [], "plain": []}
            rounds: list[tuple[float, float]] = []
            for round_ in range(ROUNDS):
                turn = round_ % SERVERS
                server, client, chain = servers[turn], clients[turn], chains[turn]
                order = ("instrumented", "plain") if round_ % 4 in (0, 3) else ("plain", "instrumented")
                medians: dict[str, float] = {}
                for which in order:
                    server.middleware[:] = chain[which]
                    block = await _block(client, CALLS_PER_BLOCK)
                    samples[which] += block
                    medians[which] = statistics.median(block)
                rounds.append((medians["instrumented"], medians["plain"]))
            contrast_samples = await _block(contrast, CONTRAST_CALLS[situation])
    feed_state = _finish(situation, feed)
    return Figures(samples["instrumented"], samples["plain"], rounds, contrast_samples, feed_state)


def _finish(situation: Situation, feed: Any) -> dict[str, Any]:
    """Close the client within a bound; with the feed up, everything must have arrived first."""
    started = time.perf_counter()
    flushed = feed.flush(FLUSH_SECONDS) if situation == "up" else None
    queued = feed.queued
    feed.close(timeout=CLOSE_SECONDS)
    dropped = {reason: count for reason, count in feed.dropped.items() if count}
    state = {
        "flushed": flushed,
        "sent": feed.sent,
        "retried": feed.retried,
        "queued_at_close": queued,
        "dropped": dropped,
        "close_seconds": round(time.perf_counter() - started, 3),
    }
    if situation == "up" and (not flushed or dropped):
        raise RuntimeError(f"the feed was up but not every event arrived: {state}")
    return state


@contextmanager
def _quiet_feed_warnings() -> Iterator[None]:
    """The client's expected warnings (feed unreachable, events given up at close) off the report."""
    feed_logger = logging.getLogger("activity_feed")
    level = feed_logger.level
    feed_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        feed_logger.setLevel(level)


def _us(samples: list[float]) -> str:
    return f"{statistics.median(samples):,.0f} µs"


def run() -> list[Check]:
    # Before any MCPServer(): otherwise the SDK installs a rich traceback handler on the root logger,
    # which is slow; with a handler already there its basicConfig() does nothing.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    results: dict[Situation, Figures] = {}
    with (
        tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp,
        ServerProcess(sqlite_url(Path(tmp) / "mcp.db"), log_path=Path(tmp) / "server.log") as service,
        SilentServer() as silent,
        _quiet_feed_warnings(),
    ):
        urls: dict[Situation, str] = {
            "up": service.url,
            "refused": f"http://127.0.0.1:{free_port()}",
            "hanging": silent.url,
        }
        for situation, url in urls.items():
            figures = asyncio.run(_measure(situation, url))
            results[situation] = figures
            feed = figures.feed
            dropped = ", ".join(f"{count} {reason}" for reason, count in feed["dropped"].items()) or "none"
            say(
                f"  feed {situation:<7}: instrumented {_us(figures.instrumented)}, "
                f"plain {_us(figures.plain)} (+{figures.overhead:,.1f} µs, ratio {figures.ratio:.3f}; "
                f"pooled medians' ratio {figures.pooled_ratio:.3f}); "
                f"sync POST {_us(figures.contrast)} over {len(figures.contrast)} calls"
            )
            say(
                f"  {'':13}feed client: {feed['sent']} sent, dropped: {dropped}; "
                f"{'flushed and ' if feed['flushed'] else ''}closed in {feed['close_seconds']:.2f} s"
            )
    checks: list[Check] = []
    for situation, figures in results.items():
        plain = statistics.median(figures.plain)
        instrumented = statistics.median(figures.instrumented)
        contrast = statistics.median(figures.contrast)
        ratio = figures.ratio
        details = {
            "calls": len(figures.instrumented),
            "ratio": "median over the rounds of instrumented / plain block medians",
            "pooled_ratio": figures.pooled_ratio,
            "overhead_us": figures.overhead,
            "p90_us": {
                "instrumented": _percentile(figures.instrumented, 0.9),
                "plain": _percentile(figures.plain, 0.9),
            },
            "feed_client": figures.feed,
        }
        checks.append(
            Check(
                benchmark=NAME,
                name=f"tool call, feed {situation}, instrumented",
                value=instrumented,
                unit="µs",
                baseline=plain,
                baseline_name="not instrumented",
                ratio=ratio,
                target=f"ratio <= {TARGET_RATIO}",
                met=ratio <= TARGET_RATIO,
                details=details,
            )
        )
        checks.append(
            Check(
                benchmark=NAME,
                name=f"tool call, feed {situation}, sync POST (contrast)",
                value=contrast,
                unit="µs",
                baseline=plain,
                baseline_name="not instrumented",
                ratio=contrast / plain,
                target="- (the original approach)",
                met=None,
                details={"calls": len(figures.contrast), "timeout_s": SYNC_TIMEOUT_SECONDS},
            )
        )
    return checks


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

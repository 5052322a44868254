"""alerts: what ten alert rules cost ingest, and how soon a breach reaches its webhook.

(1) `POST /activities/log` requests/s with 32 clients (the `ingest` benchmark's load, bench/ingest.py) on a
server with ten rules loaded (`ACTIVITY_FEED_ALERTS`) against a twin server without rules, in 6 blocks of
four loads of 6,000 requests taken by turns (ABBA, then BAAB); the ratio is the median of the blocks'
ratios (the req/s shown are means over every load). Target: ratio >= 0.95. The servers' CPU time per
request is reported beside it.
(2) From the answer to a breaching `POST /activities/log` (a failure of the tool of a rule that fires at
one failure) to the webhook's arrival at a receiver in the bench process; 50 breaches, each resolved
before the next. Targets: median <= 0.5 s, p99 <= 2 s.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.webhooks import Received, WebhookReceiver

from bench.harness import Check, ServerProcess, cpu_seconds, fmt, say, sqlite_url
from bench.ingest import CONNECTIONS, load

NAME = "alerts"
TITLE = "ingest with ten alert rules vs without; breach to webhook latency"
BLOCKS = 6  # ABBA blocks of loads, the ratio their median
REQUESTS = 6000  # per load: about 2 s
WARMUP_REQUESTS = 1000
FIRST_WARMUP_REQUESTS = 4000
BREACHES = 50
TARGET_RATIO = 0.95
TARGET_MEDIAN_MS = 500.0
TARGET_P99_MS = 2000.0
BREACH_TOOL = "bench_breach"
WAIT_SECONDS = 10.0

# Ten rules over the tools of the ingest load (bench/harness.py: TOOL_NAMES), of every kind, with and
# without a tool, none breached by that load; the last one is breached on purpose for (2).
TEN_RULES = """
[[webhooks]]
name = "bench"
url = "{url}"

[[rules]]
name = "errors"
kind = "error_rate"
window = "5m"
threshold = 0.75
min_calls = 20
webhooks = ["bench"]

[[rules]]
name = "get_property errors"
kind = "error_rate"
tool = "get_property"
window = "1m"
threshold = 0.5
webhooks = ["bench"]

[[rules]]
name = "API errors"
kind = "error_rate"
tool = "GET /api/properties"
window = "5m"
threshold = 0.8
webhooks = ["bench"]

[[rules]]
name = "slow"
kind = "p95"
window = "5m"
max_ms = 5000
webhooks = ["bench"]

[[rules]]
name = "slow listing"
kind = "p95"
tool = "list_properties"
window = "1m"
max_ms = 2000
webhooks = ["bench"]

[[rules]]
name = "failing streak"
kind = "consecutive_failures"
count = 10
webhooks = ["bench"]

[[rules]]
name = "tenant search failing"
kind = "consecutive_failures"
tool = "search_tenants"
count = 5
webhooks = ["bench"]

[[rules]]
name = "stuck"
kind = "stuck_pending"
older_than = "10m"
webhooks = ["bench"]

[[rules]]
name = "work orders stuck"
kind = "stuck_pending"
tool = "create_work_order"
older_than = "5m"
webhooks = ["bench"]

[[rules]]
name = "breach"
kind = "consecutive_failures"
tool = "bench_breach"
count = 1
webhooks = ["bench"]
"""


def _breaches(received: list[Received], state: str) -> list[Received]:
    return [r for r in received if r.body.get("rule") == "breach" and r.body.get("state") == state]


def _breach_latencies(server: ServerProcess, hooks: WebhookReceiver) -> tuple[list[float], int]:
    """Seconds from each breaching POST's answer to its webhook's arrival, and how many arrived before
    the answer (counted as 0: the webhook is sent after commit, like the answer, and may win the race)."""
    latencies: list[float] = []
    early = 0
    event = {"event_type": "tool_call", "tool_name": BREACH_TOOL}
    with httpx.Client(base_url=server.url, timeout=WAIT_SECONDS) as http:
        for index in range(BREACHES):  # `n=index`: each wait is for this breach's own messages
            response = http.post("/activities/log", json={**event, "status": "error"})
            answered = time.monotonic()
            response.raise_for_status()
            fired = hooks.wait_for(
                lambda got, n=index: len(_breaches(got, "firing")) > n, "/bench", WAIT_SECONDS
            )
            latency = _breaches(fired, "firing")[index].at - answered
            early += latency < 0
            latencies.append(max(0.0, latency))
            http.post("/activities/log", json={**event, "status": "success"}).raise_for_status()
            hooks.wait_for(lambda got, n=index: len(_breaches(got, "resolved")) > n, "/bench", WAIT_SECONDS)
    return latencies, early


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp, WebhookReceiver() as hooks:
        folder = Path(tmp)
        rules = folder / "alerts.toml"
        rules.write_text(TEN_RULES.format(url=hooks.url("/bench")))
        with (
            ServerProcess(sqlite_url(folder / "plain.db"), log_path=folder / "plain.log") as plain,
            ServerProcess(
                sqlite_url(folder / "alerts.db"),
                log_path=folder / "alerts.log",
                env={"ACTIVITY_FEED_ALERTS": str(rules)},
            ) as alerting,
        ):
            rates: dict[str, list[float]] = {"plain": [], "alerts": []}
            cpu_us: dict[str, list[float]] = {"plain": [], "alerts": []}
            block_ratios: list[float] = []
            for block in range(BLOCKS):
                # ABBA, then BAAB: whatever drifts during a block weighs on both sides alike.
                order = [("plain", plain), ("alerts", alerting), ("alerts", alerting), ("plain", plain)]
                if block % 2:
                    order.reverse()
                got: dict[str, list[float]] = {"plain": [], "alerts": []}
                for label, server in order:
                    # A count of requests rather than a time: the CPU each costs is then exact.
                    warmup = FIRST_WARMUP_REQUESTS if not rates[label] else WARMUP_REQUESTS
                    cpu_before = cpu_seconds(server.pid)
                    rps = load(server.port, count=REQUESTS, warmup_requests=warmup)["rps"]
                    cpu = (cpu_seconds(server.pid) - cpu_before) / (REQUESTS + warmup) * 1e6
                    rates[label].append(rps)
                    got[label].append(rps)
                    cpu_us[label].append(cpu)
                block_ratios.append(sum(got["alerts"]) / sum(got["plain"]))
                say(
                    f"  block {block + 1}: without {fmt(statistics.mean(got['plain']), 'req/s')}, with "
                    f"{fmt(statistics.mean(got['alerts']), 'req/s')}: ratio {block_ratios[-1]:.2f}"
                )
            latencies, early = _breach_latencies(alerting, hooks)
            unexpected = [r.body["text"] for r in hooks.received("/bench") if r.body.get("rule") != "breach"]
    with_rules, without = statistics.mean(rates["alerts"]), statistics.mean(rates["plain"])
    ratio = statistics.median(block_ratios)
    cpu_ratio = statistics.median(cpu_us["plain"]) / statistics.median(cpu_us["alerts"])
    say(f"  CPU per request, median: without rules / with rules = {cpu_ratio:.2f}")
    ordered = sorted(latencies)
    median_ms = statistics.median(ordered) * 1000
    p99_ms = ordered[max(1, math.ceil(0.99 * len(ordered))) - 1] * 1000
    say(f"  breach to webhook: median {fmt(median_ms, 'ms')}, p99 {fmt(p99_ms, 'ms')} over {len(ordered)}")
    if early:
        say(f"  ({early} webhook(s) arrived before the POST's answer: counted as 0)")
    if unexpected:
        say(f"  the ingest load breached rules it was meant not to: {unexpected[:3]}")
    details = {
        "rates": rates,
        "block_ratios": block_ratios,
        "cpu_us_per_request": cpu_us,
        "cpu_ratio": cpu_ratio,
        "connections": CONNECTIONS,
        "latencies_ms": [x * 1000 for x in latencies],
    }
    return [
        Check(
            benchmark=NAME,
            name=f"POST /activities/log, {CONNECTIONS} clients, 10 rules",
            value=with_rules,
            unit="req/s",
            baseline=without,
            baseline_name="the same without rules",
            ratio=ratio,
            target=f"ratio >= {TARGET_RATIO}",
            met=ratio >= TARGET_RATIO,
            details=details,
        ),
        Check(
            benchmark=NAME,
            name=f"breach answered -> webhook received, median of {BREACHES}",
            value=median_ms,
            unit="ms",
            target=f"<= {TARGET_MEDIAN_MS:.0f} ms",
            met=median_ms <= TARGET_MEDIAN_MS,
        ),
        Check(
            benchmark=NAME,
            name=f"breach answered -> webhook received, p99 of {BREACHES}",
            value=p99_ms,
            unit="ms",
            target=f"<= {TARGET_P99_MS:.0f} ms",
            met=p99_ms <= TARGET_P99_MS,
        ),
    ]

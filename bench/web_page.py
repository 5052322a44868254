"""Measure the web feed at scale: 10,000 events in the database, then 200 events/s for 10 s (half of them
tool calls that start `pending` and finish a moment later), in headless Chromium.

    .venv/bin/python -m bench.web_page [--seconds 10] [--rate 200] [--history 10000]

Prints DOM size, JS heap (CDP Performance.getMetrics) and frame timing (requestAnimationFrame deltas).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from tests.support.server import LiveServer, free_port
from tests.web.support import CHROMIUM_ARGS, Api, chromium_path

from activity_feed.settings import Settings

FRAME_PROBE = """
window.__frames = [];
let last = performance.now();
function tick(t) { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); }
requestAnimationFrame(tick);
"""


def metrics(cdp: Any, page: Any, *, collect: bool = True) -> dict[str, float]:
    # Collect garbage first: the Nodes metric also counts detached nodes the collector has not freed yet.
    # Not during the burst, where a forced collection would show up as a long frame.
    if collect:
        cdp.send("HeapProfiler.collectGarbage")
    raw = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {
        "dom_nodes": raw["Nodes"],
        "elements_in_document": page.evaluate("document.getElementsByTagName('*').length"),
        "cards": page.locator("article.card").count(),
        "js_heap_mb": round(raw["JSHeapUsedSize"] / 1e6, 1),
        "listeners": raw["JSEventListeners"],
        **{
            k: round(raw[k], 2)
            for k in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "TaskDuration")
        },
    }


def stream(api: Api, rate: int, seconds: float, stop: threading.Event) -> int:
    """Send `rate` events a second in 10 batches a second; every other one finishes 300 ms later."""
    sent = 0
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds and not stop.is_set():
        tick += 1
        events = [
            {
                "event_type": "tool_call",
                "tool_name": f"tool_{(sent + i) % 12}",
                "status": "pending" if i % 2 else "success",
                "duration_ms": 12,
            }
            for i in range(rate // 10)
        ]
        response = api.client.post("/activities/batch", json={"events": events})
        response.raise_for_status()
        sent += len(events)
        # The batch answer has counts only; finish earlier pending ones by asking for the newest.
        if tick % 3 == 0:
            recent = api.client.get("/activities/recent", params={"status": "pending", "limit": 100}).json()
            due = [{"id": e["id"], "status": "success", "duration_ms": 300} for e in recent]
            if due:
                api.client.post("/activities/batch", json={"updates": due}).raise_for_status()
        time.sleep(max(0.0, start + tick * 0.1 - time.monotonic()))
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--history", type=int, default=10_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="feed-measure-"))
    server = LiveServer.for_settings(Settings(database_url=f"sqlite:///{folder / 'feed.db'}"), free_port())
    server.start()
    api = Api(server.url)
    t0 = time.monotonic()
    api.batch(
        [
            {
                "tool_name": f"tool_{i % 12}",
                "status": "error" if i % 17 == 0 else "success",
                "duration_ms": i % 900,
            }
            for i in range(args.history)
        ]
    )
    print(f"seeded {args.history} events in {time.monotonic() - t0:.1f} s")
    report: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        t0 = time.monotonic()
        page.goto(server.url + "/")
        page.wait_for_selector("#connection[data-state=live]")
        page.wait_for_selector("article.card")
        report["first_cards_s"] = round(time.monotonic() - t0, 2)
        report["after_load"] = metrics(cdp, page)
        # Scroll through history: older pages come in with `before`, the window stays bounded.
        for _ in range(15):
            page.mouse.wheel(0, 20000)
            page.wait_for_timeout(150)
        report["after_scrolling_15_screens"] = metrics(cdp, page)
        page.evaluate("window.scrollTo(0, 0)")
        if page.locator("#feed-newer").is_visible():
            page.locator("#feed-newer").click()
        page.wait_for_timeout(500)
        if os.environ.get("MEASURE_CSS"):
            page.add_style_tag(content=os.environ["MEASURE_CSS"])
        page.evaluate(FRAME_PROBE)
        page.evaluate(
            "Object.assign(window.activityFeed.flushStats, {flushes: 0, messages: 0, totalMs: 0, maxMs: 0})"
        )
        stop = threading.Event()
        sender_api = Api(server.url)
        result: dict[str, int] = {}
        sender = threading.Thread(
            target=lambda: result.update(sent=stream(sender_api, args.rate, args.seconds, stop))
        )
        before = metrics(cdp, page, collect=False)
        page.evaluate("window.__burstStart = window.__frames.length")
        t0 = time.monotonic()
        sender.start()
        samples = []
        while sender.is_alive():
            sender.join(timeout=2)
            samples.append(metrics(cdp, page, collect=False))
        elapsed = time.monotonic() - t0
        # Frames and renderer time during the burst only (not the idle second after it, nor loading).
        frames = page.evaluate("window.__frames.slice(window.__burstStart)")
        during = metrics(cdp, page, collect=False)
        page.wait_for_timeout(1000)
        report["burst"] = {
            "events_sent": result.get("sent", 0),
            "seconds": round(elapsed, 1),
            "samples_every_2s": samples,
            "after": metrics(cdp, page),
            "renderer_s_during_burst": {
                k: round(during[k] - before[k], 2)
                for k in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "TaskDuration")
            },
            "frames": len(frames),
            "frame_ms_median": round(statistics.median(frames), 1),
            "frame_ms_p95": round(sorted(frames)[int(len(frames) * 0.95)], 1),
            "frame_ms_max": round(max(frames), 1),
            "frames_over_50ms": sum(1 for f in frames if f > 50),
            "flushes": page.evaluate("window.activityFeed.flushStats"),
        }
        # Timeline and stats over the same data.
        t0 = time.monotonic()
        page.get_by_role("tab", name="Timeline").click()
        page.wait_for_selector(".lane")
        report["timeline"] = {"open_s": round(time.monotonic() - t0, 2), **metrics(cdp, page)}
        report["timeline"]["bars"] = page.locator(".bar").count()
        page.get_by_role("tab", name="Stats").click()
        page.wait_for_selector(".stats-table")
        report["page_errors"] = errors
        browser.close()
    sender_api.close()
    api.close()
    server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

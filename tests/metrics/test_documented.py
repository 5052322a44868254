"""docs/metrics.md lists every family the service exposes, and the Grafana dashboard asks only for
families that exist: both are read from a rendering of a real `FeedMetrics`, not from a list kept here."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from activity_feed.metrics import FeedMetrics, FeedState
from activity_feed.store.event_counts import EventCount
from activity_feed.store.transaction import CompletedCall

DOCS = Path(__file__).resolve().parents[2] / "docs"
_CREATED = "_created"


def exposed() -> dict[str, set[str]]:
    """Each family's name as written in the docs (counters with `_total`), and its sample names."""
    metrics = FeedMetrics(max_tools=2)
    metrics.committed(0.002, [CompletedCall("search", 120.0)])
    metrics.client_drops.report("server.py@host/1", {"gave_up": 3})
    text = metrics.render(FeedState(event_counts=[EventCount("tool_call", "success", 1, 1)]))
    families: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text.decode()):
        if family.name.endswith(_CREATED):
            continue  # prometheus_client's own series beside each counter and histogram
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = {sample.name for sample in family.samples if not sample.name.endswith(_CREATED)}
    return families


def test_every_family_is_documented_and_every_documented_family_exists() -> None:
    table = (DOCS / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(activity_feed_\w+)` \|", table, flags=re.MULTILINE))

    assert documented == set(exposed())


def test_the_dashboard_asks_only_for_samples_the_service_exposes() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    samples = set().union(*exposed().values())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries.append(dashboard["templating"]["list"][1]["query"]["query"])

    asked = {name for query in queries for name in re.findall(r"\bactivity_feed_\w+", query)}

    assert asked <= samples, asked - samples
    assert {"activity_feed_events_total", "activity_feed_tool_call_duration_seconds_bucket"} <= asked

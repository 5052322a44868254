"""`FeedMetrics`: one app's metrics, in a registry of its own, so that several apps in one process (tests,
an app that embeds two feeds) never share or collide."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from activity_feed.metrics.client_drops import ClientDrops
from activity_feed.metrics.state import FeedState, StateCollector
from activity_feed.metrics.tool_labels import ToolLabels
from activity_feed.store.transaction import CompletedCall

# The buckets the OpenTelemetry MCP semantic conventions advise for `mcp.server.operation.duration`.
TOOL_CALL_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
# A group commit takes a fraction of a millisecond to a few on a healthy database: seconds mean trouble.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class FeedMetrics:
    """The histograms and counters this process observes, and the families read at each scrape.

    It is the store's `WriteObserver`: the writer reports every committed transaction to `committed`."""

    def __init__(self, *, max_tools: int) -> None:
        self.registry = CollectorRegistry()
        self.tool_labels = ToolLabels(max_tools)
        self.client_drops = ClientDrops()
        self.tool_calls = Histogram(
            "activity_feed_tool_call_duration_seconds",
            "durations of the tool calls this process stored as finished (a final status and a duration)",
            ["tool_name"],
            buckets=TOOL_CALL_BUCKETS,
            registry=self.registry,
        )
        self.commits = Histogram(
            "activity_feed_writer_commit_duration_seconds",
            "seconds from a write transaction's start to its commit (each commits many requests)",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.slow_stream_clients = Counter(
            "activity_feed_stream_clients_closed_slow",
            "stream clients closed with 1013 because they fell behind",
            registry=self.registry,
        )
        self._state = StateCollector(self.client_drops)
        self.registry.register(self._state)

    def committed(self, seconds: float, calls: Sequence[CompletedCall]) -> None:
        self.commits.observe(seconds)
        for call in calls:
            self.tool_calls.labels(self.tool_labels.label(call.tool_name)).observe(call.duration_ms / 1000)

    def render(self, state: FeedState) -> bytes:
        """The text exposition of every family, with `state` for those read at scrape time."""
        # No await between the two: a concurrent scrape on the same loop cannot slip its state in.
        self._state.state = state
        return generate_latest(self.registry)

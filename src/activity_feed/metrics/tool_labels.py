"""The `tool_name` label, bounded: the first `limit` tools seen keep their names, later ones are `other`.

A client may name its tools anything, and each name would be a histogram of its own in every scrape from
then on; past the limit, new names share one.
"""

from __future__ import annotations

OTHER = "other"


class ToolLabels:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def label(self, tool_name: str | None) -> str:
        """The label for `tool_name` (an empty one for a call without a tool name)."""
        name = tool_name or ""
        if name in self._known:
            return name
        if len(self._known) < self._limit:
            self._known.add(name)
            return name
        return OTHER

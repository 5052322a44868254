"""How an update changes a stored event's row, and what kind of change that is: shared by updates
(store/transaction.py) and merges (store/merge.py)."""

from __future__ import annotations

from typing import Any

import orjson

from activity_feed.schemas import ActivityUpdate, ChangeType, EventStatus

# How the pending timeout (store/maintenance.py) words its error. A completion that arrives later wins:
# it replaces this message instead of leaving "no completion arrived" on a call that succeeded.
TIMED_OUT_PREFIX = "no completion arrived within "


def merged_size(row: dict[str, Any], update: ActivityUpdate) -> int:
    return len(orjson.dumps({**row["data"], **(update.data or {})}))


def apply_update(row: dict[str, Any], update: ActivityUpdate) -> ChangeType | None:
    """Apply `update` to `row` in place; return the change's type, or None when nothing changed."""
    before = (row["status"], row["duration_ms"], row["error_message"], row["data"])
    if update.status is not None:
        row["status"] = update.status.value
    if update.duration_ms is not None:
        row["duration_ms"] = update.duration_ms
    if update.error_message is not None:
        row["error_message"] = update.error_message
    elif update.status == EventStatus.SUCCESS and (row["error_message"] or "").startswith(TIMED_OUT_PREFIX):
        row["error_message"] = None
    if update.data:
        row["data"] = {**row["data"], **update.data}
    if (row["status"], row["duration_ms"], row["error_message"], row["data"]) == before:
        return None
    return change_type(before[0], row["status"])


def change_type(status_before: str, status_after: str) -> ChangeType:
    """A change to an existing event: completed or failed when its status became success or error."""
    if status_after != status_before:
        if status_after == EventStatus.SUCCESS:
            return ChangeType.COMPLETED
        if status_after == EventStatus.ERROR:
            return ChangeType.FAILED
    return ChangeType.UPDATED

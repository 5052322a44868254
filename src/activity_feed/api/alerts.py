"""`GET /activities/alerts`: the alerts that hold now (alerts/board.py), for the page's banner and for
scripts. Included ahead of `/activities/{event_id}`, which would otherwise take `alerts` for an id."""

from __future__ import annotations

from fastapi import APIRouter

from activity_feed.alerts.board import ActiveAlert
from activity_feed.api.deps import AlertsDep
from activity_feed.api.fast_json import OrjsonRoute
from activity_feed.api.responses import MISDIRECTED, TOO_LARGE, UNAUTHORISED

router = APIRouter(
    prefix="/activities",
    tags=["alerts"],
    route_class=OrjsonRoute,
    responses={**UNAUTHORISED, **MISDIRECTED, **TOO_LARGE},
)

_EXAMPLE = [
    {
        "rule": "search keeps failing",
        "kind": "consecutive_failures",
        "tool": "search_properties",
        "value": 3,
        "threshold": 3,
        "since": "2026-12-01T09:00:00Z",
        "text": "[firing] search keeps failing: search_properties failed 3 times in a row (limit 3)",
    }
]


@router.get(
    "/alerts",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}},
)
async def active_alerts(alerts: AlertsDep) -> list[ActiveAlert]:
    """The alerts that hold now, oldest first: one per rule and tool whose condition is breached (the
    rules of `ACTIVITY_FEED_ALERTS`, docs/alerts.md). Every instance answers alike, whichever evaluates.
    Empty when no alerts file is configured."""
    return [] if alerts is None else alerts.board.active()

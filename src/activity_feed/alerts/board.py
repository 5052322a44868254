"""The alerts that hold now, as every instance knows them: from the alert system events in the feed
(whichever instance evaluates writes them), read once from the database at start and then followed on
the hub. What `GET /activities/alerts` answers, and what a new evaluator starts from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from activity_feed.alerts.messages import ALERT_TOOL_PREFIX
from activity_feed.hub import Notice
from activity_feed.schemas import Fields

_DELETED = "activity_deleted"
_SYSTEM_FIELDS = Fields("event_type", "tool_name")


class ActiveAlert(BaseModel):
    """An alert that holds: its rule's condition is breached for this tool."""

    rule: str = Field(description="the rule's name in the alerts file")
    kind: str = Field(description="error_rate, p95, consecutive_failures or stuck_pending")
    tool: str | None = Field(description="the tool it is about (rules without a tool alert per tool)")
    value: float | None = Field(description="what was measured when it fired: a rate, ms, a count")
    threshold: float | None = Field(description="what the value was compared with")
    since: datetime = Field(description="when it fired")
    text: str = Field(description="the message the webhooks received")


class AlertBoard:
    """The newest alert system event of each rule and tool, by change number: the one with the higher
    number wins, so that the database's answer and live notices can arrive in any order."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str | None], tuple[int, ActiveAlert | None]] = {}

    def observe(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            if notice.type == _DELETED:
                continue
            event_type, tool_name = notice.fields(_SYSTEM_FIELDS)
            if (
                event_type != "system_event"
                or tool_name is None
                or not tool_name.startswith(ALERT_TOOL_PREFIX)
            ):
                continue
            self.record(notice.seq, notice.field("data"))

    def seed(self, events: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        """Alert events read from the database: (change number, data)."""
        for seq, data in events:
            self.record(seq, data)

    def record(self, seq: int, data: Mapping[str, Any]) -> None:
        rule, tool, state = data.get("rule"), data.get("tool"), data.get("state")
        if not isinstance(rule, str) or not (tool is None or isinstance(tool, str)):
            return  # not written by the alerts (anyone may log a system event)
        key = (rule, tool)
        known = self._latest.get(key)
        if known is not None and known[0] >= seq:
            return
        if state == "resolved":
            self._latest[key] = (seq, None)
        elif state == "firing":
            try:
                alert = ActiveAlert(
                    rule=rule,
                    kind=data.get("kind"),
                    tool=tool,
                    value=data.get("value"),
                    threshold=data.get("threshold"),
                    since=data.get("at"),
                    text=data.get("text"),
                )
            except ValidationError:
                return
            self._latest[key] = (seq, alert)

    def active(self) -> list[ActiveAlert]:
        """The alerts that hold, oldest first."""
        alerts = [alert for _, alert in self._latest.values() if alert is not None]
        return sorted(alerts, key=lambda alert: (alert.since, alert.rule, alert.tool or ""))

    def firing(self) -> list[tuple[str, str]]:
        """(rule, tool) of the alerts that hold and name a tool: what an evaluator starts from."""
        return [(alert.rule, alert.tool) for alert in self.active() if alert.tool is not None]

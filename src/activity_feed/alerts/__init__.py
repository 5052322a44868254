"""Alerts that reach people: rules in a TOML file, evaluated incrementally on the changes the hub
delivers, posted to webhooks and recorded in the feed (docs/alerts.md)."""

from activity_feed.alerts.board import ActiveAlert, AlertBoard
from activity_feed.alerts.rules import AlertConfig, AlertRulesError, Kind, Rule, Webhook, load_rules
from activity_feed.alerts.runner import AlertRunner

__all__ = [
    "ActiveAlert",
    "AlertBoard",
    "AlertConfig",
    "AlertRulesError",
    "AlertRunner",
    "Kind",
    "Rule",
    "Webhook",
    "load_rules",
]

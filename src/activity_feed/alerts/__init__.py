"""Alerts that reach people: rules in a TOML file, evaluated incrementally on the changes the hub
delivers, posted to webhooks and recorded in the feed (docs/alerts.md).

Only the rules are exported here: `activity-feed alerts check` and the CLI load them without the
evaluator's dependencies (the store, the hub); the service imports `runner` and `board` itself."""

from activity_feed.alerts.rules import AlertConfig, AlertRulesError, Kind, Rule, Webhook, load_rules

__all__ = ["AlertConfig", "AlertRulesError", "Kind", "Rule", "Webhook", "load_rules"]

"""`activity-feed alerts check FILE` and `activity-feed alerts test [--alerts FILE]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activity_feed.alerts.rules import AlertConfig, AlertRulesError, load_rules


def add_alerts(commands: Any) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="check an alerts file, or send a test message to its webhooks",
        description="Alert rules live in a TOML file (docs/alerts.md) that `serve` reads from --alerts or "
        "ACTIVITY_FEED_ALERTS.",
    )
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ALERTS_COMMAND")
    check = actions.add_parser(
        "check",
        help="check an alerts file: exit 0 when it is good, 2 with every problem and its line",
        description="Check an alerts file as `serve` does at start: exit 0 when it is good, 2 with every "
        "problem and its line.",
    )
    check.add_argument("file", type=Path, help="the alerts file")
    test = actions.add_parser(
        "test",
        help="post a test message to every webhook of the alerts file; exit 1 if any was not delivered",
        description="Post a test message to every webhook of the alerts file, once each, and say which "
        "delivered it; exit 1 if any did not.",
    )
    test.add_argument("--alerts", type=Path, help="the alerts file (default: env ACTIVITY_FEED_ALERTS)")


def run_alerts(args: argparse.Namespace) -> int:
    try:
        if args.alerts_command == "check":
            config = load_rules(args.file)
            print(f"{config.summary()}: ok")
            return 0
        path = args.alerts if args.alerts is not None else _path_from_environment()
        if path is None:
            print(
                "activity-feed: no alerts file: pass --alerts FILE or set ACTIVITY_FEED_ALERTS",
                file=sys.stderr,
            )
            return 2
        return _test(load_rules(path))
    except AlertRulesError as exc:
        print(f"activity-feed: {exc}", file=sys.stderr)
        return 2


def _path_from_environment() -> Path | None:
    # Only this setting: `alerts test` must not fail on another that `serve` would refuse.
    value = os.environ.get("ACTIVITY_FEED_ALERTS", "").strip()
    return Path(value) if value else None


def _test(config: AlertConfig) -> int:
    # Imported here: the evaluator's modules (the hub) are not needed to check a file.
    from activity_feed.alerts.messages import trial_body
    from activity_feed.alerts.webhooks import send_test

    if not config.webhooks:
        print(f"{config.path} defines no webhook: nothing to test")
        return 0
    at = datetime.now(UTC)
    deliveries = asyncio.run(send_test(list(config.webhooks), lambda name: trial_body(name, at)))
    width = max(len(delivery.webhook) for delivery in deliveries)
    for delivery in deliveries:
        outcome = "delivered" if delivery.delivered else "failed"
        print(f"{delivery.webhook.ljust(width)}  {outcome} ({delivery.detail})")
    return 0 if all(delivery.delivered for delivery in deliveries) else 1

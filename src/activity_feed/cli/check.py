"""`activity-feed check`: rules over a recent window of a running feed (error rate, p95, tools that must or
must not have been called), one line per rule with its verdict, and an exit status for CI."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from activity_feed.cli.check_rules import (
    Rules,
    Verdict,
    parse_error_rate,
    parse_p95,
    presence_verdicts,
    window_verdicts,
)
from activity_feed.cli.feed_arguments import add_feed_arguments, usage
from activity_feed.client.reader import FeedReader, FeedReadError
from activity_feed.since import since_moment

EXIT_FAILED = 1
DEFAULT_SINCE = "15m"


def add_check(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="check rules over a recent window (error rate, p95, tools called or not): exit 0 or 1, for CI",
        description="Check rules over the events of a recent window of a running feed and print one line "
        "per rule with its verdict: exit status 0 when every rule holds, 1 when one fails (or the feed "
        "cannot be read), 2 for a bad command line or no rule at all. The error-rate and p95 rules are "
        "checked for each tool (those named with --tool, else every tool of the window) over the "
        "statistics the feed keeps, at most its newest ACTIVITY_FEED_STATS_WINDOW_EVENTS events: when the "
        "window holds more, the output says so.",
    )
    add_feed_arguments(parser)
    parser.add_argument(
        "--since",
        metavar="WHEN",
        default=DEFAULT_SINCE,
        help="the window: a duration back from now (90s, 15m, 24h, 7d; a bare number is seconds) or an "
        f"ISO 8601 time (default {DEFAULT_SINCE})",
    )
    parser.add_argument(
        "--max-error-rate",
        metavar="R",
        help="fail a tool whose errors / events exceed R: a fraction (0.05) or a percentage (5%%)",
    )
    parser.add_argument(
        "--max-p95",
        metavar="DURATION",
        help="fail a tool whose p95 duration exceeds this: 800ms, 1.5s, 2s, or a number of milliseconds",
    )
    parser.add_argument(
        "--tool",
        metavar="NAME",
        action="append",
        default=[],
        help="check --max-error-rate and --max-p95 for this tool only (repeat for more; default: every tool)",
    )
    parser.add_argument(
        "--require-tool",
        metavar="NAME",
        action="append",
        default=[],
        help="fail when this tool has no event in the window (repeatable)",
    )
    parser.add_argument(
        "--forbid-tool",
        metavar="NAME",
        action="append",
        default=[],
        help="fail when this tool has any event in the window (repeatable)",
    )


def run_check(args: argparse.Namespace) -> int:
    try:
        since_moment(args.since, now=datetime.now(UTC))
    except ValueError as exc:
        return usage(f"--since: {exc}")
    try:
        max_error_rate = None if args.max_error_rate is None else parse_error_rate(args.max_error_rate)
    except ValueError as exc:
        return usage(f"--max-error-rate: {exc}")
    try:
        max_p95_ms = None if args.max_p95 is None else parse_p95(args.max_p95)
    except ValueError as exc:
        return usage(f"--max-p95: {exc}")
    rules = Rules(
        max_error_rate=max_error_rate,
        max_p95_ms=max_p95_ms,
        tools=tuple(args.tool),
        require=tuple(args.require_tool),
        forbid=tuple(args.forbid_tool),
    )
    if (problem := rules.problem()) is not None:
        return usage(problem)
    try:
        window, verdicts = asyncio.run(_check(FeedReader(args.feed_url, args.token), rules, args.since))
    except FeedReadError as exc:
        print(f"activity-feed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(window)
    for verdict in verdicts:
        print(verdict)
    return 0 if all(verdict.ok for verdict in verdicts) else EXIT_FAILED


async def _check(feed: FeedReader, rules: Rules, since: str) -> tuple[str, list[Verdict]]:
    async with feed:
        answer = await feed.stats(since=since)
        stats: list[dict[str, Any]] = answer.json()
        # Whether each named tool was called is asked of the events themselves: the statistics may
        # not have counted the whole window.
        called = {
            name: bool(await feed.recent(tool_name=name, since=since, limit=1))
            for name in dict.fromkeys(rules.require + rules.forbid)
        }
    counted = answer.headers.get("X-Stats-Window-Events", "?")
    start = answer.headers.get("X-Stats-Since")
    if answer.headers.get("X-Stats-Truncated") == "true":
        window = (
            f"window: since {since}, more events than the feed counts: the error-rate and p95 rules cover "
            f"only the newest {counted}, from {start} on (X-Stats-Truncated)"
        )
    else:
        events = "1 event" if counted == "1" else f"{counted} events"
        window = f"window: since {since}" + (f" ({start})" if start else "") + f", {events}"
    return window, window_verdicts(rules, stats) + presence_verdicts(rules, called, stats)

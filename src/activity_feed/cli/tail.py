"""`activity-feed tail`: follow a running feed in the terminal, as `tail -f` follows a log
(cli/tail_follow.py follows, cli/tail_lines.py prints)."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from typing import Any

from activity_feed.cli.tail_follow import Follower, TailOptions
from activity_feed.cli.tail_lines import JsonLines, Lines, PlainLines, RichLines
from activity_feed.client.reader import FeedReadError, feed_url_from, feed_url_problem, token_from
from activity_feed.schemas import EventStatus, EventType

EXIT_USAGE = 2
DEFAULT_HISTORY = 10
MAX_HISTORY = 500  # the most `GET /activities/recent` answers at once
MAX_FILTER_LENGTH = 200


def add_tail(commands: Any) -> None:
    parser = commands.add_parser(
        "tail",
        help="follow a running feed in the terminal: the last N events, then every change as it happens",
        description="Print the last N events of a running feed (oldest first), then every change as it "
        "happens, one line each: time, status, type, tool, source, duration, error. Coloured on a "
        "terminal, plain text in a pipe. A dropped connection is retried and resumed where it left off: "
        "nothing missed, nothing twice. While the feed cannot be reached, tail waits for it, saying so "
        "on stderr. Ctrl-C stops it. Exit status: 0 after Ctrl-C, 1 when the feed refuses the token or "
        "the request, 2 for bad arguments.",
    )
    parser.add_argument(
        "--feed-url",
        metavar="URL",
        help="the feed's address (default: env ACTIVITY_FEED_URL, else http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--token",
        help="the feed's token, read or write (default: env ACTIVITY_FEED_TOKEN; prefer the environment, "
        "command lines are visible to other users)",
    )
    parser.add_argument(
        "--type", dest="event_type", choices=[t.value for t in EventType], help="only events of this type"
    )
    parser.add_argument("--status", choices=[s.value for s in EventStatus], help="only events in this status")
    parser.add_argument("--tool", dest="tool_name", metavar="NAME", help="only events of this tool_name")
    parser.add_argument(
        "--source",
        dest="user_source",
        metavar="S",
        help="only events of this user_source (the stream has no such filter: tail applies it to each "
        "message itself)",
    )
    parser.add_argument("--session", dest="session_id", metavar="ID", help="only events of this session_id")
    parser.add_argument(
        "-n",
        dest="history",
        metavar="N",
        type=int,
        help=f"print the last N events first (default {DEFAULT_HISTORY}, at most {MAX_HISTORY}; 0 for none)",
    )
    parser.add_argument(
        "--since",
        metavar="CURSOR",
        help="instead of the last N events, start with every change after this stream cursor (the "
        "`cursor` of a --json line): resume where an earlier tail stopped",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per line: each stream message as the feed sent it, history events as {"type": '
        '"history", "event": {...}, "cursor": "..."}',
    )


def options_from(args: argparse.Namespace) -> TailOptions | str:
    """The options `args` ask for, or what is wrong with them."""
    if args.history is not None and args.since is not None:
        return "-n and --since cannot be combined: --since starts from a cursor, not from the last N events"
    history = DEFAULT_HISTORY if args.history is None else args.history
    if not 0 <= history <= MAX_HISTORY:
        return f"-n: must be from 0 to {MAX_HISTORY}, not {history}"
    feed_url = feed_url_from(args.feed_url)
    if (problem := feed_url_problem(feed_url)) is not None:
        return problem
    named = (("--tool", args.tool_name), ("--source", args.user_source), ("--session", args.session_id))
    for flag, value in named:
        if value is not None and len(value) > MAX_FILTER_LENGTH:
            return f"{flag}: at most {MAX_FILTER_LENGTH} characters, not {len(value)}"
    if args.since is not None and not args.since:
        return "--since: the cursor is empty"
    return TailOptions(
        feed_url=feed_url,
        token=token_from(args.token),
        event_type=args.event_type,
        status=args.status,
        tool_name=args.tool_name,
        session_id=args.session_id,
        user_source=args.user_source,
        history=history,
        since=args.since,
    )


def _lines(as_json: bool) -> Lines:
    if as_json:
        return JsonLines(sys.stdout)
    return RichLines(sys.stdout) if sys.stdout.isatty() else PlainLines(sys.stdout)


def _say(message: str) -> None:
    print(f"activity-feed: {message}", file=sys.stderr, flush=True)


def run_tail(args: argparse.Namespace) -> int:
    """Follow the feed until Ctrl-C (exit 0); 1 when the feed refuses, 2 for bad arguments."""
    options = options_from(args)
    if isinstance(options, str):
        _say(options)
        return EXIT_USAGE
    # A tool name may hold any character: one the terminal's encoding lacks is replaced, not fatal.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    follower = Follower(options, _lines(args.json), _say)
    try:
        asyncio.run(follower.run())
    except KeyboardInterrupt:
        return 0
    except FeedReadError as exc:
        _say(str(exc))
        return 1
    except BrokenPipeError:
        # The reader went away (`tail | head`): nothing more to print, and nothing to complain about.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0

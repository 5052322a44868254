"""What the commands that read a running feed (`export`, `check`) share: where the feed is, its token, and
how a usage error is reported."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


def add_feed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feed-url",
        metavar="URL",
        help="the feed to read (default: ACTIVITY_FEED_URL, then http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--token",
        help="its write or read token (default: ACTIVITY_FEED_TOKEN; prefer the environment, command lines "
        "are visible to other users)",
    )


def usage(message: str) -> int:
    """Say what is wrong with the command line, in one line on stderr; the usage exit status."""
    print(f"activity-feed: {message}", file=sys.stderr)
    return EXIT_USAGE

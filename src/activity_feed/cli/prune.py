"""`activity-feed prune`: delete old events once, by age, by count or both, or every event with `--all`
(store/maintenance.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from activity_feed.durations import DurationTooLongError, parse_duration, shown
from activity_feed.settings import MAX_RETENTION_DAYS, MAX_RETENTION_EVENTS, Settings

if TYPE_CHECKING:
    from activity_feed.store.maintenance import Retention

EXIT_USAGE = 2


def add_prune(commands: Any) -> None:
    parser = commands.add_parser(
        "prune",
        help="delete old events: --older-than 30d, --keep N, or both; or --all",
        description="Delete events whose timestamp is older than --older-than, and all but the --keep "
        "that arrived last, oldest first, in small transactions (or every event, with --all), then print "
        "how many were removed. Each deletion leaves a tombstone, so "
        "stream clients that reconnect with a cursor learn of it. To prune continuously, set "
        "ACTIVITY_FEED_RETENTION_DAYS or ACTIVITY_FEED_RETENTION_MAX_EVENTS on the service instead.",
    )
    parser.add_argument(
        "--older-than",
        metavar="DURATION",
        help="delete events whose timestamp is older than this: a number with s, m, h or d (30d, 12h)",
    )
    parser.add_argument(
        "--keep", metavar="N", type=int, help="keep only the N events that arrived last (N is 1 or more)"
    )
    parser.add_argument(
        "--all", action="store_true", help="delete every event (not with --keep or --older-than)"
    )
    parser.add_argument(
        "--database-url",
        help="sqlite:///path or postgresql://user@host/db (default: sqlite file activity_feed.db in the "
        "working directory; env ACTIVITY_FEED_DATABASE_URL)",
    )


def run_prune(args: argparse.Namespace, settings: Settings) -> int:
    """Prune as `args` say; print the count. Usage errors are one line on stderr and exit status 2."""
    retention = _retention(args)
    if isinstance(retention, str):
        return _usage(retention)
    url, deleted, dropped = asyncio.run(_prune(settings, retention))
    noun = "event" if deleted == 1 else "events"
    extra = f"; dropped {dropped} old tombstones" if dropped else ""
    print(f"activity-feed: removed {deleted} {noun} from {url}{extra}")
    return 0


async def _prune(settings: Settings, retention: Retention) -> tuple[str, int, int]:
    # The store is imported here, not at the top: every command builds this parser, and SQLAlchemy
    # would add half a second to the start of those that never touch a database.
    from activity_feed.cli.database import require_existing_database
    from activity_feed.store import ActivityStore
    from activity_feed.store.maintenance import drop_tombstones, prune

    # Opening a SQLite file that is not there would create it, empty: a mistyped path would "prune" it.
    require_existing_database(settings.database_url)
    store = ActivityStore(settings.database_url, batch_size=settings.write_batch_size)
    await store.start(migrate=True)
    try:
        batch_size = settings.maintenance_batch_size
        deleted = await prune(store, retention=retention, batch_size=batch_size)
        # Tombstones older than the replay limit serve no replay (see `drop_tombstones`).
        dropped = await drop_tombstones(store, keep_changes=settings.replay_limit, batch_size=batch_size)
    finally:
        await store.close()
    return store.url, deleted, dropped


def _retention(args: argparse.Namespace) -> Retention | str:
    """What `args` ask to delete, or what is wrong with them."""
    from activity_feed.store.maintenance import Retention

    if args.all:
        if args.older_than is not None or args.keep is not None:
            return "--all deletes every event: it cannot be combined with --keep or --older-than"
        return Retention(keep=0)
    if args.older_than is None and args.keep is None:
        return "prune needs --older-than, --keep or both (or --all to delete every event)"
    if args.keep == 0:
        # As ACTIVITY_FEED_RETENTION_MAX_EVENTS=0 means "keep them all", --keep 0 must not mean the
        # opposite: deleting every event is asked for by name.
        return "--keep: must be 1 or more, not 0 (to delete every event, use --all)"
    if args.keep is not None and not 1 <= args.keep <= MAX_RETENTION_EVENTS:
        return f"--keep: must be from 1 to {MAX_RETENTION_EVENTS}, not {args.keep}"
    older_than = None
    if args.older_than is not None:
        too_long = f"--older-than: at most {MAX_RETENTION_DAYS}d (100 years), not {shown(args.older_than)!r}"
        try:
            older_than = parse_duration(args.older_than)
        except DurationTooLongError:
            return too_long
        except ValueError as exc:
            return f"--older-than: {exc}"
        if older_than > timedelta(days=MAX_RETENTION_DAYS):
            return too_long
        if older_than <= timedelta(0):
            # As ACTIVITY_FEED_RETENTION_DAYS=0 means "off", --older-than 0 must not mean "every event".
            return "--older-than: must be more than 0 (to delete every event, use --all)"
    return Retention(older_than=older_than, keep=args.keep)


def _usage(message: str) -> int:
    print(f"activity-feed: {message}", file=sys.stderr)
    return EXIT_USAGE

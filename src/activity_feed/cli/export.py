"""`activity-feed export`: every event that matches, oldest first, as JSON lines or CSV, from a running
feed (`GET /activities/export`) or straight from its database (`--database-url`), in constant memory."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from activity_feed.cli.export_output import CsvWriter, ExportError, JsonLinesWriter, Output, Progress
from activity_feed.cli.feed_arguments import add_feed_arguments, usage
from activity_feed.client.reader import FeedReader, FeedReadError
from activity_feed.errors import ActivityFeedError, ConfigurationError
from activity_feed.schemas import EventStatus, EventType
from activity_feed.since import since_moment

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
_MAX_FILTER_LENGTH = 200


def add_export(commands: Any) -> None:
    parser = commands.add_parser(
        "export",
        help="write every event that matches, oldest first, as JSON lines or CSV",
        description="Write every event that matches the filters, oldest first (by timestamp, then "
        "arrival), as JSON lines (one event per line, as the API shows it) or CSV, to a file or to "
        "standard output, in constant memory whatever their number. Events come from the running feed "
        "(GET /activities/export), or with --database-url straight from its database, which is only "
        "read. Only events stored when the export began are written. A file appears once the export is "
        "whole. The count goes to stderr as it runs (on a terminal) and in a last line.",
    )
    add_feed_arguments(parser)
    kinds = [kind.value for kind in EventType]
    statuses = [status.value for status in EventStatus]
    parser.add_argument(
        "--type", choices=kinds, metavar="TYPE", help=f"only events of this type: {', '.join(kinds)}"
    )
    parser.add_argument(
        "--status",
        choices=statuses,
        metavar="STATUS",
        help=f"only events with this status: {', '.join(statuses)}",
    )
    parser.add_argument("--tool", metavar="NAME", help="only this tool_name")
    parser.add_argument("--source", metavar="NAME", help="only this user_source")
    parser.add_argument("--session", metavar="ID", help="only the events of this session_id")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only events with a timestamp from then on: an ISO 8601 time (UTC without a zone) or a "
        "duration back from now (90s, 15m, 24h, 7d; a bare number is seconds)",
    )
    parser.add_argument(
        "--format", choices=["jsonl", "csv"], default="jsonl", help="JSON lines (the default) or CSV"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="read sqlite:///path or postgresql://user@host/db itself instead of asking a feed (it must be "
        "at this version's schema; nothing is changed in it)",
    )


def run_export(args: argparse.Namespace) -> int:
    """Export as `args` say. Exit status 0 once every event is written, 1 when the feed or database could
    not be read (or refused the token) or the output could not be written, 2 for a bad command line."""
    for flag, value in (("--tool", args.tool), ("--source", args.source), ("--session", args.session)):
        if value is not None and len(value) > _MAX_FILTER_LENGTH:
            return usage(f"{flag}: at most {_MAX_FILTER_LENGTH} characters")
    since = None
    if args.since is not None:
        try:
            since = since_moment(args.since, now=datetime.now(UTC))
        except ValueError as exc:
            return usage(f"--since: {exc}")
    if args.database_url is not None and (args.feed_url is not None or args.token is not None):
        return usage("--database-url reads the database itself: --feed-url and --token do not apply")
    if args.database_url is not None:
        # Only this path loads the store (SQLAlchemy): an export over HTTP starts without it.
        from activity_feed.cli.export_database import database_chunks
        from activity_feed.store import ExportQuery

        query = ExportQuery(
            event_type=None if args.type is None else EventType(args.type),
            status=None if args.status is None else EventStatus(args.status),
            tool_name=args.tool,
            user_source=args.source,
            session_id=args.session,
            since=since,
        )
        try:
            chunks = database_chunks(args.database_url, query)
        except ConfigurationError as exc:
            return usage(f"--database-url: {exc}")
        except ActivityFeedError as exc:
            print(f"activity-feed: {exc}", file=sys.stderr)
            return EXIT_FAILED
    else:
        filters = {
            "event_type": args.type,
            "status": args.status,
            "tool_name": args.tool,
            "user_source": args.source,
            "session_id": args.session,
            "since": args.since,  # as given: a duration is counted back from the feed's own clock
        }
        chunks = _feed_chunks(FeedReader(args.feed_url, args.token), filters)
    return _write(chunks, args)


async def _feed_chunks(feed: FeedReader, filters: dict[str, Any]) -> AsyncGenerator[bytes, None]:
    async with feed:
        try:
            async for chunk in feed.export(**filters):
                yield chunk
        except FeedReadError as exc:
            if exc.status == 404 or (exc.status == 422 and "uuid" in str(exc).lower()):
                # A feed from before the endpoint takes `export` for an event id.
                raise FeedReadError(
                    f"{exc} (the feed at {feed.url} may be older than this activity-feed, without "
                    "/activities/export: upgrade it, or export from its database with --database-url)",
                    status=exc.status,
                ) from None
            raise


def _write(chunks: AsyncGenerator[bytes, None], args: argparse.Namespace) -> int:
    try:
        output = Output(args.output)
    except ExportError as exc:
        print(f"activity-feed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    writer = CsvWriter(output.stream) if args.format == "csv" else JsonLinesWriter(output.stream)
    progress = Progress(sys.stderr)
    try:
        asyncio.run(_copy(chunks, writer, progress))
        writer.finish()
        output.commit()
    except BrokenPipeError:
        # The reader of standard output stopped reading (`| head`): what it wanted, it has.
        _silence_stdout()
        return 0
    except OSError as exc:  # the output cannot take more: a full disk, a file size limit
        progress.clear()
        output.discard()
        print(f"activity-feed: cannot write to {output.name}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except ActivityFeedError as exc:
        progress.clear()
        output.discard()
        noun = "event" if writer.count == 1 else "events"
        written = f" (after {writer.count} {noun})" if writer.count and args.output is None else ""
        print(f"activity-feed: {exc}{written}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        progress.clear()
        output.discard()
        return EXIT_INTERRUPTED
    progress.clear()
    noun = "event" if writer.count == 1 else "events"
    print(
        f"activity-feed: exported {writer.count} {noun} to {output.name} ({progress.seconds:.1f} s)",
        file=sys.stderr,
    )
    return 0


async def _copy(
    chunks: AsyncGenerator[bytes, None], writer: JsonLinesWriter | CsvWriter, progress: Progress
) -> None:
    # Closed here, on the loop that runs it, whatever stops the copy (a closed pipe, a full disk):
    # otherwise its `finally` would run at interpreter exit, on no loop, with a traceback.
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            writer.write(chunk)
            progress.show(writer.count)


def _silence_stdout() -> None:
    # Python flushes stdout again at exit, which would fail on the closed pipe with a second message.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)

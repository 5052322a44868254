"""`activity-feed`: serve the feed, manage its database, proxy an MCP server, or export and check a feed."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from activity_feed import __version__
from activity_feed.alerts.rules import AlertRulesError
from activity_feed.cli.alerts import add_alerts, run_alerts
from activity_feed.cli.check import add_check, run_check
from activity_feed.cli.database import migrate
from activity_feed.cli.export import add_export, run_export
from activity_feed.cli.prune import add_prune, run_prune
from activity_feed.cli.tail import add_tail, run_tail
from activity_feed.errors import ActivityFeedError
from activity_feed.feed_mcp.cli import add_feed_mcp, run_feed_mcp
from activity_feed.proxy.cli import add_proxy, run_proxy
from activity_feed.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="activity-feed",
        description="A live activity feed for MCP servers and HTTP APIs. Settings come from ACTIVITY_FEED_* "
        "environment variables; flags override them.",
    )
    parser.add_argument("--version", action="version", version=f"activity-feed {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the service: REST API, live stream and docs at /docs (migrates the database first)",
        description="Run the service. It upgrades the database schema, then serves the REST API under "
        "/activities, the live stream at /activities/ws and the API docs at /docs.",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; env ACTIVITY_FEED_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000; env ACTIVITY_FEED_PORT)")
    _add_database_url(serve)
    serve.add_argument(
        "--broadcast-url",
        help="bus between instances: memory:// for one (the default), redis://host:6379/0 for several "
        "on one PostgreSQL database (needs the redis extra; env ACTIVITY_FEED_BROADCAST_URL)",
    )
    serve.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default info; env ACTIVITY_FEED_LOG_LEVEL)",
    )
    serve.add_argument(
        "--token",
        help="write token: every endpoint but /health then needs `Authorization: Bearer <token>` "
        "(env ACTIVITY_FEED_TOKEN; prefer the environment, command lines are visible to other users)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow a non-loopback --host without a token (env ACTIVITY_FEED_INSECURE=1)",
    )
    serve.add_argument(
        "--alerts", help="a TOML file of alert rules and webhooks (docs/alerts.md; env ACTIVITY_FEED_ALERTS)"
    )

    _add_demo(commands)
    add_prune(commands)
    add_proxy(commands)
    add_tail(commands)
    add_feed_mcp(commands)
    add_export(commands)
    add_check(commands)
    add_alerts(commands)

    db = commands.add_parser("db", help="manage the database schema", description="Manage the schema.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade",
        help="create the schema, or upgrade it to the newest version",
        description="Create the schema, or upgrade it to the newest version. Safe to run again.",
    )
    _add_database_url(upgrade)
    return parser


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="watch the feed fill: the service, the example MCP server and API, and a scripted session",
        description="Start the service (SQLite in a temporary folder unless --database-url is given), run "
        "the example property-management MCP server over stdio under a scripted MCP client, send a few "
        "requests to the example HTTP API, print where to watch, and keep the service up until Ctrl-C.",
    )
    demo.add_argument(
        "--port", type=int, help="port for the feed service (default 8000; env ACTIVITY_FEED_PORT)"
    )
    demo.add_argument(
        "--database-url",
        help="where to keep the events (default: SQLite in a temporary folder, deleted after)",
    )
    demo.add_argument(
        "--no-wait",
        action="store_true",
        help="exit once the session has played, instead of serving until Ctrl-C "
        "(env ACTIVITY_FEED_DEMO_NO_WAIT=1)",
    )
    demo.add_argument(
        "--pace", type=_pace, default=1.0, help="seconds between the session's steps (default 1; 0 for none)"
    )
    demo.add_argument(
        "--via-proxy",
        action="store_true",
        help="run the example MCP server behind `activity-feed proxy`, which records it (the server itself "
        "then reports nothing)",
    )


def _pace(text: str) -> float:
    """Seconds between the demo's steps: 0 or more (a negative pace was once taken silently for 0)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {text!r}")
    return seconds


def _add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="sqlite:///path or postgresql://user@host/db (default: sqlite file activity_feed.db in the "
        "working directory; env ACTIVITY_FEED_DATABASE_URL)",
    )


_SETTING_FLAGS = ("host", "port", "database_url", "broadcast_url", "log_level", "token", "insecure", "alerts")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "host",
            "port",
            "database_url",
            "broadcast_url",
            "log_level",
            "token",
            "insecure",
            "alerts",
        )
        if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def _serve(settings: Settings) -> None:
    from activity_feed.api import create_app
    from activity_feed.api.connections import raise_open_file_limit
    from activity_feed.api.server import PreboundServer, listen, server_config, tune_interpreter

    # The app first: it connects nothing, and a setting it cannot use (a bus URL of an unknown kind, the
    # Redis extra missing) is reported before the database is touched; then the address, so that a port
    # in use is one line (ListenError) before any migration runs.
    app = create_app(settings.model_copy(update={"migrate_on_start": False}))
    sockets = listen(settings.host, settings.port)
    try:
        url = migrate(settings.database_url)
        print(f"activity-feed: database {url} is up to date", file=sys.stderr)
        tune_interpreter()
        if (problem := raise_open_file_limit(settings.max_connections)) is not None:
            print(f"activity-feed: {problem}", file=sys.stderr)
        config = server_config(
            app, host=settings.host, port=settings.port, log_level=settings.log_level, settings=settings
        )
        PreboundServer(config).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "proxy":  # reads none of the service's settings
        return run_proxy(args)
    if args.command == "tail":  # a client of a running feed: none of the service's settings either
        return run_tail(args)
    if args.command == "mcp":  # reads a running feed, like tail
        return run_feed_mcp(args)
    if args.command == "export":  # nor do these: they read a feed, or a database they are given
        return run_export(args)
    if args.command == "check":
        return run_check(args)
    if args.command == "alerts":  # reads only its file (`test`: from the environment when not given)
        return run_alerts(args)
    try:
        settings = _settings(args)
        if args.command == "serve":
            from activity_feed.api.server import exposure_refusal

            if (refusal := exposure_refusal(settings)) is not None:
                print(f"activity-feed: {refusal}", file=sys.stderr)
                return 2
            from activity_feed.api.host_check import open_feed_hint

            if (hint := open_feed_hint(settings)) is not None:
                print(f"activity-feed: {hint}", file=sys.stderr)
            _serve(settings)
        elif args.command == "demo":
            from activity_feed.cli.demo import no_wait_from_env, run_demo

            return run_demo(
                settings,
                database_url_given=args.database_url is not None,
                wait=not (args.no_wait or no_wait_from_env()),
                pace=args.pace,
                out=sys.stdout,
                via_proxy=args.via_proxy,
            )
        elif args.command == "prune":
            return run_prune(args, settings)
        elif args.command == "db":
            url = migrate(settings.database_url)
            print(f"activity-feed: database {url} is up to date")
    except AlertRulesError as exc:
        print(f"activity-feed: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        # A ValueError of our own validators is the whole message: pydantic's prefix says nothing.
        message = first["msg"].removeprefix("Value error, ")
        print(f"activity-feed: invalid setting {where}: {message}", file=sys.stderr)
        return 2
    except ActivityFeedError as exc:
        print(f"activity-feed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`activity-feed proxy`: its options, and the stdio mode put together (relay, tap, recorder, client);
the HTTP mode is in `http_run.py`.

Only the relayed bytes go to stdout; everything the proxy says goes to stderr, where the server's own
stderr goes too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

RECORD_CHOICES = ("tools", "requests", "all")
# At exit: how long the recorder may take to finish the copies, and the client to send what is queued.
RECORD_STOP_SECONDS = 5.0
FLUSH_SECONDS = 2.0
PREFIX = "activity-feed proxy"
MAX_BUSY_POLL_US = 100_000
MAX_PORT = 65535


def add_proxy(commands: Any) -> None:
    proxy = commands.add_parser(
        "proxy",
        help="run an MCP server (any language) behind a relay that records its conversation",
        description="Run COMMAND, an MCP server on stdio, and relay every byte between it and this "
        "process's stdin and stdout, unchanged, while recording the conversation in the feed. COMMAND's "
        "stderr passes through, SIGINT and SIGTERM are passed on, and the exit code is COMMAND's. A feed "
        "that is down never affects the relay. Example: activity-feed proxy -- npx -y some-mcp-server. "
        "With --upstream instead of a command, it is a reverse proxy in front of a streamable-HTTP MCP "
        "server: activity-feed proxy --upstream http://127.0.0.1:3000/mcp",
    )
    proxy.add_argument(
        "--upstream",
        metavar="URL",
        help="the MCP endpoint of a streamable-HTTP server to relay to (instead of a command)",
    )
    proxy.add_argument(
        "--host", default="127.0.0.1", help="with --upstream: address to listen on (default 127.0.0.1)"
    )
    proxy.add_argument(
        "--port", type=_port, default=8765, help="with --upstream: port to listen on (default 8765; 0: any)"
    )
    proxy.add_argument(
        "--feed-url",
        help="where to send events (default: ACTIVITY_FEED_URL, else http://127.0.0.1:8000)",
    )
    proxy.add_argument(
        "--token", help="the feed's write token (default: ACTIVITY_FEED_TOKEN; prefer the environment)"
    )
    proxy.add_argument(
        "--source", help="user_source of every event (default: the MCP client's name and version)"
    )
    proxy.add_argument(
        "--record",
        choices=RECORD_CHOICES,
        default="requests",
        help="tools: tool calls only; requests (default): every request either way but pings, and "
        "cancellations; all: notifications and pings too",
    )
    proxy.add_argument(
        "--busy-poll",
        type=_microseconds,
        metavar="MICROSECONDS",
        help="after each message (stdio) or each request sent upstream (HTTP), look for the next one this "
        "long before sleeping, which saves the wake-up of a sleeping relay at the cost of that much CPU "
        "time at most (default with two or more CPUs: 500 for stdio, 3000 for HTTP; else 0: off)",
    )
    proxy.add_argument("server_command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG ...]")


def _port(text: str) -> int:
    """A TCP port to listen on, 0 for any free one."""
    if not text.isdigit() or int(text) > MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to {MAX_PORT}, got {text!r}")
    return int(text)


def _microseconds(text: str) -> float:
    """A non-negative whole number of microseconds, as seconds."""
    if not text.isdigit() or int(text) > MAX_BUSY_POLL_US:
        raise argparse.ArgumentTypeError(f"expected microseconds from 0 to {MAX_BUSY_POLL_US}, got {text!r}")
    return int(text) / 1e6


def run_proxy(args: argparse.Namespace, *, stderr: TextIO | None = None) -> int:
    """Run the proxy the parsed `args` describe; answers the exit code."""
    err = stderr if stderr is not None else sys.stderr
    command = list(args.server_command)
    if command and command[0] == "--":
        command = command[1:]
    from activity_feed.client.reader import feed_url_from, feed_url_problem

    feed_url = feed_url_from(args.feed_url)
    if (problem := feed_url_problem(feed_url)) is not None:
        print(f"{PREFIX}: {problem}", file=err)
        return 2
    if args.upstream is not None:
        if command:
            print(f"{PREFIX}: give --upstream or a command after --, not both", file=err)
            return 2
        from activity_feed.proxy.http_run import run_http

        return run_http(
            args.upstream,
            host=args.host,
            port=args.port,
            feed_url=feed_url,
            token=args.token,
            source=args.source,
            record=args.record,
            busy_poll=args.busy_poll,
            stderr=err,
            report_drops=report_drops,
        )
    if not command:
        print(
            f"{PREFIX}: name the server to run after --, e.g. activity-feed proxy -- npx -y server", file=err
        )
        return 2
    # Whatever a library might print must not land among the relayed bytes.
    sys.stdout = sys.stderr
    return run_stdio(
        command,
        feed_url=feed_url,
        token=args.token,
        source=args.source,
        record=args.record,
        busy_poll=args.busy_poll,
        stderr=err,
    )


def run_stdio(
    command: list[str],
    *,
    feed_url: str,
    token: str | None = None,
    source: str | None = None,
    record: str = "requests",
    busy_poll: float | None = None,
    stderr: TextIO,
) -> int:
    """Relay `command` over this process's stdin and stdout, recording one session; answers its exit
    code (126 or 127 when it cannot start, as a shell would)."""
    # Imported here: the relay is POSIX-only, and the rest of the command line must load everywhere.
    from activity_feed.proxy.stdio import CommandError, StdioRelay, signals_for_the_main_thread
    from activity_feed.proxy.tap import RecordingTap

    clients: list[Any] = []

    def make_recorder() -> Any:
        from activity_feed.client import FeedClient
        from activity_feed.errors import ActivityFeedError
        from activity_feed.ids import uuid7
        from activity_feed.mcp.messages import check_record_mode
        from activity_feed.proxy.recorder import ConnectionRecorder

        try:
            client = FeedClient(feed_url, token)
        except ActivityFeedError as exc:  # a token that cannot be sent: relay all the same
            print(f"{PREFIX}: not recording: {exc}", file=stderr, flush=True)
            return None
        clients.append(client)
        return ConnectionRecorder(
            client,
            transport="stdio",
            session_id=str(uuid7()),
            record=check_record_mode(record),
            user_source=source,
        )

    tap = RecordingTap(make_recorder)
    with signals_for_the_main_thread():  # nor any thread it starts (the client's)
        tap.start()
    relay = StdioRelay(
        command,
        client_to_server=tap.client_to_server,
        server_to_client=tap.server_to_client,
        busy_poll=busy_poll,
    )
    try:
        code = relay.run()
    except CommandError as exc:
        print(f"{PREFIX}: {exc}", file=stderr, flush=True)
        code = exc.exit_code
    tap.stop(RECORD_STOP_SECONDS)
    recorder = tap.recorder
    if recorder is not None:
        recorder.close(f"no response: server exited with code {code}")
    for client in clients:
        report_drops(client, stderr)
    return code


def report_drops(client: Any, stderr: TextIO) -> None:
    """Close `client` (flushing for at most FLUSH_SECONDS) and, if it had to drop anything, say so in
    one line."""
    client_logger = logging.getLogger("activity_feed.client")
    level = client_logger.level
    client_logger.setLevel(logging.ERROR)  # its own close warning would repeat the line below
    try:
        client.close(timeout=FLUSH_SECONDS)
    finally:
        client_logger.setLevel(level)
    dropped = {reason: count for reason, count in client.dropped.items() if count}
    if dropped:
        counts = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in dropped.items())
        print(
            f"{PREFIX}: {sum(dropped.values())} event writes were not recorded in the feed at {client.url} "
            f"({counts}; a call's start and its end can be two); {client.sent} were recorded",
            file=stderr,
            flush=True,
        )

"""How the service runs under uvicorn: one place for the server options that `serve`, tests and
benchmarks share."""

from __future__ import annotations

import copy
import errno
import gc
import ipaddress
import logging
import math
import re
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import unquote_plus

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from activity_feed.api.connections import header_timeout_protocol
from activity_feed.errors import ActivityFeedError
from activity_feed.settings import Settings

WS_MAX_MESSAGE_BYTES = 64 * 1024
# A parameter of a request target: what follows `?`, `&` or `;` up to the next one, a space or a quote
# (uvicorn writes the target between quotes, with `"` escaped).
_PARAMETER = re.compile(r"([?&;])([^?&;\s\"]+)")
_SEPARATORS = re.compile(r"[?&;]")
_DECODINGS = 4
_REDACTED = "[redacted]"


class RedactTokenFilter(logging.Filter):
    """Replace the value of every `token` parameter in a log record's message and arguments.

    The page passes its token to the stream as `?token=` (browsers cannot set WebSocket headers), and
    uvicorn logs every request line and WebSocket handshake with its query string, as sent: the name may
    be percent-encoded (`%74oken`, which the stream decodes and accepts), in any case, after `;`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def _redact(text: str) -> str:
    if "?" not in text and ";" not in text:
        return text  # most arguments (addresses, methods, status codes): no parameter at all
    return _PARAMETER.sub(_redact_parameter, text)


def _redact_parameter(match: re.Match[str]) -> str:
    separator, parameter = match.groups()
    if not _holds_token(parameter):
        return match.group(0)
    name, equals, _ = parameter.partition("=")
    return f"{separator}{name}={_REDACTED}" if equals else f"{separator}{_REDACTED}"


def _holds_token(parameter: str) -> bool:
    """Whether `parameter`, decoded as a query string would be, gives `token` a value.

    Decoded until nothing changes (bounded), so that no spelling slips through: `%74oken`, `TOKEN`,
    `+token`, or `%26token%3D...` hidden in another parameter's value."""
    for _ in range(_DECODINGS):
        decoded = unquote_plus(parameter)
        if decoded == parameter:
            break
        parameter = decoded
    for part in _SEPARATORS.split(parameter):
        name, equals, value = part.partition("=")
        if equals and value.strip() and name.strip().casefold() == "token":
            return True
    return False


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration plus the token filter on its loggers (not its handlers, so that
    the records are redacted before any handler, the application's own included, sees them)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokenFilter}}
    for name in ("uvicorn.error", "uvicorn.access"):
        config["loggers"][name]["filters"] = ["redact_tokens"]
    return config


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def exposure_refusal(settings: Settings) -> str | None:
    """Why `serve` must not start with these settings (one line), or None when it may."""
    if settings.token is not None or settings.insecure or is_loopback(settings.host):
        return None
    return (
        f"refusing to serve on {settings.host} without a token: anyone who can reach it could read and write "
        "the feed; set ACTIVITY_FEED_TOKEN (or --token), bind 127.0.0.1, or pass --insecure"
    )


def server_config(
    app: FastAPI, *, host: str, port: int, log_level: str = "info", settings: Settings | None = None
) -> uvicorn.Config:
    """The uvicorn options; connection limits from `settings` (their defaults when None)."""
    limits = settings if settings is not None else Settings.model_construct()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config(),
        loop="uvloop",
        # httptools, closing connections that do not send their request headers in time (connections.py).
        http=header_timeout_protocol(limits.header_timeout.total_seconds()),
        timeout_keep_alive=math.ceil(limits.keep_alive_timeout.total_seconds()),
        limit_concurrency=limits.max_connections,
        # The sans-I/O implementation: the legacy one is deprecated by the websockets project.
        ws="websockets-sansio",
        # Clients have nothing to send on the stream; a large message is an abuse, not a request.
        ws_max_size=WS_MAX_MESSAGE_BYTES,
    )


# Python's default is a young-generation collection every 700 net allocations of container objects.
GC_YOUNG_THRESHOLD = 50_000
# How long a thread may keep the interpreter lock while another waits for it; Python's default is 5 ms.
SWITCH_INTERVAL_SECONDS = 0.0005


def tune_interpreter() -> None:
    """Set the interpreter up for the service's own process (`serve`): the cyclic garbage collector and
    the switch interval. Never called for an app that embeds the feed, whose process belongs to its owner.

    The collector: a batch allocates tens of thousands of objects that live until its commit; with the
    default thresholds they get promoted and trigger full collections that walk every object of the app.
    Freezing what exists at start takes it out of every collection, and the higher young threshold makes
    collections rarer (reference cycles are still collected). `bench batch` shows the difference.

    The switch interval: a batch's transaction runs on the writer's thread, which lets go of the lock at
    every SQLite call and then waits to get it back for up to the interval while the loop's thread runs
    Python; a shorter interval gives it back sooner (`bench batch`; `bench ingest` is unaffected)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


class ListenError(ActivityFeedError):
    """The address cannot be listened on: a port in use or reserved, a host not of this machine."""


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to `host`:`port` (one per address `host` stands for, as uvicorn would bind them) for
    `Server.run(sockets=...)`; `ListenError` saying in one line why they cannot be.

    Bound here rather than by uvicorn, which logs the failure and exits with status 3."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: {str(exc.strerror or exc).lower()}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, protocol, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, protocol)
            sockets.append(sock)
            # As asyncio's create_server does: a port that only has connections closing is free again.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = (exc.strerror or str(exc)).lower()
        hint = "; choose another port with --port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else ""
        raise ListenError(f"cannot listen on {where}: {reason}{hint}") from None
    return sockets


class PreboundServer(uvicorn.Server):
    """uvicorn's server on sockets bound beforehand (`listen`), saying where it runs as it does when it
    binds them itself."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if sockets and self.started:
            self._log_started_message(sockets)


class ServerStartError(ActivityFeedError):
    """A background server that did not come up (a failing start-up, or one too slow)."""


class BackgroundServer:
    """One ASGI app under uvicorn in a daemon thread: for the demo, and for tests that cross the network.

    uvicorn installs signal handlers only in the main thread, so Ctrl-C still reaches the caller. `port`
    0 lets the OS pick a free one; `port` holds the real one once `start` returns."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "server",
        settings: Settings | None = None,
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.port = port
        config = server_config(app, host=host, port=port, log_level="warning", settings=settings)
        self.server = PreboundServer(config)
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, name=f"activity-feed-{name}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Return once the server accepts connections; `ListenError` if its address cannot be listened
        on, `ServerStartError` if it stops or times out."""
        self.sockets = listen(self.host, self.port)
        self.port = self.sockets[0].getsockname()[1]
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise ServerStartError(
                    f"the {self.name} could not start on {self.host}:{self.port}; uvicorn's message is above"
                )
            if time.monotonic() > deadline:
                raise ServerStartError(f"the {self.name} did not start within {timeout:.0f} s")
            time.sleep(0.01)

    def _run(self) -> None:
        try:
            self.server.run(sockets=self.sockets)
        finally:
            for sock in self.sockets:  # uvicorn closes them only after it has started
                sock.close()

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout)

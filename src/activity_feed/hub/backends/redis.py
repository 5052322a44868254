"""The Redis bus (`redis://`, `rediss://`): one pub/sub subscription per instance, remade with backoff.

Redis pub/sub delivers at most once: whatever is published while an instance is not subscribed is lost to
it. So the backend never resubscribes silently (redis-py would, on the same connection): it makes a new
subscription and yields a `Gap` each time, and after each failed attempt while Redis is down, and the hub
reads what was missed from the database. Nothing here raises into the service: an outage is a `problem`
for `/health` and a line in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from activity_feed.hub.backends.base import BusUnavailableError, Gap
from activity_feed.hub.backoff import Backoff
from activity_feed.hub.notice import Notice, decode_message, encode_message

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "activity-feed:changes"
_CONNECT_TIMEOUT_SECONDS = 2.0
_COMMAND_TIMEOUT_SECONDS = 2.0
_READ_SECONDS = 1.0  # how long one read of the subscription waits
# After this long without a word from Redis, the subscription sends a PING, and after as long again
# without an answer it counts as lost: a Redis that vanished without closing the connection (a host down,
# a network cut, a stopped process) is noticed in seconds, not after TCP's retransmissions give up.
SILENCE_SECONDS = 5.0
_RECONNECT = (0.1, 2.0)  # first delay and cap, in seconds: a restarted Redis is back within a few
# Connection failures, and the socket errors redis-py lets through on some platforms.
_OUTAGE_ERRORS = (RedisError, OSError)


def split_channel(url: str) -> tuple[str, str]:
    """(`url` without its `channel` query parameter, the channel it names or the default).

    redis-py turns every query parameter into a connection argument, and would refuse `channel`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channels = [value for name, value in query if name == "channel" and value]
    rest = urlencode([(name, value) for name, value in query if name != "channel"])
    return urlunsplit(parts._replace(query=rest)), channels[-1] if channels else DEFAULT_CHANNEL


def display_url(url: str) -> str:
    """`url` without its password, for logs and `/health`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=user + host))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class RedisBackend:
    """Publishes on one channel and holds one subscription to it, remade with backoff when lost."""

    def __init__(
        self, url: str, *, channel: str | None = None, silence_seconds: float = SILENCE_SECONDS
    ) -> None:
        self._url, url_channel = split_channel(url)
        self.channel = channel if channel is not None else url_channel
        self.display_url = display_url(self._url)
        self._client: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: PubSub | None = None
        self._closed = asyncio.Event()
        self._listen_problem: str | None = f"not yet subscribed to Redis at {self.display_url}"
        self._publish_problem: str | None = None
        self._down_since: float | None = None
        self._silence_seconds = silence_seconds
        self._heard_at = 0.0
        self._pinged = False

    @property
    def problem(self) -> str | None:
        return self._listen_problem or self._publish_problem

    async def connect(self) -> None:
        # No network yet: the subscription is made by `listen`, connections on first use, so the service
        # starts (degraded) while Redis is down.
        options: dict[str, Any] = {
            "socket_connect_timeout": _CONNECT_TIMEOUT_SECONDS,
            "socket_timeout": _COMMAND_TIMEOUT_SECONDS,
        }
        # One immediate retry on a fresh connection: after a Redis restart the pooled one is stale.
        self._client = Redis.from_url(self._url, retry=Retry(NoBackoff(), 1), **options)
        # No retry at all for the subscription, not even redis-py's reconnect before it gives up: that
        # resubscribes without a word, and whatever was published in between would be lost unnoticed.
        # Resubscribing is ours (`listen`).
        no_retry = Retry(NoBackoff(), 0, supported_errors=())
        self._subscriber = Redis.from_url(self._url, retry=no_retry, **options)

    async def disconnect(self) -> None:
        self._closed.set()
        await self._drop_subscription()
        for client in (self._client, self._subscriber):
            if client is not None:
                await client.aclose()
        self._client = self._subscriber = None

    async def publish(self, notices: Sequence[Notice]) -> None:
        if self._client is None:
            raise BusUnavailableError("the Redis bus is not connected")
        try:
            await self._client.publish(self.channel, encode_message(notices))
        except _OUTAGE_ERRORS as exc:
            self._publish_problem = f"cannot publish to Redis at {self.display_url}: {_reason(exc)}"
            raise BusUnavailableError(self._publish_problem) from exc
        self._publish_problem = None

    async def listen(self) -> AsyncGenerator[Sequence[Notice] | Gap, None]:
        backoff = Backoff(*_RECONNECT)
        while not self._closed.is_set():
            try:
                await self._subscribe()
            except Exception as exc:  # boundary: whatever fails, the answer is to try again later
                if self._closed.is_set():
                    return
                await self._lost(exc)
                yield Gap(f"cannot subscribe: {self._listen_problem}")
                await self._pause(backoff.next_delay())
                continue
            backoff.reset()
            self._back()
            yield Gap("subscribed")
            while not self._closed.is_set():
                try:
                    payload = await self._next_payload()
                except Exception as exc:  # boundary: any failure of the subscription is a loss, as above
                    if self._closed.is_set():
                        return  # `disconnect` closed the subscription under this read
                    await self._lost(exc)
                    yield Gap(f"subscription lost: {self._listen_problem}")
                    await self._pause(backoff.next_delay())
                    break
                notices = decode_message(payload) if payload is not None else None
                if notices:
                    yield notices

    async def _subscribe(self) -> None:
        if self._subscriber is None:
            raise BusUnavailableError("the Redis bus is not connected")
        self._pubsub = pubsub = self._subscriber.pubsub()
        await pubsub.subscribe(self.channel)
        # SUBSCRIBE is only sent above; the subscription holds once Redis confirms it. Only then may the
        # hub read the database for what it missed: a change published in between would be in neither.
        deadline = time.monotonic() + _COMMAND_TIMEOUT_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            message = await pubsub.get_message(timeout=left)
            if message is not None and message.get("type") == "subscribe":
                self._heard_at, self._pinged = time.monotonic(), False
                return
        raise TimeoutError(f"Redis did not confirm the subscription within {_COMMAND_TIMEOUT_SECONDS:g} s")

    async def _next_payload(self) -> bytes | None:
        pubsub = self._pubsub
        connection = pubsub.connection if pubsub is not None else None
        # A dropped connection would be silently remade (and resubscribed) by the next read: treat it as
        # lost instead, so that the gap is noticed.
        if pubsub is None or connection is None or not connection.is_connected:
            raise ConnectionError("the subscription's connection was closed")
        message: dict[str, Any] | None = await pubsub.get_message(
            ignore_subscribe_messages=True, timeout=min(_READ_SECONDS, self._silence_seconds)
        )
        now = time.monotonic()
        if message is not None:  # a payload, or the answer to a PING: Redis is there
            self._heard_at, self._pinged = now, False
        elif now - self._heard_at > self._silence_seconds:
            if self._pinged:
                raise TimeoutError(f"Redis did not answer a PING within {self._silence_seconds:g} s")
            await pubsub.ping()
            self._heard_at, self._pinged = now, True
        if message is None or message.get("type") != "message":
            return None
        data = message["data"]
        return data if isinstance(data, bytes) else str(data).encode()

    async def _lost(self, exc: BaseException) -> None:
        await self._drop_subscription()
        self._listen_problem = f"no subscription to Redis at {self.display_url}: {_reason(exc)}"
        if self._down_since is None:
            self._down_since = time.monotonic()
            # Once per outage, not once per attempt; with the traceback when the failure is not one of
            # the connection errors an outage brings.
            log.warning(
                "%s; retrying with backoff, and reading changes from the database meanwhile",
                self._listen_problem,
                exc_info=not isinstance(exc, _OUTAGE_ERRORS),
            )

    def _back(self) -> None:
        if self._down_since is not None:
            log.warning(
                "subscribed to Redis at %s after %.1f s without a subscription",
                self.display_url,
                time.monotonic() - self._down_since,
            )
        self._down_since = None
        self._listen_problem = None

    async def _drop_subscription(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            # Closing a connection that is already gone may fail; there is nothing left to do then.
            with suppress(*_OUTAGE_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # annotated only in newer redis-py

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the backend is closed meanwhile."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)
